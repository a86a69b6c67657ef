//! `inspect`'s cache: what it read, one file per stream, under
//! `$HOME/.lightbus/inspect_cache/<server>/<stream>.jsonl`.
//!
//! Each line is an event in the record `lightbus listen` prints, in stream order, so the
//! newest id is on the last line. The cache is an optimisation and a memory of trimmed
//! events, never a source of failure: a file that cannot be written is warned about and
//! no longer written, and a line that does not parse is warned about and skipped. Only a
//! cache file that exists but cannot be read fails the command ([`CliError::Cache`]).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use lightbus::EventMessage;

use super::Search;
use crate::error::{CliError, Result};
use crate::record::{EventRecord, OwnedRecord};

/// The file in a server's cache directory naming the Redis instance the cache was read
/// from (its `run_id`, from `INFO server`).
const RUN_ID_FILE: &str = "run_id";

/// Keeps the cache of the server cached under `server_key` only if it was read from the
/// Redis instance with `run_id` (a restarted or different server has another): else its
/// files are deleted, with a notice, so that no event of another Redis is ever shown as
/// this one's. A cache without a recorded `run_id` (written by an older `inspect`) is
/// discarded too. Failures here are warnings: the cache is an optimisation.
pub(super) fn check_server(server_key: &str, run_id: &str) {
    let Some(root) = root() else {
        return;
    };
    let dir = root.join(server_key);
    let recorded = std::fs::read_to_string(dir.join(RUN_ID_FILE)).ok();
    if recorded.as_deref().map(str::trim) == Some(run_id) {
        return;
    }
    let cached = streams(&root, server_key);
    if !cached.is_empty() {
        tracing::warn!(
            "discarding inspect's cache of {} stream(s): it was read from another Redis \
             instance (run_id {} now {run_id}); re-reading from Redis",
            cached.len(),
            recorded.as_deref().map_or("unknown", str::trim)
        );
        for stream in &cached {
            if let Err(error) = std::fs::remove_file(dir.join(file_name(stream))) {
                tracing::warn!("cannot remove the cache of `{stream}`: {error}");
            }
        }
    }
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(RUN_ID_FILE), format!("{run_id}\n")));
    if let Err(error) = written {
        tracing::warn!("cannot record the cache's Redis run_id: {error}");
    }
}

/// How much of a file's end is read to find its newest id.
const TAIL: u64 = 64 * 1024;

/// The cache root, `$HOME/.lightbus/inspect_cache` (none without `$HOME`).
pub(super) fn root() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(".lightbus").join("inspect_cache"))
}

/// A server's directory name in the cache: its URL (without password) with anything but
/// letters and digits replaced.
pub(super) fn server_key(redacted_url: &str) -> String {
    redacted_url
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The cache file name of a stream (reversible: `%` and `/` are escaped).
fn file_name(stream: &str) -> String {
    format!("{}.jsonl", stream.replace('%', "%25").replace('/', "%2F"))
}

/// The stream a cache file name stands for.
fn stream_of_file(name: &str) -> Option<String> {
    let stem = name.strip_suffix(".jsonl")?;
    Some(stem.replace("%2F", "/").replace("%25", "%"))
}

/// The cache file of `stream` on the server cached under `server_key`, if there is a cache.
pub(super) fn path(server_key: &str, stream: &str) -> Option<PathBuf> {
    root().map(|root| root.join(server_key).join(file_name(stream)))
}

/// The streams cached for a server, sorted.
pub(super) fn streams(root: &Path, server_key: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join(server_key)) else {
        return Vec::new();
    };
    let mut streams: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| stream_of_file(&entry.file_name().to_string_lossy()))
        .collect();
    streams.sort();
    streams
}

/// Offers every event of a cache file to the search; returns the newest id in it (`None`
/// for a missing or empty file).
pub(super) fn read(path: &Path, stream: &str, search: &mut Search) -> Result<Option<String>> {
    let Ok(file) = File::open(path) else {
        return Ok(None);
    };
    let failed = |source| CliError::Cache {
        path: path.to_owned(),
        source,
    };
    let mut last = None;
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(failed)?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<OwnedRecord>(&line) {
            Ok(record) => {
                let message = EventMessage::from(record);
                last = message.native_id.clone();
                if search.wants_stream(&message.api_name, Some(&message.event_name)) {
                    search.offer(&message, stream)?;
                }
            }
            Err(error) => tracing::warn!(
                "ignoring line {} of the cache file {}: {error}",
                number + 1,
                path.display()
            ),
        }
    }
    Ok(last)
}

/// The newest id in a cache file, reading only its tail.
pub(super) fn last_id(path: &Path) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let length = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(TAIL)))
        .ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    // The tail may start inside a character: such a first line is not a record anyway.
    String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .filter(|line| !line.trim().is_empty())
        .find_map(|line| serde_json::from_str::<OwnedRecord>(line).ok())
        .map(|record| record.native_id)
}

/// Appends events to one cache file; after a failed write it warns once and stops.
pub(super) struct Writer {
    file: Option<BufWriter<File>>,
}

impl Writer {
    /// Opens `path` for appending (or emptied first, with `truncate`), creating its
    /// directory; with no path, or if it cannot be opened (warned), writes nothing.
    pub(super) fn open(path: Option<&Path>, truncate: bool) -> Writer {
        let Some(path) = path else {
            return Writer { file: None };
        };
        let opened = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                let mut options = OpenOptions::new();
                options.create(true);
                if truncate {
                    options.write(true).truncate(true);
                } else {
                    options.append(true);
                }
                options.open(path)
            });
        match opened {
            Ok(file) => Writer {
                file: Some(BufWriter::new(file)),
            },
            Err(error) => {
                tracing::warn!("cannot write the cache {}: {error}", path.display());
                Writer { file: None }
            }
        }
    }

    /// Appends one event.
    pub(super) fn append(&mut self, message: &EventMessage) {
        if let Some(writer) = &mut self.file {
            let written = serde_json::to_writer(&mut *writer, &EventRecord::from(message))
                .map_err(std::io::Error::from)
                .and_then(|()| writer.write_all(b"\n"));
            if let Err(error) = written {
                tracing::warn!("cannot write the inspect cache: {error}; no longer caching");
                self.file = None;
            }
        }
    }

    /// Writes what is buffered.
    pub(super) fn flush(&mut self) {
        if let Some(writer) = &mut self.file {
            if let Err(error) = writer.flush() {
                tracing::warn!("cannot write the inspect cache: {error}");
                self.file = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_servers_have_plain_keys() {
        let name = file_name("odd/name%.*:stream");
        assert!(!name.contains('/'));
        assert_eq!(stream_of_file(&name).as_deref(), Some("odd/name%.*:stream"));
        assert_eq!(stream_of_file("notes.txt"), None);
        assert_eq!(
            server_key("redis://127.0.0.1:6379/0"),
            "redis___127_0_0_1_6379_0"
        );
    }

    #[test]
    fn the_newest_id_is_read_from_the_tail_and_bad_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s").join("auth.*:stream.jsonl");
        let mut writer = Writer::open(Some(&path), false);
        for n in 1..=3 {
            let mut message = EventMessage::new("auth", "x", 1, Default::default());
            message.native_id = Some(format!("{n}-0"));
            writer.append(&message);
        }
        writer.flush();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"not json\n\n").unwrap();
        assert_eq!(last_id(&path).as_deref(), Some("3-0"));
        assert_eq!(last_id(&dir.path().join("missing")), None);

        // Truncating starts the file over.
        let mut writer = Writer::open(Some(&path), true);
        writer.flush();
        assert_eq!(last_id(&path), None);
        assert_eq!(streams(dir.path(), "s"), vec!["auth.*:stream".to_owned()]);
    }
}

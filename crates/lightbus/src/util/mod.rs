//! Small helpers every layer uses: poison-tolerant locks, panic payloads as text, back-off.
//!
//! Above the error layer only: retrying knows which errors are transient.

mod backoff;

pub(crate) use backoff::{retry_transient, Backoff};

use std::any::Any;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, carrying on if a panicking thread poisoned it.
///
/// Every lock in this crate guards plain data (maps, lists, flags) whose invariants hold
/// between statements, so the data a panicking holder left is as good as any: refusing to
/// use it would turn one panic (already reported) into a stuck worker.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Reads `lock`, carrying on if it was poisoned (see [`lock`]).
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poison| poison.into_inner())
}

/// Writes `lock`, carrying on if it was poisoned (see [`lock`]).
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poison| poison.into_inner())
}

/// The message of a caught panic: its `&str` or `String` payload, or a placeholder.
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned())
}

/// The most characters of outside text (a payload, a decode error quoting one) a log line
/// or a dead-letter reason carries.
pub(crate) const EXCERPT_CHARS: usize = 512;

/// `text` made safe for a log line: control characters escaped (`\n`, `\u{1b}`, …), so
/// that data from the network cannot forge log lines or drive a terminal, and cut to
/// [`EXCERPT_CHARS`] characters with a note of the full size, so that a 10 MB payload never
/// becomes a 10 MB line.
pub(crate) fn excerpt(text: &str) -> String {
    if is_plain(text) {
        return text.to_owned();
    }
    escaped(text, text.len())
}

/// [`excerpt`] of text already owned: `text` itself when it needs neither escaping nor
/// cutting, as names of APIs and events do (a listener takes one per event handled: this
/// spares it an allocation and a walk over the characters).
pub(crate) fn excerpt_owned(text: String) -> String {
    if is_plain(&text) {
        text
    } else {
        escaped(&text, text.len())
    }
}

/// Whether `text` is short printable ASCII, which an excerpt leaves as it is.
fn is_plain(text: &str) -> bool {
    text.len() <= EXCERPT_CHARS && text.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// Bytes from the network as [`excerpt`] text: invalid UTF-8 shown as U+FFFD.
pub(crate) fn excerpt_bytes(bytes: &[u8]) -> String {
    // Four bytes per character at most: enough to fill an excerpt.
    let head = &bytes[..bytes.len().min(EXCERPT_CHARS * 4 + 4)];
    escaped(&String::from_utf8_lossy(head), bytes.len())
}

fn escaped(text: &str, total_bytes: usize) -> String {
    let mut out = String::with_capacity(text.len().min(EXCERPT_CHARS + 64));
    for (shown, c) in text.chars().enumerate() {
        if shown == EXCERPT_CHARS {
            out.push_str(&format!("… (cut: {total_bytes} bytes in all)"));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_escaped_and_capped() {
        assert_eq!(excerpt("plain"), "plain");
        assert_eq!(excerpt_owned("plain".to_owned()), "plain");
        assert_eq!(excerpt_owned("a\tb".to_owned()), "a\\tb");
        assert_eq!(excerpt("caf\u{e9}\u{85}"), "caf\u{e9}\\u{85}");
        assert_eq!(excerpt("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        let big = "x".repeat(10 * 1024 * 1024);
        let cut = excerpt(&big);
        assert!(cut.len() < EXCERPT_CHARS + 64, "{}", cut.len());
        assert!(cut.ends_with(&format!("(cut: {} bytes in all)", big.len())));
        assert_eq!(excerpt_bytes(b"\xff\x00ok"), "\u{fffd}\\u{0}ok");
        let cut = excerpt_bytes(&vec![b'y'; 5_000_000]);
        assert!(cut.len() < EXCERPT_CHARS + 64, "{}", cut.len());
    }

    #[test]
    fn panic_payloads_become_text() {
        let caught = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_text(caught.as_ref()), "boom 1");
        let caught = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_text(caught.as_ref()), "static");
        let caught = std::panic::catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(panic_text(caught.as_ref()), "a non-text panic payload");
    }

    #[test]
    fn poisoned_locks_are_still_usable() {
        let mutex = std::sync::Arc::new(Mutex::new(1));
        let poisoner = mutex.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.lock().unwrap();
            panic!("poison");
        })
        .join();
        assert!(mutex.is_poisoned());
        *lock(&mutex) += 1;
        assert_eq!(*lock(&mutex), 2);
    }
}

//! `dumpschema` and `dumpconfigschema`: the bus's API schemas and the configuration's JSON
//! Schema, as files or on standard output.
//!
//! `dumpschema` writes what this process sees: the APIs it registers, schemas it loaded from
//! files, and every schema on the bus, including those of APIs served by Python workers.
//! Its output is what `run --schema` and [`Bus::load_local_schema`] read back.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::client::Bus;
use crate::error::Result;
use crate::schema::{to_python_json, SchemaError};

/// `dumpschema`: write the bus's API schemas as JSON keyed by API name.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    lightbus dumpschema\n  \
    lightbus dumpschema --out bus-schema.json\n  \
    lightbus dumpschema --out schemas/          (one file per API)\n  \
    lightbus dumpschema --api auth")]
pub struct DumpSchemaArgs {
    /// File or directory to write to (a directory gets one `<api>.json` per API). A path
    /// ending in `/` is a directory, created if missing.
    /// Standard output when omitted.
    #[arg(long, short, value_name = "FILE_OR_DIR")]
    pub out: Option<PathBuf>,
    /// Only this API.
    #[arg(long, value_name = "NAME")]
    pub api: Option<String>,
}

/// `dumpconfigschema`: write the JSON Schema of the configuration file.
#[derive(Debug, Clone, Args)]
pub struct DumpConfigSchemaArgs {
    /// File to write to. Standard output when omitted.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Runs `dumpschema` on `bus` (with this process's APIs already registered).
pub async fn dump_schema(bus: &Bus, args: &DumpSchemaArgs) -> Result<()> {
    let schema = bus.schema();
    let mut all = schema.snapshot().await?;
    if let Some(name) = &args.api {
        let Some(only) = all.remove(name) else {
            let known: Vec<&String> = all.keys().collect();
            return Err(SchemaError::UnknownApi {
                api: name.clone(),
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            }
            .into());
        };
        all = [(name.clone(), only)].into_iter().collect();
    }
    match &args.out {
        None => print_out(&schema.dump(&all))?,
        Some(dir) if is_directory(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| SchemaError::Io {
                path: dir.display().to_string(),
                message: format!("cannot create the directory: {e}"),
            })?;
            for (name, api) in &all {
                let file = dir.join(format!("{}.json", file_safe(name)));
                let one = [(name.clone(), api.clone())].into_iter().collect();
                write(&file, &schema.dump(&one))?;
            }
            eprintln!(
                "schemas of {} API(s) written to {}",
                all.len(),
                dir.display()
            );
        }
        Some(file) => {
            write(file, &schema.dump(&all))?;
            eprintln!(
                "schemas of {} API(s) written to {}",
                all.len(),
                file.display()
            );
        }
    }
    Ok(())
}

/// Runs `dumpconfigschema`.
pub fn dump_config_schema(args: &DumpConfigSchemaArgs) -> Result<()> {
    let text = to_python_json(&crate::config::config_json_schema(), Some(2));
    match &args.out {
        None => print_out(&text)?,
        Some(file) => write(file, &format!("{text}\n"))?,
    }
    Ok(())
}

/// Writes `text` and a newline to standard output; a closed pipe (`| head`) is not an error.
fn print_out(text: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// An API name reduced to characters safe in a file name, as upstream names the files.
fn file_safe(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect()
}

/// Whether `--out` names a directory: one that exists, or a path ending in a separator.
fn is_directory(path: &Path) -> bool {
    path.is_dir()
        || path
            .as_os_str()
            .to_string_lossy()
            .ends_with(std::path::is_separator)
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| {
        SchemaError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_names_are_safe() {
        assert_eq!(super::file_safe("my_company.auth"), "my_company.auth");
        assert_eq!(super::file_safe("../x/y z"), "..xyz");
    }
}

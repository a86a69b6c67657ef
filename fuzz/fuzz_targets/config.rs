//! A configuration file, read as YAML and as JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lightbus::config::Config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = Config::from_str(&text, "fuzz.yaml");
    let _ = Config::from_str(&text, "fuzz.json");
});

//! A stream entry's fields: the input split at NUL bytes into key, value, key, value, …
#![no_main]
use libfuzzer_sys::fuzz_target;
use lightbus::EventMessage;

fuzz_target!(|data: &[u8]| {
    let parts: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    let fields = parts
        .chunks(2)
        .map(|pair| (pair[0], pair.get(1).copied().unwrap_or(b"")));
    if let Ok(Some(event)) = EventMessage::from_fields("1-0", fields) {
        let _ = event.to_fields();
    }
});

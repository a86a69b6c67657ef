//! A result blob as popped from a caller's result key: decoded and re-encoded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lightbus::message::ResultMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(result) = ResultMessage::from_blob(data) {
        let again = ResultMessage::from_blob(result.to_blob().as_bytes()).expect("re-encoded");
        assert_eq!(again, result);
    }
});

//! An RPC call blob as popped from an API's queue: decoded, salvaged, re-encoded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lightbus::message::RpcMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(call) = RpcMessage::from_blob(data) {
        let again = RpcMessage::from_blob(call.to_blob().as_bytes()).expect("re-encoded call");
        assert_eq!(again, call);
    }
    let _ = RpcMessage::salvage(data);
});

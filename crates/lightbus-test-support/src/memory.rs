//! Configurations for the in-process memory transports: no redis-server needed.

use std::sync::atomic::{AtomicUsize, Ordering};

use lightbus::config::{Config, EventTransportSelector};

/// A configuration with every transport (the schema's included) in memory, in a namespace
/// of its own, so buses of one test never see another test's messages. `extra_event_yaml`
/// is appended to the memory event transport's settings (indented by 8 spaces), e.g.
/// `"        max_stream_length: 5\n"`. Calls time out after 2 seconds.
pub fn memory_config(extra_event_yaml: &str) -> Config {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let namespace = format!(
        "test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let yaml = format!(
        "bus:\n  schema:\n    transport: {{memory: {{namespace: {namespace}}}}}\n\
         apis:\n  default:\n    rpc_timeout: 2\n\
         \x20   rpc_transport: {{memory: {{namespace: {namespace}}}}}\n\
         \x20   result_transport: {{debug: {{namespace: {namespace}}}}}\n\
         \x20   event_transport:\n      memory:\n        namespace: {namespace}\n{extra_event_yaml}"
    );
    Config::from_str(&yaml, "memory.yaml").expect("a valid memory configuration")
}

/// The memory namespace of `config`'s event transport (as made by [`memory_config`]).
pub fn namespace_of(config: &Config) -> String {
    match &config.api("x").event_transport {
        EventTransportSelector::Memory(memory) => memory.namespace.clone(),
        other => panic!("expected the memory event transport, got {other:?}"),
    }
}

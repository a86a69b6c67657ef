//! Which transport carries each role, and their settings (`rpc_transport: {redis: {…}}`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::values::{
    blob_deserializer, blob_serializer, by_field_deserializer, by_field_serializer, redis_url,
    valid, zero_means_none, Count, Delay, Seconds, WholeSeconds,
};

fn default_url() -> String {
    super::DEFAULT_REDIS_URL.to_owned()
}

/// The default `max_message_bytes` of the Redis transports: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

fn is_default_max_message_bytes(count: &Count) -> bool {
    count.get() == DEFAULT_MAX_MESSAGE_BYTES
}

/// `rpc_transport: {redis: {...}}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedisRpcConfig {
    /// The Redis server, e.g. `redis://127.0.0.1:6379/0`.
    #[serde(default = "default_url", deserialize_with = "redis_url")]
    pub url: String,
    /// Accepted for compatibility with upstream's files; connections here are multiplexed
    /// (one per server and role), so pool settings are not used.
    pub connection_parameters: BTreeMap<String, Value>,
    /// The most calls a worker takes from one queue at once (default 10). A worker never
    /// takes more calls than it has free execution slots (`max_concurrency`).
    pub batch_size: Count,
    /// Upstream's serializer class; only the default is supported.
    #[serde(deserialize_with = "blob_serializer")]
    pub serializer: Option<String>,
    /// Upstream's deserializer class; only the default is supported.
    #[serde(deserialize_with = "blob_deserializer")]
    pub deserializer: Option<String>,
    /// Seconds a call may wait in the queue before it expires unexecuted.
    pub rpc_timeout: Seconds,
    /// Seconds before retrying to send a call after a connection failure (accepted without
    /// effect, as upstream reads and drops it).
    pub rpc_retry_delay: Delay,
    /// The longest wait between a worker's retries after a connection failure.
    pub consumption_restart_delay: Delay,
    /// The largest call blob accepted, in bytes, on sending and on receiving (default
    /// 64 MiB). Rust-only: leave it out of files shared with Python processes.
    #[serde(skip_serializing_if = "is_default_max_message_bytes")]
    pub max_message_bytes: Count,
}

impl Default for RedisRpcConfig {
    fn default() -> Self {
        RedisRpcConfig {
            url: default_url(),
            connection_parameters: BTreeMap::new(),
            batch_size: valid!(Count, 10),
            serializer: None,
            deserializer: None,
            rpc_timeout: valid!(Seconds, 5.0),
            rpc_retry_delay: valid!(Delay, 1.0),
            consumption_restart_delay: valid!(Delay, 5.0),
            max_message_bytes: valid!(Count, DEFAULT_MAX_MESSAGE_BYTES),
        }
    }
}

/// `result_transport: {redis: {...}}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedisResultConfig {
    /// The Redis server, e.g. `redis://127.0.0.1:6379/0`.
    #[serde(default = "default_url", deserialize_with = "redis_url")]
    pub url: String,
    /// Accepted for compatibility with upstream's files; connections here are multiplexed
    /// (one per server and role), so pool settings are not used.
    pub connection_parameters: BTreeMap<String, Value>,
    /// Upstream's serializer class; only the default is supported.
    #[serde(deserialize_with = "blob_serializer")]
    pub serializer: Option<String>,
    /// Upstream's deserializer class; only the default is supported.
    #[serde(deserialize_with = "blob_deserializer")]
    pub deserializer: Option<String>,
    /// Seconds a result waits for its caller before Redis expires it.
    pub result_ttl: WholeSeconds,
    /// Accepted for compatibility; the caller's wait is bounded by the API's `rpc_timeout`.
    pub rpc_timeout: Seconds,
    /// The largest result blob accepted, in bytes, on sending and on receiving (default
    /// 64 MiB). Rust-only: leave it out of files shared with Python processes.
    #[serde(skip_serializing_if = "is_default_max_message_bytes")]
    pub max_message_bytes: Count,
}

impl Default for RedisResultConfig {
    fn default() -> Self {
        RedisResultConfig {
            url: default_url(),
            connection_parameters: BTreeMap::new(),
            serializer: None,
            deserializer: None,
            result_ttl: valid!(WholeSeconds, 60),
            rpc_timeout: valid!(Seconds, 5.0),
            max_message_bytes: valid!(Count, DEFAULT_MAX_MESSAGE_BYTES),
        }
    }
}

/// How events are spread over streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamUse {
    /// One stream per API: `{api}.*:stream`.
    #[default]
    PerApi,
    /// One stream per event: `{api}.{event}:stream`.
    PerEvent,
}

/// `event_transport: {redis: {...}}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedisEventConfig {
    /// The Redis server, e.g. `redis://127.0.0.1:6379/0`.
    #[serde(default = "default_url", deserialize_with = "redis_url")]
    pub url: String,
    /// Accepted for compatibility with upstream's files; connections here are multiplexed
    /// (one per server and role), so pool settings are not used.
    pub connection_parameters: BTreeMap<String, Value>,
    /// Overrides the service name in consumer group names.
    pub service_name: Option<String>,
    /// Overrides the consumer name (default: the process name).
    pub consumer_name: Option<String>,
    /// How many entries a listener reads at once (the `COUNT` of its stream reads).
    ///
    /// Default 100, where upstream's is 10: a listener working through a backlog pays one
    /// read round trip per this many events, and at 10 the reads were what held it back
    /// (`lightbus bench listen`, 100k backlog, one private Redis, 3 interleaved rounds:
    /// 10 → 49–55k events/s, 100 → 78–85k/s, 1000 → 75–83k/s). The price is that one
    /// process holds up to this many events read but not yet handled, which other
    /// processes of the service get only if it dies (after `acknowledgement_timeout`);
    /// set it lower for slow handlers spread over many processes. A value in a
    /// configuration file is used as given, as the most a read asks for: a listener's
    /// first read asks for 1, and the count doubles after each full read, up to this, as
    /// long as a read brings less than about 8 MiB (after one that brought more, the next
    /// asks for proportionally fewer), so large entries do not make reads huge.
    pub batch_size: Count,
    /// How many pending entries are inspected per reclaim (default `batch_size * 10`).
    pub reclaim_batch_size: Option<Count>,
    /// Upstream's serializer class; only the default is supported.
    #[serde(deserialize_with = "by_field_serializer")]
    pub serializer: Option<String>,
    /// Upstream's deserializer class; only the default is supported.
    #[serde(deserialize_with = "by_field_deserializer")]
    pub deserializer: Option<String>,
    /// Seconds an entry may stay unacknowledged, once a handler has it, before another
    /// consumer reclaims it. Entries read ahead and still waiting for a handler do not age:
    /// their consumer keeps them from timing out (see the protocol document, §4.4).
    pub acknowledgement_timeout: Seconds,
    /// Seconds between reclaim passes (default `acknowledgement_timeout`).
    pub reclaim_interval: Option<Seconds>,
    /// Approximate cap on stream length (`MAXLEN ~`); `null` or `0` for no cap (as upstream).
    #[serde(deserialize_with = "zero_means_none")]
    pub max_stream_length: Option<Count>,
    /// One stream per API or per event.
    pub stream_use: StreamUse,
    /// The longest wait between a listener's retries after a connection failure.
    pub consumption_restart_delay: Delay,
    /// Seconds after which an idle consumer is removed from its group; `0` never (as
    /// upstream).
    pub consumer_ttl: u64,
    /// The largest event (the total of its stream entry's fields) accepted, in bytes, on sending and on receiving (default
    /// 64 MiB). Rust-only: leave it out of files shared with Python processes.
    #[serde(skip_serializing_if = "is_default_max_message_bytes")]
    pub max_message_bytes: Count,
}

impl Default for RedisEventConfig {
    fn default() -> Self {
        RedisEventConfig {
            url: default_url(),
            connection_parameters: BTreeMap::new(),
            service_name: None,
            consumer_name: None,
            batch_size: valid!(Count, 100),
            reclaim_batch_size: None,
            serializer: None,
            deserializer: None,
            acknowledgement_timeout: valid!(Seconds, 60.0),
            reclaim_interval: None,
            max_stream_length: Some(valid!(Count, 100_000)),
            stream_use: StreamUse::PerApi,
            consumption_restart_delay: valid!(Delay, 5.0),
            consumer_ttl: 2_592_000,
            max_message_bytes: valid!(Count, DEFAULT_MAX_MESSAGE_BYTES),
        }
    }
}

/// `schema.transport: {redis: {...}}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSchemaConfig {
    /// The Redis server, e.g. `redis://127.0.0.1:6379/0`.
    #[serde(default = "default_url", deserialize_with = "redis_url")]
    pub url: String,
    /// Accepted for compatibility with upstream's files; connections here are multiplexed
    /// (one per server and role), so pool settings are not used.
    pub connection_parameters: BTreeMap<String, Value>,
}

/// `memory: {...}` (or upstream's name, `debug`) for RPCs, results and schemas: the
/// process's in-memory hub (see [`crate::transport::memory`]).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// The hub: buses of one process naming the same namespace share messages.
    pub namespace: String,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            namespace: super::DEFAULT_MEMORY_NAMESPACE.to_owned(),
        }
    }
}

/// `event_transport: {memory: {...}}` (or `debug`): events in the process's in-memory hub.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryEventConfig {
    /// The hub: buses of one process naming the same namespace share events.
    pub namespace: String,
    /// How many events a listener takes at once.
    pub batch_size: Count,
    /// Seconds an event may stay unacknowledged before another consumer of the group takes
    /// it over.
    pub acknowledgement_timeout: Seconds,
    /// How many events each API's log keeps; `null` for no limit.
    pub max_stream_length: Option<Count>,
}

impl Default for MemoryEventConfig {
    fn default() -> Self {
        MemoryEventConfig {
            namespace: super::DEFAULT_MEMORY_NAMESPACE.to_owned(),
            batch_size: valid!(Count, 10),
            acknowledgement_timeout: valid!(Seconds, 60.0),
            max_stream_length: Some(valid!(Count, 100_000)),
        }
    }
}

macro_rules! transport_selector {
    (
        $(#[$doc:meta])* $name:ident, $redis:ty, $nullable:literal, $memory:ty,
        $memory_nullable:literal
    ) => {
        $(#[$doc])*
        ///
        /// Written as a one-key map naming the transport, e.g. `redis: {url: "redis://…"}` or
        /// `memory: {}` (upstream's `debug: {}` is read as `memory`).
        #[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
        #[serde(deny_unknown_fields, rename_all = "snake_case")]
        pub enum $name {
            /// Redis.
            Redis(
                #[serde(default, deserialize_with = "null_as_default")]
                #[schemars(with = $nullable)]
                $redis,
            ),
            /// The process's in-memory hub (no Redis; nothing leaves the process).
            #[serde(alias = "debug")]
            Memory(
                #[serde(default, deserialize_with = "null_as_default")]
                #[schemars(with = $memory_nullable)]
                $memory,
            ),
        }

        impl Default for $name {
            fn default() -> Self {
                $name::Redis(Default::default())
            }
        }

        impl $name {
            /// The Redis settings, if Redis is selected.
            pub fn redis(&self) -> Option<&$redis> {
                match self {
                    $name::Redis(redis) => Some(redis),
                    $name::Memory(_) => None,
                }
            }
        }
    };
}

impl Default for RedisSchemaConfig {
    fn default() -> Self {
        RedisSchemaConfig {
            url: default_url(),
            connection_parameters: BTreeMap::new(),
        }
    }
}

transport_selector!(
    /// Which transport carries an API's RPC calls.
    RpcTransportSelector,
    RedisRpcConfig,
    "Option<RedisRpcConfig>",
    MemoryConfig,
    "Option<MemoryConfig>"
);
transport_selector!(
    /// Which transport carries an API's RPC results.
    ResultTransportSelector,
    RedisResultConfig,
    "Option<RedisResultConfig>",
    MemoryConfig,
    "Option<MemoryConfig>"
);
transport_selector!(
    /// Which transport carries an API's events.
    EventTransportSelector,
    RedisEventConfig,
    "Option<RedisEventConfig>",
    MemoryEventConfig,
    "Option<MemoryEventConfig>"
);
transport_selector!(
    /// Where API schemas are shared.
    SchemaTransportSelector,
    RedisSchemaConfig,
    "Option<RedisSchemaConfig>",
    MemoryConfig,
    "Option<MemoryConfig>"
);

/// `redis:` with no value (YAML null) means "all defaults", as upstream.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

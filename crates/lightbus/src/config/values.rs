//! Validated values of the configuration file: each type accepts only what makes sense for
//! it, so a configuration that parsed is a valid one, and its users get durations and
//! counts rather than numbers to check again.
//!
//! A value that does not fit is refused while parsing, with a message naming what was
//! expected; the loader adds the file and the key path.

use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A positive number of seconds, as written in the file (`rpc_timeout: 2.5`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Seconds(Duration);

/// Zero or more seconds: a delay (`consumption_restart_delay: 0`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Delay(Duration);

/// A whole number of seconds, at least 1 (`result_ttl: 60`), as Redis expiries take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WholeSeconds(u64);

/// A count of at least 1 (`batch_size: 10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Count(NonZeroUsize);

impl Seconds {
    /// `value` seconds, if it is a positive finite number.
    pub fn new(value: f64) -> Option<Self> {
        (value.is_finite() && value > 0.0)
            .then(|| Duration::try_from_secs_f64(value).ok())
            .flatten()
            .map(Seconds)
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl Delay {
    /// `value` seconds, if it is a finite number, zero or more.
    pub fn new(value: f64) -> Option<Self> {
        (value.is_finite() && value >= 0.0)
            .then(|| Duration::try_from_secs_f64(value).ok())
            .flatten()
            .map(Delay)
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl WholeSeconds {
    /// `value` seconds, if at least 1.
    pub fn new(value: u64) -> Option<Self> {
        (value >= 1).then_some(WholeSeconds(value))
    }

    /// The number of seconds.
    pub fn secs(self) -> u64 {
        self.0
    }

    /// The duration.
    pub fn get(self) -> Duration {
        Duration::from_secs(self.0)
    }
}

impl Count {
    /// `value`, if at least 1.
    pub fn new(value: usize) -> Option<Self> {
        NonZeroUsize::new(value).map(Count)
    }

    /// The count.
    pub fn get(self) -> usize {
        self.0.get()
    }
}

/// Builds a constant of a validated type from a literal known to be valid.
macro_rules! valid {
    ($type:ident, $value:expr) => {
        match $type::new($value) {
            Some(valid) => valid,
            None => unreachable!(),
        }
    };
}
pub(crate) use valid;

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const EXPECTED: &str = "expected a positive number of seconds";
        let value = f64::deserialize(deserializer)?;
        Seconds::new(value).ok_or_else(|| serde::de::Error::custom(EXPECTED))
    }
}

impl<'de> Deserialize<'de> for Delay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const EXPECTED: &str = "expected a number of seconds, zero or more";
        let value = f64::deserialize(deserializer)?;
        Delay::new(value).ok_or_else(|| serde::de::Error::custom(EXPECTED))
    }
}

impl<'de> Deserialize<'de> for WholeSeconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const EXPECTED: &str = "expected a whole number of seconds, at least 1";
        let value = serde_json::Value::deserialize(deserializer)?;
        value
            .as_u64()
            .and_then(WholeSeconds::new)
            .ok_or_else(|| serde::de::Error::custom(format!("{EXPECTED}, found {value}")))
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .and_then(Count::new)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "expected a whole number, at least 1, found {value}"
                ))
            })
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0.as_secs_f64())
    }
}

impl Serialize for Delay {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0.as_secs_f64())
    }
}

impl Serialize for WholeSeconds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl Serialize for Count {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0.get() as u64)
    }
}

/// Compares with a number of seconds as written in a file (`config.rpc_timeout == 2.5`).
impl PartialEq<f64> for Seconds {
    fn eq(&self, seconds: &f64) -> bool {
        self.0.as_secs_f64() == *seconds
    }
}

/// Compares with a number of seconds as written in a file.
impl PartialEq<f64> for Delay {
    fn eq(&self, seconds: &f64) -> bool {
        self.0.as_secs_f64() == *seconds
    }
}

/// Compares with a number of seconds as written in a file.
impl PartialEq<u64> for WholeSeconds {
    fn eq(&self, seconds: &u64) -> bool {
        self.0 == *seconds
    }
}

/// Compares with a count as written in a file.
impl PartialEq<usize> for Count {
    fn eq(&self, count: &usize) -> bool {
        self.0.get() == *count
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} s", self.0.as_secs_f64())
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl JsonSchema for Seconds {
    fn schema_name() -> Cow<'static, str> {
        "Seconds".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "number", "exclusiveMinimum": 0, "description": "Seconds, more than zero."})
    }
}

impl JsonSchema for Delay {
    fn schema_name() -> Cow<'static, str> {
        "Delay".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "number", "minimum": 0, "description": "Seconds, zero or more."})
    }
}

impl JsonSchema for WholeSeconds {
    fn schema_name() -> Cow<'static, str> {
        "WholeSeconds".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "integer", "minimum": 1, "description": "Whole seconds, at least 1."})
    }
}

impl JsonSchema for Count {
    fn schema_name() -> Cow<'static, str> {
        "Count".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "integer", "minimum": 1})
    }
}

/// A count where `0` or `null` means "none" (`max_stream_length: 0`: no cap, as upstream).
pub(crate) fn zero_means_none<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Count>, D::Error> {
    let value = Option::<u64>::deserialize(deserializer)?;
    Ok(value
        .and_then(|n| usize::try_from(n).ok())
        .and_then(Count::new))
}

/// `service_name` / `process_name`: a non-empty name, placeholders allowed.
pub(crate) fn non_empty_name<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let name = Option::<String>::deserialize(deserializer)?;
    match name {
        Some(name) if name.trim().is_empty() => Err(serde::de::Error::custom(
            "expected a non-empty name (placeholders such as {friendly} are allowed)",
        )),
        other => Ok(other),
    }
}

/// A Redis URL the client accepts (`redis://`, `rediss://`, `unix://`,
/// `redis+sentinel://`/`rediss+sentinel://` or `redis+cluster://`/`rediss+cluster://`),
/// checked without connecting; a raw password (with `@`, `/`, `#`, …) is accepted as
/// written.
pub(crate) fn redis_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    use redis::IntoConnectionInfo;
    let url = String::deserialize(deserializer)?;
    let malformed = super::sentinel_url(&url)
        .map(|sentinel| sentinel.err())
        .or_else(|| super::cluster_url(&url).map(|cluster| cluster.err()));
    if let Some(malformed) = malformed {
        return match malformed {
            None => Ok(url),
            Some(why) => Err(serde::de::Error::custom(format!(
                "`{}`: {why}",
                super::redact_url(&url)
            ))),
        };
    }
    match super::client_url(&url).as_str().into_connection_info() {
        Ok(_) => Ok(url),
        Err(error) => Err(serde::de::Error::custom(format!(
            "expected a Redis URL such as `redis://127.0.0.1:6379/0`, found `{}` ({error})",
            super::redact_url(&url)
        ))),
    }
}

/// Upstream's serializer and deserializer class names: only the standard ones are
/// supported, so a value is either absent or the standard class for its transport.
macro_rules! standard_class {
    ($name:ident, $class:literal) => {
        #[doc = concat!("Accepts only `", $class, "` (or nothing).")]
        pub(crate) fn $name<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<String>, D::Error> {
            let class = Option::<String>::deserialize(deserializer)?;
            match class {
                Some(class) if class != $class => Err(serde::de::Error::custom(concat!(
                    "only the standard encoding is supported: remove the key or set it to `",
                    $class,
                    "`"
                ))),
                other => Ok(other),
            }
        }
    };
}
standard_class!(
    blob_serializer,
    "lightbus.serializers.BlobMessageSerializer"
);
standard_class!(
    blob_deserializer,
    "lightbus.serializers.BlobMessageDeserializer"
);
standard_class!(
    by_field_serializer,
    "lightbus.serializers.ByFieldMessageSerializer"
);
standard_class!(
    by_field_deserializer,
    "lightbus.serializers.ByFieldMessageDeserializer"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_counts_refuse_what_makes_no_sense() {
        assert_eq!(
            Seconds::new(2.5).map(Seconds::get),
            Some(Duration::from_millis(2500))
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Seconds::new(bad).is_none(), "{bad}");
        }
        assert_eq!(Delay::new(0.0).map(Delay::get), Some(Duration::ZERO));
        assert!(Delay::new(-0.5).is_none());
        assert!(WholeSeconds::new(0).is_none());
        assert_eq!(WholeSeconds::new(60).map(WholeSeconds::secs), Some(60));
        assert!(Count::new(0).is_none());
        assert_eq!(Count::new(3).map(Count::get), Some(3));
    }

    #[test]
    fn they_read_and_write_plain_numbers() {
        let seconds: Seconds = serde_json::from_str("3").expect("an integer is seconds");
        assert_eq!(seconds.get(), Duration::from_secs(3));
        assert_eq!(serde_json::to_string(&seconds).expect("encodes"), "3.0");
        let error = serde_json::from_str::<Seconds>("0")
            .unwrap_err()
            .to_string();
        assert!(error.contains("positive number of seconds"), "{error}");
        let error = serde_json::from_str::<Count>("\"ten\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("at least 1"), "{error}");
    }
}

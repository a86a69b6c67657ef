//! Values on the wire exactly as the Python peer writes them, guided by a type's schema.
//!
//! serde writes some Rust types differently from how Python Lightbus writes the Python type
//! they stand for: chrono writes `2024-05-01T12:34:56.500Z` (or 9 fraction digits for
//! `Utc::now()`), Python's `isoformat()` writes `2024-05-01T12:34:56.500000+00:00`, which is
//! also all Python 3.10 can parse. In the other direction Python casts `1.0` to an `int`
//! parameter, where serde refuses a float for `i64`.
//!
//! # Why here, and guided by the schema
//!
//! The normalisation works on the encoded JSON value, at the places the type's JSON Schema
//! marks: `format: date-time` / `time` (written as Python writes them), the peer's decimal
//! `pattern` (a JSON number there becomes decimal text), and `type: integer` (an integral
//! float such as `1.0` or `1e3` is read as the integer). Because the schema says where, a
//! user's own struct with a `DateTime<Utc>` field deep inside is covered, plain `String`s that
//! merely look like dates are never touched, and users keep chrono's, rust_decimal's and
//! uuid's own serde implementations (no `#[serde(with)]` on every field). The alternatives
//! were worse: serde `with` helpers applied by the macro reach only parameters whose written
//! type is literally a chrono type, and wrapper types would leak into every signature.
//!
//! A [`ValuePlan`] is compiled once per parameter, result or event field (the generated code
//! keeps it in a static [`PlanCell`]) and holds only the paths that need work. A type without
//! such places (strings, booleans, most structs) has an empty plan, and encoding and decoding
//! it costs nothing beyond serde's own work: the hot path checks one `Option`.

use std::sync::OnceLock;

use chrono::{DateTime, FixedOffset, NaiveDateTime, NaiveTime, Offset, Timelike};
use serde_json::{Map, Number, Value};

/// Python's `Decimal` schema pattern (`hints_to_schema`), which Rust decimals are given too.
pub(crate) const PEER_DECIMAL_PATTERN: &str = r"^-?\d+(\.\d+)?$";

/// What to do at one place of a value.
mod action {
    /// Outgoing: a date-time text becomes Python's `datetime.isoformat()`.
    pub(super) const DATE_TIME: u8 = 1;
    /// Outgoing: a time text becomes Python's `time.isoformat()`.
    pub(super) const TIME: u8 = 2;
    /// Outgoing: a number where the schema wants decimal text becomes that text.
    pub(super) const DECIMAL: u8 = 4;
    /// Incoming: an integral float (`1.0`, `1e3`) becomes the integer, as Python's `int()`.
    pub(super) const INTEGER: u8 = 8;
    /// The actions applied to values being sent.
    pub(super) const OUTGOING: u8 = DATE_TIME | TIME | DECIMAL;
    /// The actions applied to values received.
    pub(super) const INCOMING: u8 = INTEGER;
}

/// Where in a value something must be done, pruned to the paths that lead there.
#[derive(Debug, Default)]
struct Node {
    actions: u8,
    properties: Vec<(String, Node)>,
    /// Applies to object members not named in `properties`.
    additional: Option<Box<Node>>,
    /// Applies to every array item.
    items: Option<Box<Node>>,
    /// Applies to the array item at each index (tuples).
    tuple: Vec<(usize, Node)>,
    /// `anyOf` / `oneOf` / `allOf` branches: each is applied, guarded by the value's kind.
    branches: Vec<Node>,
}

/// How values of one type are turned into the peer's form before sending, and read back
/// from the forms the peer writes, compiled from the type's JSON Schema.
///
/// ```
/// use lightbus::schema::ValuePlan;
/// use serde_json::json;
///
/// let plan = ValuePlan::new(&json!({"type": "object", "properties": {
///     "when": {"type": "string", "format": "date-time"},
///     "count": {"type": "integer"}}}));
/// let mut out = json!({"when": "2024-05-01T12:34:56.5Z", "count": 3});
/// plan.to_peer(&mut out);
/// assert_eq!(out["when"], "2024-05-01T12:34:56.500000+00:00");
///
/// let mut incoming: serde_json::Value = serde_json::from_str(r#"{"count": 2.0}"#).unwrap();
/// plan.from_peer(&mut incoming);
/// assert_eq!(incoming["count"].to_string(), "2");
/// ```
#[derive(Debug, Default)]
pub struct ValuePlan {
    outgoing: Option<Node>,
    incoming: Option<Node>,
}

impl ValuePlan {
    /// The plan for values described by `schema` (a schema as [`schema_of`](super::schema_of)
    /// makes them: references inlined).
    pub fn new(schema: &Value) -> ValuePlan {
        ValuePlan {
            outgoing: compile(schema, action::OUTGOING),
            incoming: compile(schema, action::INCOMING),
        }
    }

    /// True when [`to_peer`](Self::to_peer) never changes anything, so encoding may skip it.
    pub fn is_identity_outgoing(&self) -> bool {
        self.outgoing.is_none()
    }

    /// True when [`from_peer`](Self::from_peer) never changes anything.
    pub fn is_identity_incoming(&self) -> bool {
        self.incoming.is_none()
    }

    /// Rewrites `value` (as serde encoded it) into the text the peer writes for the same data.
    pub fn to_peer(&self, value: &mut Value) {
        if let Some(node) = &self.outgoing {
            apply(node, value);
        }
    }

    /// Rewrites `value` (as the peer wrote it) into a form the Rust type's serde reads.
    pub fn from_peer(&self, value: &mut Value) {
        if let Some(node) = &self.incoming {
            apply(node, value);
        }
    }
}

/// A [`ValuePlan`] compiled on first use and kept: generated code has one `static` per
/// parameter, result and event field.
#[derive(Debug, Default)]
pub struct PlanCell(OnceLock<ValuePlan>);

impl PlanCell {
    /// An empty cell, for a `static`.
    pub const fn new() -> PlanCell {
        PlanCell(OnceLock::new())
    }

    /// The plan, compiled from `schema()` the first time.
    pub fn get(&self, schema: impl FnOnce() -> Value) -> &ValuePlan {
        self.0.get_or_init(|| ValuePlan::new(&schema()))
    }
}

fn own_actions(schema: &Map<String, Value>) -> u8 {
    let mut actions = 0;
    match schema.get("format").and_then(Value::as_str) {
        Some("date-time") => actions |= action::DATE_TIME,
        Some("time") => actions |= action::TIME,
        _ => {}
    }
    if schema.get("pattern").and_then(Value::as_str) == Some(PEER_DECIMAL_PATTERN) {
        actions |= action::DECIMAL;
    }
    let integer = match schema.get("type") {
        Some(Value::String(kind)) => kind == "integer",
        Some(Value::Array(kinds)) => kinds.iter().any(|kind| kind == "integer"),
        _ => false,
    };
    if integer {
        actions |= action::INTEGER;
    }
    actions
}

/// The node for `schema` keeping only the actions in `mask`; `None` when nothing is to be done.
fn compile(schema: &Value, mask: u8) -> Option<Node> {
    let Value::Object(map) = schema else {
        return None;
    };
    let mut node = Node {
        actions: own_actions(map) & mask,
        ..Node::default()
    };
    if let Some(Value::Object(properties)) = map.get("properties") {
        node.properties = properties
            .iter()
            .filter_map(|(name, schema)| Some((name.clone(), compile(schema, mask)?)))
            .collect();
    }
    node.additional = map
        .get("additionalProperties")
        .and_then(|schema| compile(schema, mask))
        .map(Box::new);
    match map.get("items") {
        Some(Value::Array(items)) => {
            node.tuple = items
                .iter()
                .enumerate()
                .filter_map(|(index, schema)| Some((index, compile(schema, mask)?)))
                .collect();
        }
        Some(items) => node.items = compile(items, mask).map(Box::new),
        None => {}
    }
    for keyword in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = map.get(keyword) {
            node.branches
                .extend(branches.iter().filter_map(|schema| compile(schema, mask)));
        }
    }
    let empty = node.actions == 0
        && node.properties.is_empty()
        && node.additional.is_none()
        && node.items.is_none()
        && node.tuple.is_empty()
        && node.branches.is_empty();
    (!empty).then_some(node)
}

fn apply(node: &Node, value: &mut Value) {
    if node.actions != 0 {
        act(node.actions, value);
    }
    match value {
        Value::Object(map) => {
            for (name, child) in &node.properties {
                if let Some(member) = map.get_mut(name) {
                    apply(child, member);
                }
            }
            if let Some(additional) = &node.additional {
                for (name, member) in map.iter_mut() {
                    if !node.properties.iter().any(|(known, _)| known == name) {
                        apply(additional, member);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(each) = &node.items {
                items.iter_mut().for_each(|item| apply(each, item));
            }
            for (index, child) in &node.tuple {
                if let Some(item) = items.get_mut(*index) {
                    apply(child, item);
                }
            }
        }
        _ => {}
    }
    for branch in &node.branches {
        apply(branch, value);
    }
}

fn act(actions: u8, value: &mut Value) {
    let replacement = match value {
        Value::String(text) if actions & action::DATE_TIME != 0 => python_datetime(text),
        Value::String(text) if actions & action::TIME != 0 => python_time(text),
        Value::Number(number) if actions & action::DECIMAL != 0 => Some(number.to_string()),
        Value::Number(number) if actions & action::INTEGER != 0 => {
            if let Some(integer) = integral_text(&number.to_string()) {
                if let Ok(integer) = integer.parse::<Number>() {
                    *number = integer;
                }
            }
            None
        }
        _ => None,
    };
    if let Some(text) = replacement {
        *value = Value::String(text);
    }
}

/// `text` (RFC 3339 with an offset, or a naive ISO 8601 date-time) as Python's
/// `datetime.isoformat()` writes the same value: seconds always, microseconds only when not
/// zero and then all six digits (nanoseconds are cut, as Python has none), the offset as
/// `+HH:MM` (`+00:00` for UTC, never `Z`). `None` when `text` is no such date-time, or one
/// Python cannot hold (a leap second, a year outside 1..=9999): it is then left as it is.
pub(crate) fn python_datetime(text: &str) -> Option<String> {
    if let Ok(aware) = DateTime::<FixedOffset>::parse_from_rfc3339(text) {
        let mut out = python_naive_datetime(&aware.naive_local())?;
        out.push_str(&python_offset(aware.offset()));
        return (out != text).then_some(out);
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let out = python_naive_datetime(&naive)?;
    (out != text).then_some(out)
}

/// `text` (`HH:MM:SS[.fraction]`) as Python's `time.isoformat()` writes it.
pub(crate) fn python_time(text: &str) -> Option<String> {
    let time = NaiveTime::parse_from_str(text, "%H:%M:%S%.f").ok()?;
    let out = python_naive_time(&time)?;
    (out != text).then_some(out)
}

fn python_naive_datetime(value: &NaiveDateTime) -> Option<String> {
    use chrono::Datelike;
    if !(1..=9999).contains(&value.year()) {
        return None;
    }
    let time = python_naive_time(&value.time())?;
    Some(format!("{}T{time}", value.format("%Y-%m-%d")))
}

fn python_naive_time(value: &NaiveTime) -> Option<String> {
    let nanos = value.nanosecond();
    if nanos >= 1_000_000_000 {
        return None; // a leap second: Python's time has none
    }
    let mut out = value.format("%H:%M:%S").to_string();
    let micros = nanos / 1_000;
    if micros != 0 {
        out.push_str(&format!(".{micros:06}"));
    }
    Some(out)
}

fn python_offset(offset: &FixedOffset) -> String {
    let seconds = offset.fix().local_minus_utc();
    let sign = if seconds < 0 { '-' } else { '+' };
    let seconds = seconds.unsigned_abs();
    let mut out = format!("{sign}{:02}:{:02}", seconds / 3600, seconds / 60 % 60);
    if !seconds.is_multiple_of(60) {
        out.push_str(&format!(":{:02}", seconds % 60));
    }
    out
}

/// The integer a JSON number's text stands for, when that text is not written as an
/// integer but its value is one (`1.0` → `1`, `-2.50e1` → `-25`, `1e3` → `1000`), computed
/// on the digits so no precision is lost. `None` for integers as written, fractions, and
/// numbers whose integer would be absurdly long (`1e999`, which is Python's `Infinity`).
pub(crate) fn integral_text(text: &str) -> Option<String> {
    if !text.contains(['.', 'e', 'E']) {
        return None;
    }
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = [whole, fraction].concat();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The decimal point sits after `point` digits.
    let point = whole.len() as i64 + exponent;
    const LONGEST: i64 = 64;
    if point > LONGEST {
        return None;
    }
    let integer = if point <= 0 {
        if digits.bytes().any(|b| b != b'0') {
            return None;
        }
        String::from("0")
    } else if point as usize >= digits.len() {
        let zeros = point as usize - digits.len();
        format!("{digits}{}", "0".repeat(zeros))
    } else {
        let (integer, rest) = digits.split_at(point as usize);
        if rest.bytes().any(|b| b != b'0') {
            return None;
        }
        integer.to_owned()
    };
    let integer = integer.trim_start_matches('0');
    Some(match (integer.is_empty(), negative) {
        (true, _) => "0".to_owned(),
        (false, true) => format!("-{integer}"),
        (false, false) => integer.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn datetimes_are_written_as_pythons_isoformat() {
        let cases = [
            // chrono's forms → what Python writes for the same value
            (
                "2024-05-01T12:34:56.789012Z",
                "2024-05-01T12:34:56.789012+00:00",
            ),
            (
                "2024-05-01T12:34:56.500Z",
                "2024-05-01T12:34:56.500000+00:00",
            ),
            (
                "2024-05-01T12:34:56.123456789Z",
                "2024-05-01T12:34:56.123456+00:00",
            ),
            ("2024-05-01T12:34:56Z", "2024-05-01T12:34:56+00:00"),
            ("2024-05-01T12:34:56.000Z", "2024-05-01T12:34:56+00:00"),
            (
                "2024-05-01T12:34:56.25-05:30",
                "2024-05-01T12:34:56.250000-05:30",
            ),
            ("2024-05-01T12:34:56.5", "2024-05-01T12:34:56.500000"),
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00"),
        ];
        for (chrono, python) in cases {
            assert_eq!(python_datetime(chrono).as_deref(), Some(python), "{chrono}");
            assert_eq!(python_datetime(python), None, "already Python's: {python}");
        }
        // Not date-times, or not representable in Python: left alone.
        for text in [
            "soon",
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "+10000-01-01T00:00:00Z",
        ] {
            assert_eq!(python_datetime(text), None, "{text}");
        }
        assert_eq!(
            python_time("12:34:56.500").as_deref(),
            Some("12:34:56.500000")
        );
        assert_eq!(python_time("12:34:56.000").as_deref(), Some("12:34:56"));
        assert_eq!(python_time("12:34:56"), None);
    }

    #[test]
    fn integral_floats_become_integers_exactly() {
        for (text, integer) in [
            ("1.0", Some("1")),
            ("-2.50e1", Some("-25")),
            ("1e3", Some("1000")),
            ("1E+2", Some("100")),
            ("9007199254740993.0", Some("9007199254740993")),
            ("-0.0", Some("0")),
            ("0e5", Some("0")),
            ("1200e-2", Some("12")),
            ("1.5", None),
            ("1e-3", None),
            ("12", None),
            ("1e999", None),
        ] {
            assert_eq!(integral_text(text).as_deref(), integer, "{text}");
        }
    }

    #[test]
    fn plans_follow_the_schema_and_nothing_else() {
        let schema = json!({"type": "object", "properties": {
            "when": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
            "note": {"type": "string"},
            "amounts": {"type": "object", "additionalProperties":
                {"type": "string", "pattern": PEER_DECIMAL_PATTERN}},
            "pair": {"type": "array", "items": [{"type": "integer"}, {"type": "string", "format": "time"}]},
            "counts": {"type": "array", "items": {"type": "integer"}}}});
        let plan = ValuePlan::new(&schema);
        let mut value: Value = serde_json::from_str(
            r#"{"when": "2024-05-01T00:00:00.5Z", "note": "2024-05-01T00:00:00.5Z",
                "amounts": {"a": 1.50, "b": "2.5"}, "pair": [2.0, "01:02:03.100"],
                "counts": [1.0, 2, 3.5]}"#,
        )
        .unwrap();
        plan.to_peer(&mut value);
        assert_eq!(value["when"], "2024-05-01T00:00:00.500000+00:00");
        assert_eq!(
            value["note"], "2024-05-01T00:00:00.5Z",
            "a plain string is untouched"
        );
        assert_eq!(value["amounts"], json!({"a": "1.50", "b": "2.5"}));
        assert_eq!(value["pair"][1], "01:02:03.100000");
        plan.from_peer(&mut value);
        assert_eq!(value["pair"][0].to_string(), "2");
        assert_eq!(value["counts"].to_string(), "[1,2,3.5]");

        let plain =
            ValuePlan::new(&json!({"type": "object", "properties": {"a": {"type": "string"}}}));
        assert!(plain.is_identity_outgoing() && plain.is_identity_incoming());
        let integers = ValuePlan::new(&json!({"type": "integer"}));
        assert!(integers.is_identity_outgoing() && !integers.is_identity_incoming());
    }
}

//! JSON for tests that check values cross the bus unchanged: [`json`] parses keeping
//! numbers as written, [`assert_same_json`] compares data rather than text, and [`NESTED`]
//! is a value full of the cases that break naive encoders.

use serde_json::Value;

/// Parses JSON text keeping every number exactly as written (serde_json's
/// `arbitrary_precision`), so tests can send numbers no `f64` or `u64` holds.
pub fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("valid JSON in the test")
}

/// Asserts that two JSON values are the same data: integers must match digit for digit
/// (big ones included), other numbers must be the same `f64` (`-2.5e-7` and Python's
/// `-2.5e-07` are the same float written two ways), everything else must be equal.
pub fn assert_same_json(actual: &Value, expected: &Value) {
    if let Err(path) = same_json(actual, expected, "$") {
        panic!("JSON differs at {path}\n  actual:   {actual}\n  expected: {expected}");
    }
}

fn same_json(actual: &Value, expected: &Value, path: &str) -> Result<(), String> {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => {
            let (a_text, b_text) = (a.to_string(), b.to_string());
            let is_integer = |text: &str| !text.contains(['.', 'e', 'E']);
            let same = if is_integer(&a_text) && is_integer(&b_text) {
                a_text == b_text
            } else {
                a.as_f64().is_some() && a.as_f64() == b.as_f64()
            };
            same.then_some(())
                .ok_or_else(|| format!("{path} ({a_text} vs {b_text})"))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .try_for_each(|(i, (a, b))| same_json(a, b, &format!("{path}[{i}]"))),
        (Value::Object(a), Value::Object(b)) if a.len() == b.len() => {
            a.iter().try_for_each(|(k, a)| {
                let b = b.get(k).ok_or_else(|| format!("{path}.{k} (missing)"))?;
                same_json(a, b, &format!("{path}.{k}"))
            })
        }
        (a, b) if a == b => Ok(()),
        _ => Err(path.to_owned()),
    }
}

/// Nested values that must cross the bus unchanged: unicode (including characters outside
/// the BMP and escapes), floats, nulls, and integers beyond `i64`/`u64`.
pub const NESTED: &str = r#"{
    "text": "héllo ✓ 日本語 😀 \"quoted\" \\ \u0001",
    "empty": "",
    "floats": [0.1, -2.5e-7, 3.141592653589793, 1e300, -0.0, 5e-324],
    "none": null,
    "flags": [true, false],
    "big": 123456789012345678901234567890,
    "big_negative": -98765432109876543210987654321,
    "u64_max_plus_one": 18446744073709551616,
    "i64_min_minus_one": -9223372036854775809,
    "small": [0, -1, 9007199254740993],
    "deep": {"list": [[], {}, [{"k": [null]}]], "ключ": {"キー": "値"}}
}"#;

/// The big integers of [`NESTED`], by key, as their exact decimal text.
pub const NESTED_BIG_INTEGERS: [(&str, &str); 4] = [
    ("big", "123456789012345678901234567890"),
    ("big_negative", "-98765432109876543210987654321"),
    ("u64_max_plus_one", "18446744073709551616"),
    ("i64_min_minus_one", "-9223372036854775809"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_data_written_two_ways_is_the_same() {
        assert_same_json(
            &json("[-2.5e-7, 1.0, {\"a\": null}]"),
            &json("[-2.5e-07, 1.0, {\"a\": null}]"),
        );
        assert_same_json(&json(NESTED), &json(NESTED));
    }

    #[test]
    fn big_integers_must_match_digit_for_digit() {
        let a = json("123456789012345678901234567890");
        let b = json("123456789012345678901234567891");
        let differs = std::panic::catch_unwind(|| assert_same_json(&a, &b));
        assert!(differs.is_err(), "integers beyond f64 compared as floats");
        let missing =
            std::panic::catch_unwind(|| assert_same_json(&json("{\"a\": 1}"), &json("{\"b\": 1}")));
        assert!(missing.is_err(), "objects with other keys compared equal");
    }
}

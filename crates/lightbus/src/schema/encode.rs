//! JSON text exactly as the peer writes schemas: Python's `json` encoder with sorted keys.
//!
//! The peer stores each API schema with `sort_keys=True` and Python's default separators
//! (`", "` and `": "` on one line), and `dumpschema` indents by 2 with `","` at line ends.
//! Non-ASCII characters are escaped as `\uXXXX` (`ensure_ascii`). Writing the same bytes
//! means a Rust worker and a Python worker serving the same API store identical values, and
//! a diff of two `dumpschema` files shows only real differences.
//!
//! Numbers are written as they are held (`serde_json` keeps their text), which is what
//! Python writes for integers; floats in schemas (rare: defaults, bounds) may differ in
//! spelling (`1e-05` vs `1e-5`) but not in value.

use std::fmt::Write;

use serde_json::Value;

/// Encodes `value` as Python's `json.dumps(value, sort_keys=True, indent=indent)` would.
///
/// ```
/// use serde_json::json;
/// let text = lightbus::schema::to_python_json(&json!({"b": [1, 2], "a": "é"}), None);
/// assert_eq!(text, r#"{"a": "\u00e9", "b": [1, 2]}"#);
/// ```
pub fn to_python_json(value: &Value, indent: Option<usize>) -> String {
    let mut out = String::new();
    write_value(&mut out, value, indent, 0);
    out
}

fn write_value(out: &mut String, value: &Value, indent: Option<usize>, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separator(out, i, indent, depth + 1);
                write_value(out, item, indent, depth + 1);
            }
            close(out, indent, depth);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                separator(out, i, indent, depth + 1);
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item, indent, depth + 1);
            }
            close(out, indent, depth);
            out.push('}');
        }
    }
}

/// Before item `i`: `", "` on one line, or `","` and a new indented line.
fn separator(out: &mut String, i: usize, indent: Option<usize>, depth: usize) {
    match indent {
        None => {
            if i > 0 {
                out.push_str(", ");
            }
        }
        Some(width) => {
            if i > 0 {
                out.push(',');
            }
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', width * depth));
        }
    }
}

fn close(out: &mut String, indent: Option<usize>, depth: usize) {
    if let Some(width) = indent {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', width * depth));
    }
}

/// A string with Python's `ensure_ascii` escaping: only printable ASCII stays as it is.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compact_form_matches_python() {
        // json.dumps({"z": {"b": None, "a": [True, 1.5]}, "e": {}, "l": []}, sort_keys=True)
        let value = json!({"z": {"b": null, "a": [true, 1.5]}, "e": {}, "l": []});
        assert_eq!(
            to_python_json(&value, None),
            r#"{"e": {}, "l": [], "z": {"a": [true, 1.5], "b": null}}"#
        );
    }

    #[test]
    fn indented_form_matches_python() {
        // json.dumps({"b": [1, {"c": "x"}], "a": {}}, sort_keys=True, indent=2)
        let value = json!({"b": [1, {"c": "x"}], "a": {}});
        let expected =
            "{\n  \"a\": {},\n  \"b\": [\n    1,\n    {\n      \"c\": \"x\"\n    }\n  ]\n}";
        assert_eq!(to_python_json(&value, Some(2)), expected);
    }

    #[test]
    fn strings_are_escaped_like_ensure_ascii() {
        // json.dumps('q"\\\n\x01\x7fé😀^-?\\d+$')
        let value = json!("q\"\\\n\u{1}\u{7f}é😀^-?\\d+$");
        assert_eq!(
            to_python_json(&value, None),
            r#""q\"\\\n\u0001\u007f\u00e9\ud83d\ude00^-?\\d+$""#
        );
    }
}

//! The filters of `inspect`: `--version` comparisons, `--json-path` queries, and `*`
//! wildcards of `--api` / `--event`. Pure functions of the event, no I/O.

use lightbus::Kwargs;
use serde_json::Value;

/// `--version`: a comparison with a version number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionFilter {
    comparison: Comparison,
    version: u32,
}

/// The comparisons of `--version` and `--json-path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Comparison {
    /// The comparison at the start of `text`, and its length (longest operators first).
    fn at_start(text: &str) -> Option<(Comparison, usize)> {
        [
            ("<=", Comparison::Le),
            (">=", Comparison::Ge),
            ("!=", Comparison::Ne),
            ("==", Comparison::Eq),
            ("<", Comparison::Lt),
            (">", Comparison::Gt),
            ("=", Comparison::Eq),
        ]
        .into_iter()
        .find(|(symbol, _)| text.starts_with(symbol))
        .map(|(symbol, comparison)| (comparison, symbol.len()))
    }

    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Comparison::Eq => ordering == Equal,
            Comparison::Ne => ordering != Equal,
            Comparison::Lt => ordering == Less,
            Comparison::Gt => ordering == Greater,
            Comparison::Le => ordering != Greater,
            Comparison::Ge => ordering != Less,
        }
    }
}

impl VersionFilter {
    /// Parses `2`, `=2`, `!=2`, `<2`, `>2`, `<=2` or `>=2`.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        let (comparison, rest) = match Comparison::at_start(text) {
            Some((comparison, length)) => (comparison, &text[length..]),
            None => (Comparison::Eq, text),
        };
        let version = rest.trim().parse::<u32>().map_err(|_| {
            format!("`{text}` is not a version filter: use 2, =2, !=2, <2, >2, <=2 or >=2")
        })?;
        Ok(VersionFilter {
            comparison,
            version,
        })
    }

    /// Whether `version` passes.
    pub fn matches(&self, version: u32) -> bool {
        self.comparison.holds(version.cmp(&self.version))
    }
}

/// `--json-path`: a path into the parameters, a comparison and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonQuery {
    path: Vec<String>,
    comparison: Comparison,
    value: String,
}

impl JsonQuery {
    /// Parses `PATH OP VALUE`, e.g. `address.city=London` or `$.items[0].price>=10`.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let invalid = || {
            format!(
                "`{text}` is not a query: use PATH=VALUE (or !=, <, >, <=, >=), e.g. \
                 address.city=London"
            )
        };
        let (index, (comparison, length)) = text
            .char_indices()
            .find_map(|(index, _)| Comparison::at_start(&text[index..]).map(|found| (index, found)))
            .ok_or_else(invalid)?;
        let raw_path = text[..index].trim();
        let raw_path = raw_path
            .strip_prefix("$.")
            .or_else(|| raw_path.strip_prefix('$'))
            .unwrap_or(raw_path);
        let path: Vec<String> = raw_path
            .replace('[', ".")
            .replace(']', "")
            .split('.')
            .filter(|segment| !segment.is_empty())
            .map(str::to_owned)
            .collect();
        if path.is_empty() {
            return Err(invalid());
        }
        Ok(JsonQuery {
            path,
            comparison,
            value: text[index + length..].trim().to_owned(),
        })
    }

    /// Whether any value at the path compares as asked.
    pub fn matches(&self, kwargs: &Kwargs) -> bool {
        let mut found: Vec<&Value> = Vec::new();
        collect(&self.path, Some(kwargs), &mut found);
        found.iter().any(|value| self.compare(value))
    }

    fn compare(&self, found: &Value) -> bool {
        let wanted: Value =
            serde_json::from_str(&self.value).unwrap_or_else(|_| Value::String(self.value.clone()));
        let ordering = match (found, &wanted) {
            (Value::Number(a), Value::Number(b)) => compare_numbers(a, b),
            // `city=London` and `city="London"` both compare as text.
            (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
            (Value::String(a), _) => Some(a.as_str().cmp(self.value.as_str())),
            (a, b) => (a == b).then_some(std::cmp::Ordering::Equal),
        };
        match ordering {
            Some(ordering) => self.comparison.holds(ordering),
            None => self.comparison == Comparison::Ne,
        }
    }
}

/// Compares two JSON numbers exactly, on their decimal digits (not as `f64`, which cannot
/// tell 2^53 from 2^53+1): `1.0`, `1` and `1e0` are equal. `None` for text that is no number.
fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<std::cmp::Ordering> {
    /// (negative, significant digits without leading or trailing zeros, exponent of the first
    /// digit); zero is (false, "", 0).
    fn parts(text: &str) -> Option<(bool, String, i64)> {
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match text.split_once(['e', 'E']) {
            Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
            None => (text, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = format!("{whole}{fraction}");
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let leading = digits.len() - digits.trim_start_matches('0').len();
        let significant = digits.trim_matches('0').to_owned();
        if significant.is_empty() {
            return Some((false, significant, 0));
        }
        let magnitude = (whole.len() as i64 - leading as i64).saturating_add(exponent);
        Some((negative, significant, magnitude))
    }
    let (a_negative, a_digits, a_magnitude) = parts(&a.to_string())?;
    let (b_negative, b_digits, b_magnitude) = parts(&b.to_string())?;
    let sign = |negative: bool, digits: &str| match (digits.is_empty(), negative) {
        (true, _) => 0,
        (false, true) => -1,
        (false, false) => 1,
    };
    let (a_sign, b_sign) = (sign(a_negative, &a_digits), sign(b_negative, &b_digits));
    if a_sign != b_sign || a_sign == 0 {
        return Some(a_sign.cmp(&b_sign));
    }
    let magnitude = a_magnitude
        .cmp(&b_magnitude)
        .then_with(|| a_digits.as_str().cmp(b_digits.as_str()));
    Some(if a_sign < 0 {
        magnitude.reverse()
    } else {
        magnitude
    })
}

/// Collects the values at `path` under `object` (`*` matches every key or item).
fn collect<'a>(
    path: &[String],
    object: Option<&'a serde_json::Map<String, Value>>,
    found: &mut Vec<&'a Value>,
) {
    fn walk<'a>(path: &[String], value: &'a Value, found: &mut Vec<&'a Value>) {
        let Some((segment, rest)) = path.split_first() else {
            found.push(value);
            return;
        };
        match value {
            Value::Object(map) if segment == "*" => {
                map.values().for_each(|child| walk(rest, child, found))
            }
            Value::Object(map) => {
                if let Some(child) = map.get(segment) {
                    walk(rest, child, found);
                }
            }
            Value::Array(items) if segment == "*" => {
                items.iter().for_each(|child| walk(rest, child, found))
            }
            Value::Array(items) => {
                if let Some(child) = segment.parse::<usize>().ok().and_then(|i| items.get(i)) {
                    walk(rest, child, found);
                }
            }
            _ => {}
        }
    }
    let Some(object) = object else { return };
    let Some((segment, rest)) = path.split_first() else {
        return;
    };
    if segment == "*" {
        object.values().for_each(|child| walk(rest, child, found));
    } else if let Some(child) = object.get(segment) {
        walk(rest, child, found);
    }
}

/// Matches `text` against a pattern where `*` stands for any run of characters.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_queries_compare_numbers_exactly() {
        let kwargs: Value =
            serde_json::from_str(r#"{"n": 9007199254740993, "f": 1.0, "s": -0.005, "z": 0}"#)
                .unwrap();
        let kwargs = kwargs.as_object().unwrap();
        let q = |text: &str| JsonQuery::parse(text).unwrap().matches(kwargs);
        // 2^53 + 1 is no f64: compared as f64 it equalled 2^53.
        assert!(q("n>9007199254740992") && !q("n=9007199254740992"));
        assert!(q("n=9007199254740993") && q("n<9007199254740994"));
        assert!(q("n>1e15") && q("n<1e16") && q("n=9.007199254740993e15"));
        assert!(q("f=1") && q("f=1e0") && q("f=10e-1") && !q("f>1"));
        assert!(q("s<0") && q("s>-0.01") && q("s=-5e-3") && q("s<-0.004"));
        assert!(q("z=0") && q("z=-0.0") && q("z>-1") && q("z<1e-300"));
        assert!(q("n>123456789012345678901234567890e-20"));
        assert!(!q("n>123456789012345678901234567890"));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("auth", "auth"));
        assert!(!wildcard_match("auth", "auth2"));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("user_*", "user_registered"));
        assert!(wildcard_match("*_registered", "user_registered"));
        assert!(wildcard_match("my.*.api", "my.company.api"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXcYYb"));
        assert!(!wildcard_match("ab*ba", "aba"));
    }

    #[test]
    fn versions() {
        let v = |text: &str| VersionFilter::parse(text).unwrap();
        assert!(v("2").matches(2) && !v("2").matches(3));
        assert!(v("=2").matches(2));
        assert!(v("!=2").matches(3) && !v("!=2").matches(2));
        assert!(v("<2").matches(1) && !v("<2").matches(2));
        assert!(v("<=2").matches(2) && !v("<=2").matches(3));
        assert!(v(">2").matches(3) && !v(">2").matches(2));
        assert!(v(">=2").matches(2) && !v(">=2").matches(1));
        assert!(VersionFilter::parse(">=x").is_err());
        assert!(VersionFilter::parse("").is_err());
    }

    #[test]
    fn json_queries() {
        let kwargs = json!({
            "address": {"city": "London", "zip": "N1"},
            "total": 120.5,
            "items": [{"price": 5}, {"price": 50}],
            "active": true
        });
        let kwargs = kwargs.as_object().unwrap();
        let q = |text: &str| JsonQuery::parse(text).unwrap().matches(kwargs);
        assert!(q("address.city=London"));
        assert!(q("address.city=\"London\""));
        assert!(!q("address.city=Paris"));
        assert!(q("address.city!=Paris"));
        assert!(q("$.address.city=London"));
        assert!(q("total>100") && !q("total<100") && q("total>=120.5"));
        assert!(q("items.*.price>10") && !q("items.*.price>100"));
        assert!(q("items[1].price=50") && q("items.0.price=5"));
        assert!(q("active=true") && !q("active=false"));
        assert!(!q("missing=1"));
        assert!(JsonQuery::parse("no comparison").is_err());
        assert!(JsonQuery::parse("=x").is_err());
    }
}

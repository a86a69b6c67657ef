//! The grammar of what an operator types to name and call an RPC, shared by `call` and
//! `shell`: `api.member` names, and keyword arguments as `name=value` words or one JSON
//! object.
//!
//! Keyword arguments are either **one JSON object** (`{"username": "admin"}`), or
//! **`name=value` words**:
//! - a name is letters, digits and `_` (as the parameters of Python and Rust procedures
//!   are), and is given at most once; whitespace around the name and the value is ignored,
//!   and the value is everything after the first `=` (`eq=a=b` is `"a=b"`);
//! - a value that parses as JSON is JSON, numbers exactly as written (`n=3`, `f=1.5`,
//!   `ok=true`, `x=null`, `tags=["a", 1]`, `item={"sku": "A-1"}`, `code="007"`);
//! - else Python's `True`, `False` and `None` are `true`, `false` and `null`;
//! - else a value in single quotes is the text inside them (`name='Ada Lovelace'`, with
//!   `\'` for a quote);
//! - anything else is the text as typed (`name=ada`, `zip=01234`, `empty=`).
//!
//! The words come from the terminal's shell for `call` (so `code='"007"'` passes the JSON
//! text `"007"`), and from `shell`'s own splitting of a line
//! ([`parse_line`](crate::shell::parse_line)), which treats quotes as a POSIX shell does:
//! the same text typed after `lightbus call api.rpc` and after `api.rpc` in `shell` gives
//! the same arguments.

use lightbus::Kwargs;
use serde_json::Value;

/// How the grammar reads, for the help of the commands that use it.
pub const HELP: &str = "Arguments:\n  \
    name=value words, or one JSON object. A value that parses as JSON is JSON (count=3,\n  \
    ok=true, tags='[\"a\",\"b\"]', x=null); True, False and None are true, false and null;\n  \
    'text' in single quotes is that text; anything else is a string (name=ada). Quote a\n  \
    string that looks like JSON as JSON: code='\"007\"' in a terminal.";

/// Why keyword arguments do not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgumentError {
    /// A word without `=`.
    #[error(
        "`{word}` is not of the form key=value (arguments are keywords only; or pass one \
         JSON object)"
    )]
    NotAPair {
        /// The word as given.
        word: String,
    },
    /// A word with nothing before its `=`.
    #[error("`{word}` has no name before `=`")]
    MissingName {
        /// The word as given.
        word: String,
    },
    /// A name with characters other than letters, digits and `_`.
    #[error("`{name}` is not a parameter name (letters, digits and _)")]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// A name given twice.
    #[error("`{name}` is given more than once")]
    Repeated {
        /// The name.
        name: String,
    },
    /// One argument starting with `{` that is not valid JSON.
    #[error("the JSON object does not parse: {reason}")]
    InvalidJson {
        /// What the JSON parser reported.
        reason: String,
    },
    /// One argument starting with `{` that is JSON, but not an object.
    #[error("expected one JSON object")]
    NotAnObject,
}

pub use lightbus::api::split_member;

/// Parses keyword arguments: one word that is a JSON object (starts with `{`), or
/// `name=value` words (see the [module docs](self)).
///
/// ```
/// use lightbus_cli::arguments::parse_kwargs;
/// let kwargs = parse_kwargs(&["n=3", "name=ada", "ok=True"]).unwrap();
/// assert_eq!(serde_json::Value::Object(kwargs), serde_json::json!({"n": 3, "name": "ada", "ok": true}));
/// ```
pub fn parse_kwargs<S: AsRef<str>>(words: &[S]) -> Result<Kwargs, ArgumentError> {
    if let [single] = words {
        let single = single.as_ref();
        if single.trim_start().starts_with('{') {
            return match serde_json::from_str::<Value>(single) {
                Ok(Value::Object(kwargs)) => Ok(kwargs),
                Ok(_) => Err(ArgumentError::NotAnObject),
                Err(error) => Err(ArgumentError::InvalidJson {
                    reason: error.to_string(),
                }),
            };
        }
    }
    let mut kwargs = Kwargs::new();
    for word in words {
        let (name, value) = parse_pair(word.as_ref())?;
        if kwargs.contains_key(&name) {
            return Err(ArgumentError::Repeated { name });
        }
        kwargs.insert(name, value);
    }
    Ok(kwargs)
}

/// Parses one `name=value` word.
fn parse_pair(word: &str) -> Result<(String, Value), ArgumentError> {
    let (name, value) = word
        .split_once('=')
        .ok_or_else(|| ArgumentError::NotAPair {
            word: word.to_owned(),
        })?;
    let name = name.trim();
    if name.is_empty() {
        return Err(ArgumentError::MissingName {
            word: word.to_owned(),
        });
    }
    if !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(ArgumentError::InvalidName {
            name: name.to_owned(),
        });
    }
    Ok((name.to_owned(), parse_value(value)))
}

/// Parses one value: JSON, else Python's `True`/`False`/`None`, else `'text'`, else the
/// text itself (surrounding whitespace ignored).
///
/// ```
/// use lightbus_cli::arguments::parse_value;
/// use serde_json::json;
/// assert_eq!(parse_value("[1, 2]"), json!([1, 2]));
/// assert_eq!(parse_value("None"), json!(null));
/// assert_eq!(parse_value("'it\\'s'"), json!("it's"));
/// assert_eq!(parse_value("ada"), json!("ada"));
/// ```
pub fn parse_value(text: &str) -> Value {
    let text = text.trim();
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return value;
    }
    match text {
        "True" => return Value::Bool(true),
        "False" => return Value::Bool(false),
        "None" => return Value::Null,
        _ => {}
    }
    if let Some(inner) = text
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
    {
        return Value::String(inner.replace("\\'", "'"));
    }
    Value::String(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightbus::{Error, NameKind};
    use serde_json::json;

    fn parse(words: &[&str]) -> Result<Value, ArgumentError> {
        parse_kwargs(words).map(Value::Object)
    }

    #[test]
    fn values_are_json_then_python_literals_then_quoted_or_plain_text() {
        let kwargs = parse(&[
            "n=3",
            "ok=true",
            "tags=[\"a\",1]",
            "none=null",
            "name=ada",
            "zip=01234",
            "quoted=\"007\"",
            "empty=",
            "eq=a=b",
            "t=True",
            "f=False",
            "py_none=None",
            "single='Ada Lovelace'",
            "escaped='it\\'s'",
            " spaced = 1.5 ",
        ])
        .unwrap();
        assert_eq!(
            kwargs,
            json!({"n": 3, "ok": true, "tags": ["a", 1], "none": null, "name": "ada",
                   "zip": "01234", "quoted": "007", "empty": "", "eq": "a=b", "t": true,
                   "f": false, "py_none": null, "single": "Ada Lovelace", "escaped": "it's",
                   "spaced": 1.5})
        );
        // Numbers keep their text exactly (serde_json's arbitrary precision).
        let big = "123456789012345678901234567890.000000000000000000001";
        let kwargs = parse(&[&format!("big={big}")]).unwrap();
        assert_eq!(kwargs["big"].to_string(), big);
    }

    #[test]
    fn one_json_object_is_the_whole_argument_list() {
        assert_eq!(
            parse(&[r#"{"username": "admin", "n": 1.5}"#]).unwrap(),
            json!({"username": "admin", "n": 1.5})
        );
        assert_eq!(parse(&[]).unwrap(), json!({}));
        assert_eq!(
            parse(&["[1]"]),
            Err(ArgumentError::NotAPair { word: "[1]".into() })
        );
    }

    #[test]
    fn malformed_arguments_are_rejected_with_the_reason() {
        let reason = |words: &[&str]| parse(words).unwrap_err().to_string();
        assert!(reason(&["username"]).contains("not of the form key=value"));
        assert!(reason(&["=x"]).contains("no name"));
        assert!(reason(&["a=1", "a=2"]).contains("more than once"));
        assert!(reason(&["{\"a\": "]).contains("does not parse"));
        assert!(
            parse(&["{\"a\": 1} "]).is_ok(),
            "whitespace around the object"
        );
        assert_eq!(
            parse(&["{}", "a=1"]),
            Err(ArgumentError::NotAPair { word: "{}".into() })
        );
        assert_eq!(
            parse(&["user-name=x"]),
            Err(ArgumentError::InvalidName {
                name: "user-name".into()
            })
        );
    }

    #[test]
    fn members_split_at_the_last_dot() {
        let cases = [
            ("auth.check", Some(("auth", "check"))),
            ("my_company.auth.check", Some(("my_company.auth", "check"))),
            ("auth", None),
            (".check", None),
            ("auth.", None),
            ("", None),
        ];
        for (text, expected) in cases {
            match (split_member(text), expected) {
                (Ok(parts), Some(expected)) => assert_eq!(parts, expected),
                (
                    Err(
                        error @ Error::InvalidName {
                            kind: NameKind::Member,
                            ..
                        },
                    ),
                    None,
                ) => {
                    assert!(error.to_string().contains("api.member"), "{error}")
                }
                (outcome, _) => panic!("{text:?}: {outcome:?}"),
            }
        }
    }
}

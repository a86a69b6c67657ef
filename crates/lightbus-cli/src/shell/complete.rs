//! What `shell` knows of the bus — every API's RPCs and events with their parameters, from
//! the schemas workers published — and Tab completion from it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};
use serde_json::Value;

/// What completion and `describe` know: every API's RPCs and events with their parameters.
#[derive(Debug, Default, Clone)]
pub(super) struct Catalogue {
    /// `api.member` → its kind, parameter names and schema.
    members: BTreeMap<String, Member>,
}

/// An RPC or event of the catalogue.
#[derive(Debug, Clone)]
struct Member {
    /// `rpc` or `event`.
    kind: &'static str,
    parameters: Vec<String>,
    schema: Value,
}

impl Catalogue {
    /// Builds the catalogue from schemas as `dumpschema` writes them.
    pub(super) fn from_schemas(schemas: &BTreeMap<String, Value>) -> Self {
        let mut members = BTreeMap::new();
        for (api, schema) in schemas {
            for (section, kind) in [("rpcs", "rpc"), ("events", "event")] {
                let Some(entries) = schema.get(section).and_then(Value::as_object) else {
                    continue;
                };
                for (name, member) in entries {
                    let parameters = parameter_names(member);
                    members.insert(
                        format!("{api}.{name}"),
                        Member {
                            kind,
                            parameters,
                            schema: member.clone(),
                        },
                    );
                }
            }
        }
        Catalogue { members }
    }

    /// The APIs known, sorted.
    pub(super) fn apis(&self) -> Vec<String> {
        let mut apis: Vec<String> = self
            .members
            .keys()
            .filter_map(|name| name.rsplit_once('.').map(|(api, _)| api.to_owned()))
            .collect();
        apis.dedup();
        apis
    }

    /// What `apis` prints: one line per RPC or event, `api.member(parameters)`, events
    /// tagged.
    pub(super) fn listing(&self) -> String {
        if self.members.is_empty() {
            return "(no API schemas known)".to_owned();
        }
        let mut text = String::new();
        for (name, member) in &self.members {
            let tag = if member.kind == "event" {
                "  [event]"
            } else {
                ""
            };
            let _ = writeln!(text, "{name}({}){tag}", member.parameters.join(", "));
        }
        text.truncate(text.trim_end().len());
        text
    }

    /// What `describe NAME` prints: the kind and schema of the member `NAME`, or of every
    /// member of the API `NAME`; `None` if the catalogue has neither.
    pub(super) fn describe(&self, name: &str) -> Option<String> {
        let mut text = String::new();
        for (member_name, member) in &self.members {
            let api = member_name.rsplit_once('.').map(|(api, _)| api);
            if member_name == name || api == Some(name) {
                let _ = writeln!(text, "{member_name} ({})\n{:#}", member.kind, member.schema);
            }
        }
        text.truncate(text.trim_end().len());
        (!text.is_empty()).then_some(text)
    }
}

/// The catalogue, shared by the prompt's completion and the commands that reload it.
#[derive(Debug, Clone, Default)]
pub(super) struct SharedCatalogue(Arc<RwLock<Catalogue>>);

impl SharedCatalogue {
    /// The catalogue as it is now.
    pub(super) fn read(&self) -> RwLockReadGuard<'_, Catalogue> {
        // A catalogue is only ever replaced whole, so one left by a panicked writer is
        // still a whole catalogue.
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the catalogue.
    pub(super) fn replace(&self, catalogue: Catalogue) {
        *self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = catalogue;
    }
}

/// A member's parameter names in declaration order: the schema's `required` list keeps it
/// (stored schemas have their `properties` keys sorted), then any optional ones.
fn parameter_names(member: &Value) -> Vec<String> {
    let mut names: Vec<String> = member
        .pointer("/parameters/required")
        .and_then(Value::as_array)
        .map(|required| {
            required
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(properties) = member
        .pointer("/parameters/properties")
        .and_then(Value::as_object)
    {
        for name in properties.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

/// The commands, for completion.
const COMMANDS: [&str; 7] = ["apis", "call", "describe", "exit", "help", "quit", "reload"];

/// Completion for the prompt, from the catalogue.
pub(super) struct ShellHelper {
    pub(super) catalogue: SharedCatalogue,
}

impl ShellHelper {
    /// Where the word being completed starts in `line` (the cursor at `pos`), and what it
    /// may become: a command or `api.member` name, or a parameter `name=` of the member.
    fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let start = before
            .rfind([' ', '(', ',', '{'])
            .map_or(0, |index| index + 1);
        let word = &before[start..];
        let catalogue = self.catalogue.read();
        let head = before.trim_start();
        let leading = head
            .strip_prefix("call ")
            .or_else(|| head.strip_prefix("describe "))
            .unwrap_or(head);
        // No separator yet after the command word: the name itself is being typed.
        if !leading.contains([' ', '(', '{']) {
            let mut names: Vec<String> = Vec::new();
            if start == 0 {
                names.extend(COMMANDS.iter().map(|c| (*c).to_owned()));
            }
            names.extend(catalogue.members.keys().cloned());
            names.retain(|name| name.starts_with(word));
            return (start, names);
        }
        let member: String = leading
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        let Some(found) = catalogue.members.get(&member) else {
            return (start, Vec::new());
        };
        let names = found
            .parameters
            .iter()
            .filter(|name| name.starts_with(word))
            .filter(|name| !line.contains(&format!("{name}=")))
            .map(|name| format!("{name}="))
            .collect();
        (start, names)
    }
}

impl Completer for ShellHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.candidates(line, pos))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn completion_offers_names_then_parameters() {
        let mut schemas = BTreeMap::new();
        schemas.insert(
            "auth".to_owned(),
            json!({
                "rpcs": {"check_password": {"parameters": {"properties": {"username": {}, "password": {}}}}},
                "events": {"user_registered": {"parameters": {"properties": {"username": {}}}}}
            }),
        );
        let catalogue = SharedCatalogue::default();
        catalogue.replace(Catalogue::from_schemas(&schemas));
        let helper = ShellHelper { catalogue };
        assert_eq!(
            helper.candidates("auth.ch", 7),
            (0, vec!["auth.check_password".to_owned()])
        );
        assert_eq!(helper.candidates("ex", 2), (0, vec!["exit".to_owned()]));
        let line = "auth.check_password(us";
        assert_eq!(
            helper.candidates(line, line.len()),
            (20, vec!["username=".to_owned()])
        );
        let line = "auth.check_password username=a ";
        assert_eq!(
            helper.candidates(line, line.len()),
            (line.len(), vec!["password=".to_owned()])
        );
        let line = "describe auth.u";
        assert_eq!(
            helper.candidates(line, line.len()),
            (9, vec!["auth.user_registered".to_owned()])
        );
    }

    #[test]
    fn listing_and_describe_show_members_with_their_parameters() {
        let mut schemas = BTreeMap::new();
        schemas.insert(
            "auth".to_owned(),
            json!({
                "rpcs": {"check_password": {"parameters": {"required": ["username", "password"],
                    "properties": {"password": {}, "username": {}}}}},
                "events": {"user_registered": {"parameters": {"properties": {"username": {}}}}}
            }),
        );
        let catalogue = Catalogue::from_schemas(&schemas);
        assert_eq!(catalogue.apis(), ["auth"]);
        assert_eq!(
            catalogue.listing(),
            "auth.check_password(username, password)\nauth.user_registered(username)  [event]"
        );
        let described = catalogue.describe("auth.check_password").unwrap();
        assert!(described.starts_with("auth.check_password (rpc)\n{\n  \"parameters\""));
        assert_eq!(catalogue.describe("auth").unwrap().matches(" (").count(), 2);
        assert_eq!(catalogue.describe("billing"), None);
        assert_eq!(Catalogue::default().listing(), "(no API schemas known)");
    }
}

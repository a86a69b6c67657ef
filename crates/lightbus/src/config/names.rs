//! Service and process names with placeholders, as upstream: `{hostname}`, `{pid}`,
//! `{random4}`, `{random8}`, `{random16}` and `{friendly}`.

use rand::seq::IndexedRandom;
use rand::Rng;

const ADJECTIVES: &[&str] = &[
    "amber", "brave", "brisk", "calm", "clever", "cosmic", "crisp", "dapper", "eager", "fabled",
    "gentle", "golden", "hardy", "humble", "jolly", "keen", "lively", "lucky", "mellow", "merry",
    "nimble", "noble", "plucky", "proud", "quiet", "rapid", "rustic", "sunny", "swift", "tidy",
    "vivid", "witty",
];

const NOUNS: &[&str] = &[
    "badger", "beacon", "breeze", "canyon", "comet", "falcon", "fern", "harbor", "heron", "island",
    "lantern", "maple", "meadow", "otter", "pebble", "pine", "quartz", "raven", "river", "robin",
    "sparrow", "summit", "thistle", "tiger", "tulip", "valley", "walrus", "willow", "wren", "yak",
];

/// Expands the placeholders in a service or process name.
///
/// `{random4}`, `{random8}` and `{random16}` are prefixes of one random lowercase string, so
/// a name may use several of them consistently. Unknown `{…}` text is left as it is.
///
/// ```
/// let name = lightbus::config::expand_name("worker-{pid}-{random4}");
/// assert!(name.starts_with(&format!("worker-{}-", std::process::id())));
/// assert_eq!(name.len(), format!("worker-{}-", std::process::id()).len() + 4);
/// ```
pub fn expand_name(template: &str) -> String {
    if !template.contains('{') {
        return template.to_owned();
    }
    let mut rng = rand::rng();
    let random: String = (0..16)
        .map(|_| char::from(rng.random_range(b'a'..=b'z')))
        .collect();
    let friendly = format!(
        "{}-{}-{}",
        ADJECTIVES.choose(&mut rng).copied().unwrap_or("quiet"),
        NOUNS.choose(&mut rng).copied().unwrap_or("otter"),
        rng.random_range(0..1000)
    );
    let hostname = hostname::get()
        .map(|name| name.to_string_lossy().to_lowercase())
        .unwrap_or_else(|_| "localhost".to_owned());
    template
        .replace("{hostname}", &hostname)
        .replace("{pid}", &std::process::id().to_string())
        .replace("{random4}", &random[..4])
        .replace("{random8}", &random[..8])
        .replace("{random16}", &random)
        .replace("{friendly}", &friendly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_every_placeholder() {
        let plain = expand_name("auth");
        assert_eq!(plain, "auth");

        let expanded = expand_name("{hostname}/{pid}/{random4}/{random8}/{random16}/{friendly}");
        let parts: Vec<&str> = expanded.split('/').collect();
        assert_eq!(parts.len(), 6, "{expanded}");
        assert!(!parts[0].is_empty() && !parts[0].contains('{'));
        assert_eq!(parts[1], std::process::id().to_string());
        assert_eq!(parts[2].len(), 4);
        assert_eq!(parts[3].len(), 8);
        assert_eq!(parts[4].len(), 16);
        assert!(parts[4].starts_with(parts[3]) && parts[3].starts_with(parts[2]));
        assert!(parts[4].chars().all(|c| c.is_ascii_lowercase()));
        assert_eq!(parts[5].split('-').count(), 3, "{}", parts[5]);
    }

    #[test]
    fn leaves_unknown_placeholders_alone() {
        assert_eq!(expand_name("svc-{unknown}"), "svc-{unknown}");
    }
}

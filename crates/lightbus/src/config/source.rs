//! Where a configuration file comes from: a path, or an http(s) URL.
//!
//! A URL is fetched with one blocking GET (5 s timeout, as upstream) when the configuration
//! is loaded, which happens once at start-up. The text is read as JSON when the response's
//! `Content-Type` mentions JSON or the URL ends in `.json`, as YAML otherwise, as upstream.
//!
//! The HTTP client is `ureq` (feature `remote-config`, on by default): maintained, blocking
//! (no second async runtime for one request at start-up), and with rustls it needs no system
//! TLS library. Without the feature, a URL is reported as needing it.

use super::ConfigError;

/// True if `location` is an http(s) URL rather than a path.
pub(crate) fn is_url(location: &str) -> bool {
    let lower = location.get(..8).unwrap_or(location).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The text at `url`, and whether it is JSON.
#[cfg(feature = "remote-config")]
pub(crate) fn fetch(url: &str) -> Result<(String, bool), ConfigError> {
    use std::time::Duration;

    let fetch_error = |message: String| ConfigError::Fetch {
        url: url.to_owned(),
        message,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| fetch_error(e.to_string()))?;
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| fetch_error(format!("cannot read the response: {e}")))?;
    let json = content_type.contains("json") || url.ends_with(".json");
    Ok((text, json))
}

/// Without the `remote-config` feature, a URL cannot be loaded.
#[cfg(not(feature = "remote-config"))]
pub(crate) fn fetch(url: &str) -> Result<(String, bool), ConfigError> {
    Err(ConfigError::Fetch {
        url: url.to_owned(),
        message: "loading the configuration from a URL needs lightbus's `remote-config` \
                  feature"
            .to_owned(),
    })
}

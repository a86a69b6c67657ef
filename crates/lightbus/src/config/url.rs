//! Redis URLs as people write them: credentials redacted for printing, and raw passwords
//! (with `@`, `:`, `/`, `#`, `%` …) made readable by the Redis client.

/// `url` with its password replaced by `***`, safe to print. The credentials end at the
/// *last* `@` of the URL (a raw `@` may appear in a password, never in a host), and the
/// password is everything after the first `:` of the credentials (a user name holds no
/// `:`), so no part of a password with `@`, `:`, `/` or `#` in it is ever shown.
///
/// ```
/// use lightbus::config::redact_url;
/// assert_eq!(redact_url("redis://app:p@ss@db:6379/0"), "redis://app:***@db:6379/0");
/// assert_eq!(redact_url("rediss://app:a/b#c@db:6380/0"), "rediss://app:***@db:6380/0");
/// assert_eq!(redact_url("redis://db:6379/0"), "redis://db:6379/0");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let (credentials, host) = (&rest[..at], &rest[at + 1..]);
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// `url` as the Redis client reads it: user and password percent-encoded, so that a raw
/// password is taken whole. A password already percent-encoded (every `%` followed by two
/// hex digits) is taken as encoded; otherwise as written. A URL without credentials is
/// returned unchanged.
///
/// The client reads URLs by the WHATWG rules, where a raw `/`, `#` or `?` in a password
/// would end the host part early and a raw `%` would be an error.
pub(crate) fn client_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let (credentials, host) = (&rest[..at], &rest[at + 1..]);
    let (user, password) = match credentials.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (credentials, None),
    };
    let mut out = format!("{scheme}://{}", encode(&decoded(user)));
    if let Some(password) = password {
        out.push(':');
        out.push_str(&encode(&decoded(password)));
    }
    out.push('@');
    out.push_str(host);
    out
}

/// The bytes `text` stands for: percent-decoded when every `%` starts a valid escape,
/// else `text` as written.
fn decoded(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let escape = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match escape {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                None => return bytes.to_vec(),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Every byte but the URL-unreserved ones (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A `redis+sentinel://` (or `rediss+sentinel://`) URL, read:
/// `redis+sentinel://[user:password@]host1:port1[,host2:port2…]/<master_name>[/<db>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SentinelUrl {
    /// `rediss` (TLS to the sentinels and the master) or `redis`.
    pub(crate) scheme: &'static str,
    /// The credentials as written (`user:password`), for the master; the sentinels are
    /// asked without credentials.
    pub(crate) credentials: Option<String>,
    /// `host:port` of each sentinel, in the order given.
    pub(crate) sentinels: Vec<String>,
    /// The name the sentinels monitor the master under.
    pub(crate) master_name: String,
    /// The database on the master.
    pub(crate) db: i64,
}

impl SentinelUrl {
    /// The URL of one sentinel (without credentials).
    pub(crate) fn sentinel(&self, address: &str) -> String {
        format!("{}://{address}", self.scheme)
    }

    /// The URL of the master at `host:port`, with the credentials, as the client reads it.
    pub(crate) fn master(&self, host: &str, port: u16) -> String {
        let credentials = match &self.credentials {
            Some(credentials) => format!("{credentials}@"),
            None => String::new(),
        };
        let host = if host.contains(':') {
            format!("[{host}]") // IPv6
        } else {
            host.to_owned()
        };
        client_url(&format!(
            "{}://{credentials}{host}:{port}/{}",
            self.scheme, self.db
        ))
    }
}

/// `url` read as a Sentinel URL: `None` if it is not one, `Some(Err(why))` if it is one
/// written wrongly.
pub(crate) fn sentinel_url(url: &str) -> Option<Result<SentinelUrl, String>> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme {
        "redis+sentinel" => "redis",
        "rediss+sentinel" => "rediss",
        _ => return None,
    };
    Some(parse_sentinel(scheme, rest))
}

fn parse_sentinel(scheme: &'static str, rest: &str) -> Result<SentinelUrl, String> {
    let expected =
        "expected redis+sentinel://[user:password@]host:port[,host:port…]/<master_name>[/<db>]";
    let (credentials, rest) = match rest.rfind('@') {
        Some(at) => (Some(rest[..at].to_owned()), &rest[at + 1..]),
        None => (None, rest),
    };
    let (hosts, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("no master name ({expected})"))?;
    let sentinels = addresses(hosts, 26379);
    if sentinels.is_empty() {
        return Err(format!("no sentinel address ({expected})"));
    }
    let mut parts = path.trim_end_matches('/').split('/');
    let master_name = parts.next().unwrap_or_default().to_owned();
    if master_name.is_empty() {
        return Err(format!("no master name ({expected})"));
    }
    let db = match parts.next() {
        None => 0,
        Some(db) => db
            .parse::<i64>()
            .ok()
            .filter(|db| *db >= 0)
            .ok_or_else(|| format!("database `{db}` is not a number ({expected})"))?,
    };
    if parts.next().is_some() {
        return Err(format!("too many path parts ({expected})"));
    }
    Ok(SentinelUrl {
        scheme,
        credentials,
        sentinels,
        master_name,
        db,
    })
}

/// The `host:port` addresses of a comma-separated list, `default_port` where none is given.
fn addresses(hosts: &str, default_port: u16) -> Vec<String> {
    hosts
        .split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(|host| {
            let port_given = host
                .rsplit_once(':')
                .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
            if port_given {
                host.to_owned()
            } else {
                format!("{host}:{default_port}")
            }
        })
        .collect()
}

/// A `redis+cluster://` (or `rediss+cluster://`) URL, read:
/// `redis+cluster://[user:password@]host1:port1[,host2:port2…][/0]`. The nodes are where
/// the client starts: it learns the rest of the cluster from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterUrl {
    /// `rediss` (TLS to every node) or `redis`.
    pub(crate) scheme: &'static str,
    /// The credentials as written (`user:password`), for every node.
    pub(crate) credentials: Option<String>,
    /// `host:port` of each node given, in order.
    pub(crate) nodes: Vec<String>,
}

impl ClusterUrl {
    /// The URL of each node given, with the credentials, as the client reads it.
    pub(crate) fn node_urls(&self) -> Vec<String> {
        let credentials = match &self.credentials {
            Some(credentials) => format!("{credentials}@"),
            None => String::new(),
        };
        self.nodes
            .iter()
            .map(|node| client_url(&format!("{}://{credentials}{node}", self.scheme)))
            .collect()
    }
}

/// `url` read as a Redis Cluster URL: `None` if it is not one, `Some(Err(why))` if it is
/// one written wrongly. A cluster has only database 0, so no other may be named.
pub(crate) fn cluster_url(url: &str) -> Option<Result<ClusterUrl, String>> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme {
        "redis+cluster" => "redis",
        "rediss+cluster" => "rediss",
        _ => return None,
    };
    let expected = "expected redis+cluster://[user:password@]host:port[,host:port…]";
    let (credentials, rest) = match rest.rfind('@') {
        Some(at) => (Some(rest[..at].to_owned()), &rest[at + 1..]),
        None => (None, rest),
    };
    let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !matches!(path.trim_end_matches('/'), "" | "0") {
        return Some(Err(format!(
            "a Redis Cluster has only database 0, not `{path}` ({expected})"
        )));
    }
    let nodes = addresses(hosts, 6379);
    if nodes.is_empty() {
        return Some(Err(format!("no node address ({expected})")));
    }
    Some(Ok(ClusterUrl {
        scheme,
        credentials,
        nodes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passwords made of what breaks naive URL handling.
    const HOSTILE: &[&str] = &[
        "p@ss",
        "p@ss:w/rd",
        "a#b?c/d@e:f",
        "@@@",
        ":::",
        "100%sure",
        "%zz%",
        "sp ace",
        "ünï©ødé",
        "slash/",
        "/leading",
        "trailing@",
        "a%40b",
    ];

    #[test]
    fn no_part_of_a_hostile_password_is_shown() {
        for password in HOSTILE {
            for scheme in ["redis", "rediss"] {
                for user in ["", "app"] {
                    let url = format!("{scheme}://{user}:{password}@db.example:6379/0");
                    let redacted = redact_url(&url);
                    assert_eq!(
                        redacted,
                        format!("{scheme}://{user}:***@db.example:6379/0"),
                        "{url}"
                    );
                    // Nor in the form handed to the client, once redacted.
                    assert_eq!(
                        redact_url(&client_url(&url)),
                        format!("{scheme}://{user}:***@db.example:6379/0"),
                        "{url}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_client_reads_the_whole_password() {
        use redis::IntoConnectionInfo;
        for password in HOSTILE {
            let url = format!("redis://app:{password}@db.example:6379/3");
            let info = client_url(&url)
                .into_connection_info()
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            let expected = match *password {
                // A valid escape is read as one.
                "a%40b" => "a@b".to_owned(),
                other => other.to_owned(),
            };
            let redis = info.redis_settings();
            assert_eq!(redis.password(), Some(expected.as_str()), "{url}");
            assert_eq!(redis.username(), Some("app"), "{url}");
            assert_eq!(redis.db(), 3, "{url}");
            assert_eq!(info.addr().to_string(), "db.example:6379", "{url}");
        }
    }

    #[test]
    fn cluster_urls_are_read() {
        let url = cluster_url("redis+cluster://app:p@ss/w#d@10.0.0.1:7000,10.0.0.2")
            .expect("a cluster URL")
            .expect("valid");
        assert_eq!(url.scheme, "redis");
        assert_eq!(url.nodes, ["10.0.0.1:7000", "10.0.0.2:6379"]);
        assert_eq!(
            url.node_urls()[0],
            "redis://app:p%40ss%2Fw%23d@10.0.0.1:7000"
        );
        assert_eq!(
            redact_url("redis+cluster://app:p@ss/w#d@10.0.0.1:7000,10.0.0.2"),
            "redis+cluster://app:***@10.0.0.1:7000,10.0.0.2"
        );
        let tls = cluster_url("rediss+cluster://h:1/0")
            .expect("cluster")
            .expect("valid");
        assert_eq!(tls.node_urls(), ["rediss://h:1"]);
        for bad in [
            "redis+cluster://",
            "redis+cluster://h:1/2",
            "redis+cluster:///",
        ] {
            assert!(matches!(cluster_url(bad), Some(Err(_))), "{bad}");
        }
        assert!(cluster_url("redis://h:1/0").is_none());
        assert!(cluster_url("redis+sentinel://h:1/m").is_none());
    }

    #[test]
    fn sentinel_urls_are_read() {
        let url = sentinel_url("redis+sentinel://app:p@ss/w#d@10.0.0.1:26379,10.0.0.2/mymaster/2")
            .expect("a sentinel URL")
            .expect("valid");
        assert_eq!(url.scheme, "redis");
        assert_eq!(url.sentinels, ["10.0.0.1:26379", "10.0.0.2:26379"]);
        assert_eq!((url.master_name.as_str(), url.db), ("mymaster", 2));
        assert_eq!(url.sentinel("10.0.0.1:26379"), "redis://10.0.0.1:26379");
        let master = url.master("10.0.0.9", 6379);
        use redis::IntoConnectionInfo;
        let info = master
            .as_str()
            .into_connection_info()
            .expect("the master's URL");
        assert_eq!(info.redis_settings().password(), Some("p@ss/w#d"));
        assert_eq!(info.redis_settings().db(), 2);
        assert_eq!(
            redact_url("redis+sentinel://app:p@ss/w#d@10.0.0.1:26379/mymaster"),
            "redis+sentinel://app:***@10.0.0.1:26379/mymaster"
        );
        let tls = sentinel_url("rediss+sentinel://h:1/m")
            .expect("sentinel")
            .expect("valid");
        assert_eq!((tls.scheme, tls.db), ("rediss", 0));
        for bad in [
            "redis+sentinel://h:1",
            "redis+sentinel://h:1/",
            "redis+sentinel:///m",
            "redis+sentinel://h:1/m/x",
            "redis+sentinel://h:1/m/0/9",
        ] {
            assert!(matches!(sentinel_url(bad), Some(Err(_))), "{bad}");
        }
        assert!(sentinel_url("redis://h:1/0").is_none());
    }

    #[test]
    fn urls_without_credentials_are_left_alone() {
        for url in [
            "redis://127.0.0.1:6379/0",
            "rediss://db:6380",
            "unix:///tmp/r.sock",
        ] {
            assert_eq!(client_url(url), url);
            assert_eq!(redact_url(url), url);
        }
    }
}

//! [`TestRedis`]: a private `redis-server` per test (plain, with TLS, or with extra
//! settings such as ACL users), and [`TestConfig`]: configuration files pointing a bus (Rust
//! or the Python peer) at it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tls::TestCertificates;

/// A private `redis-server` for one test, listening on 127.0.0.1 on a free port.
#[derive(Debug)]
pub struct TestRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// With TLS: the certificates, and the server listens only for TLS.
    tls: Option<TestCertificates>,
    /// More settings for `redis-server`, as command-line options.
    args: Vec<String>,
}

impl TestRedis {
    /// Starts a fresh server (no persistence) and waits until it answers `PING`.
    pub fn start() -> TestRedis {
        TestRedis::start_with(None, &[])
    }

    /// Starts a server that accepts only TLS connections (`--port 0 --tls-port P`), with
    /// certificates made now (see [`TestCertificates`]), requiring a client certificate
    /// signed by the same CA. Its [`url`](Self::url) is `rediss://127.0.0.1:P/0`.
    pub fn start_tls() -> TestRedis {
        TestRedis::start_with(Some(None), &[])
    }

    /// Like [`start_tls`](Self::start_tls), with the certificates of another server (both
    /// then trust each other, e.g. for replication over TLS) and more settings.
    pub fn start_tls_with(certificates: &TestCertificates, args: &[&str]) -> TestRedis {
        TestRedis::start_with(Some(Some(certificates.clone())), args)
    }

    /// Starts a server with more settings, as `redis-server` command-line options, e.g.
    /// `["--user", "app", "on", ">secret", "~*", "&*", "+@all"]` for an ACL user (the
    /// `default` user stays open, so [`connection`](Self::connection) still works), or
    /// `["--appendonly", "yes", "--appendfsync", "always"]` for data that survives
    /// [`stop`](Self::stop) and [`restart`](Self::restart).
    pub fn start_with_args(args: &[&str]) -> TestRedis {
        TestRedis::start_with(None, args)
    }

    /// `tls`: none, new certificates (`Some(None)`) or the given ones.
    fn start_with(tls: Option<Option<TestCertificates>>, args: &[&str]) -> TestRedis {
        for _ in 0..10 {
            let dir = tempfile::tempdir().expect("create a temporary directory for redis-server");
            let tls = tls
                .clone()
                .map(|given| given.unwrap_or_else(|| TestCertificates::create(dir.path())));
            let mut redis = TestRedis {
                port: free_port(),
                dir,
                child: None,
                tls,
                args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            };
            if redis.spawn() {
                return redis;
            }
        }
        panic!("could not start redis-server on a free port after 10 attempts");
    }

    /// The certificates of a server started with [`start_tls`](Self::start_tls).
    pub fn certificates(&self) -> Option<&TestCertificates> {
        self.tls.as_ref()
    }

    /// Spawns the server on `self.port`; true once it answers.
    fn spawn(&mut self) -> bool {
        let mut command = Command::new(redis_server_binary());
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some(tls) => command.args(tls.server_args(self.port)),
        };
        let child = command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", &self.dir.path().display().to_string()])
            // Last, so that they override the defaults above (`--appendonly yes`).
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); install it (apt-get install redis-server)")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return false; // exited: most likely the port was taken meanwhile
                }
            }
            if self.ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        false
    }

    fn ping(&self) -> bool {
        self.client()
            .and_then(|client| client.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn))
            .is_ok()
    }

    /// A client of the `default` user (with the test's client certificate under TLS).
    fn client(&self) -> redis::RedisResult<redis::Client> {
        match &self.tls {
            None => redis::Client::open(self.url()),
            Some(tls) => tls.client(self.url()),
        }
    }

    /// The server's URL, e.g. `redis://127.0.0.1:41234/0` (`rediss://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    /// The server's URL with `user:password@` (written as given) before the host, e.g.
    /// `redis://app:p@ss@127.0.0.1:41234/0`.
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        self.url()
            .replacen("://", &format!("://{user}:{password}@"), 1)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A configuration file (YAML) pointing every transport of every API at this server,
    /// written into the server's temporary directory. `extra_api_yaml` is appended to the
    /// `default` API entry (indent it by 4 spaces), e.g. `"    rpc_timeout: 1\n"`. A shortcut
    /// for `self.config().api_yaml(extra_api_yaml).write()`.
    pub fn config_file(&self, extra_api_yaml: &str) -> PathBuf {
        self.config().api_yaml(extra_api_yaml).write()
    }

    /// A configuration file being prepared for this server, for both the Rust library and
    /// the Python peer: `redis.config().rpc_timeout(2.0).result_ttl(30).write()`. With no
    /// settings, every transport of every API points at this server and nothing else is set.
    pub fn config(&self) -> TestConfig<'_> {
        TestConfig {
            redis: self,
            rpc_timeout: None,
            result_ttl: None,
            validate: None,
            schema_ttl: None,
            extra_api_yaml: String::new(),
            event_yaml: String::new(),
            plugins_yaml: None,
            url: None,
            root_yaml: String::new(),
        }
    }

    /// A synchronous connection, for inspecting what the bus left in Redis.
    pub fn connection(&self) -> redis::Connection {
        self.client()
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("connect to the test redis-server")
    }

    /// How many connected clients last ran `command` (lower case, e.g. `blpop`): a client
    /// blocked in a pop shows up here, so this tells when a worker is waiting for calls.
    pub fn clients_running(&self, command: &str) -> usize {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut self.connection())
            .expect("CLIENT LIST");
        let wanted = format!("cmd={command}");
        list.lines()
            .filter(|line| line.split(' ').any(|field| field == wanted))
            .count()
    }

    /// The length of the list `key` (0 if it does not exist).
    pub fn list_len(&self, key: &str) -> usize {
        redis::cmd("LLEN")
            .arg(key)
            .query(&mut self.connection())
            .expect("LLEN")
    }

    /// Stops the server with SIGKILL (simulating an outage). Its data is lost, unless it was
    /// started with `--appendonly yes` (see [`start_with_args`](Self::start_with_args)).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port after [`stop`](Self::stop).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("could not restart redis-server on port {}", self.port);
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A configuration file being prepared; see [`TestRedis::config`].
#[derive(Debug)]
pub struct TestConfig<'a> {
    redis: &'a TestRedis,
    rpc_timeout: Option<f64>,
    result_ttl: Option<u64>,
    validate: Option<bool>,
    schema_ttl: Option<u64>,
    extra_api_yaml: String,
    event_yaml: String,
    plugins_yaml: Option<String>,
    url: Option<String>,
    root_yaml: String,
}

impl TestConfig<'_> {
    /// How long callers wait for a result, in seconds. Also sets the RPC transport's
    /// `rpc_timeout` (rounded up to whole seconds), which is how long a queued call lives, so
    /// Python callers' calls outlive a worker that starts late. The Python peer only accepts
    /// whole seconds here: give it an integral value in interop tests.
    pub fn rpc_timeout(mut self, seconds: f64) -> Self {
        self.rpc_timeout = Some(seconds);
        self
    }

    /// How long a worker's result stays in Redis (the result transport's `result_ttl`).
    pub fn result_ttl(mut self, seconds: u64) -> Self {
        self.result_ttl = Some(seconds);
        self
    }

    /// Whether the `default` API validates messages against schemas (its `validate` key).
    pub fn validate(mut self, on: bool) -> Self {
        self.validate = Some(on);
        self
    }

    /// How long a stored schema lives, in seconds (`bus.schema.ttl`); workers refresh it
    /// before that.
    pub fn schema_ttl(mut self, seconds: u64) -> Self {
        self.schema_ttl = Some(seconds);
        self
    }

    /// More keys for the `default` API entry, indented by 4 spaces.
    pub fn api_yaml(mut self, yaml: &str) -> Self {
        self.extra_api_yaml.push_str(yaml);
        self
    }

    /// More keys for the Redis event transport of the `default` API, indented by 8 spaces,
    /// e.g. `"        stream_use: per_event\n"`.
    pub fn event_yaml(mut self, yaml: &str) -> Self {
        self.event_yaml.push_str(yaml);
        self
    }

    /// The top-level `plugins:` section, its entries indented by 2 spaces, e.g.
    /// `"  internal_metrics: {enabled: true}\n"`.
    pub fn plugins_yaml(mut self, yaml: &str) -> Self {
        self.plugins_yaml
            .get_or_insert_with(String::new)
            .push_str(yaml);
        self
    }

    /// The URL every transport uses, instead of the server's own (say, with credentials).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// More top-level sections, unindented, e.g. `"tls:\n  ca_file: /x/ca.pem\n"`.
    pub fn root_yaml(mut self, yaml: &str) -> Self {
        self.root_yaml.push_str(yaml);
        self
    }

    /// Writes the file into the server's temporary directory and returns its path.
    pub fn write(self) -> PathBuf {
        let mut schema = String::new();
        let mut api = self.extra_api_yaml;
        let mut rpc_transport = String::new();
        let mut result_transport = String::new();
        if let Some(ttl) = self.schema_ttl {
            schema.push_str(&format!("    ttl: {ttl}\n"));
        }
        if let Some(on) = self.validate {
            api.push_str(&format!("    validate: {on}\n"));
        }
        if let Some(seconds) = self.rpc_timeout {
            api.push_str(&format!("    rpc_timeout: {}\n", number(seconds)));
            let whole = seconds.ceil().max(1.0);
            rpc_transport.push_str(&format!("        rpc_timeout: {}\n", number(whole)));
            result_transport.push_str(&format!("        rpc_timeout: {}\n", number(whole)));
        }
        if let Some(ttl) = self.result_ttl {
            result_transport.push_str(&format!("        result_ttl: {ttl}\n"));
        }
        let event_transport = self.event_yaml;
        let plugins = self
            .plugins_yaml
            .map(|yaml| format!("plugins:\n{yaml}"))
            .unwrap_or_default();
        let url = self.url.unwrap_or_else(|| self.redis.url());
        // Quoted: a password may hold characters YAML reads otherwise (`#`, `: `).
        let url = serde_json::Value::String(url).to_string();
        let root = self.root_yaml;
        let yaml = format!(
            "bus:\n  schema:\n{schema}    transport:\n      redis:\n        url: {url}\n\
             apis:\n  default:\n{api}\
             \x20   rpc_transport:\n      redis:\n        url: {url}\n{rpc_transport}\
             \x20   result_transport:\n      redis:\n        url: {url}\n{result_transport}\
             \x20   event_transport:\n      redis:\n        url: {url}\n{event_transport}\
             {plugins}{root}"
        );
        let path = self
            .redis
            .dir
            .path()
            .join(format!("lightbus-{}.yaml", unique_suffix()));
        std::fs::write(&path, yaml).expect("write the test configuration file");
        path
    }
}

/// A number as YAML: `2` for whole numbers (the Python peer wants integers), else `0.5`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

pub(crate) fn redis_server_binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("find a free loopback port")
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use lightbus::config::{Config, StreamUse, Validate};

    use super::TestRedis;

    /// Every setting of a [`TestConfig`](super::TestConfig) lands where the library reads it.
    #[test]
    fn every_setting_is_read_back_by_the_library() {
        let redis = TestRedis::start();
        let path = redis
            .config()
            .rpc_timeout(1.5)
            .result_ttl(30)
            .validate(false)
            .schema_ttl(7)
            .api_yaml("    strict_validation: true\n")
            .event_yaml("        stream_use: per_event\n")
            .plugins_yaml("  internal_metrics: {enabled: true}\n")
            .write();
        let config = Config::from_path(&path).expect("the written file is a valid configuration");
        let api = config.api("any");
        assert_eq!(api.rpc_timeout, 1.5);
        assert!(
            matches!(api.validate, Validate::Both(false)),
            "{:?}",
            api.validate
        );
        assert!(api.strict_validation);
        let rpc = api.rpc_transport.redis().expect("redis rpc transport");
        assert_eq!(rpc.url, redis.url());
        assert_eq!(rpc.rpc_timeout, 2.0);
        let result = api
            .result_transport
            .redis()
            .expect("redis result transport");
        assert_eq!(result.result_ttl, 30);
        assert_eq!(result.rpc_timeout, 2.0);
        let event = api.event_transport.redis().expect("redis event transport");
        assert_eq!(
            (event.url.as_str(), event.stream_use),
            (redis.url().as_str(), StreamUse::PerEvent)
        );
        assert_eq!(config.file.bus.schema.ttl, 7);
        assert!(config.file.plugins.internal_metrics.enabled);
    }

    /// Without settings, the file only points every transport at the server.
    #[test]
    fn a_plain_file_points_every_transport_at_the_server() {
        let redis = TestRedis::start();
        let plain = Config::from_path(redis.config().write()).expect("a valid configuration");
        let shortcut = std::fs::read_to_string(redis.config_file("")).expect("read the file");
        assert_eq!(
            std::fs::read_to_string(redis.config().write()).expect("read the file"),
            shortcut
        );
        let api = plain.api("any");
        let urls = [
            api.rpc_transport.redis().map(|redis| redis.url.clone()),
            api.result_transport.redis().map(|redis| redis.url.clone()),
            api.event_transport.redis().map(|redis| redis.url.clone()),
            plain
                .file
                .bus
                .schema
                .transport
                .redis()
                .map(|redis| redis.url.clone()),
        ];
        assert!(
            urls.iter()
                .all(|url| url.as_deref() == Some(redis.url().as_str())),
            "{urls:?}"
        );
    }
}

//! `lightbus dashboard` end to end in headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven through chromedriver's WebDriver API): the page loads, lists
//! the `auth` API and its live worker, and its rate chart moves while `lightbus bench fire`
//! runs. With `LIGHTBUS_SCREENSHOTS=DIR` it also saves screenshots there (the README's).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::Fixture;

const PATIENCE: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// Kills a child process when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request to chromedriver; the JSON body of the answer.
fn webdriver(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connects to chromedriver");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("sends the request");
    // Read the head, then exactly the body it announces (chromedriver may keep the
    // connection open).
    let mut response = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = find(&response, b"\r\n\r\n") {
            break at + 4;
        }
        let read = stream.read(&mut buffer).expect("reads the answer");
        assert!(read > 0, "chromedriver closed the connection mid-answer");
        response.extend_from_slice(&buffer[..read]);
    };
    let head = String::from_utf8_lossy(&response[..head_end]).to_ascii_lowercase();
    let chunked = head.contains("transfer-encoding: chunked");
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok());
    loop {
        let body = &response[head_end..];
        let complete = match length {
            Some(length) => body.len() >= length,
            None if chunked => find(body, b"0\r\n\r\n").is_some(),
            None => false,
        };
        if complete {
            break;
        }
        let read = stream.read(&mut buffer).expect("reads the answer");
        if read == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..read]);
    }
    let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
    let payload = String::from_utf8_lossy(&response[head_end..]).into_owned();
    let payload = if chunked { dechunk(&payload) } else { payload };
    serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{e}: {head}\n{payload}"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        text = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A headless Chromium session.
struct Browser {
    port: u16,
    session: String,
    _driver: Killed,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver)");
        let driver = Killed(driver);
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("an empty profile directory");
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--window-size=1440,1180".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let created = webdriver(
            port,
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}
            }}})),
        );
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Browser {
            port,
            session,
            _driver: driver,
            _profile: profile,
        }
    }

    fn open(&self, url: &str) {
        let path = format!("/session/{}/url", self.session);
        webdriver(self.port, "POST", &path, Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page; its return value.
    fn eval(&self, script: &str) -> Value {
        let path = format!("/session/{}/execute/sync", self.session);
        let answer = webdriver(
            self.port,
            "POST",
            &path,
            Some(json!({"script": script, "args": []})),
        );
        answer["value"].clone()
    }

    /// A PNG of the window.
    fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let path = format!("/session/{}/screenshot", self.session);
        let answer = webdriver(self.port, "GET", &path, None);
        base64::engine::general_purpose::STANDARD
            .decode(answer["value"].as_str().expect("base64 PNG"))
            .expect("valid base64")
    }

    /// Polls `script` until `accept` holds on its value; that value.
    fn wait_for(&self, what: &str, script: &str, accept: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.eval(script);
            if accept(&value) {
                return value;
            }
            assert!(Instant::now() < deadline, "{what}; last seen: {value}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.session);
        let _ = std::panic::catch_unwind(|| webdriver(self.port, "DELETE", &path, None));
    }
}

/// What the test reads off the page.
const PAGE_STATE: &str = r#"
    const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr`)];
    const chart = document.getElementById("rate-chart");
    const events = chart.querySelector('path[data-series="events_per_second"]');
    return {
        apis: rows("apis").map((r) => r.dataset.api).filter(Boolean),
        workers: rows("workers").map((r) => ({process: r.dataset.process, state: r.dataset.state,
                                              text: r.textContent})),
        points: Number(chart.dataset.points || 0),
        latest: chart.dataset.latest ? JSON.parse(chart.dataset.latest) : null,
        events_path: events ? events.getAttribute("d") : "",
        connected: window.lightbusDashboard.connected,
    };
"#;

fn save_screenshot(name: &str, png: &[u8]) {
    if let Ok(dir) = std::env::var("LIGHTBUS_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        std::fs::write(std::path::Path::new(&dir).join(name), png).expect("write screenshot");
    }
}

#[test]
fn the_page_shows_the_bus_and_its_rate_chart_moves_under_load() {
    let fixture = Fixture::with_root_yaml(
        "plugins:\n  internal_state:\n    enabled: true\n    ping_interval: 5\n  \
         internal_metrics:\n    enabled: true\n",
    );
    let _serving = fixture.serve_auth();
    let port = free_port();
    let dashboard = fixture
        .lightbus()
        .args(["dashboard", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("lightbus dashboard runs");
    let _dashboard = Killed(dashboard);
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the dashboard never listened");
        std::thread::sleep(Duration::from_millis(50));
    }

    let browser = Browser::start();
    browser.open(&format!("http://127.0.0.1:{port}/"));
    let idle = browser.wait_for(
        "the page lists the auth API and a live worker serving it",
        PAGE_STATE,
        |page| {
            page["connected"] == true
                && page["apis"]
                    .as_array()
                    .is_some_and(|apis| apis.iter().any(|api| api == "auth"))
                && page["workers"].as_array().is_some_and(|workers| {
                    workers.iter().any(|w| {
                        w["state"] == "alive" && w["text"].as_str().unwrap_or("").contains("auth")
                    })
                })
                && page["points"].as_u64().unwrap_or(0) >= 2
        },
    );
    let idle_path = idle["events_path"].as_str().unwrap_or_default().to_owned();

    let bench = fixture
        .lightbus()
        .args([
            "bench",
            "fire",
            "--concurrency",
            "8",
            "--requests",
            "400000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("lightbus bench runs");
    let _bench = Killed(bench);
    let busy = browser.wait_for(
        "the events rate on the chart rises while bench fires",
        PAGE_STATE,
        |page| {
            page["latest"]["events_per_second"].as_f64().unwrap_or(0.0) > 0.0
                && page["events_path"].as_str().unwrap_or_default() != idle_path
        },
    );
    let rate = busy["latest"]["events_per_second"].as_f64().unwrap_or(0.0);
    assert!(rate > 0.0, "{busy}");
    // Calls answered by the auth worker show up as latency (from internal.metrics), and a
    // consumer group whose listener is not running shows its lag.
    for _ in 0..10 {
        let output = fixture.run(&[
            "call",
            "auth.check_password",
            "username=admin",
            "password=secret",
        ]);
        assert!(output.status.success(), "{}", support::stderr(&output));
    }
    fixture.create_group("auth.*:stream", "billing-on_signup");
    for n in 0..7 {
        fixture.fire(
            "auth",
            1,
            "user_registered",
            json!({"username": format!("user{n}")}),
        );
    }
    let loaded = browser.wait_for(
        "call latency and the group's lag appear",
        r#"return {latency: document.getElementById("kpi-latency").textContent,
                   lag: document.getElementById("kpi-lag").textContent};"#,
        |page| page["latency"].as_str().is_some_and(|t| t.ends_with("ms")) && page["lag"] == "7",
    );
    assert_eq!(loaded["lag"], "7", "{loaded}");
    // A few more seconds of load, so the screenshot shows a curve, not a step.
    std::thread::sleep(Duration::from_secs(4));
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    save_screenshot("dashboard.png", &png);
}

//! Values, schemas and errors between Rust and the Python Lightbus 1.1.2 peer, over a table
//! of types, in both directions: RPC arguments and results, event parameters, and the stored
//! schemas compared member by member. A cell passes when the value arrives as the same value
//! and, where it is text, byte for byte as Python itself writes it (so a peer on Python 3.10,
//! whose `fromisoformat` reads only what `isoformat` writes, reads it too).
//!
//! The table is the macro call at the bottom of this file (Rust side) and
//! `tests/peer/values_cases.py` (Python side), one line per case in each.
//!
//! Every test runs against each Python the machine has the peer for: `.venv` (the usual
//! peer) and a Python 3.10 peer when one is installed (`LIGHTBUS_PEER_PYTHON310`, or
//! `.venv310`, which `scripts/setup-python-peer.sh` builds when it finds a CPython 3.10 — this
//! project's machine image has one in pyenv). Without one, that leg is skipped with a note on
//! stderr.

// A test crate: its APIs are cases, documented by the test that uses them.
#![allow(missing_docs, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use lightbus::api::Api;
use lightbus::schema::{api_schema, to_python_json};
use lightbus::types::Base64Bytes;
use lightbus::EventMessage;
use lightbus_test_support::bus::bus;
use lightbus_test_support::wait::{eventually, PATIENCE};
use lightbus_test_support::worker::RunningWorker;
use lightbus_test_support::{peer_dir, python, workspace_root, PythonPeer, TestRedis};
use redis::Commands;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `Color(Enum)` with values `"red"`, `"green"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    /// `Color.RED`
    Red,
    /// `Color.GREEN`
    Green,
}

/// The dataclass `Order(sku: str, qty: int, when: Optional[datetime], note: str = "")`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Order {
    sku: String,
    qty: i64,
    when: Option<DateTime<Utc>>,
    #[serde(default)]
    note: String,
}

fn utc(hms: (u32, u32, u32), nanos: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, hms.0, hms.1, hms.2)
        .unwrap()
        + chrono::Duration::nanoseconds(nanos.into())
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// One checked thing and what went wrong with it, if anything.
#[derive(Debug)]
pub struct Cell {
    name: String,
    problem: Option<String>,
}

fn cell(name: impl Into<String>, problem: Option<String>) -> Cell {
    Cell {
        name: name.into(),
        problem,
    }
}

fn compare<T: PartialEq + std::fmt::Debug>(got: &T, expected: &T) -> Option<String> {
    (got != expected).then(|| format!("got {got:?}, expected {expected:?}"))
}

/// Fails the test listing every failed cell, after printing the tally.
fn assert_cells(what: &str, cells: &[Cell]) {
    let failed: Vec<&Cell> = cells.iter().filter(|c| c.problem.is_some()).collect();
    eprintln!(
        "{what}: {} of {} cells pass",
        cells.len() - failed.len(),
        cells.len()
    );
    let listing: Vec<String> = failed
        .iter()
        .map(|c| format!("  {}: {}", c.name, c.problem.as_deref().unwrap_or_default()))
        .collect();
    assert!(
        failed.is_empty(),
        "{what}: failed cells:\n{}",
        listing.join("\n")
    );
}

/// The Python interpreters to run the peer on: the usual one, and 3.10 when installed.
fn pythons() -> Vec<(&'static str, PathBuf)> {
    let mut found = vec![("python (.venv)", python())];
    let python310 = std::env::var_os("LIGHTBUS_PEER_PYTHON310")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv310/bin/python"));
    if python310.exists() {
        found.push(("python 3.10", python310));
    } else {
        eprintln!(
            "note: the Python 3.10 leg is skipped: no peer at {} (scripts/setup-python-peer.sh \
             builds it from a CPython 3.10 on PATH, in pyenv, or named by PYTHON310; or set \
             LIGHTBUS_PEER_PYTHON310). The package registries offer none that installs here: \
             Debian bookworm ships 3.11 only, and npm's portable-python downloads its binary \
             at install time.",
            python310.display()
        );
    }
    found
}

/// Starts a peer process with `python`, in the peer scripts' directory.
fn spawn(python: &Path, config: &Path, args: &[&str], env: &[(&str, &str)]) -> PythonPeer {
    let mut peer = PythonPeer::spawn_with(python, &peer_dir(), config, args, env)
        .unwrap_or_else(|e| panic!("cannot start the Python peer ({e})"));
    peer.capture_output();
    peer
}

/// `lightbus run` on the bus module `values_bus.py`.
fn python_worker(python: &Path, config: &Path) -> PythonPeer {
    let run = "import sys; from lightbus.commands import lightbus_entry_point; \
               sys.exit(lightbus_entry_point())";
    spawn(
        python,
        config,
        &["-c", run, "run"],
        &[("LIGHTBUS_MODULE", "values_bus")],
    )
}

/// The `{cell: problem}` object a peer script printed after `REPORT`, as cells.
fn report_cells(line: &str) -> Vec<Cell> {
    let report: BTreeMap<String, Value> =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("bad report {line:?}: {e}"));
    report
        .into_iter()
        .map(|(name, problem)| cell(name, problem.as_str().map(str::to_owned)))
        .collect()
}

/// The value stored under `schema:{api}`, once a worker stored it.
async fn stored_schema(redis: &TestRedis, api: &str, peer: &mut PythonPeer) -> Value {
    let mut conn = redis.connection();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(Some(text)) = conn.get::<_, Option<String>>(format!("schema:{api}")) {
            return serde_json::from_str(&text).expect("a JSON schema");
        }
        assert!(
            peer.is_running() && tokio::time::Instant::now() < deadline,
            "no schema:{api} appeared\n{}",
            peer.output_so_far()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `stream` has a consumer group: its listener is ready for new events.
async fn wait_for_a_group(redis: &TestRedis, stream: &str) {
    eventually(
        &format!("a listener creates its consumer group on {stream}"),
        || {
            redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(stream)
                .query::<Vec<redis::Value>>(&mut redis.connection())
                .is_ok_and(|groups| !groups.is_empty())
        },
    )
    .await;
}

/// `api`'s name replaced by `with` in every title, so two APIs of equal signatures compare.
fn retitled(schema: &Value, api: &str, with: &str) -> Value {
    let text = to_python_json(schema, None).replace(&format!(" {api}."), &format!(" {with}."));
    serde_json::from_str(&text).expect("still JSON")
}

/// `schema` with every `required` list sorted: the peer lists a class's required fields in
/// set order, which changes from one Python process to the next (hash randomisation).
fn required_sorted(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let value = match (key.as_str(), value) {
                        ("required", Value::Array(names)) => {
                            let mut names = names.clone();
                            names.sort_by_key(|name| name.to_string());
                            Value::Array(names)
                        }
                        _ => required_sorted(value),
                    };
                    (key.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(required_sorted).collect()),
        other => other.clone(),
    }
}

/// Compares the Rust and Python schemas of each member, parameters and response apart.
fn schema_cells(leg: &str, rust: &Value, python: &Value) -> (Vec<Cell>, usize) {
    let mut cells = Vec::new();
    let mut byte_identical = 0;
    for (section, parts) in [
        ("rpcs", &["parameters", "response"][..]),
        ("events", &["parameters"][..]),
    ] {
        let names: std::collections::BTreeSet<&String> = rust[section]
            .as_object()
            .into_iter()
            .chain(python[section].as_object())
            .flat_map(|members| members.keys())
            .collect();
        for name in names {
            for part in parts {
                let (ours, theirs) = (&rust[section][name][part], &python[section][name][part]);
                if to_python_json(ours, None) == to_python_json(theirs, None) {
                    byte_identical += 1;
                }
                let problem = (required_sorted(ours) != required_sorted(theirs)).then(|| {
                    format!(
                        "\n    rust:   {}\n    python: {}",
                        to_python_json(ours, None),
                        to_python_json(theirs, None)
                    )
                });
                cells.push(cell(
                    format!("{leg} schema: {section}.{name}.{part}"),
                    problem,
                ));
            }
        }
    }
    (cells, byte_identical)
}

/// Special cases only a Python caller produces, served by Rust.
#[lightbus::api(name = "rs_special")]
pub trait RsSpecial {
    /// Returns `value`: Python's `1.0` must arrive as `1`.
    async fn integer(&self, value: i64) -> i64;

    /// `"nan"`, `"inf"`, `"-inf"` or `"finite"`.
    async fn float_kind(&self, value: f64) -> String;
}

struct Special;

impl RsSpecial for Special {
    async fn integer(&self, value: i64) -> i64 {
        value
    }

    async fn float_kind(&self, value: f64) -> String {
        match value {
            v if v.is_nan() => "nan",
            v if v == f64::INFINITY => "inf",
            v if v == f64::NEG_INFINITY => "-inf",
            _ => "finite",
        }
        .to_owned()
    }
}

/// The Rust side of the table. Each line: `case: RustType = value sent by Rust`, then
/// optionally `, back value` when what comes back differs from what was sent (a
/// nanosecond datetime: Python holds microseconds). From it come `py_values` (a client of the
/// Python worker), `rs_values` (served here, checking each value it receives), the event
/// `values` of `rs_events` and `py_events`, and the functions running each direction.
macro_rules! value_table {
    (@back $sent:expr, $back:expr) => { $back };
    (@back $sent:expr,) => { $sent };
    ($($case:ident: $ty:ty = $sent:expr $(, back $back:expr)?;)*) => {
        /// The values of the table: what Rust sends, and what it must get back.
        mod expected {
            use super::*;
            $(
                pub fn $case() -> ($ty, $ty) {
                    ($sent, value_table!(@back $sent, $($back)?))
                }
            )*
        }

        /// The Python worker's API, as a Rust caller sees it.
        #[lightbus::api(name = "py_values")]
        pub trait PyValues {
            $(async fn $case(&self, value: $ty) -> Result<$ty, String>;)*

            /// `def optional_omitted(self, a: int, b: Optional[str] = None) -> Optional[str]`
            async fn optional_omitted(&self, a: i64, b: Option<String>) -> Option<String>;

            /// `def default_omitted(self, a: int, b: str = "dflt") -> str`
            async fn default_omitted(&self, a: i64, #[default("dflt")] b: String) -> String;
        }

        /// The same API served by Rust: each handler checks it received the table's value.
        #[lightbus::api(name = "rs_values")]
        pub trait RsValues {
            $(async fn $case(&self, value: $ty) -> Result<$ty, String>;)*

            /// Returns `b` (`None` when left out).
            async fn optional_omitted(&self, a: i64, b: Option<String>) -> Option<String>;

            /// Returns `b` (`"dflt"` when left out).
            async fn default_omitted(&self, a: i64, #[default("dflt")] b: String) -> String;
        }

        struct Values;

        impl RsValues for Values {
            $(
                async fn $case(&self, value: $ty) -> Result<$ty, String> {
                    let back = expected::$case().1;
                    match compare(&value, &back) {
                        None => Ok(value),
                        Some(problem) => Err(format!("{}: {problem}", stringify!($case))),
                    }
                }
            )*

            async fn optional_omitted(&self, _a: i64, b: Option<String>) -> Option<String> {
                b
            }

            async fn default_omitted(&self, _a: i64, b: String) -> String {
                b
            }
        }

        /// Events with one parameter per case: fired by Rust (`rs_events`) and by Python
        /// (`py_events`).
        pub mod rs_events {
            use super::*;

            /// Owns the event `values`.
            #[lightbus::api(name = "rs_events")]
            pub trait RsEvents {
                /// Every value of the table.
                #[event]
                #[derive(PartialEq)]
                fn values($($case: $ty),*);
            }

            /// Serves nothing: registering it makes a process authoritative for the event.
            #[derive(Debug)]
            pub struct Owner;

            impl RsEvents for Owner {}

            /// The event carrying what Rust sends.
            pub fn sent() -> Values {
                Values { $($case: expected::$case().0),* }
            }
        }

        /// `py_events`, whose `values` the Python peer fires.
        pub mod py_events {
            use super::*;

            /// The Python API's events, as Rust listeners see them.
            #[lightbus::api(name = "py_events")]
            pub trait PyEvents {
                /// Every value of the table.
                #[event]
                fn values($($case: $ty),*);
            }

            /// Serves nothing; used for the schema only.
            #[derive(Debug)]
            pub struct Owner;

            impl PyEvents for Owner {}

            /// One cell per parameter of an event Python fired.
            pub fn cells(event: &Values) -> Vec<Cell> {
                vec![$(
                    cell(
                        concat!("python->rust event: ", stringify!($case)),
                        compare(&event.$case, &expected::$case().1),
                    ),
                )*]
            }
        }

        /// Calls every case of the Python worker with the typed client: the worker checks the
        /// text it got, and Rust checks the value it gets back.
        async fn call_python_worker(client: &PyValuesClient) -> Vec<Cell> {
            let mut cells = Vec::new();
            $(
                let (sent, back) = expected::$case();
                let problem = match client.$case(sent).await {
                    Ok(value) => compare(&value, &back),
                    Err(error) => Some(error.to_string()),
                };
                cells.push(cell(concat!("rust->python rpc: ", stringify!($case)), problem));
            )*
            cells
        }
    };
}

value_table! {
    datetime_utc: DateTime<Utc> = utc((12, 34, 56), 789_012_000);
    datetime_half_second: DateTime<Utc> = utc((12, 34, 56), 500_000_000);
    datetime_whole_second: DateTime<Utc> = utc((12, 34, 56), 0);
    datetime_nanos: DateTime<Utc> = utc((12, 34, 56), 123_456_789), back utc((12, 34, 56), 123_456_000);
    datetime_offset: DateTime<FixedOffset> = FixedOffset::west_opt(5 * 3600 + 1800)
        .unwrap()
        .with_ymd_and_hms(2024, 5, 1, 12, 34, 56)
        .unwrap()
        + chrono::Duration::milliseconds(250);
    naive_datetime: NaiveDateTime = NaiveDate::from_ymd_opt(2024, 5, 1)
        .unwrap()
        .and_hms_micro_opt(12, 34, 56, 5)
        .unwrap();
    date: NaiveDate = NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
    decimal: Decimal = dec("-12.50");
    uuid: uuid::Uuid = "6f1c1f4e-1e2d-4c55-9a7b-0123456789ab".parse().unwrap();
    bytes: Base64Bytes = Base64Bytes::from(b"\x00\xffhi".to_vec());
    color: Color = Color::Green;
    big_integer: i64 = 9_007_199_254_740_993;
    float: f64 = 0.1;
    text: String = "h\u{e9}llo \u{2713} \u{1F600} \"q\"".to_owned();
    order: Order = Order {
        sku: "A-1".into(),
        qty: 2,
        when: Some(utc((0, 0, 0), 500_000_000)),
        note: String::new(),
    };
    datetimes: Vec<DateTime<Utc>> = vec![utc((0, 0, 1), 0)];
    prices: BTreeMap<String, Decimal> =
        BTreeMap::from([("a".to_owned(), dec("1.50")), ("b".to_owned(), dec("0"))]);
}

// ------------------------------------------------------------------- Rust calls Python

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_typed_calls_reach_a_python_worker_in_its_own_forms() {
    for (leg, python) in pythons() {
        let redis = TestRedis::start();
        let config = redis
            .config()
            .rpc_timeout(10.0)
            .api_yaml("    cast_values: false\n")
            .write();
        let mut worker = python_worker(&python, &config);
        stored_schema(&redis, "py_values", &mut worker).await;
        eventually("the Python worker pops its queues", || {
            redis.clients_running("blpop") > 0
        })
        .await;

        let caller = bus(&redis.config().rpc_timeout(10.0).write());
        let client = PyValuesClient::new(&caller);
        let mut cells = call_python_worker(&client).await;
        // Left out, so the Python defaults apply; given, they arrive.
        cells.push(cell(
            "rust->python rpc: Option<String> None left out for `b: Optional[str] = None`",
            match client.optional_omitted(1, None).await {
                Ok(value) => compare(&value, &None),
                Err(error) => Some(error.to_string()),
            },
        ));
        cells.push(cell(
            "rust->python rpc: Option<String> given",
            match client.optional_omitted(1, Some("x".to_owned())).await {
                Ok(value) => compare(&value, &Some("x".to_owned())),
                Err(error) => Some(error.to_string()),
            },
        ));
        cells.push(cell(
            "rust->python rpc: #[default] None left out for `b: str = \"dflt\"`",
            match client.default_omitted(1, None).await {
                Ok(value) => compare(&value, &"dflt".to_owned()),
                Err(error) => Some(error.to_string()),
            },
        ));
        cells.push(cell(
            "rust->python rpc: #[default] given",
            match client.default_omitted(1, "y".to_owned()).await {
                Ok(value) => compare(&value, &"y".to_owned()),
                Err(error) => Some(error.to_string()),
            },
        ));
        assert!(
            worker.is_running(),
            "the Python worker died\n{}",
            worker.output_so_far()
        );
        assert_cells(&format!("{leg}: Rust caller, Python worker"), &cells);
    }
}

// ------------------------------------------------------------------- Python calls Rust

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_calls_reach_a_rust_worker_and_get_pythons_forms_back() {
    for (leg, python) in pythons() {
        let redis = TestRedis::start();
        let config = redis.config().rpc_timeout(10.0).write();
        let server = bus(&config);
        server
            .register(RsValuesServer::new(Values))
            .expect("register");
        server
            .register(RsSpecialServer::new(Special))
            .expect("register");
        let _worker = RunningWorker::serve(server);
        eventually(
            "the Rust worker stores its schema and waits for calls",
            || {
                redis.clients_running("blmpop") > 0
                    && redis
                        .connection()
                        .exists::<_, bool>("schema:rs_values")
                        .unwrap_or(false)
            },
        )
        .await;

        let caller = spawn(&python, &config, &["values_call.py"], &[]);
        let output = tokio::task::spawn_blocking(move || caller.finish(PATIENCE * 2))
            .await
            .expect("the Python caller");
        let line = lightbus_test_support::line_after(&output, "REPORT");
        assert_cells(
            &format!("{leg}: Python caller, Rust worker"),
            &report_cells(&line),
        );
    }
}

// ------------------------------------------------------------------- events both ways

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_fired_by_rust_reach_python_in_its_own_forms() {
    for (leg, python) in pythons() {
        let redis = TestRedis::start();
        let config = redis.config().write();
        let mut listener = spawn(
            &python,
            &config,
            &["values_listen.py"],
            &[
                ("LIGHTBUS_SERVICE_NAME", "py"),
                ("LIGHTBUS_PROCESS_NAME", "py-1"),
            ],
        );
        wait_for_a_group(&redis, "rs_events.*:stream").await;

        let firer = bus(&config);
        firer
            .register(rs_events::RsEventsServer::new(rs_events::Owner))
            .expect("register");
        firer.fire(rs_events::sent()).await.expect("fire");

        let deadline = tokio::time::Instant::now() + PATIENCE;
        let line = loop {
            let output = listener.output_so_far();
            if let Some(line) = output.lines().find_map(|l| l.strip_prefix("REPORT ")) {
                break line.to_owned();
            }
            assert!(
                listener.is_running() && tokio::time::Instant::now() < deadline,
                "the Python listener reported nothing\n{output}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_cells(
            &format!("{leg}: Rust fires, Python listens"),
            &report_cells(&line),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_fired_by_python_reach_typed_rust_listeners() {
    for (leg, python) in pythons() {
        let redis = TestRedis::start();
        let config = redis.config().write();
        let listener = lightbus::Bus::builder()
            .config_file(&config)
            .service_name("rs")
            .process_name("rs-1")
            .build()
            .expect("bus");
        let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
        listener
            .listen(
                "values",
                move |_message: EventMessage, event: py_events::Values| {
                    let _ = sender.send(event);
                    async {}
                },
            )
            .expect("listen");
        let _worker = RunningWorker::serve(listener);
        wait_for_a_group(&redis, "py_events.*:stream").await;

        let firer = spawn(&python, &config, &["values_fire.py"], &[]);
        let output = tokio::task::spawn_blocking(move || firer.finish(PATIENCE))
            .await
            .expect("the Python firer");
        lightbus_test_support::line_after(&output, "FIRED");
        let event = tokio::time::timeout(PATIENCE, received.recv())
            .await
            .unwrap_or_else(|_| {
                let dead: Option<redis::Value> = redis::cmd("XRANGE")
                    .arg("py_events.*:stream:dead")
                    .arg("-")
                    .arg("+")
                    .query(&mut redis.connection())
                    .ok();
                panic!("{leg}: no event reached the Rust listener; dead letters: {dead:?}")
            })
            .expect("an event");
        assert_cells(
            &format!("{leg}: Python fires, Rust listens"),
            &py_events::cells(&event),
        );
    }
}

// ------------------------------------------------------------------- schemas

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_python_store_the_same_schema_for_the_same_signatures() {
    for (leg, python) in pythons() {
        let redis = TestRedis::start();
        let config = redis.config().write();
        let mut worker = python_worker(&python, &config);
        let mut cells = Vec::new();
        let mut identical = 0;
        for (python_api, rust_api, rust) in [
            (
                "py_values",
                "rs_values",
                api_schema(&RsValuesServer::new(Values).descriptor()),
            ),
            (
                "py_events",
                "rs_events",
                api_schema(&rs_events::RsEventsServer::new(rs_events::Owner).descriptor()),
            ),
        ] {
            let stored = stored_schema(&redis, python_api, &mut worker).await;
            let theirs = retitled(&stored, python_api, rust_api);
            let (more, same_bytes) = schema_cells(leg, &rust, &theirs);
            identical += same_bytes;
            cells.extend(more);
        }
        eprintln!(
            "{leg}: {identical} of {} member schemas byte-identical (others may differ only in \
             the order of a class's `required`, which the peer randomises)",
            cells.len()
        );
        // `py_events` as Rust declares it (the typed listener's view) is the same schema too.
        let py_events = api_schema(&py_events::PyEventsServer::new(py_events::Owner).descriptor());
        let stored = stored_schema(&redis, "py_events", &mut worker).await;
        cells.extend(schema_cells(leg, &py_events, &stored).0);
        assert_cells(&format!("{leg}: schemas"), &cells);
    }
}

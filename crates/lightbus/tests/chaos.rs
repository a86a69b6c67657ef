//! Chaos, with counts: the delivery guarantees under SIGKILLed workers, a Redis restart,
//! a paused and a frozen Redis, and handlers slower than the acknowledgement timeout. Each
//! test prints its figures as a markdown table row and asserts the guarantee:
//!
//! - RPC is at most once: no call is executed twice, and every call answered OK was
//!   executed (calls a killed worker had taken fail with a timeout);
//! - events are at least once: every event whose fire succeeded is handled; duplicates are
//!   counted;
//! - after Redis pauses or freezes, calls and events flow again, and nothing is lost.
//!
//! Sizes come from `CHAOS_CALLS` and `CHAOS_EVENTS` (defaults: the reduced sizes CI runs);
//! `scripts/chaos.sh` runs 10,000 of each and prints the tables. Workers that get killed
//! are child processes: this test binary run again with `CHAOS_CHILD_ROLE` set, executing
//! only [`chaos_child_process`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lightbus::api::{ApiBuilder, DynamicApi, Kwargs};
use lightbus::worker::Worker;
use lightbus::{Bus, EventMessage};
use lightbus_test_support::apis::events_auth::{firer, user};
use lightbus_test_support::inspect::{pending_count, wait_for_group};
use lightbus_test_support::{bus, named_bus, RunningWorker, TestChild, TestRedis};
use serde_json::{json, Value};

const PER_API: &str = "auth.*:stream";

/// `name` from the environment as a number, else `default`.
fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

/// How long a chaos run may take before the test gives up: a minute plus a second per 50
/// messages.
fn patience(messages: usize) -> Duration {
    Duration::from_secs(60 + messages as u64 / 50)
}

/// When the `i`th of `n` messages goes out: evenly over 5 s, or over `n / 500` s if that is
/// longer, so that workers are killed many times during a run of any size (a kill every
/// 300–700 ms: ~10 in a CI run, ~40 in a run of 10,000).
fn paced(started: Instant, i: usize, n: usize) -> Instant {
    let span = Duration::from_secs(5).max(Duration::from_millis(n as u64 * 2));
    started + span.mul_f64(i as f64 / n.max(1) as f64)
}

/// The `chaos` API: `work(n)` prints `executed <n>` (before returning, so the line is out
/// even when the process dies before the result is sent), then takes up to 4 ms, so that
/// kills land in the middle of calls.
fn chaos_api() -> DynamicApi {
    ApiBuilder::new("chaos")
        .rpc("work", ["n"], |kwargs: Kwargs| async move {
            let n = kwargs["n"].as_u64().ok_or("n must be a number")?;
            println!("executed {n}");
            tokio::time::sleep(Duration::from_millis(n % 5)).await;
            Ok::<_, &str>(json!(n))
        })
        .build()
}

/// The child process's body (a no-op in an ordinary run). `CHAOS_CHILD_ROLE`: `worker`
/// serves [`chaos_api`]; `listener` is process `CHAOS_CHILD_PROCESS` of service `mail`,
/// whose `welcome` listener prints `handled <event id>` for every `auth.user_registered`.
#[tokio::test]
async fn chaos_child_process() {
    let Ok(role) = std::env::var("CHAOS_CHILD_ROLE") else {
        return;
    };
    let config = PathBuf::from(std::env::var("CHAOS_CHILD_CONFIG").expect("the config"));
    let process = std::env::var("CHAOS_CHILD_PROCESS").expect("the process name");
    let bus = named_bus(&config, "mail", &process);
    match role.as_str() {
        "worker" => bus.register(chaos_api()).expect("register chaos"),
        "listener" => bus
            .listen_raw(
                &["auth.user_registered"],
                "welcome",
                |message: EventMessage| async move {
                    println!("handled {}", message.id);
                },
            )
            .expect("listener"),
        other => panic!("unknown CHAOS_CHILD_ROLE {other}"),
    }
    println!("ready");
    let result = Worker::new(bus).run(std::future::pending()).await;
    panic!("the child worker stopped: {result:?}");
}

/// Child processes of one role, two at a time, one of which is SIGKILLed and started again
/// under the same process name every 300–700 ms while a run lasts (counted from when the
/// last one started again was ready, so that on a loaded machine the two are never both
/// down). Every line any of them printed ends up in [`lines`](Self::lines).
struct KilledRepeatedly {
    lines: Arc<Mutex<Vec<String>>>,
    running: Arc<AtomicBool>,
    killer: tokio::task::JoinHandle<(usize, Vec<tokio::task::JoinHandle<()>>)>,
}

impl KilledRepeatedly {
    fn start(role: &'static str, config: &Path) -> KilledRepeatedly {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicBool::new(true));
        let spawn = {
            let config = config.to_owned();
            let lines = lines.clone();
            move |process: &str, readers: &mut Vec<tokio::task::JoinHandle<()>>| {
                let mut command = TestChild::command("chaos_child_process");
                command
                    .env("CHAOS_CHILD_ROLE", role)
                    .env("CHAOS_CHILD_CONFIG", &config)
                    .env("CHAOS_CHILD_PROCESS", process);
                let mut child = TestChild::spawn(command);
                let mut output = child.take_lines();
                let lines = lines.clone();
                readers.push(tokio::spawn(async move {
                    while let Some(line) = output.recv().await {
                        lines.lock().unwrap().push(line);
                    }
                }));
                child
            }
        };
        let (still_running, said) = (running.clone(), lines.clone());
        let killer = tokio::spawn(async move {
            let names = [format!("{role}-1"), format!("{role}-2")];
            let mut readers = Vec::new();
            let mut children: Vec<TestChild> =
                names.iter().map(|name| spawn(name, &mut readers)).collect();
            let mut kills = 0;
            while still_running.load(Ordering::Relaxed) {
                // 300–700 ms, varied without a random source so runs are alike.
                let pause = 300 + (kills * 137) % 400;
                tokio::time::sleep(Duration::from_millis(pause as u64)).await;
                if !still_running.load(Ordering::Relaxed) {
                    break;
                }
                let victim = kills % children.len();
                children[victim].kill();
                kills += 1;
                children[victim] = spawn(&names[victim], &mut readers);
                let started = kills + children.len();
                let deadline = Instant::now() + Duration::from_secs(30);
                while ready_count(&said) < started && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            for child in &mut children {
                child.kill();
            }
            (kills, readers)
        });
        KilledRepeatedly {
            lines,
            running,
            killer,
        }
    }

    /// Stops killing, kills the children still running, and returns the number of kills
    /// during the run and everything the children printed.
    async fn finish(self) -> (usize, Vec<String>) {
        self.running.store(false, Ordering::Relaxed);
        let (kills, readers) = self.killer.await.expect("the killer task");
        for reader in readers {
            reader.await.expect("a child's output reader");
        }
        let lines = std::mem::take(&mut *self.lines.lock().unwrap());
        (kills, lines)
    }
}

/// How many children have said they are ready.
fn ready_count(lines: &Mutex<Vec<String>>) -> usize {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter(|line| *line == "ready")
        .count()
}

/// How many times each value after `prefix` appears in `lines`.
fn tally(lines: &[String], prefix: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for rest in lines.iter().filter_map(|line| line.strip_prefix(prefix)) {
        *counts.entry(rest.to_owned()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_with_workers_killed_repeatedly_are_never_executed_twice() {
    let n = size("CHAOS_CALLS", 300);
    let redis = TestRedis::start();
    let config = redis.config().validate(false).rpc_timeout(1.0).write();
    let workers = KilledRepeatedly::start("worker", &config);
    let caller = bus(&config);

    let started = Instant::now();
    let outcomes: Vec<(u64, lightbus::Result<Value>)> = futures::stream::iter(0..n as u64)
        .map(|i| {
            let caller = caller.clone();
            async move {
                tokio::time::sleep_until(paced(started, i as usize, n).into()).await;
                (i, caller.call::<Value>("chaos.work", json!({"n": i})).await)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let took = started.elapsed();
    let (kills, lines) = workers.finish().await;

    let executions = tally(&lines, "executed ");
    let executed_twice = executions.values().filter(|&&times| times > 1).count();
    let mut answered = BTreeSet::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for (i, outcome) in &outcomes {
        match outcome {
            Ok(value) => {
                assert_eq!(
                    value,
                    &json!(i),
                    "call {i} answered with another call's result"
                );
                answered.insert(i.to_string());
            }
            Err(error) if error.is_timeout() => *errors.entry("timeout".into()).or_default() += 1,
            Err(error) => *errors.entry(error.to_string()).or_default() += 1,
        }
    }
    let answered_unexecuted = answered
        .iter()
        .filter(|i| !executions.contains_key(*i))
        .count();
    println!(
        "\n| calls | answered OK | timed out | other errors | executed | executed twice | \
         answered OK, not executed | worker kills | took |\n|---|---|---|---|---|---|---|---|---|\n\
         | {n} | {} | {} | {} | {} | {executed_twice} | {answered_unexecuted} | {kills} | {:.1} s |",
        answered.len(),
        errors.get("timeout").copied().unwrap_or(0),
        errors.iter().filter(|(kind, _)| *kind != "timeout").map(|(_, count)| count).sum::<usize>(),
        executions.len(),
        took.as_secs_f64()
    );
    assert_eq!(executed_twice, 0, "calls executed twice");
    assert_eq!(answered_unexecuted, 0, "calls answered OK that never ran");
    assert!(
        errors.keys().all(|kind| kind == "timeout"),
        "errors other than timeouts: {errors:?}"
    );
    assert!(
        answered.len() * 2 > n,
        "most calls must get through: {} of {n}",
        answered.len()
    );
}

/// Fires `user(n)` until a fire succeeds, returning the event's id and the number of
/// failed attempts (each of which may or may not have stored an event).
async fn fire_until_accepted(firer: &Bus, n: usize, patience: Duration) -> (String, usize) {
    let deadline = Instant::now() + patience;
    let mut failures = 0;
    loop {
        match firer.fire(user(n)).await {
            Ok(fired) => return (fired.id, failures),
            Err(error) => {
                assert!(Instant::now() < deadline, "cannot fire: {error}");
                failures += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_with_listeners_killed_repeatedly_and_a_redis_restart_are_all_handled() {
    let n = size("CHAOS_EVENTS", 300);
    let patience = patience(n);
    // Written to disk before each write is acknowledged, so a restart loses nothing the
    // firer was told is stored.
    let mut redis = TestRedis::start_with_args(&["--appendonly", "yes", "--appendfsync", "always"]);
    let config = redis
        .config()
        .validate(false)
        .event_yaml(
            "        acknowledgement_timeout: 1\n        reclaim_interval: 0.3\n\
             \x20       consumption_restart_delay: 1\n",
        )
        .write();
    let firer = firer(&config);
    let listeners = KilledRepeatedly::start("listener", &config);
    wait_for_group(&redis, PER_API, "mail-welcome").await;

    let started = Instant::now();
    let mut fired = BTreeSet::new();
    let mut failed_fires = 0;
    for i in 0..n {
        if i == n / 2 {
            redis.stop();
            tokio::time::sleep(Duration::from_millis(300)).await;
            redis.restart();
        }
        tokio::time::sleep_until(paced(started, i, n).into()).await;
        let (id, failures) = fire_until_accepted(&firer, i, patience).await;
        fired.insert(id);
        failed_fires += failures;
    }
    let handled = |lines: &Arc<Mutex<Vec<String>>>| {
        let lines = lines.lock().unwrap();
        let ids: BTreeSet<&str> = lines
            .iter()
            .filter_map(|line| line.strip_prefix("handled "))
            .collect();
        fired.iter().filter(|id| ids.contains(id.as_str())).count()
    };
    while handled(&listeners.lines) < n && started.elapsed() < patience {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    let (kills, lines) = listeners.finish().await;

    let times = tally(&lines, "handled ");
    let lost = fired.iter().filter(|id| !times.contains_key(*id)).count();
    let twice = fired
        .iter()
        .filter(|id| times.get(*id).is_some_and(|&t| t > 1))
        .count();
    let extra: usize = fired
        .iter()
        .filter_map(|id| times.get(id))
        .map(|t| t.saturating_sub(1))
        .sum();
    let unconfirmed = times.keys().filter(|id| !fired.contains(*id)).count();
    println!(
        "\n| events | handled (distinct) | lost | handled twice or more | extra deliveries | \
         listener kills | Redis restarts | failed fires retried | handled, from failed fires | \
         took |\n|---|---|---|---|---|---|---|---|---|---|\n\
         | {n} | {} | {lost} | {twice} | {extra} | {kills} | 1 | {failed_fires} | {unconfirmed} \
         | {:.1} s |",
        n - lost,
        took.as_secs_f64()
    );
    assert_eq!(lost, 0, "events fired and never handled");
}

/// What a worker under load saw: when each call was answered and each event handled.
#[derive(Default)]
struct Timeline {
    answered: Vec<Instant>,
    handled: Vec<Instant>,
}

impl Timeline {
    /// How long after `moment` the first call was answered and the first event handled.
    fn recovery(&self, moment: Instant) -> (Option<Duration>, Option<Duration>) {
        let first_after = |times: &[Instant]| {
            times
                .iter()
                .filter(|&&t| t >= moment)
                .min()
                .map(|&t| t - moment)
        };
        (first_after(&self.answered), first_after(&self.handled))
    }

    /// The longest time without an answered call between `from` and `to`: how long the
    /// callers stalled around a fault.
    fn longest_stall(&self, from: Instant, to: Instant) -> Duration {
        let mut times: Vec<Instant> = self
            .answered
            .iter()
            .copied()
            .filter(|&t| from <= t && t <= to)
            .collect();
        times.sort();
        times.insert(0, from);
        times.push(to);
        times
            .windows(2)
            .map(|pair| pair[1] - pair[0])
            .max()
            .unwrap_or_default()
    }
}

fn millis(duration: Option<Duration>) -> String {
    duration.map_or("never".into(), |d| format!("{} ms", d.as_millis()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_events_flow_again_after_client_pause_and_debug_sleep() {
    let redis = TestRedis::start_with_args(&["--enable-debug-command", "yes"]);
    let config = redis
        .config()
        .validate(false)
        .rpc_timeout(10.0)
        .event_yaml("        consumption_restart_delay: 1\n")
        .write();
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let executions = Arc::new(Mutex::new(HashMap::<u64, usize>::new()));
    let handled_ids = Arc::new(Mutex::new(BTreeSet::<String>::new()));

    let worker_bus = named_bus(&config, "mail", "mail-1");
    let counted = executions.clone();
    worker_bus
        .register(
            ApiBuilder::new("chaos")
                .rpc("work", ["n"], move |kwargs: Kwargs| {
                    let counted = counted.clone();
                    async move {
                        let n = kwargs["n"].as_u64().ok_or("n must be a number")?;
                        *counted.lock().unwrap().entry(n).or_default() += 1;
                        Ok::<_, &str>(json!(n))
                    }
                })
                .build(),
        )
        .expect("register chaos");
    let (noted, seen) = (timeline.clone(), handled_ids.clone());
    worker_bus
        .listen_raw(
            &["auth.user_registered"],
            "welcome",
            move |message: EventMessage| {
                let (noted, seen) = (noted.clone(), seen.clone());
                async move {
                    noted.lock().unwrap().handled.push(Instant::now());
                    seen.lock().unwrap().insert(message.id);
                }
            },
        )
        .expect("listener");
    let worker = RunningWorker::serve(worker_bus);
    wait_for_group(&redis, PER_API, "mail-welcome").await;

    // Load: 8 callers in a loop and one firer in a loop, until told to stop.
    let running = Arc::new(AtomicBool::new(true));
    let caller = bus(&config);
    let firer = firer(&config);
    let fired = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let failures = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let mut load = Vec::new();
    for lane in 0..8u64 {
        let (caller, running, timeline, failures) = (
            caller.clone(),
            running.clone(),
            timeline.clone(),
            failures.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut i = lane;
            while running.load(Ordering::Relaxed) {
                match caller.call::<Value>("chaos.work", json!({"n": i})).await {
                    Ok(value) => {
                        assert_eq!(value, json!(i));
                        timeline.lock().unwrap().answered.push(Instant::now());
                    }
                    Err(error) => {
                        *failures
                            .lock()
                            .unwrap()
                            .entry(format!("call: {error}"))
                            .or_default() += 1
                    }
                }
                i += 8;
            }
        }));
    }
    {
        let (running, fired, failures) = (running.clone(), fired.clone(), failures.clone());
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while running.load(Ordering::Relaxed) {
                match firer.fire(user(i)).await {
                    Ok(event) => {
                        fired.lock().unwrap().insert(event.id);
                    }
                    Err(error) => {
                        *failures
                            .lock()
                            .unwrap()
                            .entry(format!("fire: {error}"))
                            .or_default() += 1
                    }
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }

    // The faults, 2 s each, 3 s apart, issued on a connection of their own.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut admin = redis.connection();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2000)
        .arg("ALL")
        .query(&mut admin)
        .expect("CLIENT PAUSE");
    let paused_at = Instant::now();
    let paused_until = paused_at + Duration::from_secs(2);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let asleep_at = Instant::now();
    let _: () = tokio::task::spawn_blocking(move || {
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(2)
            .query(&mut admin)
            .expect("DEBUG SLEEP")
    })
    .await
    .expect("DEBUG SLEEP thread");
    let awake_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    running.store(false, Ordering::Relaxed);
    for task in load {
        task.await.expect("a load task");
    }

    let fired = fired.lock().unwrap().clone();
    let deadline = Instant::now() + patience(fired.len());
    while !handled_ids.lock().unwrap().is_superset(&fired) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.stop().await.expect("clean stop");

    let lost = fired.difference(&handled_ids.lock().unwrap()).count();
    let executed_twice = executions
        .lock()
        .unwrap()
        .values()
        .filter(|&&times| times > 1)
        .count();
    let timeline = timeline.lock().unwrap();
    let (pause_call, pause_event) = timeline.recovery(paused_until);
    let (sleep_call, sleep_event) = timeline.recovery(awake_at);
    let second = Duration::from_secs(1);
    let pause_stall = timeline.longest_stall(paused_at - second, paused_until + second);
    let sleep_stall = timeline.longest_stall(asleep_at - second, awake_at + second);
    let failed: usize = failures.lock().unwrap().values().sum();
    println!(
        "\n| fault (2 s) | callers stalled for | first call answered after it | first event \
         handled after it |\n|---|---|---|---|\n| `CLIENT PAUSE 2000 ALL` | {} ms | {} | {} |\n\
         | `DEBUG SLEEP 2` | {} ms | {} | {} |\n\n\
         | calls answered | events fired | events lost | calls executed twice | failed calls and fires |\n\
         |---|---|---|---|---|\n| {} | {} | {lost} | {executed_twice} | {failed} |",
        pause_stall.as_millis(),
        millis(pause_call),
        millis(pause_event),
        sleep_stall.as_millis(),
        millis(sleep_call),
        millis(sleep_event),
        timeline.answered.len(),
        fired.len(),
    );
    assert_eq!(lost, 0, "events fired and never handled");
    assert_eq!(executed_twice, 0, "calls executed twice");
    for (fault, call, event) in [
        ("CLIENT PAUSE", pause_call, pause_event),
        ("DEBUG SLEEP", sleep_call, sleep_event),
    ] {
        assert!(call.is_some(), "no call answered after {fault}");
        assert!(event.is_some(), "no event handled after {fault}");
    }
    assert!(
        failures.lock().unwrap().is_empty(),
        "calls or fires failed: {:?}",
        failures.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_whose_handler_outlasts_the_acknowledgement_timeout_are_handled_at_most_twice() {
    let n = size("CHAOS_SLOW_EVENTS", 40);
    let redis = TestRedis::start();
    let config = redis
        .config()
        .validate(false)
        .event_yaml("        acknowledgement_timeout: 1\n        reclaim_interval: 0.3\n")
        .write();
    let times = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let process = |name: &str| {
        let bus = named_bus(&config, "mail", name);
        let times = times.clone();
        bus.listener("welcome")
            .concurrency(4)
            .listen_raw(&["auth.user_registered"], move |message: EventMessage| {
                let times = times.clone();
                async move {
                    let username = message.kwargs["username"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    // Every 10th event takes 1.5 acknowledgement timeouts.
                    let slow = username
                        .trim_start_matches("user")
                        .parse::<usize>()
                        .unwrap_or(0)
                        % 10
                        == 0;
                    if slow {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                    }
                    *times.lock().unwrap().entry(username).or_default() += 1;
                }
            })
            .expect("listener");
        RunningWorker::serve(bus)
    };
    let workers = [process("mail-1"), process("mail-2")];
    wait_for_group(&redis, PER_API, "mail-welcome").await;
    let firer = firer(&config);
    for i in 0..n {
        firer.fire(user(i)).await.expect("fire");
    }
    let deadline = Instant::now() + patience(n);
    while times.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Long enough for a third delivery to happen, if one could.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for worker in workers {
        worker.stop().await.expect("clean stop");
    }
    let times = times.lock().unwrap().clone();
    let slow = n.div_ceil(10);
    let twice = times.values().filter(|&&t| t == 2).count();
    let more = times.values().filter(|&&t| t > 2).count();
    println!(
        "\n| events | of them slow (1.5 s, timeout 1 s) | handled | handled twice | more than twice | pending after |\n\
         |---|---|---|---|---|---|\n| {n} | {slow} | {} | {twice} | {more} | {} |",
        times.len(),
        pending_count(&redis, PER_API, "mail-welcome")
    );
    assert_eq!(times.len(), n, "every event handled");
    assert_eq!(more, 0, "events handled more than twice");
    assert_eq!(pending_count(&redis, PER_API, "mail-welcome"), 0);
}

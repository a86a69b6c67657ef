//! Scheduled and background tasks run by a real worker (tasks need no Redis, so these
//! workers serve no RPCs and consume no events).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lightbus::config::Config;
use lightbus::worker::tasks::{Cron, Every, OnTaskError};
use lightbus::worker::{Feature, Features, Worker};
use lightbus::{Bus, Error};
use lightbus_test_support::{eventually, RunningWorker};

fn bus() -> Bus {
    Bus::builder()
        .config(Config::default())
        .build()
        .expect("bus with the built-in configuration")
}

const ONLY_TASKS: Features = Features {
    rpcs: false,
    events: false,
    tasks: true,
};

/// Runs a worker with only tasks until `stop` completes.
async fn run(bus: Bus, stop: impl std::future::Future<Output = ()>) -> lightbus::Result<()> {
    Worker::new(bus).features(ONLY_TASKS).run(stop).await
}

/// A worker running only tasks, in the background until stopped.
fn tasks_worker(bus: Bus) -> RunningWorker {
    RunningWorker::start(Worker::new(bus).features(ONLY_TASKS))
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn count(counter: &AtomicUsize) -> usize {
    counter.load(Ordering::SeqCst)
}

/// Sets its flag when dropped: shows that a cancelled task's future was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_interval_task_runs_repeatedly_one_interval_after_start() {
    let bus = bus();
    let runs = counter();
    let seen = runs.clone();
    bus.every("tick", Duration::from_millis(100), move |_bus| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    })
    .expect("add task");
    let started = Instant::now();
    let worker = tasks_worker(bus);

    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(count(&runs), 0, "the first run waits one interval");
    eventually("5 runs", || count(&runs) >= 5).await;
    assert!(
        started.elapsed() >= Duration::from_millis(490),
        "5 runs 100 ms apart took {:?}",
        started.elapsed()
    );
    worker.stop().await.expect("worker ends cleanly");
    let after_stop = count(&runs);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&runs), after_stop, "no run after the worker stopped");
}

#[tokio::test]
async fn also_run_immediately_runs_at_start() {
    let bus = bus();
    let runs = counter();
    let seen = runs.clone();
    bus.every(
        "warm_cache",
        Every::hours(1).also_run_immediately(),
        move |_bus| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        },
    )
    .expect("add task");
    let worker = tasks_worker(bus);
    eventually("the first run", || count(&runs) == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count(&runs), 1, "the next run is an hour away");
    worker.stop().await.expect("worker ends cleanly");
}

#[tokio::test]
async fn a_cron_task_runs_at_each_second_of_a_seconds_schedule() {
    let bus = bus();
    let times = Arc::new(Mutex::new(Vec::<chrono_free::WallTime>::new()));
    let seen = times.clone();
    bus.schedule("every_second", "* * * * * *", move |_bus| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(chrono_free::now());
        }
    })
    .expect("add task");
    let worker = tasks_worker(bus);
    eventually("3 runs", || times.lock().unwrap().len() >= 3).await;
    worker.stop().await.expect("worker ends cleanly");

    let times = times.lock().unwrap().clone();
    for pair in times.windows(2) {
        assert!(
            pair[1].seconds > pair[0].seconds,
            "one run per second, never two in the same second: {times:?}"
        );
    }
    for time in &times {
        assert!(
            time.millis < 900,
            "runs start at (just after) the second boundary, not before it: {times:?}"
        );
    }
}

/// Wall-clock times without a chrono dependency in the tests.
mod chrono_free {
    use std::time::{SystemTime, UNIX_EPOCH};

    #[derive(Debug, Clone, Copy)]
    pub(crate) struct WallTime {
        pub seconds: u64,
        pub millis: u32,
    }

    pub(crate) fn now() -> WallTime {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970");
        WallTime {
            seconds: since.as_secs(),
            millis: since.subsec_millis(),
        }
    }
}

#[tokio::test]
async fn a_failing_background_task_stops_the_worker_naming_it() {
    let bus = bus();
    bus.background("poller", |_bus| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err::<(), _>("the database went away")
    })
    .expect("add task");
    let other_runs = counter();
    let seen = other_runs.clone();
    bus.every("tick", Duration::from_millis(10), move |_bus| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    })
    .expect("add task");

    let started = Instant::now();
    let outcome = run(bus, std::future::pending()).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let error = outcome.expect_err("the worker stops with the task's error");
    assert!(
        matches!(&error, Error::Task { name, reason } if name == "poller"
            && reason == "failed: the database went away"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "task `poller` failed: the database went away"
    );
    // The other task was stopped with the worker.
    let after_stop = count(&other_runs);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(count(&other_runs), after_stop);
}

#[tokio::test]
async fn a_panicking_background_task_stops_the_worker_naming_it() {
    let bus = bus();
    bus.background("crasher", |_bus| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if true {
            panic!("index out of bounds");
        }
    })
    .expect("add task");
    let error = run(bus, std::future::pending())
        .await
        .expect_err("the worker stops");
    assert_eq!(
        error.to_string(),
        "task `crasher` panicked: index out of bounds"
    );
}

#[tokio::test]
async fn a_background_task_that_returns_just_ends() {
    let bus = bus();
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    bus.background("one_off", move |_bus| async move {
        flag.store(true, Ordering::SeqCst);
        Ok::<_, Error>(())
    })
    .expect("add task");
    let outcome = run(bus, tokio::time::sleep(Duration::from_millis(300))).await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert!(done.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_failing_recurring_task_stops_the_worker_unless_told_to_log_and_continue() {
    let bus = bus();
    let runs = counter();
    let seen = runs.clone();
    bus.every(
        "flaky",
        Every::new(Duration::from_millis(20)),
        move |_bus| {
            let run = seen.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if run == 3 {
                    Err(std::io::Error::other("third run failed"))
                } else {
                    Ok(())
                }
            }
        },
    )
    .expect("add task");
    let error = run(bus, std::future::pending())
        .await
        .expect_err("the third run stops the worker");
    assert_eq!(error.to_string(), "task `flaky` failed: third run failed");
    assert_eq!(count(&runs), 3);

    let bus = self::bus();
    let runs = counter();
    let seen = runs.clone();
    bus.every(
        "flaky",
        Every::new(Duration::from_millis(20)).on_error(OnTaskError::LogAndContinue),
        move |_bus| {
            let run = seen.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if run.is_multiple_of(2) {
                    panic!("even run {run}");
                }
                Err::<(), _>(format!("odd run {run}"))
            }
        },
    )
    .expect("add task");
    let worker = tasks_worker(bus);
    eventually("6 failed runs", || count(&runs) >= 6).await;
    worker
        .stop()
        .await
        .expect("failures were logged, not fatal");
}

#[tokio::test]
async fn runs_of_a_slow_interval_task_never_overlap_nor_pile_up() {
    let bus = bus();
    let running = counter();
    let most_at_once = counter();
    let runs = counter();
    let (r, m, n) = (running.clone(), most_at_once.clone(), runs.clone());
    bus.every("slow", Duration::from_millis(20), move |_bus| {
        let (r, m, n) = (r.clone(), m.clone(), n.clone());
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(150)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            n.fetch_add(1, Ordering::SeqCst);
        }
    })
    .expect("add task");
    let started = Instant::now();
    run(bus, tokio::time::sleep(Duration::from_millis(1000)))
        .await
        .expect("worker ends cleanly");
    let elapsed = started.elapsed();
    assert_eq!(count(&most_at_once), 1, "runs never overlap");
    // Back to back, 150 ms each: at most elapsed / 150 runs, however far behind the 20 ms
    // interval they are (no burst to catch up).
    let most = (elapsed.as_millis() / 150) as usize;
    assert!(
        count(&runs) >= 4 && count(&runs) <= most,
        "{} runs in {elapsed:?}",
        count(&runs)
    );
}

#[tokio::test]
async fn skipping_the_tasks_feature_runs_no_task() {
    let bus = bus();
    let runs = counter();
    let (a, b) = (runs.clone(), runs.clone());
    bus.every(
        "tick",
        Every::new(Duration::from_millis(10)).also_run_immediately(),
        move |_bus| {
            let a = a.clone();
            async move {
                a.fetch_add(1, Ordering::SeqCst);
            }
        },
    )
    .expect("add task");
    bus.background("once", move |_bus| async move {
        b.fetch_add(1, Ordering::SeqCst);
    })
    .expect("add task");
    let features = Features::select(&[], &[Feature::Tasks, Feature::Rpcs, Feature::Events]);
    assert!(!features.tasks);
    Worker::new(bus.clone())
        .features(features)
        .run(tokio::time::sleep(Duration::from_millis(300)))
        .await
        .expect("worker ends cleanly");
    assert_eq!(count(&runs), 0);

    // --only rpcs also leaves tasks off.
    assert!(!Features::select(&[Feature::Rpcs], &[]).tasks);
}

#[tokio::test]
async fn shutdown_cancels_background_tasks_and_waits_briefly_for_runs_in_progress() {
    let bus = bus();
    let background_dropped = Arc::new(AtomicBool::new(false));
    let flag = background_dropped.clone();
    bus.background("forever", move |_bus| async move {
        let _guard = DropFlag(flag);
        std::future::pending::<()>().await;
    })
    .expect("add task");

    // A run that finishes within the drain timeout completes.
    let quick_done = Arc::new(AtomicBool::new(false));
    let quick_started = Arc::new(AtomicBool::new(false));
    let (done, started) = (quick_done.clone(), quick_started.clone());
    bus.every(
        "quick",
        Every::hours(1).also_run_immediately(),
        move |_bus| {
            let (done, started) = (done.clone(), started.clone());
            async move {
                started.store(true, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                done.store(true, Ordering::SeqCst);
            }
        },
    )
    .expect("add task");

    // A run that would take a minute is cancelled after the drain timeout.
    let slow_dropped = Arc::new(AtomicBool::new(false));
    let flag = slow_dropped.clone();
    bus.every(
        "slow",
        Every::hours(1).also_run_immediately(),
        move |_bus| {
            let flag = flag.clone();
            async move {
                let _guard = DropFlag(flag);
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
        },
    )
    .expect("add task");

    let worker = RunningWorker::start(
        Worker::new(bus)
            .features(ONLY_TASKS)
            .drain_timeout(Duration::from_millis(800)),
    );
    eventually("the runs start", || quick_started.load(Ordering::SeqCst)).await;
    let stopping = Instant::now();
    worker.stop().await.expect("worker ends cleanly");
    let took = stopping.elapsed();
    assert!(
        background_dropped.load(Ordering::SeqCst),
        "background task cancelled"
    );
    assert!(quick_done.load(Ordering::SeqCst), "the quick run finished");
    assert!(
        slow_dropped.load(Ordering::SeqCst),
        "the slow run cancelled"
    );
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(5),
        "shutdown waited for the drain timeout only: {took:?}"
    );
}

#[tokio::test]
async fn tasks_added_by_hooks_and_by_running_tasks_start_at_once() {
    let bus = bus();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    let from_hook = tx.clone();
    bus.on_start(move |bus| {
        let tx = from_hook.clone();
        async move {
            bus.background("from_hook", move |bus| async move {
                let _ = tx.send("hook's task ran");
                let tx = tx.clone();
                bus.every(
                    "added_late",
                    Every::hours(1).also_run_immediately(),
                    move |_bus| {
                        let tx = tx.clone();
                        async move {
                            let _ = tx.send("late task ran");
                        }
                    },
                )
            })
        }
    });
    drop(tx);
    let worker = tasks_worker(bus);
    for expected in ["hook's task ran", "late task ran"] {
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("in time");
        assert_eq!(got, Some(expected));
    }
    worker.stop().await.expect("worker ends cleanly");
}

#[tokio::test]
async fn recurring_tasks_run_again_in_the_next_worker_on_the_same_bus() {
    let bus = bus();
    let runs = counter();
    let seen = runs.clone();
    bus.every(
        "tick",
        Every::hours(1).also_run_immediately(),
        move |_bus| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        },
    )
    .expect("add task");
    for expected in 1..=2 {
        let bus = bus.clone();
        run(bus, tokio::time::sleep(Duration::from_millis(200)))
            .await
            .expect("worker ends cleanly");
        assert_eq!(count(&runs), expected);
    }
}

#[test]
fn invalid_tasks_are_rejected_when_added() {
    let bus = bus();
    let err = bus
        .every("zero", Duration::ZERO, |_bus| async {})
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSchedule { .. }), "{err}");
    assert!(err.to_string().contains("greater than zero"), "{err}");

    let err = bus
        .schedule("bad", "99 * * * *", |_bus| async {})
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSchedule { .. }), "{err}");
    assert!(err.to_string().contains("`99 * * * *`"), "{err}");

    bus.every("dup", Every::seconds(1), |_bus| async {})
        .expect("first");
    let err = bus.background("dup", |_bus| async {}).unwrap_err();
    assert!(matches!(err, Error::Duplicate { .. }), "{err}");
    let err = bus
        .schedule(
            "dup",
            Cron::new("0 * * * *").expect("valid"),
            |_bus| async {},
        )
        .unwrap_err();
    assert!(matches!(err, Error::Duplicate { .. }), "{err}");
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn run_only_tasks_from_the_command_line_stops_on_a_failed_background_task() {
    use clap::Parser;
    let cli = lightbus::cli::Cli::try_parse_from(["my_service", "run", "--only", "tasks"])
        .expect("valid command line");
    let error = lightbus::cli::execute(cli, |bus| {
        bus.background("poller", |_bus| async { Err::<(), _>("gave up") })
    })
    .await
    .expect_err("the worker stops");
    assert_eq!(error.to_string(), "task `poller` failed: gave up");
}

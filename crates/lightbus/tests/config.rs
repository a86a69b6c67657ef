#![cfg(feature = "cli")]
//! Where configuration values come from: file, environment, flags. One test function,
//! because it changes this process's environment variables.

use clap::Parser;
use lightbus::cli::{Cli, Command};
use lightbus::config::{Config, LogLevel};
use lightbus::worker::Feature;
use lightbus::Bus;

fn bus_from(args: &[&str]) -> (Bus, Cli) {
    let cli = Cli::try_parse_from(args).expect("valid command line");
    let bus = Bus::builder()
        .overrides(cli.global.overrides())
        .build()
        .expect("bus");
    (bus, cli)
}

#[test]
fn flags_beat_environment_beats_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bus.yaml");
    std::fs::write(
        &file,
        "service_name: file-service\nprocess_name: file-process\nbus:\n  log_level: warning\n\
         apis:\n  default:\n    rpc_timeout: 4\n",
    )
    .expect("write");
    let other = dir.path().join("other.json");
    std::fs::write(&other, r#"{"apis": {"default": {"rpc_timeout": 9}}}"#).expect("write");
    for name in [
        "LIGHTBUS_CONFIG",
        "LIGHTBUS_SERVICE_NAME",
        "LIGHTBUS_PROCESS_NAME",
        "LIGHTBUS_FEATURES",
    ] {
        std::env::remove_var(name);
    }

    // The file alone.
    let (bus, _) = bus_from(&["svc", "--config", file.to_str().expect("utf-8"), "run"]);
    assert_eq!(bus.service_name(), "file-service");
    assert_eq!(bus.process_name(), "file-process");
    assert_eq!(bus.config().bus().log_level, LogLevel::Warning);
    assert_eq!(bus.config().api("a").rpc_timeout, 4.0);

    // The environment names the file and overrides its names.
    std::env::set_var("LIGHTBUS_CONFIG", &file);
    std::env::set_var("LIGHTBUS_SERVICE_NAME", "env-service");
    std::env::set_var("LIGHTBUS_PROCESS_NAME", "env-{pid}");
    std::env::set_var("LIGHTBUS_FEATURES", "rpcs,tasks");
    let (bus, cli) = bus_from(&["svc", "run"]);
    assert_eq!(bus.service_name(), "env-service");
    assert_eq!(bus.process_name(), format!("env-{}", std::process::id()));
    assert_eq!(bus.config().api("a").rpc_timeout, 4.0);
    let Command::Run(run) = &cli.command else {
        panic!("expected run");
    };
    assert_eq!(run.only, [Feature::Rpcs, Feature::Tasks]);
    // `lightbus::create()` reads the same variables.
    let created = lightbus::create().expect("create from the environment");
    assert_eq!(created.service_name(), "env-service");
    assert_eq!(created.config().api("a").rpc_timeout, 4.0);

    // Flags beat both.
    let (bus, cli) = bus_from(&[
        "svc",
        "--config",
        other.to_str().expect("utf-8"),
        "-s",
        "flag-service",
        "--process-name",
        "flag-process",
        "--log-level",
        "debug",
        "run",
        "--only",
        "events",
        "--schema",
        "schemas/",
    ]);
    assert_eq!(bus.service_name(), "flag-service");
    assert_eq!(bus.process_name(), "flag-process");
    assert_eq!(bus.config().bus().log_level, LogLevel::Debug);
    assert_eq!(bus.config().api("a").rpc_timeout, 9.0);
    let Command::Run(run) = &cli.command else {
        panic!("expected run");
    };
    assert_eq!(run.only, [Feature::Events]);
    assert_eq!(run.schema, [std::path::PathBuf::from("schemas/")]);

    // A broken file named by the environment is an error naming file and key, not a panic.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "apis:\n  default:\n    rpc_timeout: [1]\n").expect("write");
    std::env::set_var("LIGHTBUS_CONFIG", &broken);
    let error = lightbus::create().expect_err("invalid config");
    let text = error.to_string();
    assert!(
        text.contains("broken.yaml") && text.contains("apis.default.rpc_timeout"),
        "{text}"
    );
    let error = Config::load(&Default::default()).unwrap_err().to_string();
    assert_eq!(error, text);

    for name in [
        "LIGHTBUS_CONFIG",
        "LIGHTBUS_SERVICE_NAME",
        "LIGHTBUS_PROCESS_NAME",
        "LIGHTBUS_FEATURES",
    ] {
        std::env::remove_var(name);
    }
}

#[test]
fn dumpconfigschema_and_dumpschema_parse() {
    let cli =
        Cli::try_parse_from(["lightbus", "dumpconfigschema", "-o", "x.json"]).expect("parses");
    assert!(matches!(cli.command, Command::DumpConfigSchema(ref a) if a.out.is_some()));
    let cli = Cli::try_parse_from(["lightbus", "dumpschema", "--out", "d", "--api", "auth"])
        .expect("parses");
    assert!(matches!(cli.command, Command::DumpSchema(ref a) if a.api.as_deref() == Some("auth")));
}

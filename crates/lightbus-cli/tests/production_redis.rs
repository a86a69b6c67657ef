//! The `lightbus` binary against production-style Redis: TLS files from the environment
//! variables, and a wrong ACL password (exit code 4, the password printed nowhere).

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use lightbus::api::{ApiBuilder, Kwargs};
use lightbus_test_support::{bus, RunningWorker, TestCertificates, TestRedis};

const LIGHTBUS: &str = env!("CARGO_BIN_EXE_lightbus");

/// Runs `lightbus` with `LIGHTBUS_CONFIG=config` and the given environment variables only
/// (every `LIGHTBUS_TLS_*` not given is removed).
async fn lightbus(config: &Path, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(LIGHTBUS);
    command
        .args(args)
        .env("LIGHTBUS_CONFIG", config)
        .env_remove("RUST_LOG")
        .env_remove("LIGHTBUS_TLS_CA_FILE")
        .env_remove("LIGHTBUS_TLS_CERT_FILE")
        .env_remove("LIGHTBUS_TLS_KEY_FILE")
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("lightbus finished within a minute")
        .expect("run the lightbus binary")
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn echo_worker(config: &Path) -> RunningWorker {
    let server = bus(config);
    server
        .register(
            ApiBuilder::new("echo")
                .rpc("say", ["text"], |kw: Kwargs| async move {
                    Ok::<_, &str>(kw["text"].clone())
                })
                .build(),
        )
        .expect("register echo");
    RunningWorker::serve(server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_files_come_from_the_environment_variables() {
    let redis = TestRedis::start_tls();
    let TestCertificates {
        ca,
        client_cert,
        client_key,
        other_ca,
        ..
    } = redis.certificates().expect("certificates").clone();
    // The worker reads the files from its configuration file.
    let worker_config = redis
        .config()
        .root_yaml(&format!(
            "tls:\n  ca_file: {}\n  cert_file: {}\n  key_file: {}\n",
            ca.display(),
            client_cert.display(),
            client_key.display()
        ))
        .write();
    let _worker = echo_worker(&worker_config);
    // The command line gets them from the environment alone.
    let plain_config = redis.config().rpc_timeout(5.0).write();
    let env = [
        ("LIGHTBUS_TLS_CA_FILE", ca.as_path()),
        ("LIGHTBUS_TLS_CERT_FILE", client_cert.as_path()),
        ("LIGHTBUS_TLS_KEY_FILE", client_key.as_path()),
    ];
    let output = lightbus(&plain_config, &env, &["call", "echo.say", "text=hello"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "\"hello\"");

    // A CA that did not sign the server's certificate: exit 4, saying why and what to set.
    let env = [
        ("LIGHTBUS_TLS_CA_FILE", other_ca.as_path()),
        ("LIGHTBUS_TLS_CERT_FILE", client_cert.as_path()),
        ("LIGHTBUS_TLS_KEY_FILE", client_key.as_path()),
    ];
    let output = lightbus(&plain_config, &env, &["call", "echo.say", "text=x"]).await;
    assert_eq!(output.status.code(), Some(4), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&redis.url()), "{}", describe(&output));
    assert!(stderr.contains("UnknownIssuer"), "{}", describe(&output));
    assert!(
        stderr.contains("LIGHTBUS_TLS_CA_FILE"),
        "{}",
        describe(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_exits_4_without_printing_it() {
    let redis =
        TestRedis::start_with_args(&["--user", "app", "on", ">right:p@ss", "~*", "&*", "+@all"]);
    let wrong = "wr0ng/p@ss#word";
    let config = redis
        .config()
        .url(redis.url_with_credentials("app", wrong))
        .write();
    let output = lightbus(&config, &[], &["call", "echo.say", "text=x"]).await;
    assert_eq!(output.status.code(), Some(4), "{}", describe(&output));
    let printed = describe(&output);
    assert!(printed.contains("authentication failed"), "{printed}");
    assert!(printed.contains("app:***@127.0.0.1"), "{printed}");
    for part in ["wr0ng", "ss#word", "p@ss"] {
        assert!(!printed.contains(part), "`{part}` leaked: {printed}");
    }
}

//! This library's own connection to one Redis server (plain TCP and Unix sockets, RESP2):
//! replies matched to their commands under concurrency, pipelines and transactions, error
//! replies, a connection killed under a blocked command, and a fake server whose replies
//! are not RESP. Against a private `redis-server`, and a TCP listener of the test's own
//! for the server that misbehaves.

use std::time::{Duration, Instant};

use futures::future::join_all;
use lightbus::transport::redis::{Connection, RedisServers};
use lightbus::Error;
use lightbus_test_support::TestRedis;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn connect(url: &str) -> lightbus::Result<Connection> {
    RedisServers::default().get(url)?.dedicated().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_pipelines_and_transactions_each_get_their_own_replies() {
    let redis = TestRedis::start();
    let connection = connect(&redis.url()).await.expect("connect");
    assert!(
        matches!(connection, Connection::Pipelined(_)),
        "{connection:?}"
    );

    // 2000 commands from as many tasks at once, replies of varied sizes.
    let text = |n: usize| format!("{n}:{}", "x".repeat(n % 300));
    let replies = join_all((0..2000).map(|n| {
        let mut connection = connection.clone();
        tokio::spawn(async move {
            redis::cmd("ECHO")
                .arg(text(n))
                .query_async::<String>(&mut connection)
                .await
        })
    }))
    .await;
    for (n, reply) in replies.into_iter().enumerate() {
        assert_eq!(reply.expect("task").expect("ECHO"), text(n));
    }

    let mut connection = connection.clone();
    // A 3 MB value, which arrives in many reads.
    let big: Vec<u8> = (0..3_000_000u32).map(|n| (n % 251) as u8).collect();
    let () = redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query_async(&mut connection)
        .await
        .expect("SET");
    let back: Vec<u8> = redis::cmd("GET")
        .arg("big")
        .query_async(&mut connection)
        .await
        .expect("GET");
    assert!(back == big, "the 3 MB value came back changed");

    // An error reply is that command's error; the connection goes on.
    let error = redis::cmd("NOSUCHCOMMAND")
        .query_async::<()>(&mut connection)
        .await
        .expect_err("an unknown command fails");
    assert_eq!(error.code(), Some("ERR"), "{error}");
    let pong: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .expect("PING");
    assert_eq!(pong, "PONG");

    // A pipeline and a transaction; a transaction with a refused command fails whole.
    let (a, b): (i64, i64) = redis::pipe()
        .incr("n", 1)
        .incr("n", 2)
        .query_async(&mut connection)
        .await
        .expect("pipeline");
    assert_eq!((a, b), (1, 3));
    let (c, d): (i64, i64) = redis::pipe()
        .atomic()
        .incr("n", 10)
        .incr("n", 100)
        .query_async(&mut connection)
        .await
        .expect("transaction");
    assert_eq!((c, d), (13, 113));
    let error = redis::pipe()
        .atomic()
        .incr("n", 1)
        .cmd("NOSUCHCOMMAND")
        .query_async::<()>(&mut connection)
        .await
        .expect_err("an aborted transaction fails");
    assert_eq!(error.code(), Some("ERR"), "{error}");
    assert!(error.to_string().contains("NOSUCHCOMMAND"), "{error}");
    let n: i64 = redis::cmd("GET")
        .arg("n")
        .query_async(&mut connection)
        .await
        .expect("GET");
    assert_eq!(n, 113, "nothing of the aborted transaction ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_fails_its_blocked_and_later_commands_as_dropped() {
    let redis = TestRedis::start();
    let mut connection = connect(&redis.url()).await.expect("connect");
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut connection)
        .await
        .expect("CLIENT ID");
    let mut blocked = connection.clone();
    let pop = tokio::spawn(async move {
        redis::cmd("BLPOP")
            .arg("nothing")
            .arg(30)
            .query_async::<Option<(String, String)>>(&mut blocked)
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut redis.connection())
        .map(|_: i64| ())
        .expect("CLIENT KILL");
    let error = pop.await.expect("task").expect_err("the blocked pop fails");
    assert!(started.elapsed() < Duration::from_secs(5), "failed at once");
    assert!(error.is_unrecoverable_error(), "{error:?}");
    let error = redis::cmd("PING")
        .query_async::<String>(&mut connection)
        .await
        .expect_err("a command after the kill fails");
    assert!(error.is_connection_dropped(), "{error:?}");
}

/// A TCP server that answers every read with `reply`, then closes when asked to.
async fn fake_server(reply: &'static [u8]) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buffer).await {
                    if n == 0 || stream.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_that_are_not_resp_are_a_clear_error_not_a_panic() {
    for (reply, expected) in [
        (&b"?what is this\r\n"[..], "unknown reply type"),
        (b"$3\r\nabcdef\r\n", "not ended by CRLF"),
        (b"*-7\r\n", "negative array length"),
    ] {
        let port = fake_server(reply).await;
        let error = connect(&format!("redis://127.0.0.1:{port}/0"))
            .await
            .expect_err("connecting to a server that does not speak RESP fails");
        let text = format!("{error} {error:?}");
        assert!(matches!(error, Error::Connection { .. }), "{text}");
        assert!(text.contains(expected), "{text}");
    }
    // A hostile size: a bulk string claiming 2^62 bytes, then nothing. The connection
    // waits for bytes (allocating nothing for them) until connecting times out.
    let port = fake_server(b"$4611686018427387904\r\nab").await;
    let started = Instant::now();
    let error = connect(&format!("redis://127.0.0.1:{port}/0"))
        .await
        .expect_err("times out");
    assert!(matches!(error, Error::Connection { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_a_database_and_a_password() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("redis.sock");
    let socket_text = socket.to_str().expect("a UTF-8 path").to_owned();
    let redis = TestRedis::start_with_args(&[
        "--unixsocket",
        &socket_text,
        "--unixsocketperm",
        "700",
        "--user",
        "app",
        "on",
        ">s3cret",
        "~*",
        "&*",
        "+@all",
    ]);
    let mut connection = connect(&format!("unix://{socket_text}?db=3&user=app&pass=s3cret"))
        .await
        .expect("connect over the socket");
    assert!(
        matches!(connection, Connection::Pipelined(_)),
        "{connection:?}"
    );
    let () = redis::cmd("SET")
        .arg("where")
        .arg("db3")
        .query_async(&mut connection)
        .await
        .expect("SET");
    let mut inspect = redis.connection();
    let () = redis::cmd("SELECT")
        .arg(3)
        .query(&mut inspect)
        .expect("SELECT");
    let found: String = redis::cmd("GET")
        .arg("where")
        .query(&mut inspect)
        .expect("GET");
    assert_eq!(found, "db3");
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut inspect)
        .expect("LIST");
    // Logged in as `app` over the socket (`flags=U`), database 3 selected. (Redis 7.2 and
    // later also show `lib-name=lightbus-rs`; older ones refuse `CLIENT SETINFO`, which
    // the connection ignores.)
    let ours = clients
        .lines()
        .find(|line| line.contains("flags=U"))
        .unwrap_or_else(|| panic!("no client on the socket: {clients}"));
    assert!(
        ours.contains(" db=3 ") && ours.contains(" user=app "),
        "{ours}"
    );

    let error = connect(&redis.url_with_credentials("app", "wrong"))
        .await
        .expect_err("a wrong password fails");
    assert!(matches!(error, Error::Authentication { .. }), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("wrong"), "{error:?}");
}

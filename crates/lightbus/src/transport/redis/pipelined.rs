//! [`PipelinedConnection`]: this library's own connection to one Redis server over plain
//! TCP or a Unix socket, speaking RESP2, with every concurrent command pipelined.
//!
//! A command is written into the connection's output buffer and its place kept in the
//! queue of awaited replies, both under one lock, so replies (which Redis sends in the
//! order of the commands) are matched to their commands by position. One task per
//! connection writes whatever the buffer holds with one write and reads replies with
//! [`resp::Reader`](super::resp::Reader): commands sent while a write is under way leave
//! together in the next one.
//!
//! Once [`WRITE_AFTER_COMMANDS`] commands are buffered, the sender of the last one writes
//! them itself, at once, instead of leaving them for the task. The task runs only after
//! every task ready before it, so a burst of commands (the replies to one batch waking as
//! many senders, each sending again) would otherwise leave in one write at the end, while
//! Redis sat idle; written in runs of 16 as they come, Redis works on the first while the
//! client prepares the next. Measured with `lightbus bench fire -c 64` against one Redis
//! on 2 vCPUs, events/s by the count (1 shared connection): never 225k–235k, after 1
//! command 188k–190k, 4: 271k–297k, 8: 331k–349k, 12: 373k–383k, 16: 376k–390k,
//! 20: 380k–393k, 24: 368k–372k, 32: 327k; `redis-benchmark` XADD `-P 64 -c 1` in the
//! same sitting: 379k–395k. 16 it is: the fewest writes among the best.
//!
//! Guarantees, as redis-rs's multiplexed connection gives them (the layers above rely on
//! them): commands reach Redis in the order they were sent; a reply that is an error
//! (`-ERR ...`) is returned as [`Value::ServerError`], not as `Err`; once the connection
//! fails (the server closed it, a write or read failed, a reply could not be read), every
//! command awaiting a reply and every later one gets an error that
//! [`RedisError::is_unrecoverable_error`] recognises, so the shared connection above
//! replaces it. A caller that stops waiting leaves its place in the queue; its reply is
//! read and dropped. Dropping the last clone of a connection closes it.
//!
//! Why not redis-rs's connection: per command it copies the command into a message for a
//! channel to its connection task, and reads replies with a parser-combinator parser; the
//! two were ~45% of the instructions per event fired and ~40% per event consumed
//! (callgrind; README "Our own connection" has the figures before and after).
//! TLS (`rediss://`), RESP3 and Redis Cluster stay on redis-rs's connections.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use redis::{
    Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, Pipeline, RedisError, RedisResult, Value,
};
use tokio::sync::{oneshot, Notify};
use tokio::task::AbortHandle;

use super::resp::{write_command, ProtocolError, Reader};
use super::CONNECT_TIMEOUT;
use crate::util::lock;

/// A connection to one server; clones share it (see the module docs).
#[derive(Clone)]
pub struct PipelinedConnection {
    shared: Arc<Shared>,
    /// Aborts the connection's task when the last clone is dropped.
    _task: Arc<AbortOnDrop>,
    /// The database selected.
    db: i64,
}

impl std::fmt::Debug for PipelinedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelinedConnection")
            .finish_non_exhaustive()
    }
}

struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the callers and the connection's task share.
struct Shared {
    state: Mutex<State>,
    /// Wakes the task when the output buffer has bytes and no write is pending.
    output_ready: Notify,
    socket: Socket,
}

/// The connection's socket, used through `&` by the task and by senders alike.
enum Socket {
    Tcp(tokio::net::TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Socket {
    /// Reads what is there into `buffer`'s spare room, waiting until something is.
    async fn read(&self, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
        loop {
            let read = match self {
                Socket::Tcp(stream) => {
                    stream.readable().await?;
                    stream.try_read_buf(buffer)
                }
                #[cfg(unix)]
                Socket::Unix(stream) => {
                    stream.readable().await?;
                    stream.try_read_buf(buffer)
                }
            };
            match read {
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
                read => return read,
            }
        }
    }

    /// Writes what the socket takes now of `bytes`, without waiting.
    fn try_write(&self, bytes: &[u8]) -> std::io::Result<usize> {
        match self {
            Socket::Tcp(stream) => stream.try_write(bytes),
            #[cfg(unix)]
            Socket::Unix(stream) => stream.try_write(bytes),
        }
    }

    /// Writes all of `bytes`, waiting for room as needed.
    async fn write_all(&self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            match self {
                Socket::Tcp(stream) => stream.writable().await?,
                #[cfg(unix)]
                Socket::Unix(stream) => stream.writable().await?,
            }
            match self.try_write(bytes) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

/// A sender writes the buffered commands itself, without waiting for the connection's
/// task, once this many are waiting (and no write is under way) ...
const WRITE_AFTER_COMMANDS: usize = 16;
/// ... or once this many bytes are.
const WRITE_AFTER_BYTES: usize = 64 * 1024;

#[derive(Default)]
struct State {
    /// Commands not yet written.
    output: Vec<u8>,
    /// The commands written or to be written whose replies are awaited, oldest first.
    awaited: VecDeque<Awaited>,
    /// Whether the task has been told that `output` has bytes (and has not yet found it
    /// empty): commands sent meanwhile need not wake it again.
    woken: bool,
    /// Commands added to `output` since it was last written, or a sender last tried to.
    unsent: usize,
    /// Whether the task holds bytes taken from `output` that it has not finished writing.
    writing: bool,
    /// Why the connection failed, once it has.
    failure: Option<Failure>,
}

/// Why a connection failed: kept to fail the commands that come after.
#[derive(Clone)]
struct Failure {
    cause: Cause,
    message: String,
}

#[derive(Clone, Copy)]
enum Cause {
    /// The connection dropped (of this kind, one redis-rs reads as a dropped connection).
    Dropped(std::io::ErrorKind),
    /// A reply could not be read: the connection's framing is lost.
    Protocol,
}

impl Failure {
    /// A read or write that failed: reported as a dropped connection whatever the cause
    /// (a timeout of `TCP_USER_TIMEOUT` included), so that the layers above reconnect.
    fn dropped(what: &str, error: &std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        let kind = match error.kind() {
            kind @ (ConnectionReset | ConnectionAborted | UnexpectedEof | NotConnected) => kind,
            _ => BrokenPipe,
        };
        Failure {
            cause: Cause::Dropped(kind),
            message: format!("{what}: {error}"),
        }
    }

    /// A reply that is not RESP, or a reply to no command.
    fn protocol(message: String) -> Self {
        Failure {
            cause: Cause::Protocol,
            message,
        }
    }

    fn error(&self) -> RedisError {
        match self.cause {
            Cause::Protocol => RedisError::from((
                ErrorKind::Parse,
                "an invalid reply from Redis",
                self.message.clone(),
            )),
            Cause::Dropped(kind) => {
                RedisError::from(std::io::Error::new(kind, self.message.clone()))
            }
        }
    }
}

/// A command, or a pipeline, whose replies are awaited.
enum Awaited {
    /// One command's reply.
    One(oneshot::Sender<RedisResult<Value>>),
    /// Replies of a pipeline.
    Many(Many),
}

struct Many {
    /// Replies to read and drop first (a transaction's `OK` and `QUEUED`s).
    skip: usize,
    /// The first error among the replies skipped: a command the transaction refused,
    /// which fails it whole (as on redis-rs's connection; `EXEC` then answers
    /// `EXECABORT`).
    refused: Option<redis::ServerError>,
    /// Replies to hand over.
    count: usize,
    replies: Vec<Value>,
    sender: oneshot::Sender<RedisResult<Vec<Value>>>,
}

impl Awaited {
    fn fail(self, error: RedisError) {
        // A caller that stopped waiting dropped its receiver: nothing to do.
        let _ = match self {
            Awaited::One(sender) => sender.send(Err(error)).map_err(drop),
            Awaited::Many(many) => many.sender.send(Err(error)).map_err(drop),
        };
    }
}

/// A reply (or replies) read, for the command that awaited it.
enum Completed {
    One(oneshot::Sender<RedisResult<Value>>, Value),
    Many(
        oneshot::Sender<RedisResult<Vec<Value>>>,
        RedisResult<Vec<Value>>,
    ),
}

impl PipelinedConnection {
    /// Connects to the server of `info` (plain TCP or a Unix socket) with its TCP settings,
    /// logs in and selects its database, all within the connect timeout. `None` when
    /// `info` asks for what this connection does not do (TLS, RESP3).
    pub(crate) async fn connect(info: &ConnectionInfo) -> Option<RedisResult<Self>> {
        if !Self::serves(info) {
            return None;
        }
        enum Address<'a> {
            Tcp(&'a str, u16),
            #[cfg(unix)]
            Unix(&'a std::path::Path),
        }
        let address = match info.addr() {
            ConnectionAddr::Tcp(host, port) => Address::Tcp(host, *port),
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => Address::Unix(path),
            _ => return None,
        };
        let connecting = async {
            let connection = match address {
                Address::Tcp(host, port) => {
                    let stream = tokio::net::TcpStream::connect((host, port)).await?;
                    tune(&stream, info.tcp_settings())?;
                    Self::start(Socket::Tcp(stream), info.redis_settings().db())
                }
                #[cfg(unix)]
                Address::Unix(path) => {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Self::start(Socket::Unix(stream), info.redis_settings().db())
                }
            };
            connection.log_in(info).await?;
            Ok(connection)
        };
        let timed_out = || {
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connecting took longer than {CONNECT_TIMEOUT:?}"),
            ))
        };
        Some(
            tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                .await
                .unwrap_or_else(|_| Err(timed_out())),
        )
    }

    /// Whether `info` asks for what this connection does: plain TCP or a Unix socket,
    /// RESP2.
    pub(crate) fn serves(info: &ConnectionInfo) -> bool {
        let plain = match info.addr() {
            ConnectionAddr::Tcp(..) => true,
            #[cfg(unix)]
            ConnectionAddr::Unix(_) => true,
            _ => false,
        };
        plain && info.redis_settings().protocol() == redis::ProtocolVersion::RESP2
    }

    /// Starts the task that writes commands to `socket` and reads replies from it.
    fn start(socket: Socket, db: i64) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            output_ready: Notify::new(),
            socket,
        });
        let task = tokio::spawn(run(shared.clone()));
        PipelinedConnection {
            shared,
            _task: Arc::new(AbortOnDrop(task.abort_handle())),
            db,
        }
    }

    /// The database selected.
    pub(crate) fn db(&self) -> i64 {
        self.db
    }

    /// `AUTH` (with the user name if any), `SELECT` of a database other than 0, and the
    /// client's name and version for `CLIENT LIST` (an older Redis refuses `CLIENT
    /// SETINFO`; that is ignored).
    async fn log_in(&self, info: &ConnectionInfo) -> RedisResult<()> {
        let settings = info.redis_settings();
        let mut setup = redis::pipe();
        if let Some(password) = settings.password() {
            let auth = setup.cmd("AUTH");
            if let Some(user) = settings.username() {
                auth.arg(user);
            }
            auth.arg(password);
        }
        if settings.db() != 0 {
            setup.cmd("SELECT").arg(settings.db());
        }
        setup
            .cmd("CLIENT")
            .arg("SETINFO")
            .arg("LIB-NAME")
            .arg("lightbus-rs");
        setup
            .cmd("CLIENT")
            .arg("SETINFO")
            .arg("LIB-VER")
            .arg(env!("CARGO_PKG_VERSION"));
        let replies = self.send_packed_commands(&setup, 0, setup.len()).await?;
        let required = setup.len() - 2;
        for reply in replies.into_iter().take(required) {
            if let Value::ServerError(error) = reply {
                return Err(error.into());
            }
        }
        Ok(())
    }

    /// Sends `command` and awaits its reply.
    pub(crate) async fn send_packed_command(&self, command: &Cmd) -> RedisResult<Value> {
        let (sender, receiver) = oneshot::channel();
        self.send(
            |output| command.write_packed_command(output),
            Awaited::One(sender),
        )?;
        receiver.await.unwrap_or_else(|_| Err(self.closed()))
    }

    /// Sends the command of `args` (its name first), written straight into the output
    /// buffer (see [`write_command`]), and awaits its reply.
    pub(crate) async fn send_args(&self, args: &[&[u8]]) -> RedisResult<Value> {
        let (sender, receiver) = oneshot::channel();
        self.send(|output| write_command(args, output), Awaited::One(sender))?;
        receiver.await.unwrap_or_else(|_| Err(self.closed()))
    }

    /// Sends the commands of `pipeline` and awaits their replies: `count` of them after the
    /// first `offset` (as redis-rs's `ConnectionLike::req_packed_commands`).
    pub(crate) async fn send_packed_commands(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        if pipeline.is_empty() {
            return Ok(Vec::new());
        }
        let (sender, receiver) = oneshot::channel();
        let packed = pipeline.get_packed_pipeline();
        let awaited = Awaited::Many(Many {
            skip: offset,
            refused: None,
            count,
            replies: Vec::with_capacity(count),
            sender,
        });
        self.send(|output| output.extend_from_slice(&packed), awaited)?;
        receiver.await.unwrap_or_else(|_| Err(self.closed()))
    }

    /// Queues a command (what `write` writes) whose replies are awaited as `awaited`.
    fn send(&self, write: impl FnOnce(&mut Vec<u8>), awaited: Awaited) -> RedisResult<()> {
        let wake = {
            let mut state = lock(&self.shared.state);
            if let Some(failure) = &state.failure {
                return Err(failure.error());
            }
            write(&mut state.output);
            state.awaited.push_back(awaited);
            state.unsent += 1;
            let enough =
                state.unsent >= WRITE_AFTER_COMMANDS || state.output.len() >= WRITE_AFTER_BYTES;
            if enough && !state.writing {
                // Whatever the socket does not take now (or a failure, which the task's
                // next read or write reports) is left for the task; the next try comes
                // after as many commands again, so a full socket costs no call per command.
                if let Ok(written) = self.shared.socket.try_write(&state.output) {
                    state.output.drain(..written);
                }
                state.unsent = 0;
            }
            !state.output.is_empty() && !std::mem::replace(&mut state.woken, true)
        };
        if wake {
            self.shared.output_ready.notify_one();
        }
        Ok(())
    }

    /// The error of a command whose reply will not come: the connection's failure.
    fn closed(&self) -> RedisError {
        lock(&self.shared.state)
            .failure
            .clone()
            .unwrap_or_else(|| Failure {
                cause: Cause::Dropped(std::io::ErrorKind::BrokenPipe),
                message: "the connection was closed".to_owned(),
            })
            .error()
    }
}

/// Applies redis-rs's TCP settings (no delay, keep-alive, user timeout) to `stream`.
fn tune(
    stream: &tokio::net::TcpStream,
    settings: &redis::io::tcp::TcpSettings,
) -> std::io::Result<()> {
    stream.set_nodelay(settings.nodelay())?;
    let socket = redis::io::tcp::socket2::SockRef::from(stream);
    if let Some(keepalive) = settings.keepalive() {
        socket.set_tcp_keepalive(keepalive)?;
    }
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    socket.set_tcp_user_timeout(settings.user_timeout())?;
    Ok(())
}

/// How much room the reader makes before each read.
const READ_SIZE: usize = 64 * 1024;

/// Buffers larger than this are freed once empty rather than kept (a burst of large
/// commands or replies should not pin memory for the connection's life).
const KEEP_BUFFER: usize = 1024 * 1024;

/// The connection's task: writes and reads until either fails, then fails every awaited
/// command and every later one.
async fn run(shared: Arc<Shared>) {
    let failure = tokio::select! {
        failure = write_loop(&shared) => failure,
        failure = read_loop(&shared) => failure,
    };
    let awaited = {
        let mut state = lock(&shared.state);
        state.failure = Some(failure.clone());
        state.output = Vec::new();
        std::mem::take(&mut state.awaited)
    };
    for awaited in awaited {
        awaited.fail(failure.error());
    }
}

async fn write_loop(shared: &Shared) -> Failure {
    let mut spare = Vec::new();
    loop {
        shared.output_ready.notified().await;
        loop {
            {
                let mut state = lock(&shared.state);
                if state.output.is_empty() {
                    state.woken = false;
                    break;
                }
                std::mem::swap(&mut state.output, &mut spare);
                state.unsent = 0;
                state.writing = true;
            }
            if let Err(error) = shared.socket.write_all(&spare).await {
                return Failure::dropped("writing to Redis failed", &error);
            }
            lock(&shared.state).writing = false;
            spare.clear();
            if spare.capacity() > KEEP_BUFFER {
                spare = Vec::new();
            }
        }
    }
}

async fn read_loop(shared: &Shared) -> Failure {
    let mut input = Vec::with_capacity(READ_SIZE);
    let mut reader = Reader::default();
    // Where the reply being read starts in `input`.
    let mut start = 0;
    let mut replies = Vec::new();
    let mut done = Vec::new();
    loop {
        loop {
            match reader.read(&input[start..]) {
                Ok(Some((reply, length))) => {
                    replies.push(reply);
                    start += length;
                }
                Ok(None) => break,
                Err(ProtocolError(message)) => return Failure::protocol(message),
            }
        }
        if !replies.is_empty() {
            if let Err(failure) = hand_over(shared, &mut replies, &mut done) {
                return failure;
            }
        }
        // Keep the start of an incomplete reply at the front; make room for the next read.
        if start == input.len() {
            input.clear();
            start = 0;
            if input.capacity() > KEEP_BUFFER {
                input = Vec::new(); // a large reply went by: give its room back
            }
        } else if start > 0 && input.capacity() - input.len() < READ_SIZE / 4 {
            input.drain(..start);
            start = 0;
        }
        input.reserve(READ_SIZE.saturating_sub(input.capacity() - input.len()));
        match shared.socket.read(&mut input).await {
            Ok(0) => {
                return Failure {
                    cause: Cause::Dropped(std::io::ErrorKind::BrokenPipe),
                    message: "Redis closed the connection".to_owned(),
                }
            }
            Ok(_) => {}
            Err(error) => return Failure::dropped("reading from Redis failed", &error),
        }
    }
}

/// Gives `replies` to the commands awaiting them, in order (`done` is room for the
/// commands completed, kept between calls so that reading allocates nothing for it).
fn hand_over(
    shared: &Shared,
    replies: &mut Vec<Value>,
    done: &mut Vec<Completed>,
) -> Result<(), Failure> {
    {
        let mut state = lock(&shared.state);
        for reply in replies.drain(..) {
            match state.awaited.pop_front() {
                None => return Err(Failure::protocol("a reply to no command".to_owned())),
                Some(Awaited::One(sender)) => done.push(Completed::One(sender, reply)),
                Some(Awaited::Many(mut many)) => {
                    if many.skip > 0 {
                        many.skip -= 1;
                        if let (Value::ServerError(error), None) = (reply, &many.refused) {
                            many.refused = Some(error);
                        }
                    } else {
                        many.replies.push(reply);
                    }
                    if many.skip == 0 && many.replies.len() == many.count {
                        done.push(Completed::Many(
                            many.sender,
                            match many.refused {
                                Some(error) => Err(error.into()),
                                None => Ok(many.replies),
                            },
                        ));
                    } else {
                        state.awaited.push_front(Awaited::Many(many));
                    }
                }
            }
        }
    }
    // Outside the lock: waking the callers takes longer than queueing did.
    for completed in done.drain(..) {
        // A caller that stopped waiting dropped its receiver: its reply is dropped.
        let _ = match completed {
            Completed::One(sender, reply) => sender.send(Ok(reply)).map_err(drop),
            Completed::Many(sender, replies) => sender.send(replies).map_err(drop),
        };
    }
    Ok(())
}

//! [`TestChild`]: the running test binary started again as a child process, so that a test
//! can SIGKILL a worker (a task in the test's own process cannot be killed that way).
//!
//! The child runs one test of the same binary, chosen by name, whose body does its work only
//! when the environment the parent set says so (and returns at once in an ordinary run):
//!
//! ```no_run
//! # async fn example() {
//! use lightbus_test_support::TestChild;
//!
//! let mut command = TestChild::command("child_listener_process");
//! command.env("CHILD_CONFIG", "/tmp/lightbus.yaml");
//! let mut child = TestChild::spawn(command);
//! let user = child.expect("handling ").await;
//! child.kill();
//! # }
//! ```

use std::process::{Child, Command, Stdio};

use tokio::sync::mpsc::UnboundedReceiver;

use crate::peer::line_channel;
use crate::wait::PATIENCE;

/// A child process running one test of this test binary; killed (SIGKILL) on drop. Its
/// stdout arrives line by line; its stderr is discarded.
#[derive(Debug)]
pub struct TestChild {
    child: Child,
    lines: UnboundedReceiver<String>,
}

impl TestChild {
    /// A command running only the test named `test` of this test binary, printing its
    /// output as it goes. Add the environment the child's test reads, then
    /// [`spawn`](Self::spawn) it.
    pub fn command(test: &str) -> Command {
        let mut command = Command::new(std::env::current_exe().expect("the test binary"));
        command
            .args([test, "--exact", "--nocapture"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        command
    }

    /// Starts `command` (from [`command`](Self::command)).
    pub fn spawn(mut command: Command) -> TestChild {
        let mut child = command.spawn().expect("spawn the child test process");
        let lines = line_channel(child.stdout.take().expect("the child's stdout"));
        TestChild { child, lines }
    }

    /// Waits (at most [`PATIENCE`]) for the next line starting with `prefix`, skipping
    /// others, and returns the rest of it.
    pub async fn expect(&mut self, prefix: &str) -> String {
        loop {
            let line = tokio::time::timeout(PATIENCE, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no `{prefix}` line from the child within {PATIENCE:?}"))
                .unwrap_or_else(|| panic!("the child exited before printing `{prefix}`"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_owned();
            }
        }
    }

    /// Every line the child prints from now on, for a consumer of its own: the channel
    /// closes once the child has exited and its output is read to the end.
    /// [`expect`](Self::expect) sees nothing after this.
    pub fn take_lines(&mut self) -> UnboundedReceiver<String> {
        let (_, empty) = tokio::sync::mpsc::unbounded_channel();
        std::mem::replace(&mut self.lines, empty)
    }

    /// Kills the child with SIGKILL (no clean-up runs in it) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the child");
        let _ = self.child.wait();
    }
}

impl Drop for TestChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Waiting between attempts after a failure, transport-neutral.

use std::future::Future;
use std::time::Duration;

use crate::error::Result;

/// The first delay of a [`Backoff`].
const FIRST_DELAY: Duration = Duration::from_millis(100);

/// Delays between attempts: doubling from 100 ms up to a cap, with jitter, reset after a
/// success.
///
/// Each delay is drawn between half and all of the nominal one ("equal jitter"), so the
/// processes of a fleet that lost Redis together do not all reconnect in the same instant,
/// while none retries much sooner than the schedule says.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Delays doubling up to `max` (at least the first delay, 100 ms).
    pub(crate) fn new(max: Duration) -> Self {
        Backoff {
            next: FIRST_DELAY,
            max: max.max(FIRST_DELAY),
        }
    }

    /// The delay to wait now; the following one will be longer, up to the cap.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let nominal = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = nominal / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// Starts again from the first delay (after a success).
    pub(crate) fn reset(&mut self) {
        self.next = FIRST_DELAY;
    }
}

/// Runs `operation`, retrying it a few times, briefly, while it fails with a transient error
/// (a connection being re-established after the server went away).
pub(crate) async fn retry_transient<T, F, Fut>(mut operation: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    const ATTEMPTS: u32 = 4;
    let mut attempt = 1;
    loop {
        match operation().await {
            Err(error) if error.is_transient() && attempt < ATTEMPTS => {
                tracing::debug!("retrying after a transient error: {error}");
                tokio::time::sleep(FIRST_DELAY * attempt).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(500));
        let nominal = [100, 200, 400, 500, 500];
        for expected in nominal {
            let delay = backoff.next_delay().as_millis() as u64;
            assert!(
                (expected / 2..=expected).contains(&delay),
                "{delay} ms for a nominal {expected} ms"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= FIRST_DELAY);
    }
}

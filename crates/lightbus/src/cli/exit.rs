//! How a command's failure maps to its exit code: the policy of every Lightbus command line,
//! a service's own binary and the `lightbus` tool alike.

use std::process::ExitCode;

use crate::error::Error;

/// Exit code: the procedure ran on a worker and failed, a listener or task failed, or any
/// error not listed below.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage: a malformed command line, arguments or configuration, or a call
/// the API's schema rejects before it is sent (unknown procedure, invalid arguments).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: no result arrived within the timeout (most often: no worker serves the API).
pub const EXIT_TIMEOUT: u8 = 3;
/// Exit code: Redis could not be reached, refused the credentials, failed the TLS handshake
/// (a certificate that does not verify), or answered with an error.
pub const EXIT_BUS_UNAVAILABLE: u8 = 4;

/// The exit code for an error: [`EXIT_FAILED`], [`EXIT_USAGE`], [`EXIT_TIMEOUT`] or
/// [`EXIT_BUS_UNAVAILABLE`].
///
/// ```
/// use lightbus::cli::{exit_code, EXIT_USAGE};
/// let error = lightbus::Error::InvalidArguments { member: "a.b".into(), reason: "x".into() };
/// assert_eq!(exit_code(&error), std::process::ExitCode::from(EXIT_USAGE));
/// ```
pub fn exit_code(error: &Error) -> ExitCode {
    ExitCode::from(match error {
        Error::Timeout { .. } => EXIT_TIMEOUT,
        Error::Connection { .. }
        | Error::Authentication { .. }
        | Error::Tls { .. }
        | Error::Server { .. }
        | Error::Closed => EXIT_BUS_UNAVAILABLE,
        Error::Config(_)
        | Error::InvalidArguments { .. }
        | Error::InvalidName { .. }
        | Error::UnknownMember { .. }
        | Error::NotAuthoritative { .. }
        | Error::Validation(_)
        | Error::Schema(_) => EXIT_USAGE,
        _ => EXIT_FAILED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Operation;

    #[test]
    fn failures_map_to_documented_exit_codes() {
        let timeout = Error::Timeout {
            operation: Operation::Call {
                api: "a".into(),
                procedure: "b".into(),
            },
            after: std::time::Duration::from_secs(1),
        };
        assert_eq!(exit_code(&timeout), ExitCode::from(EXIT_TIMEOUT));
        let remote = Error::remote("a", "b", "boom".into(), String::new(), None);
        assert_eq!(exit_code(&remote), ExitCode::from(EXIT_FAILED));
        let unreachable = Error::Connection {
            url: "redis://h".into(),
            source: "refused".into(),
        };
        assert_eq!(
            exit_code(&unreachable),
            ExitCode::from(EXIT_BUS_UNAVAILABLE)
        );
        let password = Error::Authentication {
            url: "redis://u:***@h".into(),
            source: "WRONGPASS".into(),
        };
        assert_eq!(exit_code(&password), ExitCode::from(EXIT_BUS_UNAVAILABLE));
        let usage = Error::InvalidName {
            kind: crate::error::NameKind::Member,
            name: "x".into(),
            reason: "r".into(),
        };
        assert_eq!(exit_code(&usage), ExitCode::from(EXIT_USAGE));
    }
}

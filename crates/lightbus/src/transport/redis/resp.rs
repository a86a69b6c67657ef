//! Reading RESP2 replies off a connection's buffer into [`redis::Value`]s, in one pass
//! that resumes where it stopped when a reply arrives in pieces; and writing a command
//! given as its arguments ([`write_command`]).
//!
//! This is the reader of [`PipelinedConnection`](super::pipelined::PipelinedConnection).
//! Replies come from the network, so nothing here trusts them: a malformed reply is a
//! [`ProtocolError`] (the connection is then closed, since what follows can no longer be
//! framed), never a panic, and no declared size is allocated before its bytes arrived.
//! Nesting is walked with an explicit stack, so a deeply nested reply cannot overflow the
//! thread's stack.
//!
//! Why not redis-rs's parser: it is built from `combine` parser combinators, which cost
//! 12.7k of the 30.4k instructions a worker's listener spent per consumed event (callgrind,
//! `lightbus bench listen`); this reader takes each header line with one scan and each bulk
//! string with one copy. It speaks RESP2 only, what this library negotiates (Python
//! Lightbus does too); connections asked for RESP3 stay on redis-rs's connection.

use redis::Value;

/// A reply that is not valid RESP2: the text says what was found where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProtocolError(pub(super) String);

/// How many elements an array may reserve room for before they arrived: larger arrays
/// grow as their elements come (a hostile header cannot make the reader allocate much).
const MAX_RESERVED_ELEMENTS: usize = 1024;

/// How deep arrays may nest. Redis's replies nest a few levels (a stream read: five);
/// the limit keeps a hostile reply from building a value whose drop, which recurses,
/// would overflow the stack.
const MAX_DEPTH: usize = 32;

/// A resumable reader of one reply at a time. Feed it the buffer from the start of the
/// current reply; it remembers how far it got and the arrays it has opened.
#[derive(Debug, Default)]
pub(super) struct Reader {
    /// Offset of the next element's header, from the start of the reply.
    at: usize,
    /// The arrays opened and not yet complete, innermost last: the elements read so far,
    /// and how many are still to come.
    open: Vec<(Vec<Value>, usize)>,
}

/// One element's header, read.
enum Element {
    /// A whole value, and the offset just after it.
    Value(Value, usize),
    /// An array of this many elements (more than zero) begins; its first element is at
    /// the offset.
    Array(usize, usize),
}

impl Reader {
    /// Reads on in `buffer`, which begins with the reply being read (and holds at least
    /// what the previous call saw): the reply and its length once it is complete, `None`
    /// while bytes are missing.
    pub(super) fn read(&mut self, buffer: &[u8]) -> Result<Option<(Value, usize)>, ProtocolError> {
        loop {
            let (mut value, next) = match element(buffer, self.at)? {
                None => return Ok(None),
                Some(Element::Value(value, next)) => (value, next),
                Some(Element::Array(count, next)) => {
                    if self.open.len() == MAX_DEPTH {
                        return Err(invalid(
                            buffer.get(self.at..).unwrap_or_default(),
                            "arrays nested too deep",
                        ));
                    }
                    let items = Vec::with_capacity(count.min(MAX_RESERVED_ELEMENTS));
                    self.open.push((items, count));
                    self.at = next;
                    continue;
                }
            };
            self.at = next;
            // The element is complete: add it to its array, and every array it completes
            // to the one around it.
            loop {
                let Some((items, left)) = self.open.last_mut() else {
                    self.at = 0;
                    return Ok(Some((value, next)));
                };
                items.push(value);
                *left -= 1;
                if *left > 0 {
                    break;
                }
                match self.open.pop() {
                    Some((items, _)) => value = Value::Array(items),
                    None => break, // not reached: `last_mut` found it
                }
            }
        }
    }
}

/// The element whose header starts at `at`, if all its bytes (for an array: its header's)
/// are in `buffer`.
fn element(buffer: &[u8], at: usize) -> Result<Option<Element>, ProtocolError> {
    let Some(rest) = buffer.get(at..) else {
        return Ok(None);
    };
    let Some(end) = line_end(rest) else {
        if rest.len() > MAX_HEADER && rest.first() != Some(&b'-') && rest.first() != Some(&b'+') {
            return Err(invalid(rest, "a header line without its end"));
        }
        return Ok(None);
    };
    let Some(&kind) = rest.first() else {
        return Ok(None);
    };
    let line = rest.get(1..end).unwrap_or_default();
    let next = at + end + 2;
    let element = match kind {
        b'+' => Element::Value(
            match line {
                b"OK" => Value::Okay,
                text => Value::SimpleString(String::from_utf8_lossy(text).into_owned()),
            },
            next,
        ),
        b'-' => {
            // Error replies are rare: redis-rs reads them into its own error type (kind,
            // code, detail), which the layers above classify.
            let value = redis::parse_redis_value(&rest[..end + 2])
                .map_err(|e| invalid(rest, &format!("an unreadable error reply ({e})")))?;
            Element::Value(value, next)
        }
        b':' => Element::Value(Value::Int(number(line, rest)?), next),
        b'$' => match number(line, rest)? {
            -1 => Element::Value(Value::Nil, next),
            length if length >= 0 => {
                let length = usize::try_from(length)
                    .map_err(|_| invalid(rest, "a bulk string longer than memory"))?;
                let Some(after) = next.checked_add(length).and_then(|end| end.checked_add(2))
                else {
                    return Err(invalid(rest, "a bulk string longer than memory"));
                };
                let Some(bytes) = buffer.get(next..after) else {
                    return Ok(None);
                };
                if !bytes.ends_with(b"\r\n") {
                    return Err(invalid(rest, "a bulk string not ended by CRLF"));
                }
                Element::Value(Value::BulkString(bytes[..length].to_vec()), after)
            }
            _ => return Err(invalid(rest, "a negative bulk string length")),
        },
        b'*' => match number(line, rest)? {
            -1 => Element::Value(Value::Nil, next),
            0 => Element::Value(Value::Array(Vec::new()), next),
            count if count > 0 => Element::Array(
                usize::try_from(count).map_err(|_| invalid(rest, "an array too long"))?,
                next,
            ),
            _ => return Err(invalid(rest, "a negative array length")),
        },
        _ => {
            return Err(invalid(
                rest,
                "an unknown reply type (RESP3 is not negotiated)",
            ))
        }
    };
    Ok(Some(element))
}

/// The longest header line of an integer, bulk string or array (a sign, 20 digits, CRLF
/// and the type byte, with room to spare): more bytes without a line end are not RESP.
/// Simple strings and errors may be longer.
const MAX_HEADER: usize = 64;

/// The offset of the `\r` of the first `\r\n` in `bytes`.
fn line_end(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    loop {
        let at = from + bytes.get(from..)?.iter().position(|&b| b == b'\r')?;
        match bytes.get(at + 1) {
            Some(b'\n') => return Some(at),
            Some(_) => from = at + 1,
            None => return None,
        }
    }
}

/// The integer of a header line.
fn number(line: &[u8], reply: &[u8]) -> Result<i64, ProtocolError> {
    let (negative, digits) = match line.split_first() {
        Some((b'-', digits)) => (true, digits),
        _ => (false, line),
    };
    if digits.is_empty() {
        return Err(invalid(reply, "a header without its number"));
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return Err(invalid(reply, "a header whose number is not a number"));
        }
        value = value
            .checked_mul(10)
            .and_then(|value| value.checked_add(i64::from(digit - b'0')))
            .ok_or_else(|| invalid(reply, "a header whose number overflows"))?;
    }
    Ok(if negative { -value } else { value })
}

/// A protocol error naming what was wrong and the start of the bytes found.
fn invalid(at: &[u8], what: &str) -> ProtocolError {
    let shown = &at[..at.len().min(40)];
    ProtocolError(format!(
        "{what}, at \"{}\"",
        String::from_utf8_lossy(shown).escape_debug()
    ))
}

/// Writes the command of `args` (its name first) to `out` as RESP: an array of bulk
/// strings, byte for byte what redis-rs writes for the same arguments. For the hot paths,
/// which hold their arguments as byte slices already: redis-rs's `Cmd` copies every
/// argument into its own buffer first, and its writer took 2.1k instructions per event
/// fired (callgrind, `lightbus bench fire -c 64`); this one takes a few hundred.
pub(super) fn write_command(args: &[&[u8]], out: &mut Vec<u8>) {
    let size: usize = args.iter().map(|arg| arg.len() + 16).sum();
    out.reserve(size + 16);
    write_header(out, b'*', args.len());
    for arg in args {
        write_header(out, b'$', arg.len());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// `<kind><n>\r\n`, put together on the stack and appended with one copy (appending
/// piece by piece cost twice as many instructions).
fn write_header(out: &mut Vec<u8>, kind: u8, n: usize) {
    // The type byte, up to 20 digits, CRLF.
    let mut header = [0u8; 23];
    header[21] = b'\r';
    header[22] = b'\n';
    let mut at = 21;
    let mut rest = n;
    loop {
        at -= 1;
        // `rest % 10` < 10: the cast keeps every value.
        header[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    at -= 1;
    header[at] = kind;
    out.extend_from_slice(&header[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `bytes` fed in pieces of `step` bytes, as a connection would.
    fn read_in_steps(bytes: &[u8], step: usize) -> Vec<Value> {
        let mut reader = Reader::default();
        let mut replies = Vec::new();
        let mut start = 0;
        let mut seen = 0;
        while seen < bytes.len() {
            seen = (seen + step).min(bytes.len());
            while let Some((value, length)) = reader.read(&bytes[start..seen]).unwrap() {
                replies.push(value);
                start += length;
            }
        }
        assert_eq!(start, bytes.len(), "every reply read");
        replies
    }

    const REPLIES: &[u8] =
        b"+OK\r\n+PONG\r\n:-42\r\n$5\r\nhe\r\no\r\n$-1\r\n*-1\r\n*0\r\n$0\r\n\r\n\
        *2\r\n*2\r\n$6\r\nstream\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nk\r\n$1\r\nv\r\n:7\r\n\
        -ERR unknown command\r\n";

    fn expected() -> Vec<Value> {
        let bulk = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        vec![
            Value::Okay,
            Value::SimpleString("PONG".to_owned()),
            Value::Int(-42),
            bulk("he\r\no"),
            Value::Nil,
            Value::Nil,
            Value::Array(vec![]),
            bulk(""),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("stream"),
                    Value::Array(vec![Value::Array(vec![
                        bulk("1-0"),
                        Value::Array(vec![bulk("k"), bulk("v")]),
                    ])]),
                ]),
                Value::Int(7),
            ]),
            redis::parse_redis_value(b"-ERR unknown command\r\n").unwrap(),
        ]
    }

    #[test]
    fn replies_read_whole_and_byte_by_byte_agree_with_redis_rs() {
        for step in [1, 2, 3, 7, REPLIES.len()] {
            assert_eq!(read_in_steps(REPLIES, step), expected(), "step {step}");
        }
        assert!(matches!(expected()[9], Value::ServerError(_)));
    }

    #[test]
    fn commands_are_written_as_redis_rs_writes_them() {
        let long = vec![b'x'; 12_345];
        let args: [&[u8]; 6] = [b"XADD", b"s.*:stream", b"*", b"", b"\r\n$-1", &long];
        let mut command = redis::Cmd::new();
        for arg in args {
            command.arg(arg);
        }
        let mut out = b"before".to_vec();
        write_command(&args, &mut out);
        assert_eq!(&out[..6], b"before");
        assert_eq!(out[6..], command.get_packed_command());
        let mut headers = Vec::new();
        write_header(&mut headers, b':', 0);
        write_header(&mut headers, b'*', usize::MAX);
        assert_eq!(headers, format!(":0\r\n*{}\r\n", usize::MAX).as_bytes());
    }

    #[test]
    fn malformed_replies_are_errors_naming_what_was_found() {
        for (bytes, what) in [
            (&b"?what\r\n"[..], "unknown reply type"),
            (b"$3\r\nabcd\r\n", "not ended by CRLF"),
            (b"$-2\r\n", "negative bulk string length"),
            (b"*-5\r\n", "negative array length"),
            (b":12a\r\n", "not a number"),
            (b":\r\n", "without its number"),
            (b":99999999999999999999999\r\n", "overflows"),
            (&[b'*'; 100][..], "without its end"),
        ] {
            let error = Reader::default().read(bytes).unwrap_err();
            assert!(error.0.contains(what), "{bytes:?}: {error:?}");
        }
    }

    #[test]
    fn hostile_sizes_allocate_nothing_up_front_and_nesting_is_bounded() {
        // An array claiming a billion elements and a bulk string claiming 2^62 bytes wait
        // for their bytes instead of allocating.
        let mut reader = Reader::default();
        assert_eq!(reader.read(b"*1000000000\r\n:1\r\n").unwrap(), None);
        assert!(reader.open[0].0.capacity() <= MAX_RESERVED_ELEMENTS);
        assert_eq!(
            Reader::default()
                .read(b"$4611686018427387904\r\nab")
                .unwrap(),
            None
        );
        // Nesting up to the limit reads; a million levels is an error, not a deep value.
        let nested = |depth: usize| {
            let mut bytes = b"*1\r\n".repeat(depth);
            bytes.extend_from_slice(b":1\r\n");
            bytes
        };
        let bytes = nested(MAX_DEPTH);
        let (mut value, length) = Reader::default().read(&bytes).unwrap().unwrap();
        assert_eq!(length, bytes.len());
        let mut levels = 0;
        while let Value::Array(mut items) = value {
            value = items.pop().unwrap();
            levels += 1;
        }
        assert_eq!((levels, value), (MAX_DEPTH, Value::Int(1)));
        let error = Reader::default().read(&nested(1_000_000)).unwrap_err();
        assert!(error.0.contains("nested too deep"), "{error:?}");
        assert!(Reader::default()
            .read(b"\r\n")
            .unwrap_err()
            .0
            .contains("unknown"));
    }
}

//! The RESP2 the output speaks: commands as arrays of bulk strings, and the replies it reads
//! (status, error, integer, bulk; arrays are read and skipped).

use std::io::{self, BufRead};

/// Appends `*N $len arg …` for one command.
pub fn command<'a>(out: &mut Vec<u8>, args: impl ExactSizeIterator<Item = &'a [u8]>) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    /// `-ERR …`: the command failed, the connection is fine.
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array,
}

/// Longest reply line accepted (status and error texts are short).
const MAX_LINE: usize = 64 * 1024;

fn read_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    let n = BufRead::read_until(
        &mut io::Read::take(&mut *r, MAX_LINE as u64),
        b'\n',
        &mut line,
    )?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "redis closed the connection",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::other("malformed reply from redis (no CRLF)"));
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn bad(what: &str) -> io::Error {
    io::Error::other(format!("malformed reply from redis: {what}"))
}

/// Reads one reply. I/O errors and protocol violations are `Err` (the connection is to be
/// dropped); an error reply is `Ok(Reply::Error)`.
pub fn read_reply<R: BufRead>(r: &mut R) -> io::Result<Reply> {
    let line = read_line(r)?;
    let (kind, rest) = line.split_at(line.len().min(1));
    Ok(match kind {
        "+" => Reply::Status(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Int(rest.parse().map_err(|_| bad(&line))?),
        "$" => {
            let n: i64 = rest.parse().map_err(|_| bad(&line))?;
            if n < 0 {
                return Ok(Reply::Bulk(None));
            }
            let mut v = vec![0u8; n as usize + 2];
            io::Read::read_exact(r, &mut v)?;
            v.truncate(n as usize);
            Reply::Bulk(Some(v))
        }
        "*" => {
            let n: i64 = rest.parse().map_err(|_| bad(&line))?;
            for _ in 0..n.max(0) {
                read_reply(r)?;
            }
            Reply::Array
        }
        _ => return Err(bad(&line)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_replies() {
        let mut out = Vec::new();
        command(&mut out, [&b"RPUSH"[..], b"k", b"{\"a\":1}"].into_iter());
        assert_eq!(out, b"*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$7\r\n{\"a\":1}\r\n");
        let mut r = &b"+OK\r\n-WRONGTYPE Operation against a key\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n$1\r\nx\r\n"[..];
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Status("OK".into()));
        assert_eq!(
            read_reply(&mut r).unwrap(),
            Reply::Error("WRONGTYPE Operation against a key".into())
        );
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Int(42));
        assert_eq!(
            read_reply(&mut r).unwrap(),
            Reply::Bulk(Some(b"abc".to_vec()))
        );
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Bulk(None));
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Array);
        assert_eq!(
            read_reply(&mut r).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert!(read_reply(&mut &b":x\r\n"[..]).is_err());
        assert!(read_reply(&mut &b"?\r\n"[..]).is_err());
        assert!(read_reply(&mut &b"+OK\n"[..]).is_err());
    }
}

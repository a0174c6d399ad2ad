//! The Redis analyzer through the real TCP layer: segments in, events out.

use super::*;
use crate::protos::app::Module;
use crate::protos::testing::TcpSession;
use std::sync::Arc;
use std::time::Duration;

/// A client/server session on port 6379 with send_request/send_response on.
fn session(cfg: RedisConfig) -> TcpSession {
    let common = CommonOptions {
        ports: vec![6379],
        send_request: true,
        send_response: true,
        transaction_timeout: Duration::from_secs(10),
    };
    let module = Arc::new(Module::new(
        Redis::configure(&common, cfg).unwrap(),
        &common,
    ));
    TcpSession::new(module, 6379)
}

fn cmd(args: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    v
}

#[test]
fn resp3_pushes_are_not_replies() {
    let mut c = session(RedisConfig::default());
    c.send(true, &cmd(&["GET", "a"]), 0);
    c.send(true, &cmd(&["GET", "b"]), 0);
    // An invalidation push (client-side caching) arrives between the two replies.
    c.send(
        false,
        b"$1\r\n1\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n$1\r\n2\r\n",
        1,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert_eq!(evs[0]["query"], "GET a");
    assert_eq!(evs[0]["redis"]["return_value"], "1");
    assert_eq!(evs[1]["query"], "GET b");
    assert_eq!(evs[1]["redis"]["return_value"], "2");
}

#[test]
fn pipelined_commands_unknown_commands_and_transactions() {
    let mut c = session(RedisConfig::default());
    let mut burst = Vec::new();
    for a in [
        &["SET", "k", "a\r\nb"][..],
        &["FOO", "bar"],
        &["MULTI"],
        &["INCR", "n"],
        &["EXEC"],
        &["CONFIG", "GET", "maxmemory"],
        &["LRANGE", "empty", "0", "-1"],
    ] {
        burst.extend(cmd(a));
    }
    c.send(true, &burst, 0);
    c.send(
        false,
        b"+OK\r\n-ERR unknown command 'FOO'\r\n+OK\r\n+QUEUED\r\n*1\r\n:1\r\n*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n*0\r\n",
        1,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 7, "{evs:?}");
    assert_eq!(evs[0]["query"], "SET k a\r\nb");
    assert_eq!(evs[0]["resource"], "k");
    assert_eq!(evs[0]["redis"]["return_value"], "OK");
    assert_eq!(evs[1]["method"], "FOO");
    assert_eq!(evs[1]["status"], "Error");
    assert_eq!(evs[1]["redis"]["error"], "ERR unknown command 'FOO'");
    assert_eq!(evs[3]["redis"]["return_value"], "QUEUED");
    assert_eq!(evs[4]["method"], "EXEC");
    assert_eq!(evs[4]["redis"]["return_value"], "[1]");
    assert_eq!(evs[5]["method"], "CONFIG GET");
    assert_eq!(evs[5]["resource"], "maxmemory");
    assert_eq!(evs[5]["redis"]["return_value"], "[maxmemory, 0]");
    assert_eq!(evs[6]["redis"]["return_value"], "[]");
}

#[test]
fn a_large_reply_in_many_segments_and_a_gap_inside_one() {
    let mut c = session(RedisConfig::default());
    let value = vec![b'x'; 200_000];
    let mut reply = b"$200000\r\n".to_vec();
    reply.extend_from_slice(&value);
    reply.extend_from_slice(b"\r\n");
    c.send(true, &cmd(&["GET", "big"]), 0);
    for (i, chunk) in reply.chunks(1448).enumerate() {
        c.send(false, chunk, 1 + i as i64);
    }
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(
        evs[0]["redis"]["return_value"].as_str().unwrap().len(),
        200_000
    );
    assert_eq!(evs[0]["destination"]["bytes"], reply.len());

    // Again, with a segment of the reply lost: the commands after it are still reported.
    c.send(true, &cmd(&["GET", "big"]), 1000);
    let chunks: Vec<&[u8]> = reply.chunks(1448).collect();
    c.send(false, chunks[0], 1001);
    c.skip(false, chunks[1].len() as u32);
    for (i, chunk) in chunks[2..].iter().enumerate() {
        c.send(false, chunk, 1002 + i as i64);
    }
    c.send(true, &cmd(&["PING"]), 2000);
    c.send(false, b"+PONG\r\n", 2001);
    let evs = c.events();
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["method"], "PING");
    assert_eq!(evs[0]["redis"]["return_value"], "PONG");
}

#[test]
fn the_queue_is_bounded() {
    let mut c = session(RedisConfig {
        queue_max_bytes: 1_048_576,
        queue_max_messages: 2,
    });
    let mut burst = Vec::new();
    for k in ["a", "b", "c"] {
        burst.extend(cmd(&["GET", k]));
    }
    c.send(true, &burst, 0);
    c.send(false, b"$1\r\nB\r\n$1\r\nC\r\n", 1);
    let evs = c.events();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0]["resource"], "b");
    assert_eq!(evs[1]["resource"], "c");
}

#[test]
fn inline_commands_and_blank_lines_are_commands_as_redis_reads_them() {
    let mut c = session(RedisConfig::default());
    // redis-cli --pipe: a batch of SETs, a blank line, then its ECHO of 20 random bytes whose
    // reply carries CR LF inside the bulk string.
    let mut burst = cmd(&["SET", "key001", "value001"]);
    burst.extend_from_slice(b"\r\n*2\r\n$4\r\nECHO\r\n$5\r\na\r\nbc\r\n");
    c.send(true, &burst, 0);
    c.send(false, b"+OK\r\n$5\r\na\r\nbc\r\n", 1);
    // A telnet user.
    c.send(true, b"PING\r\nset \"greeting\" 'hello world'\r\n", 2);
    c.send(false, b"+PONG\r\n+OK\r\n", 3);
    let evs = c.events();
    assert_eq!(evs.len(), 4, "{evs:?}");
    assert_eq!(evs[0]["query"], "SET key001 value001");
    assert_eq!(evs[1]["method"], "ECHO");
    assert_eq!(evs[1]["redis"]["return_value"], "a\r\nbc");
    assert_eq!(evs[2]["query"], "PING");
    assert_eq!(evs[2]["redis"]["return_value"], "PONG");
    assert_eq!(evs[3]["method"], "SET");
    assert_eq!(evs[3]["query"], "set greeting hello world");
    assert_eq!(evs[3]["resource"], "greeting");
}

//! The PostgreSQL analyzer: its parsers on real and broken messages split at every byte, and
//! whole sessions through the real TCP layer.

use super::parser::{parse_backend, parse_frontend, Backend, Frontend, Negotiation};
use super::*;
use crate::protos::app::Module;
use crate::protos::testing::{unhex, TcpSession};
use crate::protos::ProtocolModule;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

/// pgsql_request_response.pcap: `select * from test;` and its four rows.
const SIMPLE_REQ: &str = "510000001873656c656374202a2066726f6d20746573743b00";
const SIMPLE_RESP: &str = "54000000420003610000004009000100000413ffffffffffff0000620000004009000200000413ffffffffffff0000630000004009000300000413ffffffffffff0000440000001b0003000000036d6561000000036d6562000000036d6563440000001e0003000000046d656131000000046d656231000000046d656331440000001e0003000000046d656132000000046d656232000000046d656332440000001e0003000000046d656133000000046d656233000000046d656333430000000d53454c4543542034005a0000000549";
/// pgsql_extended_query.pcap: a JDBC driver's `SET` batch, then Parse/Bind/Describe/Execute/Sync.
const EXT_SET_REQ: &str = "5000000022005345542065787472615f666c6f61745f646967697473203d2033000000420000000c0000000000000000450000000900000000015300000004";
const EXT_SET_RESP: &str = "310000000432000000044300000008534554005a0000000549";
const EXT_REQ: &str = "500000002c0053454c454354202a2066726f6d2074657374207768657265206964203d20243100000100000017420000001600000001000100010000000400000001000044000000065000450000000900000000005300000004";
const EXT_RESP: &str = "3100000004320000000454000000320002696400000040010001000000170004ffffffff00006e616d650000004001000200000412ffff000000180000440000002300020000000131000000143232322020202020202020202020202020202020430000000d53454c4543542031005a0000000549";
/// pgsql_insert_error.pcap: the ErrorResponse of a duplicate key.
const ERROR_RESP: &str = "4500000092534552524f5200433233353035004d6475706c6963617465206b65792076616c75652076696f6c6174657320756e6971756520636f6e73747261696e742022756e697175655f612200444b6579202861293d286d6561352920616c7265616479206578697374732e00466e6274696e736572742e63004c33393700525f62745f636865636b5f756e697175650000";

fn common() -> CommonOptions {
    CommonOptions {
        ports: vec![5432],
        send_request: true,
        send_response: true,
        transaction_timeout: Duration::from_secs(10),
    }
}

fn settings(cfg: PgsqlConfig) -> Pgsql {
    Pgsql::configure(&common(), cfg).unwrap()
}

fn session_with(p: Pgsql) -> (TcpSession, Arc<Module<Pgsql>>) {
    let module = Arc::new(Module::new(p, &common()));
    (TcpSession::new(module.clone(), 5432), module)
}

fn session() -> (TcpSession, Arc<Module<Pgsql>>) {
    session_with(settings(PgsqlConfig::default()))
}

fn counter(m: &Module<Pgsql>, f: fn(&AppCounters) -> &std::sync::atomic::AtomicU64) -> u64 {
    f(m.counters().unwrap()).load(Ordering::Relaxed)
}

// Message builders.

fn msg(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![typ];
    v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn query(q: &str) -> Vec<u8> {
    msg(b'Q', &cstr(q))
}

fn parse_msg(name: &str, q: &str) -> Vec<u8> {
    let mut b = cstr(name);
    b.extend(cstr(q));
    b.extend([0, 0]);
    msg(b'P', &b)
}

fn bind(portal: &str, stmt: &str, result_formats: &[u16]) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend(cstr(stmt));
    b.extend([0, 0, 0, 0]);
    b.extend((result_formats.len() as u16).to_be_bytes());
    for f in result_formats {
        b.extend(f.to_be_bytes());
    }
    msg(b'B', &b)
}

fn describe_portal(portal: &str) -> Vec<u8> {
    let mut b = vec![b'P'];
    b.extend(cstr(portal));
    msg(b'D', &b)
}

fn execute(portal: &str) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend([0, 0, 0, 0]);
    msg(b'E', &b)
}

fn sync() -> Vec<u8> {
    msg(b'S', &[])
}

/// A RowDescription of (name, type OID, format) columns.
fn row_desc(cols: &[(&str, u32, u16)]) -> Vec<u8> {
    let mut b = (cols.len() as u16).to_be_bytes().to_vec();
    for (name, oid, format) in cols {
        b.extend(cstr(name));
        b.extend([0, 0, 0, 0, 0, 1]);
        b.extend(oid.to_be_bytes());
        b.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        b.extend(format.to_be_bytes());
    }
    msg(b'T', &b)
}

fn text_desc(names: &[&str]) -> Vec<u8> {
    let cols: Vec<(&str, u32, u16)> = names.iter().map(|n| (*n, 25, 0)).collect();
    row_desc(&cols)
}

fn data_row(cols: &[Option<&[u8]>]) -> Vec<u8> {
    let mut b = (cols.len() as u16).to_be_bytes().to_vec();
    for c in cols {
        match c {
            None => b.extend((-1i32).to_be_bytes()),
            Some(v) => {
                b.extend((v.len() as u32).to_be_bytes());
                b.extend(*v);
            }
        }
    }
    msg(b'D', &b)
}

fn text_row(cols: &[&str]) -> Vec<u8> {
    let cols: Vec<Option<&[u8]>> = cols.iter().map(|c| Some(c.as_bytes())).collect();
    data_row(&cols)
}

fn complete(tag: &str) -> Vec<u8> {
    msg(b'C', &cstr(tag))
}

fn ready() -> Vec<u8> {
    msg(b'Z', b"I")
}

fn error(code: &str, message: &str) -> Vec<u8> {
    let mut b = b"SERROR\0VERROR\0C".to_vec();
    b.extend(cstr(code));
    b.push(b'M');
    b.extend(cstr(message));
    b.push(0);
    msg(b'E', &b)
}

fn startup() -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    body.extend(b"user\0postgres\0database\0postgres\0\0");
    let mut v = (body.len() as u32 + 4).to_be_bytes().to_vec();
    v.extend(body);
    v
}

fn ssl_request() -> Vec<u8> {
    let mut v = 8u32.to_be_bytes().to_vec();
    v.extend(80_877_103u32.to_be_bytes());
    v
}

fn auth_ok() -> Vec<u8> {
    let mut v = msg(b'R', &[0, 0, 0, 0]);
    v.extend(msg(b'S', b"server_version\x0015.1\x00"));
    v.extend(msg(b'K', &[0, 0, 0, 1, 0, 0, 0, 2]));
    v.extend(ready());
    v
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// `event.end` of an event at `ms` milliseconds into the capture.
fn at_ms(ms: i64) -> Value {
    json!(format!("1970-01-01T00:00:00.{ms:03}Z"))
}

/// The field at a dotted path of an event.
fn get<'a>(e: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(e, |v, k| &v[k])
}

// The parsers.

#[test]
fn every_split_of_real_messages_is_incomplete_until_whole() {
    for (client, hex) in [
        (true, SIMPLE_REQ),
        (true, EXT_REQ),
        (false, SIMPLE_RESP),
        (false, EXT_RESP),
        (false, ERROR_RESP),
    ] {
        let wire = unhex(hex);
        // The first message of the bytes, whole.
        let first = if client {
            match parse_frontend(&wire, 1 << 20) {
                Parsed::Message { consumed, .. } => consumed,
                other => panic!("{other:?}"),
            }
        } else {
            match parse_backend(&wire, None, 1 << 20) {
                Parsed::Message { consumed, .. } => consumed,
                other => panic!("{other:?}"),
            }
        };
        for cut in 0..first {
            let part = &wire[..cut];
            let r = if client {
                matches!(parse_frontend(part, 1 << 20), Parsed::Incomplete)
            } else {
                matches!(parse_backend(part, None, 1 << 20), Parsed::Incomplete)
            };
            assert!(r, "{hex} cut at {cut}");
        }
    }
}

#[test]
fn messages_decode() {
    let wire = unhex(EXT_REQ);
    let Parsed::Message { msg, consumed } = parse_frontend(&wire, 1 << 20) else {
        panic!()
    };
    assert_eq!(
        msg,
        Frontend::Parse {
            name: b"",
            query: b"SELECT * from test where id = $1"
        }
    );
    let Parsed::Message { msg, .. } = parse_frontend(&wire[consumed..], 1 << 20) else {
        panic!()
    };
    assert_eq!(
        msg,
        Frontend::Bind {
            portal: b"",
            statement: b"",
            result_formats: b""
        }
    );
    let wire = unhex(ERROR_RESP);
    let Parsed::Message {
        msg: Backend::ErrorResponse(e),
        consumed,
    } = parse_backend(&wire, None, 1 << 20)
    else {
        panic!()
    };
    assert_eq!(consumed, wire.len());
    assert_eq!(e.code, b"23505");
    assert_eq!(e.severity, b"ERROR");
    assert_eq!(
        e.message,
        &b"duplicate key value violates unique constraint \"unique_a\""[..]
    );
    assert_eq!(
        parse_frontend(&ssl_request(), 1 << 20),
        Parsed::Message {
            msg: Frontend::Negotiate(Negotiation::Ssl),
            consumed: 8
        }
    );
    assert_eq!(
        parse_backend(b"NR", Some(Negotiation::Ssl), 1 << 20),
        Parsed::Message {
            msg: Backend::NegotiationReply(b'N'),
            consumed: 1
        }
    );
    // Without a negotiation under way, `N` is a NoticeResponse.
    assert_eq!(parse_backend(b"N", None, 1 << 20), Parsed::Incomplete);
}

#[test]
fn broken_messages_are_errors_not_panics() {
    let limit = 1 << 20;
    for bad in [
        &b"\x00\x00\x00\x04\x00\x03\x00\x00"[..], // startup shorter than its header
        b"\x00\x00\x00\x08\x12\x34\x56\x78",      // unknown code
        b"\x00\x01\x00\x00\x00\x03\x00\x00",      // startup past 10000 bytes
        b"Q\x00\x00\x00\x03",                     // length below 4
        b"Q\xff\xff\xff\xff",                     // length past 1 GiB
        b"Q\x00\x00\x00\x05x",                    // query without NUL
        b"P\x00\x00\x00\x06ab",                   // Parse without NULs
        b"B\x00\x00\x00\x07\x00\x00\x00",         // Bind cut in its counts
        b"\x16\x01",                              // not a TLS record
        b"T",                                     // not a client type
    ] {
        assert!(
            matches!(parse_frontend(bad, limit), Parsed::Error(_)),
            "{bad:?}"
        );
    }
    for bad in [
        &b"Q"[..],                                    // not a server type
        b"T\x00\x00\x00\x06\x00\x01",                 // field missing
        b"T\x00\x00\x00\x06\xff\xff",                 // count past the body
        b"D\x00\x00\x00\x0a\x00\x01\x00\x00\x00\x09", // column past the row
        b"D\x00\x00\x00\x0a\x00\x01\xff\xff\xff\xfe", // negative length
        b"D\x00\x00\x00\x07\x00\x00\x01",             // bytes after the columns
        b"C\x00\x00\x00\x05x",                        // tag without NUL
        b"R\x00\x00\x00\x02",                         // length below 4
    ] {
        assert!(
            matches!(parse_backend(bad, None, limit), Parsed::Error(_)),
            "{bad:?}"
        );
    }
    // An ErrorResponse whose last field is cut keeps what came before.
    let e = msg(b'E', b"SERROR\0C42P01\0Mcut");
    let Parsed::Message {
        msg: Backend::ErrorResponse(f),
        ..
    } = parse_backend(&e, None, limit)
    else {
        panic!()
    };
    assert_eq!((f.code, f.message), (&b"42P01"[..], &b""[..]));
}

#[test]
fn random_bytes_never_panic() {
    // A small xorshift: the same bytes every run.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let len = (next() % 40) as usize;
        let mut v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Some(b) = v.get_mut(1..5) {
            // Small lengths, so bodies are parsed.
            b.copy_from_slice(&((next() % 40) as u32).to_be_bytes());
        }
        let _ = parse_frontend(&v, 64);
        let _ = parse_backend(&v, Some(Negotiation::Ssl), 64);
        let _ = parse_backend(&v, None, 64);
    }
}

#[test]
fn statements_split_outside_literals_and_comments() {
    let s = |q: &str| -> Vec<String> {
        query::statements(q.as_bytes())
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    };
    assert_eq!(s("select 1; select 2;"), ["select 1", "select 2"]);
    assert_eq!(s(" ; ;"), Vec::<String>::new());
    assert_eq!(
        s("insert into t values('a;b', 'it''s;')"),
        ["insert into t values('a;b', 'it''s;')"]
    );
    assert_eq!(
        s("select E'\\';'; select 2"),
        ["select E'\\';'", "select 2"]
    );
    assert_eq!(s("select \"a;b\" from t"), ["select \"a;b\" from t"]);
    assert_eq!(
        s("select 1 -- a; b\n; select 2"),
        ["select 1 -- a; b", "select 2"]
    );
    assert_eq!(
        s("select /* a; /* nested; */ b; */ 1"),
        ["select /* a; /* nested; */ b; */ 1"]
    );
    assert_eq!(
        s("create function f() returns int as $body$ select 1; $body$ language sql; select $1"),
        [
            "create function f() returns int as $body$ select 1; $body$ language sql",
            "select $1"
        ]
    );
    assert_eq!(
        s("select $$a;b$$; select 2"),
        ["select $$a;b$$", "select 2"]
    );
    // A comment alone is no statement; an unterminated literal runs to the end.
    assert_eq!(s("select 1; -- done"), ["select 1"]);
    assert_eq!(s("select 'a; select 2"), ["select 'a; select 2"]);
}

#[test]
fn method_is_the_leading_keyword() {
    assert_eq!(query::method("select * from t"), "SELECT");
    assert_eq!(query::method("insert into test(a)"), "INSERT");
    assert_eq!(query::method("select\n*"), "SELECT");
    assert_eq!(query::method("/* app */ -- x\n update t"), "UPDATE");
    assert_eq!(query::method("(select 1)"), "(SELECT");
    assert_eq!(query::method(""), "");
}

// Sessions.

#[test]
fn the_captured_simple_query_at_every_split() {
    let req = unhex(SIMPLE_REQ);
    let resp = unhex(SIMPLE_RESP);
    for cut in 0..resp.len() {
        let (mut c, _) = session();
        let rc = cut.min(req.len());
        c.send(true, &req[..rc], 0);
        c.send(true, &req[rc..], 0);
        c.send(false, &resp[..cut], 1);
        c.send(false, &resp[cut..], 2);
        let evs = c.events();
        assert_eq!(evs.len(), 1, "cut {cut}");
        let e = &evs[0];
        assert_eq!(e["query"], "select * from test", "cut {cut}");
        assert_eq!(e["method"], "SELECT");
        assert_eq!(e["status"], "OK");
        assert_eq!(e["pgsql"]["num_rows"], 4);
        assert_eq!(e["pgsql"]["num_fields"], 3);
        assert_eq!(e["source"]["bytes"], 25);
        // Without the ReadyForQuery.
        assert_eq!(e["destination"]["bytes"], 202);
        assert_eq!(e["request"], "select * from test");
        assert_eq!(
            e["response"],
            "a,b,c\nmea,meb,mec\nmea1,meb1,mec1\nmea2,meb2,mec2\nmea3,meb3,mec3\n"
        );
        // The response's time is its first byte's.
        let end = if cut == 0 { 2 } else { 1 };
        assert_eq!(e["event"]["end"], at_ms(end), "cut {cut}");
    }
}

#[test]
fn the_captured_extended_query_and_its_ignored_set() {
    let (mut c, module) = session();
    c.send(true, &startup(), 0);
    c.send(false, &auth_ok(), 1);
    c.send(true, &unhex(EXT_SET_REQ), 2);
    c.send(false, &unhex(EXT_SET_RESP), 3);
    c.send(true, &unhex(EXT_REQ), 4);
    c.send(false, &unhex(EXT_RESP), 8);
    let evs = c.events();
    assert_eq!(evs.len(), 1, "{evs:#?}");
    let e = &evs[0];
    assert_eq!(e["query"], "SELECT * from test where id = $1");
    assert_eq!(e["source"]["bytes"], 90);
    // From the RowDescription, as Packetbeat counts it.
    assert_eq!(e["destination"]["bytes"], 101);
    assert_eq!(e["pgsql"]["num_rows"], 1);
    assert_eq!(e["pgsql"]["num_fields"], 2);
    assert_eq!(e["response"], "id,name\n1,222                 \n");
    assert_eq!(e["event"]["start"], at_ms(4));
    assert_eq!(e["event"]["end"], at_ms(8));
    assert_eq!(counter(&module, |c| &c.unmatched_responses), 0);
    assert_eq!(counter(&module, |c| &c.parse_errors), 0);
}

#[test]
fn several_statements_in_one_query_and_an_error_ending_them() {
    let (mut c, module) = session();
    c.send(true, &query("select 1; select 'a;b' as x ;"), 0);
    c.send(
        false,
        &cat(&[
            text_desc(&["?column?"]),
            text_row(&["1"]),
            complete("SELECT 1"),
            text_desc(&["x"]),
            text_row(&["a;b"]),
            complete("SELECT 1"),
            ready(),
        ]),
        1,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0]["query"], "select 1");
    assert_eq!(evs[1]["query"], "select 'a;b' as x");
    assert_eq!(evs[1]["response"], "x\na;b\n");
    // Both carry the whole Query message, as in Packetbeat.
    assert_eq!(evs[0]["source"]["bytes"], evs[1]["source"]["bytes"]);

    // The second statement fails: the third is never run.
    c.send(
        true,
        &query("insert into t values (1); select * from nope; select 3"),
        2,
    );
    c.send(
        false,
        &cat(&[
            complete("INSERT 0 1"),
            error("42P01", "relation \"nope\" does not exist"),
            ready(),
        ]),
        3,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0]["method"], "INSERT");
    assert_eq!(evs[0]["status"], "OK");
    assert_eq!(evs[0]["pgsql"]["num_rows"], 0);
    assert_eq!(evs[0]["response"], "");
    assert_eq!(evs[1]["query"], "select * from nope");
    assert_eq!(evs[1]["status"], "Error");
    assert_eq!(evs[1]["pgsql"]["error_code"], "42P01");
    assert_eq!(evs[1]["pgsql"]["error_severity"], "ERROR");
    assert_eq!(
        evs[1]["pgsql"]["error_message"],
        "relation \"nope\" does not exist"
    );
    assert_eq!(counter(&module, |c| &c.unmatched_requests), 1);

    // The next query pairs with its own response.
    c.send(true, &query("select 4"), 4);
    c.send(
        false,
        &cat(&[
            text_desc(&["n"]),
            text_row(&["4"]),
            complete("SELECT 1"),
            ready(),
        ]),
        5,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["query"], "select 4");
    assert_eq!(evs[0]["response"], "n\n4\n");
}

#[test]
fn prepared_statements_pipelines_and_nodata() {
    let (mut c, module) = session();
    // Prepare alone (libpq's PQsendPrepare): no transaction.
    c.send(true, &cat(&[parse_msg("s1", "select $1::int"), sync()]), 0);
    c.send(false, &cat(&[msg(b'1', &[]), ready()]), 1);
    assert!(c.events().is_empty());
    // Run it twice, pipelined in one batch, with an INSERT (NoData) between.
    c.send(
        true,
        &cat(&[
            bind("", "s1", &[]),
            describe_portal(""),
            execute(""),
            parse_msg("", "insert into t values ($1)"),
            bind("", "", &[]),
            describe_portal(""),
            execute(""),
            bind("p2", "s1", &[]),
            execute("p2"),
            sync(),
        ]),
        2,
    );
    c.send(
        false,
        &cat(&[
            msg(b'2', &[]),
            row_desc(&[("int4", 23, 0)]),
            text_row(&["7"]),
            complete("SELECT 1"),
            msg(b'1', &[]),
            msg(b'2', &[]),
            msg(b'n', &[]),
            complete("INSERT 0 1"),
            msg(b'2', &[]),
            text_row(&["8"]),
            complete("SELECT 1"),
            ready(),
        ]),
        3,
    );
    let evs = c.events();
    let queries: Vec<&Value> = evs.iter().map(|e| &e["query"]).collect();
    assert_eq!(
        queries,
        [
            &json!("select $1::int"),
            &json!("insert into t values ($1)"),
            &json!("select $1::int")
        ]
    );
    assert_eq!(evs[0]["response"], "int4\n7\n");
    assert_eq!(evs[1]["method"], "INSERT");
    assert_eq!(evs[1]["pgsql"]["num_rows"], 0);
    // No Describe: the row tells the column count.
    assert_eq!(evs[2]["pgsql"]["num_fields"], 1);
    assert_eq!(evs[2]["response"], "8\n");
    assert_eq!(counter(&module, |c| &c.unmatched_responses), 0);
    assert_eq!(counter(&module, |c| &c.unmatched_requests), 0);
    // The whole batch's bytes are counted once.
    let total: u64 = evs
        .iter()
        .map(|e| e["source"]["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(total as usize, {
        cat(&[
            bind("", "s1", &[]),
            describe_portal(""),
            execute(""),
            parse_msg("", "insert into t values ($1)"),
            bind("", "", &[]),
            describe_portal(""),
            execute(""),
            bind("p2", "s1", &[]),
            execute("p2"),
            sync(),
        ])
        .len()
    });
}

#[test]
fn an_error_in_a_batch_skips_the_rest_of_it() {
    let (mut c, module) = session();
    c.send(
        true,
        &cat(&[
            parse_msg("", "select 1/0"),
            bind("", "", &[]),
            execute(""),
            parse_msg("", "select 2"),
            bind("", "", &[]),
            execute(""),
            sync(),
        ]),
        0,
    );
    c.send(
        false,
        &cat(&[
            msg(b'1', &[]),
            msg(b'2', &[]),
            error("22012", "division by zero"),
            ready(),
        ]),
        1,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["query"], "select 1/0");
    assert_eq!(evs[0]["pgsql"]["error_code"], "22012");
    assert_eq!(counter(&module, |c| &c.unmatched_requests), 1);
}

#[test]
fn binary_results_are_decoded() {
    let (mut c, _) = session();
    c.send(
        true,
        &cat(&[
            parse_msg("", "select id, name, price, note from items"),
            bind("", "", &[1]),
            describe_portal(""),
            execute(""),
            sync(),
        ]),
        0,
    );
    let numeric = [0u8, 2, 0, 0, 0, 0, 0, 2, 0, 12, 0x13, 0x88];
    c.send(
        false,
        &cat(&[
            msg(b'1', &[]),
            msg(b'2', &[]),
            row_desc(&[
                ("id", 23, 1),
                ("name", 25, 1),
                ("price", 1700, 1),
                ("note", 17, 1),
            ]),
            data_row(&[
                Some(&7i32.to_be_bytes()),
                Some(b"pen, blue"),
                Some(&numeric),
                None,
            ]),
            complete("SELECT 1"),
            ready(),
        ]),
        1,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(
        evs[0]["response"],
        "id,name,price,note\n7,\"pen, blue\",12.50,\n"
    );

    // Without a Describe, the Bind's format codes say which columns are binary.
    c.send(true, &cat(&[bind("", "", &[1]), execute(""), sync()]), 2);
    c.send(
        false,
        &cat(&[
            msg(b'2', &[]),
            data_row(&[Some(&7i32.to_be_bytes())]),
            complete("SELECT 1"),
            ready(),
        ]),
        3,
    );
    let evs = c.events();
    assert_eq!(evs[0]["response"], "\\x00000007\n");
}

#[test]
fn a_refused_ssl_request_then_startup() {
    for split in [false, true] {
        let (mut c, module) = session();
        c.send(true, &ssl_request(), 0);
        if split {
            c.send(false, b"N", 1);
            c.send(true, &startup(), 2);
            c.send(false, &auth_ok(), 3);
        } else {
            // The answer and the next message in one segment.
            c.send(false, &cat(&[b"N".to_vec(), auth_ok()]), 1);
        }
        c.send(true, &query("select 1"), 4);
        c.send(
            false,
            &cat(&[
                text_desc(&["a"]),
                text_row(&["1"]),
                complete("SELECT 1"),
                ready(),
            ]),
            5,
        );
        let evs = c.events();
        assert_eq!(evs.len(), 1, "split {split}");
        assert_eq!(evs[0]["query"], "select 1");
        assert_eq!(evs[0]["event"]["start"], at_ms(4));
        assert_eq!(evs[0]["event"]["end"], at_ms(5));
        assert_eq!(counter(&module, |c| &c.parse_errors), 0);
        assert_eq!(counter(&module, |c| &c.unmatched_responses), 0);
    }
}

#[test]
fn an_accepted_ssl_request_ends_the_analysis() {
    let (mut c, module) = session();
    c.send(true, &ssl_request(), 0);
    c.send(false, b"S", 1);
    c.send(true, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 2);
    c.send(false, b"\x16\x03\x03\x00\x7a\x02\x00", 3);
    c.send(true, b"\x17\x03\x03\x00\x20Q\x00\x00\x00\x09abcd\x00", 4);
    assert!(c.events().is_empty());
    assert_eq!(counter(&module, |c| &c.parse_errors), 0);
    // A client that starts TLS at once (sslnegotiation=direct).
    let (mut c, module) = session();
    c.send(true, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 0);
    c.send(false, b"\x16\x03\x03\x00\x7a\x02\x00", 1);
    assert!(c.events().is_empty());
    assert_eq!(counter(&module, |c| &c.parse_errors), 0);
}

#[test]
fn max_rows_and_max_row_length() {
    let (mut c, _) = session_with(settings(PgsqlConfig {
        max_rows: 2,
        max_row_length: 6,
    }));
    c.send(true, &query("select a, b from t"), 0);
    c.send(
        false,
        &cat(&[
            text_desc(&["a", "b"]),
            text_row(&["abcd", "efgh"]),
            data_row(&[None, Some("ééé".as_bytes())]),
            text_row(&["abc", "ééé"]),
            complete("SELECT 3"),
            ready(),
        ]),
        1,
    );
    let evs = c.events();
    assert_eq!(evs[0]["pgsql"]["num_rows"], 3);
    // The second column is cut at 6 bytes of the row; a character is not split.
    assert_eq!(evs[0]["response"], "a,b\nabcd,ef\n,ééé\n");
    c.send(true, &query("select a, b from t"), 2);
    c.send(
        false,
        &cat(&[
            text_desc(&["a", "b"]),
            text_row(&["abc", "ééé"]),
            complete("SELECT 1"),
        ]),
        3,
    );
    assert_eq!(c.events()[0]["response"], "a,b\nabc,é\n");

    let (mut c, _) = session_with(settings(PgsqlConfig {
        max_rows: -1,
        max_row_length: 0,
    }));
    c.send(true, &query("select 1"), 0);
    c.send(
        false,
        &cat(&[text_desc(&["a"]), text_row(&["1"]), complete("SELECT 1")]),
        1,
    );
    let evs = c.events();
    assert_eq!(evs[0]["response"], "a\n");
    assert_eq!(evs[0]["pgsql"]["num_rows"], 1);
}

#[test]
fn requests_expire_after_the_transaction_timeout() {
    let (mut c, module) = session();
    c.send(true, &query("select pg_sleep(11)"), 0);
    c.send(
        false,
        &cat(&[
            text_desc(&["a"]),
            text_row(&[""]),
            complete("SELECT 1"),
            ready(),
        ]),
        11_000,
    );
    assert!(c.events().is_empty());
    assert_eq!(counter(&module, |c| &c.unmatched_requests), 1);
    assert_eq!(counter(&module, |c| &c.unmatched_responses), 1);
    // And the connection goes on.
    c.send(true, &query("select 1"), 11_001);
    c.send(false, &cat(&[complete("SELECT 0"), ready()]), 11_002);
    assert_eq!(c.events().len(), 1);
}

#[test]
fn a_gap_publishes_the_rows_read_and_drops_the_state() {
    let (mut c, module) = session();
    c.send(true, &query("select a from t"), 0);
    c.send(true, &query("select b from t"), 0);
    c.send(false, &cat(&[text_desc(&["a"]), text_row(&["1"])]), 1);
    c.skip(false, 100);
    c.send(false, &cat(&[text_row(&["2"]), complete("SELECT 2")]), 2);
    // The hole is a gap once the capture ends without it.
    c.tcp.flush(&mut c.out);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["query"], "select a from t");
    assert_eq!(evs[0]["pgsql"]["num_rows"], 1);
    assert_eq!(
        evs[0]["error"]["message"],
        "Packet loss while capturing the response"
    );
    assert_eq!(counter(&module, |c| &c.unmatched_requests), 1);
}

#[test]
fn unparseable_bytes_drop_the_stream_until_the_next_segment() {
    let (mut c, module) = session();
    c.send(true, &query("select 1"), 0);
    c.send(false, b"\xde\xad\xbe\xef garbage", 1);
    assert_eq!(counter(&module, |c| &c.parse_errors), 1);
    // The server's side restarts: its waiting request is gone with its lost response.
    c.send(false, &cat(&[complete("SELECT 0"), ready()]), 2);
    assert!(c.events().is_empty());
    assert_eq!(counter(&module, |c| &c.unmatched_responses), 1);
    c.send(true, b"Q\x00\x00\x00\x05x", 3);
    assert_eq!(counter(&module, |c| &c.parse_errors), 2);
    c.send(true, &query("select 2"), 4);
    c.send(false, &cat(&[complete("SELECT 0"), ready()]), 5);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["query"], "select 2");
}

#[test]
fn oversized_messages_are_skipped_not_buffered() {
    let mut p = settings(PgsqlConfig::default());
    p.message_limit = 64;
    let (mut c, module) = session_with(p);
    c.send(true, &query("select big"), 0);
    let big = "x".repeat(5000);
    let row = text_row(&[&big]);
    let mut resp = cat(&[text_desc(&["big"]), row.clone(), text_row(&["small"])]);
    resp.extend(complete("SELECT 2"));
    resp.extend(ready());
    // Header, then the rest in pieces.
    for (i, chunk) in resp.chunks(700).enumerate() {
        c.send(false, chunk, 1 + i as i64);
    }
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["pgsql"]["num_rows"], 2);
    assert_eq!(evs[0]["response"], "big\nsmall\n");
    assert_eq!(evs[0]["destination"]["bytes"], (resp.len() - 6) as u64);
    assert!(counter(&module, |c| &c.streams_too_large) >= 1);
    // A Bind with a huge parameter still runs its statement.
    let mut huge_bind = cstr("");
    huge_bind.extend(cstr(""));
    huge_bind.extend([0, 0, 0, 1]);
    huge_bind.extend((6000u32).to_be_bytes());
    huge_bind.extend(vec![b'y'; 6000]);
    huge_bind.extend([0, 0]);
    let wire = cat(&[
        parse_msg("", "insert into blobs values ($1)"),
        msg(b'B', &huge_bind),
        execute(""),
        sync(),
    ]);
    for (i, chunk) in wire.chunks(1000).enumerate() {
        c.send(true, chunk, 10 + i as i64);
    }
    c.send(
        false,
        &cat(&[
            msg(b'1', &[]),
            msg(b'2', &[]),
            complete("INSERT 0 1"),
            ready(),
        ]),
        20,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["query"], "insert into blobs values ($1)");
    assert_eq!(evs[0]["source"]["bytes"], wire.len() as u64);
}

#[test]
fn empty_queries_stray_responses_and_copy() {
    let (mut c, module) = session();
    c.send(true, &query(" ; "), 0);
    c.send(false, &cat(&[msg(b'I', &[]), ready()]), 1);
    assert!(c.events().is_empty());
    assert_eq!(counter(&module, |c| &c.unmatched_responses), 0);
    // A response to nothing.
    c.send(false, &cat(&[complete("SELECT 0"), ready()]), 2);
    assert_eq!(counter(&module, |c| &c.unmatched_responses), 1);
    // COPY FROM STDIN: the rows sent count for the request.
    c.send(true, &query("copy t from stdin"), 3);
    c.send(false, &msg(b'G', &[0, 0, 0]), 4);
    c.send(true, &cat(&[msg(b'd', b"1\n2\n"), msg(b'c', &[])]), 5);
    c.send(false, &cat(&[complete("COPY 2"), ready()]), 6);
    // COPY TO STDOUT: the rows received count for the response.
    c.send(true, &query("copy t to stdout"), 7);
    c.send(
        false,
        &cat(&[
            msg(b'H', &[0, 0, 0]),
            msg(b'd', b"1\n"),
            msg(b'c', &[]),
            complete("COPY 1"),
            ready(),
        ]),
        8,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0]["method"], "COPY");
    assert_eq!(
        evs[0]["source"]["bytes"],
        (query("copy t from stdin").len() + 9 + 5) as u64
    );
    assert_eq!(evs[1]["destination"]["bytes"], (8 + 7 + 5 + 12) as u64);
}

#[test]
fn notices_and_parameter_status_inside_a_response() {
    let (mut c, _) = session();
    c.send(
        true,
        &query("drop table if exists x; set a = 1; select f()"),
        0,
    );
    let notice = msg(
        b'N',
        b"SNOTICE\0C00000\0Mtable does not exist, skipping\0\0",
    );
    c.send(
        false,
        &cat(&[
            notice.clone(),
            complete("DROP TABLE"),
            complete("SET"),
            msg(b'S', b"a\x001\x00"),
            text_desc(&["f"]),
            notice.clone(),
            text_row(&["1"]),
            complete("SELECT 1"),
            ready(),
        ]),
        1,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 3);
    assert_eq!(evs[0]["method"], "DROP");
    // A notice before a response is not part of it; one inside is.
    assert_eq!(
        evs[0]["destination"]["bytes"],
        complete("DROP TABLE").len() as u64
    );
    // A simple-protocol SET is published (only extended-protocol ones are not).
    assert_eq!(evs[1]["method"], "SET");
    assert_eq!(
        evs[2]["destination"]["bytes"],
        (text_desc(&["f"]).len() + notice.len() + text_row(&["1"]).len() + 14) as u64
    );
}

#[test]
fn the_client_is_found_when_both_ports_are_analysed() {
    let mut common = common();
    common.ports = vec![5432, 40000];
    let module = Arc::new(Module::new(
        Pgsql::configure(&common, PgsqlConfig::default()).unwrap(),
        &common,
    ));
    let mut c = TcpSession::new(module, 5432);
    // The server's greeting is the first segment seen.
    c.send(false, &ready(), 0);
    c.send(true, &query("select 1"), 1);
    c.send(false, &cat(&[complete("SELECT 0"), ready()]), 2);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(get(&evs[0], "source.port"), 40000);
    assert_eq!(get(&evs[0], "destination.port"), 5432);
}

#[test]
fn options_and_their_defaults() {
    let p = settings(PgsqlConfig::default());
    assert_eq!((p.max_rows, p.max_row_length), (10, 1024));
    assert_eq!(p.message_limit, TCP_MAX_DATA_IN_STREAM);
    let cfg: PgsqlConfig = serde_yaml::from_str("max_rows: 2\nmax_row_length: 64\n").unwrap();
    let p = settings(cfg);
    assert_eq!((p.max_rows, p.max_row_length), (2, 64));
    // send_request / send_response off: neither field.
    let mut common = common();
    common.send_request = false;
    common.send_response = false;
    let module = Arc::new(Module::new(
        Pgsql::configure(&common, PgsqlConfig::default()).unwrap(),
        &common,
    ));
    let mut c = TcpSession::new(module, 5432);
    c.send(true, &query("select 1"), 0);
    c.send(false, &cat(&[complete("SELECT 0"), ready()]), 1);
    let evs = c.events();
    assert!(evs[0].get("request").is_none() && evs[0].get("response").is_none());
    assert_eq!(evs[0]["type"], "pgsql");
    assert_eq!(evs[0]["network"]["protocol"], "pgsql");
    let built = crate::protos::app::build::<Pgsql>(
        &Default::default(),
        &crate::config::types::ProtocolSection {
            kind: "pgsql".into(),
            options: serde_yaml::from_str("max_rows: 3").unwrap(),
            key: "packetbeat.protocols.0".into(),
        },
        "pb.yml",
    );
    assert!(built.is_ok());
}

//! The Cassandra analyzer: frames from the captures and the spec, split at every byte, broken
//! ones, and whole sessions through the real TCP layer.

use super::codes::*;
use super::parser::*;
use super::*;
use crate::protos::app::{Module, TCP_MAX_DATA_IN_STREAM};
use crate::protos::testing::{unhex, TcpSession};
use crate::protos::ProtocolModule;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

// cassandra_select.pcap: `SELECT * FROM users;` and its one row.
const SELECT_REQ: &str = "040000fd07000000290000001453454c454354202a2046524f4d2075736572733b0001340000006400080005362e681fc0f7";
const SELECT_RESP: &str = "840000fd0800000059000000020000000100000003000a6d796b65797370616365000575736572730007757365725f696400090005666e616d65000d00056c6e616d65000d0000000100000004000006d1000000046a6f686e00000005736d697468";
// cassandra_trace_err.pcap: a traced DROP KEYSPACE and its ERROR.
const DROP_REQ: &str = "04020113070000002e0000001944524f50204b45595350414345206d796b657973706163653b00013400000064000800053939feab91c4";
const DROP_RESP: &str = "84000113000000003500002300002f43616e6e6f742064726f70206e6f6e206578697374696e67206b6579737061636520276d796b65797370616365272e";
// cassandra_mixed_frame.pcap: OPTIONS and SUPPORTED.
const OPTIONS_REQ: &str = "040000000500000000";
const SUPPORTED_RESP: &str = "8400000006000000340002000b434f4d5052455353494f4e00020006736e6170707900036c7a34000b43514c5f56455253494f4e00010005332e342e32";
// cassandra_compressed.pcap: a snappy-compressed QUERY and its RESULT.
const SNAPPY_REQ: &str =
    "04010040070000002321800000001a53454c454354202a2046524f4d2073797374656d2e7065657273000100";
const SNAPPY_RESP: &str = "84010040080000009c990170000000020000000100000009000673797374656d0005706565727300040107f0770010000b646174615f63656e746572000d0007686f73745f6964000c000c7072656665727265645f6970001000047261636b000d000f72656c656173655f76657273696f6e000d000b7270635f616464726573730010000e736368656d615f76657273696f6e000c0006746f6b656e730022000d00000000";
// cassandra_create_keyspace.pcap: a schema change.
const SCHEMA_RESP: &str =
    "8400001408000000230000000500074352454154454400084b45595350414345000a6d796b65797370616365";

fn cfg() -> ParserConfig {
    ParserConfig::default()
}

fn one(cfg: &ParserConfig, wire: &[u8]) -> Frame {
    match parse(cfg, false, wire) {
        Parsed::Message { msg, consumed } => {
            assert_eq!(consumed, wire.len());
            msg
        }
        other => panic!("{other:?}"),
    }
}

/// A v4 frame.
fn frame(response: bool, flags: u8, stream: i16, op: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![if response { 0x84 } else { 0x04 }, flags];
    v.extend_from_slice(&stream.to_be_bytes());
    v.push(op);
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn short(v: &mut Vec<u8>, n: u16) {
    v.extend_from_slice(&n.to_be_bytes());
}

fn int(v: &mut Vec<u8>, n: i32) {
    v.extend_from_slice(&n.to_be_bytes());
}

fn string(v: &mut Vec<u8>, s: &str) {
    short(v, s.len() as u16);
    v.extend_from_slice(s.as_bytes());
}

fn query(stream: i16, q: &str) -> Vec<u8> {
    let mut b = Vec::new();
    int(&mut b, q.len() as i32);
    b.extend_from_slice(q.as_bytes());
    short(&mut b, 1);
    b.push(0);
    frame(false, 0, stream, OP_QUERY, &b)
}

/// A rows result: `n` rows of one int column `c` of `ks.t`.
fn rows(stream: i16, n: i32) -> Vec<u8> {
    let mut b = Vec::new();
    int(&mut b, RESULT_ROWS);
    int(&mut b, ROWS_GLOBAL_TABLE_SPEC);
    int(&mut b, 1);
    string(&mut b, "ks");
    string(&mut b, "t");
    string(&mut b, "c");
    short(&mut b, 0x0009);
    int(&mut b, n);
    for i in 0..n {
        int(&mut b, 4);
        int(&mut b, i);
    }
    frame(true, 0, stream, OP_RESULT, &b)
}

fn void(stream: i16) -> Vec<u8> {
    let mut b = Vec::new();
    int(&mut b, RESULT_VOID);
    frame(true, 0, stream, OP_RESULT, &b)
}

#[test]
fn select_from_the_capture_at_every_split() {
    for (hex, response) in [(SELECT_REQ, false), (SELECT_RESP, true)] {
        let wire = unhex(hex);
        for cut in 0..wire.len() {
            assert_eq!(
                parse(&cfg(), false, &wire[..cut]),
                Parsed::Incomplete,
                "cut at {cut}"
            );
        }
        let f = one(&cfg(), &wire);
        assert_eq!(f.header.is_response(), response);
        assert_eq!(f.header.stream, 253);
        assert_eq!(f.header.proto(), 4);
    }
    let req = one(&cfg(), &unhex(SELECT_REQ));
    assert_eq!(
        req.body,
        Body::Query {
            query: "SELECT * FROM users;".into()
        }
    );
    let resp = one(&cfg(), &unhex(SELECT_RESP));
    let Body::Result(ResultBody::Rows { meta, num_rows }) = resp.body else {
        panic!("{resp:?}");
    };
    // The frame holds one row (Packetbeat reports 488819, the bytes of `user_id`).
    assert_eq!(num_rows, 1);
    assert_eq!(meta.col_count, 3);
    assert_eq!(meta.keyspace.as_deref(), Some("mykeyspace"));
    assert_eq!(meta.table.as_deref(), Some("users"));
    // Two frames in one buffer: the first is returned with its length.
    let mut two = unhex(SELECT_REQ);
    two.extend(unhex(OPTIONS_REQ));
    assert!(matches!(
        parse(&cfg(), false, &two),
        Parsed::Message { consumed, .. } if consumed == unhex(SELECT_REQ).len()
    ));
}

#[test]
fn bodies_of_the_captures() {
    let err = one(&cfg(), &unhex(DROP_RESP));
    assert_eq!(
        err.body,
        Body::Error(ErrorBody {
            code: 0x2300,
            msg: "Cannot drop non existing keyspace 'mykeyspace'.".into(),
            details: vec![],
        })
    );
    let traced = one(&cfg(), &unhex(DROP_REQ));
    assert_eq!(traced.header.flags, FLAG_TRACING);
    assert!(matches!(traced.body, Body::Query { .. }));
    let sup = one(&cfg(), &unhex(SUPPORTED_RESP));
    assert_eq!(
        sup.body,
        Body::Supported(vec![
            ("COMPRESSION".into(), vec!["snappy".into(), "lz4".into()]),
            ("CQL_VERSION".into(), vec!["3.4.2".into()]),
        ])
    );
    let schema = one(&cfg(), &unhex(SCHEMA_RESP));
    assert_eq!(
        schema.body,
        Body::Result(ResultBody::SchemaChange(SchemaChange {
            change: "CREATED".into(),
            target: Some("KEYSPACE".into()),
            keyspace: Some("mykeyspace".into()),
            ..Default::default()
        }))
    );
}

#[test]
fn snappy_bodies_need_the_compressor() {
    let snappy = ParserConfig {
        snappy: true,
        ..cfg()
    };
    let req = one(&snappy, &unhex(SNAPPY_REQ));
    assert_eq!(
        req.body,
        Body::Query {
            query: "SELECT * FROM system.peers".into()
        }
    );
    let resp = one(&snappy, &unhex(SNAPPY_RESP));
    let Body::Result(ResultBody::Rows { meta, num_rows }) = resp.body else {
        panic!("{resp:?}");
    };
    assert_eq!((meta.col_count, num_rows), (9, 0));
    assert_eq!(meta.table.as_deref(), Some("peers"));
    // Without it, Packetbeat's error; with LZ4 chosen by the connection, headers only.
    assert_eq!(
        parse(&cfg(), false, &unhex(SNAPPY_REQ)),
        Parsed::Error(ERR_NO_COMPRESSOR)
    );
    assert!(matches!(
        parse(&snappy, true, &unhex(SNAPPY_REQ)),
        Parsed::Message {
            msg: Frame {
                body: Body::Undecoded,
                ..
            },
            ..
        }
    ));
    // Corrupt snappy, and a header claiming an impossible size.
    let bad = frame(false, FLAG_COMPRESS, 1, OP_QUERY, &[0x05, 0xff, 0xff]);
    assert_eq!(parse(&snappy, false, &bad), Parsed::Error(ERR_DECOMPRESS));
    let huge = frame(
        false,
        FLAG_COMPRESS,
        1,
        OP_QUERY,
        &[0xff, 0xff, 0xff, 0xff, 0x0f, 0],
    );
    assert_eq!(parse(&snappy, false, &huge), Parsed::Error(ERR_DECOMPRESS));
    // An empty body is not decoded, flags or not.
    let empty = frame(true, FLAG_COMPRESS, 1, OP_READY, &[]);
    assert_eq!(one(&cfg(), &empty).body, Body::None);
}

#[test]
fn broken_frames_are_errors() {
    assert_eq!(parse(&cfg(), false, &[0x05]), Parsed::Error(ERR_VERSION));
    assert_eq!(parse(&cfg(), false, &[0x80]), Parsed::Error(ERR_VERSION));
    assert_eq!(
        parse(&cfg(), false, b"GET / HTTP/1.1"),
        Parsed::Error(ERR_VERSION)
    );
    let mut big = frame(false, 0, 1, OP_QUERY, &[]);
    big[5..9].copy_from_slice(&(MAX_FRAME_SIZE + 1).to_be_bytes());
    assert_eq!(parse(&cfg(), false, &big), Parsed::Error(ERR_TOO_BIG));
    // A query longer than its body; a negative length.
    let mut b = Vec::new();
    int(&mut b, 100);
    b.extend_from_slice(b"SELECT");
    let f = frame(false, 0, 1, OP_QUERY, &b);
    assert_eq!(parse(&cfg(), false, &f), Parsed::Error(ERR_TRUNCATED));
    let f = frame(false, 0, 1, OP_QUERY, &(-1i32).to_be_bytes());
    assert_eq!(parse(&cfg(), false, &f), Parsed::Error(ERR_TRUNCATED));
    // A TOPOLOGY_CHANGE with a 5-byte address.
    let mut b = Vec::new();
    string(&mut b, "TOPOLOGY_CHANGE");
    string(&mut b, "NEW_NODE");
    b.extend_from_slice(&[5, 1, 2, 3, 4, 5]);
    let f = frame(true, 0, -1, OP_EVENT, &b);
    assert_eq!(parse(&cfg(), false, &f), Parsed::Error(ERR_INET));
    // Column types nested past the limit.
    let mut b = Vec::new();
    int(&mut b, RESULT_ROWS);
    int(&mut b, ROWS_GLOBAL_TABLE_SPEC);
    int(&mut b, 1);
    string(&mut b, "ks");
    string(&mut b, "t");
    string(&mut b, "c");
    for _ in 0..100 {
        short(&mut b, 0x0020);
    }
    short(&mut b, 0x0009);
    int(&mut b, 0);
    let f = frame(true, 0, 1, OP_RESULT, &b);
    assert_eq!(parse(&cfg(), false, &f), Parsed::Error(ERR_TYPE_DEPTH));
    // Every prefix of every broken or real frame: no panic.
    for hex in [
        SELECT_RESP,
        DROP_RESP,
        SUPPORTED_RESP,
        SNAPPY_RESP,
        SCHEMA_RESP,
    ] {
        let wire = unhex(hex);
        for cut in 9..wire.len() {
            let mut w = wire[..cut].to_vec();
            w[5..9].copy_from_slice(&((cut - 9) as u32).to_be_bytes());
            let _ = parse(
                &ParserConfig {
                    snappy: true,
                    ..cfg()
                },
                false,
                &w,
            );
        }
    }
}

#[test]
fn v2_headers_and_response_flags() {
    // v2: 8-byte header, one-byte stream; 0x82 is a response (Packetbeat takes it for a request).
    let mut v2 = vec![0x82, 0, 0xFF, OP_RESULT];
    v2.extend_from_slice(&4u32.to_be_bytes());
    v2.extend_from_slice(&RESULT_VOID.to_be_bytes());
    let f = one(&cfg(), &v2);
    assert!(f.header.is_response());
    assert_eq!(f.header.stream, -1);
    assert_eq!(f.body, Body::Result(ResultBody::Void));
    assert_eq!(parse(&cfg(), false, &v2[..7]), Parsed::Incomplete);

    // A traced response with warnings and a custom payload: the tracing id comes first.
    let mut b = vec![0xAB; 16];
    short(&mut b, 1);
    string(&mut b, "Aggregation query used without partition key");
    short(&mut b, 1);
    string(&mut b, "k");
    int(&mut b, 2);
    b.extend_from_slice(b"vv");
    int(&mut b, RESULT_VOID);
    let f = frame(
        true,
        FLAG_TRACING | FLAG_WARNING | FLAG_CUSTOM_PAYLOAD,
        3,
        OP_RESULT,
        &b,
    );
    let f = one(&cfg(), &f);
    assert_eq!(f.body, Body::Result(ResultBody::Void));
    assert_eq!(
        f.warnings,
        Some(vec!["Aggregation query used without partition key".into()])
    );
}

#[test]
fn result_kinds() {
    let mut b = Vec::new();
    int(&mut b, RESULT_SET_KEYSPACE);
    string(&mut b, "ks");
    assert_eq!(
        one(&cfg(), &frame(true, 0, 1, OP_RESULT, &b)).body,
        Body::Result(ResultBody::SetKeyspace("ks".into()))
    );
    // Prepared (v4): id, metadata with partition key indexes and per-column specs of a map
    // of UDT and a tuple, then the result metadata.
    let mut b = Vec::new();
    int(&mut b, RESULT_PREPARED);
    short(&mut b, 16);
    b.extend_from_slice(&[0x11; 16]);
    int(&mut b, 0);
    int(&mut b, 2);
    int(&mut b, 1);
    short(&mut b, 0);
    for name in ["a", "b"] {
        string(&mut b, "ks");
        string(&mut b, "t");
        string(&mut b, name);
        short(&mut b, 0x0021);
        short(&mut b, 0x000D);
        short(&mut b, 0x0030);
        string(&mut b, "ks");
        string(&mut b, "addr");
        short(&mut b, 2);
        string(&mut b, "street");
        short(&mut b, 0x0000);
        string(&mut b, "org.example.Custom");
        string(&mut b, "zip");
        short(&mut b, 0x0031);
        short(&mut b, 2);
        short(&mut b, 0x0009);
        short(&mut b, 0x0022);
        short(&mut b, 0x0001);
    }
    int(&mut b, ROWS_NO_METADATA);
    int(&mut b, 3);
    let f = one(&cfg(), &frame(true, 0, 1, OP_RESULT, &b));
    assert_eq!(
        f.body,
        Body::Result(ResultBody::Prepared {
            id: "11111111-1111-1111-1111-111111111111".into(),
            req_meta: Metadata {
                flags: 0,
                col_count: 2,
                pkey_columns: Some(vec![0]),
                ..Default::default()
            },
            resp_meta: Some(Metadata {
                flags: ROWS_NO_METADATA,
                col_count: 3,
                ..Default::default()
            }),
        })
    );
    // A paged result: the paging state, then the table spec.
    let mut b = Vec::new();
    int(&mut b, RESULT_ROWS);
    int(&mut b, ROWS_GLOBAL_TABLE_SPEC | ROWS_HAS_MORE_PAGES);
    int(&mut b, 0);
    int(&mut b, 2);
    b.extend_from_slice(&[0xbe, 0xef]);
    string(&mut b, "ks");
    string(&mut b, "t");
    int(&mut b, 7);
    let Body::Result(ResultBody::Rows { meta, num_rows }) =
        one(&cfg(), &frame(true, 0, 1, OP_RESULT, &b)).body
    else {
        panic!()
    };
    assert_eq!(num_rows, 7);
    assert_eq!(meta.paging_state.as_deref(), Some("BEEF"));
    assert_eq!(meta.table.as_deref(), Some("t"));
    // Schema change of a function; an unknown kind.
    let mut b = Vec::new();
    int(&mut b, RESULT_SCHEMA_CHANGE);
    string(&mut b, "CREATED");
    string(&mut b, "FUNCTION");
    string(&mut b, "ks");
    string(&mut b, "f");
    short(&mut b, 2);
    string(&mut b, "int");
    string(&mut b, "text");
    let f = one(&cfg(), &frame(true, 0, 1, OP_RESULT, &b));
    let Body::Result(ResultBody::SchemaChange(s)) = f.body else {
        panic!()
    };
    assert_eq!(s.name.as_deref(), Some("f"));
    assert_eq!(s.args, Some(vec!["int".into(), "text".into()]));
    let f = one(&cfg(), &frame(true, 0, 1, OP_RESULT, &99i32.to_be_bytes()));
    assert_eq!(f.body, Body::Result(ResultBody::Unknown));
}

#[test]
fn error_details() {
    let err = |code: i32, rest: &[u8]| {
        let mut b = Vec::new();
        int(&mut b, code);
        string(&mut b, "msg");
        b.extend_from_slice(rest);
        match one(&cfg(), &frame(true, 0, 1, OP_ERROR, &b)).body {
            Body::Error(e) => e.details,
            other => panic!("{other:?}"),
        }
    };
    let mut b = Vec::new();
    short(&mut b, 0x0004);
    int(&mut b, 3);
    int(&mut b, 1);
    assert_eq!(
        err(ERR_UNAVAILABLE, &b),
        vec![
            ("read_consistency", Detail::Str("QUORUM".into())),
            ("required", Detail::Int(3)),
            ("alive", Detail::Int(1)),
        ]
    );
    let mut b = Vec::new();
    short(&mut b, 0x0001);
    int(&mut b, 0);
    int(&mut b, 1);
    int(&mut b, 1);
    b.push(0);
    assert_eq!(
        err(ERR_READ_FAILURE, &b),
        vec![
            ("read_consistency", Detail::Str("ONE".into())),
            ("received", Detail::Int(0)),
            ("blockfor", Detail::Int(1)),
            ("num_failures", Detail::Int(1)),
            ("data_present", Detail::Bool(false)),
        ]
    );
    let mut b = Vec::new();
    short(&mut b, 2);
    b.extend_from_slice(&[1, 2]);
    assert_eq!(
        err(ERR_UNPREPARED, &b),
        vec![("stmt_id", Detail::Bytes(vec![1, 2]))]
    );
    assert_eq!(err(0x7777, &[]), vec![]);
}

#[test]
fn events_and_authentication() {
    let mut b = Vec::new();
    string(&mut b, "STATUS_CHANGE");
    string(&mut b, "UP");
    b.push(16);
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 7]);
    int(&mut b, 9042);
    let f = one(&cfg(), &frame(true, 0, -1, OP_EVENT, &b));
    assert_eq!(
        f.body,
        Body::Event(EventBody {
            kind: "STATUS_CHANGE".into(),
            change: Some("UP".into()),
            host: Some("10.0.0.7".into()),
            port: Some(9042),
            schema_change: None,
        })
    );
    let mut b = Vec::new();
    string(&mut b, "org.apache.cassandra.auth.PasswordAuthenticator");
    assert_eq!(
        one(&cfg(), &frame(true, 0, 1, OP_AUTHENTICATE, &b)).body,
        Body::Authenticate {
            class: "org.apache.cassandra.auth.PasswordAuthenticator".into()
        }
    );
    let mut b = Vec::new();
    int(&mut b, 4);
    b.extend_from_slice(b"\0a\"\xff");
    assert_eq!(
        one(&cfg(), &frame(true, 0, 1, OP_AUTH_SUCCESS, &b)).body,
        Body::AuthData {
            data: r#""\x00a\"\xff""#.into()
        }
    );
    // A null token.
    assert_eq!(
        one(
            &cfg(),
            &frame(true, 0, 1, OP_AUTH_SUCCESS, &(-1i32).to_be_bytes())
        )
        .body,
        Body::AuthData {
            data: "\"\"".into()
        }
    );
}

#[test]
fn go_quoting() {
    assert_eq!(go_quote(b"plain text"), "\"plain text\"");
    assert_eq!(go_quote(b"a\tb\nc\\"), r#""a\tb\nc\\""#);
    assert_eq!(go_quote(b"\x01\x7f"), r#""\x01\x7f""#);
    assert_eq!(go_quote("é€".as_bytes()), "\"é€\"");
    assert_eq!(go_quote("\u{200b}".as_bytes()), r#""\u200b""#);
    assert_eq!(go_quote(b"\xc3"), r#""\xc3""#);
}

#[test]
fn options_and_their_errors() {
    let build = |yaml: &str| {
        crate::protos::app::build::<Cassandra>(
            &Default::default(),
            &crate::config::types::ProtocolSection {
                kind: "cassandra".into(),
                options: serde_yaml::from_str(yaml).unwrap(),
                key: "packetbeat.protocols.0".into(),
            },
            "pb.yml",
        )
    };
    assert_eq!(
        build("compressor: lz4").err().unwrap().0,
        "invalid compressor config: lz4, only snappy supported accessing 'packetbeat.protocols.0.compressor' (source:'pb.yml')"
    );
    assert_eq!(
        build("ignored_ops: [QUERY, nope]").err().unwrap().0,
        "unknown frame op: NOPE accessing 'packetbeat.protocols.0.ignored_ops' (source:'pb.yml')"
    );
    assert!(build("compressor: snappy\nignored_ops: [options, ' Register ']").is_ok());
    // Defaults: everything sent although the common options default to false.
    let c = Cassandra::configure(&common(), CassandraConfig::default()).unwrap();
    assert!(c.send_request && c.send_response && c.send_request_header && c.send_response_header);
    assert!(!c.parser.snappy);
    let c = Cassandra::configure(
        &common(),
        serde_yaml::from_str("compressor: snappy\nignored_ops: [OPTIONS, supported]").unwrap(),
    )
    .unwrap();
    assert!(c.parser.snappy);
    assert!(c.parser.is_ignored(OP_OPTIONS) && c.parser.is_ignored(OP_SUPPORTED));
    assert!(!c.parser.is_ignored(OP_QUERY));
}

fn common() -> CommonOptions {
    CommonOptions {
        ports: vec![9042],
        send_request: false,
        send_response: false,
        transaction_timeout: Duration::from_secs(10),
    }
}

fn session_with(yaml: &str) -> (TcpSession, Arc<Module<Cassandra>>) {
    let cfg: CassandraConfig =
        serde_yaml::from_str(if yaml.is_empty() { "{}" } else { yaml }).unwrap();
    let module = Arc::new(Module::new(
        Cassandra::configure(&common(), cfg).unwrap(),
        &common(),
    ));
    (TcpSession::new(module.clone(), 9042), module)
}

fn get<'a>(e: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(e, |v, k| &v[k])
}

fn counter(
    m: &Module<Cassandra>,
    f: impl Fn(&AppCounters) -> &std::sync::atomic::AtomicU64,
) -> u64 {
    f(m.counters().unwrap()).load(Ordering::Relaxed)
}

#[test]
fn select_session_event() {
    let (mut c, _) = session_with("");
    let (req, resp) = (unhex(SELECT_REQ), unhex(SELECT_RESP));
    // Byte by byte, the response split over two segments.
    for (i, b) in req.iter().enumerate() {
        c.send(true, &[*b], 1 + i as i64);
    }
    c.send(false, &resp[..20], 100);
    c.send(false, &resp[20..], 113);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    let e = &evs[0];
    assert_eq!(e["type"], "cassandra");
    assert_eq!(e["status"], "OK");
    assert_eq!(
        e["cassandra"]["request"],
        json!({
            "headers": {"version": "4", "flags": "Default", "stream": 253, "op": "QUERY", "length": 41},
            "query": "SELECT * FROM users;"
        })
    );
    assert_eq!(
        e["cassandra"]["response"],
        json!({
            "headers": {"version": "4", "flags": "Default", "stream": 253, "op": "RESULT", "length": 89},
            "result": {
                "type": "rows",
                "rows": {
                    "meta": {"flags": "GlobalTableSpec", "col_count": 3, "keyspace": "mykeyspace", "table": "users"},
                    "num_rows": 1
                }
            }
        })
    );
    assert_eq!(get(e, "source.bytes"), 50);
    assert_eq!(get(e, "destination.bytes"), 98);
    assert_eq!(get(e, "source.port"), 40000);
    // The request's first byte started it; the response's first byte ended it.
    assert_eq!(get(e, "event.start"), "1970-01-01T00:00:00.001Z");
    assert_eq!(get(e, "event.end"), "1970-01-01T00:00:00.100Z");
}

#[test]
fn responses_answer_their_stream_ids() {
    let (mut c, _) = session_with("");
    let mut burst = query(5, "SELECT a");
    burst.extend(query(6, "SELECT b"));
    burst.extend(query(7, "SELECT c"));
    c.send(true, &burst, 0);
    let mut answers = rows(7, 3);
    answers.extend(rows(5, 1));
    c.send(false, &answers, 1);
    c.send(false, &rows(6, 2), 2);
    let evs = c.events();
    let got: Vec<(String, i64)> = evs
        .iter()
        .map(|e| {
            (
                get(e, "cassandra.request.query")
                    .as_str()
                    .unwrap()
                    .to_string(),
                get(e, "cassandra.response.result.rows.num_rows")
                    .as_i64()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("SELECT c".into(), 3),
            ("SELECT a".into(), 1),
            ("SELECT b".into(), 2)
        ]
    );
}

#[test]
fn error_status_tracing_and_headers_off() {
    let (mut c, _) = session_with("send_request_header: false\nsend_response_header: false");
    c.send(true, &unhex(DROP_REQ), 0);
    c.send(false, &unhex(DROP_RESP), 23);
    let evs = c.events();
    assert_eq!(evs[0]["status"], "Error");
    assert_eq!(
        evs[0]["cassandra"],
        json!({
            "request": {"query": "DROP KEYSPACE mykeyspace;"},
            "response": {"error": {
                "code": 8960,
                "msg": "Cannot drop non existing keyspace 'mykeyspace'.",
                "type": "errConfig"
            }}
        })
    );
    // A side with nothing to say has no object.
    let (mut c, _) = session_with("send_request: false\nsend_response_header: false");
    c.send(true, &unhex(OPTIONS_REQ), 0);
    c.send(false, &frame(true, 0, 0, OP_READY, &[]), 1);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert!(evs[0].get("cassandra").is_none(), "{:?}", evs[0]);
    assert_eq!(get(&evs[0], "source.bytes"), 9);
}

#[test]
fn supported_pushes_and_ignored_ops() {
    let (mut c, _) = session_with("");
    c.send(true, &unhex(OPTIONS_REQ), 0);
    c.send(false, &unhex(SUPPORTED_RESP), 1);
    let mut push = Vec::new();
    string(&mut push, "SCHEMA_CHANGE");
    string(&mut push, "DROPPED");
    string(&mut push, "TABLE");
    string(&mut push, "ks");
    string(&mut push, "t");
    c.send(false, &frame(true, 0, -1, OP_EVENT, &push), 2);
    let evs = c.events();
    assert_eq!(evs.len(), 2);
    assert_eq!(
        get(&evs[0], "cassandra.response.supported"),
        &json!({"COMPRESSION": ["snappy", "lz4"], "CQL_VERSION": ["3.4.2"]})
    );
    let p = &evs[1];
    assert_eq!(get(p, "cassandra.no_request"), true);
    assert!(p["cassandra"].get("request").is_none());
    assert_eq!(
        get(p, "cassandra.response.event"),
        &json!({"type": "SCHEMA_CHANGE", "schema_change": {
            "change": "DROPPED", "target": "TABLE", "keyspace": "ks", "object": "t"}})
    );
    assert_eq!(get(p, "cassandra.response.headers.stream"), -1);
    // A push comes from the server: it is the source.
    assert_eq!(get(p, "source.port"), 9042);
    assert_eq!(get(p, "destination.port"), 40000);
    assert!(get(p, "event.duration").is_null());

    // Ignored on either side: no event, and the pairing stays in step.
    let (mut c, _) = session_with("ignored_ops: [OPTIONS, RESULT, EVENT]");
    c.send(true, &unhex(OPTIONS_REQ), 0);
    c.send(false, &unhex(SUPPORTED_RESP), 1);
    c.send(true, &query(1, "INSERT x"), 2);
    c.send(false, &void(1), 3);
    c.send(false, &frame(true, 0, -1, OP_EVENT, &push), 4);
    c.send(true, &query(2, "SELECT y"), 5);
    let mut e = Vec::new();
    int(&mut e, ERR_SYNTAX);
    string(&mut e, "line 1");
    c.send(false, &frame(true, 0, 2, OP_ERROR, &e), 6);
    let evs = c.events();
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(get(&evs[0], "cassandra.request.query"), "SELECT y");
    assert_eq!(get(&evs[0], "cassandra.response.error.type"), "errSyntax");
}

#[test]
fn snappy_and_lz4_sessions() {
    let (mut c, _) = session_with("compressor: snappy");
    c.send(true, &unhex(SNAPPY_REQ), 0);
    c.send(false, &unhex(SNAPPY_RESP), 1);
    let evs = c.events();
    assert_eq!(
        get(&evs[0], "cassandra.request.query"),
        "SELECT * FROM system.peers"
    );
    assert_eq!(get(&evs[0], "cassandra.request.headers.flags"), "Compress");
    assert_eq!(
        get(&evs[0], "cassandra.response.result.rows.meta.table"),
        "peers"
    );

    // A connection whose STARTUP chose LZ4: headers only.
    let (mut c, _) = session_with("compressor: snappy");
    let mut startup = Vec::new();
    short(&mut startup, 2);
    string(&mut startup, "CQL_VERSION");
    string(&mut startup, "3.0.0");
    string(&mut startup, "COMPRESSION");
    string(&mut startup, "lz4");
    c.send(true, &frame(false, 0, 0, OP_STARTUP, &startup), 0);
    c.send(
        false,
        &frame(true, FLAG_COMPRESS, 0, OP_READY, &[0, 0, 0, 0]),
        1,
    );
    c.send(true, &unhex(SNAPPY_REQ), 2);
    c.send(false, &unhex(SNAPPY_RESP), 3);
    let evs = c.events();
    assert_eq!(evs.len(), 2);
    assert!(evs[0]["cassandra"]["request"].get("query").is_none());
    assert_eq!(get(&evs[1], "cassandra.request.headers.op"), "QUERY");
    assert!(evs[1]["cassandra"]["request"].get("query").is_none());
    assert!(evs[1]["cassandra"]["response"].get("result").is_none());
}

#[test]
fn broken_input_drops_the_connection_state() {
    // Compressed without a compressor: the pending request goes with the connection.
    let (mut c, module) = session_with("");
    c.send(true, &query(1, "SELECT a"), 0);
    c.send(true, &unhex(SNAPPY_REQ), 1);
    c.send(false, &rows(1, 1), 2);
    assert!(c.events().is_empty());
    assert_eq!(counter(&module, |c| &c.parse_errors), 1);
    assert_eq!(counter(&module, |c| &c.unmatched_requests), 1);
    assert_eq!(counter(&module, |c| &c.unmatched_responses), 1);
    // Parsing starts again with the next segment.
    c.send(true, &query(2, "SELECT b"), 3);
    c.send(false, &rows(2, 4), 4);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(get(&evs[0], "cassandra.response.result.rows.num_rows"), 4);

    // A gap (declared when the capture ends, the segment after the hole held until then):
    // the pending request goes, and the response after the hole answers nothing.
    let (mut c, module) = session_with("");
    c.send(false, &void(9), 0);
    c.send(true, &query(1, "SELECT a"), 1);
    c.skip(false, 10);
    c.send(false, &rows(1, 1), 2);
    c.tcp.flush(&mut c.out);
    assert!(c.events().is_empty());
    assert_eq!(counter(&module, |c| &c.unmatched_requests), 1);
    assert_eq!(counter(&module, |c| &c.unmatched_responses), 2);

    // A frame past the stream cap.
    let (mut c, module) = session_with("");
    let mut head = query(1, "x");
    head.truncate(9);
    head[5..9].copy_from_slice(&(64u32 << 20).to_be_bytes());
    c.send(true, &head, 0);
    let chunk = vec![0u8; 1 << 20];
    for i in 0..=(TCP_MAX_DATA_IN_STREAM >> 20) as i64 {
        c.send(true, &chunk, 1 + i);
    }
    assert_eq!(counter(&module, |c| &c.streams_too_large), 1);

    // A response nobody asked for, and a request that times out.
    let (mut c, module) = session_with("");
    c.send(false, &void(9), 0);
    c.send(true, &query(1, "SELECT slow"), 1);
    c.send(false, &rows(1, 1), 20_000);
    assert!(c.events().is_empty());
    assert_eq!(counter(&module, |c| &c.unmatched_responses), 2);
    assert_eq!(counter(&module, |c| &c.unmatched_requests), 1);
}

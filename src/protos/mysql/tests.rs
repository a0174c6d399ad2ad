//! The MySQL analyzer: the parser on split and broken input, sessions through the real TCP
//! layer (result sets, OK and ERR packets, prepared statements, gaps, the options).

use super::parser::{Message, Parser, State, Step};
use super::*;
use crate::protos::app::{Module, TCP_MAX_DATA_IN_STREAM};
use crate::protos::testing::{unhex, TcpSession};
use crate::protos::ProtocolModule;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

const PORT: u16 = 3306;

fn common(send: bool, timeout_s: u64) -> CommonOptions {
    CommonOptions {
        ports: vec![PORT],
        send_request: send,
        send_response: send,
        transaction_timeout: Duration::from_secs(timeout_s),
    }
}

fn settings_from(yaml: &str, send: bool) -> Mysql {
    let cfg: MysqlConfig = serde_yaml::from_str(yaml).unwrap();
    Mysql::configure(&common(send, 10), cfg).unwrap()
}

fn session_with(s: Mysql) -> (TcpSession, Arc<Module<Mysql>>) {
    let c = CommonOptions {
        ports: s.ports.clone(),
        send_request: s.send_request,
        send_response: s.send_response,
        transaction_timeout: s.transaction_timeout,
    };
    let module = Arc::new(Module::new(s, &c));
    (TcpSession::new(module.clone(), PORT), module)
}

fn session() -> (TcpSession, Arc<Module<Mysql>>) {
    session_with(settings_from("{}", true))
}

fn counter(m: &Module<Mysql>, which: &str) -> u64 {
    let c = m.counters().unwrap();
    let a = match which {
        "parse_errors" => &c.parse_errors,
        "streams_too_large" => &c.streams_too_large,
        "unmatched_requests" => &c.unmatched_requests,
        _ => &c.unmatched_responses,
    };
    a.load(Ordering::Relaxed)
}

fn get<'a>(e: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(e, |v, k| &v[k])
}

/// A wire packet: length, sequence id, payload.
fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len() as u32;
    let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    v.extend_from_slice(payload);
    v
}

fn query(q: &str) -> Vec<u8> {
    pkt(0, &[&[3u8][..], q.as_bytes()].concat())
}

fn lstr(s: &[u8]) -> Vec<u8> {
    assert!(s.len() < 251);
    [&[s.len() as u8][..], s].concat()
}

/// A column definition (protocol 4.1) of `schema.table.name`.
fn column(seq: u8, schema: &str, table: &str, name: &str) -> Vec<u8> {
    let mut p = Vec::new();
    for s in ["def", schema, table, table, name, name] {
        p.extend(lstr(s.as_bytes()));
    }
    p.extend(unhex("0c2100ff000000fd000000"));
    p.extend([0, 0]);
    pkt(seq, &p)
}

fn eof(seq: u8) -> Vec<u8> {
    pkt(seq, &unhex("fe00000200"))
}

fn ok(seq: u8, affected: &[u8], insert_id: &[u8]) -> Vec<u8> {
    pkt(
        seq,
        &[&[0u8][..], affected, insert_id, &[2, 0, 0, 0]].concat(),
    )
}

/// A text result set with these columns (of `test.t`) and rows (`None`: NULL).
fn result_set(names: &[&str], rows: &[Vec<Option<&[u8]>>]) -> Vec<u8> {
    let mut seq = 1u8;
    let mut v = pkt(seq, &[names.len() as u8]);
    for n in names {
        seq += 1;
        v.extend(column(seq, "test", "t", n));
    }
    seq += 1;
    v.extend(eof(seq));
    for r in rows {
        seq = seq.wrapping_add(1);
        let mut p = Vec::new();
        for c in r {
            match c {
                Some(s) => p.extend(lstr(s)),
                None => p.push(0xfb),
            }
        }
        v.extend(pkt(seq, &p));
    }
    v.extend(eof(seq.wrapping_add(1)));
    v
}

/// Every proper prefix of a message is incomplete; the whole is one message using it all.
fn assert_splits(data: &[u8], is_client: bool) -> Message {
    for cut in 0..data.len() {
        // Fed in two pieces, as two segments: the state carries over.
        let mut p = Parser::default();
        assert_eq!(
            p.step(&data[..cut], is_client, false),
            Step::Incomplete,
            "cut at {cut}"
        );
        assert_eq!(p.step(data, is_client, false), Step::Complete, "cut {cut}");
        assert_eq!(p.offset, data.len());
    }
    let mut p = Parser::default();
    assert_eq!(p.step(data, is_client, false), Step::Complete);
    assert_eq!(p.offset, data.len());
    p.msg
}

#[test]
fn messages_split_at_every_byte() {
    let q = assert_splits(&query("select * from t"), true);
    assert!(q.is_request && !q.ignore);
    assert_eq!((q.typ, q.size), (3, 20));
    let rs = result_set(
        &["a", "b"],
        &[vec![Some(b"1"), None], vec![Some(b"two"), Some(b"")]],
    );
    let m = assert_splits(&rs, false);
    assert_eq!((m.number_of_fields, m.number_of_rows), (2, 2));
    assert_eq!(m.tables, b"test.t");
    assert_eq!((m.size, m.end), (rs.len(), rs.len()));
    assert!(m.is_ok && !m.is_error);
    let m = assert_splits(&ok(1, &[0xfc, 0x3c, 0x01], &[0x07]), false);
    assert_eq!((m.affected_rows, m.insert_id), (316, 7));
    let err = pkt(1, b"\xff\x16\x04#3D000No database selected");
    let m = assert_splits(&err, false);
    assert!(m.is_error);
    assert_eq!(m.error_code, 1046);
    assert_eq!(m.error_info, b"3D000: No database selected");
    // The login, COM_INIT_DB, COM_QUIT: read, not reported.
    for ignored in [
        pkt(1, b"\x05\xa2\x00\x00"),
        pkt(0, b"\x02test"),
        pkt(0, b"\x01"),
    ] {
        assert!(assert_splits(&ignored, true).ignore);
    }
    // The server greeting.
    assert!(assert_splits(&pkt(0, b"\x0a8.0.12\x00"), false).ignore);
}

#[test]
fn broken_input_is_an_error_or_waits_never_a_panic() {
    // An OK packet whose affected-rows count is a NULL marker: not MySQL.
    let mut p = Parser::default();
    assert!(matches!(
        p.step(&pkt(1, &[0, 0xfb, 0, 2, 0, 0, 0]), false, false),
        Step::Error(_)
    ));
    // An execute without its statement id.
    let mut p = Parser::default();
    assert!(matches!(
        p.step(&pkt(0, &[23, 1]), true, false),
        Step::Error(_)
    ));
    // Short OK and ERR packets read what they have.
    let mut p = Parser::default();
    assert_eq!(p.step(&pkt(1, &[0]), false, false), Step::Complete);
    let mut p = Parser::default();
    assert_eq!(p.step(&pkt(1, b"\xff\x01"), false, false), Step::Complete);
    assert_eq!(p.msg.error_info, b": ");
    // Every byte string of a few bytes, and many pseudo-random ones, as either side.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut inputs: Vec<Vec<u8>> = (0..=255u8)
        .flat_map(|a| [vec![1, 0, 0, 1, a], vec![a, 0, 0, 0, a, 0xfe]])
        .collect();
    for _ in 0..3000 {
        let len = (x % 64) as usize;
        let v = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                [
                    0, 1, 2, 3, 5, 12, 22, 23, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, b'a',
                ][(x >> 24) as usize % 14]
            })
            .collect();
        inputs.push(v);
    }
    for v in &inputs {
        for is_client in [true, false] {
            for prep in [true, false] {
                let mut p = Parser::default();
                let _ = p.step(v, is_client, prep);
                let _ = p.gap();
            }
        }
        let mut st = params::Statement {
            num_params: 3,
            ..Default::default()
        };
        let _ = params::parse_execute(v, &mut st);
        let _ = rows::parse_response(v, 10, 1024);
    }
}

#[test]
fn a_query_and_its_result_set() {
    let (mut c, _) = session();
    c.send(true, &query(" SELECT a, b FROM t\n"), 0);
    let rs = result_set(
        &["a", "b"],
        &[
            vec![Some(b"1"), None],
            vec![Some(b"x,y"), Some(b" lead")],
            vec![Some(b"3"), Some(b"line\nbreak")],
        ],
    );
    // Split over three segments, a header cut in two.
    c.send(false, &rs[..3], 2);
    c.send(false, &rs[3..40], 3);
    c.send(false, &rs[40..], 5);
    let evs = c.events();
    assert_eq!(evs.len(), 1, "{evs:?}");
    let e = &evs[0];
    assert_eq!(e["method"], "SELECT");
    assert_eq!(e["query"], "SELECT a, b FROM t");
    assert_eq!(e["request"], " SELECT a, b FROM t\n");
    assert_eq!(e["path"], "test.t");
    assert_eq!(e["status"], "OK");
    assert_eq!(
        e["mysql"],
        json!({"affected_rows": 0, "insert_id": 0, "num_fields": 2, "num_rows": 3})
    );
    assert_eq!(
        e["response"],
        "a,b\n1,NULL\n\"x,y\",\" lead\"\n3,line\\nbreak\n"
    );
    assert_eq!(get(e, "source.bytes"), 25);
    assert_eq!(get(e, "destination.bytes"), rs.len());
    assert_eq!(get(e, "source.port"), 40000);
    assert_eq!(e["type"], "mysql");
    assert!(e.get("error").is_none());
}

#[test]
fn ok_and_err_responses() {
    let (mut c, _) = session();
    c.send(true, &query("insert into t values (1),(2)"), 0);
    c.send(false, &ok(1, &[2], &[0xfc, 0x10, 0x27]), 1);
    c.send(true, &query("select * from nope"), 2);
    c.send(
        false,
        &pkt(1, b"\xff\x7a\x04#42S02Table 'test.nope' doesn't exist"),
        3,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0]["method"], "INSERT");
    assert_eq!(evs[0]["mysql"]["affected_rows"], 2);
    assert_eq!(evs[0]["mysql"]["insert_id"], 10000);
    assert_eq!(evs[0]["response"], "");
    assert_eq!(evs[1]["status"], "Error");
    assert_eq!(evs[1]["mysql"]["error_code"], 1146);
    assert_eq!(
        evs[1]["mysql"]["error_message"],
        "42S02: Table 'test.nope' doesn't exist"
    );
}

#[test]
fn unmatched_messages_are_counted_and_not_published() {
    let (mut c, module) = session();
    // The login exchange: the server's OK answers no request.
    c.send(false, &pkt(0, b"\x0a5.5.40\x00"), 0);
    c.send(true, &pkt(1, b"\x8d\xa2\x0f\x00"), 1);
    c.send(false, &ok(2, &[0], &[0]), 2);
    assert_eq!(counter(&module, "unmatched_responses"), 1);
    // Two requests: the first is dropped, the answer goes to the second.
    c.send(true, &query("select 1"), 3);
    c.send(true, &query("select 2"), 4);
    assert_eq!(counter(&module, "unmatched_requests"), 1);
    c.send(false, &ok(1, &[0], &[0]), 5);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["query"], "select 2");
    // A request never answered is not published, even at the end.
    c.send(true, &query("select 3"), 6);
    c.tcp.flush(&mut c.out);
    assert!(c.events().is_empty());
}

#[test]
fn transactions_expire_on_packet_time() {
    let (mut c, module) = session_with(Mysql {
        transaction_timeout: Duration::from_secs(1),
        ..settings_from("{}", false)
    });
    c.send(true, &query("select sleep(2)"), 0);
    c.send(false, &ok(1, &[0], &[0]), 1500);
    assert!(c.events().is_empty());
    assert_eq!(counter(&module, "unmatched_responses"), 1);
}

/// `COM_STMT_PREPARE`'s answer: statement `id`, its columns and parameters.
fn prepare_ok(id: u32, columns: &[&str], params: usize) -> Vec<u8> {
    let mut p = vec![0];
    p.extend(id.to_le_bytes());
    p.extend((columns.len() as u16).to_le_bytes());
    p.extend((params as u16).to_le_bytes());
    p.extend([0, 0, 0]);
    let mut v = pkt(1, &p);
    let mut seq = 1;
    if params > 0 {
        for _ in 0..params {
            seq += 1;
            v.extend(column(seq, "", "", "?"));
        }
        seq += 1;
        v.extend(eof(seq));
    }
    if !columns.is_empty() {
        for n in columns {
            seq += 1;
            v.extend(column(seq, "test", "t", n));
        }
        seq += 1;
        v.extend(eof(seq));
    }
    v
}

/// `COM_STMT_EXECUTE` of statement `id` with the values (types sent when `types` is given).
fn execute(id: u32, nparams: usize, types: Option<&[u8]>, values: &[u8]) -> Vec<u8> {
    let mut p = vec![23];
    p.extend(id.to_le_bytes());
    p.push(0);
    p.extend(1u32.to_le_bytes());
    p.extend(vec![0; nparams.div_ceil(8)]);
    match types {
        Some(t) => {
            p.push(1);
            for &ty in t {
                p.extend([ty, 0]);
            }
        }
        None => p.push(0),
    }
    p.extend_from_slice(values);
    pkt(0, &p)
}

#[test]
fn prepared_statements_are_remembered_per_connection() {
    let (mut c, _) = session();
    let text = "select a from t where b = ? and c > ? and d = ?";
    c.send(true, &pkt(0, &[&[22u8][..], text.as_bytes()].concat()), 0);
    c.send(false, &prepare_ok(7, &["a"], 3), 1);
    let values = [
        &[3u8][..],
        b"abc",
        &(-5i64).to_le_bytes(),
        &[7, 0xe1, 0x07, 7, 28, 13, 5, 9],
    ]
    .concat();
    c.send(true, &execute(7, 3, Some(&[0xfd, 0x08, 0x0c]), &values), 2);
    c.send(false, &result_set(&["a"], &[vec![Some(b"9")]]), 3);
    // Later executes need not send the types again.
    c.send(true, &execute(7, 3, None, &values), 4);
    c.send(false, &ok(1, &[0], &[0]), 5);
    // The close gets no answer and is not published; the statement is gone.
    c.send(true, &pkt(0, &[25, 7, 0, 0, 0]), 6);
    c.send(true, &execute(7, 3, None, &values), 7);
    c.send(false, &ok(1, &[0], &[0]), 8);
    let evs = c.events();
    assert_eq!(evs.len(), 3, "{evs:#?}");
    let prep = &evs[0];
    assert_eq!(prep["query"], "Request Prepare Statement");
    assert_eq!(prep["method"], "SELECT");
    assert_eq!(prep["request"], text);
    assert_eq!(get(prep, "error.message"), text);
    // Packetbeat counts the columns, and the parameter definitions after them as rows.
    assert_eq!(prep["mysql"]["num_fields"], 1);
    assert_eq!(prep["mysql"]["num_rows"], 1);
    // The OK is what is kept of the answer.
    assert_eq!(get(prep, "destination.bytes"), 16);
    for e in &evs[1..] {
        assert_eq!(e["query"], text);
        assert_eq!(e["request"], "");
        assert_eq!(e["params"], json!(["abc", "-5", "2017/7/28 13:5:9"]));
    }
    assert_eq!(evs[1]["response"], "a\n9\n");
}

#[test]
fn an_unknown_statement_is_not_published() {
    let (mut c, _) = session();
    c.send(true, &execute(3, 1, Some(&[1]), &[5]), 0);
    c.send(false, &ok(1, &[0], &[0]), 1);
    assert!(c.events().is_empty());
    // ... unless it takes over a request still open, as in Packetbeat.
    c.send(true, &query("select 1"), 2);
    c.send(true, &execute(3, 1, Some(&[1]), &[5]), 3);
    c.send(false, &ok(1, &[0], &[0]), 4);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["query"], "Request Execute Statement");
    assert_eq!(evs[0]["method"], "SELECT");
    assert_eq!(
        get(&evs[0], "error.message"),
        "The actual query being used is unknown"
    );
}

#[test]
fn statements_expire_after_statement_timeout() {
    let (mut c, _) = session_with(settings_from("statement_timeout: 2s", false));
    c.send(true, &pkt(0, b"\x16select ?"), 0);
    c.send(false, &prepare_ok(1, &[], 1), 1);
    c.send(true, &execute(1, 1, Some(&[1]), &[5]), 1000);
    c.send(false, &ok(1, &[0], &[0]), 1001);
    assert_eq!(c.events().len(), 2);
    c.send(true, &execute(1, 1, Some(&[1]), &[5]), 3100);
    c.send(false, &ok(1, &[0], &[0]), 3101);
    assert!(c.events().is_empty(), "the statement was forgotten");
}

#[test]
fn a_twelve_byte_ok_is_a_prepare_answer_only_after_a_prepare() {
    let (mut c, _) = session();
    // 300 rows inserted, last insert id 70000: 12 bytes, not a prepare answer.
    c.send(true, &query("insert into t select * from u"), 0);
    c.send(
        false,
        &ok(1, &[0xfc, 0x2c, 0x01], &[0xfd, 0x70, 0x11, 0x01]),
        1,
    );
    c.send(true, &query("select 1"), 2);
    c.send(false, &ok(1, &[0], &[0]), 3);
    let evs = c.events();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0]["query"], "insert into t select * from u");
    assert_eq!(evs[0]["mysql"]["affected_rows"], 300);
    assert_eq!(evs[0]["mysql"]["insert_id"], 70000);
    // A prepare answer without parameters or columns is complete at once, one with columns
    // only after them.
    c.send(true, &pkt(0, b"\x16do 1"), 4);
    c.send(false, &prepare_ok(2, &[], 0), 5);
    assert_eq!(c.events()[0]["query"], "Request Prepare Statement");
    c.send(true, &pkt(0, b"\x16select a, b from t"), 6);
    c.send(false, &prepare_ok(3, &["a", "b"], 0), 7);
    c.send(true, &execute(3, 0, None, &[]), 8);
    c.send(
        false,
        &result_set(&["a", "b"], &[vec![Some(b"1"), None]]),
        9,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 2, "{evs:#?}");
    assert_eq!(evs[0]["path"], "test.t");
    assert_eq!(evs[0]["mysql"]["num_fields"], 2);
    assert_eq!(evs[1]["query"], "select a, b from t");
    assert_eq!(evs[1]["mysql"]["num_rows"], 1);
}

#[test]
fn deprecate_eof_result_sets_run_on_as_in_packetbeat() {
    // mysql_connection.pcap: with CLIENT_DEPRECATE_EOF no EOF follows the columns, so
    // Packetbeat reads the row as a column, the final OK (0xfe) as the columns' end, and the
    // next responses as rows, up to the next 0xfe packet; the requests in between replace
    // each other.
    let (mut c, module) = session();
    c.send(true, &query("select @@version_comment limit 1"), 0);
    c.send(
        false,
        &unhex(concat!(
            "010000010127000002036465660000001140407665727369",
            "6f6e5f636f6d6d656e74000c210018000000fd00001f000009000003",
            "08486f6d656272657707000004fe000002000000"
        )),
        1,
    );
    c.send(true, &query("CREATE DATABASE test"), 2);
    c.send(false, &unhex("0700000100010002000000"), 3);
    c.send(true, &query("SELECT DATABASE()"), 4);
    c.send(
        false,
        &unhex(concat!(
            "010000010120000002036465660000000a4441544142415345282900",
            "0c210066000000fd00001f000001000003fb07000004fe000002000000"
        )),
        5,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 1, "{evs:#?}");
    let e = &evs[0];
    assert_eq!(e["query"], "SELECT DATABASE()");
    assert_eq!(e["mysql"]["num_rows"], 4);
    assert_eq!(e["path"], "., \u{0}\u{0}\u{4}\u{fffd}\u{0}\u{0}\u{2}.");
    assert_eq!(get(e, "destination.bytes"), 72 + 11 + 57);
    assert_eq!(counter(&module, "unmatched_requests"), 2);
}

#[test]
fn a_gap_in_a_result_set_publishes_what_was_read() {
    let (mut c, _) = session();
    c.send(true, &query("select * from t"), 0);
    let rows: Vec<Vec<Option<&[u8]>>> = (0..5).map(|_| vec![Some(&b"row"[..])]).collect();
    let rs = result_set(&["a"], &rows);
    // Header, column, EOF, two rows; then the third row is lost.
    let two_rows = 5 + column(2, "test", "t", "a").len() + 9 + 2 * 8;
    c.send(false, &rs[..two_rows], 1);
    c.skip(false, 8);
    c.send(false, &rs[two_rows + 8..], 3);
    c.acknowledge(false, 3);
    let evs = c.events();
    assert_eq!(evs.len(), 1, "{evs:#?}");
    let e = &evs[0];
    assert_eq!(
        get(e, "error.message"),
        "Packet loss while capturing the response"
    );
    assert_eq!(e["mysql"]["num_rows"], 2);
    assert_eq!(e["response"], "a\nrow\nrow\n");
    assert!(
        get(e, "destination.bytes").is_null(),
        "no size for a cut result"
    );
    // The connection starts afresh.
    c.send(true, &query("select 2"), 4);
    c.send(false, &ok(1, &[0], &[0]), 5);
    assert_eq!(c.events()[0]["query"], "select 2");
}

#[test]
fn a_gap_between_messages_is_skipped() {
    let (mut c, _) = session();
    c.send(true, &query("select 1"), 0);
    c.skip(true, 100);
    c.send(true, &query("select 2"), 1);
    c.acknowledge(true, 1);
    c.send(false, &ok(1, &[0], &[0]), 2);
    assert_eq!(c.events()[0]["query"], "select 2");
}

#[test]
fn a_long_result_keeps_its_first_100k() {
    let (mut c, _) = session_with(settings_from("max_rows: 2\nmax_row_length: 5", true));
    c.send(true, &query("select * from big"), 0);
    let cell = [b'x'; 200];
    let rows: Vec<Vec<Option<&[u8]>>> = (0..1000).map(|_| vec![Some(&cell[..])]).collect();
    let rs = result_set(&["a"], &rows);
    for (i, chunk) in rs.chunks(1460).enumerate() {
        c.send(false, chunk, 1 + i as i64);
    }
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    let e = &evs[0];
    assert_eq!(e["mysql"]["num_rows"], 1000);
    let size = get(e, "destination.bytes").as_u64().unwrap() as usize;
    assert!(size > parser::MAX_PAYLOAD_SIZE && size < parser::MAX_PAYLOAD_SIZE + 210);
    assert_eq!(e["response"], "a\nxxxxx\nxxxxx\n");
}

#[test]
fn options_and_their_defaults() {
    let s = settings_from("{}", false);
    assert_eq!((s.max_rows, s.max_row_length), (10, 1024));
    assert_eq!(s.statement_timeout, Duration::from_secs(3600));
    assert_eq!(Mysql::DEFAULT_PORTS, &[3306, 3307]);
    let s = settings_from(
        "max_rows: 1\nmax_row_length: 0\nstatement_timeout: 5m",
        false,
    );
    assert_eq!(s.statement_timeout, Duration::from_secs(300));
    // max_row_length 0 keeps rows, without cells; max_rows 0 still keeps one.
    let rs = result_set(&["a"], &[vec![Some(b"1")], vec![Some(b"2")]]);
    assert_eq!(
        rows::parse_response(&rs, 0, 0).1,
        vec![Vec::<Vec<u8>>::new()]
    );
    assert_eq!(
        rows::parse_response(&rs, 1, 1),
        (vec![b"a".to_vec()], vec![vec![b"1".to_vec()]])
    );
    // send_request / send_response off: no request or response field.
    let (mut c, _) = session_with(settings_from("{}", false));
    c.send(true, &query("select 1"), 0);
    c.send(false, &result_set(&["1"], &[vec![Some(b"1")]]), 1);
    let e = &c.events()[0];
    assert!(e.get("request").is_none() && e.get("response").is_none());
    // Through the registry, with a bad key type.
    let err = crate::protos::app::build::<Mysql>(
        &Default::default(),
        &crate::config::types::ProtocolSection {
            kind: "mysql".into(),
            options: serde_yaml::from_str("statement_timeout: -1s").unwrap(),
            key: "packetbeat.protocols.0".into(),
        },
        "pb.yml",
    )
    .err()
    .unwrap();
    assert!(err.0.contains("statement_timeout"), "{}", err.0);
}

#[test]
fn a_stream_past_the_cap_is_dropped_and_counted() {
    let (mut c, module) = session();
    c.send(true, &query("select * from huge"), 0);
    // A result set that never ends.
    c.send(false, &pkt(1, &[1]), 1);
    let row = pkt(3, &[vec![0xfc, 0xff, 0xff], vec![b'y'; 0xffff]].concat());
    let mut t = 2;
    while counter(&module, "streams_too_large") == 0 {
        c.send(false, &row, t);
        t += 1;
        assert!(t < (TCP_MAX_DATA_IN_STREAM / row.len()) as i64 + 10);
    }
    // The next response starts a fresh stream and pairs normally.
    c.send(false, &ok(1, &[4], &[0]), t);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["mysql"]["affected_rows"], 4);
}

#[test]
fn the_gap_state_machine_matches_packetbeat() {
    let mut p = Parser::default();
    assert!(!p.gap(), "nothing read yet");
    let rs = result_set(&["a"], &[vec![Some(b"1")]]);
    assert_eq!(p.step(&rs[..rs.len() - 9], false, false), Step::Incomplete);
    assert_eq!(p.state, State::EatRows);
    assert!(p.gap());
    assert_eq!(p.msg.end, rs.len() - 9);
    assert_eq!(p.msg.notes, vec![NOTE_RESPONSE_PACKET_LOSS]);
}

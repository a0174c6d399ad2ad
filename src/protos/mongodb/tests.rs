//! The MongoDB parser on captured messages (split at every byte, truncated, corrupted), the
//! Go-JSON rendering of BSON, and the analyzer through the real TCP layer.

use super::bson::{doc_to_json, parse_document, Value};
use super::event::reconstruct_query;
use super::parser::{parse, Message, OP_DELETE, OP_GET_MORE, OP_QUERY};
use super::*;
use crate::protos::app::Module;
use crate::protos::testing::{unhex, TcpSession};
use crate::protos::ProtocolModule;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const ONE_ROW_QUERY: &str = concat!(
    "320000000a000000ffffffffd407000000000000746573742e72657374617572616e7473000000000001000000050000",
    "0000",
);
const ONE_ROW_REPLY: &str = concat!(
    "020200004a0000000a000000010000000800000000000000000000000000000001000000de010000075f696400558beb",
    "b45f075665d2ae862703616464726573730069000000026275696c64696e670005000000313030370004636f6f726400",
    "1b000000013000e6762ff7c97652c0013100d5b14ae9996c4440000273747265657400100000004d6f72726973205061",
    "726b2041766500027a6970636f646500060000003130343632000002626f726f756768000600000042726f6e78000263",
    "756973696e65000700000042616b657279000467726164657300eb0000000330002b00000009646174650000703d8544",
    "010000026772616465000200000041001073636f72650002000000000331002b0000000964617465000044510a410100",
    "00026772616465000200000041001073636f72650006000000000332002b000000096461746500009cda693c01000002",
    "6772616465000200000041001073636f7265000a000000000333002b00000009646174650000ccb8cd33010000026772",
    "616465000200000041001073636f72650009000000000334002b0000000964617465000014109d2e0100000267726164",
    "65000200000042001073636f7265000e0000000000026e616d6500160000004d6f72726973205061726b2042616b6520",
    "53686f70000272657374617572616e745f6964000900000033303037353434350000",
);
const OP_MSG_REQUEST: &str = concat!(
    "050100005600000000000000dd0700000000000000f0000000027265706c536574486561727462656174000600000062",
    "656174730010636f6e66696756657273696f6e00030000001068627600010000000266726f6d000f0000003132372e30",
    "2e302e313a39393930001066726f6d49640000000000107465726d000100000010247265706c44617461000100000003",
    "24636c757374657254696d65005800000011636c757374657254696d650001000000ebd86e5c037369676e6174757265",
    "003300000005686173680014000000000000000000000000000000000000000000000000126b65794964000000000000",
    "000000000002246462000600000061646d696e0000",
);
const OP_MSG_REPLY: &str = concat!(
    "ed0100003200000056000000dd0700000000000000d8010000116f7065726174696f6e54696d65000000000000000000",
    "016f6b000000000000000000026572726d736700400000004f7572207265706c6963612073657420636f6e6669677572",
    "6174696f6e20697320696e76616c6964206f7220646f6573206e6f7420696e636c7564652075730010636f6465005d00",
    "000002636f64654e616d650018000000496e76616c69645265706c696361536574436f6e6669670003247265706c4461",
    "746100c3000000127465726d000000000000000000036c6173744f70436f6d6d6974746564001c000000117473000000",
    "000000000000127400ffffffffffffffff00036c6173744f7056697369626c65001c0000001174730000000000000000",
    "00127400ffffffffffffffff0012636f6e66696756657273696f6e000300000000000000077265706c69636153657449",
    "64005c6ed8cc0a94b1327d1fe194107072696d617279496e64657800ffffffff1073796e63536f75726365496e646578",
    "00ffffffff000324636c757374657254696d65005800000011636c757374657254696d650001000000ebd86e5c037369",
    "676e6174757265003300000005686173680014000000000000000000000000000000000000000000000000126b657949",
    "64000000000000000000000000",
);
const INSERT_QUERY: &str = concat!(
    "ee0000000337000000000000d407000000000000746573742e24636d64000000000001000000c800000002696e736572",
    "74000c00000072657374617572616e74730004646f63756d656e7473003000000003300028000000075f69640055b0f4",
    "dcb643765eb250bef101746573745f636f6c00000000000000f03f0000086f7264657265640001036d65746164617461",
    "005c0000000273686172644e616d65000a0000007368617264303030300004736861726456657273696f6e001f000000",
    "1130000000000000000000073100000000000000000000000000001273657373696f6e0000000000000000000000",
);
const DUPLICATE_KEY_REPLY: &str = concat!(
    "c50000007902000003370000010000000800000000000000000000000000000001000000a1000000106f6b0001000000",
    "106e00000000000477726974654572726f727300800000000330007800000010696e646578000000000010636f646500",
    "f82a0000026572726d73670052000000453131303030206475706c6963617465206b6579206572726f7220696e646578",
    "3a20746573742e72657374617572616e74732e24746573745f636f6c5f3120647570206b65793a207b203a20312e3020",
    "7d00000000",
);

fn whole(hex: &str) -> Message {
    let data = unhex(hex);
    match parse(&data) {
        Parsed::Message { msg, consumed } => {
            assert_eq!(consumed, data.len());
            msg
        }
        other => panic!("{other:?}"),
    }
}

/// Every proper prefix is incomplete; the whole message parses the same with bytes after it.
fn check_splits(hex: &str) {
    let mut data = unhex(hex);
    for i in 0..data.len() {
        assert_eq!(parse(&data[..i]), Parsed::Incomplete, "prefix of {i} bytes");
    }
    let msg = whole(hex);
    data.extend_from_slice(&[0x10, 0, 0]);
    assert_eq!(
        parse(&data),
        Parsed::Message {
            msg,
            consumed: data.len() - 3
        }
    );
}

#[test]
fn op_query_and_its_reply() {
    check_splits(ONE_ROW_QUERY);
    check_splits(ONE_ROW_REPLY);
    let q = whole(ONE_ROW_QUERY);
    assert_eq!(
        (q.request_id, q.op_code, q.is_response),
        (10, OP_QUERY, false)
    );
    assert_eq!(q.method, "find");
    assert_eq!(q.resource, b"test.restaurants");
    assert_eq!(q.fields.number_to_return, Some(1));
    assert_eq!(q.fields.number_to_skip, Some(0));
    assert_eq!(reconstruct_query(&q, false), b"test.restaurants.find(null)");
    // An empty query is no parameters, in both forms.
    assert_eq!(reconstruct_query(&q, true), b"test.restaurants.find(null)");
    let r = whole(ONE_ROW_REPLY);
    assert!(r.is_response);
    assert_eq!(r.response_to, 10);
    assert_eq!(r.fields.number_returned, Some(1));
    assert_eq!(r.fields.cursor_id, Some(0));
    assert_eq!(r.documents.len(), 1);
    let doc = doc_to_json(&r.documents[0]).unwrap();
    assert!(
        doc.starts_with(r#"{"_id":"558bebb45f075665d2ae8627","address":{"building":"1007","coord":[-73.856077,40.848447]"#),
        "{doc}"
    );
    assert!(
        doc.contains(r#"{"date":"2014-03-03T00:00:00Z","grade":"A","score":2}"#),
        "{doc}"
    );
    assert_eq!(r.error, None);
}

#[test]
fn a_command_names_method_and_collection_and_write_errors_are_the_error() {
    check_splits(INSERT_QUERY);
    check_splits(DUPLICATE_KEY_REPLY);
    let q = whole(INSERT_QUERY);
    assert_eq!(q.method, "insert");
    assert_eq!(q.resource, b"test.restaurants");
    assert_eq!(
        q.fields.full_collection_name.as_deref(),
        Some(&b"test.$cmd"[..])
    );
    assert_eq!(
        String::from_utf8(reconstruct_query(&q, false)).unwrap(),
        r#"test.restaurants.insert({"metadata":{"session":0,"shardName":"shard0000","shardVersion":[{"T":0,"I":0},"000000000000000000000000"]},"ordered":true})"#
    );
    // The full form keeps the documents.
    let full = String::from_utf8(reconstruct_query(&q, true)).unwrap();
    assert!(
        full.starts_with(r#"test.restaurants.insert({"documents":[{"_id":"55b0f4dcb643765eb250bef1","test_col":1}],"#),
        "{full}"
    );
    let r = whole(DUPLICATE_KEY_REPLY);
    assert_eq!(
        r.error.as_deref(),
        Some(
            r#"[{"code":11000,"errmsg":"E11000 duplicate key error index: test.restaurants.$test_col_1 dup key: { : 1.0 }","index":0}]"#
        )
    );
}

#[test]
fn op_msg_body_sections() {
    check_splits(OP_MSG_REQUEST);
    check_splits(OP_MSG_REPLY);
    let q = whole(OP_MSG_REQUEST);
    assert!(!q.is_response);
    assert_eq!(q.method, "msg");
    assert_eq!(
        String::from_utf8(reconstruct_query(&q, false)).unwrap(),
        r#".msg({"$clusterTime":{"clusterTime":{"T":1550768363,"I":1},"signature":{"hash":{"Subtype":0,"Data":"AAAAAAAAAAAAAAAAAAAAAAAAAAA="},"keyId":0}},"$db":"admin","$replData":1,"configVersion":3,"from":"127.0.0.1:9990","fromId":0,"hbv":1,"replSetHeartbeat":"beats","term":1})"#
    );
    // The request's body stands for its parameters in both forms.
    assert_eq!(reconstruct_query(&q, true), reconstruct_query(&q, false));
    let r = whole(OP_MSG_REPLY);
    assert!(r.is_response);
    assert_eq!(r.response_to, q.request_id);
    // An OP_MSG reply's `ok: 0` is no error to Packetbeat.
    assert_eq!(r.error, None);
    assert_eq!(r.documents.len(), 1);
}

/// A message: header, then `body`.
fn message(request_id: i32, response_to: i32, op: i32, body: &[u8]) -> Vec<u8> {
    let mut m = ((16 + body.len()) as i32).to_le_bytes().to_vec();
    for v in [request_id, response_to, op] {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m.extend_from_slice(body);
    m
}

/// A document of the given raw elements.
fn doc(elements: &[u8]) -> Vec<u8> {
    let mut d = ((elements.len() + 5) as i32).to_le_bytes().to_vec();
    d.extend_from_slice(elements);
    d.push(0);
    d
}

fn string_el(key: &str, v: &str) -> Vec<u8> {
    let mut e = vec![0x02];
    e.extend_from_slice(key.as_bytes());
    e.push(0);
    e.extend_from_slice(&((v.len() + 1) as i32).to_le_bytes());
    e.extend_from_slice(v.as_bytes());
    e.push(0);
    e
}

fn double_el(key: &str, v: f64) -> Vec<u8> {
    let mut e = vec![0x01];
    e.extend_from_slice(key.as_bytes());
    e.push(0);
    e.extend_from_slice(&v.to_le_bytes());
    e
}

fn op_msg_sequence(request_id: i32, id: &str, docs: &[Vec<u8>]) -> Vec<u8> {
    let mut body = 0i32.to_le_bytes().to_vec();
    body.push(1);
    let size = 4 + id.len() + 1 + docs.iter().map(Vec::len).sum::<usize>();
    body.extend_from_slice(&(size as i32).to_le_bytes());
    body.extend_from_slice(id.as_bytes());
    body.push(0);
    for d in docs {
        body.extend_from_slice(d);
    }
    message(request_id, 0, 2013, &body)
}

#[test]
fn op_msg_document_sequence_and_legacy_opcodes() {
    let d1 = doc(&string_el("a", "x"));
    let d2 = doc(&double_el("b", 2.5));
    let m = op_msg_sequence(7, "documents", &[d1, d2]);
    let Parsed::Message { msg, .. } = parse(&m) else {
        panic!()
    };
    assert_eq!(msg.fields.message.as_deref(), Some(&b"documents"[..]));
    assert_eq!(msg.documents.len(), 2);
    assert_eq!(doc_to_json(&msg.documents[1]).unwrap(), r#"{"b":2.5}"#);

    // OP_DELETE: collection and selector.
    let mut body = 0i32.to_le_bytes().to_vec();
    body.extend_from_slice(b"db.c\0");
    body.extend_from_slice(&0i32.to_le_bytes());
    body.extend_from_slice(&doc(&string_el("k", "<v>")));
    let Parsed::Message { msg, .. } = parse(&message(1, 0, OP_DELETE, &body)) else {
        panic!()
    };
    assert_eq!(msg.method, "delete");
    assert_eq!(
        msg.fields.selector.as_deref(),
        Some(r#"{"k":"\u003cv\u003e"}"#)
    );
    assert!(!parser::awaits_reply(&msg));

    // OP_GET_MORE waits for a reply.
    let mut body = 0i32.to_le_bytes().to_vec();
    body.extend_from_slice(b"db.c\0");
    body.extend_from_slice(&5i32.to_le_bytes());
    body.extend_from_slice(&77i64.to_le_bytes());
    let Parsed::Message { msg, .. } = parse(&message(1, 0, OP_GET_MORE, &body)) else {
        panic!()
    };
    assert_eq!(
        (msg.fields.cursor_id, msg.fields.number_to_return),
        (Some(77), Some(5))
    );
    assert!(parser::awaits_reply(&msg));
}

#[test]
fn a_find_writes_its_filter_in_the_full_form_only() {
    let mut body = 0i32.to_le_bytes().to_vec();
    body.extend_from_slice(b"db.c\0");
    body.extend_from_slice(&2i32.to_le_bytes());
    body.extend_from_slice(&3i32.to_le_bytes());
    body.extend_from_slice(&doc(&string_el("a", "b")));
    body.extend_from_slice(&doc(&double_el("a", 1.0)));
    let Parsed::Message { msg, .. } = parse(&message(1, 0, OP_QUERY, &body)) else {
        panic!()
    };
    assert_eq!(
        msg.fields.return_fields_selector.as_deref(),
        Some(r#"{"a":1}"#)
    );
    // No `.skip(2).limit(3)`: Packetbeat 8 writes none.
    assert_eq!(reconstruct_query(&msg, false), b"db.c.find(null)");
    assert_eq!(reconstruct_query(&msg, true), br#"db.c.find({"a":"b"})"#);
    // A command's key goes; an int32 1 is no command value, a double 1 is.
    let mut els = Vec::new();
    els.extend([0x10, b'p', b'i', b'n', b'g', 0, 1, 0, 0, 0]);
    els.extend(double_el("isMaster", 1.0));
    let mut body = 0i32.to_le_bytes().to_vec();
    body.extend_from_slice(b"admin.$cmd\0");
    body.extend_from_slice(&0i32.to_le_bytes());
    body.extend_from_slice(&(-1i32).to_le_bytes());
    body.extend_from_slice(&doc(&els));
    let Parsed::Message { msg, .. } = parse(&message(1, 0, OP_QUERY, &body)) else {
        panic!()
    };
    assert_eq!(
        (msg.method.as_str(), &msg.resource[..]),
        ("isMaster", &b"admin.$cmd"[..])
    );
    assert_eq!(
        reconstruct_query(&msg, true),
        br#"admin.$cmd.isMaster({"ping":1})"#
    );
}

#[test]
fn bad_messages_are_errors_never_panics() {
    // Opcode 2269 (the capture mongodb_invalid_opcode_2269) and RESERVED.
    assert!(matches!(
        parse(&message(1, 0, 2269, b"xxxx")),
        Parsed::Error(_)
    ));
    assert!(matches!(parse(&message(1, 0, 2003, b"")), Parsed::Error(_)));
    // A length below the header's.
    assert!(matches!(parse(&[4, 0, 0, 0, 0, 0]), Parsed::Error(_)));
    assert!(matches!(parse(&[0xff, 0xff, 0xff, 0xff]), Parsed::Error(_)));
    // Every truncation of a body within a consistent header, and every corrupted byte.
    for hex in [
        ONE_ROW_QUERY,
        ONE_ROW_REPLY,
        INSERT_QUERY,
        OP_MSG_REQUEST,
        OP_MSG_REPLY,
    ] {
        let data = unhex(hex);
        for cut in 16..data.len() {
            let mut m = data[..cut].to_vec();
            m[..4].copy_from_slice(&(cut as i32).to_le_bytes());
            let _ = parse(&m);
        }
        for i in 4..data.len() {
            for b in [0x00, 0x7f, 0xff] {
                let mut m = data.clone();
                m[i] = b;
                let _ = parse(&m);
            }
        }
    }
}

#[test]
fn bson_as_go_marshals_it() {
    let mut els = Vec::new();
    els.extend(double_el("f1", 1.0));
    els.extend(double_el("f2", 1e21));
    els.extend(double_el("f3", 1.5e-7));
    els.extend(double_el("f4", 0.000001));
    els.extend(string_el("s", "a\"\\\n\t\u{1}&\u{2028}é"));
    els.extend([0x09, b'd', 0]);
    els.extend(1_234_567_890_123i64.to_le_bytes());
    els.extend([0x0A, b'n', 0, 0x08, b't', 0, 1, 0x10, b'i', 0]);
    els.extend((-5i32).to_le_bytes());
    els.extend([0x12, b'l', 0]);
    els.extend(i64::MIN.to_le_bytes());
    els.extend([0x05, b'b', 0, 2, 0, 0, 0, 0x80, 0xde, 0xad]);
    els.extend([0x0B, b'r', 0, b'^', b'a', 0, b'i', 0]);
    // A repeated key keeps its last value; keys come out sorted.
    els.extend(string_el("a", "first"));
    els.extend(string_el("a", "last"));
    let d = parse_document(&doc(&els)).unwrap();
    assert_eq!(
        doc_to_json(&d).unwrap(),
        concat!(
            r#"{"a":"last","b":{"Subtype":128,"Data":"3q0="},"d":"2009-02-13T23:31:30.123Z","#,
            r#""f1":1,"f2":1e+21,"f3":1.5e-7,"f4":0.000001,"i":-5,"l":-9223372036854775808,"#,
            r#""n":null,"r":{"Pattern":"^a","Options":"i"},"#,
            r#""s":"a\"\\\n\t\u0001\u0026\u2028é","t":true}"#
        )
    );
    // Code with scope: the scope is an ordered primitive.D.
    let mut cws = vec![0x0F, b'c', 0];
    let code = [2, 0, 0, 0, b'f', 0];
    let scope = doc(&[string_el("z", "1"), string_el("a", "2")].concat());
    cws.extend(((4 + code.len() + scope.len()) as i32).to_le_bytes());
    cws.extend(code);
    cws.extend(scope);
    let d = parse_document(&doc(&cws)).unwrap();
    assert_eq!(
        doc_to_json(&d).unwrap(),
        r#"{"c":{"Code":"f","Scope":[{"Key":"z","Value":"1"},{"Key":"a","Value":"2"}]}}"#
    );
    // Decimal128 as mongo-driver's String() writes it.
    let dec = |coeff: u128, exp: i64, neg: bool| {
        let bits = (u128::from(neg) << 127) | (((exp + 6176) as u128) << 113) | coeff;
        let mut e = vec![0x13, b'x', 0];
        e.extend(bits.to_le_bytes());
        doc_to_json(&parse_document(&doc(&e)).unwrap()).unwrap()
    };
    assert_eq!(dec(15, 2, false), r#"{"x":"1.5E+3"}"#);
    assert_eq!(dec(12345, -2, true), r#"{"x":"-123.45"}"#);
    assert_eq!(dec(0, 0, true), r#"{"x":"-0"}"#);
    assert_eq!(dec(1, 0, false), r#"{"x":"1"}"#);
    assert_eq!(dec(1050, 0, false), r#"{"x":"1050"}"#);
    // NaN: Go's json.Marshal fails.
    assert_eq!(
        doc_to_json(&parse_document(&doc(&double_el("x", f64::NAN))).unwrap()),
        None
    );
    // Invalid UTF-8 is Go's escape.
    let mut bad = string_el("s", "ab");
    let n = bad.len() - 2;
    bad[n] = 0xff;
    let d = parse_document(&doc(&bad)).unwrap();
    assert_eq!(doc_to_json(&d).unwrap(), r#"{"s":"a\ufffd"}"#);
    assert!(matches!(d.get(&b"s"[..]), Some(Value::Str(_))));
    // Truncated, overlong, deeply nested: errors.
    let good = doc(&els);
    for cut in 0..good.len() {
        assert!(parse_document(&good[..cut]).is_err());
    }
    let mut deep = vec![0u8; 0];
    for _ in 0..300 {
        let mut e = vec![0x03, b'x', 0];
        e.extend(if deep.is_empty() {
            doc(&[])
        } else {
            deep.clone()
        });
        deep = doc(&e);
    }
    assert!(parse_document(&deep).is_err());
}

fn common(send: bool) -> CommonOptions {
    CommonOptions {
        ports: vec![27017],
        send_request: send,
        send_response: send,
        transaction_timeout: Duration::from_secs(10),
    }
}

fn session_with(cfg: MongodbConfig, send: bool) -> (TcpSession, Arc<Module<Mongodb>>) {
    let proto = Mongodb::configure(&common(send), cfg).unwrap();
    let module = Arc::new(Module::new(proto, &common(send)));
    (TcpSession::new(module.clone(), 27017), module)
}

fn session() -> (TcpSession, Arc<Module<Mongodb>>) {
    session_with(MongodbConfig::default(), false)
}

#[test]
fn pairs_a_query_with_its_reply_across_segments() {
    let (mut c, _) = session();
    let q = unhex(ONE_ROW_QUERY);
    let r = unhex(ONE_ROW_REPLY);
    c.send(true, &q[..20], 0);
    c.send(true, &q[20..], 1);
    c.send(false, &r[..100], 3);
    c.send(false, &r[100..], 4);
    let evs = c.events();
    assert_eq!(evs.len(), 1, "{evs:?}");
    let e = &evs[0];
    assert_eq!(e["type"], "mongodb");
    assert_eq!(e["method"], "find");
    assert_eq!(e["resource"], "test.restaurants");
    assert_eq!(e["query"], "test.restaurants.find(null)");
    assert_eq!(e["status"], "OK");
    assert_eq!(e["mongodb"]["numberToReturn"], 1);
    assert_eq!(e["mongodb"]["numberReturned"], 1);
    assert_eq!(e["mongodb"]["fullCollectionName"], "test.restaurants");
    assert_eq!(e["source"]["bytes"], 50);
    assert_eq!(e["destination"]["bytes"], 514);
    // The reply's first segment came at 3 ms.
    assert_eq!(e["event"]["end"], "1970-01-01T00:00:00.003Z");
    assert!(e.get("request").is_none() && e.get("response").is_none());
}

#[test]
fn a_reply_may_come_before_its_request_and_errors_set_status() {
    let (mut c, module) = session();
    c.send(false, &unhex(DUPLICATE_KEY_REPLY), 0);
    assert!(c.events().is_empty());
    // The reply answers request 0x3703 (the capture's ids): the insert carries that id.
    c.send(true, &unhex(INSERT_QUERY), 1);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["status"], "Error");
    assert_eq!(evs[0]["method"], "insert");
    assert!(evs[0]["mongodb"]["error"]
        .as_str()
        .unwrap()
        .starts_with(r#"[{"code":11000,"#));
    // A reply nobody asked for waits, and is counted when the connection ends.
    c.send(false, &unhex(ONE_ROW_REPLY), 2);
    c.tcp.flush(&mut c.out);
    assert!(c.events().is_empty());
    let counters = module.counters().unwrap();
    assert_eq!(counters.unmatched_responses.load(Ordering::Relaxed), 1);
}

#[test]
fn send_request_and_response_with_max_docs_and_max_doc_length() {
    let cfg = MongodbConfig {
        max_docs: 1,
        max_doc_length: 20,
    };
    let (mut c, _) = session_with(cfg, true);
    let q = unhex(ONE_ROW_QUERY);
    c.send(true, &q, 0);
    // A reply of two documents to request 10.
    let mut body = 0i32.to_le_bytes().to_vec();
    body.extend(0i64.to_le_bytes());
    body.extend(0i32.to_le_bytes());
    body.extend(2i32.to_le_bytes());
    body.extend(doc(&string_el("name", "a long restaurant name")));
    body.extend(doc(&string_el("n", "b")));
    c.send(false, &message(99, 10, 1, &body), 1);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["request"], "test.restaurants.find(null)");
    assert_eq!(evs[0]["response"], "{\"name\":\"a long rest ...\n[...]");
}

#[test]
fn requests_without_reply_are_published_alone_and_bad_streams_recover() {
    let (mut c, module) = session();
    let mut body = 0i32.to_le_bytes().to_vec();
    body.extend_from_slice(b"db.c\0");
    body.extend_from_slice(&0i32.to_le_bytes());
    body.extend_from_slice(&doc(&[]));
    // An unknown opcode drops the stream; the next segment starts afresh.
    c.send(true, &message(1, 0, 2269, b"junk"), 0);
    c.send(true, &message(2, 0, OP_DELETE, &body), 1);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["method"], "delete");
    assert_eq!(evs[0]["query"], ".delete(null)");
    assert_eq!(evs[0]["mongodb"]["selector"], "{}");
    assert!(evs[0]["event"].get("end").is_none(), "no reply: no end");
    let counters = module.counters().unwrap();
    assert_eq!(counters.parse_errors.load(Ordering::Relaxed), 1);
}

#[test]
fn requests_expire_after_the_transaction_timeout() {
    let (mut c, module) = session();
    c.send(true, &unhex(ONE_ROW_QUERY), 0);
    c.send(false, &unhex(ONE_ROW_REPLY), 10_001);
    assert!(c.events().is_empty());
    let counters = module.counters().unwrap();
    assert_eq!(counters.unmatched_requests.load(Ordering::Relaxed), 1);
}

#[test]
fn the_section_decodes_with_packetbeats_defaults() {
    let cfg: MongodbConfig = serde_json::from_str("{}").unwrap();
    assert_eq!((cfg.max_docs, cfg.max_doc_length), (10, 5000));
    let cfg: MongodbConfig =
        serde_json::from_str(r#"{"max_docs": 0, "max_doc_length": -1}"#).unwrap();
    let m = Mongodb::configure(&common(false), cfg).unwrap();
    assert_eq!((m.max_docs, m.max_doc_length), (0, 0));
}

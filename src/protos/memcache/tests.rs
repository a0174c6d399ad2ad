//! The memcache analyzer: the parser on split and broken input, TCP sessions through the real
//! TCP layer, UDP datagrams through the UDP analyzer.

use super::*;
use crate::protos::app::Module;
use crate::protos::testing::{flat, tuple, TcpSession};
use crate::protos::ProtocolModule;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

fn pcfg() -> ParserConfig {
    ParserConfig {
        max_values: 0,
        max_bytes_per_value: i32::MAX as usize,
        parse_unknown: false,
    }
}

fn settings(cfg: MemcacheConfig) -> Memcache {
    Memcache::configure(&common(), cfg).unwrap()
}

fn common() -> CommonOptions {
    CommonOptions {
        ports: vec![11211],
        send_request: false,
        send_response: false,
        transaction_timeout: Duration::from_secs(10),
    }
}

fn session_with(cfg: MemcacheConfig) -> (TcpSession, Arc<Module<Memcache>>) {
    let module = Arc::new(Module::new(settings(cfg), &common()));
    (TcpSession::new(module.clone(), 11211), module)
}

fn session() -> (TcpSession, Arc<Module<Memcache>>) {
    session_with(MemcacheConfig::default())
}

/// A binary message: header, extras, key, value.
#[allow(clippy::too_many_arguments)]
fn bin(
    magic: u8,
    op: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) -> Vec<u8> {
    let mut v = vec![magic, op];
    v.extend((key.len() as u16).to_be_bytes());
    v.push(extras.len() as u8);
    v.push(0);
    v.extend(status.to_be_bytes());
    v.extend(((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    v.extend(opaque.to_be_bytes());
    v.extend(cas.to_be_bytes());
    v.extend_from_slice(extras);
    v.extend_from_slice(key);
    v.extend_from_slice(value);
    v
}

fn req(op: u8, opaque: u32, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    bin(0x80, op, 0, opaque, 0, extras, key, value)
}

fn resp(op: u8, status: u16, opaque: u32, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    bin(0x81, op, status, opaque, 7, extras, key, value)
}

fn get<'a>(e: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(e, |v, k| &v[k])
}

/// Every proper prefix is incomplete; the whole gives the same message as one piece.
fn assert_splits(data: &[u8]) {
    let whole = parser::parse(&pcfg(), data);
    let Parsed::Message { consumed, .. } = &whole else {
        panic!("{data:?} does not parse: {whole:?}");
    };
    assert_eq!(*consumed, data.len());
    for i in 0..data.len() {
        assert_eq!(
            parser::parse(&pcfg(), &data[..i]),
            Parsed::Incomplete,
            "prefix of {i} bytes"
        );
    }
}

#[test]
fn text_and_binary_messages_split_at_every_byte() {
    for m in [
        &b"set k1 0 0 5\r\nhello\r\n"[..],
        b"get a b c\r\n",
        b"VALUE a 3 5 99\r\nhello\r\n",
        b"cas k 1 2 3 44 noreply\r\nabc\r\n",
        b"STAT pid 1\r\n",
        b"SERVER_ERROR out of memory\r\n",
        b"12\r\n",
    ] {
        assert_splits(m);
    }
    assert_splits(&req(
        codes::OP_SET,
        1,
        &[0, 0, 0, 2, 0, 0, 0, 0],
        b"cnt",
        b"1",
    ));
    assert_splits(&resp(codes::OP_GETK, 0, 4, &[0, 0, 0, 2], b"cnt", b"abc"));
    assert_splits(&resp(codes::OP_STAT, 0, 3, &[], b"pid", b"1"));
    assert_splits(&resp(codes::OP_VERSION, 0, 3, &[], b"", b"1.6.18"));
}

#[test]
fn bad_input_is_an_error_or_incomplete_never_a_panic() {
    let cfg = pcfg();
    assert!(matches!(
        parser::parse(&cfg, b"bogus x\r\n"),
        Parsed::Error(_)
    ));
    assert!(matches!(parser::parse(&cfg, b"\r\n"), Parsed::Error(_)));
    assert!(matches!(
        parser::parse(&cfg, b"set k 0 0 x\r\n"),
        Parsed::Error(_)
    ));
    assert!(matches!(
        parser::parse(&cfg, b"set k 0 0 1\r\nabXY"),
        Parsed::Error(_)
    ));
    assert!(matches!(parser::parse(&cfg, b"get\r\n"), Parsed::Error(_)));
    assert!(matches!(
        parser::parse(&cfg, b"delete k bogus\r\n"),
        Parsed::Error(_)
    ));
    // A value length that does not fit the total length.
    let mut m = req(codes::OP_SET, 1, &[0; 8], b"key", b"");
    m[8..12].copy_from_slice(&2u32.to_be_bytes());
    assert_eq!(parser::parse(&cfg, &m), Parsed::Error(parser::ERR_LEN));
    // A huge declared length waits for more bytes (the stream cap bounds it).
    let mut m = req(codes::OP_SET, 1, &[], b"", b"");
    m[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(parser::parse(&cfg, &m), Parsed::Incomplete);
    assert_eq!(
        parser::parse(&cfg, b"set k 0 0 4294967295\r\n"),
        Parsed::Incomplete
    );
    // Pseudo-random bytes.
    let mut x: u32 = 12345;
    for _ in 0..2000 {
        let len = (x % 64) as usize;
        let buf: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let _ = parser::parse(&cfg, &buf);
        let mut b = buf.clone();
        if !b.is_empty() {
            b[0] = 0x80 | (b[0] & 1);
        }
        let _ = parser::parse(&cfg, &b);
    }
}

#[test]
fn text_session_pipelined_with_errors_multi_get_and_quit() {
    let (mut c, module) = session();
    c.send(
        true,
        b"set k1 0 0 5\r\nhello\r\nset k2 3 0 2 noreply\r\nhi\r\nget k1 x k2\r\nincr k1 1\r\n",
        0,
    );
    c.send(
        false,
        b"STORED\r\nVALUE k1 0 5\r\nhello\r\nVALUE k2 3 2\r",
        1,
    );
    c.send(
        false,
        b"\nhi\r\nEND\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        2,
    );
    c.send(true, b"stats\r\n", 3);
    c.send(false, b"STAT pid 1\r\nSTAT uptime 5\r\nEND\r\n", 4);
    c.send(true, b"quit\r\n", 5);
    let evs = c.events();
    assert_eq!(evs.len(), 5, "{evs:#?}");
    assert_eq!(get(&evs[0], "memcache.request.command"), "set");
    assert_eq!(get(&evs[0], "memcache.response.command"), "STORED");
    assert_eq!(get(&evs[0], "status"), "OK");
    // The noreply set answered by the next response (Packetbeat pairs text messages in order).
    assert_eq!(get(&evs[1], "memcache.request.noreply"), true);
    assert_eq!(get(&evs[1], "memcache.response.command"), "VALUE");
    assert_eq!(get(&evs[1], "memcache.response.keys"), &json!(["k1", "k2"]));
    assert_eq!(get(&evs[1], "memcache.response.count_values"), 2);
    assert_eq!(get(&evs[1], "memcache.response.bytes"), 7);
    assert_eq!(get(&evs[1], "source.bytes"), 44);
    assert_eq!(
        get(&evs[2], "memcache.request.keys"),
        &json!(["k1", "x", "k2"])
    );
    assert_eq!(get(&evs[2], "memcache.response.command"), "CLIENT_ERROR");
    assert_eq!(
        get(&evs[2], "memcache.response.error_msg"),
        "cannot increment or decrement non-numeric value"
    );
    assert_eq!(get(&evs[2], "status"), "Client Error");
    // Shifted by the noreply request: the stats lines answer the incr.
    assert_eq!(get(&evs[3], "memcache.request.command"), "incr");
    assert_eq!(
        get(&evs[3], "memcache.response.stats"),
        &json!([{"name":"pid","value":"1"},{"name":"uptime","value":"5"}])
    );
    assert_eq!(get(&evs[3], "event.action"), "memcache.counter");
    assert_eq!(get(&evs[4], "memcache.request.command"), "quit");
    assert!(get(&evs[4], "memcache.response").is_null());
    assert_eq!(module.settings().parser.max_values, 0);
}

#[test]
fn an_unparseable_message_publishes_the_pending_requests_and_drops_both_directions() {
    let (mut c, module) = session();
    c.send(true, b"get a\r\nget b\r\n", 0);
    c.send(false, b"END\r\nBOGUS\r\n", 1);
    let evs = c.events();
    assert_eq!(evs.len(), 2, "{evs:#?}");
    assert_eq!(get(&evs[0], "memcache.response.command"), "END");
    assert_eq!(get(&evs[1], "memcache.request.keys"), &json!(["b"]));
    assert_eq!(get(&evs[1], "error.message"), "Unfinished transaction");
    assert_eq!(get(&evs[1], "status"), "Server Error");
    assert_eq!(
        module
            .counters()
            .unwrap()
            .parse_errors
            .load(Ordering::Relaxed),
        1
    );
    // Parsing restarts with the next segments.
    c.send(true, b"delete a\r\n", 2);
    c.send(false, b"NOT_FOUND\r\n", 3);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(get(&evs[0], "status"), "Error");
    assert_eq!(get(&evs[0], "event.outcome"), "success");
}

#[test]
fn binary_quiet_gets_closed_by_noop_and_counters() {
    let (mut c, _) = session();
    let mut burst = req(codes::OP_GETKQ, 1, &[], b"a", b"");
    burst.extend(req(codes::OP_GETKQ, 2, &[], b"b", b""));
    burst.extend(req(codes::OP_GETK, 3, &[], b"c", b""));
    burst.extend(req(codes::OP_NOOP, 4, &[], b"", b""));
    c.send(true, &burst, 0);
    let mut r = resp(codes::OP_GETKQ, 0, 2, &[0, 0, 0, 9], b"b", b"vb");
    // GetK c lost its response; the noop closes the batch.
    r.extend(resp(codes::OP_NOOP, 0, 4, &[], b"", b""));
    c.send(false, &r, 1);
    let evs = c.events();
    assert_eq!(evs.len(), 4, "{evs:#?}");
    assert_eq!(get(&evs[0], "memcache.request.keys"), &json!(["a"]));
    assert!(get(&evs[0], "memcache.response").is_null());
    assert_eq!(get(&evs[0], "status"), "OK");
    assert_eq!(get(&evs[1], "memcache.response.flags"), 9);
    assert_eq!(get(&evs[1], "memcache.response.count_values"), 1);
    assert_eq!(get(&evs[1], "memcache.response.cas_unique"), 7);
    assert_eq!(
        get(&evs[2], "error.message"),
        "Missing response for non-quiet request"
    );
    assert_eq!(get(&evs[2], "status"), "Server Error");
    assert_eq!(get(&evs[3], "memcache.request.opcode"), "No-op");

    // An increment of a non-numeric value.
    let mut extras = 1u64.to_be_bytes().to_vec();
    extras.extend(0u64.to_be_bytes());
    extras.extend(0u32.to_be_bytes());
    c.send(true, &req(codes::OP_INCREMENT, 9, &extras, b"k", b""), 2);
    c.send(
        false,
        &resp(
            codes::OP_INCREMENT,
            6,
            9,
            &[],
            b"",
            b"Non-numeric server-side value for incr or decr",
        ),
        3,
    );
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(get(&evs[0], "memcache.request.delta"), 1);
    assert_eq!(
        get(&evs[0], "memcache.response.status"),
        "Incr/Decr on non-numeric value."
    );
    assert_eq!(get(&evs[0], "status"), "Error");
    assert!(get(&evs[0], "event.outcome").is_null());
}

#[test]
fn maxvalues_and_maxbytespervalue_keep_values_base64() {
    let (mut c, _) = session_with(MemcacheConfig {
        maxvalues: -1,
        maxbytespervalue: 3,
        ..MemcacheConfig::default()
    });
    c.send(true, b"set k 0 0 5\r\nhello\r\n", 0);
    c.send(false, b"STORED\r\n", 1);
    c.send(true, b"get k k\r\n", 2);
    c.send(
        false,
        b"VALUE k 0 5\r\nhello\r\nVALUE k 0 5\r\nhello\r\nEND\r\n",
        3,
    );
    let evs = c.events();
    assert_eq!(get(&evs[0], "memcache.request.values"), "aGVs");
    assert_eq!(
        get(&evs[1], "memcache.response.values"),
        &json!(["aGVs", "aGVs"])
    );
}

#[test]
fn parseunknown_accepts_unknown_commands() {
    let (mut c, _) = session_with(MemcacheConfig {
        parseunknown: true,
        ..MemcacheConfig::default()
    });
    c.send(true, b"mn\r\n", 0);
    c.send(false, b"MN\r\n", 1);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(get(&evs[0], "memcache.request.line"), "mn");
    assert_eq!(get(&evs[0], "memcache.response.type"), "UNKNOWN");
}

fn udp(id: u16, seq: u16, n: u16, body: &[u8]) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend(seq.to_be_bytes());
    v.extend(n.to_be_bytes());
    v.extend([0, 0]);
    v.extend_from_slice(body);
    v
}

#[test]
fn udp_joins_datagrams_and_expires_on_packet_time() {
    let counters = Arc::new(AppCounters::default());
    let mut u = MemcacheUdp::new(pcfg(), Duration::from_millis(200), counters.clone());
    let mut out = EventSink::new();
    let client = tuple("10.0.0.1", 5000, "10.0.0.2", 11211);
    let server = client.reversed();
    let pkt = |t: IpPortTuple, ms: i64, payload: &[u8]| {
        let payload = payload.to_vec();
        (t, Ts(ms * 1_000_000), payload)
    };
    let send =
        |u: &mut MemcacheUdp, out: &mut EventSink, (t, ts, p): (IpPortTuple, Ts, Vec<u8>)| {
            u.parse_udp(
                out,
                &UdpPacket {
                    ts,
                    tuple: t,
                    payload: &p,
                },
            )
        };
    send(
        &mut u,
        &mut out,
        pkt(client, 0, &udp(7, 0, 1, b"get big\r\n")),
    );
    // The response in two datagrams, out of order.
    send(
        &mut u,
        &mut out,
        pkt(server, 2, &udp(7, 1, 2, b"lo\r\nEND\r\n")),
    );
    assert!(out.take().is_empty());
    send(
        &mut u,
        &mut out,
        pkt(server, 3, &udp(7, 0, 2, b"VALUE big 0 5\r\nhel")),
    );
    let evs: Vec<_> = out.take().into_iter().map(flat).collect();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["memcache.response.count_values"], 1);
    assert_eq!(evs[0]["network.transport"], "udp");
    // Only the first message of the datagrams is parsed (the VALUE, not its END).
    assert_eq!(evs[0]["source.bytes"], 22);
    assert_eq!(evs[0]["destination.bytes"], 9);
    assert_eq!(evs[0]["client.port"], 5000);

    // A noreply request waits for the timeout (on packet time).
    send(
        &mut u,
        &mut out,
        pkt(client, 10, &udp(8, 0, 1, b"delete k noreply\r\n")),
    );
    u.tick(&mut out, Ts(100 * 1_000_000));
    assert!(out.take().is_empty());
    u.tick(&mut out, Ts(300 * 1_000_000));
    let evs: Vec<_> = out.take().into_iter().map(flat).collect();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["status"], "OK");

    // Pending at the end of the capture: counted, not published.
    send(
        &mut u,
        &mut out,
        pkt(client, 400, &udp(9, 0, 1, b"get k\r\n")),
    );
    u.flush(&mut out, Ts(401 * 1_000_000));
    assert!(out.take().is_empty());
    assert_eq!(counters.unmatched_requests.load(Ordering::Relaxed), 1);
    // Undecodable datagrams are dropped.
    send(
        &mut u,
        &mut out,
        pkt(client, 500, &udp(10, 0, 1, b"\x80\x01")),
    );
    send(&mut u, &mut out, pkt(client, 500, b"\x00\x01"));
    send(&mut u, &mut out, pkt(client, 500, &udp(11, 5, 2, b"x")));
    assert!(out.take().is_empty());
}

/// Segments after a hole, enough of them for the TCP layer to give up waiting and report a gap.
fn send_chunks(c: &mut TcpSession, data: &[u8], size: usize, t_ms: i64) {
    for chunk in data.chunks(size) {
        c.send(false, chunk, t_ms);
    }
}

#[test]
fn a_gap_inside_a_value_is_skipped_and_noted() {
    let (mut c, _) = session();
    c.send(true, b"get big\r\n", 0);
    let mut reply = b"VALUE big 0 200000\r\n".to_vec();
    reply.extend(vec![b'v'; 200_000]);
    reply.extend_from_slice(b"\r\nEND\r\n");
    c.send(false, &reply[..1000], 1);
    c.skip(false, 1000);
    send_chunks(&mut c, &reply[2000..], 1000, 2);
    c.send(true, b"version\r\n", 3);
    c.send(false, b"VERSION 1.6\r\n", 4);
    let evs = c.events();
    assert_eq!(evs.len(), 2, "{evs:#?}");
    assert_eq!(get(&evs[0], "memcache.response.count_values"), 1);
    assert_eq!(get(&evs[0], "memcache.response.bytes"), 200_000);
    assert_eq!(
        get(&evs[0], "error.message"),
        "Packet loss while capturing the response"
    );
    assert_eq!(get(&evs[0], "source.bytes"), reply.len() - 1000);
    assert_eq!(get(&evs[1], "memcache.response.command"), "VERSION");

    // A gap past the data block drops the connection state: the requests are published.
    c.send(true, b"get big\r\nget big\r\n", 10);
    let two = [&reply[..], &reply[..]].concat();
    c.send(false, &two[..1000], 11);
    c.skip(false, 200_000);
    send_chunks(&mut c, &two[201_000..], 200, 12);
    let evs = c.events();
    assert_eq!(evs.len(), 2, "{evs:#?}");
    for e in &evs {
        assert_eq!(get(e, "error.message"), "Unfinished transaction");
    }
}

#[test]
fn admin_commands_orphans_and_binary_stats() {
    let (mut c, module) = session();
    c.send(
        true,
        b"flush_all 10\r\nslabs automove 2\r\nlru_crawler sleep 50\r\nverbosity 1\r\n",
        0,
    );
    c.send(false, b"OK\r\nOK\r\nOK\r\nOK\r\n", 1);
    let evs = c.events();
    assert_eq!(evs.len(), 4, "{evs:#?}");
    assert_eq!(get(&evs[0], "memcache.request.command"), "flush_all");
    assert_eq!(get(&evs[0], "memcache.request.exptime"), 10);
    assert_eq!(get(&evs[0], "event.action"), "memcache.delete");
    assert_eq!(get(&evs[1], "memcache.request.command"), "slabs automove");
    assert_eq!(get(&evs[1], "memcache.request.automove"), "aggressive");
    assert_eq!(get(&evs[2], "memcache.request.sleep_us"), 50);
    assert_eq!(get(&evs[2], "event.action"), "memcache.lrucrawler");
    assert_eq!(get(&evs[3], "memcache.request.verbosity"), 1);
    // A response nobody asked for.
    c.send(false, b"STORED\r\n", 2);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(
        get(&evs[0], "error.message"),
        "Invalid transaction. Request missing"
    );
    assert_eq!(get(&evs[0], "status"), "Client Error");
    assert!(get(&evs[0], "event.action").is_null());
    assert_eq!(get(&evs[0], "source.port"), 40000);
    let counters = module.counters().unwrap();
    assert_eq!(counters.unmatched_responses.load(Ordering::Relaxed), 1);
}

#[test]
fn binary_stats_merge_and_quitq() {
    let (mut c, _) = session();
    c.send(true, &req(codes::OP_STAT, 5, &[], b"", b""), 0);
    let mut r = resp(codes::OP_STAT, 0, 5, &[], b"pid", b"1");
    r.extend(resp(codes::OP_STAT, 0, 5, &[], b"uptime", b"9"));
    c.send(false, &r, 1);
    assert!(c.events().is_empty(), "waits for the closing empty stat");
    c.send(false, &resp(codes::OP_STAT, 0, 5, &[], b"", b""), 2);
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(
        get(&evs[0], "memcache.response.stats"),
        &json!([{"name":"pid","value":"1"},{"name":"uptime","value":"9"}])
    );
    assert_eq!(get(&evs[0], "memcache.response.keys"), &json!(["pid"]));
    assert_eq!(get(&evs[0], "source.bytes"), 24 * 3 + 4 + 7);
    c.send(true, &req(codes::OP_VERSION, 6, &[], b"", b""), 3);
    c.send(
        false,
        &resp(codes::OP_VERSION, 0, 6, &[], b"", b"1.6.18"),
        4,
    );
    c.send(true, &req(codes::OP_QUITQ, 7, &[], b"", b""), 5);
    let evs = c.events();
    assert_eq!(evs.len(), 2);
    assert_eq!(get(&evs[0], "memcache.response.version"), "1.6.18");
    assert_eq!(get(&evs[1], "memcache.request.opcode"), "QuitQ");
    assert_eq!(get(&evs[1], "status"), "OK");
}

#[test]
fn options_and_their_defaults() {
    let d = settings(MemcacheConfig::default());
    assert_eq!(d.udp_transaction_timeout, Duration::from_secs(10));
    assert_eq!(d.parser.max_values, 0);
    assert_eq!(d.parser.max_bytes_per_value, i32::MAX as usize);
    assert!(!d.parser.parse_unknown);
    let cfg: MemcacheConfig = serde_yaml::from_str(
        "parseunknown: true\nmaxvalues: -1\nmaxbytespervalue: 100\nudptransactiontimeout: 2\n",
    )
    .unwrap();
    let s = settings(cfg);
    assert_eq!(s.udp_transaction_timeout, Duration::from_secs(2));
    assert_eq!(s.parser.max_values, -1);
    assert_eq!(s.parser.max_bytes_per_value, 100);
    assert!(s.parser.parse_unknown);
    let cfg: MemcacheConfig = serde_yaml::from_str("udptransactiontimeout: 200ms\n").unwrap();
    assert_eq!(
        settings(cfg).udp_transaction_timeout,
        Duration::from_millis(200)
    );
}

//! The NFS analyzer: the parser on captured messages (split at every byte, truncated, broken)
//! and the analyzer through the real TCP layer.

use super::parser::{self, Auth, Message};
use super::*;
use crate::protos::app::Module;
use crate::protos::testing::{unhex, TcpSession};
use std::sync::Arc;

/// `nfs_v3.pcap`: LOOKUP of `test_file` (AUTH_UNIX from `ani`), answered NFS3ERR_NOENT.
const V3_CALL: &str = "80000074a19a75d00000000000000002000186a30000000300000003000000010000001c0046cb1600000003616e69000000000000000000000000010000000000000000000000000000001b01caffee00000000b1f9635e000d000008000000000000000301300000000009746573745f66696c65000000";
const V3_REPLY: &str = "80000020a19a75d000000001000000000000000000000000000000000000000200000000";
/// `nfs_v4.pcap`: COMPOUND `readdir` (SEQUENCE, PUTFH, READDIR), minor version 1.
const V4_CALL: &str = "800000d4000000080000000000000002000186a30000000400000001000000010000002856fa71d100000003616e6900000001f4000001f400000004000001f4000001f4000001f3000001eb000000000000000000000007726561646469720000000001000000030000003556fa71d1000000020000000000000001000000060000000f0000000000000000000000160000001b01caffee0000000000000000010d00000800000000000000010130000000001a000000000000000000000000000000000000200000000100000000020000000000000000";
const V4_REPLY: &str = "800000980000000800000001000000000000000000000000000000000000000000000007726561646469720000000003000000350000000056fa71d1000000020000000000000001000000060000000f0000000f0000000f0000000000000016000000000000001a000000000000000000000001000000010000000000000003000000076578706f7274730000000000000000000000000000000001";

fn nfs() -> Nfs {
    Nfs {
        ports: vec![2049],
        transaction_timeout: Duration::from_secs(60),
    }
}

fn session() -> TcpSession {
    let common = CommonOptions {
        ports: vec![2049],
        send_request: false,
        send_response: false,
        transaction_timeout: Duration::from_secs(60),
    };
    let module = Arc::new(Module::new(
        Nfs::configure(&common, NfsConfig::default()).unwrap(),
        &common,
    ));
    TcpSession::new(module, 2049)
}

fn parse_all(data: &[u8]) -> Parsed<Rpc> {
    nfs().parse(&mut (), TcpDirection::Original, data)
}

#[test]
fn v3_call_and_reply() {
    let call = unhex(V3_CALL);
    let Parsed::Message { msg, consumed } = parse_all(&call) else {
        panic!("no message")
    };
    assert_eq!(consumed, call.len());
    assert_eq!(msg.size, 116);
    let Ok(Message::Call(c)) = msg.msg else {
        panic!("{msg:?}")
    };
    assert_eq!((c.xid, c.version, c.procedure), (0xa19a75d0, 3, 3));
    assert_eq!(c.opcode, Some("LOOKUP"));
    let Auth::Unix(cred) = c.auth else { panic!() };
    assert_eq!(cred.machine_name, "ani");
    assert_eq!((cred.stamp, cred.uid, cred.gid), (4639510, 0, 0));
    assert_eq!(cred.gids, vec![0]);

    let reply = unhex(V3_REPLY);
    let Parsed::Message { msg, .. } = parse_all(&reply) else {
        panic!()
    };
    assert_eq!(msg.size, 32);
    assert_eq!(
        msg.msg,
        Ok(Message::Reply(parser::Reply {
            xid: 0xa19a75d0,
            accept_status: 0,
            first_word: Some(2),
        }))
    );
}

#[test]
fn v4_compound_main_operation() {
    let Parsed::Message { msg, .. } = parse_all(&unhex(V4_CALL)) else {
        panic!()
    };
    let Ok(Message::Call(c)) = msg.msg else {
        panic!()
    };
    assert_eq!(c.tag.as_deref(), Some("readdir"));
    assert_eq!(c.minor_version, Some(1));
    // SEQUENCE and PUTFH set up the call; READDIR is what it does.
    assert_eq!(c.opcode, Some("READDIR"));
    let Auth::Unix(cred) = c.auth else { panic!() };
    assert_eq!(cred.gids, vec![500, 500, 499, 491]);
}

/// A COMPOUND call with `ops` (each an operation number and its argument words).
fn compound(ops: &[(u32, &[u32])]) -> Vec<u8> {
    let mut words = vec![7u32, 0, 2, 100003, 4, 1, 0, 0, 0, 0];
    words.extend([0, 1, ops.len() as u32]); // empty tag, minor version 1
    for (op, args) in ops {
        words.push(*op);
        words.extend_from_slice(args);
    }
    let mut out = (0x8000_0000 | (words.len() as u32 * 4))
        .to_be_bytes()
        .to_vec();
    out.extend(words.iter().flat_map(|w| w.to_be_bytes()));
    out
}

fn opcode(rec: &[u8]) -> Option<&'static str> {
    match parse_all(rec) {
        Parsed::Message {
            msg: Rpc {
                msg: Ok(Message::Call(c)),
                ..
            },
            ..
        } => c.opcode,
        other => panic!("{other:?}"),
    }
}

#[test]
fn compound_without_a_main_operation_is_its_last_one() {
    // PUTROOTFH, GETATTR (a bitmap of one word): GETATTR.
    assert_eq!(
        opcode(&compound(&[(24, &[]), (9, &[1, 0x10])])),
        Some("GETATTR")
    );
    // An empty COMPOUND, and an operation number nobody assigned.
    assert_eq!(opcode(&compound(&[])), Some("ILLEGAL"));
    assert_eq!(opcode(&compound(&[(24, &[]), (200, &[])])), Some("ILLEGAL"));
    // PUTFH (a handle), CLOSE: CLOSE, whatever follows.
    assert_eq!(
        opcode(&compound(&[(22, &[4, 0xdead]), (4, &[]), (9, &[])])),
        Some("CLOSE")
    );
    // NFSv4.2 operations.
    assert_eq!(opcode(&compound(&[(22, &[0]), (71, &[])])), Some("CLONE"));
}

#[test]
fn split_at_every_byte() {
    for hex in [V3_CALL, V3_REPLY, V4_CALL, V4_REPLY] {
        let whole = unhex(hex);
        let expected = parse_all(&whole);
        for cut in 0..whole.len() {
            assert_eq!(parse_all(&whole[..cut]), Parsed::Incomplete, "cut at {cut}");
        }
        assert!(matches!(expected, Parsed::Message { .. }));
    }
}

#[test]
fn multi_fragment_records_are_reassembled() {
    let whole = unhex(V3_CALL);
    let body = &whole[4..];
    let mut split = Vec::new();
    for (i, part) in body.chunks(40).enumerate() {
        let last = (i + 1) * 40 >= body.len();
        let mark = part.len() as u32 | if last { 0x8000_0000 } else { 0 };
        split.extend(mark.to_be_bytes());
        split.extend_from_slice(part);
    }
    let Parsed::Message { msg, consumed } = parse_all(&split) else {
        panic!()
    };
    assert_eq!(consumed, split.len());
    let Parsed::Message { msg: one, .. } = parse_all(&whole) else {
        panic!()
    };
    assert_eq!(msg, one);
    for cut in 0..split.len() {
        assert_eq!(parse_all(&split[..cut]), Parsed::Incomplete);
    }
}

#[test]
fn truncated_and_broken_messages_are_errors_of_their_own_record() {
    let whole = unhex(V4_CALL);
    // The record claims fewer bytes than the message has: every shorter body is an error.
    for len in 0..whole.len() - 4 {
        let mut rec = (0x8000_0000u32 | len as u32).to_be_bytes().to_vec();
        rec.extend_from_slice(&whole[4..4 + len]);
        match parse_all(&rec) {
            Parsed::Message { msg, consumed } => {
                assert_eq!(consumed, rec.len());
                // Short bodies fail; only a cut within the last operation's arguments reads.
                if let Ok(m) = msg.msg {
                    assert!(len > 100, "{len}: {m:?}");
                }
            }
            other => panic!("{len}: {other:?}"),
        }
    }
    // Neither call nor reply.
    let mut bad = unhex(V3_REPLY);
    bad[11] = 7;
    assert!(matches!(
        parse_all(&bad),
        Parsed::Message {
            msg: Rpc {
                msg: Err(parser::Error::BadType),
                ..
            },
            ..
        }
    ));
    // A huge gid count is refused before any allocation.
    let mut c = unhex(V3_CALL);
    c[4 + 52..4 + 56].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        parse_all(&c),
        Parsed::Message {
            msg: Rpc { msg: Err(_), .. },
            ..
        }
    ));
}

#[test]
fn random_bytes_never_panic() {
    let mut state = 0x2545_f491u32;
    for _ in 0..2000 {
        let len = (state % 300) as usize;
        let mut data = Vec::with_capacity(len);
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            data.push(state as u8);
        }
        if data.len() >= 4 {
            // A plausible record mark, so the body is read.
            let n = (data.len() - 4) as u32 | 0x8000_0000;
            data[..4].copy_from_slice(&n.to_be_bytes());
        }
        let _ = parse_all(&data);
    }
}

#[test]
fn session_pairs_by_xid_and_reports_fields() {
    let mut s = session();
    s.send(true, &unhex(V4_CALL), 0);
    s.send(true, &unhex(V3_CALL), 1);
    // Replies out of order: pairing is by xid.
    s.send(false, &unhex(V3_REPLY), 5);
    s.send(false, &unhex(V4_REPLY), 7);
    let evs = s.events();
    assert_eq!(evs.len(), 2, "{evs:#?}");
    let v3 = &evs[0];
    assert_eq!(v3["nfs"]["opcode"], "LOOKUP");
    assert_eq!(v3["nfs"]["status"], "NFSERR_NOENT");
    assert_eq!(v3["rpc"]["xid"], "a19a75d0");
    assert_eq!(v3["rpc"]["status"], "success");
    assert_eq!(v3["rpc"]["cred"]["machinename"], "ani");
    assert_eq!(v3["source"]["domain"], "ani");
    assert_eq!(v3["source"]["bytes"], 116);
    assert_eq!(v3["destination"]["bytes"], 32);
    assert_eq!(v3["network"]["protocol"], "nfsv3");
    assert_eq!(v3["event"]["action"], "nfs.LOOKUP");
    assert_eq!(v3["status"], "OK");
    let v4 = &evs[1];
    assert_eq!(v4["nfs"]["opcode"], "READDIR");
    assert_eq!(v4["nfs"]["tag"], "readdir");
    assert_eq!(v4["nfs"]["status"], "NFS_OK");
    assert_eq!(v4["network"]["protocol"], "nfsv4");
}

#[test]
fn unanswered_calls_time_out_as_no_reply() {
    let mut s = session();
    s.send(true, &unhex(V3_CALL), 0);
    // 61 s later, the next call finds the first one expired.
    s.send(true, &unhex(V4_CALL), 61_000);
    let evs = s.events();
    assert_eq!(evs.len(), 1, "{evs:#?}");
    assert_eq!(evs[0]["status"], "NO_REPLY");
    assert_eq!(evs[0]["nfs"]["opcode"], "LOOKUP");
    assert!(evs[0]["nfs"].get("status").is_none());
    assert!(evs[0]["event"].get("end").is_none());
    // A reply to nobody is dropped, and a broken record does not stop the next one.
    s.send(false, &unhex(V3_REPLY), 61_001);
    let mut broken = unhex(V3_REPLY);
    broken[11] = 9;
    s.send(false, &broken, 61_002);
    s.send(false, &unhex(V4_REPLY), 61_003);
    let evs = s.events();
    assert_eq!(evs.len(), 1, "{evs:#?}");
    assert_eq!(evs[0]["nfs"]["opcode"], "READDIR");
}

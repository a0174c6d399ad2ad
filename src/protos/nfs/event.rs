//! The NFS event (`handleCall` and `handleReply` in Packetbeat's `request_handler.go`): the
//! only place its fields are written.

use super::names;
use super::parser::{Auth, Call, Reply};
use crate::common::{IpPortTuple, Transport, Ts};
use crate::protos::app;
use crate::publish::Event;

/// A call as the analyzer keeps it until its reply.
#[derive(Debug, Clone)]
pub struct Pending {
    pub ts: Ts,
    pub tuple: IpPortTuple,
    /// Bytes of the RPC message (without its record marks).
    pub size: usize,
    pub call: Call,
}

/// The reply half of an event.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    pub ts: Ts,
    pub size: usize,
    pub reply: &'a Reply,
}

/// The event of a call, with its reply, or without one when it timed out (`status`
/// `NO_REPLY`, as Packetbeat's expiry writes it).
pub fn nfs_event(req: &Pending, answer: Option<&Answer>) -> Event {
    let t = &req.tuple;
    let c = &req.call;
    let protocol = match c.version {
        3 => "nfsv3",
        4 => "nfsv4",
        _ => "nfs",
    };
    let mut ev = app::event::transaction_event(&app::event::Transaction {
        protocol,
        transport: Transport::Tcp,
        ts: req.ts,
        client: (t.src_ip, t.src_port),
        server: (t.dst_ip, t.dst_port),
        request_bytes: req.size as u64,
        response_bytes: answer.map_or(0, |a| a.size as u64),
        start: Some(req.ts),
        end: answer.map(|a| a.ts),
        notes: &[],
    });
    let pb = ev.pb();
    pb.event.dataset = Some("nfs");
    let client_ip = crate::publish::event::ip_string(&t.src_ip);
    if let Auth::Unix(cred) = &c.auth {
        if !cred.machine_name.is_empty() {
            if let Some(s) = pb.source.as_mut() {
                s.domain = Some(cred.machine_name.clone());
            }
        }
    }
    let failed = answer.is_some_and(|a| a.reply.accept_status != 0);
    if let Some(op) = c.opcode {
        ev.set_action(format!("nfs.{op}"));
    }
    if failed {
        ev.set_outcome("failure");
    }
    let f = &mut ev.fields;
    f.put_str("type", "nfs");
    f.put_str("status", if answer.is_some() { "OK" } else { "NO_REPLY" });
    f.put_str("rpc.xid", &format!("{:08x}", c.xid));
    match &c.auth {
        Auth::None => f.put_str("rpc.auth_flavor", "none"),
        Auth::Unix(cred) => {
            f.put_str("rpc.auth_flavor", "unix");
            let machine = if cred.machine_name.is_empty() {
                client_ip.as_str()
            } else {
                cred.machine_name.as_str()
            };
            f.put_u64("rpc.cred.stamp", cred.stamp as u64);
            f.put_str("rpc.cred.machinename", machine);
            f.put_u64("rpc.cred.uid", cred.uid as u64);
            f.put_u64("rpc.cred.gid", cred.gid as u64);
            f.put_with("rpc.cred.gids", |o| {
                o.push(b'[');
                for (i, g) in cred.gids.iter().enumerate() {
                    if i > 0 {
                        o.push(b',');
                    }
                    o.extend_from_slice(itoa::Buffer::new().format(*g).as_bytes());
                }
                o.push(b']');
            });
            // Packetbeat sets these as top-level keys with dots in them.
            f.put_literal("host.hostname", &machine.into());
            f.put_literal("user.id", &(cred.uid as u64).into());
            f.put_literal("group.id", &(cred.gid as u64).into());
        }
        Auth::RpcsecGss => f.put_str("rpc.auth_flavor", "rpcsec_gss"),
        Auth::Other(n) => f.put_str("rpc.auth_flavor", &format!("unknown ({n})")),
    }
    f.put_u64("nfs.version", c.version as u64);
    if let Some(op) = c.opcode {
        f.put_str("nfs.opcode", op);
    }
    if let Some(tag) = &c.tag {
        f.put_str("nfs.tag", tag);
    }
    if let Some(m) = c.minor_version {
        f.put_u64("nfs.minor_version", m as u64);
    }
    if let Some(a) = answer {
        if let Some(s) = names::accept_status(a.reply.accept_status) {
            f.put_str("rpc.status", s);
        }
        if a.reply.accept_status == 0 {
            // NULL returns nothing: Packetbeat reports it NFS_OK.
            let stat = if c.procedure == 0 {
                Some(0)
            } else {
                a.reply.first_word
            };
            if let Some(stat) = stat {
                f.put_str("nfs.status", names::nfs_status(stat));
            }
        }
    }
    ev
}

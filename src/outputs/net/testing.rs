//! The `connection...` and `TLS...` steps of `packetbeat test output` for one host of a network
//! output, printed like libbeat's console test driver:
//!
//! ```text
//!   connection...
//!     parse host... OK
//!     dns lookup... OK
//!     addresses: 127.0.0.1
//!     dial up... OK
//!   TLS... WARN secure connection disabled
//! ```
//!
//! The output prints its own header line before and its protocol check (`talk to server...`)
//! after.

use super::conn::{handshake, Dialer};
use super::tls::SslConfig;
use std::io::Write;
use std::net::ToSocketAddrs;

/// Resolves and dials `d`, then checks its TLS set-up; false at the first failure.
pub fn test_dial(d: &Dialer, ssl: Option<&SslConfig>, out: &mut dyn Write) -> anyhow::Result<bool> {
    writeln!(out, "  connection...")?;
    writeln!(out, "    parse host... OK")?;
    if d.proxy.is_none() {
        match (d.host.as_str(), d.port).to_socket_addrs() {
            Ok(addrs) => {
                let ips: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
                writeln!(out, "    dns lookup... OK")?;
                writeln!(out, "    addresses: {}", ips.join(", "))?;
            }
            Err(e) => {
                writeln!(out, "    dns lookup... ERROR lookup {}: {e}", d.host)?;
                return Ok(false);
            }
        }
    }
    match d.tcp() {
        Ok(_) => writeln!(out, "    dial up... OK")?,
        Err(e) => {
            writeln!(out, "    dial up... ERROR {e}")?;
            return Ok(false);
        }
    }
    let Some(cfg) = &d.tls else {
        writeln!(out, "  TLS... WARN secure connection disabled")?;
        return Ok(true);
    };
    writeln!(out, "  TLS...")?;
    let mode = ssl
        .map(|s| s.verification_mode.to_ascii_lowercase())
        .unwrap_or_default();
    if mode == "none" {
        writeln!(
            out,
            "    security... WARN server's certificate chain verification is disabled"
        )?;
    } else {
        writeln!(
            out,
            "    security: server's certificate chain verification is enabled"
        )?;
    }
    let tcp = match d.tcp() {
        Ok(t) => t,
        Err(e) => {
            writeln!(out, "    dial up... ERROR {e}")?;
            return Ok(false);
        }
    };
    match handshake(cfg, &d.host, tcp) {
        Ok(s) => {
            writeln!(out, "    handshake... OK")?;
            let v = match s.conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
                _ => "unknown",
            };
            writeln!(out, "    TLS version: {v}")?;
            writeln!(out, "    dial up... OK")?;
            Ok(true)
        }
        Err(e) => {
            writeln!(out, "    handshake... ERROR {e}")?;
            Ok(false)
        }
    }
}

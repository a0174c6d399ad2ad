//! `packetbeat test output` for Logstash, printed like libbeat's console test driver:
//!
//! ```text
//! logstash: localhost:5044...
//!   connection...
//!     parse host... OK
//!     dns lookup... OK
//!     addresses: 127.0.0.1
//!     dial up... OK
//!   TLS... WARN secure connection disabled
//!   talk to server... OK
//! ```

use super::config::LogstashConfig;
use crate::outputs::net::testing::test_dial;
use std::io::Write;

/// Runs the checks for every host; returns false at the first failure (libbeat exits 1 there).
pub fn test_output(c: &LogstashConfig, out: &mut dyn Write) -> anyhow::Result<bool> {
    for d in &super::dialers(c)? {
        writeln!(out, "logstash: {}...", d.label())?;
        if !test_dial(d, c.ssl.as_ref(), out)? {
            return Ok(false);
        }
        match d.connect() {
            Ok(mut conn) => {
                conn.shutdown();
                writeln!(out, "  talk to server... OK")?;
            }
            Err(e) => {
                writeln!(out, "  talk to server... ERROR {e}")?;
                return Ok(false);
            }
        }
    }
    Ok(true)
}

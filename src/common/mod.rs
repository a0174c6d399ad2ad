//! Small pieces shared by every layer: capture timestamps and address tuples, libbeat's format
//! strings, the rotating files of the file output and the log.

pub mod fmtstr;
pub mod rotator;
pub mod time;
pub mod tuple;

pub use time::Ts;
pub use tuple::{IpPortTuple, TcpTuple, Transport};

//! Small value types shared by every layer: capture timestamps and address tuples; the
//! rotating files of the file output and the log.

pub mod rotator;
pub mod time;
pub mod tuple;

pub use time::Ts;
pub use tuple::{IpPortTuple, TcpTuple, Transport};

//! A connection to one host of a network output: dial (directly or through a SOCKS5 proxy)
//! under `timeout`, the TLS handshake, then reads and writes under the same `timeout`.

use super::proxy;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

pub enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(b),
            Conn::Tls(s) => s.read(b),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(b),
            Conn::Tls(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

impl Conn {
    pub fn shutdown(&mut self) {
        let tcp = match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
                &s.sock
            }
        };
        let _ = tcp.shutdown(std::net::Shutdown::Both);
    }
}

/// Everything needed to (re)connect to one host.
#[derive(Clone)]
pub struct Dialer {
    pub host: String,
    pub port: u16,
    pub timeout: Duration,
    pub tls: Option<Arc<ClientConfig>>,
    pub proxy: Option<proxy::Proxy>,
    pub proxy_local_resolve: bool,
}

impl Dialer {
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn tcp(&self) -> io::Result<TcpStream> {
        let s = match &self.proxy {
            Some(p) => proxy::connect(
                p,
                &self.host,
                self.port,
                self.timeout,
                self.proxy_local_resolve,
            )?,
            None => {
                let mut last = io::Error::other(format!("lookup {}: no addresses", self.host));
                let mut found = None;
                for a in (self.host.as_str(), self.port).to_socket_addrs()? {
                    match TcpStream::connect_timeout(&a, self.timeout) {
                        Ok(s) => {
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = io::Error::new(e.kind(), format!("dial tcp {a}: {e}")),
                    }
                }
                found.ok_or(last)?
            }
        };
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(self.timeout))?;
        s.set_write_timeout(Some(self.timeout))?;
        Ok(s)
    }

    /// Dials and, with TLS, completes the handshake.
    pub fn connect(&self) -> io::Result<Conn> {
        let tcp = self.tcp()?;
        match &self.tls {
            None => Ok(Conn::Plain(tcp)),
            Some(cfg) => Ok(Conn::Tls(Box::new(handshake(cfg, &self.host, tcp)?))),
        }
    }
}

/// Completes a TLS handshake on a connected socket.
pub fn handshake(
    cfg: &Arc<ClientConfig>,
    host: &str,
    mut tcp: TcpStream,
) -> io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let name = super::tls::server_name(host).map_err(|e| io::Error::other(e.to_string()))?;
    let mut conn =
        ClientConnection::new(cfg.clone(), name).map_err(|e| io::Error::other(e.to_string()))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake with {host}: {e}")))?;
    }
    Ok(StreamOwned::new(conn, tcp))
}

//! `proxy_url: socks5://[user:password@]host:port` (RFC 1928, with RFC 1929 user/password) for
//! network outputs. The target name is sent to the proxy unless `proxy_use_local_resolver` is set,
//! in which case the output resolves it and sends the address.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Proxy {
    pub addr: String,
    pub user: Option<(String, String)>,
}

pub fn parse(url: &str) -> anyhow::Result<Proxy> {
    let rest = url
        .strip_prefix("socks5://")
        .or_else(|| url.strip_prefix("socks5h://"))
        .ok_or_else(|| {
            anyhow::anyhow!("unsupported proxy_url '{url}': only socks5:// is supported")
        })?;
    let rest = rest.trim_end_matches('/');
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => {
            let (name, pw) = u.split_once(':').unwrap_or((u, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (Some((dec(name), dec(pw))), h)
        }
        None => (None, rest),
    };
    anyhow::ensure!(!hostport.is_empty(), "proxy_url '{url}' has no host");
    Ok(Proxy {
        addr: hostport.to_string(),
        user,
    })
}

fn io_err(msg: String) -> std::io::Error {
    std::io::Error::other(msg)
}

/// Connects to `host:port` through the proxy.
pub fn connect(
    p: &Proxy,
    host: &str,
    port: u16,
    timeout: Duration,
    local_resolve: bool,
) -> std::io::Result<TcpStream> {
    let addr = p
        .addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io_err(format!("cannot resolve proxy {}", p.addr)))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let method = if p.user.is_some() { 2u8 } else { 0u8 };
    s.write_all(&[5, 1, method])?;
    let mut r = [0u8; 2];
    s.read_exact(&mut r)?;
    if r[0] != 5 || r[1] != method {
        return Err(io_err(format!(
            "socks5: proxy refused the authentication method ({})",
            r[1]
        )));
    }
    if let Some((u, pw)) = &p.user {
        let mut m = vec![1, u.len() as u8];
        m.extend_from_slice(u.as_bytes());
        m.push(pw.len() as u8);
        m.extend_from_slice(pw.as_bytes());
        s.write_all(&m)?;
        s.read_exact(&mut r)?;
        if r[1] != 0 {
            return Err(io_err("socks5: authentication failed".into()));
        }
    }
    let mut req = vec![5, 1, 0];
    let ip: Option<IpAddr> = host.parse().ok().or_else(|| {
        local_resolve
            .then(|| (host, port).to_socket_addrs().ok()?.next().map(|a| a.ip()))
            .flatten()
    });
    match ip {
        Some(IpAddr::V4(v4)) => {
            req.push(1);
            req.extend_from_slice(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            req.push(4);
            req.extend_from_slice(&v6.octets());
        }
        None => {
            req.push(3);
            req.push(host.len() as u8);
            req.extend_from_slice(host.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head)?;
    if head[1] != 0 {
        return Err(io_err(format!(
            "socks5: connect to {host}:{port} failed (reply {})",
            head[1]
        )));
    }
    let skip = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l)?;
            l[0] as usize
        }
        t => return Err(io_err(format!("socks5: bad address type {t}"))),
    };
    let mut rest = vec![0u8; skip + 2];
    s.read_exact(&mut rest)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_url() {
        let p = super::parse("socks5://u:p%40x@proxy:1080").unwrap();
        assert_eq!(p.addr, "proxy:1080");
        assert_eq!(p.user, Some(("u".into(), "p@x".into())));
        assert!(super::parse("http://x:1").is_err());
    }
}

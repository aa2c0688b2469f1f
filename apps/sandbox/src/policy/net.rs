//! Network address rules: which addresses the program may `bind` and which it may
//! `connect`/`sendto`/`sendmsg` to.
//!
//! A rule is `ADDR[/PREFIX][:PORT]`: `127.0.0.1:8080`, `10.0.0.0/8`, `0.0.0.0/0` (all IPv4),
//! `[::1]:80`, `[fe80::]/10:443`, `::/0` (all IPv6; an unbracketed IPv6 address takes no
//! port). No port means any port. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are
//! turned into IPv4 both in rules and in socket addresses, so `127.0.0.1` also allows
//! `::ffff:127.0.0.1` and `::/0` does not cover mapped addresses. Binding port 0 (the
//! kernel picks one) needs a rule without a port or with port 0.
//!
//! `AF_UNIX`: a socket path goes through the path rules instead (see
//! [`super::Policy::check_sockaddr`]): connecting/sending needs write access to the socket
//! file, binding needs write access to its directory. An abstract name (leading NUL) is
//! denied unless a rule `unix:@NAME` allows exactly that name; autobind (an `AF_UNIX`
//! address with no path, which takes an abstract name) is denied. `AF_UNSPEC` is allowed
//! for `connect` here (it dissolves an association; the monitor refuses it where it
//! would unbind an implicitly bound socket). Connecting or sending to the unspecified
//! address (`0.0.0.0`, `::`) is checked as the loopback address it reaches. Every other family (`AF_NETLINK`, `AF_PACKET`, ...)
//! is denied with `EACCES`. An address shorter than its family needs is `EINVAL`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use super::paths::{Access, Errno};

/// Which call the address was given to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetOp {
    /// `bind`.
    Bind,
    /// `connect`.
    Connect,
    /// The destination of `sendto`/`sendmsg`/`sendmmsg` (checked like `connect`).
    Send,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetRule {
    /// An IP network and optional port.
    Ip {
        /// Network address (IPv4-mapped IPv6 turned into IPv4).
        addr: IpAddr,
        /// Prefix length.
        prefix: u8,
        /// Port, or any.
        port: Option<u16>,
    },
    /// `unix:@NAME`: one abstract `AF_UNIX` name.
    UnixAbstract(Vec<u8>),
}

/// Why a rule string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad network rule `{rule}`: {why} (want ADDR[/PREFIX][:PORT], [V6ADDR][/PREFIX][:PORT] or unix:@NAME)")]
pub struct NetRuleError {
    rule: String,
    why: &'static str,
}

fn normalise(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for NetRule {
    type Err = NetRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| NetRuleError {
            rule: s.to_owned(),
            why,
        };
        if let Some(name) = s.strip_prefix("unix:") {
            let name = name
                .strip_prefix('@')
                .ok_or_else(|| bad("unix rules name abstract sockets: unix:@NAME"))?;
            if name.is_empty() || name.len() > 107 {
                return Err(bad("abstract name must be 1..=107 bytes"));
            }
            return Ok(NetRule::UnixAbstract(name.as_bytes().to_vec()));
        }
        let (addr_s, prefix_s, port_s);
        if let Some(rest) = s.strip_prefix('[') {
            let (a, rest) = rest.split_once(']').ok_or_else(|| bad("missing `]`"))?;
            addr_s = a;
            let (p, port) = match rest.split_once(':') {
                Some((p, port)) => (p, Some(port)),
                None => (rest, None),
            };
            prefix_s = if p.is_empty() {
                None
            } else {
                Some(p.strip_prefix('/').ok_or_else(|| bad("junk after `]`"))?)
            };
            port_s = port;
        } else if s.matches(':').count() > 1 {
            let (a, p) = match s.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (s, None),
            };
            addr_s = a;
            prefix_s = p;
            port_s = None;
        } else {
            let (ap, port) = match s.rsplit_once(':') {
                Some((ap, port)) => (ap, Some(port)),
                None => (s, None),
            };
            let (a, p) = match ap.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (ap, None),
            };
            addr_s = a;
            prefix_s = p;
            port_s = port;
        }
        let raw: IpAddr = addr_s.parse().map_err(|_| bad("bad address"))?;
        let was_mapped_v6 = matches!(raw, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some());
        let addr = normalise(raw);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_s {
            None => max,
            Some(p) => {
                let mut n: u8 = p.parse().map_err(|_| bad("bad prefix length"))?;
                if was_mapped_v6 {
                    n = n
                        .checked_sub(96)
                        .ok_or_else(|| bad("prefix of a mapped address below 96"))?;
                }
                if n > max {
                    return Err(bad("prefix length too long"));
                }
                n
            }
        };
        let port = match port_s {
            None => None,
            Some(p) => Some(p.parse().map_err(|_| bad("bad port"))?),
        };
        Ok(NetRule::Ip { addr, prefix, port })
    }
}

impl fmt::Display for NetRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetRule::UnixAbstract(n) => write!(f, "unix:@{}", String::from_utf8_lossy(n)),
            NetRule::Ip {
                addr: IpAddr::V4(a),
                prefix,
                port,
            } => {
                write!(f, "{a}/{prefix}")?;
                port.map_or(Ok(()), |p| write!(f, ":{p}"))
            }
            NetRule::Ip {
                addr: IpAddr::V6(a),
                prefix,
                port,
            } => {
                write!(f, "[{a}]/{prefix}")?;
                port.map_or(Ok(()), |p| write!(f, ":{p}"))
            }
        }
    }
}

impl NetRule {
    fn matches_ip(&self, sa: &SocketAddr) -> bool {
        let NetRule::Ip { addr, prefix, port } = self else {
            return false;
        };
        if port.is_some_and(|p| p != sa.port()) {
            return false;
        }
        match (addr, sa.ip()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if *prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(*prefix))
                };
                u32::from(*net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if *prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(*prefix))
                };
                u128::from(*net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A decoded socket address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr {
    /// `AF_UNSPEC`.
    Unspec,
    /// `AF_INET` or `AF_INET6` (mapped addresses turned into IPv4).
    Ip(SocketAddr),
    /// `AF_UNIX` with a path (bytes up to the first NUL).
    UnixPath(Vec<u8>),
    /// `AF_UNIX` abstract name (without the leading NUL).
    UnixAbstract(Vec<u8>),
    /// `AF_UNIX` with no name (autobind).
    UnixUnnamed,
    /// Any other family.
    Other(u16),
}

/// Writes the loopback address into `sa` where it is the unspecified address, for a
/// `connect` or a send: Linux would pick the destination itself (loopback, or the
/// socket's own bound address, IPv4's loopback for an IPv6 socket bound to a mapped
/// address), so the monitor names the one address it checks, and the kernel goes
/// exactly there. `0.0.0.0` becomes `127.0.0.1`, `::` becomes `::1`, and
/// `::ffff:0.0.0.0` becomes `::ffff:127.0.0.1`.
pub fn pin_unspecified(sa: &mut [u8]) {
    if sa.len() < 2 {
        return;
    }
    match i32::from(u16::from_ne_bytes([sa[0], sa[1]])) {
        libc::AF_INET if sa.len() >= 16 && sa[4..8] == [0; 4] => sa[4..8].copy_from_slice(&[127, 0, 0, 1]),
        libc::AF_INET6 if sa.len() >= 24 => {
            if sa[8..24] == [0; 16] {
                sa[23] = 1;
            } else if sa[8..18] == [0; 10] && sa[18..20] == [0xff, 0xff] && sa[20..24] == [0; 4] {
                sa[20..24].copy_from_slice(&[127, 0, 0, 1]);
            }
        }
        _ => {}
    }
}

/// Decodes raw `struct sockaddr` bytes as the program passed them (`addrlen` bytes).
pub fn parse_sockaddr(sa: &[u8]) -> Result<SockAddr, Errno> {
    let einval = Errno(libc::EINVAL);
    let family = u16::from_ne_bytes([*sa.first().ok_or(einval)?, *sa.get(1).ok_or(einval)?]);
    match i32::from(family) {
        libc::AF_UNSPEC => Ok(SockAddr::Unspec),
        libc::AF_INET => {
            if sa.len() < 16 {
                return Err(einval);
            }
            let port = u16::from_be_bytes([sa[2], sa[3]]);
            let ip = Ipv4Addr::new(sa[4], sa[5], sa[6], sa[7]);
            Ok(SockAddr::Ip(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        libc::AF_INET6 => {
            // The kernel accepts the 24-byte RFC 2133 form (no scope id).
            if sa.len() < 24 {
                return Err(einval);
            }
            let port = u16::from_be_bytes([sa[2], sa[3]]);
            let mut b = [0u8; 16];
            b.copy_from_slice(&sa[8..24]);
            let ip = normalise(IpAddr::V6(Ipv6Addr::from(b)));
            Ok(SockAddr::Ip(SocketAddr::new(ip, port)))
        }
        libc::AF_UNIX => {
            let path = &sa[2..];
            if path.len() > 108 {
                return Err(einval);
            }
            if path.is_empty() {
                return Ok(SockAddr::UnixUnnamed);
            }
            if path[0] == 0 {
                return Ok(SockAddr::UnixAbstract(path[1..].to_vec()));
            }
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            Ok(SockAddr::UnixPath(path[..end].to_vec()))
        }
        _ => Ok(SockAddr::Other(family)),
    }
}

/// What the network rules say about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetVerdict {
    /// Allowed as is.
    Allow,
    /// An `AF_UNIX` path: allowed if the path rules give `access` to `path`
    /// (resolve it with `follow` as the final-symlink rule).
    UnixPath {
        /// The socket path.
        path: Vec<u8>,
        /// The access it needs.
        access: Access,
        /// Whether a final symlink is followed (connect: yes; bind creates: no).
        follow: bool,
    },
}

/// The network rules of a policy.
#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    bind: Vec<NetRule>,
    connect: Vec<NetRule>,
}

impl NetPolicy {
    /// Allows `rule` for `bind`.
    pub fn allow_bind(&mut self, rule: NetRule) {
        self.bind.push(rule);
    }

    /// Allows `rule` for `connect` and send destinations.
    pub fn allow_connect(&mut self, rule: NetRule) {
        self.connect.push(rule);
    }

    /// The `bind` rules.
    pub fn bind_rules(&self) -> &[NetRule] {
        &self.bind
    }

    /// The `connect`/send rules.
    pub fn connect_rules(&self) -> &[NetRule] {
        &self.connect
    }

    /// Decides `op` on the raw address `sa`: `Err(EINVAL)` for a short address,
    /// `Err(EACCES)` for a denied one.
    pub fn check(&self, op: NetOp, sa: &[u8]) -> Result<NetVerdict, Errno> {
        let rules = if op == NetOp::Bind {
            &self.bind
        } else {
            &self.connect
        };
        let eacces = Err(Errno(libc::EACCES));
        match parse_sockaddr(sa)? {
            SockAddr::Unspec if op == NetOp::Connect => Ok(NetVerdict::Allow),
            SockAddr::Unspec => eacces,
            SockAddr::Ip(a) => {
                // Connecting or sending to the unspecified address reaches this host's
                // loopback: the rules must allow that, not "0.0.0.0" or "::".
                let a = if op != NetOp::Bind && a.ip().is_unspecified() {
                    let lo = if a.is_ipv4() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { IpAddr::V6(Ipv6Addr::LOCALHOST) };
                    SocketAddr::new(lo, a.port())
                } else {
                    a
                };
                if rules.iter().any(|r| r.matches_ip(&a)) {
                    Ok(NetVerdict::Allow)
                } else {
                    eacces
                }
            }
            SockAddr::UnixPath(path) => Ok(NetVerdict::UnixPath {
                path,
                access: Access::Write,
                follow: op != NetOp::Bind,
            }),
            SockAddr::UnixAbstract(name) => {
                if rules
                    .iter()
                    .any(|r| matches!(r, NetRule::UnixAbstract(n) if *n == name))
                {
                    Ok(NetVerdict::Allow)
                } else {
                    eacces
                }
            }
            // Autobind gives the socket an abstract name any process of the network
            // namespace can reach: a bind no rule names.
            SockAddr::UnixUnnamed if op == NetOp::Bind => eacces,
            SockAddr::UnixUnnamed => Err(Errno(libc::EINVAL)),
            SockAddr::Other(_) => eacces,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut v = (libc::AF_INET as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(&port.to_be_bytes());
        v.extend_from_slice(&ip);
        v.extend_from_slice(&[0; 8]);
        v
    }

    fn v6(ip: Ipv6Addr, port: u16) -> Vec<u8> {
        let mut v = (libc::AF_INET6 as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(&port.to_be_bytes());
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(&ip.octets());
        v.extend_from_slice(&[0; 4]);
        v
    }

    fn unix(path: &[u8]) -> Vec<u8> {
        let mut v = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(path);
        v
    }

    fn policy(rules: &[&str]) -> NetPolicy {
        let mut p = NetPolicy::default();
        for r in rules {
            let r: NetRule = r.parse().unwrap();
            p.allow_bind(r.clone());
            p.allow_connect(r);
        }
        p
    }

    #[test]
    fn the_unspecified_destination_is_pinned_to_the_loopback_address_checked() {
        let mut v4 = [0u8; 16];
        v4[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&80u16.to_be_bytes());
        pin_unspecified(&mut v4);
        assert_eq!(&v4[4..8], &[127, 0, 0, 1]);
        let mut v6 = [0u8; 28];
        v6[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        pin_unspecified(&mut v6);
        assert_eq!(Ipv6Addr::from(<[u8; 16]>::try_from(&v6[8..24]).unwrap()), Ipv6Addr::LOCALHOST);
        let mut mapped = v6;
        mapped[8..24].copy_from_slice(&Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets());
        pin_unspecified(&mut mapped);
        assert_eq!(&mapped[8..24], &Ipv4Addr::LOCALHOST.to_ipv6_mapped().octets());
        // Anything else is left as it is.
        let mut other = v4;
        other[4..8].copy_from_slice(&[10, 0, 0, 1]);
        let before = other;
        pin_unspecified(&mut other);
        assert_eq!(other, before);
    }

    #[test]
    fn the_unspecified_address_is_loopback_for_connect_and_autobind_is_refused() {
        let p = policy(&["0.0.0.0:8080"]);
        // Binding all addresses on 8080 is what the rule says...
        assert_eq!(p.check(NetOp::Bind, &v4([0, 0, 0, 0], 8080)), Ok(NetVerdict::Allow));
        // ...but connecting to 0.0.0.0:8080 reaches 127.0.0.1:8080, which it does not name.
        assert_eq!(p.check(NetOp::Connect, &v4([0, 0, 0, 0], 8080)), Err(Errno(libc::EACCES)));
        assert_eq!(policy(&["127.0.0.1:8080"]).check(NetOp::Connect, &v4([0, 0, 0, 0], 8080)), Ok(NetVerdict::Allow));
        assert_eq!(policy(&["[::1]:80"]).check(NetOp::Send, &v6(Ipv6Addr::UNSPECIFIED, 80)), Ok(NetVerdict::Allow));
        assert_eq!(policy(&["0.0.0.0/0"]).check(NetOp::Bind, &unix(b"")), Err(Errno(libc::EACCES)));
    }

    #[test]
    fn rule_syntax() {
        for good in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "10.0.0.0/8:53",
            "[::1]:80",
            "[::1]",
            "[fe80::]/10:443",
            "::/0",
            "::1",
            "unix:@x",
            "::ffff:127.0.0.1",
            "[::ffff:10.0.0.0]/104:1",
        ] {
            good.parse::<NetRule>()
                .unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            "localhost",
            "1.2.3.4:99999",
            "1.2.3.4/33",
            "[::1",
            "[::1]x",
            "::1/129",
            "unix:/tmp/x",
            "unix:@",
            "1.2.3.4:",
            "1.2.3.4/:80",
            "[::ffff:1.2.3.4]/90",
        ] {
            assert!(bad.parse::<NetRule>().is_err(), "{bad}");
        }
        assert_eq!(
            "[::ffff:10.0.0.0]/104:1"
                .parse::<NetRule>()
                .unwrap()
                .to_string(),
            "10.0.0.0/8:1"
        );
    }

    #[test]
    fn ipv4_and_ipv6_matching() {
        let p = policy(&["127.0.0.1:8080", "10.0.0.0/8", "[::1]:80"]);
        assert_eq!(
            p.check(NetOp::Connect, &v4([127, 0, 0, 1], 8080)),
            Ok(NetVerdict::Allow)
        );
        assert_eq!(
            p.check(NetOp::Connect, &v4([127, 0, 0, 1], 8081)),
            Err(Errno(libc::EACCES))
        );
        assert_eq!(
            p.check(NetOp::Send, &v4([10, 200, 3, 4], 1)),
            Ok(NetVerdict::Allow)
        );
        assert_eq!(
            p.check(NetOp::Bind, &v4([11, 0, 0, 1], 1)),
            Err(Errno(libc::EACCES))
        );
        assert_eq!(
            p.check(NetOp::Connect, &v6(Ipv6Addr::LOCALHOST, 80)),
            Ok(NetVerdict::Allow)
        );
        assert_eq!(
            p.check(NetOp::Connect, &v6(Ipv6Addr::LOCALHOST, 81)),
            Err(Errno(libc::EACCES))
        );
        // v4-mapped v6 is checked as IPv4, both ways.
        let mapped = Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped();
        assert_eq!(
            p.check(NetOp::Connect, &v6(mapped, 8080)),
            Ok(NetVerdict::Allow)
        );
        assert_eq!(
            p.check(NetOp::Connect, &v6(mapped, 80)),
            Err(Errno(libc::EACCES))
        );
        let all6 = policy(&["::/0"]);
        assert!(all6.check(NetOp::Connect, &v6(mapped, 80)).is_err());
        assert!(all6
            .check(NetOp::Connect, &v6("2001:db8::1".parse().unwrap(), 80))
            .is_ok());
        let all4 = policy(&["0.0.0.0/0"]);
        assert!(all4.check(NetOp::Connect, &v6(mapped, 80)).is_ok());
        assert!(all4.check(NetOp::Connect, &v4([8, 8, 8, 8], 53)).is_ok());
    }

    #[test]
    fn short_addresses_and_other_families() {
        let p = policy(&["0.0.0.0/0", "::/0"]);
        assert_eq!(p.check(NetOp::Connect, &[]), Err(Errno(libc::EINVAL)));
        assert_eq!(p.check(NetOp::Connect, &[2]), Err(Errno(libc::EINVAL)));
        assert_eq!(
            p.check(NetOp::Connect, &v4([1, 2, 3, 4], 1)[..15]),
            Err(Errno(libc::EINVAL))
        );
        assert_eq!(
            p.check(NetOp::Connect, &v6(Ipv6Addr::LOCALHOST, 1)[..23]),
            Err(Errno(libc::EINVAL))
        );
        let mut nl = (libc::AF_NETLINK as u16).to_ne_bytes().to_vec();
        nl.extend_from_slice(&[0; 10]);
        assert_eq!(p.check(NetOp::Bind, &nl), Err(Errno(libc::EACCES)));
        let unspec = (libc::AF_UNSPEC as u16).to_ne_bytes();
        assert_eq!(p.check(NetOp::Connect, &unspec), Ok(NetVerdict::Allow));
        assert_eq!(p.check(NetOp::Bind, &unspec), Err(Errno(libc::EACCES)));
    }

    #[test]
    fn unix_addresses() {
        let p = policy(&["unix:@allowed"]);
        assert_eq!(
            p.check(NetOp::Connect, &unix(b"/tmp/s\0junk")),
            Ok(NetVerdict::UnixPath {
                path: b"/tmp/s".to_vec(),
                access: Access::Write,
                follow: true
            })
        );
        assert_eq!(
            p.check(NetOp::Bind, &unix(b"/tmp/s")),
            Ok(NetVerdict::UnixPath {
                path: b"/tmp/s".to_vec(),
                access: Access::Write,
                follow: false
            })
        );
        assert_eq!(
            p.check(NetOp::Connect, &unix(b"\0allowed")),
            Ok(NetVerdict::Allow)
        );
        assert_eq!(
            p.check(NetOp::Connect, &unix(b"\0other")),
            Err(Errno(libc::EACCES))
        );
        // Autobind takes an abstract name no rule names.
        assert_eq!(p.check(NetOp::Bind, &unix(b"")), Err(Errno(libc::EACCES)));
        assert_eq!(
            p.check(NetOp::Connect, &unix(b"")),
            Err(Errno(libc::EINVAL))
        );
        assert_eq!(
            p.check(NetOp::Connect, &unix(&[b'a'; 109])),
            Err(Errno(libc::EINVAL))
        );
    }
}

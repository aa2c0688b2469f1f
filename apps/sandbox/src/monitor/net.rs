//! Socket calls: addresses the program binds, connects or sends to are copied in and
//! checked against the policy's network rules (the paper's firewall); `AF_UNIX`
//! paths go through the path rules and are then reached through the resolver's
//! directory descriptor (`/proc/self/fd/N/name`), not the program's string.
//!
//! Allowlisted, not only checked: socket families, types and protocols (no raw,
//! packet or SCTP sockets), and socket options (each level and name the sandbox
//! knows; options whose values hold pointers the kernel follows, or that attach
//! programs, are not among them). Implicit binds are binds: `listen` on an unbound
//! socket, and a datagram sent from an unbound one, bind it to the wildcard address
//! and a port the kernel picks, where anyone may reach it; they need a `bind` rule
//! for that (`0.0.0.0/0` or `::/0`, any port or port 0). A UDP `connect` binds too,
//! but the socket then takes datagrams from the peer alone: the `connect` rule
//! covers it, as for TCP.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::fdtable::{self, fd};
use super::state::m;
use super::sys::{deny, raw, R};
use super::user::{copy_in, opt, user, write_user};
use crate::policy::net::NetOp;

const MAX_ADDR: u64 = 128;

fn ret(r: i64) -> R {
    if r < 0 && r > -4096 { Err(r) } else { Ok(r) }
}

/// Checks the address at `addr` (`len` bytes) for `op`; returns the bytes to pass
/// to Linux instead, and for a unix path the directory the path is reached through,
/// moved to the monitor's reserved numbers (the call may block: no pin is held), which
/// must stay open until the call is made.
fn checked_addr(op: NetOp, call: &str, addr: u64, len: u64) -> Result<(Vec<u8>, Option<OwnedFd>), i64> {
    if len > MAX_ADDR {
        return Err(-(libc::EINVAL as i64));
    }
    checked_copy(op, call, copy_in(addr, len as usize)?)
}

/// [`checked_addr`] for an address already copied in. A destination that is the
/// unspecified address is first made the loopback address it is checked as.
fn checked_copy(op: NetOp, call: &str, mut sa: Vec<u8>) -> Result<(Vec<u8>, Option<OwnedFd>), i64> {
    if op != NetOp::Bind {
        crate::policy::net::pin_unspecified(&mut sa);
    }
    let cwd = m().cwd();
    let pin = fdtable::pin();
    match m().policy.check_sockaddr(op, &sa, &cwd) {
        Ok(None) => Ok((sa, None)),
        Ok(Some(r)) => {
            let moved = |f| fdtable::own(f).map_err(|e| -(e.raw_os_error().unwrap_or(libc::EMFILE) as i64));
            // Connecting and sending reach the very socket file the resolver checked
            // (its own descriptor's /proc/self/fd link: a symlink swapped in at the
            // name afterwards is not followed). Binding makes a new name in the
            // checked directory (an existing name, a symlink too, is EADDRINUSE).
            let (held, path) = if op == NetOp::Bind {
                let Some(parent) = r.parent else { return Err(-(libc::EACCES as i64)) };
                drop(r.node);
                let parent = moved(parent)?;
                let p = format!("{}/{}", fdtable::proc_fd(parent.as_raw_fd()), r.name.to_string_lossy());
                (parent, p)
            } else {
                let Some(node) = r.node else { return Err(-(libc::ENOENT as i64)) };
                drop(r.parent);
                let node = moved(node)?;
                let p = fdtable::proc_fd(node.as_raw_fd());
                (node, p)
            };
            drop(pin);
            if path.len() >= 108 {
                return Err(-(libc::ENAMETOOLONG as i64));
            }
            let mut out = vec![0u8; 2 + path.len() + 1];
            out[0..2].copy_from_slice(&(libc::AF_UNIX as u16).to_le_bytes());
            out[2..2 + path.len()].copy_from_slice(path.as_bytes());
            Ok((out, Some(held)))
        }
        Err(e) => Err(deny(&format!("{call} to {}", describe(&sa)), "address not allowed by the network rules", e.0).unwrap_err()),
    }
}

fn describe(sa: &[u8]) -> String {
    match crate::policy::net::parse_sockaddr(sa) {
        Ok(a) => format!("{a:?}"),
        Err(_) => "a malformed address".into(),
    }
}

/// Handles the socket calls (see `calls`).
#[allow(non_upper_case_globals)] // libc's SYS_* names
pub fn call(n: i64, a: [u64; 6]) -> R {
    use libc::*;
    match n {
        SYS_socket | SYS_socketpair => {
            let (dom, ty, proto) = (a[0] as i32, a[1] as i32, a[2] as i32);
            let call = if n == SYS_socket { "socket" } else { "socketpair" };
            if !matches!(dom, AF_UNIX | AF_INET | AF_INET6) || (n == SYS_socketpair && dom != AF_UNIX) {
                return deny(&format!("{call}({dom}, ...)"), "only unix, inet and inet6 sockets (socketpair: unix)", EAFNOSUPPORT);
            }
            if let Err(why) = socket_kind(dom, ty, proto) {
                return deny(&format!("{call}({dom}, {ty:#x}, {proto})"), why, if why.starts_with("flags") { EINVAL } else { EPROTONOSUPPORT });
            }
            if n == SYS_socketpair {
                user(a[3], 8)?;
                return super::io::two_descriptors(a[3], |buf| ret(raw(n, [a[0], a[1], a[2], buf, 0, 0])));
            }
            let _pin = fdtable::pin();
            let s = ret(raw(n, a))?;
            if matches!(dom, AF_INET | AF_INET6) {
                new_ip_socket(s as i32, dom, ty)?;
            }
            Ok(s)
        }
        SYS_shutdown => self::shutdown(n, a),
        SYS_listen => {
            // On an unbound socket, listen binds it to the wildcard address first.
            let p = fdtable::own_file(a[0], "listen on an inherited socket")?;
            bound_for_listen(&p)?;
            ret(raw(n, [p.as_raw_fd() as u64, a[1], 0, 0, 0, 0]))
        }
        SYS_bind | SYS_connect => {
            fd(a[0])?;
            let op = if n == SYS_bind { NetOp::Bind } else { NetOp::Connect };
            // A socket the sandbox was started with is the processes' outside: its
            // address and association are theirs (AF_UNSPEC would dissolve it).
            // One private duplicate, checked and used throughout.
            let p = fdtable::own_file(a[0], if n == SYS_bind { "bind on an inherited socket" } else { "connect on an inherited socket" })?;
            if a[2] > MAX_ADDR {
                return Err(-(EINVAL as i64));
            }
            // One copy of the address, checked and used.
            let sa = copy_in(a[1], a[2] as usize)?;
            if op == NetOp::Connect && sa.len() >= 2 && u16::from_ne_bytes([sa[0], sa[1]]) as i32 == AF_UNSPEC {
                // Dissolving an association: on an IP socket whose port came with the
                // association (implicitly), it unbinds the socket, and its next
                // datagram or `listen` binds the wildcard address. Allowed where the
                // rules allow that.
                if let Some(fam) = ip_family(&p) {
                    if m().policy.net().check(NetOp::Bind, &wildcard(fam)).is_err() {
                        return deny("connect(AF_UNSPEC) on an IP socket", "dissolving the association could leave it bound to the wildcard address, which no bind rule allows", EACCES);
                    }
                }
                let r = ret(raw(n, [p.as_raw_fd() as u64, sa.as_ptr() as u64, sa.len() as u64, 0, 0, 0]));
                // Unbound again: IPv6-only again, as when it was made.
                if ip_family(&p) == Some(AF_INET6) && !v4_wildcard_allowed(0) {
                    set_v6only(&p, true);
                }
                return r;
            }
            let (sa, _keep) = checked_copy(op, if n == SYS_bind { "bind" } else { "connect" }, sa)?;
            if op == NetOp::Connect {
                return connect_checked(p, &sa);
            }
            // Bound on the socket whose identity is then noted (see `bound_for_listen`).
            let hole = ip_family(&p).is_some() && datagram(&p) && in_black_hole(&p);
            if hole {
                disconnect(&p);
            }
            if is_v6_wildcard(&sa) {
                v6_only_unless_v4_allowed(&p, u16::from_be_bytes([sa[2], sa[3]]))?;
            }
            let r = ret(raw(n, [p.as_raw_fd() as u64, sa.as_ptr() as u64, sa.len() as u64, 0, 0, 0]));
            if hole {
                match r {
                    Ok(_) => purge(p.as_fd(), None),
                    Err(_) => {
                        into_black_hole(p.as_fd(), ip_family(&p).unwrap_or(AF_INET));
                    }
                }
            }
            let r = r?;
            if ip_family(&p).is_some() {
                note_bound(&p);
            }
            Ok(r)
        }
        SYS_getsockname | SYS_getpeername => {
            // A socket in the black hole looks as it would without it: unbound and
            // unconnected.
            let p = fdtable::private(a[0])?;
            if let Some(fam) = ip_family(&p).filter(|_| datagram(&p) && in_black_hole(&p)) {
                if n == SYS_getpeername {
                    return Err(-(ENOTCONN as i64));
                }
                let Some((_, len)) = out_addr(a[1], a[2])? else { return Err(-(EFAULT as i64)) };
                let w = wildcard(fam);
                copy_out_addr(a[1], a[2], &w[..w.len().min(len as usize)], w.len() as u32)?;
                return Ok(0);
            }
            let mut v = OutValue::new(a[1], a[2])?;
            let (buf, len) = v.ptrs();
            let r = ret(raw(n, [p.as_raw_fd() as u64, buf, len, 0, 0, 0]))?;
            v.copy_out()?;
            Ok(r)
        }
        SYS_accept | SYS_accept4 => {
            fd(a[0])?;
            // The kernel reads the length when it writes the address, maybe long after
            // a check (accept blocks): it gets monitor copies of both, copied out after.
            // No address: Linux ignores the length pointer, which it never gets.
            let Some((mut buf, mut len)) = out_addr(a[1], a[2])? else { return ret(raw(n, [a[0], 0, 0, a[3], 0, 0])) };
            let r = ret(raw(n, [a[0], buf.as_mut_ptr() as u64, &mut len as *mut u32 as u64, a[3], 0, 0]))?;
            if let Err(e) = copy_out_addr(a[1], a[2], &buf, len) {
                // As Linux does: the new connection's descriptor goes again.
                super::io::close_unseen(&[r as i32]);
                return Err(e);
            }
            Ok(r)
        }
        SYS_sendto => {
            fd(a[0])?;
            user(a[1], a[2])?;
            if a[4] == 0 {
                return ret(raw(n, a));
            }
            let (sa, _keep) = checked_addr(NetOp::Send, "sendto", a[4], a[5])?;
            // Sent from an unbound datagram socket, it binds to the wildcard address.
            let p = fdtable::private(a[0])?;
            implicit_bind("sendto", &p)?;
            ret(raw(n, [p.as_raw_fd() as u64, a[1], a[2], a[3], sa.as_ptr() as u64, sa.len() as u64]))
        }
        SYS_recvfrom => {
            fd(a[0])?;
            user(a[1], a[2])?;
            let Some((mut buf, mut len)) = out_addr(a[4], a[5])? else { return ret(raw(n, [a[0], a[1], a[2], a[3], 0, 0])) };
            let r = ret(raw(n, [a[0], a[1], a[2], a[3], buf.as_mut_ptr() as u64, &mut len as *mut u32 as u64]))?;
            copy_out_addr(a[4], a[5], &buf, len)?;
            Ok(r)
        }
        SYS_sendmsg | SYS_recvmsg => {
            fd(a[0])?;
            msg(n, a[0], a[1], a[2])
        }
        SYS_sendmmsg | SYS_recvmmsg => {
            fd(a[0])?;
            // One message at a time, each checked like sendmsg/recvmsg.
            let count = a[2].min(1024);
            let mut done = 0;
            for i in 0..count {
                let hdr = a[1].wrapping_add(i * 64);
                let r = msg(if n == SYS_sendmmsg { SYS_sendmsg } else { SYS_recvmsg }, a[0], hdr, a[3] & !(MSG_WAITFORONE as u64));
                match r {
                    Ok(v) => {
                        if !write_user(hdr + 56, &(v as u32).to_le_bytes()) {
                            return if done > 0 { Ok(done) } else { Err(-(EFAULT as i64)) };
                        }
                        done += 1;
                    }
                    Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
                }
            }
            Ok(done)
        }
        SYS_setsockopt | SYS_getsockopt if !sockopt_allowed(a[1] as i32, a[2] as i32, n == SYS_setsockopt) => deny(
            &format!("{}(.., {}, {})", if n == SYS_setsockopt { "setsockopt" } else { "getsockopt" }, a[1] as i32, a[2] as i32),
            "option not in the sandbox's list",
            ENOPROTOOPT,
        ),
        SYS_setsockopt => {
            fd(a[0])?;
            if a[4] > 4096 {
                return Err(-(EINVAL as i64));
            }
            // The value, copied: the kernel reads it once, from the monitor. A null
            // value of some length is not passed on (some options read it as 0).
            if a[3] == 0 && a[4] != 0 {
                return Err(-(EFAULT as i64));
            }
            let v = if a[3] != 0 { copy_in(a[3], a[4] as usize)? } else { Vec::new() };
            if a[1] as i32 == IPPROTO_IPV6 && a[2] as i32 == IPV6_V6ONLY && !(v.len() >= 4 && v[..4] != [0; 4]) && !v4_wildcard_allowed(0) {
                // Dual stack: a later bind of `::` would take IPv4 too.
                return deny("setsockopt(IPV6_V6ONLY, 0)", "an IPv6 socket that also takes IPv4, where no rule allows binding IPv4's wildcard address", EPERM);
            }
            // Set on one private duplicate, which must not be a socket the sandbox was
            // started with: its options are the processes' outside too.
            let p = fdtable::own_file(a[0], &format!("setsockopt(.., {}, {})", a[1] as i32, a[2] as i32))?;
            ret(raw(n, [p.as_raw_fd() as u64, a[1], a[2], if a[3] != 0 { v.as_ptr() as u64 } else { 0 }, a[4], 0]))
        }
        SYS_getsockopt => {
            fd(a[0])?;
            let mut v = OutValue::new(a[3], a[4])?;
            let (buf, len) = v.ptrs();
            let r = ret(raw(n, [a[0], a[1], a[2], buf, len, 0]))?;
            v.copy_out()?;
            Ok(r)
        }
        _ => Err(-(ENOSYS as i64)),
    }
}

/// `sendmsg`/`recvmsg` with a copy of the header: its iovecs checked, the
/// destination checked for sending, passed descriptors checked, and what the kernel
/// writes back (name and control lengths, flags) copied out.
fn msg(n: i64, sock: u64, addr: u64, flags: u64) -> R {
    // struct msghdr: name 0, namelen 8, iov 16, iovlen 24, control 32, controllen 40, flags 48.
    let mut h = copy_in(addr, 56)?;
    let w = |h: &[u8], i: usize| u64::from_le_bytes(h[i..i + 8].try_into().unwrap_or_default());
    let (name, namelen, iov, iovlen, control, controllen) = (w(&h, 0), w(&h, 8) as u32 as u64, w(&h, 16), w(&h, 24), w(&h, 32), w(&h, 40));
    if iovlen > 1024 {
        return Err(-(libc::EMSGSIZE as i64));
    }
    let iovs = copy_in(iov, (iovlen * 16) as usize)?;
    for c in iovs.chunks(16) {
        user(w(c, 0), w(c, 8))?;
    }
    h[16..24].copy_from_slice(&(iovs.as_ptr() as u64).to_le_bytes());
    let mut name_copy = (Vec::new(), None);
    let mut ctl_copy = Vec::new();
    if n == libc::SYS_sendmsg {
        let mut sock = sock;
        let mut private = None;
        if name != 0 && namelen != 0 {
            name_copy = checked_addr(NetOp::Send, "sendmsg", name, namelen)?;
            h[0..8].copy_from_slice(&(name_copy.0.as_ptr() as u64).to_le_bytes());
            h[8..12].copy_from_slice(&(name_copy.0.len() as u32).to_le_bytes());
            let p = fdtable::private(sock)?;
            implicit_bind("sendmsg", &p)?;
            sock = p.as_raw_fd() as u64;
            private = Some(p);
        }
        if control == 0 && controllen != 0 {
            // Linux would read the length's worth from address 0: never passed on.
            return Err(-(libc::EFAULT as i64));
        }
        if control != 0 && controllen != 0 {
            if controllen > 4096 {
                return Err(-(libc::ENOBUFS as i64));
            }
            ctl_copy = copy_in(control, controllen as usize)?;
            check_control(&ctl_copy)?;
            h[32..40].copy_from_slice(&(ctl_copy.as_ptr() as u64).to_le_bytes());
        }
        let r = raw(n, [sock, h.as_ptr() as u64, flags, 0, 0, 0]);
        drop((name_copy, ctl_copy, private));
        return ret(r);
    }
    opt(name, namelen)?;
    opt(control, controllen)?;
    // Control messages are received into the monitor's buffer: descriptors that come
    // in them are noted as shared with the outside before the program sees them.
    let mut ctl = vec![0u8; (controllen as usize).min(64 << 10)];
    if control != 0 {
        h[32..40].copy_from_slice(&(ctl.as_mut_ptr() as u64).to_le_bytes());
        h[40..48].copy_from_slice(&(ctl.len() as u64).to_le_bytes());
    } else {
        // No buffer, no length: Linux gets no pointer of the program's at all (it
        // drops what would not fit, as it does for a null buffer).
        h[40..48].copy_from_slice(&0u64.to_le_bytes());
    }
    let r = if control != 0 {
        receive_noted(sock, &mut h, flags)?
    } else {
        ret(raw(n, [sock, h.as_ptr() as u64, flags, 0, 0, 0]))?
    };
    let got = (u64::from_le_bytes(h[40..48].try_into().unwrap_or_default()) as usize).min(ctl.len());
    if control != 0 && !write_user(control, &ctl[..got]) {
        return Err(-(libc::EFAULT as i64));
    }
    // Copy back what recvmsg updates in the header.
    if !write_user(addr + 8, &h[8..12]) || !write_user(addr + 40, &h[40..48]) || !write_user(addr + 48, &h[48..52]) {
        return Err(-(libc::EFAULT as i64));
    }
    Ok(r)
}

/// `recvmsg` with a control buffer: descriptors in it are noted as shared with the
/// outside before any sibling can take them for the program's (see
/// [`fdtable::Receiving`]). The receive itself never waits, since it holds the lock:
/// a blocking one first waits for the socket to be readable (for at most its
/// `SO_RCVTIMEO`), then tries again, as often as another reader takes the message.
fn receive_noted(sock: u64, h: &mut [u8], flags: u64) -> R {
    let p = fdtable::private(sock)?;
    let s = p.as_raw_fd() as u64;
    // SAFETY: F_GETFL only reads the open file's status flags.
    let nonblocking = flags & libc::MSG_DONTWAIT as u64 != 0 || unsafe { libc::fcntl(p.as_raw_fd(), libc::F_GETFL) } & libc::O_NONBLOCK != 0;
    let mut tv = [0u64; 2];
    let mut len = 16u32;
    // SAFETY: getsockopt writes at most `len` bytes into the local.
    let timeout_ms = match unsafe { libc::getsockopt(p.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, tv.as_mut_ptr().cast(), &mut len) } {
        0 if tv != [0, 0] => (tv[0].saturating_mul(1000).saturating_add(tv[1].div_ceil(1000))).min(i32::MAX as u64) as i32,
        _ => -1,
    };
    let room: [u8; 8] = h[40..48].try_into().unwrap_or_default();
    loop {
        h[40..48].copy_from_slice(&room);
        if !nonblocking {
            let mut pfd = libc::pollfd { fd: p.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            match raw(libc::SYS_poll, [&mut pfd as *mut libc::pollfd as u64, 1, timeout_ms as u64, 0, 0, 0]) {
                0 => return Err(-(libc::EAGAIN as i64)),
                r if r < 0 => return Err(r),
                _ => {}
            }
        }
        let mut g = fdtable::receiving();
        let r = raw(libc::SYS_recvmsg, [s, h.as_mut_ptr() as u64, flags | libc::MSG_DONTWAIT as u64, 0, 0, 0]);
        if r >= 0 {
            let ctl = u64::from_le_bytes(h[32..40].try_into().unwrap_or_default());
            let got = u64::from_le_bytes(h[40..48].try_into().unwrap_or_default()).min(u64::from_le_bytes(room)) as usize;
            // SAFETY: the kernel wrote `got` bytes (at most the buffer's length) of
            // control messages into the monitor's buffer the header points at.
            let ctl = unsafe { core::slice::from_raw_parts(ctl as *const u8, got) };
            let fds = fdtable::received(ctl);
            if fds.iter().any(|&f| f >= fdtable::program_limit()) {
                // Placed at the runtime's numbers in a moment its limit was raised (see
                // `calls::within_limit`): they go, as if there had been no room.
                for f in fds {
                    // SAFETY: descriptors this receive just made; the program never saw them.
                    unsafe { libc::close(f) };
                }
                h[40..48].copy_from_slice(&0u64.to_le_bytes());
                let fl = u32::from_le_bytes(h[48..52].try_into().unwrap_or_default()) | libc::MSG_CTRUNC as u32;
                h[48..52].copy_from_slice(&fl.to_le_bytes());
                return Ok(r);
            }
            g.note(ctl);
            return Ok(r);
        }
        if nonblocking || r != -(libc::EAGAIN as i64) {
            return Err(r);
        }
    }
}

/// Socket types and protocols the sandbox knows: stream, datagram and (unix)
/// sequenced-packet sockets with their default protocol or its number; only the
/// `SOCK_NONBLOCK` and `SOCK_CLOEXEC` flags. Not raw or packet sockets (`SOCK_RAW`,
/// `SOCK_PACKET`), ICMP ("ping") sockets, SCTP, MPTCP or UDP-Lite.
fn socket_kind(dom: i32, ty: i32, proto: i32) -> Result<(), &'static str> {
    if ty & !(0xf | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
        return Err("flags other than SOCK_NONBLOCK and SOCK_CLOEXEC");
    }
    let ok = match (dom, ty & 0xf) {
        (libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_DGRAM | libc::SOCK_SEQPACKET) => proto == 0 || proto == libc::PF_UNIX,
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_STREAM) => proto == 0 || proto == libc::IPPROTO_TCP,
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_DGRAM) => proto == 0 || proto == libc::IPPROTO_UDP,
        _ => false,
    };
    if ok { Ok(()) } else { Err("only stream and datagram sockets (and unix sequenced packets) with their own protocol") }
}

/// Socket options by level and name. Read and written alike unless `get_only`; not
/// here: options whose values hold pointers the kernel follows (`TCP_ZEROCOPY_RECEIVE`,
/// the iptables and ip6tables tables), that attach programs (socket filters, eBPF),
/// that need privileges the program does not have (`SO_MARK`, `IP_TRANSPARENT`,
/// `TCP_REPAIR`, forced buffer sizes) or reach past the socket (`SO_BINDTODEVICE`,
/// `SO_PEERPIDFD` and `SO_PASSPIDFD`, which hand out pidfds of other processes,
/// `TCP_ULP`), or send packets to addresses no rule names (`IP_OPTIONS` with a source
/// route, `IP_RETOPTS`, IPv6 routing headers and next hops).
fn sockopt_allowed(level: i32, name: i32, set: bool) -> bool {
    // Not SO_PASSCRED (16) or SO_PASSSEC (34): on an unbound unix socket they make
    // `connect` and `sendmsg` autobind it to an abstract name.
    const SOCKET: &[i32] = &[2, 5, 6, 7, 8, 9, 10, 12, 13, 15, 18, 19, 20, 21, 29, 35, 37, 40, 42, 43, 46, 47, 49, 60, 61, 63, 64, 65, 66, 67, 69, 70, 72, 73, 74, 75];
    const SOCKET_GET: &[i32] = &[3, 4, 17, 28, 30, 31, 38, 39, 55, 56, 57, 59, 71];
    const TCP: &[i32] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 16, 17, 18, 23, 24, 25, 27, 30, 34, 36, 37];
    const TCP_GET: &[i32] = &[11, 26, 28];
    const IP: &[i32] = &[1, 2, 6, 8, 10, 11, 12, 13, 15, 18, 20, 22, 23, 24, 25, 26, 32, 33, 34, 35, 36, 51];
    const IP_GET: &[i32] = &[14];
    const IPV6: &[i32] = &[16, 17, 18, 19, 20, 21, 23, 25, 26, 49, 50, 51, 52, 66, 67, 70, 72, 73, 74, 76, 77, 78];
    const IPV6_GET: &[i32] = &[24];
    const UDP: &[i32] = &[1, 101, 102, 103, 104];
    let (both, get): (&[i32], &[i32]) = match level {
        libc::SOL_SOCKET => (SOCKET, SOCKET_GET),
        libc::IPPROTO_TCP => (TCP, TCP_GET),
        libc::IPPROTO_IP => (IP, IP_GET),
        libc::IPPROTO_IPV6 => (IPV6, IPV6_GET),
        libc::IPPROTO_UDP => (UDP, &[]),
        _ => return false,
    };
    // Joining a multicast group (IP_ADD_MEMBERSHIP, IPV6_ADD_MEMBERSHIP) changes the
    // machine's memberships and sends IGMP or MLD reports naming a group the program
    // chose: only in a network namespace of the sandbox's own.
    let join = (level == libc::IPPROTO_IP && name == libc::IP_ADD_MEMBERSHIP) || (level == libc::IPPROTO_IPV6 && name == libc::IPV6_ADD_MEMBERSHIP);
    if join && set && !PRIVATE_NETWORK.load(core::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    both.contains(&name) || (!set && get.contains(&name))
}

/// The family of socket `p` when it is an IP socket.
fn ip_family(p: &OwnedFd) -> Option<i32> {
    let (mut dom, mut len) = (0i32, 4u32);
    let r = raw(libc::SYS_getsockopt, [p.as_raw_fd() as u64, libc::SOL_SOCKET as u64, libc::SO_DOMAIN as u64, &mut dom as *mut i32 as u64, &mut len as *mut u32 as u64, 0]);
    (r == 0 && matches!(dom, libc::AF_INET | libc::AF_INET6)).then_some(dom)
}

/// The wildcard address of family `fam`, port 0, as a raw `struct sockaddr`.
fn wildcard(fam: i32) -> Vec<u8> {
    let mut w = vec![0u8; if fam == libc::AF_INET { 16 } else { 28 }];
    w[0..2].copy_from_slice(&(fam as u16).to_ne_bytes());
    w
}

/// Checks the bind an operation makes on socket `p` (the monitor's duplicate) when it
/// is an unbound IP socket: the wildcard address of its family, port 0.
fn implicit_bind(call: &str, p: &OwnedFd) -> Result<(), i64> {
    let mut ss = [0u8; 128];
    let mut len = ss.len() as u32;
    if raw(libc::SYS_getsockname, [p.as_raw_fd() as u64, ss.as_mut_ptr() as u64, &mut len as *mut u32 as u64, 0, 0, 0]) < 0 {
        return Ok(());
    }
    let fam = u16::from_ne_bytes([ss[0], ss[1]]) as i32;
    if !matches!(fam, libc::AF_INET | libc::AF_INET6) || (u16::from_be_bytes([ss[2], ss[3]]) != 0 && !in_black_hole(p)) {
        return Ok(());
    }
    implicit_bind_of(call, fam, p)
}

/// Whether `sa` is IPv6's unspecified address `::`.
fn is_v6_wildcard(sa: &[u8]) -> bool {
    sa.len() >= 24 && u16::from_ne_bytes([sa[0], sa[1]]) as i32 == libc::AF_INET6 && sa[8..24] == [0; 16]
}

/// Whether the rules allow binding IPv4's wildcard address at `port` (0: a port the
/// kernel picks).
fn v4_wildcard_allowed(port: u16) -> bool {
    let mut w = wildcard(libc::AF_INET);
    w[2..4].copy_from_slice(&port.to_be_bytes());
    m().policy.net().check(NetOp::Bind, &w).is_ok()
}

/// Before IPv6 socket `p` is bound to `::` at `port`: Linux's default (dual stack)
/// would take IPv4 connections and datagrams there too, which an IPv6 rule does not
/// allow; unless IPv4's wildcard at that port is allowed as well, the socket becomes
/// IPv6-only first (the program cannot turn that back: `setsockopt(IPV6_V6ONLY, 0)` is
/// refused unless IPv4's wildcard is allowed at any port).
fn v6_only_unless_v4_allowed(p: &OwnedFd, port: u16) -> Result<(), i64> {
    if v4_wildcard_allowed(port) {
        return Ok(());
    }
    let one: i32 = 1;
    let r = raw(libc::SYS_setsockopt, [p.as_raw_fd() as u64, libc::IPPROTO_IPV6 as u64, libc::IPV6_V6ONLY as u64, &one as *const i32 as u64, 4, 0]);
    // A socket bound already refuses the change (EINVAL) and keeps its binding.
    if r < 0 && r != -(libc::EINVAL as i64) {
        return Err(r);
    }
    Ok(())
}

/// A datagram socket that would otherwise be unbound and unconnected is connected to
/// a "black hole" instead: a socket of the monitor's own on loopback (one per family,
/// at its reserved numbers, bound to a port the kernel picked, never read and never
/// sending). Linux binds an unbound datagram socket to the wildcard address, where
/// anyone may send to it, on every path that sends or connects (before routing,
/// before most errors); a socket connected to the black hole is bound to loopback and
/// takes datagrams from that peer only: from nobody, since no other socket can have its
/// address and port. What the program sends there stays in the sandbox (a capture of
/// loopback, which needs privileges, sees it). The program's `connect` and `bind`
/// replace the black hole; to the program it looks unbound and unconnected
/// (`getsockname`, `getpeername`).
static HOLES: std::sync::OnceLock<[Option<Hole>; 2]> = std::sync::OnceLock::new();

/// A black hole: the monitor's socket (kept open) and its address.
type Hole = (OwnedFd, Vec<u8>);

/// The sandbox has a network namespace of its own (no network rule): nothing outside
/// can reach its sockets, and no black hole is needed.
static PRIVATE_NETWORK: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Makes the black holes (before the program runs; after the network namespace is
/// decided: `private` when the sandbox has one of its own). A family without one (no
/// loopback address of it) gets no datagram sockets where the implicit binding is not
/// allowed.
pub fn make_black_holes(private: bool) {
    PRIVATE_NETWORK.store(private, core::sync::atomic::Ordering::Relaxed);
    if private {
        return;
    }
    let make = |fam: i32| -> Option<Hole> {
        let s = raw(libc::SYS_socket, [fam as u64, (libc::SOCK_DGRAM | libc::SOCK_CLOEXEC) as u64, 0, 0, 0, 0]);
        if s < 0 {
            return None;
        }
        // SAFETY: the descriptor socket() just made, owned here alone.
        let s = unsafe { fdtable::adopt(s as i32) };
        let mut lo = wildcard(fam);
        if fam == libc::AF_INET {
            lo[4..8].copy_from_slice(&[127, 0, 0, 1]);
        } else {
            lo[23] = 1;
        }
        let small: i32 = 1;
        raw(libc::SYS_setsockopt, [s.as_raw_fd() as u64, libc::SOL_SOCKET as u64, libc::SO_RCVBUF as u64, &small as *const i32 as u64, 4, 0]);
        if raw(libc::SYS_bind, [s.as_raw_fd() as u64, lo.as_ptr() as u64, lo.len() as u64, 0, 0, 0]) < 0 {
            return None;
        }
        let addr = sockaddr_of(&s, false)?;
        let s = libdune::runtime::dup_reserved(s.as_fd()).ok()?;
        Some((s, addr))
    };
    let _ = HOLES.set([make(libc::AF_INET), make(libc::AF_INET6)]);
}

/// The black hole's address for family `fam`.
fn black_hole(fam: i32) -> Option<&'static [u8]> {
    let holes = HOLES.get()?;
    holes[usize::from(fam == libc::AF_INET6)].as_ref().map(|h| h.1.as_slice())
}

fn sockaddr_of(p: &OwnedFd, peer: bool) -> Option<Vec<u8>> {
    let mut ss = [0u8; 128];
    let mut len = ss.len() as u32;
    let nr = if peer { libc::SYS_getpeername } else { libc::SYS_getsockname };
    (raw(nr, [p.as_raw_fd() as u64, ss.as_mut_ptr() as u64, &mut len as *mut u32 as u64, 0, 0, 0]) == 0).then(|| ss[..(len as usize).min(ss.len())].to_vec())
}

/// Whether socket `p` is connected to the black hole.
fn in_black_hole(p: &OwnedFd) -> bool {
    let Some(hole) = ip_family(p).and_then(black_hole) else { return false };
    sockaddr_of(p, true).is_some_and(|a| same_address(&a, hole))
}

/// Whether two IP socket addresses name the same address and port.
fn same_address(a: &[u8], b: &[u8]) -> bool {
    a.len() >= 8 && b.len() >= 8 && a[..4] == b[..4] && if u16::from_ne_bytes([a[0], a[1]]) as i32 == libc::AF_INET { a[4..8] == b[4..8] } else { a.len() >= 24 && b.len() >= 24 && a[8..24] == b[8..24] }
}

fn datagram(p: &OwnedFd) -> bool {
    let (mut ty, mut len) = (0i32, 4u32);
    raw(libc::SYS_getsockopt, [p.as_raw_fd() as u64, libc::SOL_SOCKET as u64, libc::SO_TYPE as u64, &mut ty as *mut i32 as u64, &mut len as *mut u32 as u64, 0]) == 0 && ty == libc::SOCK_DGRAM
}

/// Connects datagram socket `p` of family `fam` to the black hole, then discards
/// whatever reached it before (while it was bound to the wildcard address, if a
/// sibling thread sent on it first). False when there is no black hole of `fam`.
fn into_black_hole(p: BorrowedFd<'_>, fam: i32) -> bool {
    let Some(b) = black_hole(fam) else { return false };
    raw(libc::SYS_connect, [p.as_raw_fd() as u64, b.as_ptr() as u64, b.len() as u64, 0, 0, 0]);
    purge(p, None);
    true
}

/// Discards the datagrams queued on `p` that do not come from `peer` (all of them
/// without one): they arrived while the socket was bound where anyone could send to it.
fn purge(p: BorrowedFd<'_>, peer: Option<&[u8]>) {
    let mut sink = [0u8; 64];
    loop {
        let mut from = [0u8; 128];
        let mut len = from.len() as u32;
        let r = raw(libc::SYS_recvfrom, [p.as_raw_fd() as u64, sink.as_mut_ptr() as u64, sink.len() as u64, (libc::MSG_DONTWAIT | libc::MSG_PEEK) as u64, from.as_mut_ptr() as u64, &mut len as *mut u32 as u64]);
        if r < 0 {
            return;
        }
        if peer.is_some_and(|peer| same_address(&from[..(len as usize).min(128)], peer)) {
            return;
        }
        raw(libc::SYS_recvfrom, [p.as_raw_fd() as u64, sink.as_mut_ptr() as u64, sink.len() as u64, libc::MSG_DONTWAIT as u64, 0, 0]);
    }
}

/// `connect(AF_UNSPEC)`: dissolves a connection (and an implicit binding).
fn disconnect(p: &OwnedFd) {
    let unspec = [0u8; 16];
    raw(libc::SYS_connect, [p.as_raw_fd() as u64, unspec.as_ptr() as u64, 2, 0, 0, 0]);
}

/// Whether `sa` is an IPv6 address mapped from IPv4 (`::ffff:a.b.c.d`).
fn v4_mapped(sa: &[u8]) -> bool {
    sa.len() >= 24 && u16::from_ne_bytes([sa[0], sa[1]]) as i32 == libc::AF_INET6 && sa[8..18] == [0; 10] && sa[18..20] == [0xff, 0xff]
}

fn set_v6only(p: &OwnedFd, on: bool) {
    let v: i32 = on.into();
    raw(libc::SYS_setsockopt, [p.as_raw_fd() as u64, libc::IPPROTO_IPV6 as u64, libc::IPV6_V6ONLY as u64, &v as *const i32 as u64, 4, 0]);
}

/// `connect` to `sa` (checked) on the program's socket `sock`. A datagram socket in
/// the black hole leaves it first and goes back if the connect fails; what reached it
/// from anyone but its new peer meanwhile is discarded. An IPv6 socket connecting to
/// an IPv4-mapped address is made dual stack for it (a connected socket takes its
/// peer's traffic only).
fn connect_checked(p: OwnedFd, sa: &[u8]) -> R {
    let fam = ip_family(&p);
    let hole = fam.is_some() && datagram(&p) && in_black_hole(&p);
    if hole {
        disconnect(&p);
    }
    let dual = fam == Some(libc::AF_INET6) && v4_mapped(sa) && local_port(&p) == Some(0);
    if dual {
        set_v6only(&p, false);
    }
    let r = raw(libc::SYS_connect, [p.as_raw_fd() as u64, sa.as_ptr() as u64, sa.len() as u64, 0, 0, 0]);
    // A connect that failed outright may have left the socket bound to `::` (Linux
    // binds before routing), dual stack: unbound again (the binding was implicit),
    // what IPv4 brought meanwhile discarded, IPv6-only again. A connection still
    // under way (EINPROGRESS, or interrupted) takes its peer's traffic only.
    let failed = r < 0 && !matches!(-r as i32, libc::EINPROGRESS | libc::EALREADY | libc::EINTR);
    if dual && failed && !v4_wildcard_allowed(0) {
        if datagram(&p) {
            disconnect(&p);
            purge(p.as_fd(), None);
        }
        set_v6only(&p, true);
    }
    if hole {
        if r < 0 {
            into_black_hole(p.as_fd(), fam.unwrap_or(libc::AF_INET));
        } else {
            purge(p.as_fd(), Some(sa));
        }
    }
    ret(r)
}

/// `shutdown`: not on a socket the sandbox was started with (the connection is the
/// processes' outside too: their reads would end, their writes fail).
pub fn shutdown(n: i64, a: [u64; 6]) -> R {
    let p = fdtable::own_file(a[0], &format!("shutdown({})", a[0] as i32))?;
    ret(raw(n, [p.as_raw_fd() as u64, a[1], 0, 0, 0, 0]))
}

/// The port socket `p` reports (0: unbound).
fn local_port(p: &OwnedFd) -> Option<u16> {
    sockaddr_of(p, false).filter(|a| a.len() >= 4).map(|a| u16::from_be_bytes([a[2], a[3]]))
}

/// Whether the rules allow the kernel's implicit bind of family `fam`.
fn implicit_bind_allowed(fam: i32) -> bool {
    m().policy.net().check(NetOp::Bind, &wildcard(fam)).is_ok()
}

/// A new IP socket `s` of the program's (`ty`: its type), made while a pin holds the
/// numbers: an IPv6 one is IPv6-only unless IPv4's wildcard may be bound at any port
/// (Linux's dual stack would take IPv4 on every binding of `::`, the kernel's implicit
/// ones included); a datagram one goes to the black hole unless the implicit binding
/// of the wildcard is allowed.
fn new_ip_socket(s: i32, fam: i32, ty: i32) -> Result<(), i64> {
    // SAFETY: `s` was just made by socket() and the pin keeps it at its number.
    let b = unsafe { BorrowedFd::borrow_raw(s) };
    if fam == libc::AF_INET6 && !v4_wildcard_allowed(0) {
        let one: i32 = 1;
        raw(libc::SYS_setsockopt, [s as u64, libc::IPPROTO_IPV6 as u64, libc::IPV6_V6ONLY as u64, &one as *const i32 as u64, 4, 0]);
    }
    if ty & 0xf == libc::SOCK_DGRAM && !implicit_bind_allowed(fam) && !PRIVATE_NETWORK.load(core::sync::atomic::Ordering::Relaxed) && !into_black_hole(b, fam) {
        // No black hole of this family: no such socket either.
        raw(libc::SYS_close, [s as u64, 0, 0, 0, 0, 0]);
        return Err(-(libc::EAFNOSUPPORT as i64));
    }
    Ok(())
}

/// Checks the bind of the wildcard address of family `fam`, port 0, that the kernel
/// makes of unbound socket `p`; an IPv6 socket becomes IPv6-only first unless IPv4's
/// wildcard is allowed too ([`v6_only_unless_v4_allowed`]).
fn implicit_bind_of(call: &str, fam: i32, p: &OwnedFd) -> Result<(), i64> {
    match m().policy.net().check(NetOp::Bind, &wildcard(fam)) {
        Ok(_) if fam == libc::AF_INET6 => v6_only_unless_v4_allowed(p, 0),
        Ok(_) => Ok(()),
        Err(e) => {
            let addr = if fam == libc::AF_INET { "0.0.0.0" } else { "[::]" };
            deny(&format!("{call} on an unbound socket (binds it to {addr}, a port the kernel picks)"), "not allowed by the network rules (bind)", e.0).map(|_| ())
        }
    }
}

/// IP sockets the program bound itself, through a checked `bind`, by inode number
/// (the kernel's identity of a socket: no renumbering changes it), plus those it
/// started with (bound by whoever handed them over). At most [`MAX_BOUND`]; the oldest
/// go first, and a socket forgotten is treated as unbound (refused, not allowed).
static BOUND: std::sync::Mutex<std::collections::VecDeque<u64>> = std::sync::Mutex::new(std::collections::VecDeque::new());
const MAX_BOUND: usize = 4096;

fn inode(p: &OwnedFd) -> Option<u64> {
    // SAFETY: fstat writes one struct stat into the local; a bad descriptor is an error.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    (unsafe { libc::fstat(p.as_raw_fd(), &mut st) } == 0).then_some(st.st_ino)
}

/// The lock of the bound sockets' list, held across `fork` (see `procs::fork`).
pub fn lock_bound() -> impl Sized {
    BOUND.lock().unwrap_or_else(|e| e.into_inner())
}

fn note_bound(p: &OwnedFd) {
    let Some(ino) = inode(p) else { return };
    let mut b = BOUND.lock().unwrap_or_else(|e| e.into_inner());
    if !b.contains(&ino) {
        if b.len() >= MAX_BOUND {
            b.pop_front();
        }
        b.push_back(ino);
    }
}

/// Records the IP sockets among the descriptors the sandbox starts with as bound
/// (before the program runs).
pub fn note_inherited_sockets() {
    for f in 0..64 {
        // SAFETY: the number is only borrowed for the duplication; if it is not open
        // the call fails.
        let Ok(p) = libdune::runtime::dup_reserved(unsafe { std::os::fd::BorrowedFd::borrow_raw(f) }) else { continue };
        if ip_family(&p).is_some() {
            note_bound(&p);
        }
    }
}

/// `listen` binds what is not bound. `getsockname` is no proof that a socket is
/// bound: after a refused `connect` an implicitly bound TCP socket has given its port
/// back but still reports it. So only a socket the program bound through a checked
/// `bind` (it keeps that address, and that port unless it asked for port 0) listens
/// where it is; any other IP socket is taken as unbound, and `listen` would bind it to
/// the wildcard address and a port the kernel picks, which the rules must allow.
fn bound_for_listen(p: &OwnedFd) -> Result<(), i64> {
    let Some(fam) = ip_family(p) else { return Ok(()) };
    let bound = inode(p).is_some_and(|i| BOUND.lock().unwrap_or_else(|e| e.into_inner()).contains(&i));
    if bound {
        return Ok(());
    }
    implicit_bind_of("listen", fam, p)
}

/// For a call that writes a value and its length (`addr`, `*lenp`): a monitor buffer
/// of the program's length (at most 4 KiB) and that length, or `None` when `addr`
/// is null.
fn out_addr(addr: u64, lenp: u64) -> Result<Option<(Vec<u8>, u32)>, i64> {
    if addr == 0 {
        return Ok(None);
    }
    let l = copy_in(lenp, 4)?;
    let len = u32::from_le_bytes(l[..4].try_into().unwrap_or_default());
    if len > 4096 {
        return Err(-(libc::EINVAL as i64));
    }
    user(addr, len as u64)?;
    Ok(Some((vec![0u8; len as usize], len)))
}

/// A value the kernel writes out whose length it reads and writes back even when the
/// value's pointer is null (`getsockname`, `getpeername`, `getsockopt`): monitor
/// copies of both, always. The program's length pointer never reaches the kernel,
/// which would read and write it anywhere in the process. With a null value pointer
/// the kernel gets a null one too (and answers as it would: EFAULT for a non-zero
/// length, the full length written back for zero).
struct OutValue {
    addr: u64,
    lenp: u64,
    buf: Vec<u8>,
    len: u32,
}

impl OutValue {
    fn new(addr: u64, lenp: u64) -> Result<OutValue, i64> {
        match out_addr(addr, lenp)? {
            Some((buf, len)) => Ok(OutValue { addr, lenp, buf, len }),
            None => {
                let l = copy_in(lenp, 4)?;
                Ok(OutValue { addr, lenp, buf: Vec::new(), len: u32::from_le_bytes(l[..4].try_into().unwrap_or_default()) })
            }
        }
    }

    /// The pointers the kernel gets: the monitor's buffer (null for a null value)
    /// and the monitor's length.
    fn ptrs(&mut self) -> (u64, u64) {
        (if self.addr == 0 { 0 } else { self.buf.as_mut_ptr() as u64 }, &mut self.len as *mut u32 as u64)
    }

    /// After a call that succeeded: the value (if any) and the length, copied out.
    fn copy_out(&self) -> Result<(), i64> {
        if self.addr == 0 {
            return if write_user(self.lenp, &self.len.to_le_bytes()) { Ok(()) } else { Err(-(libc::EFAULT as i64)) };
        }
        copy_out_addr(self.addr, self.lenp, &self.buf, self.len)
    }
}

/// Copies the value (cut to the buffer, as the kernel does) and its full length out.
fn copy_out_addr(addr: u64, lenp: u64, buf: &[u8], len: u32) -> Result<(), i64> {
    let n = (len as usize).min(buf.len());
    if !write_user(addr, &buf[..n]) || !write_user(lenp, &len.to_le_bytes()) {
        return Err(-(libc::EFAULT as i64));
    }
    Ok(())
}

/// Control messages a `sendmsg` may carry, by allowlist: descriptors
/// (`SCM_RIGHTS`, each the program's), credentials (`SCM_CREDENTIALS`, which the
/// kernel checks against the sender's), timestamping, the source address and
/// interface (`IP_PKTINFO`, `IPV6_PKTINFO`), hop limit, traffic class, `IPV6_DONTFRAG`
/// and UDP segmentation. Not IP options (`IP_RETOPTS`: a source route), IPv6 routing,
/// hop-by-hop or destination headers, or a next hop: each sends the packet to, or
/// through, an address no rule names.
fn check_control(ctl: &[u8]) -> Result<(), i64> {
    let mut at = 0usize;
    while at + 16 <= ctl.len() {
        let len = u64::from_le_bytes(ctl[at..at + 8].try_into().unwrap_or_default()) as usize;
        let level = i32::from_le_bytes(ctl[at + 8..at + 12].try_into().unwrap_or_default());
        let kind = i32::from_le_bytes(ctl[at + 12..at + 16].try_into().unwrap_or_default());
        if len < 16 || len > ctl.len() - at {
            return Err(-(libc::EINVAL as i64));
        }
        let allowed = match level {
            libc::SOL_SOCKET => matches!(kind, libc::SCM_RIGHTS | libc::SCM_CREDENTIALS | libc::SO_TIMESTAMPING),
            libc::IPPROTO_IP => matches!(kind, libc::IP_TOS | libc::IP_TTL | libc::IP_PKTINFO),
            // IPV6_2292PKTINFO, IPV6_2292HOPLIMIT, IPV6_PKTINFO, IPV6_HOPLIMIT,
            // IPV6_DONTFRAG, IPV6_TCLASS.
            libc::IPPROTO_IPV6 => matches!(kind, 2 | 8 | 50 | 52 | 62 | 67),
            // UDP_SEGMENT.
            libc::IPPROTO_UDP => kind == 103,
            _ => false,
        };
        if !allowed {
            return deny(&format!("sendmsg with a control message of level {level}, type {kind}"), "control message not in the sandbox's list", libc::EINVAL).map(|_| ());
        }
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            for f in ctl[at + 16..at + len].chunks_exact(4) {
                fd(i32::from_le_bytes(f.try_into().unwrap_or_default()) as u64)?;
            }
        }
        at = at.saturating_add((len + 7) & !7);
    }
    Ok(())
}

//! Socket calls: addresses the program binds, connects or sends to are copied in and
//! checked against the policy's network rules (the paper's firewall); `AF_UNIX`
//! paths go through the path rules and are then reached through the resolver's
//! directory descriptor (`/proc/self/fd/N/name`), not the program's string.

use std::os::fd::AsRawFd;

use super::calls::{copy_in, deny, fd, opt, raw, user, write_user, R};
use super::m;
use crate::policy::net::NetOp;
use crate::policy::ResolvedPath;

const MAX_ADDR: u64 = 128;

fn ret(r: i64) -> R {
    if r < 0 && r > -4096 { Err(r) } else { Ok(r) }
}

/// Checks the address at `addr` (`len` bytes) for `op`; returns the bytes to pass
/// to Linux instead, and for a unix path the resolved entry, whose descriptors must
/// stay open until the call is made.
fn checked_addr(op: NetOp, call: &str, addr: u64, len: u64) -> Result<(Vec<u8>, Option<ResolvedPath>), i64> {
    if len > MAX_ADDR {
        return Err(-(libc::EINVAL as i64));
    }
    let sa = copy_in(addr, len as usize)?;
    let cwd = m().cwd.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match m().policy.check_sockaddr(op, &sa, &cwd) {
        Ok(None) => Ok((sa, None)),
        Ok(Some(r)) => {
            let Some(parent) = r.parent.as_ref() else { return Err(-(libc::EACCES as i64)) };
            let path = format!("/proc/self/fd/{}/{}", parent.as_raw_fd(), r.name.to_string_lossy());
            if path.len() >= 108 {
                return Err(-(libc::ENAMETOOLONG as i64));
            }
            let mut out = vec![0u8; 2 + path.len() + 1];
            out[0..2].copy_from_slice(&(libc::AF_UNIX as u16).to_le_bytes());
            out[2..2 + path.len()].copy_from_slice(path.as_bytes());
            Ok((out, Some(r)))
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
        SYS_socket => {
            let dom = a[0] as i32;
            if !matches!(dom, AF_UNIX | AF_INET | AF_INET6) {
                return deny(&format!("socket({dom}, ...)"), "only unix, inet and inet6 sockets", EAFNOSUPPORT);
            }
            ret(raw(n, a))
        }
        SYS_socketpair => {
            user(a[3], 8)?;
            if a[0] as i32 != AF_UNIX {
                return Err(-(EAFNOSUPPORT as i64));
            }
            ret(raw(n, a))
        }
        SYS_bind | SYS_connect => {
            fd(a[0])?;
            let op = if n == SYS_bind { NetOp::Bind } else { NetOp::Connect };
            let (sa, _keep) = checked_addr(op, if n == SYS_bind { "bind" } else { "connect" }, a[1], a[2])?;
            ret(raw(n, [a[0], sa.as_ptr() as u64, sa.len() as u64, 0, 0, 0]))
        }
        SYS_accept | SYS_accept4 | SYS_getsockname | SYS_getpeername => {
            fd(a[0])?;
            // The kernel reads the length when it writes the address, maybe long after
            // a check (accept blocks): it gets monitor copies of both, copied out after.
            let Some((mut buf, mut len)) = out_addr(a[1], a[2])? else { return ret(raw(n, a)) };
            let r = ret(raw(n, [a[0], buf.as_mut_ptr() as u64, &mut len as *mut u32 as u64, a[3], 0, 0]))?;
            copy_out_addr(a[1], a[2], &buf, len)?;
            Ok(r)
        }
        SYS_sendto => {
            fd(a[0])?;
            user(a[1], a[2])?;
            if a[4] == 0 {
                return ret(raw(n, a));
            }
            let (sa, _keep) = checked_addr(NetOp::Send, "sendto", a[4], a[5])?;
            ret(raw(n, [a[0], a[1], a[2], a[3], sa.as_ptr() as u64, sa.len() as u64]))
        }
        SYS_recvfrom => {
            fd(a[0])?;
            user(a[1], a[2])?;
            let Some((mut buf, mut len)) = out_addr(a[4], a[5])? else { return ret(raw(n, a)) };
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
                let hdr = a[1] + i * 64;
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
        SYS_setsockopt | SYS_getsockopt if dangerous_sockopt(a[1] as i32, a[2] as i32) => {
            deny(&format!("{}(.., {}, {})", if n == SYS_setsockopt { "setsockopt" } else { "getsockopt" }, a[1] as i32, a[2] as i32), "option whose value holds pointers the kernel follows", EPERM)
        }
        SYS_setsockopt => {
            fd(a[0])?;
            if a[4] > 4096 {
                return Err(-(EINVAL as i64));
            }
            // The value, copied: the kernel reads it once, from the monitor.
            let v = if a[3] != 0 { copy_in(a[3], a[4] as usize)? } else { Vec::new() };
            ret(raw(n, [a[0], a[1], a[2], if a[3] != 0 { v.as_ptr() as u64 } else { 0 }, a[4], 0]))
        }
        SYS_getsockopt => {
            fd(a[0])?;
            let Some((mut buf, mut len)) = out_addr(a[3], a[4])? else { return ret(raw(n, a)) };
            let r = ret(raw(n, [a[0], a[1], a[2], buf.as_mut_ptr() as u64, &mut len as *mut u32 as u64, 0]))?;
            copy_out_addr(a[3], a[4], &buf, len)?;
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
        if name != 0 && namelen != 0 {
            name_copy = checked_addr(NetOp::Send, "sendmsg", name, namelen)?;
            h[0..8].copy_from_slice(&(name_copy.0.as_ptr() as u64).to_le_bytes());
            h[8..12].copy_from_slice(&(name_copy.0.len() as u32).to_le_bytes());
        }
        if control != 0 && controllen != 0 {
            if controllen > 4096 {
                return Err(-(libc::ENOBUFS as i64));
            }
            ctl_copy = copy_in(control, controllen as usize)?;
            check_rights(&ctl_copy)?;
            h[32..40].copy_from_slice(&(ctl_copy.as_ptr() as u64).to_le_bytes());
        }
        let r = raw(n, [sock, h.as_ptr() as u64, flags, 0, 0, 0]);
        drop((name_copy, ctl_copy));
        return ret(r);
    }
    opt(name, namelen)?;
    opt(control, controllen)?;
    let r = ret(raw(n, [sock, h.as_ptr() as u64, flags, 0, 0, 0]))?;
    // Copy back what recvmsg updates in the header.
    if !write_user(addr + 8, &h[8..12]) || !write_user(addr + 40, &h[40..48]) || !write_user(addr + 48, &h[48..52]) {
        return Err(-(libc::EFAULT as i64));
    }
    Ok(r)
}

/// Socket options whose value the kernel treats as holding pointers, or that attach
/// programs: `TCP_ZEROCOPY_RECEIVE` (it writes to addresses in the value), the
/// classic and eBPF socket filters.
fn dangerous_sockopt(level: i32, name: i32) -> bool {
    (level == libc::IPPROTO_TCP && name == 35)
        || (level == libc::SOL_SOCKET && matches!(name, libc::SO_ATTACH_FILTER | libc::SO_ATTACH_BPF | 51 | 52 | libc::SO_DETACH_FILTER))
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

/// Copies the value (cut to the buffer, as the kernel does) and its full length out.
fn copy_out_addr(addr: u64, lenp: u64, buf: &[u8], len: u32) -> Result<(), i64> {
    let n = (len as usize).min(buf.len());
    if !write_user(addr, &buf[..n]) || !write_user(lenp, &len.to_le_bytes()) {
        return Err(-(libc::EFAULT as i64));
    }
    Ok(())
}

/// Descriptors passed with SCM_RIGHTS must be the program's.
fn check_rights(ctl: &[u8]) -> Result<(), i64> {
    let mut at = 0usize;
    while at + 16 <= ctl.len() {
        let len = u64::from_le_bytes(ctl[at..at + 8].try_into().unwrap_or_default()) as usize;
        let level = i32::from_le_bytes(ctl[at + 8..at + 12].try_into().unwrap_or_default());
        let kind = i32::from_le_bytes(ctl[at + 12..at + 16].try_into().unwrap_or_default());
        if len < 16 || len > ctl.len() - at {
            return Err(-(libc::EINVAL as i64));
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

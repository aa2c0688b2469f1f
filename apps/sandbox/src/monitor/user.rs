//! The program's memory as system-call arguments: whether a range is the program's,
//! and copies in and out of it from ring 0 ([`super::uaccess`] does the copying, this
//! checks the range against the program's space first).

use super::{state::m, uaccess};

const EFAULT: i64 = -(libc::EFAULT as i64);

const fn neg(e: i32) -> i64 {
    -(e as i64)
}

/// Whether `[addr, addr+len)` is the program's memory.
pub fn user(addr: u64, len: u64) -> Result<(), i64> {
    if m().space().contains(addr, len) { Ok(()) } else { Err(EFAULT) }
}

/// As [`user`], but a null pointer is fine (an optional argument).
pub fn opt(addr: u64, len: u64) -> Result<(), i64> {
    if addr == 0 { Ok(()) } else { user(addr, len) }
}

/// Reads program memory into `buf`; false if it is not the program's or faults.
pub fn read_user(addr: u64, buf: &mut [u8]) -> bool {
    m().space().contains(addr, buf.len() as u64) && uaccess::read(addr, buf)
}

/// Writes `data` to program memory; false if it is not the program's or faults.
pub fn write_user(addr: u64, data: &[u8]) -> bool {
    m().space().contains(addr, data.len() as u64) && uaccess::write(addr, data)
}

/// [`write_user`] as a call result.
pub fn copy_out(addr: u64, data: &[u8]) -> Result<(), i64> {
    if write_user(addr, data) { Ok(()) } else { Err(EFAULT) }
}

/// A copy of `len` bytes of program memory.
pub fn copy_in(addr: u64, len: usize) -> Result<Vec<u8>, i64> {
    let mut v = vec![0u8; len];
    if read_user(addr, &mut v) { Ok(v) } else { Err(EFAULT) }
}

/// The little-endian word at byte `i` of a copy (0 where the copy is short).
pub fn word(b: &[u8], i: usize) -> u64 {
    b.get(i..i + 8).and_then(|s| s.try_into().ok()).map_or(0, u64::from_le_bytes)
}

/// The little-endian 32-bit word at byte `i` of a copy (0 where the copy is short).
pub fn word32(b: &[u8], i: usize) -> u32 {
    b.get(i..i + 4).and_then(|s| s.try_into().ok()).map_or(0, u32::from_le_bytes)
}

/// A copy of the NUL-terminated string at `addr` (at most `max` bytes).
pub fn cstr_in(addr: u64, max: usize) -> Result<Vec<u8>, i64> {
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < max {
        let chunk = (4096 - (at % 4096)) as usize;
        let mut b = vec![0u8; chunk.min(max - out.len())];
        if !read_user(at, &mut b) {
            return Err(EFAULT);
        }
        if let Some(n) = b.iter().position(|&c| c == 0) {
            out.extend_from_slice(&b[..n]);
            return Ok(out);
        }
        out.extend_from_slice(&b);
        at += b.len() as u64;
    }
    Err(neg(libc::ENAMETOOLONG))
}

/// A C string for bytes the monitor checked (`EINVAL` if they hold a NUL).
pub fn c(bytes: &[u8]) -> Result<std::ffi::CString, i64> {
    std::ffi::CString::new(bytes.to_vec()).map_err(|_| neg(libc::EINVAL))
}

/// The I/O vectors `iov[0..n]`, copied in, each buffer checked to be the program's.
pub fn iovecs(addr: u64, n: u64) -> Result<Vec<u8>, i64> {
    if n > 1024 {
        return Err(neg(libc::EINVAL));
    }
    let v = copy_in(addr, (n * 16) as usize)?;
    for c in v.chunks(16) {
        user(word(c, 0), word(c, 8))?;
    }
    Ok(v)
}

//! The process's memory map (libdune's `procmap.c`): `/proc/self/maps`, line by line.
//!
//! Reads the whole file first (allocates): not for trap handlers.

use std::ffi::CString;

use crate::abi::{procmap_type as ty, ProcmapEntry};
use crate::guard;

/// `dune_procmap_cb`.
pub type ProcmapCb = unsafe extern "C" fn(e: *const ProcmapEntry);

/// The `PROCMAP_TYPE_*` of a path, as libdune's `get_type`.
pub fn type_of(path: &str) -> i32 {
    match path {
        "" => ty::ANONYMOUS,
        p if !p.starts_with('[') => ty::FILE,
        "[heap]" => ty::HEAP,
        p if p.starts_with("[stack") => ty::STACK,
        "[vsyscall]" => ty::VSYSCALL,
        "[vdso]" => ty::VDSO,
        "[vvar]" => ty::VVAR,
        _ => ty::UNKNOWN,
    }
}

/// One parsed line: the entry and its path (kept alive while the entry is used).
pub fn parse_line(line: &str) -> Option<(ProcmapEntry, CString)> {
    // begin-end perms offset dev inode [path]
    let mut f = line.splitn(6, ' ');
    let (range, perms, offset) = (f.next()?, f.next()?.as_bytes(), f.next()?);
    let (_dev, _inode) = (f.next()?, f.next()?);
    let path = f.next().unwrap_or("").trim_start();
    let (begin, end) = range.split_once('-')?;
    if perms.len() < 4 {
        return None;
    }
    let path = CString::new(path).ok()?;
    let mut e = ProcmapEntry {
        begin: usize::from_str_radix(begin, 16).ok()?,
        end: usize::from_str_radix(end, 16).ok()?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        r: perms[0] == b'r',
        w: perms[1] == b'w',
        x: perms[2] == b'x',
        p: perms[3] == b'p',
        path: core::ptr::null_mut(),
        r#type: type_of(path.to_str().unwrap_or("")),
    };
    e.path = path.as_ptr().cast_mut();
    Some((e, path))
}

/// `void dune_procmap_iterate(dune_procmap_cb cb)`.
#[no_mangle]
pub extern "C" fn dune_procmap_iterate(cb: Option<ProcmapCb>) {
    guard((), || {
        let Some(cb) = cb else { return };
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            crate::report("dune_procmap_iterate", &libdune::Error::ProcMaps("cannot read /proc/self/maps"));
            return;
        };
        for line in maps.lines() {
            if let Some((e, _path)) = parse_line(line) {
                // SAFETY: the program's callback, given an entry (and path) that live
                // until it returns.
                unsafe { cb(&e) };
            }
        }
    })
}

/// Prints one entry like libdune's `dune_procmap_dump`.
unsafe extern "C" fn dump_one(e: *const ProcmapEntry) {
    use core::fmt::Write;
    // SAFETY: called by dune_procmap_iterate with a valid entry.
    let e = unsafe { &*e };
    // SAFETY: the path is a NUL-terminated string alive during the call.
    let path = unsafe { std::ffi::CStr::from_ptr(e.path) }.to_string_lossy();
    let flag = |b: bool, c: char| if b { c } else { '-' };
    let mut o = crate::RawOut::new(1);
    let _ = writeln!(
        o,
        "0x{:016x}-0x{:016x} {}{}{}{} {:08x} {}",
        e.begin,
        e.end,
        flag(e.r, 'R'),
        flag(e.w, 'W'),
        flag(e.x, 'X'),
        if e.p { 'P' } else { 'S' },
        e.offset,
        path
    );
}

/// `void dune_procmap_dump(void)`: the map on standard output.
#[no_mangle]
pub extern "C" fn dune_procmap_dump() {
    crate::util::write_all(1, b"--- Process Map Dump ---\n");
    dune_procmap_iterate(Some(dump_one));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_as_libdune() {
        let (e, p) = parse_line("7fe598687000-7fe59881e000 r-xp 00197000 fe:00 917523                     /lib/libc-2.15.so").expect("parse");
        assert_eq!((e.begin, e.end, e.offset), (0x7fe5_9868_7000, 0x7fe5_9881_e000, 0x197000));
        assert!(e.r && !e.w && e.x && e.p);
        assert_eq!(p.to_str(), Ok("/lib/libc-2.15.so"));
        assert_eq!(e.r#type, ty::FILE);
        let (e, p) = parse_line("7fe598a24000-7fe598a28000 rw-s 00000000 00:00 0 ").expect("parse");
        assert_eq!((p.to_str(), e.r#type, e.p), (Ok(""), ty::ANONYMOUS, false));
        let (e, _) = parse_line("7fff601ca000-7fff601eb000 rw-p 00000000 00:00 0                          [stack]").expect("parse");
        assert_eq!(e.r#type, ty::STACK);
        assert!(parse_line("garbage").is_none());
    }

    #[test]
    fn types_follow_the_path() {
        assert_eq!(type_of("[heap]"), ty::HEAP);
        assert_eq!(type_of("[stack:123]"), ty::STACK);
        assert_eq!(type_of("[vsyscall]"), ty::VSYSCALL);
        assert_eq!(type_of("[vdso]"), ty::VDSO);
        assert_eq!(type_of("[vvar]"), ty::VVAR);
        assert_eq!(type_of("[anon:x]"), ty::UNKNOWN);
        assert_eq!(type_of("/bin/cat (deleted)"), ty::FILE);
    }

    static SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    unsafe extern "C" fn count(e: *const ProcmapEntry) {
        // SAFETY: a valid entry from dune_procmap_iterate.
        if unsafe { (*e).r#type } == ty::STACK {
            SEEN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn this_process_has_a_stack() {
        dune_procmap_iterate(Some(count));
        assert!(SEEN.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    }
}

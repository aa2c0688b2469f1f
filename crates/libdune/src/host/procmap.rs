//! Reading `/proc/self/maps` without allocating.
//!
//! The runtime reads the map on exit paths (a lazy page fault, a `shmat`) where the
//! guest thread may hold the allocator's lock, so lines are parsed from a fixed buffer.

use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use super::{reserved, sys};

/// One mapping of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vma {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// Shared (`s`) rather than private (`p`).
    pub shared: bool,
    /// The main thread's stack (`[stack]`), which grows down on faults.
    pub stack: bool,
    /// The `[vsyscall]` page, above the user address range.
    pub vsyscall: bool,
}

impl Vma {
    /// Accessible at all (not `---p`).
    pub fn accessible(&self) -> bool {
        self.read || self.write || self.exec
    }

}

/// Parses one line of `/proc/PID/maps`.
#[cfg(test)]
pub fn parse_line(line: &[u8]) -> Option<Vma> {
    parse_line_full(line).map(|(v, _)| v)
}

/// What a line says about the file behind a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRef<'a> {
    /// Offset of the mapping's first byte in the file.
    pub offset: u64,
    /// Inode number (0 for anonymous and special mappings).
    pub inode: u64,
    /// Path as the kernel prints it (may end in " (deleted)").
    pub path: &'a [u8],
}

/// Parses one line of `/proc/PID/maps`, with the file fields.
pub fn parse_line_full(line: &[u8]) -> Option<(Vma, FileRef<'_>)> {
    let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let range = fields.next()?;
    let perms = fields.next()?;
    let dash = range.iter().position(|&b| b == b'-')?;
    let start = parse_hex(&range[..dash])?;
    let end = parse_hex(&range[dash + 1..])?;
    if perms.len() < 4 || end < start {
        return None;
    }
    // offset, device, inode, then the optional path (which may contain spaces).
    let offset = parse_hex(fields.next()?)?;
    let _device = fields.next()?;
    let inode_field = fields.next()?;
    let inode = inode_field.iter().try_fold(0u64, |n, &c| c.is_ascii_digit().then(|| n * 10 + (c - b'0') as u64))?;
    let after_inode = inode_field.as_ptr() as usize + inode_field.len() - line.as_ptr() as usize;
    let rest = &line[after_inode..];
    let path = &rest[rest.iter().position(|&b| b != b' ').unwrap_or(rest.len())..];
    let file = FileRef { offset, inode, path };
    Some((Vma {
        start,
        end,
        read: perms[0] == b'r',
        write: perms[1] == b'w',
        exec: perms[2] == b'x',
        shared: perms[3] == b's',
        stack: path == b"[stack]",
        vsyscall: path == b"[vsyscall]",
    }, file))
}

fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &c| {
        let d = (c as char).to_digit(16)? as u64;
        Some(acc << 4 | d)
    })
}

/// Calls `f` for each mapping of the calling process, in address order.
/// Stops early when `f` returns `false`.
pub fn for_each(mut f: impl FnMut(&Vma) -> bool) -> Result<(), &'static str> {
    for_each_full(|v, _| f(v))
}

/// Like [`for_each`], with the file fields of each line.
pub fn for_each_full(mut f: impl FnMut(&Vma, &FileRef<'_>) -> bool) -> Result<(), &'static str> {
    let mut result = Ok(());
    let mut buf = [0u8; 8192];
    let mut have = 0usize;
    read_chunks(&mut buf, &mut have, &mut |buf, have| {
        let mut consumed = 0;
        while let Some(nl) = buf[consumed..*have].iter().position(|&b| b == b'\n') {
            let line = &buf[consumed..consumed + nl];
            consumed += nl + 1;
            match parse_line_full(line) {
                Some((vma, file)) => {
                    if !f(&vma, &file) {
                        return false;
                    }
                }
                None => {
                    result = Err("malformed line");
                    return false;
                }
            }
        }
        if consumed == 0 && *have == buf.len() {
            result = Err("line longer than the read buffer");
            return false;
        }
        buf.copy_within(consumed..*have, 0);
        *have -= consumed;
        true
    })?;
    result
}

/// The whole map as the kernel shows it, read on the host side (allocates: not for
/// exit paths that may hold the allocator's lock).
pub fn text() -> Result<Vec<u8>, &'static str> {
    text_through(own_fd().ok())
}

// ---- the map's descriptor -----------------------------------------------------------------
//
// The map is read through one descriptor the runtime keeps at its own numbers (above
// the program's limit, where the program cannot name, duplicate or list it). Opening
// it at each read would put it, for the length of the read, at the lowest free number
// of the table the program shares, where a sibling thread could duplicate it and read
// the runtime's own mappings. It is opened while no program thread can run beside the
// opener: at [`init`](super::init) and in a forked child before it resumes
// ([`after_fork`]); a descriptor of `/proc/self/maps` names the memory of the process
// that opened it, so a forked child needs its own.

/// The runtime's descriptor of `/proc/self/maps`, or -1.
static MAPS_FD: AtomicI32 = AtomicI32::new(-1);
/// The process [`MAPS_FD`] was opened in (a forked child inherits the parent's).
static MAPS_PID: AtomicI32 = AtomicI32::new(0);
/// Held while [`MAPS_FD`] is read: a reader continues where its last read ended.
static MAPS_LOCK: AtomicBool = AtomicBool::new(false);

std::thread_local! {
    /// This thread holds [`MAPS_LOCK`] (a reader's callback that reads the map again
    /// opens a descriptor of its own).
    static READING: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

fn getpid() -> i32 {
    // SAFETY: getpid has no arguments and no effect.
    unsafe { sys::syscall(libc::SYS_getpid, 0, 0, 0) as i32 }
}

/// Opens `/proc/self/maps` at a low number under a pin: the fallback, and the first
/// step of [`open_reserved`].
fn open_low() -> Result<i32, i32> {
    const PATH: &[u8] = b"/proc/self/maps\0";
    // SAFETY: PATH is NUL-terminated; the caller closes the fd.
    let open = || unsafe { sys::syscall(libc::SYS_openat, libc::AT_FDCWD as u64, PATH.as_ptr() as u64, (libc::O_RDONLY | libc::O_CLOEXEC) as u64) };
    match sys::check(open()) {
        // The program used up (or lowered) its descriptor limit: open above it.
        Err(libc::EMFILE) => sys::check(reserved::with_fd_room(open)).map(|f| f as i32),
        r => r.map(|f| f as i32),
    }
}

fn close(fd: i32) {
    // SAFETY: closing a descriptor this module opened and owns.
    unsafe { sys::syscall(libc::SYS_close, fd as u64, 0, 0) };
}

/// The map's descriptor moved up to the runtime's numbers.
fn open_reserved() -> Result<i32, i32> {
    let _pin = reserved::pin_runtime();
    let low = open_low()?;
    let high = reserved::with_fd_room(|| reserved::dup_high(low));
    close(low);
    high
}

/// Opens the runtime's descriptor of the map, replacing an inherited one. Call where
/// no program thread runs beside the caller: at initialization, and in a forked child
/// before anything else ([`after_fork`]).
pub fn open_own() -> bool {
    let Ok(fd) = open_reserved() else { return false };
    let old = MAPS_FD.swap(fd, Ordering::AcqRel);
    MAPS_PID.store(getpid(), Ordering::Release);
    if old >= 0 {
        close(old);
    }
    true
}

/// In a forked child: the lock as if nobody held it (the threads that might have do
/// not exist here), and a descriptor of the child's own memory.
/// False if the descriptor could not be opened.
pub fn after_fork() -> bool {
    MAPS_LOCK.store(false, Ordering::Release);
    READING.with(|r| r.set(false));
    open_own()
}

/// The runtime's descriptor of the map, if it is this process's (`EBADF` if not).
pub fn own_fd() -> Result<i32, i32> {
    let own = MAPS_FD.load(Ordering::Acquire);
    if own < 0 || MAPS_PID.load(Ordering::Acquire) != getpid() {
        return Err(libc::EBADF);
    }
    Ok(own)
}

/// Reads the map from its start in chunks into `buf` (`have` bytes kept from the last
/// call), calling `more` after each read until it returns `false` or the map ends.
fn read_chunks(buf: &mut [u8], have: &mut usize, more: &mut dyn FnMut(&mut [u8], &mut usize) -> bool) -> Result<(), &'static str> {
    match own_fd() {
        Ok(fd) if !READING.with(|r| r.get()) => locked(|| read_from(fd, buf, have, more)),
        // A read within a read (an exit taken while this thread reads): the same
        // descriptor without the lock; the outer read's next `pread` finds its place
        // again from the start.
        Ok(fd) => read_from(fd, buf, have, more),
        // No descriptor of the runtime's (before `init`, or it could not be opened):
        // a fresh one at a low number, pinned while it is read.
        Err(_) => read_fresh(buf, have, more),
    }
}

fn read_fresh(buf: &mut [u8], have: &mut usize, more: &mut dyn FnMut(&mut [u8], &mut usize) -> bool) -> Result<(), &'static str> {
    let _pin = reserved::pin_runtime();
    let fd = open_low().map_err(|_| "cannot open")?;
    let r = read_from(fd, buf, have, more);
    close(fd);
    r
}

/// Runs `f` holding [`MAPS_LOCK`].
fn locked<T>(f: impl FnOnce() -> T) -> T {
    while MAPS_LOCK.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        // SAFETY: sched_yield has no arguments.
        unsafe { sys::syscall(libc::SYS_sched_yield, 0, 0, 0) };
    }
    READING.with(|r| r.set(true));
    let r = f();
    READING.with(|r| r.set(false));
    MAPS_LOCK.store(false, Ordering::Release);
    r
}

/// The whole map, read through `dup`, a duplicate of the runtime's descriptor the
/// guest side was given (`runtime::own_maps`); `None` for no duplicate (then a fresh
/// descriptor, pinned). The duplicate shares the descriptor's position, so it is read
/// under the same lock.
pub fn text_through(dup: Option<i32>) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let mut have = 0usize;
    let mut more = |buf: &mut [u8], have: &mut usize| {
        out.extend_from_slice(&buf[..*have]);
        *have = 0;
        true
    };
    match dup {
        Some(fd) if !READING.with(|r| r.get()) => locked(|| read_from(fd, &mut buf, &mut have, &mut more))?,
        Some(fd) => read_from(fd, &mut buf, &mut have, &mut more)?,
        None => read_fresh(&mut buf, &mut have, &mut more)?,
    }
    Ok(out)
}

/// `pread`s `fd` from offset 0 (a read at offset 0 starts the map afresh; each later
/// one continues where the last ended).
fn read_from(fd: i32, buf: &mut [u8], have: &mut usize, more: &mut dyn FnMut(&mut [u8], &mut usize) -> bool) -> Result<(), &'static str> {
    let mut at = 0u64;
    loop {
        // SAFETY: reading into the unused tail of the caller's buffer.
        let n = unsafe { sys::syscall6(libc::SYS_pread64 as u64, [fd as u64, buf[*have..].as_mut_ptr() as u64, (buf.len() - *have) as u64, at, 0, 0]) };
        let n = match sys::check(n) {
            Ok(n) => n as usize,
            Err(libc::EINTR) => continue,
            Err(_) => return Err("read failed"),
        };
        if n == 0 {
            return Ok(());
        }
        at += n as u64;
        *have += n;
        if !more(buf, have) {
            return Ok(());
        }
    }
}

/// The part of file mapping `v` that lies beyond the end of its file, as
/// `[start, v.end)`, where Linux raises SIGBUS: `None` for anonymous and special
/// mappings, mappings that end within the file, and files that cannot be examined.
pub fn beyond_eof(v: &Vma, file: &FileRef<'_>) -> Option<u64> {
    if file.inode == 0 || !file.path.starts_with(b"/") || file.path.ends_with(b" (deleted)") || file.path.len() >= 512 {
        return None;
    }
    let mut path = [0u8; 512];
    path[..file.path.len()].copy_from_slice(file.path);
    // SAFETY: stat of a NUL-terminated path into a zeroed local.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    let r = unsafe { sys::syscall(libc::SYS_stat, path.as_ptr() as u64, &mut st as *mut libc::stat as u64, 0) };
    // The inode is not compared: on overlay file systems the map shows the lower file
    // system's inode and stat the overlay's.
    if r != 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    let size = st.st_size as u64;
    let in_file = size.saturating_sub(file.offset).saturating_add(4095) & !4095;
    let eof = v.start.saturating_add(in_file);
    (eof < v.end).then_some(eof)
}

/// The mapping containing `addr`, if any, and whether `addr` lies beyond the end of
/// its file (where Linux raises SIGBUS): one read of the map.
pub fn find_checked(addr: u64) -> Result<Option<(Vma, bool)>, &'static str> {
    let mut found = None;
    for_each_full(|v, file| {
        if v.start <= addr && addr < v.end {
            found = Some((*v, beyond_eof(v, file).is_some_and(|eof| addr >= eof)));
        }
        v.end <= addr
    })?;
    Ok(found)
}

/// The mapping containing `addr`, if any.
pub fn find(addr: u64) -> Result<Option<Vma>, &'static str> {
    let mut found = None;
    for_each(|v| {
        if v.start <= addr && addr < v.end {
            found = Some(*v);
        }
        v.end <= addr
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_and_anonymous_lines() {
        let v = parse_line(b"7f1c2a000000-7f1c2a021000 r-xp 00000000 fe:01 1234   /usr/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        assert_eq!((v.start, v.end), (0x7f1c2a000000, 0x7f1c2a021000));
        assert!(v.read && !v.write && v.exec && !v.shared && !v.stack);
        let v = parse_line(b"7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]").unwrap();
        assert!(v.stack && v.write);
        let v = parse_line(b"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]").unwrap();
        assert!(v.vsyscall && v.exec && !v.read);
        let v = parse_line(b"55d0c000-55d0d000 ---p 00000000 00:00 0").unwrap();
        assert!(!v.accessible());
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_line(b""), None);
        assert_eq!(parse_line(b"zz-10 rw-p"), None);
        assert_eq!(parse_line(b"20-10 rw-p 0 0 0"), None);
    }

    #[test]
    fn finds_own_stack_and_code() {
        let local = 0u64;
        let here = &local as *const u64 as u64;
        let v = find(here).unwrap().expect("stack variable is mapped");
        assert!(v.read && v.write);
        let code = find(finds_own_stack_and_code as *const () as u64).unwrap().expect("code is mapped");
        assert!(code.exec);
        let mut n = 0;
        let mut last = 0;
        for_each(|v| {
            assert!(v.start >= last);
            last = v.end;
            n += 1;
            true
        })
        .unwrap();
        assert!(n > 5);
    }
}

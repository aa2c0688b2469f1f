//! appel1 and appel2 with userfaultfd write protection (Linux 5.7+ for anonymous
//! memory): the modern replacement for `mprotect` + `SIGSEGV`. A write to a
//! write-protected page blocks the writer and queues a message; a handler thread reads
//! it and lifts the protection with `UFFDIO_WRITEPROTECT`, which wakes the writer.
//!
//! Layouts and numbers from `include/uapi/linux/userfaultfd.h`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

use crate::measure::{verify, Ctx, Measured, RowError};
use crate::rows::fault::APPEL_PAGES;
use crate::sys::{Mapping, PAGE};

const UFFD_API: u64 = 0xAA;
/// `_IOWR(0xAA, 0x3F, struct uffdio_api)` (24 bytes).
const UFFDIO_API: libc::c_ulong = 0xC018_AA3F;
/// `_IOWR(0xAA, 0x00, struct uffdio_register)` (32 bytes).
const UFFDIO_REGISTER: libc::c_ulong = 0xC020_AA00;
/// `_IOWR(0xAA, 0x06, struct uffdio_writeprotect)` (24 bytes).
const UFFDIO_WRITEPROTECT: libc::c_ulong = 0xC018_AA06;
/// `_IOR(0xAA, 0x01, struct uffdio_range)` (16 bytes).
const UFFDIO_UNREGISTER: libc::c_ulong = 0x8010_AA01;
/// Bit of `_UFFDIO_WRITEPROTECT` (0x06) in `uffdio_register.ioctls`.
const UFFDIO_WRITEPROTECT_BIT: u64 = 1 << 0x06;
const UFFD_FEATURE_PAGEFAULT_FLAG_WP: u64 = 1 << 0;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;
/// `userfaultfd(2)` flag: handle faults from user mode only (allowed unprivileged).
const UFFD_USER_MODE_ONLY: i32 = 1;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
const UFFD_PAGEFAULT_FLAG_WP: u64 = 1 << 1;

#[repr(C)]
#[derive(Default)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[repr(C)]
#[derive(Default)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct UffdioWriteprotect {
    range: UffdioRange,
    mode: u64,
}

/// `struct uffd_msg`, page-fault variant: event at 0, flags at 8, address at 16.
#[repr(C)]
#[derive(Default)]
struct UffdMsg {
    event: u8,
    _reserved: [u8; 7],
    flags: u64,
    address: u64,
    _rest: u64,
}

const _: () = assert!(std::mem::size_of::<UffdioApi>() == 24);
const _: () = assert!(std::mem::size_of::<UffdioRegister>() == 32);
const _: () = assert!(std::mem::size_of::<UffdioWriteprotect>() == 24);
const _: () = assert!(std::mem::size_of::<UffdMsg>() == 32);

/// A userfaultfd with the write-protect feature enabled.
struct Uffd(OwnedFd);

impl Uffd {
    /// Opens one, or says why this kernel cannot.
    fn open() -> Result<Self, RowError> {
        // The API handshake can be done once per fd, and requesting a feature the
        // kernel lacks fails: ask for none first to learn what is supported.
        let probe = raw_open()?;
        let mut api = UffdioApi { api: UFFD_API, ..Default::default() };
        ioctl(&probe, UFFDIO_API, &mut api, "UFFDIO_API")?;
        if api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP == 0 {
            return Err(RowError::Unsupported("this kernel's userfaultfd lacks UFFD_FEATURE_PAGEFAULT_FLAG_WP (write protection)".into()));
        }
        let fd = raw_open()?;
        let mut api = UffdioApi { api: UFFD_API, features: UFFD_FEATURE_PAGEFAULT_FLAG_WP, ioctls: 0 };
        ioctl(&fd, UFFDIO_API, &mut api, "UFFDIO_API")?;
        Ok(Uffd(fd))
    }

    /// Registers `m` for write-protect faults.
    fn register(&self, m: &Mapping) -> Result<(), RowError> {
        let mut reg = UffdioRegister {
            range: UffdioRange { start: m.addr() as u64, len: (m.pages() * PAGE) as u64 },
            mode: UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        match ioctl(&self.0, UFFDIO_REGISTER, &mut reg, "UFFDIO_REGISTER") {
            Err(RowError::Os { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) => {
                return Err(RowError::Unsupported("UFFDIO_REGISTER_MODE_WP refused for anonymous memory".into()))
            }
            r => r?,
        }
        if reg.ioctls & UFFDIO_WRITEPROTECT_BIT == 0 {
            return Err(RowError::Unsupported("UFFDIO_WRITEPROTECT not offered for anonymous memory".into()));
        }
        Ok(())
    }
}

fn raw_open() -> Result<OwnedFd, RowError> {
    let flags = libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: userfaultfd takes only flags and returns a new fd.
    let mut fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
    if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) {
        // vm.unprivileged_userfaultfd=0: user-mode faults (all we need) are still allowed.
        // SAFETY: as above.
        fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY) };
    }
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENOSYS) => RowError::Unsupported("userfaultfd is not built into this kernel".into()),
            Some(libc::EPERM) => RowError::Unsupported(format!("userfaultfd not permitted: {e}")),
            _ => RowError::Os { step: "userfaultfd", source: e },
        });
    }
    // SAFETY: a new fd owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn ioctl<T>(fd: &OwnedFd, request: libc::c_ulong, arg: &mut T, step: &'static str) -> Result<(), RowError> {
    // SAFETY: every request used here takes a pointer to the #[repr(C)] struct passed
    // with it, of the size encoded in the request.
    if unsafe { libc::ioctl(fd.as_raw_fd(), request, arg as *mut T) } != 0 {
        return Err(RowError::last_os(step));
    }
    Ok(())
}

/// `UFFDIO_WRITEPROTECT` of `count` pages from `addr`: protect (`wp`) or lift the
/// protection and wake the writers blocked on them.
fn writeprotect(fd: &OwnedFd, addr: usize, count: usize, wp: bool) -> Result<(), RowError> {
    let mut arg = UffdioWriteprotect {
        range: UffdioRange { start: addr as u64, len: (count * PAGE) as u64 },
        mode: if wp { UFFDIO_WRITEPROTECT_MODE_WP } else { 0 },
    };
    ioctl(fd, UFFDIO_WRITEPROTECT, &mut arg, "UFFDIO_WRITEPROTECT")
}

/// What the handler thread and the writer share.
struct Shared {
    base: usize,
    pages: usize,
    /// appel1: also protect the previous page.
    protect_previous: bool,
    expect: AtomicUsize,
    faults: AtomicU64,
    wrong: AtomicU64,
}

/// The handler thread: answers write-protect faults until `stop` becomes readable.
/// If it fails, it unregisters the region first, which wakes a blocked writer and
/// keeps later writes from blocking with no one to answer them.
fn serve(uffd: &OwnedFd, stop: &OwnedFd, s: &Shared) -> Result<(), RowError> {
    let r = serve_loop(uffd, stop, s);
    if r.is_err() {
        let mut range = UffdioRange { start: s.base as u64, len: (s.pages * PAGE) as u64 };
        let _ = ioctl(uffd, UFFDIO_UNREGISTER, &mut range, "UFFDIO_UNREGISTER");
    }
    r
}

fn serve_loop(uffd: &OwnedFd, stop: &OwnedFd, s: &Shared) -> Result<(), RowError> {
    loop {
        let mut fds = [
            libc::pollfd { fd: uffd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: stop.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: fds is an array of two initialized pollfd.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(RowError::last_os("poll"));
        }
        if fds[1].revents != 0 {
            return Ok(());
        }
        let mut msg = UffdMsg::default();
        // SAFETY: reads at most one uffd_msg into msg, which has its size and layout.
        let n = unsafe { libc::read(uffd.as_raw_fd(), (&mut msg as *mut UffdMsg).cast(), size_of::<UffdMsg>()) };
        if n < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) {
                continue;
            }
            return Err(RowError::last_os("read userfaultfd"));
        }
        let addr = msg.address as usize;
        let ours = addr >= s.base && addr < s.base + s.pages * PAGE;
        if msg.event != UFFD_EVENT_PAGEFAULT || msg.flags & UFFD_PAGEFAULT_FLAG_WP == 0 || !ours {
            s.wrong.fetch_add(1, SeqCst);
            continue;
        }
        let i = (addr - s.base) / PAGE;
        if i != s.expect.load(SeqCst) {
            s.wrong.fetch_add(1, SeqCst);
        }
        s.faults.fetch_add(1, SeqCst);
        if s.protect_previous {
            let prev = (i + s.pages - 1) % s.pages;
            writeprotect(uffd, s.base + prev * PAGE, 1, true)?;
        }
        writeprotect(uffd, s.base + i * PAGE, 1, false)?;
    }
}

/// appel1 with userfaultfd: one page writable at a time; the handler thread makes the
/// faulting page writable and protects the previous one.
pub fn appel1(ctx: &mut Ctx) -> Result<Measured, RowError> {
    run(ctx, true)
}

/// appel2 with userfaultfd: one `UFFDIO_WRITEPROTECT` protects all 100 pages, then the
/// handler thread unprotects each page as it is written.
pub fn appel2(ctx: &mut Ctx) -> Result<Measured, RowError> {
    run(ctx, false)
}

fn run(ctx: &mut Ctx, appel1: bool) -> Result<Measured, RowError> {
    let n = APPEL_PAGES;
    let uffd = Uffd::open()?;
    let m = Mapping::anon(n)?;
    m.populate();
    uffd.register(&m)?;
    let fd = &uffd.0;
    // SAFETY: eventfd with no pointer arguments; returns a new fd.
    let stop = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if stop < 0 {
        return Err(RowError::last_os("eventfd"));
    }
    // SAFETY: a new fd owned by no one else.
    let stop = unsafe { OwnedFd::from_raw_fd(stop) };
    let shared = Shared {
        base: m.addr(),
        pages: n,
        protect_previous: appel1,
        expect: AtomicUsize::new(0),
        faults: AtomicU64::new(0),
        wrong: AtomicU64::new(0),
    };
    if appel1 {
        // Start as a round would end: only the last page writable.
        writeprotect(fd, m.addr(), n - 1, true)?;
    }
    let mut rounds = 0u64;
    let (measured, served) = std::thread::scope(|scope| {
        let handler = scope.spawn(|| serve(fd, &stop, &shared));
        let measured = ctx.repeat(|rep| {
            let f0 = shared.faults.load(SeqCst);
            rep.time(1, || {
                if !appel1 {
                    writeprotect(fd, m.addr(), n, true)?;
                }
                for i in 0..n {
                    shared.expect.store(i, SeqCst);
                    m.write(i, rounds);
                }
                Ok::<(), RowError>(())
            })??;
            let faults = shared.faults.load(SeqCst) - f0;
            verify!(faults == n as u64, "{faults} write-protect faults in a round of {n} writes to protected pages");
            verify!((0..n).all(|i| m.read(i) == rounds), "a write of round {rounds} did not land");
            rounds += 1;
            Ok(())
        });
        let one = 1u64;
        // SAFETY: writes 8 bytes from a local to the eventfd.
        unsafe { libc::write(stop.as_raw_fd(), (&one as *const u64).cast(), 8) };
        let served = handler.join().unwrap_or_else(|_| Err(RowError::Verify("the handler thread panicked".into())));
        (measured, served)
    });
    served?;
    let summary = measured?;
    let wrong = shared.wrong.load(SeqCst);
    verify!(wrong == 0, "{wrong} unexpected userfaultfd messages");
    Ok(Measured {
        summary,
        check: format!("{rounds} rounds; each of the {n} writes per round blocked on write protection and was released by the handler thread"),
    })
}

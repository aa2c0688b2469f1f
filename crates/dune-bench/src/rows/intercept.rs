//! Intercepting a system call: ptrace (the paper's Linux way) and the seccomp
//! alternatives a sandbox would use today. In every row the intercepted call is a
//! getpid whose answer is made up by the interceptor (a running token), and the caller
//! checks it got exactly that answer: an interception that did not happen cannot
//! pass.
//!
//! Numbers from `include/uapi/linux/seccomp.h`, `filter.h`, `audit.h` and
//! `arch/x86/include/uapi/asm/ptrace-abi.h`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::mpsc;

use crate::measure::{verify, Ctx, Measured, RowError};
use crate::sys::HandlerGuard;

/// First answer an interceptor gives; the n-th is `TOKEN + n`.
const TOKEN: i64 = 0x5EED_0000;
/// First argument that marks a getpid as one to intercept (getpid ignores it).
const MAGIC: u64 = 0x0D0E_5EC0;
/// Second argument asking the seccomp supervisor to stop.
const STOP: u64 = 1;

/// Byte offsets in `struct user_regs_struct` (ptrace-abi.h: RAX 10, ORIG_RAX 15, in
/// 8-byte words).
const USER_RAX: usize = 10 * 8;
const USER_ORIG_RAX: usize = 15 * 8;

// ---- ptrace ------------------------------------------------------------------------

/// The traced child: calls getpid forever and checks each answer is the next token.
/// After a wrong answer it calls gettid instead, which the tracer sees. Only raw system
/// calls after fork.
fn traced_child() -> ! {
    // SAFETY: raw system calls without memory arguments, in the child of a fork of a
    // single-threaded process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
            libc::_exit(101);
        }
        libc::kill(libc::getpid(), libc::SIGSTOP);
        let mut nr = libc::SYS_getpid;
        let mut k = 0i64;
        loop {
            if libc::syscall(nr) != TOKEN + k {
                nr = libc::SYS_gettid;
            }
            k += 1;
        }
    }
}

/// A traced child, killed and reaped on drop.
struct Tracee(libc::pid_t);

impl Drop for Tracee {
    fn drop(&mut self) {
        // SAFETY: our own child: kill and reap it.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

fn wait_stop(pid: libc::pid_t) -> Result<i32, RowError> {
    let mut status = 0;
    // SAFETY: waits for our own child into a local.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(RowError::last_os("waitpid"));
    }
    if !libc::WIFSTOPPED(status) {
        return Err(RowError::Verify(format!("the traced child did not stop (wait status {status:#x})")));
    }
    Ok(libc::WSTOPSIG(status))
}

fn ptrace(req: libc::c_uint, pid: libc::pid_t, addr: usize, data: usize) -> Result<libc::c_long, RowError> {
    // SAFETY: requests on our own stopped tracee; PEEKUSER/POKEUSER offsets are inside
    // struct user, and no request here writes into our memory.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: as above.
    let r = unsafe { libc::ptrace(req, pid, addr, data) };
    if r == -1 && io::Error::last_os_error().raw_os_error() != Some(0) {
        return Err(RowError::last_os("ptrace"));
    }
    Ok(r)
}

/// One operation: resume the tracee with `PTRACE_SYSEMU`, wait until it stops at its
/// next system call, check that it is getpid, write the answer into its RAX. That is
/// the round trip of one intercepted system call, seen from the tracer.
pub fn ptrace_sysemu(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let ops = 100u64;
    // SAFETY: the child only makes raw, async-signal-safe system calls, so the state of
    // other threads (none in `dune bench`: the Linux rows run before any other thread
    // starts, and rows that start threads join them) does not matter to it.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(RowError::last_os("fork"));
    }
    if pid == 0 {
        traced_child();
    }
    let child = Tracee(pid);
    let sig = wait_stop(pid)?;
    verify!(sig == libc::SIGSTOP, "the child stopped with signal {sig}, not SIGSTOP");
    let opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL;
    ptrace(libc::PTRACE_SETOPTIONS, pid, 0, opts as usize)?;
    let mut k = 0i64;
    let summary = ctx.repeat(|rep| {
        rep.time(ops, || {
            for _ in 0..ops {
                ptrace(libc::PTRACE_SYSEMU as libc::c_uint, pid, 0, 0)?;
                let sig = wait_stop(pid)?;
                verify!(sig == libc::SIGTRAP | 0x80, "the tracee stopped with {sig:#x}, not at a system call");
                let nr = ptrace(libc::PTRACE_PEEKUSER, pid, USER_ORIG_RAX, 0)?;
                verify!(nr == libc::SYS_getpid, "the tracee made system call {nr}: it saw a wrong answer");
                ptrace(libc::PTRACE_POKEUSER, pid, USER_RAX, (TOKEN + k) as usize)?;
                k += 1;
            }
            Ok(())
        })?
    })?;
    drop(child);
    Ok(Measured { summary, check: format!("{k} getpid calls of the traced child stopped at entry and returned the tracer's answer") })
}

// ---- seccomp -----------------------------------------------------------------------

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
const SECCOMP_GET_NOTIF_SIZES: libc::c_uint = 3;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;
const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
/// `_IOWR('!', 0, struct seccomp_notif)` (80 bytes).
const SECCOMP_IOCTL_NOTIF_RECV: libc::c_ulong = 0xC050_2100;
/// `_IOWR('!', 1, struct seccomp_notif_resp)` (24 bytes).
const SECCOMP_IOCTL_NOTIF_SEND: libc::c_ulong = 0xC018_2101;
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

/// `struct seccomp_notif`: id, pid, flags, then `struct seccomp_data` (nr, arch,
/// instruction_pointer, args\[6\]).
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct SeccompNotif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

/// `struct seccomp_notif_resp`.
#[repr(C)]
#[derive(Default)]
struct SeccompNotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const _: () = assert!(size_of::<SeccompNotif>() == 80);
const _: () = assert!(size_of::<SeccompNotifResp>() == 24);

/// A BPF program: `action` for getpid(MAGIC, ..) on x86-64, allow everything else.
fn filter(action: u32) -> [libc::sock_filter; 8] {
    // Classic BPF opcodes (linux/bpf_common.h): BPF_LD|BPF_W|BPF_ABS (0x00|0x00|0x20),
    // BPF_JMP|BPF_JEQ|BPF_K (0x05|0x10|0x00), BPF_RET|BPF_K (0x06|0x00).
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    // struct seccomp_data: nr at 0, arch at 4, args[0] at 16 (low half, little-endian).
    [
        op(LD_W_ABS, 0, 0, 4),
        op(JEQ_K, 0, 5, AUDIT_ARCH_X86_64),
        op(LD_W_ABS, 0, 0, 0),
        op(JEQ_K, 0, 3, libc::SYS_getpid as u32),
        op(LD_W_ABS, 0, 0, 16),
        op(JEQ_K, 0, 1, MAGIC as u32),
        op(RET_K, 0, 0, action),
        op(RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
}

/// Installs `filter(action)` on the calling thread only (no TSYNC: the filter goes
/// away with the thread). Returns the listener fd for `SECCOMP_RET_USER_NOTIF`.
fn install_filter(action: u32) -> Result<Option<OwnedFd>, RowError> {
    // SAFETY: sets the calling thread's no_new_privs bit (required to install a filter
    // without CAP_SYS_ADMIN); it only restricts execve of this thread.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(RowError::last_os("prctl(PR_SET_NO_NEW_PRIVS)"));
    }
    let mut prog = filter(action);
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_mut_ptr() };
    let listener = action == SECCOMP_RET_USER_NOTIF;
    let flags = if listener { SECCOMP_FILTER_FLAG_NEW_LISTENER } else { 0 };
    // SAFETY: fprog points at a valid program that outlives the call (the kernel copies it).
    let r = unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EINVAL | libc::ENOSYS) => RowError::Unsupported(format!("seccomp filter refused ({e}): kernel without seccomp-bpf or without this feature")),
            _ => RowError::Os { step: "seccomp(SECCOMP_SET_MODE_FILTER)", source: e },
        });
    }
    // SAFETY: with NEW_LISTENER the return value is a new fd owned by no one else.
    Ok(listener.then(|| unsafe { OwnedFd::from_raw_fd(r as i32) }))
}

/// getpid(MAGIC, arg1): the intercepted call.
#[inline(always)]
fn marked_getpid(arg1: u64) -> i64 {
    // SAFETY: getpid ignores its arguments.
    unsafe { libc::syscall(libc::SYS_getpid, MAGIC, arg1) }
}

static SIGSYS_COUNT: AtomicU64 = AtomicU64::new(0);
static SIGSYS_WRONG: AtomicU64 = AtomicU64::new(0);

/// Runs in signal context: only atomics and the ucontext.
extern "C" fn on_sigsys(_sig: i32, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid ucontext_t to SA_SIGINFO handlers; the registers
    // written here are restored by sigreturn as the system call's result.
    unsafe {
        let gregs = &mut (*uc.cast::<libc::ucontext_t>()).uc_mcontext.gregs;
        // seccomp rolls RAX back to the system call number before SIGSYS.
        if gregs[libc::REG_RAX as usize] != libc::SYS_getpid || gregs[libc::REG_RDI as usize] as u64 != MAGIC {
            SIGSYS_WRONG.fetch_add(1, SeqCst);
        }
        let n = SIGSYS_COUNT.fetch_add(1, SeqCst);
        gregs[libc::REG_RAX as usize] = TOKEN + n as i64;
    }
}

/// One operation: getpid trapped by a seccomp filter (`SECCOMP_RET_TRAP`) and
/// answered by the SIGSYS handler, back to the caller. Runs on a thread of its own,
/// which alone carries the filter.
pub fn seccomp_trap(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let ops = 100u64;
    let _handler = HandlerGuard::install(libc::SIGSYS, on_sigsys)?;
    SIGSYS_WRONG.store(0, SeqCst);
    let measured = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                install_filter(SECCOMP_RET_TRAP)?;
                let mut calls = 0u64;
                let summary = ctx.repeat(|rep| {
                    let first = SIGSYS_COUNT.load(SeqCst) as i64;
                    let wrong = rep.time(ops, || (0..ops as i64).filter(|&k| marked_getpid(0) != TOKEN + first + k).count())?;
                    verify!(wrong == 0, "{wrong} of {ops} trapped getpid calls did not return the handler's answer");
                    let traps = SIGSYS_COUNT.load(SeqCst) as i64 - first;
                    verify!(traps == ops as i64, "{traps} SIGSYS for {ops} calls");
                    calls += ops;
                    Ok(())
                })?;
                Ok(Measured { summary, check: format!("{calls} getpid calls each trapped into the SIGSYS handler and returned its answer") })
            })
            .join()
            .unwrap_or_else(|_| Err(RowError::Verify("the measuring thread panicked".into())))
    })?;
    let wrong = SIGSYS_WRONG.load(SeqCst);
    verify!(wrong == 0, "{wrong} SIGSYS for a call other than getpid(MAGIC)");
    Ok(measured)
}

/// The supervisor: answers notifications with the next token until one carries `STOP`.
/// Returns how many it answered.
fn supervise(listener: &OwnedFd) -> Result<u64, RowError> {
    let mut sizes = [0u16; 3];
    // SAFETY: GET_NOTIF_SIZES writes three u16 into the array.
    if unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, sizes.as_mut_ptr()) } == 0 {
        verify!(usize::from(sizes[0]) <= size_of::<SeccompNotif>() && usize::from(sizes[1]) <= size_of::<SeccompNotifResp>(),
            "kernel's seccomp_notif sizes {sizes:?} exceed this program's");
    }
    let mut answered = 0u64;
    loop {
        // RECV requires a zeroed buffer.
        let mut n = SeccompNotif::default();
        // SAFETY: RECV writes one struct seccomp_notif into n.
        if unsafe { libc::ioctl(listener.as_raw_fd(), SECCOMP_IOCTL_NOTIF_RECV, &mut n) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(RowError::Os { step: "SECCOMP_IOCTL_NOTIF_RECV", source: e });
        }
        verify!(n.nr as i64 == libc::SYS_getpid && n.args[0] == MAGIC, "notification for system call {} {:#x}", n.nr, n.args[0]);
        let mut resp = SeccompNotifResp { id: n.id, val: TOKEN + answered as i64, error: 0, flags: 0 };
        // SAFETY: SEND reads one struct seccomp_notif_resp.
        if unsafe { libc::ioctl(listener.as_raw_fd(), SECCOMP_IOCTL_NOTIF_SEND, &mut resp) } != 0 {
            return Err(RowError::last_os("SECCOMP_IOCTL_NOTIF_SEND"));
        }
        if n.args[1] == STOP {
            return Ok(answered);
        }
        answered += 1;
    }
}

/// Sends the stop call when dropped, so the supervisor ends whatever happens.
struct StopOnDrop;

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        marked_getpid(STOP);
    }
}

/// One operation: getpid turned into a notification (`SECCOMP_RET_USER_NOTIF`), which
/// a supervisor thread receives and answers, back to the caller.
pub fn seccomp_notify(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let ops = 100u64;
    let (tx, rx) = mpsc::channel::<OwnedFd>();
    std::thread::scope(|scope| {
        let supervisor = scope.spawn(move || match rx.recv() {
            Ok(listener) => supervise(&listener).map(Some),
            Err(_) => Ok(None), // the measuring thread failed before installing
        });
        let measured = scope
            .spawn(move || {
                let listener = install_filter(SECCOMP_RET_USER_NOTIF)?
                    .ok_or_else(|| RowError::Verify("no listener fd".into()))?;
                let _ = tx.send(listener);
                let _stop = StopOnDrop;
                let mut next = 0i64;
                let summary = ctx.repeat(|rep| {
                    let first = next;
                    let wrong = rep.time(ops, || (0..ops as i64).filter(|&k| marked_getpid(0) != TOKEN + first + k).count())?;
                    verify!(wrong == 0, "{wrong} of {ops} getpid calls did not return the supervisor's answer");
                    next += ops as i64;
                    Ok(())
                })?;
                Ok(Measured { summary, check: format!("{next} getpid calls each answered by the supervisor thread") })
            })
            .join()
            .unwrap_or_else(|_| Err(RowError::Verify("the measuring thread panicked".into())));
        let answered = supervisor.join().unwrap_or_else(|_| Err(RowError::Verify("the supervisor panicked".into())));
        let measured = measured?;
        let answered = answered?;
        verify!(answered.is_some(), "the supervisor got no listener");
        Ok(measured)
    })
}

//! The Dune ways of trap, appel1, appel2 and ptrace: what the paper measured with
//! privileged features in the process itself.
//!
//! - trap / appel: pages at guest-only addresses (`vm::map_pages`, always 4 KiB) are
//!   protected by clearing W in their page-table entries and `invlpg`; writes fault
//!   into a ring-0 page-fault handler (`trap::register_pgflt_handler`), which
//!   unprotects (and for appel1 protects another page) the same way. No exits.
//! - ptrace: ring-3 code calls getpid in a loop; each call is caught by the ring-0
//!   system-call handler (`trap::register_syscall_handler`), which answers it. No exits.
//!
//! Handlers only touch atomics and page-table entries (lock-free lookups): they run in
//! ring 0 on the trap path.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::SeqCst};

use dune_x86::paging::{Create, PTE_W};
use libdune::trap::TrapFrame;
use libdune::vm::{self, Root, PERM_R, PERM_U, PERM_W, PERM_X};

use crate::measure::{verify, Ctx, Measured, RowError};
use crate::rows::fault::APPEL_PAGES;
use crate::timer;

const PAGE: u64 = 4096;
/// Guest-only addresses for the rows' pages and ring-3 code.
const REGION: u64 = 0x3600_0000_0000;
const USER_CODE: u64 = 0x3700_0000_0000;
const USER_STACK: u64 = 0x3700_0010_0000;

const TRAP: u8 = 1;
const APPEL1: u8 = 2;
const APPEL2: u8 = 3;

static MODE: AtomicU8 = AtomicU8::new(0);
static ROOT: AtomicU64 = AtomicU64::new(0);
static PAGES: AtomicU64 = AtomicU64::new(0);
static EXPECT: AtomicU64 = AtomicU64::new(0);
static FAULTS: AtomicU64 = AtomicU64::new(0);
static WRONG: AtomicU64 = AtomicU64::new(0);
static T_HANDLER: AtomicU64 = AtomicU64::new(0);

fn os(step: &'static str) -> impl FnOnce(libdune::Error) -> RowError {
    move |e| RowError::Os { step, source: std::io::Error::other(e.to_string()) }
}

/// Sets or clears W in the 4 KiB entry of `va`, then drops its translation.
fn set_writable(root: u64, va: u64, writable: bool) -> bool {
    match vm::lookup(Root(root), va, Create::None) {
        Ok((e, _)) => {
            if writable {
                e.set_bits(PTE_W);
            } else {
                e.clear_bits(PTE_W);
            }
            vm::flush_tlb_one(va);
            true
        }
        Err(_) => false,
    }
}

/// The ring-0 page-fault handler of the trap and appel rows.
fn on_fault(addr: u64, _fec: u64, tf: &mut TrapFrame) -> bool {
    let t = timer::stop();
    let pages = PAGES.load(SeqCst);
    let mode = MODE.load(SeqCst);
    if mode == 0 || tf.from_user() || !(REGION..REGION + pages * PAGE).contains(&addr) {
        return false;
    }
    T_HANDLER.store(t, SeqCst);
    let i = (addr - REGION) / PAGE;
    if i != EXPECT.load(SeqCst) {
        WRONG.fetch_add(1, SeqCst);
    }
    FAULTS.fetch_add(1, SeqCst);
    let root = ROOT.load(SeqCst);
    let mut ok = set_writable(root, REGION + i * PAGE, true);
    if mode == APPEL1 {
        let prev = (i + pages - 1) % pages;
        ok &= set_writable(root, REGION + prev * PAGE, false);
    }
    // Not handled means the runtime's default: the write faults again and the process
    // ends with a report, instead of looping here.
    ok
}

/// The region's pages and the handler, for one row; torn down on drop.
struct Armed {
    root: Root,
    pages: u64,
}

impl Armed {
    fn new(mode: u8, pages: u64) -> Result<Self, RowError> {
        let root = vm::pgroot().map_err(os("vm::pgroot"))?;
        vm::map_pages(root, REGION, pages * PAGE, PERM_R | PERM_W).map_err(os("vm::map_pages"))?;
        ROOT.store(root.0, SeqCst);
        PAGES.store(pages, SeqCst);
        WRONG.store(0, SeqCst);
        MODE.store(mode, SeqCst);
        libdune::trap::register_pgflt_handler(on_fault);
        Ok(Armed { root, pages })
    }

    fn protect(&self, range: std::ops::Range<u64>) {
        for i in range {
            set_writable(self.root.0, REGION + i * PAGE, false);
        }
    }

    fn write(&self, i: u64, v: u64) {
        EXPECT.store(i, SeqCst);
        // SAFETY: the page is mapped (guest-only) for the life of self; a protected
        // page faults into on_fault, which makes it writable.
        unsafe { std::ptr::write_volatile((REGION + i * PAGE) as *mut u64, v) };
    }

    fn read(&self, i: u64) -> u64 {
        // SAFETY: as in write; reading is always allowed.
        unsafe { std::ptr::read_volatile((REGION + i * PAGE) as *const u64) }
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        MODE.store(0, SeqCst);
        libdune::trap::unregister_pgflt_handler();
        let _ = vm::unmap(self.root, REGION, self.pages * PAGE);
        vm::flush_tlb();
    }
}

/// From a write to a write-protected page to the first instruction of the ring-0
/// page-fault handler.
pub fn trap(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let ops = 100u64;
    let a = Armed::new(TRAP, 1)?;
    let mut total = 0;
    let summary = ctx.repeat(|rep| {
        let f0 = FAULTS.load(SeqCst);
        // Allocated before the exit-counted bracket.
        let mut intervals = Vec::with_capacity(ops as usize);
        rep.watch_exits(ops, || {
            for k in 0..ops {
                a.protect(0..1);
                T_HANDLER.store(0, SeqCst);
                let t0 = timer::start();
                a.write(0, k);
                intervals.push((t0, T_HANDLER.load(SeqCst)));
            }
        })?;
        let faults = FAULTS.load(SeqCst) - f0;
        verify!(faults == ops, "{faults} faults for {ops} writes to a protected page");
        verify!(a.read(0) == ops - 1, "the last write did not land after the handler");
        for (t0, t1) in intervals {
            verify!(t1 > t0, "a write to the protected page did not reach the handler");
            rep.record(t1 - t0, 1);
        }
        total += ops;
        Ok(())
    })?;
    verify!(WRONG.load(SeqCst) == 0, "faults at an unexpected address");
    drop(a);
    Ok(Measured { summary, check: format!("each of {total} writes to a write-protected page faulted into the ring-0 handler, at its address") })
}

fn write_round(a: &Armed, v: u64) {
    for i in 0..a.pages {
        a.write(i, v);
    }
}

/// Rounds of writes to every page of `a`, each round timed together with `protect`
/// (what makes pages read-only before it); every write must fault, at its page, and land.
fn appel_rounds(ctx: &mut Ctx, a: &Armed, protect: impl Fn()) -> Result<Measured, RowError> {
    let n = a.pages;
    let mut rounds = 0u64;
    let summary = ctx.repeat(|rep| {
        let f0 = FAULTS.load(SeqCst);
        rep.time(1, || {
            protect();
            write_round(a, rounds);
        })?;
        let faults = FAULTS.load(SeqCst) - f0;
        verify!(faults == n, "{faults} faults in a round of {n} writes to protected pages");
        verify!((0..n).all(|i| a.read(i) == rounds), "a write of round {rounds} did not land");
        rounds += 1;
        Ok(())
    })?;
    verify!(WRONG.load(SeqCst) == 0, "faults at an unexpected address");
    Ok(Measured { summary, check: format!("{rounds} rounds; each of the {n} writes per round faulted into the ring-0 handler, at its page") })
}

/// prot1+trap+unprot over 100 pages with page-table writes and `invlpg`: the handler
/// unprotects the faulting page and protects the previous one.
pub fn appel1(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let n = APPEL_PAGES as u64;
    let a = Armed::new(APPEL1, n)?;
    // Start as a round ends: only the last page writable.
    a.protect(0..n - 1);
    appel_rounds(ctx, &a, || {})
}

/// protN+trap+unprot over 100 pages: clear W in all entries, one CR3 reload, then
/// every write faults and the handler unprotects its page.
pub fn appel2(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let n = APPEL_PAGES as u64;
    let a = Armed::new(APPEL2, n)?;
    let root = a.root;
    appel_rounds(ctx, &a, || {
        let _ = vm::walk(root, REGION, REGION + n * PAGE, |_, e, _| {
            e.clear_bits(PTE_W);
            std::ops::ControlFlow::<()>::Continue(())
        });
        vm::flush_tlb();
    })
}

static CAUGHT: AtomicU64 = AtomicU64::new(0);
const FAKE_PID: u64 = 0x5eed;

fn on_user_syscall(tf: &mut TrapFrame) {
    match tf.rax {
        39 => {
            CAUGHT.fetch_add(1, SeqCst);
            tf.rax = FAKE_PID;
        }
        60 => libdune::user::ret_from_user(tf.rdi as i64),
        _ => tf.rax = (-(libc::ENOSYS as i64)) as u64,
    }
}

/// Ring-3 code: `rbx` times getpid (checking each answer), then exit(0), or exit(1)
/// at the first wrong answer.
const USER_LOOP: &[u8] = &[
    0xb8, 39, 0, 0, 0, // 0:  mov $39, %eax
    0x0f, 0x05, // 5:  syscall
    0x48, 0x3d, 0xed, 0x5e, 0, 0, // 7:  cmp $0x5eed, %rax
    0x75, 0x0f, // 13: jne bad (30)
    0x48, 0xff, 0xcb, // 15: dec %rbx
    0x75, 0xec, // 18: jnz 0
    0x31, 0xff, // 20: xor %edi, %edi
    0xb8, 60, 0, 0, 0, // 22: mov $60, %eax
    0x0f, 0x05, // 27: syscall
    0x90, // 29: nop
    0xbf, 1, 0, 0, 0, // 30: bad: mov $1, %edi
    0xb8, 60, 0, 0, 0, // 35: mov $60, %eax
    0x0f, 0x05, // 40: syscall
    0x0f, 0x0b, // 42: ud2
];

/// A system call made in ring 3, intercepted and answered by a ring-0 handler (the
/// paper's Dune "ptrace" row).
pub fn ptrace(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let ops = ctx.pick(10_000u64, 1_000);
    let root = vm::pgroot().map_err(os("vm::pgroot"))?;
    vm::map_pages(root, USER_CODE, PAGE, PERM_R | PERM_W).map_err(os("vm::map_pages"))?;
    vm::map_pages(root, USER_STACK, PAGE, PERM_R | PERM_W | PERM_U).map_err(os("vm::map_pages"))?;
    // SAFETY: the code page was just mapped writable, at a guest-only address.
    unsafe { std::ptr::copy_nonoverlapping(USER_LOOP.as_ptr(), USER_CODE as *mut u8, USER_LOOP.len()) };
    vm::mprotect(root, USER_CODE, PAGE, PERM_R | PERM_X | PERM_U).map_err(os("vm::mprotect"))?;
    vm::flush_tlb();
    libdune::trap::register_syscall_handler(on_user_syscall);
    let mut total = 0;
    let result = ctx.repeat(|rep| {
        let c0 = CAUGHT.load(SeqCst);
        let tf = TrapFrame { rip: USER_CODE, rsp: USER_STACK + PAGE - 64, rbx: ops, ..Default::default() };
        // SAFETY: code and stack are mapped with PERM_U; the code ends in exit, whose
        // handler calls ret_from_user.
        let ret = rep.time(ops, || unsafe { libdune::user::jump_to_user(&tf) })?;
        verify!(ret == 0, "ring-3 code saw a wrong answer (exit {ret})");
        let caught = CAUGHT.load(SeqCst) - c0;
        verify!(caught == ops, "{caught} of {ops} ring-3 system calls reached the handler");
        total += ops;
        Ok(())
    });
    libdune::trap::unregister_syscall_handler();
    let _ = vm::unmap(root, USER_CODE, PAGE);
    let _ = vm::unmap(root, USER_STACK, PAGE);
    vm::flush_tlb();
    let summary = result?;
    Ok(Measured { summary, check: format!("{total} getpid calls from ring 3 caught and answered by the ring-0 handler; ring 3 checked every answer") })
}

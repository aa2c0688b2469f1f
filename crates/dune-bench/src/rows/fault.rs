//! trap, appel1, appel2 the Linux way: page protection with `mprotect`, faults
//! delivered as `SIGSEGV` to a user handler (Appel and Li's primitives, as the paper
//! measured them).
//!
//! The handler works on statics (a handler gets no context pointer): the armed region,
//! what the row is doing, and counters the row checks afterwards. A fault outside the
//! armed region is not ours: the handler puts the default action back and returns, so
//! the access repeats and the process dies as it would have without us.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::SeqCst};

use crate::measure::{verify, Ctx, Measured, RowError};
use crate::sys::{self, HandlerGuard, Mapping, PAGE};
use crate::timer;

/// Pages of the appel rows (as in the paper).
pub const APPEL_PAGES: usize = 100;

const TRAP: u8 = 1;
const APPEL1: u8 = 2;
const APPEL2: u8 = 3;

static MODE: AtomicU8 = AtomicU8::new(0);
static BASE: AtomicUsize = AtomicUsize::new(0);
static PAGES: AtomicUsize = AtomicUsize::new(0);
/// The page the row is about to write.
static EXPECT: AtomicUsize = AtomicUsize::new(0);
static FAULTS: AtomicU64 = AtomicU64::new(0);
/// Faults on a page other than the expected one.
static WRONG: AtomicU64 = AtomicU64::new(0);
/// TSC when the handler started (for `trap`).
static T_HANDLER: AtomicU64 = AtomicU64::new(0);

/// Runs in signal context: only atomics and `mprotect`.
extern "C" fn on_segv(_sig: i32, info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    let t = timer::stop();
    let addr = sys::fault_addr(info);
    let (base, pages) = (BASE.load(SeqCst), PAGES.load(SeqCst));
    if base == 0 || addr < base || addr >= base + pages * PAGE {
        sys::reset_to_default(libc::SIGSEGV);
        return;
    }
    T_HANDLER.store(t, SeqCst);
    let i = (addr - base) / PAGE;
    if i != EXPECT.load(SeqCst) {
        WRONG.fetch_add(1, SeqCst);
    }
    FAULTS.fetch_add(1, SeqCst);
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let ok = match MODE.load(SeqCst) {
        TRAP | APPEL2 => sys::mprotect(base + i * PAGE, PAGE, rw),
        APPEL1 => {
            let prev = (i + pages - 1) % pages;
            sys::mprotect(base + i * PAGE, PAGE, rw) && sys::mprotect(base + prev * PAGE, PAGE, libc::PROT_NONE)
        }
        _ => false,
    };
    if !ok {
        // The access would fault forever: die instead.
        sys::reset_to_default(libc::SIGSEGV);
    }
}

/// The handler installed and armed for one region; disarmed on drop.
struct Armed {
    _handler: HandlerGuard,
}

impl Armed {
    fn new(mode: u8, m: &Mapping) -> Result<Self, RowError> {
        MODE.store(mode, SeqCst);
        PAGES.store(m.pages(), SeqCst);
        BASE.store(m.addr(), SeqCst);
        WRONG.store(0, SeqCst);
        let handler = HandlerGuard::install(libc::SIGSEGV, on_segv)?;
        Ok(Armed { _handler: handler })
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        BASE.store(0, SeqCst);
        MODE.store(0, SeqCst);
    }
}

/// From a write to a protected page to the first instruction of the `SIGSEGV`
/// handler (which then unprotects the page; that part is not timed).
pub fn trap(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let ops = 100u64;
    let m = Mapping::anon(1)?;
    m.populate();
    let armed = Armed::new(TRAP, &m)?;
    let mut total = 0u64;
    let summary = ctx.repeat(|rep| {
        let f0 = FAULTS.load(SeqCst);
        for k in 0..ops {
            m.protect(0, 1, libc::PROT_NONE)?;
            EXPECT.store(0, SeqCst);
            T_HANDLER.store(0, SeqCst);
            let t0 = timer::start();
            m.write(0, k);
            let t1 = T_HANDLER.load(SeqCst);
            verify!(t1 > t0, "write {k} to the protected page did not reach the handler");
            rep.record(t1 - t0, 1);
        }
        let faults = FAULTS.load(SeqCst) - f0;
        verify!(faults == ops, "{faults} faults for {ops} writes to a protected page");
        verify!(m.read(0) == ops - 1, "the last write did not land after the handler");
        total += ops;
        Ok(())
    })?;
    let wrong = WRONG.load(SeqCst);
    drop(armed);
    verify!(wrong == 0, "{wrong} faults at an unexpected address");
    Ok(Measured { summary, check: format!("each of {total} writes to a PROT_NONE page faulted into the handler, at its address") })
}

/// Appel and Li's prot1+trap+unprot over 100 pages: one page at a time is writable;
/// writing any other faults, and the handler unprotects it and protects the previous
/// one. One operation is a round of 100 writes, all of which must fault.
pub fn appel1(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let n = APPEL_PAGES;
    let m = Mapping::anon(n)?;
    m.populate();
    let armed = Armed::new(APPEL1, &m)?;
    // Start as a round would end: only the last page writable.
    m.protect(0, n - 1, libc::PROT_NONE)?;
    let mut rounds = 0u64;
    let summary = ctx.repeat(|rep| {
        let f0 = FAULTS.load(SeqCst);
        rep.time(1, || write_round(&m, rounds))?;
        let faults = FAULTS.load(SeqCst) - f0;
        verify!(faults == n as u64, "{faults} faults in a round of {n} writes to protected pages");
        // Reading protected pages would fault too: open them all for the check, then
        // restore the state a round ends in.
        m.protect(0, n, libc::PROT_READ | libc::PROT_WRITE)?;
        verify!((0..n).all(|i| m.read(i) == rounds), "a write of round {rounds} did not land");
        m.protect(0, n - 1, libc::PROT_NONE)?;
        rounds += 1;
        Ok(())
    })?;
    let wrong = WRONG.load(SeqCst);
    drop(armed);
    verify!(wrong == 0, "{wrong} faults at an unexpected address");
    Ok(Measured { summary, check: format!("{rounds} rounds; each of the {n} writes per round faulted, at its page") })
}

/// Appel and Li's protN+trap+unprot over 100 pages: one `mprotect` protects all, then
/// each write faults and the handler unprotects its page. One operation is a round.
pub fn appel2(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let n = APPEL_PAGES;
    let m = Mapping::anon(n)?;
    m.populate();
    let armed = Armed::new(APPEL2, &m)?;
    let mut rounds = 0u64;
    let summary = ctx.repeat(|rep| {
        let f0 = FAULTS.load(SeqCst);
        rep.time(1, || {
            m.protect(0, n, libc::PROT_NONE)?;
            write_round(&m, rounds);
            Ok::<(), RowError>(())
        })??;
        let faults = FAULTS.load(SeqCst) - f0;
        verify!(faults == n as u64, "{faults} faults in a round of {n} writes to protected pages");
        verify!((0..n).all(|i| m.read(i) == rounds), "a write of round {rounds} did not land");
        rounds += 1;
        Ok(())
    })?;
    let wrong = WRONG.load(SeqCst);
    drop(armed);
    verify!(wrong == 0, "{wrong} faults at an unexpected address");
    Ok(Measured { summary, check: format!("{rounds} rounds; each of the {n} writes per round faulted, at its page") })
}

/// Writes `v` to every page in order, telling the handler which page comes next.
#[inline(never)]
fn write_round(m: &Mapping, v: u64) {
    for i in 0..m.pages() {
        EXPECT.store(i, SeqCst);
        m.write(i, v);
    }
}

//! Wedge sthreads on Dune (paper §5.2): privilege-separated compartments started
//! from a pristine snapshot of the program and recycled by restoring only the pages
//! whose dirty bit is set.
//!
//! An sthread runs a function in guest ring 3 on a page table of its own
//! ([`compartment`]): the program's code and read-only data, a private copy of its
//! writable globals as they were at [`init`], its own stack, and the tags its
//! [`Policy`] grants. Nothing else of the process is mapped for it: not the heap,
//! not other stacks, not other sthreads' tags. Its system calls come back to ring 0
//! ([`calls`]), are checked against the policy and performed with copies of its
//! buffers. Any violation ends that sthread alone; [`join`] reports why.
//!
//! Every entry from ring 3 switches back to the process's own table before any
//! other ring-0 code runs (`libdune::user::UserContext::cr3`), so the runtime never
//! works on a compartment's copies of its globals.
//!
//! Layout:
//! - [`policy`]: tags, memory, descriptor and system-call grants, callgates;
//! - [`tag`]: tag memory and its allocator (`smalloc`, `sfree`);
//! - `image`: the snapshot taken by [`init`];
//! - `pt`, [`compartment`]: page tables per compartment, dirty-bit reset;
//! - [`calls`]: the system calls an sthread can be granted and their checks;
//! - `pcid`: PCIDs per Linux thread;
//! - [`capi`]: the Wedge-on-Dune `sthread.h` API (`libsthread.a`, `libsthread.so`).
//!
//! Its rows of `dune bench` (Table 5: create, switch) are in `dune-bench`'s
//! `rows/sthread.rs`; the C tests and the web-server demo in `tests/c/`.
pub mod calls;
pub mod capi;
pub mod compartment;
mod error;
mod image;
mod pcid;
pub mod policy;
mod pt;
pub mod tag;

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use libdune::user::{self, UserContext, UserExit};

pub use calls::Violation;
use calls::{Fds, Outcome};
use compartment::{Compartment, STACK_SLOT};
pub use error::{Error, Result};
use image::{Image, Shared};
pub use policy::{MemProt, Policy, FD_READ, FD_WRITE};
pub use tag::TagId;

/// Compartments kept for reuse.
const POOL_MAX: usize = 64;

/// Whether finished compartments are kept for reuse (see [`set_recycle`]).
static RECYCLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// With `false`, every sthread gets a freshly built compartment, freed when it ends
/// (to measure the fresh path; reuse is the default).
pub fn set_recycle(on: bool) {
    RECYCLE.store(on, std::sync::atomic::Ordering::Relaxed);
}
/// Compartments at once (stack slots).
const SLOTS: usize = 4096;
/// Callgates may call callgates this deep.
const GATE_DEPTH: u32 = 8;

/// The address window: tags, then stacks, then the exit sentinel's page.
struct Window {
    tags: u64,
    stacks: u64,
    sentinel: u64,
}

/// Everything after `init`.
struct Global {
    image: Image,
    window: Window,
    state: Mutex<State>,
    done: Condvar,
}

/// Mutable state.
struct State {
    tags: tag::Tags,
    pool: Vec<Compartment>,
    free_slots: Vec<usize>,
    next_id: u64,
    sthreads: HashMap<u32, Entry>,
    gens: u32,
    /// Compartments alive (pooled or running).
    live: usize,
    /// Tags granted to sthreads that are running, with counts.
    busy: HashMap<TagId, usize>,
    /// Threads waiting in `join` (a notification is a system call: only for them).
    waiters: usize,
    /// The read-only ranges as the program's map is now (see `Image::current_shared`),
    /// as of map generation `map_gen`; `image_gen` counts their changes, and a
    /// compartment built under another is rebuilt before it runs again.
    shared: Vec<Shared>,
    map_gen: u64,
    image_gen: u64,
}

enum Entry {
    Running,
    Done(core::result::Result<u64, Violation>),
}

static GLOBAL: OnceLock<Global> = OnceLock::new();

fn global() -> Result<&'static Global> {
    GLOBAL.get().ok_or(Error::NotInitialized)
}

fn lock(g: &Global) -> MutexGuard<'_, State> {
    g.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether this code runs in Dune's ring 3 (inside an sthread), where the API is
/// refused. Dune's user code segment is not Linux's (0x33), so an ordinary process
/// before `init` is not mistaken for one.
pub(crate) fn in_ring3() -> bool {
    let cs: u16;
    // SAFETY: reading CS has no side effects.
    unsafe { core::arch::asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack, preserves_flags)) };
    cs == dune_x86::gdt::USER_CS
}

/// Enters Dune mode if needed and takes the snapshot every sthread starts from:
/// the writable globals and this thread's TLS as they are now. Idempotent.
pub fn init() -> Result<()> {
    if in_ring3() {
        return Err(Error::NotPermitted("from an sthread"));
    }
    if GLOBAL.get().is_some() {
        return Ok(());
    }
    if !libdune::in_dune_mode() {
        libdune::enter()?;
    }
    // Grants are held as duplicates at the application's reserved numbers.
    libdune::runtime::use_application_descriptors();
    // Compartments map the master's read-only pages: any change of the map, even one
    // that makes a page writable, ends running sessions so they look again.
    libdune::runtime::interrupt_sessions_on_map_change(true);
    // One reservation: 16 GiB of tags, 8 GiB of stack slots, a sentinel page.
    let tags_len = tag::TAGS as u64 * tag::TAG_MAX;
    let stacks_len = SLOTS as u64 * STACK_SLOT;
    let len = tags_len + stacks_len + (2 << 20);
    // SAFETY: a fresh inaccessible reservation; nothing is mapped in it until the
    // tags map their chunks with MAP_FIXED.
    let base = unsafe { libc::mmap(core::ptr::null_mut(), len as usize, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1, 0) };
    if base == libc::MAP_FAILED {
        return Err(Error::NoMemory("reserving the sthread window"));
    }
    let base = (base as u64).next_multiple_of(2 << 20);
    let window = Window { tags: base, stacks: base + tags_len, sentinel: base + tags_len + stacks_len - (2 << 20) + pt::PAGE };
    let map_gen = libdune::runtime::map_generation();
    let image = Image::take()?;
    let state = State {
        shared: image.shared.clone(),
        map_gen,
        image_gen: 0,
        tags: tag::Tags::new(window.tags),
        pool: Vec::new(),
        // The last slot holds the sentinel page: never a stack.
        free_slots: (0..SLOTS - 1).rev().collect(),
        next_id: 1,
        sthreads: HashMap::new(),
        gens: 0,
        live: 0,
        busy: HashMap::new(),
        waiters: 0,
    };
    let _ = GLOBAL.set(Global { image, window, state: Mutex::new(state), done: Condvar::new() });
    Ok(())
}

/// A new tag.
pub fn tag_new() -> Result<TagId> {
    let g = global()?;
    lock(g).tags.create()
}

/// Deletes a tag: `Busy` while a running sthread holds a grant of it.
pub fn tag_delete(tag: TagId) -> Result<()> {
    let g = global()?;
    let mut st = lock(g);
    st.tags.get(tag)?;
    if st.busy.get(&tag).copied().unwrap_or(0) > 0 {
        return Err(Error::Busy);
    }
    // Pooled compartments that map it go.
    let (keep, drop): (Vec<_>, Vec<_>) = st.pool.drain(..).partition(|c| !c.key.iter().any(|&(t, _)| t == tag));
    st.pool = keep;
    for c in drop {
        retire(&mut st, c);
    }
    st.tags.delete(tag)
}

/// `size` bytes of tag memory (16-byte aligned).
pub fn smalloc(tag: TagId, size: usize) -> Result<*mut u8> {
    let g = global()?;
    lock(g).tags.alloc(tag, size as u64).map(|a| a as *mut u8)
}

/// Returns tag memory from [`smalloc`].
pub fn sfree(p: *mut u8) -> Result<()> {
    let g = global()?;
    lock(g).tags.free(p as u64)
}

/// Size of a block from [`smalloc`].
pub fn ssize(p: *mut u8) -> Option<usize> {
    let g = global().ok()?;
    lock(g).tags.size_of(p as u64).map(|n| n as usize)
}

/// An sthread's handle: a slot and a generation, so a stale handle never names a
/// later sthread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle(pub u32);

/// The body of an sthread: runs in ring 3 with its argument.
pub type Body = extern "C" fn(*mut core::ffi::c_void) -> *mut core::ffi::c_void;

/// One sthread in flight.
struct Job {
    comp: Compartment,
    ctx: UserContext,
    policy: Arc<Policy>,
    fds: Fds,
    /// The open files its callgates' descriptor grants named when the sthread was made.
    held: Arc<calls::Held>,
    /// The context stopped at a system call not yet answered.
    pending: bool,
    /// A callgate this job called that would block: it goes on, with this job, on a
    /// thread of its own; its result is this job's pending call's.
    gate: Option<Box<(Job, u32)>>,
}

/// Starts `body(arg)` in a compartment under `policy`. It runs at once on this
/// thread; if it would block, it carries on on a thread of its own and this
/// returns. A compartment left by an earlier sthread with the same memory grants is
/// reused (reset by its dirty bits) when there is one.
pub fn create(policy: &Policy, body: Body, arg: *mut core::ffi::c_void) -> Result<Handle> {
    create_at(policy, body as usize as u64, arg as u64, 0)
}

extern "C" fn trampoline(f: usize, arg: usize) -> usize {
    // SAFETY: `spawn` passes a `fn(usize) -> usize` in this register.
    let f = unsafe { core::mem::transmute::<usize, fn(usize) -> usize>(f) };
    f(arg)
}

/// The safe Rust API: runs `f(arg)` in an sthread under `policy`. Whatever `f` does
/// cannot harm the caller: it sees only what `policy` grants, and a violation ends
/// it ([`join`] says why). `f` sees the program's globals as they were at [`init`].
pub fn spawn(policy: &Policy, f: fn(usize) -> usize, arg: usize) -> Result<Handle> {
    create_at(policy, trampoline as extern "C" fn(usize, usize) -> usize as usize as u64, f as usize as u64, arg as u64)
}

/// Starts `entry(rdi, rsi)` in a compartment.
fn create_at(policy: &Policy, entry: u64, rdi: u64, rsi: u64) -> Result<Handle> {
    if in_ring3() {
        return Err(Error::NotPermitted("from an sthread"));
    }
    let g = global()?;
    if !policy.gates_within_creators() {
        return Err(Error::NotPermitted("a callgate's policy exceeds its creator's"));
    }
    let (comp, handle) = {
        let mut st = lock(g);
        let comp = acquire(g, &mut st, &policy.mem)?;
        st.gens = st.gens.wrapping_add(1);
        let handle = Handle(st.gens.max(1));
        st.sthreads.insert(handle.0, Entry::Running);
        (comp, handle)
    };
    let mut job = match start_job(g, comp, Arc::new(policy.clone()), None, entry, rdi, rsi) {
        Ok(j) => j,
        Err(e) => {
            lock(g).sthreads.remove(&handle.0);
            return Err(e);
        }
    };
    // The master's thread lends itself for one time slice: an sthread still running
    // when it ends goes on on a thread of its own, as one that would block does.
    // Not disarmed after: the next sthread re-arms it (which clears what the last one
    // noted), and a slice that runs out in the master's own code is only noted.
    user::arm_time_slice(SLICE_NS);
    match drive(g, &mut job, false, 0) {
        Some(r) => finish(g, handle, job, r),
        None => {
            // Blocked: the rest runs on a thread of its own. If none can be made, the
            // sthread ends here, and everything it held goes back.
            let slot = Arc::new(Mutex::new(Some(job)));
            let theirs = slot.clone();
            let spawned = std::thread::Builder::new().name("sthread".into()).spawn(move || {
                let Some(mut job) = theirs.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
                let r = drive(g, &mut job, true, 0).unwrap_or(Err(Violation::Exception { vector: 0xff, rip: 0 }));
                finish(g, handle, job, r);
            });
            if spawned.is_err() {
                if let Some(job) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    let mut st = end_job(g, job);
                    st.sthreads.remove(&handle.0);
                }
                return Err(Error::NoMemory("a thread for a blocked sthread"));
            }
        }
    }
    Ok(handle)
}

/// Waits for an sthread and returns its value, or the violation that ended it.
pub fn join(h: Handle) -> Result<core::result::Result<u64, Violation>> {
    if in_ring3() {
        return Err(Error::NotPermitted("from an sthread"));
    }
    let g = global()?;
    let mut st = lock(g);
    loop {
        match st.sthreads.get(&h.0) {
            None => return Err(Error::NoSuchSthread),
            Some(Entry::Done(_)) => {
                let Some(Entry::Done(r)) = st.sthreads.remove(&h.0) else { unreachable!() };
                return Ok(r);
            }
            Some(Entry::Running) => {
                st.waiters += 1;
                st = g.done.wait(st).unwrap_or_else(|e| e.into_inner());
                st.waiters -= 1;
            }
        }
    }
}

/// Counters for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Compartments alive (pooled or running).
    pub compartments: usize,
    /// Compartments pooled for reuse.
    pub pooled: usize,
    /// Sthreads not yet joined.
    pub sthreads: usize,
    /// PCIDs this thread's cache holds.
    pub pcids: usize,
}

/// Current counters.
pub fn stats() -> Result<Stats> {
    let g = global()?;
    let st = lock(g);
    Ok(Stats { compartments: st.live, pooled: st.pool.len(), sthreads: st.sthreads.len(), pcids: pcid::held() })
}

/// Forces full TLB flushes on every switch even where PCIDs exist (tests of both paths).
pub fn set_pcid(enabled: bool) {
    pcid::set_enabled(enabled);
}

fn take_compartment(g: &Global, st: &mut State, key: &[(TagId, MemProt)]) -> Result<Compartment> {
    if let Some(i) = st.pool.iter().position(|c| c.key == key) {
        return Ok(st.pool.swap_remove(i));
    }
    let slot = st.free_slots.pop().ok_or(Error::NoMemory("too many compartments"))?;
    let id = st.next_id;
    st.next_id += 1;
    let top = g.window.stacks + (slot as u64 + 1) * STACK_SLOT;
    match Compartment::build(id, key.to_vec(), slot, top, &g.image, &st.tags, st.image_gen) {
        Ok(c) => {
            st.live += 1;
            Ok(c)
        }
        Err(e) => {
            st.free_slots.push(slot);
            Err(e)
        }
    }
}

fn retire(st: &mut State, mut c: Compartment) {
    c.destroy();
    pcid::forget(c.id);
    st.free_slots.push(c.slot);
    st.live -= 1;
}

/// A compartment back to the pool (or freed), after its sthread ended.
fn release(g: &Global, st: &mut State, mut c: Compartment, mem: &[(TagId, MemProt)]) {
    for &(t, _) in mem {
        if let Some(n) = st.busy.get_mut(&t) {
            *n = n.saturating_sub(1);
        }
    }
    if RECYCLE.load(std::sync::atomic::Ordering::Relaxed) && c.reset(&g.image).is_ok() && st.pool.len() < POOL_MAX {
        st.pool.push(c);
    } else {
        retire(st, c);
    }
}

/// A context that runs `entry(rdi, rsi)` on `c`'s stack, returning to the sentinel:
/// the compartment's kept one, with every register and the FPU state reset.
fn start_context(g: &Global, c: &mut Compartment, entry: u64, rdi: u64, rsi: u64) -> Result<UserContext> {
    c.prime_stack(g.window.sentinel)?;
    let mut ctx = match c.ctx.take() {
        Some(mut old) if FRESH_FPU.get().is_some_and(|p| p.len() == old.fpu().len()) => {
            old.fpu_mut().copy_from_slice(FRESH_FPU.get().map_or(&[][..], |p| &p[..]));
            old.tf = libdune::trap::TrapFrame { rip: entry, rsp: c.stack_top - 8, rflags: 0x202, ..Default::default() };
            old
        }
        _ => {
            let f = UserContext::new(entry, c.stack_top - 8)?;
            FRESH_FPU.get_or_init(|| f.fpu().to_vec());
            f
        }
    };
    ctx.tf.rdi = rdi;
    ctx.tf.rsi = rsi;
    ctx.fs_base = g.image.fs_base;
    ctx.cr3 = 0;
    Ok(ctx)
}

/// The FPU image of a new context (FCW 0x37f, MXCSR 0x1f80, nothing else).
static FRESH_FPU: OnceLock<Vec<u8>> = OnceLock::new();

/// Takes a compartment for memory grants `mem`: the tags must exist, and are marked
/// held by a running sthread until [`end_job`].
fn acquire(g: &Global, st: &mut State, mem: &[(TagId, MemProt)]) -> Result<Compartment> {
    for &(t, _) in mem {
        st.tags.get(t)?;
    }
    let comp = take_compartment(g, st, mem)?;
    for &(t, _) in mem {
        *st.busy.entry(t).or_default() += 1;
    }
    Ok(comp)
}

/// A job running `entry(rdi, rsi)` in `comp` under `policy` (the compartment goes
/// back if the context cannot be made).
/// `held`: for a callgate, the open files its caller's grants took when that sthread
/// was made (`None`: an sthread being made, whose grants are taken now).
fn start_job(g: &Global, mut comp: Compartment, policy: Arc<Policy>, held: Option<Arc<calls::Held>>, entry: u64, rdi: u64, rsi: u64) -> Result<Job> {
    let taken = match held {
        Some(h) => Fds::new(&policy, Some(&h)).map(|f| (f, h)),
        None => Fds::new(&policy, None).and_then(|f| calls::hold_gate_grants(&policy).map(|h| (f, Arc::new(h)))),
    };
    match taken.and_then(|(fds, held)| start_context(g, &mut comp, entry, rdi, rsi).map(|ctx| (fds, held, ctx))) {
        Ok((fds, held, ctx)) => Ok(Job { comp, ctx, policy, fds, held, pending: false, gate: None }),
        Err(e) => {
            release(g, &mut lock(g), comp, &policy.mem);
            Err(e)
        }
    }
}

/// After a job ended: closes what it opened and its grants' duplicates (dropped with
/// `fds`), keeps its context with the compartment and gives the compartment back.
/// Returns the state, still locked.
fn end_job(g: &Global, mut job: Job) -> MutexGuard<'_, State> {
    if let Some(gate) = job.gate.take() {
        drop(end_job(g, gate.0));
    }
    drop(job.fds);
    job.comp.ctx = Some(job.ctx);
    let mut st = lock(g);
    release(g, &mut st, job.comp, &job.policy.mem);
    st
}

fn finish(g: &Global, h: Handle, job: Job, r: core::result::Result<u64, Violation>) {
    let mut st = end_job(g, job);
    if let Some(e) = st.sthreads.get_mut(&h.0) {
        *e = Entry::Done(r);
    }
    let waiting = st.waiters > 0;
    drop(st);
    if waiting {
        g.done.notify_all();
    }
}

/// How long an sthread may run on the master's thread (guest time) before it is moved
/// to a thread of its own: an sthread that computes for ever never holds the master
/// longer. Long enough that a short sthread never pays for a thread of its own, even
/// in a debug build under an emulated CPU.
const SLICE_NS: u64 = 1_000_000_000;

/// Runs a job until it ends (Some) or, unless `may_block`, would block or used up the
/// master's time slice (None).
fn drive(g: &'static Global, job: &mut Job, may_block: bool, depth: u32) -> Option<core::result::Result<u64, Violation>> {
    loop {
        // The master's time slice ran out (in ring 3, or while ring 0 worked for the
        // sthread): the rest runs on a thread of its own.
        if !may_block && user::time_slice_expired() {
            return None;
        }
        // The map first, before a call ring 0 handles for the sthread (its pointers are
        // mapped by the shared ranges) and before ring 3 runs: a change since the last
        // look (which ended this session, see `interrupt_sessions_on_map_change`) is
        // seen. Only when the runtime's memory or the read-only ranges changed does the
        // table follow: this runs on every switch to ring 3.
        refresh_shared(g);
        if job.comp.needs_sync(IMAGE_GEN.load(std::sync::atomic::Ordering::Acquire)) {
            let st = lock(g);
            if job.comp.sync(&g.image, &st.tags, st.image_gen).is_err() {
                return Some(Err(Violation::Exception { vector: 0xff, rip: job.ctx.tf.rip }));
            }
        }
        // A callgate that blocked before: it finishes first (on a thread that may block).
        if let Some(mut gate) = job.gate.take() {
            let r = drive(g, &mut gate.0, may_block, gate.1);
            let Some(r) = r else {
                job.gate = Some(gate);
                return None;
            };
            drop(end_job(g, gate.0));
            job.ctx.tf.rax = gate_result(r);
            job.pending = false;
        }
        if job.pending {
            let ensure = |c: &mut Compartment, va: u64, len: usize, write: bool| {
                let st = lock(g);
                c.ensure(va, len, write, &g.image, &st.shared, &st.tags)
            };
            match calls::handle(&mut job.comp, &ensure, &job.policy, &mut job.fds, &mut job.ctx.tf, may_block) {
                Outcome::Resume => {}
                Outcome::Exit(v) => return Some(Ok(v)),
                Outcome::Violated(v) => return Some(Err(v)),
                Outcome::WouldBlock => return None,
                Outcome::Gate { entry, arg } => match job.policy.gates.iter().find(|gt| gt.entry == entry) {
                    None => return Some(Err(Violation::Callgate { entry })),
                    Some(gate) => {
                        let gate = gate.clone();
                        match call_gate(g, &gate, job.held.clone(), arg, depth + 1, may_block) {
                            Ok((gjob, None)) => {
                                // The gate would block: it and this job go on together,
                                // on a thread of their own.
                                job.gate = Some(Box::new((gjob, depth + 1)));
                                return None;
                            }
                            Ok((gjob, Some(r))) => {
                                drop(end_job(g, gjob));
                                job.ctx.tf.rax = gate_result(r);
                            }
                            Err(e) => job.ctx.tf.rax = (-(e.errno() as i64)) as u64,
                        }
                    }
                },
            }
            job.pending = false;
        }
        job.ctx.cr3 = pcid::cr3_for(job.comp.id, job.comp.tlb_gen, job.comp.root());
        // SAFETY: ring 3 runs on the compartment's table, which maps for ring 3 only
        // what the policy grants; every entry from it returns to this table first.
        let exit = unsafe { user::run_user(&mut job.ctx) };
        match exit {
            UserExit::Syscall => job.pending = true,
            UserExit::Exception { vector: 14, err, addr } => {
                if addr == g.window.sentinel && job.ctx.tf.rip == g.window.sentinel {
                    return Some(Ok(job.ctx.tf.rax));
                }
                let handled = {
                    let st = lock(g);
                    job.comp.fault(addr, err, &g.image, &st.shared, &st.tags)
                };
                if !matches!(handled, Ok(true)) {
                    return Some(Err(Violation::Memory { addr, rip: job.ctx.tf.rip, write: err & 2 != 0 }));
                }
            }
            UserExit::Exception { vector, .. } => return Some(Err(Violation::Exception { vector, rip: job.ctx.tf.rip })),
            UserExit::Interrupt { vector } if vector == user::SIGNAL_VECTOR => user::poll_signals(),
            UserExit::Interrupt { .. } => {}
        }
    }
}

/// Runs callgate `gate` with the untrusted `arg` in a compartment of its own, on
/// this thread; the caller waits and never holds the gate's rights. Returns the
/// gate's job and its result, or `None` if it would block and the caller must not:
/// then the caller's job carries the gate's to a thread of its own.
fn call_gate(g: &'static Global, gate: &policy::Gate, held: Arc<calls::Held>, arg: u64, depth: u32, may_block: bool) -> Result<(Job, Option<core::result::Result<u64, Violation>>)> {
    if depth > GATE_DEPTH {
        return Err(Error::NotPermitted("callgates nested too deep"));
    }
    let comp = acquire(g, &mut lock(g), &gate.policy.mem)?;
    let mut job = start_job(g, comp, Arc::new((*gate.policy).clone()), Some(held), gate.entry, gate.trusted, arg)?;
    let r = drive(g, &mut job, may_block, depth);
    Ok((job, r))
}

/// What a callgate's caller gets in rax: the gate's value, or `-errno` of what ended it.
fn gate_result(r: core::result::Result<u64, Violation>) -> u64 {
    match r {
        Ok(v) => v,
        Err(v) => (-(v.errno() as i64)) as u64,
    }
}

/// The map generation the read-only ranges were last checked at, for a lock-free test.
static SHARED_AT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Follows changes of the program's memory map: when one touched a read-only range of
/// the snapshot (or the runtime lost track), the ranges are derived again from the map
/// and, if they changed, every compartment's table is rebuilt before it runs again.
/// One atomic load when nothing changed.
fn refresh_shared(g: &Global) {
    use std::sync::atomic::Ordering;
    let now = libdune::runtime::map_generation();
    if SHARED_AT.load(Ordering::Acquire) == now {
        return;
    }
    let mut st = lock(g);
    if st.map_gen == now {
        return;
    }
    let mut touched = Vec::new();
    let mut reread = false;
    let kept = libdune::runtime::map_changes(st.map_gen, now, |s, e| {
        if s == 0 && e == u64::MAX {
            // The runtime read the whole map again (it had lost track): no change of
            // its own, but nothing is known of what changed meanwhile.
            reread = true;
        } else if g.image.touches_shared(s, e) {
            touched.push((s, e));
        }
    });
    let complete = kept && !reread;
    if !touched.is_empty() || !complete {
        let shared = g.image.narrowed(&st.shared, &touched, complete);
        if shared.iter().map(|r| (r.start, r.end, r.exec)).ne(st.shared.iter().map(|r| (r.start, r.end, r.exec))) {
            st.shared = shared;
            st.image_gen += 1;
            IMAGE_GEN.store(st.image_gen, Ordering::Release);
        }
    }
    st.map_gen = now;
    SHARED_AT.store(now, Ordering::Release);
}

/// `State::image_gen`, readable without the lock.
static IMAGE_GEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

//! Ring-3 sessions (`user::run_user`): ring 3 runs a saved context until its next
//! system call, exception or interrupt; the trap path saves the context back and
//! returns to the caller in ordinary ring-0 code. The assembly is in `entry`
//! (`__dune_jump_to_user` with an FPU image, the trap path recording where it saved
//! ring 3's FPU state); the dispatcher calls [`leave`] for every trap from ring 3.

use dune_x86::gdt;
use dune_x86::regs::rflags;

use super::{entry, DuneTf, Percpu};
use crate::error::{Error, Result};

fn percpu() -> *mut Percpu {
    let p: u64;
    // SAFETY: in Dune mode GS base is this vCPU's Percpu, whose first field is its address.
    unsafe { core::arch::asm!("mov {0}, gs:[0]", out(reg) p, options(nostack, readonly, preserves_flags)) };
    p as *mut Percpu
}

fn ret_from_user(ret: i64) -> ! {
    // SAFETY: called from the trap path of a session begun by run_user on this vCPU;
    // the trap frames are abandoned (leave copied what it needs out of them).
    unsafe { entry::__dune_ret_from_user(ret) }
}

/// The vector the runtime raises in a vCPU running ring-3 code when a signal for its
/// thread is ready to be delivered (signals are delivered only to ring-0 code). A
/// [`run_user`] session returns [`UserExit::Interrupt`] with it; with handlers, one
/// registered for this vector sees it (without one it is ignored).
pub const SIGNAL_VECTOR: u8 = 0xf0;

/// Why [`run_user`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserExit {
    /// Ring 3 executed `syscall`: the number is in `tf.rax`, arguments in rdi, rsi,
    /// rdx, r10, r8, r9; `tf.rip` is after the instruction. Set `tf.rax` to the result.
    Syscall,
    /// An exception in ring 3 (`tf.rip` at the faulting instruction): vector, error
    /// code, and for page faults the address.
    Exception { vector: u8, err: u64, addr: u64 },
    /// An interrupt taken in ring 3 ([`SIGNAL_VECTOR`]: a signal is ready).
    Interrupt { vector: u8 },
}

/// A 64-byte aligned XSAVE (or FXSAVE) image of the size the vCPU uses.
struct FpuImage {
    ptr: *mut u8,
    len: usize,
}

impl FpuImage {
    fn layout(len: usize) -> core::alloc::Layout {
        // 64 is a power of two and len is small: the layout is always valid.
        core::alloc::Layout::from_size_align(len, 64).unwrap_or(core::alloc::Layout::new::<u8>())
    }
}

impl Drop for FpuImage {
    fn drop(&mut self) {
        // SAFETY: allocated in UserContext::new with this very layout.
        unsafe { std::alloc::dealloc(self.ptr, Self::layout(self.len)) }
    }
}

/// A ring-3 execution context for [`run_user`]: registers, FS base and FPU state.
pub struct UserContext {
    /// General registers, rip, rsp, rflags (`cs`/`ss` are set to the user segments).
    pub tf: DuneTf,
    /// FS base (thread pointer) of ring 3.
    pub fs_base: u64,
    /// The CR3 value ring 3 runs with (a page table of its own, with PCID bits when
    /// [`crate::vm::pcid_enabled`]), or 0 to run on the current one. Every entry
    /// from ring 3 goes back to the CR3 `run_user` was called with before any other
    /// ring-0 code runs, so ring 0 never depends on what that table maps beyond the
    /// runtime's own memory (kept in step by the caller, see
    /// [`crate::runtime::memory_generation`]) and the entry code's text.
    pub cr3: u64,
    fpu: FpuImage,
    exit: UserExit,
}

// SAFETY: the image is owned memory; nothing in it is tied to a thread.
unsafe impl Send for UserContext {}

/// Size of the FPU image the entry code saves: the XSAVE area for the vCPU's XCR0,
/// or 512 bytes (FXSAVE) without XSAVE.
fn fpu_image_len() -> usize {
    // SAFETY: this vCPU's Percpu (callers are in Dune mode); xsave_size is fixed.
    let x = unsafe { (*percpu()).xsave_size } as usize;
    if x == 0 { 512 } else { x }
}

impl UserContext {
    /// A context that starts at `rip` with stack `rsp`, all other registers zero,
    /// FPU in its initial state (FCW 0x37f, MXCSR 0x1f80). Dune mode only.
    pub fn new(rip: u64, rsp: u64) -> Result<UserContext> {
        if !crate::in_dune_mode() {
            return Err(Error::InvalidOption { name: "UserContext", why: "made in Dune mode only" });
        }
        let len = fpu_image_len();
        // SAFETY: a non-zero size with a valid layout.
        let ptr = unsafe { std::alloc::alloc_zeroed(FpuImage::layout(len)) };
        if ptr.is_null() {
            return Err(Error::InvalidOption { name: "UserContext", why: "out of memory" });
        }
        let mut c = UserContext { tf: DuneTf { rip, rsp, rflags: rflags::FIXED | rflags::IF, ..Default::default() }, fs_base: 0, cr3: 0, fpu: FpuImage { ptr, len }, exit: UserExit::Syscall };
        c.fpu_mut()[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
        c.fpu_mut()[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        Ok(c)
    }

    /// The FPU image ring 3 resumes with: XSAVE standard format when
    /// [`fpu_is_xsave`], else FXSAVE.
    pub fn fpu(&self) -> &[u8] {
        // SAFETY: ptr/len describe the owned allocation.
        unsafe { core::slice::from_raw_parts(self.fpu.ptr, self.fpu.len) }
    }

    /// The FPU image, writable (a monitor restoring a signal frame). The next
    /// [`run_user`] loads it with XRSTOR, which faults in ring 0 on a malformed XSAVE
    /// header: check images from untrusted sources with [`fpu_image_ok`] first.
    pub fn fpu_mut(&mut self) -> &mut [u8] {
        // SAFETY: ptr/len describe the owned allocation, borrowed mutably through self.
        unsafe { core::slice::from_raw_parts_mut(self.fpu.ptr, self.fpu.len) }
    }
}

/// Whether FPU images are XSAVE images (else FXSAVE, 512 bytes). Dune mode only.
pub fn fpu_is_xsave() -> bool {
    // SAFETY: this vCPU's Percpu.
    unsafe { (*percpu()).xsave_size != 0 }
}

/// The XSAVE feature mask the vCPU uses (XCR0); 0 without XSAVE. Dune mode only.
pub fn xfeatures() -> u64 {
    if !fpu_is_xsave() {
        return 0;
    }
    let (lo, hi): (u32, u32);
    // SAFETY: XGETBV with ECX=0 reads XCR0; CR4.OSXSAVE is set when xsave_size != 0.
    unsafe { core::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    (hi as u64) << 32 | lo as u64
}

/// Whether `img` (an image to be loaded into ring 3's FPU) would load without a fault:
/// MXCSR has no reserved bits, and for XSAVE the header asks only for enabled features,
/// in the standard format, with the reserved header bytes zero.
pub fn fpu_image_ok(img: &[u8]) -> bool {
    let len = fpu_image_len();
    if img.len() < len {
        return false;
    }
    let mxcsr = u32::from_le_bytes([img[24], img[25], img[26], img[27]]);
    // MXCSR_MASK is 0xffff on every CPU with DAZ (all x86-64 CPUs made since 2004).
    if mxcsr & !0xffff != 0 {
        return false;
    }
    if !fpu_is_xsave() {
        return true;
    }
    let word = |o: usize| u64::from_le_bytes(img[o..o + 8].try_into().unwrap_or([0xff; 8]));
    let xstate_bv = word(512);
    let xcomp_bv = word(520);
    xstate_bv & !xfeatures() == 0 && xcomp_bv == 0 && (528..576).step_by(8).all(|o| word(o) == 0)
}

/// Runs `ctx` in ring 3 until its next system call, exception or interrupt, and
/// returns why, with `ctx` holding ring 3's state at that point. `cs`/`ss` are the
/// user segments; of RFLAGS only the arithmetic flags and DF are kept (IF on, IOPL 0).
///
/// # Safety
/// Dune mode. Ring 3 can reach only user memory, so it cannot harm the caller; the
/// caller vouches that `ctx.tf.rip` is where it wants ring 3 to run.
pub unsafe fn run_user(ctx: &mut UserContext) -> UserExit {
    let mut t = ctx.tf;
    t.cs = gdt::USER_CS as u64;
    t.ss = gdt::USER_DS as u64;
    const KEEP: u64 = rflags::CF | rflags::PF | rflags::AF | rflags::ZF | rflags::SF | rflags::DF | rflags::OF;
    t.rflags = (t.rflags & KEEP) | rflags::FIXED | rflags::IF;
    let pc = percpu();
    // SAFETY: this vCPU's Percpu; `session` is read by this vCPU's trap path only
    // while the session runs, and `ctx` outlives the session.
    let (kernel_cr3, user_cr3) = if ctx.cr3 == 0 { (0, 0) } else { (current_cr3_keep(), ctx.cr3) };
    // SAFETY: as above; the CR3 fields are read by this vCPU's entry code only.
    unsafe {
        (*pc).user_fs = ctx.fs_base;
        (*pc).session = ctx as *mut UserContext as u64;
        (*pc).kernel_cr3 = kernel_cr3;
        (*pc).user_cr3 = user_cr3;
    }
    // Ring 0's FPU control state is the caller's (callee-saved in the System V ABI):
    // ring 3 may change MXCSR, the x87 control word and stack; they come back below.
    let saved = FpuControl::save();
    // The caller's interrupt flag: the trap that ends the session runs with interrupts
    // off and returns here so.
    let flags: u64;
    // SAFETY: reads RFLAGS through the stack (pushfq/pop), nothing else.
    unsafe { core::arch::asm!("pushfq", "pop {0}", out(reg) flags, options(preserves_flags)) };
    // SAFETY: the frame was sanitised for ring 3 above; the image is ctx's own,
    // 64-byte aligned and of the size the entry code uses (checked loads: see
    // fpu_image_ok). `leave` fills ctx and ends the session through ret_from_user.
    unsafe { entry::__dune_jump_to_user(&t, ctx.fpu.ptr) };
    saved.restore();
    if flags & rflags::IF != 0 {
        // SAFETY: back to the caller's state: interrupts on, as ring-0 code runs
        // (shootdowns must reach it, and a time slice that runs out is noted).
        unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
    }
    // SAFETY: as above.
    unsafe {
        (*pc).session = 0;
        (*pc).kernel_cr3 = 0;
        (*pc).user_cr3 = 0;
    }
    ctx.exit
}

/// The FPU state the System V ABI makes callee-saved: MXCSR's control bits and the
/// x87 control word. Ring 3 returns with its own registers loaded (the entry code
/// saves them into the session's image and leaves them in place).
struct FpuControl {
    mxcsr: u32,
    fcw: u16,
}

impl FpuControl {
    fn save() -> Self {
        let (mut mxcsr, mut fcw) = (0u32, 0u16);
        // SAFETY: stmxcsr and fnstcw store 4 and 2 bytes into locals; SSE is on in
        // Dune mode (CR4.OSFXSR).
        unsafe {
            core::arch::asm!("stmxcsr [{0}]", "fnstcw [{1}]", in(reg) &mut mxcsr, in(reg) &mut fcw, options(nostack, preserves_flags));
        }
        FpuControl { mxcsr, fcw }
    }

    /// Back to the saved control state with an empty x87 stack, and the upper halves
    /// of the vector registers cleared (no AVX-SSE transition penalty in ring 0).
    fn restore(&self) {
        // SAFETY: fninit empties the x87 stack and resets its control word; fldcw and
        // ldmxcsr load values read from this CPU before (valid by construction); the
        // vector registers are caller-saved, so nothing live is in them here.
        unsafe {
            core::arch::asm!("fninit", "fldcw [{1}]", "ldmxcsr [{0}]", in(reg) &self.mxcsr, in(reg) &self.fcw, options(nostack, preserves_flags));
            if xfeatures() & 4 != 0 {
                core::arch::asm!("vzeroupper", options(nomem, nostack, preserves_flags));
            }
        }
    }
}

/// The current CR3, to load again on entries from ring 3: with the no-flush bit when
/// PCIDs are on (its translations stay valid), as it is otherwise.
fn current_cr3_keep() -> u64 {
    let cr3: u64;
    // SAFETY: reading CR3 in ring 0 has no side effects.
    unsafe { core::arch::asm!("mov {0}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags)) };
    if crate::vm::pcid_enabled() { cr3 | (1 << 63) } else { cr3 }
}

/// Ends the current [`run_user`] session from the trap path: saves ring 3's frame, FS
/// base and FPU image into its context. Called by the dispatcher for every trap from
/// ring 3 during a session. Returns only when there is no session.
pub(crate) fn leave(tf: &DuneTf, exit: UserExit) {
    let pc = percpu();
    // SAFETY: this vCPU's Percpu.
    let s = unsafe { (*pc).session } as *mut UserContext;
    if s.is_null() || !tf.from_user() {
        return;
    }
    // SAFETY: `session` points to the context run_user is running, which lives until
    // run_user returns; the FPU image at user_fpu was saved by this trap's entry (a
    // trap from ring 3 is always the first level of the trap stack) and lies above
    // this handler's stack, so it is intact.
    unsafe {
        (*s).tf = *tf;
        (*s).fs_base = (*pc).user_fs;
        core::ptr::copy_nonoverlapping((*pc).user_fpu as *const u8, (*s).fpu.ptr, (*s).fpu.len);
        (*s).exit = exit;
    }
    ret_from_user(0)
}

/// Lets the runtime deliver signals that arrived for this thread (see
/// [`SIGNAL_VECTOR`]): one exit to the host, where pending signals are delivered to
/// their ring-0 handlers before this returns.
pub fn poll_signals() {
    // SAFETY: getpid has no effect; in Dune mode it is one exit to the host.
    unsafe { libc::syscall(libc::SYS_getpid) };
}


//! Code and data that the guest (ring 0 of the VM) executes or the CPU reads directly.
//!
//! `entry` holds every line of entry assembly; this module holds the `#[repr(C)]`
//! structures the assembly reads, so their offsets are checked in one place.

pub mod dispatch;
pub mod entry;
pub mod session;
pub mod shootdown;
pub mod timer;

/// Whether the calling thread runs in Dune mode (guest ring 0): the privilege level
/// is in the low bits of CS, which no one but the CPU sets.
pub fn in_dune_mode() -> bool {
    let cs: u16;
    // SAFETY: reading CS has no side effects.
    unsafe { core::arch::asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack, preserves_flags)) };
    cs & 3 == 0
}

/// Per-vCPU data at the start of each vCPU's area; GS base points here in Dune mode
/// (as in the original libdune), so entry code reaches it with `%gs:` offsets.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Percpu {
    /// Address of this struct (for `mov %gs:0`).
    pub self_ptr: u64,
    /// 1 while the CPU runs ring-3 code of a `jump_to_user` session.
    pub in_user: u64,
    /// Ring-3 rsp, saved by the LSTAR stub before it switches stacks.
    pub scratch: u64,
    /// Ring-0 rsp saved by `jump_to_user`, for `ret_from_user`.
    pub ksp_saved: u64,
    /// Top of the IST1 stack (TSS.ist1 when no trap is being handled).
    pub ist1_top: u64,
    /// Bytes to reserve for XSAVE (64-byte aligned); 0 means FXSAVE (512 bytes).
    pub xsave_size: u64,
    /// Ring-0 FS base during a user session.
    pub kernel_fs: u64,
    /// Ring-3 FS base of the user session.
    pub user_fs: u64,
    /// Nesting depth of the trap path (the host defers signals while it is non-zero).
    pub trap_depth: u64,
    /// The process's own GS base from before Dune mode (GS belongs to the runtime).
    pub saved_gs: u64,
    /// 1 while the host side of the thread handles an exit (or the vCPU is pooled):
    /// a TLB shootdown need not wait for it (see `guest::shootdown`).
    pub in_host: u64,
    /// The last shootdown sequence number this vCPU has flushed for.
    pub tlb_ack: u64,
    /// Where the trap path saved ring 3's FPU state on the last trap from ring 3 (the
    /// first level of the trap stack), for `user::leave`.
    pub user_fpu: u64,
    /// The `user::UserContext` of the `user::run_user` session on this vCPU (0: none).
    pub session: u64,
    /// CR3 the trap path loads first on every entry from ring 3 during a session whose
    /// context has its own page table (0: keep CR3): ring-0 code never runs on a
    /// compartment's table, whose copies of data pages it must not see.
    pub kernel_cr3: u64,
    /// CR3 loaded just before `iretq` to ring 3 (0: keep CR3).
    pub user_cr3: u64,
    /// Ring 3's rax and `iretq` frame (rip, cs, rflags, rsp, ss), staged here so that
    /// nothing after the switch to `user_cr3` touches memory other than this block.
    pub uframe: [u64; 6],
    /// 1 once this vCPU's ring-3 time slice ran out (`guest::timer`), wherever the
    /// interrupt was taken; 0 again when a slice is armed.
    pub slice_expired: u64,
    /// This vCPU's TSC rate, kHz (KVM_GET_TSC_KHZ; 0: unknown).
    pub tsc_khz: u64,
    /// The length of the slice armed last, ns, and the TSC value until which at least
    /// half of it is left (`guest::timer::arm` keeps such a slice instead of writing
    /// the timer again).
    pub slice_ns: u64,
    pub slice_keep_until: u64,
}

/// Writes x2APIC MSR `msr` (the TLB-shootdown IPI, the time slice's timer).
fn wrmsr(msr: u32, v: u64) {
    // SAFETY: x2APIC MSR writes in ring 0; KVM emulates them in the kernel.
    unsafe { core::arch::asm!("wrmsr", in("ecx") msr, in("eax") v as u32, in("edx") (v >> 32) as u32, options(nostack, preserves_flags)) };
}

/// This vCPU's Percpu (Dune mode: GS base points at it).
fn this_percpu() -> *mut Percpu {
    let p: u64;
    // SAFETY: GS base is this vCPU's Percpu in Dune mode; its first field is its address.
    unsafe { core::arch::asm!("mov {0}, gs:[0]", out(reg) p, options(nostack, readonly, preserves_flags)) };
    p as *mut Percpu
}

/// Where the GDT and TSS live inside the per-vCPU area's first page.
pub const PERCPU_GDT: u64 = 0x100;
/// See [`PERCPU_GDT`].
pub const PERCPU_TSS: u64 = 0x180;
/// Offset of TSS.ist1 (Intel SDM vol. 3A, figure 8-11).
pub const TSS_IST1: u64 = PERCPU_TSS + 0x24;
/// Stack each nesting level of the trap path may use before a nested exception's frame.
pub const TRAP_LEVEL_STACK: u64 = 12 * 1024;
/// Vector number the LSTAR stub gives a system call made in ring 3.
pub const SYSCALL_VECTOR: u64 = 256;

/// The trap frame, laid out as libdune's `struct dune_tf`: what the entry code pushes
/// (general registers) on top of what the CPU pushes (error code, rip, cs, rflags,
/// rsp, ss). Handlers may change any field; the guest resumes from it.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct DuneTf {
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub rbx: u64,
    pub rbp: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rax: u64,
    pub err: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

const _: () = assert!(core::mem::size_of::<DuneTf>() == 21 * 8);
const _: () = assert!(core::mem::size_of::<Percpu>() <= PERCPU_GDT as usize);

impl DuneTf {
    /// The general registers as KVM's register set.
    pub fn to_regs(&self) -> kvm_bindings::kvm_regs {
        kvm_bindings::kvm_regs {
            rax: self.rax, rbx: self.rbx, rcx: self.rcx, rdx: self.rdx, rsi: self.rsi, rdi: self.rdi,
            rsp: self.rsp, rbp: self.rbp, r8: self.r8, r9: self.r9, r10: self.r10, r11: self.r11,
            r12: self.r12, r13: self.r13, r14: self.r14, r15: self.r15, rip: self.rip, rflags: self.rflags,
        }
    }

    /// Takes the general registers, rip, rsp and rflags from `r`.
    pub fn set_regs(&mut self, r: &kvm_bindings::kvm_regs) {
        (self.rax, self.rbx, self.rcx, self.rdx, self.rsi, self.rdi) = (r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi);
        (self.rsp, self.rbp, self.r8, self.r9, self.r10, self.r11) = (r.rsp, r.rbp, r.r8, r.r9, r.r10, r.r11);
        (self.r12, self.r13, self.r14, self.r15, self.rip, self.rflags) = (r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags);
    }

    /// Whether the frame was pushed by ring-3 code.
    pub fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }
}

/// Shared between `enter()` and `dune_enter_trampoline`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct EnterFrame {
    /// Filled by the trampoline: the caller's `rsp` after saving callee-saved registers.
    pub rsp: u64,
    /// Filled by the trampoline: where the vCPU resumes (the trampoline's label `1:`).
    pub rip: u64,
    /// Set by the caller: top of the host stack the KVM loop runs on (16-byte aligned).
    pub host_stack_top: u64,
    /// Set by the caller: the host loop, called as `host_run(frame)` on the host stack.
    pub host_run: u64,
    /// Set by the caller: the thread's runtime context, for `host_run`.
    pub ctx: u64,
}

/// General-purpose registers and flags of a guest context, for `dune_raw_clone_native`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
#[allow(missing_docs)]
pub struct NativeFrame {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
}

impl NativeFrame {
    /// The frame of a guest stopped at a system call, resuming after it.
    pub fn from_regs(r: &kvm_bindings::kvm_regs) -> Self {
        NativeFrame {
            rax: r.rax,
            rbx: r.rbx,
            rcx: r.rcx,
            rdx: r.rdx,
            rsi: r.rsi,
            rdi: r.rdi,
            rbp: r.rbp,
            r8: r.r8,
            r9: r.r9,
            r10: r.r10,
            r11: r.r11,
            r12: r.r12,
            r13: r.r13,
            r14: r.r14,
            r15: r.r15,
            rip: r.rcx,
            rflags: r.r11,
        }
    }
}

//! Code and data that the guest (ring 0 of the VM) executes or the CPU reads directly.
//!
//! `entry` holds every line of entry assembly; this module holds the `#[repr(C)]`
//! structures the assembly reads, so their offsets are checked in one place.

pub mod entry;

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

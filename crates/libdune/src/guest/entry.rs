//! All entry assembly of the runtime, in one place.
//!
//! Symbols defined here, and where they run:
//!
//! | symbol | runs in | what it does |
//! | --- | --- | --- |
//! | `dune_enter_trampoline` | host, then guest | records the caller's stack and resume point, switches to the host-loop stack; the vCPU later resumes at its label `1:` |
//! | `dune_syscall_entry` | guest ring 0 and 3 (LSTAR) | from ring 0: exits to the host with `out` so the host thread performs the call; from ring 3: the trap path with vector `SYSCALL_VECTOR` |
//! | `dune_syscall_entry_after_out` | never | the `ud2` after the ring-0 path's `out`: ends the range of `in_syscall_stub` |
//! | `dune_syscall_return_flush` | guest ring 0 | return path used after the host changed the page table: reloads CR3, then returns like `sysret` would |
//! | `dune_hypercall_return_flush` | guest ring 0 | the same after a `vmcall` used as a system call: reloads CR3 and returns to the address the host left below the red zone, every register but rax intact |
//! | `dune_trap_stubs` | guest (IDT) | 256 stubs of 16 bytes, one per vector: error code (0 if the CPU pushed none), rax, vector in eax |
//! | `dune_trap_common` | guest ring 0 | builds `struct dune_tf`, lowers IST1, saves FPU state, calls `dune_trap_dispatch`, returns with `iretq` |
//! | `__dune_jump_to_user` / `__dune_ret_from_user` | guest ring 0 | enter ring 3 with a frame / leave the session from a handler |
//! | `__dune_jump_to_user_irqs_off` / `__dune_jump_to_user_end` | never | just past its first `cli` / just past the `iretq` into ring 3: the range of `in_jump_to_user` (no signal frame there) |
//! | `dune_raw_clone` | host | `clone` whose child calls `fn(arg)` on a fresh host stack |
//! | `dune_raw_clone_native` | host | `clone` whose child resumes a guest register frame natively, outside Dune mode |
//! | `dune_signal_restorer` | host | `sa_restorer` of the host signal handler: `rt_sigreturn` |
//! | `dune_exit_thread` | host | unmaps the thread's own host stack and exits without touching it again |
//! | `dune_pop_frame` | guest ring 0 | leaves the trap path for good: resumes a ring-0 frame with `iretq`, trap stack reset |
//!
//! Every offset the assembly uses is a `const` derived with `offset_of!` below.

use core::mem::offset_of;

use super::{DuneTf, EnterFrame, NativeFrame, Percpu, SYSCALL_VECTOR, TRAP_LEVEL_STACK, TSS_IST1};

/// I/O port the LSTAR stub writes to: "perform the system call in `rax`".
pub const PORT_SYSCALL: u16 = 0x0d;
/// I/O port of `guest::dispatch::to_host`: "a trap for the host; rdi = frame, rsi =
/// vector, rdx = CR2".
pub const PORT_TRAP: u16 = 0x0e;
/// I/O port of `guest::dispatch::passthrough`: "perform the ring-3 system call in the
/// frame at rdi".
pub const PORT_PASSTHROUGH: u16 = 0x0f;
/// I/O port of `guest::dispatch::service`: "a runtime service; rdi = which
/// (`SERVICE_*`), rsi = its argument; the result in rax".
pub const PORT_SERVICE: u16 = 0x10;
/// Service: a close-on-exec duplicate of descriptor rsi at the application's reserved
/// numbers (`runtime::dup_reserved`).
pub const SERVICE_DUP_APP: u64 = 1;
/// Service: a close-on-exec duplicate of the runtime's descriptor of `/proc/self/maps`
/// at the application's reserved numbers (`runtime::own_maps`).
pub const SERVICE_DUP_MAPS: u64 = 2;
/// Size of one IDT stub; the stub for vector `v` is at `dune_trap_stubs + v * TRAP_STUB_SIZE`.
pub const TRAP_STUB_SIZE: usize = 16;
/// Bytes below `rsp` that ring-0 code must not touch: the System V red zone.
pub const RED_ZONE: usize = 128;
/// How far below the interrupted `rsp` the host puts the return address for
/// `dune_hypercall_return_flush`: past the red zone, then the address itself.
pub const HYPERCALL_ROOM: u64 = RED_ZONE as u64 + 8;

const ENTER_RSP: usize = offset_of!(EnterFrame, rsp);
const ENTER_RIP: usize = offset_of!(EnterFrame, rip);
const ENTER_HOST_STACK: usize = offset_of!(EnterFrame, host_stack_top);
const ENTER_HOST_RUN: usize = offset_of!(EnterFrame, host_run);

const N_RAX: usize = offset_of!(NativeFrame, rax);
const N_RBX: usize = offset_of!(NativeFrame, rbx);
const N_RCX: usize = offset_of!(NativeFrame, rcx);
const N_RDX: usize = offset_of!(NativeFrame, rdx);
const N_RSI: usize = offset_of!(NativeFrame, rsi);
const N_RDI: usize = offset_of!(NativeFrame, rdi);
const N_RBP: usize = offset_of!(NativeFrame, rbp);
const N_R8: usize = offset_of!(NativeFrame, r8);
const N_R9: usize = offset_of!(NativeFrame, r9);
const N_R10: usize = offset_of!(NativeFrame, r10);
const N_R11: usize = offset_of!(NativeFrame, r11);
const N_R12: usize = offset_of!(NativeFrame, r12);
const N_R13: usize = offset_of!(NativeFrame, r13);
const N_R14: usize = offset_of!(NativeFrame, r14);
const N_R15: usize = offset_of!(NativeFrame, r15);
const N_RIP: usize = offset_of!(NativeFrame, rip);
const N_RFLAGS: usize = offset_of!(NativeFrame, rflags);

// Vectors for which the CPU pushes an error code (Intel SDM vol. 3A, table 6-1):
// #DF 8, #TS 10, #NP 11, #SS 12, #GP 13, #PF 14, #AC 17, #CP 21, #VC 29, #SX 30.
core::arch::global_asm!(
    r#"
    .pushsection .text.dune_entry, "ax"

    // extern "C" fn dune_enter_trampoline(frame: *mut EnterFrame) -> u64
    // Host side: saves callee-saved registers on the caller's stack, stores rsp and the
    // address of label 1 in *frame, then calls frame.host_run(frame) on the host stack.
    // host_run never returns on the host; the vCPU starts at label 1 with the saved rsp.
    .globl dune_enter_trampoline
    .type dune_enter_trampoline, @function
dune_enter_trampoline:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, {enter_rsp}(%rdi)
    lea 1f(%rip), %rax
    mov %rax, {enter_rip}(%rdi)
    mov {enter_host_stack}(%rdi), %rsp
    call *{enter_host_run}(%rdi)
    ud2
1:  // Guest ring 0 from here on.
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    xor %eax, %eax
    ret
    .size dune_enter_trampoline, . - dune_enter_trampoline

    // LSTAR target, for ring 0 and ring 3 alike (GS base is the per-vCPU block in both).
    // From ring 0: exit to the host with `out`; the host performs the call with these
    // registers and resumes at rcx itself, so nothing here touches the stack (it is the
    // process's own, red zone included). The flags `testb` changes are in r11 already.
    // From ring 3: switch to the IST1 stack, build the frame an exception would have
    // (vector SYSCALL_VECTOR) and take the common trap path: no exit.
    .balign 16
    .globl dune_syscall_entry
    .type dune_syscall_entry, @function
dune_syscall_entry:
    // GS base may be ring 3's own (a selector load changes it): take the trusted
    // Percpu pointer from KERNEL_GS_BASE. From ring 0 both hold it, so this changes
    // nothing; from ring 3 the trap path puts it back into KERNEL_GS_BASE.
    swapgs
    testb $1, %gs:{pc_in_user}
    jnz 1f
    out %al, ${port_syscall}
    .globl dune_syscall_entry_after_out
dune_syscall_entry_after_out:
    ud2
1:  mov %rsp, %gs:{pc_scratch}
    mov %gs:{tss_ist1}, %rsp
    push ${user_ds}
    push %gs:{pc_scratch}
    push %r11
    push ${user_cs}
    push %rcx
    push $0
    push %rax
    mov ${syscall_vector}, %eax
    jmp dune_trap_common_gs_ok
    .size dune_syscall_entry, . - dune_syscall_entry

    // Host resumes here (rflags already restored, rcx = return rip) when it changed the
    // page table during the call: a CR3 reload drops stale translations (no global pages
    // are used). r11 gets rflags back as after a real SYSCALL; pushfq goes below the red zone.
    .balign 16
    .globl dune_syscall_return_flush
    .type dune_syscall_return_flush, @function
dune_syscall_return_flush:
    mov %cr3, %r11
    mov %r11, %cr3
    lea -{red_zone}(%rsp), %rsp
    pushfq
    pop %r11
    lea {red_zone}(%rsp), %rsp
    jmp *%rcx
    .size dune_syscall_return_flush, . - dune_syscall_return_flush

    // Return from a hypercall (vmcall/vmmcall used as a system call) after the host
    // changed the page table, preserving every register but rax: the host moved rsp
    // HYPERCALL_ROOM bytes down (below the red zone) and wrote the return address there;
    // `ret` pops it and skips the red zone back to the interrupted rsp.
    .globl dune_hypercall_return_flush
    .type dune_hypercall_return_flush, @function
dune_hypercall_return_flush:
    push %rax
    mov %cr3, %rax
    mov %rax, %cr3
    pop %rax
    ret ${red_zone}
    .size dune_hypercall_return_flush, . - dune_hypercall_return_flush

    // IDT stubs: every vector uses an IST stack (#DF its own), so the interrupted code's
    // stack and red zone are never written. Each pushes a zero error code where the CPU
    // pushes none, then rax, and passes the vector in eax.
    .balign {stub_size}
    .globl dune_trap_stubs
dune_trap_stubs:
    .set vec, 0
    .rept 256
    .balign {stub_size}
    .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    push $0
    .endif
    push %rax
    mov $vec, %eax
    jmp dune_trap_common
    .set vec, vec + 1
    .endr

    // Common trap path. On entry: rax = vector, and on the stack the frame down to the
    // saved rax. Pushes the rest of struct dune_tf, lowers TSS.ist1 by one level so a
    // nested exception lands below this one, saves the FPU state (handlers are ordinary
    // Rust/C code), switches FS to the ring-0 base when the trap came from ring 3, and
    // calls dune_trap_dispatch(tf, vector, cr2). Then everything in reverse, and iretq.
    .globl dune_trap_common
    .type dune_trap_common, @function
dune_trap_common:
    // From ring 3 (CS in the CPU's frame, above the two words the stub pushed) the GS
    // base is untrusted: swap in the Percpu pointer from KERNEL_GS_BASE first.
    testb $3, 24(%rsp)
    jz dune_trap_common_gs_ok
    swapgs
dune_trap_common_gs_ok:
    push %r15
    push %r14
    push %r13
    push %r12
    push %rbp
    push %rbx
    push %r11
    push %r10
    push %r9
    push %r8
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    mov %rsp, %rbp                  // rbp = tf
    mov %rax, %r14                  // r14 = vector
    mov %cr2, %r13                  // r13 = cr2, before anything else can fault
    incq %gs:{pc_trap_depth}
    mov %gs:{tss_ist1}, %rbx        // rbx = IST1 as the CPU used it
    lea -{level}(%rbx), %rax
    mov %rax, %gs:{tss_ist1}
    testb $3, {tf_cs}(%rbp)
    jz 1f
    movq $0, %gs:{pc_in_user}       // ring-0 code now: its syscalls go to the host
    mov %gs:{pc_kernel_cr3}, %rax   // a compartment's table: back to the process's
    test %rax, %rax
    jz 8f
    mov %rax, %cr3
8:  mov $0xc0000102, %ecx           // KERNEL_GS_BASE: the Percpu pointer again
    mov %gs:0, %rax                 // (swapgs left ring 3's GS base there)
    mov %rax, %rdx
    shr $32, %rdx
    wrmsr
    mov $0xc0000100, %ecx           // MSR_FS_BASE: save the user's, load ring 0's
    rdmsr
    mov %eax, %gs:{pc_user_fs}
    mov %edx, %gs:{pc_user_fs}+4
    mov %gs:{pc_kernel_fs}, %eax
    mov %gs:{pc_kernel_fs}+4, %edx
    wrmsr
1:  mov %gs:{pc_xsave_size}, %rax
    test %rax, %rax
    jz 2f
    mov %rsp, %r12
    sub %rax, %r12
    and $-64, %r12
    mov %r12, %rsp
    movq $0, 512(%r12)              // XRSTOR faults on a dirty XSAVE header
    movq $0, 520(%r12)
    movq $0, 528(%r12)
    movq $0, 536(%r12)
    movq $0, 544(%r12)
    movq $0, 552(%r12)
    movq $0, 560(%r12)
    movq $0, 568(%r12)
    mov $-1, %eax
    mov $-1, %edx
    xsave64 (%r12)
    jmp 3f
2:  lea -512(%rsp), %r12
    and $-64, %r12
    mov %r12, %rsp
    fxsave64 (%r12)
3:  testb $3, {tf_cs}(%rbp)
    jz 7f
    mov %r12, %gs:{pc_user_fpu}     // ring 3's FPU image, for user::leave
7:  mov %rbp, %rdi
    mov %r14, %rsi
    mov %r13, %rdx
    cld
    // RFLAGS.AC too: an interrupt or exception keeps ring 3's (SYSCALL masks it), and
    // ring-0 code must not run with it (it lifts SMAP); iretq gives ring 3 its own back.
    pushfq
    andq $~0x40000, (%rsp)
    popfq
    call dune_trap_dispatch
    mov %gs:{pc_xsave_size}, %rax
    test %rax, %rax
    jz 4f
    mov $-1, %eax
    mov $-1, %edx
    xrstor64 (%r12)
    jmp 5f
4:  fxrstor64 (%r12)
5:  testb $3, {tf_cs}(%rbp)
    jz 6f
    mov $0xc0000100, %ecx           // back to ring 3: its FS base, its syscalls
    mov %gs:{pc_user_fs}, %eax
    mov %gs:{pc_user_fs}+4, %edx
    wrmsr
    movq $1, %gs:{pc_in_user}
    mov %gs:{pc_user_cr3}, %rax     // a compartment's table again (only the IST
    test %rax, %rax                 // stack and this block are touched from here on)
    jz 6f
    mov %rax, %cr3
6:  mov %rbx, %gs:{tss_ist1}
    decq %gs:{pc_trap_depth}
    mov %rbp, %rsp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %r8
    pop %r9
    pop %r10
    pop %r11
    pop %rbx
    pop %rbp
    pop %r12
    pop %r13
    pop %r14
    pop %r15
    pop %rax
    add $8, %rsp
    iretq
    .size dune_trap_common, . - dune_trap_common

    // extern "C" fn __dune_jump_to_user(tf: *const DuneTf, fpu: *const u8) -> i64
    // Runs tf in ring 3 until a handler calls __dune_ret_from_user(ret), which makes this
    // call return ret. Saves callee-saved registers and rsp for that; FS base: the
    // current one is ring 0's, Percpu.user_fs is loaded for ring 3. When fpu is not
    // null, ring 3 starts with the FPU/SSE/AVX state of that XSAVE (or FXSAVE) image,
    // loaded last so no ring-0 code can change the registers after it.
    .globl __dune_jump_to_user
    .type __dune_jump_to_user, @function
__dune_jump_to_user:
    // Interrupts off from the first step: ring 3's FS base, FPU state and page table
    // are loaded below while ring 0 still runs, and no ring-0 handler may run on them.
    // A signal the host raises meanwhile waits in the local APIC and is taken at ring
    // 3's first instruction (the iretq turns IF back on), which ends the session.
    cli
    .globl __dune_jump_to_user_irqs_off
__dune_jump_to_user_irqs_off:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %gs:{pc_ksp_saved}
    mov %rdi, %rbx
    mov %rsi, %r12
    mov $0xc0000100, %ecx
    rdmsr
    mov %eax, %gs:{pc_kernel_fs}
    mov %edx, %gs:{pc_kernel_fs}+4
    // Ring 3 starts with null DS, ES and FS selectors, whatever the last session left
    // (a selector is 16 bits one session could pass to the next). FS's, before its base
    // is written: on Intel loading a null FS clears the base. GS comes last, below.
    xor %eax, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %fs
    mov %gs:{pc_user_fs}, %eax
    mov %gs:{pc_user_fs}+4, %edx
    wrmsr
    test %r12, %r12
    jz 2f
    mov %gs:{pc_xsave_size}, %rax
    test %rax, %rax
    jz 1f
    mov $-1, %eax
    mov $-1, %edx
    xrstor64 (%r12)
    jmp 2f
1:  fxrstor64 (%r12)
2:
    // The frame goes to Percpu.uframe, not the stack: after the switch to user_cr3
    // (a compartment's table) only the per-vCPU block is sure to be mapped.
    mov {tf_rax}(%rbx), %rax
    mov %rax, %gs:{pc_uframe}
    mov {tf_rip}(%rbx), %rax
    mov %rax, %gs:{pc_uframe}+8
    mov {tf_cs}(%rbx), %rax
    mov %rax, %gs:{pc_uframe}+16
    mov {tf_rflags}(%rbx), %rax
    mov %rax, %gs:{pc_uframe}+24
    mov {tf_rsp}(%rbx), %rax
    mov %rax, %gs:{pc_uframe}+32
    mov {tf_ss}(%rbx), %rax
    mov %rax, %gs:{pc_uframe}+40
    mov {tf_rsi}(%rbx), %rsi
    mov {tf_rdx}(%rbx), %rdx
    mov {tf_rcx}(%rbx), %rcx
    mov {tf_r8}(%rbx), %r8
    mov {tf_r9}(%rbx), %r9
    mov {tf_r10}(%rbx), %r10
    mov {tf_r11}(%rbx), %r11
    mov {tf_rbp}(%rbx), %rbp
    mov {tf_r12}(%rbx), %r12
    mov {tf_r13}(%rbx), %r13
    mov {tf_r14}(%rbx), %r14
    mov {tf_r15}(%rbx), %r15
    mov {tf_rdi}(%rbx), %rdi
    mov {tf_rbx}(%rbx), %rbx
    mov %gs:{pc_user_cr3}, %rax
    test %rax, %rax
    jz 4f
    mov %rax, %cr3
4:  mov %gs:0, %rsp
    lea {pc_uframe}+8(%rsp), %rsp   // the iretq frame; IF comes back with its rflags
    movq $1, %gs:{pc_in_user}
    // A null GS selector, after the last use of the GS base here: on Intel the load
    // clears GS's base, which ring 3 cannot use anyway (the trap path takes the
    // Percpu pointer from KERNEL_GS_BASE with swapgs).
    xor %eax, %eax
    mov %eax, %gs
    mov -8(%rsp), %rax              // ring 3's rax, from the frame's first word
    iretq
    .globl __dune_jump_to_user_end
__dune_jump_to_user_end:
    .size __dune_jump_to_user, . - __dune_jump_to_user

    // extern "C" fn __dune_ret_from_user(ret: i64) -> !
    // From a handler of the current user session: abandons the trap frames (IST1 back
    // to its top), leaves the session, and returns ret from __dune_jump_to_user.
    .globl __dune_ret_from_user
    .type __dune_ret_from_user, @function
__dune_ret_from_user:
    movq $0, %gs:{pc_in_user}
    movq $0, %gs:{pc_trap_depth}
    mov %gs:{pc_ist1_top}, %rax
    mov %rax, %gs:{tss_ist1}
    mov %gs:{pc_ksp_saved}, %rsp
    mov %rdi, %rax
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret
    .size __dune_ret_from_user, . - __dune_ret_from_user

    // extern "C" fn dune_raw_clone(flags, stack_top, ptid, ctid, tls, f: extern "C" fn(*mut u8) -> !, arg) -> i64
    // The child calls f(arg) on stack_top (16-byte aligned). Returns the raw result in the parent.
    .globl dune_raw_clone
    .type dune_raw_clone, @function
dune_raw_clone:
    mov 8(%rsp), %rax
    sub $16, %rsi
    mov %r9, 0(%rsi)
    mov %rax, 8(%rsi)
    mov %rcx, %r10
    mov $56, %eax           // SYS_clone: flags, newsp, parent_tid, child_tid, tls
    syscall
    test %rax, %rax
    jnz 2f
    xor %ebp, %ebp
    pop %rax
    pop %rdi
    call *%rax
    ud2
2:  ret
    .size dune_raw_clone, . - dune_raw_clone

    // extern "C" fn dune_raw_clone_native(flags, newsp, ptid, ctid, tls, frame: *const NativeFrame) -> i64
    // The child loads the guest registers from *frame (shared memory: CLONE_VM), with
    // rax = 0 and rsp = newsp, and jumps to frame.rip: it runs natively, outside Dune mode.
    .globl dune_raw_clone_native
    .type dune_raw_clone_native, @function
dune_raw_clone_native:
    mov %rcx, %r10
    mov $56, %eax
    syscall
    test %rax, %rax
    jnz 3f
    // Child. newsp may be the parent's own rsp (vfork-style); step over its red zone.
    lea -{red_zone}(%rsp), %rsp
    push {n_rip}(%r9)
    push {n_rflags}(%r9)
    mov {n_rbx}(%r9), %rbx
    mov {n_rcx}(%r9), %rcx
    mov {n_rdx}(%r9), %rdx
    mov {n_rsi}(%r9), %rsi
    mov {n_rdi}(%r9), %rdi
    mov {n_rbp}(%r9), %rbp
    mov {n_r8}(%r9), %r8
    mov {n_r10}(%r9), %r10
    mov {n_r11}(%r9), %r11
    mov {n_r12}(%r9), %r12
    mov {n_r13}(%r9), %r13
    mov {n_r14}(%r9), %r14
    mov {n_r15}(%r9), %r15
    mov {n_r9}(%r9), %r9
    xor %eax, %eax
    popfq
    // Return to rip and drop the red-zone gap in one step.
    ret ${red_zone}
3:  ret
    .size dune_raw_clone_native, . - dune_raw_clone_native

    // extern "C" fn dune_exit_thread(stack_base, stack_len, status) -> !
    // Unmaps the calling thread's host stack and exits; no memory access after munmap.
    .globl dune_exit_thread
    .type dune_exit_thread, @function
dune_exit_thread:
    mov %rdx, %r8
    mov $11, %eax           // SYS_munmap(stack_base, stack_len)
    syscall
    mov %r8, %rdi
    mov $60, %eax           // SYS_exit(status)
    syscall
    ud2
    .size dune_exit_thread, . - dune_exit_thread

    // sa_restorer of the host's own signal handler (x86-64 requires one).
    .balign 16
    .globl dune_signal_restorer
    .type dune_signal_restorer, @function
dune_signal_restorer:
    mov $15, %eax           // SYS_rt_sigreturn
    syscall
    ud2
    .size dune_signal_restorer, . - dune_signal_restorer

    .popsection
    "#,
    enter_rsp = const ENTER_RSP,
    enter_rip = const ENTER_RIP,
    enter_host_stack = const ENTER_HOST_STACK,
    enter_host_run = const ENTER_HOST_RUN,
    pc_in_user = const offset_of!(Percpu, in_user),
    pc_scratch = const offset_of!(Percpu, scratch),
    pc_ksp_saved = const offset_of!(Percpu, ksp_saved),
    pc_ist1_top = const offset_of!(Percpu, ist1_top),
    pc_xsave_size = const offset_of!(Percpu, xsave_size),
    pc_kernel_fs = const offset_of!(Percpu, kernel_fs),
    pc_user_fs = const offset_of!(Percpu, user_fs),
    pc_trap_depth = const offset_of!(Percpu, trap_depth),
    pc_user_fpu = const offset_of!(Percpu, user_fpu),
    pc_kernel_cr3 = const offset_of!(Percpu, kernel_cr3),
    pc_user_cr3 = const offset_of!(Percpu, user_cr3),
    pc_uframe = const offset_of!(Percpu, uframe),
    tss_ist1 = const TSS_IST1,
    level = const TRAP_LEVEL_STACK,
    syscall_vector = const SYSCALL_VECTOR,
    user_cs = const dune_x86::gdt::USER_CS,
    user_ds = const dune_x86::gdt::USER_DS,
    tf_rdi = const offset_of!(DuneTf, rdi),
    tf_rsi = const offset_of!(DuneTf, rsi),
    tf_rdx = const offset_of!(DuneTf, rdx),
    tf_rcx = const offset_of!(DuneTf, rcx),
    tf_r8 = const offset_of!(DuneTf, r8),
    tf_r9 = const offset_of!(DuneTf, r9),
    tf_r10 = const offset_of!(DuneTf, r10),
    tf_r11 = const offset_of!(DuneTf, r11),
    tf_rbx = const offset_of!(DuneTf, rbx),
    tf_rbp = const offset_of!(DuneTf, rbp),
    tf_r12 = const offset_of!(DuneTf, r12),
    tf_r13 = const offset_of!(DuneTf, r13),
    tf_r14 = const offset_of!(DuneTf, r14),
    tf_r15 = const offset_of!(DuneTf, r15),
    tf_rax = const offset_of!(DuneTf, rax),
    tf_rip = const offset_of!(DuneTf, rip),
    tf_cs = const offset_of!(DuneTf, cs),
    tf_rflags = const offset_of!(DuneTf, rflags),
    tf_rsp = const offset_of!(DuneTf, rsp),
    tf_ss = const offset_of!(DuneTf, ss),
    port_syscall = const PORT_SYSCALL,
    red_zone = const RED_ZONE,
    stub_size = const TRAP_STUB_SIZE,
    n_rip = const N_RIP,
    n_rflags = const N_RFLAGS,
    n_rbx = const N_RBX,
    n_rcx = const N_RCX,
    n_rdx = const N_RDX,
    n_rsi = const N_RSI,
    n_rdi = const N_RDI,
    n_rbp = const N_RBP,
    n_r8 = const N_R8,
    n_r9 = const N_R9,
    n_r10 = const N_R10,
    n_r11 = const N_R11,
    n_r12 = const N_R12,
    n_r13 = const N_R13,
    n_r14 = const N_R14,
    n_r15 = const N_R15,
    options(att_syntax)
);

// The native frame's rax is not loaded (the child's rax is 0); keep the field so the
// frame mirrors `kvm_regs` and callers can fill it uniformly.
const _: usize = N_RAX;

extern "C" {
    /// Enters Dune mode; see the module table.
    pub fn dune_enter_trampoline(frame: *mut EnterFrame) -> u64;
    /// LSTAR target.
    pub fn dune_syscall_entry();
    /// The `ud2` right after the ring-0 path's `out` (never reached: the host resumes
    /// the guest at the return address). The guest stands in `[dune_syscall_entry,
    /// dune_syscall_entry_after_out)` between `syscall` and its exit: see
    /// [`in_syscall_stub`].
    pub fn dune_syscall_entry_after_out();
    /// Return path that reloads CR3.
    pub fn dune_syscall_return_flush();
    /// Hypercall return path that reloads CR3 (see `HYPERCALL_ROOM`).
    pub fn dune_hypercall_return_flush();
    /// Runs `tf` in ring 3 (with the FPU image `fpu` unless null) until a handler
    /// calls `__dune_ret_from_user`.
    pub fn __dune_jump_to_user(tf: *const DuneTf, fpu: *const u8) -> i64;
    /// Just past `__dune_jump_to_user`'s first instruction, its `cli`: starts the
    /// range of [`in_jump_to_user`].
    pub fn __dune_jump_to_user_irqs_off();
    /// Just past `__dune_jump_to_user`'s `iretq` (never run): ends the range of
    /// [`in_jump_to_user`].
    pub fn __dune_jump_to_user_end();
    /// Leaves the current user session; `__dune_jump_to_user` returns `ret`.
    pub fn __dune_ret_from_user(ret: i64) -> !;
    /// First of 256 IDT stubs, `TRAP_STUB_SIZE` bytes apart.
    pub fn dune_trap_stubs();
    /// `clone` whose child calls `f(arg)` on `stack_top`.
    pub fn dune_raw_clone(
        flags: u64,
        stack_top: u64,
        ptid: u64,
        ctid: u64,
        tls: u64,
        f: extern "C" fn(*mut u8) -> !,
        arg: *mut u8,
    ) -> i64;
    /// `clone` whose child resumes `*frame` natively.
    pub fn dune_raw_clone_native(
        flags: u64,
        newsp: u64,
        ptid: u64,
        ctid: u64,
        tls: u64,
        frame: *const NativeFrame,
    ) -> i64;
    /// Restorer of the host's signal handler: calls `rt_sigreturn`.
    pub fn dune_signal_restorer();
    /// Unmaps the current host stack and exits the thread.
    pub fn dune_exit_thread(stack_base: u64, stack_len: u64, status: u64) -> !;
}

/// Resumes the ring-0 context `*tf` (`api::trap::pop_trap_frame`, which checks it).
/// The frame's 21 quadwords go below the target stack's red zone, 16-byte aligned;
/// from there the general registers are popped and `iretq` takes `rip`..`ss`. Only
/// after the frame is off the trap stack are the trap depth and TSS.ist1 reset (so
/// a nested trap can no longer land on it), with no register to spare: by memory
/// operands. Interrupts stay off until `iretq` loads the frame's RFLAGS.
///
/// # Safety
/// In Dune mode, with a ring-0 frame whose `rip` and `rsp` can run, and 296 writable
/// bytes below `rsp`; the calling context is abandoned.
#[unsafe(naked)]
pub unsafe extern "C" fn dune_pop_frame(tf: *const DuneTf) -> ! {
    core::arch::naked_asm!(
        "cli",
        "mov {tf_rsp}(%rdi), %rax",
        "sub ${room}, %rax",
        "and $-16, %rax",
        "mov %rdi, %rsi",
        "mov %rax, %rdi",
        "mov ${words}, %ecx",
        "cld",
        "rep movsq",
        "mov %rax, %rsp",
        "movq $0, %gs:{pc_trap_depth}",
        "pushq %gs:{pc_ist1_top}",
        "popq %gs:{tss_ist1}",
        "pop %rdi",
        "pop %rsi",
        "pop %rdx",
        "pop %rcx",
        "pop %r8",
        "pop %r9",
        "pop %r10",
        "pop %r11",
        "pop %rbx",
        "pop %rbp",
        "pop %r12",
        "pop %r13",
        "pop %r14",
        "pop %r15",
        "pop %rax",
        "add $8, %rsp",
        "iretq",
        tf_rsp = const offset_of!(DuneTf, rsp),
        room = const RED_ZONE + core::mem::size_of::<DuneTf>(),
        words = const core::mem::size_of::<DuneTf>() / 8,
        pc_trap_depth = const offset_of!(Percpu, trap_depth),
        pc_ist1_top = const offset_of!(Percpu, ist1_top),
        tss_ist1 = const TSS_IST1,
        options(att_syntax),
    )
}

// dune_pop_frame pops the registers in field order, then skips `err`: the layout it needs.
const _: () = assert!(offset_of!(DuneTf, rdi) == 0 && offset_of!(DuneTf, rax) == 14 * 8);
const _: () = assert!(offset_of!(DuneTf, err) == 15 * 8 && offset_of!(DuneTf, rip) == 16 * 8);
const _: () = assert!(offset_of!(DuneTf, ss) == 20 * 8 && core::mem::size_of::<DuneTf>() == 21 * 8);

/// Address of an assembly symbol declared above.
pub fn addr_of(f: unsafe extern "C" fn()) -> u64 {
    f as *const () as u64
}

/// Whether `rip` lies in the ring-0 path of the syscall stub before its `out`
/// completed. A guest stopped there (a signal made `KVM_RUN` return first) must not be
/// given a signal frame: the frame would save `rip` at the `out`, and when the
/// handler's `rt_sigreturn` (an `out` at the same address) restores it, KVM completes
/// that exit by skipping the instruction at the unchanged `rip` (its
/// `complete_userspace_io` for port I/O), and the guest runs the `ud2` after it.
pub fn in_syscall_stub(rip: u64) -> bool {
    (addr_of(dune_syscall_entry)..addr_of(dune_syscall_entry_after_out)).contains(&rip)
}

/// Whether `rip` is in `__dune_jump_to_user` past its `cli`: ring 0 with interrupts
/// off, about to load (or having loaded) ring 3's FS base, FPU state and page table. A
/// guest stopped there (a signal made `KVM_RUN` return first) must not be given a
/// ring-0 signal frame: the handler would run on ring 3's thread pointer (a monitor's
/// thread-local write faulted below the program's TLS block under lighttpd's
/// `SIGALRM`s in the lane). It is sent an interrupt instead, which ring 3's first
/// instruction takes. Stopped on the `cli` itself, the guest is ordinary ring-0 code.
pub fn in_jump_to_user(rip: u64) -> bool {
    (addr_of(__dune_jump_to_user_irqs_off)..addr_of(__dune_jump_to_user_end)).contains(&rip)
}

/// Address of the IDT stub for `vector`.
pub fn trap_stub(vector: u8) -> u64 {
    addr_of(dune_trap_stubs) + vector as u64 * TRAP_STUB_SIZE as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interrupts are off for all of `__dune_jump_to_user` that `in_jump_to_user`
    /// covers: its first instruction is the one-byte `cli`, the range starts right
    /// after it and ends just past the `iretq` (`48 cf`), which turns them back on in
    /// ring 3. A signal that finds the vCPU in the range is sent as an interrupt, and
    /// only this makes ring 3 take it at its first instruction.
    #[test]
    fn jump_to_user_has_interrupts_off_in_its_range() {
        let start = __dune_jump_to_user as *const () as u64;
        let off = addr_of(__dune_jump_to_user_irqs_off);
        let end = addr_of(__dune_jump_to_user_end);
        // SAFETY: reads the first byte and the two before the end label of the
        // function's own code, which is mapped and readable in this process.
        let (first, last) = unsafe { (*(start as *const u8), core::slice::from_raw_parts((end - 2) as *const u8, 2)) };
        assert_eq!(first, 0xfa, "__dune_jump_to_user does not start with cli");
        assert_eq!(off, start + 1);
        assert_eq!(last, [0x48, 0xcf], "__dune_jump_to_user_end is not right after iretq");
        assert!(!in_jump_to_user(start) && in_jump_to_user(off) && in_jump_to_user(end - 2) && !in_jump_to_user(end));
    }
}

//! A ring-3 sandbox: run code with user privilege and decide about each of its
//! system calls in ring 0.
//!
//! The untrusted code (a few instructions, below) writes a message, asks for its
//! pid, tries to open `/etc/passwd` and exits with what that returned. Its pages
//! are ordinary process memory made accessible to ring 3 (PERM_U) in the guest page
//! table; everything else stays supervisor-only. Each `syscall` it makes traps to
//! `on_syscall` in ring 0, with no exit to the host: `write` and `getpid` are passed
//! to Linux, `openat` is denied with EACCES, `exit_group` ends the session. The
//! handler only records what happened (no printing, no locks: it runs in a trap);
//! `main` prints the log afterwards.
//!
//! Run in Dune mode (the VM lane). The C version is `examples/c/ring3-syscalls.c`.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use libdune::trap::TrapFrame;
use libdune::vm::{self, PERM_R, PERM_U, PERM_W, PERM_X};

// The ring-3 program. Position independent (it is copied), data next to the code.
core::arch::global_asm!(
    ".pushsection .rodata.ring3_program, \"a\"",
    ".globl ring3_program_start",
    ".globl ring3_program_end",
    "ring3_program_start:",
    "    mov $1, %eax",             // write(1, message, length)
    "    mov $1, %edi",
    "    lea 1f(%rip), %rsi",
    "    mov $(2f - 1f), %edx",
    "    syscall",
    "    mov $39, %eax",            // getpid()
    "    syscall",
    "    mov $257, %eax",           // openat(AT_FDCWD, "/etc/passwd", O_RDONLY)
    "    mov $-100, %rdi",
    "    lea 3f(%rip), %rsi",
    "    xor %edx, %edx",
    "    syscall",
    "    mov %rax, %rdi",           // exit_group(what openat returned)
    "    mov $231, %eax",
    "    syscall",
    "    ud2",
    "1:  .ascii \"hello from ring 3\\n\"",
    "2:",
    "3:  .asciz \"/etc/passwd\"",
    "ring3_program_end:",
    ".popsection",
    options(att_syntax)
);

extern "C" {
    static ring3_program_start: u8;
    static ring3_program_end: u8;
}

const PAGE: usize = 4096;

/// The log: (system call number, result or -errno), filled by the handler.
static LOG: [(AtomicI64, AtomicI64); 16] = [const { (AtomicI64::new(0), AtomicI64::new(0)) }; 16];
static LOGGED: AtomicUsize = AtomicUsize::new(0);

fn log(nr: u64, result: i64) {
    let i = LOGGED.fetch_add(1, Ordering::Relaxed);
    if let Some((n, r)) = LOG.get(i) {
        n.store(nr as i64, Ordering::Relaxed);
        r.store(result, Ordering::Relaxed);
    }
}

/// Ring 0, for every system call made in ring 3.
fn on_syscall(tf: &mut TrapFrame) {
    match tf.rax as i64 {
        libc::SYS_write | libc::SYS_getpid => {
            let nr = tf.rax;
            libdune::user::passthrough_syscall(tf); // Linux does it; result in rax
            log(nr, tf.rax as i64);
        }
        libc::SYS_exit_group => {
            log(tf.rax, 0);
            libdune::user::ret_from_user(tf.rdi as i64); // jump_to_user returns this
        }
        _ => {
            log(tf.rax, -libc::EACCES as i64);
            tf.rax = (-libc::EACCES as i64) as u64; // denied: the call "fails"
        }
    }
}

fn name(nr: i64) -> &'static str {
    match nr {
        libc::SYS_write => "write",
        libc::SYS_getpid => "getpid",
        libc::SYS_openat => "openat",
        libc::SYS_exit_group => "exit_group",
        _ => "?",
    }
}

fn main() -> Result<(), libdune::Error> {
    libdune::enter()?;

    // Two pages of ordinary memory: code (with its data) and stack.
    let layout = std::alloc::Layout::from_size_align(2 * PAGE, PAGE).expect("layout");
    // SAFETY: a non-zero size.
    let mem = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!mem.is_null());
    // SAFETY: the program's bounds are the two labels of the same section.
    let program = unsafe {
        let start = &raw const ring3_program_start;
        std::slice::from_raw_parts(start, (&raw const ring3_program_end).offset_from(start) as usize)
    };
    // SAFETY: the program is smaller than a page; `mem` holds two.
    unsafe { std::ptr::copy_nonoverlapping(program.as_ptr(), mem, program.len()) };

    // Give ring 3 access to exactly these two pages (in the guest page table only).
    let root = vm::pgroot()?;
    let (code, stack) = (mem as u64, mem as u64 + PAGE as u64);
    vm::mprotect(root, code, PAGE as u64, PERM_R | PERM_X | PERM_U)?;
    vm::mprotect(root, stack, PAGE as u64, PERM_R | PERM_W | PERM_U)?;
    vm::flush_tlb();

    libdune::trap::register_syscall_handler(on_syscall);
    let tf = TrapFrame { rip: code, rsp: stack + PAGE as u64 - 64, ..Default::default() };
    // SAFETY: code and stack are mapped with PERM_U; the program ends with exit_group,
    // whose handler calls ret_from_user.
    let status = unsafe { libdune::user::jump_to_user(&tf) };
    libdune::trap::unregister_syscall_handler();

    let pid = std::process::id() as i64;
    for (n, r) in LOG.iter().take(LOGGED.load(Ordering::Relaxed)) {
        let (nr, result) = (n.load(Ordering::Relaxed), r.load(Ordering::Relaxed));
        let verdict = match nr {
            libc::SYS_exit_group => "ends the session".to_string(),
            libc::SYS_getpid if result == pid => "allowed, returned our pid".to_string(),
            _ if result == -libc::EACCES as i64 => "denied with EACCES".to_string(),
            _ => format!("allowed, returned {result}"),
        };
        println!("ring 3 called {}: {verdict}", name(nr));
    }
    println!("ring 3 session returned {status}");

    // Back to supervisor-only before the memory returns to the allocator.
    vm::mprotect(root, code, 2 * PAGE as u64, PERM_R | PERM_W)?;
    vm::flush_tlb();
    // SAFETY: allocated above with this layout.
    unsafe { std::alloc::dealloc(mem, layout) };
    Ok(())
}

//! Fatal faults: each scenario ends the process, which must die with a report
//! (SIGSEGV, stack overflows, a triple fault, a trap-stack overflow).

use libdune::trap::TrapFrame;

use crate::{enter, READ_ONLY};

/// A wild write: the process dies by SIGSEGV after a report.
pub(crate) fn segv_null() {
    enter();
    // SAFETY: deliberately invalid: the test expects the process to die here.
    unsafe { std::ptr::write_volatile(0x10 as *mut u64, 1) };
    eprintln!("survived a null write");
    std::process::exit(1);
}

/// A write to read-only memory: SIGSEGV, like outside.
pub(crate) fn segv_readonly() {
    enter();
    check!(std::hint::black_box(READ_ONLY) == 77);
    // SAFETY: deliberately invalid: writes into .rodata.
    unsafe { std::ptr::write_volatile(std::hint::black_box(std::ptr::addr_of!(READ_ONLY)) as *mut u64, 1) };
    eprintln!("survived a write to read-only memory");
    std::process::exit(1);
}

/// Rust's own guard-page handler works in Dune mode: the overflow is reported.
pub(crate) fn stack_overflow() {
    #[allow(unconditional_recursion)]
    fn down(n: u64) -> u64 {
        let b = std::hint::black_box([n; 64]);
        down(b[1] + 1) + b[2]
    }
    enter();
    let t = std::thread::spawn(|| down(0));
    let _ = t.join();
    eprintln!("survived a stack overflow");
    std::process::exit(1);
}

/// Ring 0 breaks its own IDT: #UD cannot be delivered, #DF neither, the CPU shuts
/// down. The process must die with a report, not hang.
pub(crate) fn triple_fault() {
    enter();
    let empty: [u8; 10] = [0; 10];
    // SAFETY: deliberately fatal: loads an IDT of limit 0, then raises #UD.
    unsafe { std::arch::asm!("lidt [{0}]", "ud2", in(reg) &empty, options(noreturn)) };
}

#[inline(never)]
fn deep(n: u64) -> u64 {
    let b = std::hint::black_box([n; 128]);
    if n == 0 { b[0] } else { deep(n - 1) + b[5] }
}

fn overflowing_handler(tf: &mut TrapFrame) {
    // About 1 KiB per level: far more than a handler's trap stack.
    tf.rip += 2 + deep(1 << 20);
}

/// A handler that overflows its trap stack ends the process with a report.
pub(crate) fn handler_overflow() {
    enter();
    check!(libdune::trap::register_intr_handler(6, overflowing_handler).is_ok());
    // SAFETY: deliberately fatal: the #UD handler recurses off its stack.
    unsafe { std::arch::asm!("ud2") };
    eprintln!("survived a trap-stack overflow");
    std::process::exit(1);
}


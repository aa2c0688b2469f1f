//! Scenarios that run in Dune mode, one per subcommand. Each checks what it can from
//! inside and prints `ok <scenario>` on success; the integration tests in
//! `tests/runtime.rs` run them and check exit status and output from outside.
//!
//! Checks use `check!`, which prints the failed condition and exits 1 (a panic in
//! Dune mode would also end the process, but less legibly).
//!
//! The scenarios are grouped by concern, one file each: `basic.rs` (basic,
//! registers, files, time, stats), `procs.rs` (threads, fork, vfork, Command,
//! exec, exit_group), `memory.rs` (mmap, heap, lazy mapping, stack growth),
//! `signals.rs`, `faults.rs` (scenarios that end in a fatal fault),
//! `privileged.rs` (ring-0 handlers, page tables, ring 3, shootdowns) and `robust.rs`
//! (the program closes, takes or unmaps what the runtime uses). This file
//! keeps the dispatch table, `check!`, `enter` and what several files share.

macro_rules! check {
    ($cond:expr $(, $($fmt:tt)*)?) => {
        if !$cond {
            eprintln!("check failed at line {}: {}", line!(), stringify!($cond));
            $(eprintln!($($fmt)*);)?
            std::process::exit(1);
        }
    };
}

mod basic;
mod faults;
mod memory;
mod privileged;
mod procs;
mod robust;
mod signals;

fn enter() {
    if let Err(e) = libdune::enter() {
        eprintln!("enter failed: {e}");
        std::process::exit(2);
    }
    check!(libdune::in_dune_mode(), "enter() returned but CS is not ring 0");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scenario = args.get(1).map(String::as_str).unwrap_or("");
    match scenario {
        "basic" => basic::basic(),
        "registers" => basic::registers(),
        "files" => basic::files(),
        "threads" => procs::threads(),
        "thread-churn" => procs::thread_churn(),
        "fork" => procs::fork(),
        "command" => procs::command(),
        "exec-fail" => procs::exec_fail(),
        "mmap" => memory::mmap(),
        "heap" => memory::heap(),
        "lazy" => memory::lazy(),
        "stack-growth" => memory::stack_growth(),
        "time" => basic::time(),
        "segv-null" => faults::segv_null(),
        "segv-readonly" => faults::segv_readonly(),
        "exit-group" => procs::exit_group(),
        "stats" => basic::stats(),
        "signal-handler" => signals::signal_handler(),
        "signal-fault-handler" => signals::signal_fault_handler(),
        "signal-timers" => signals::signal_timers(),
        "signal-restart" => signals::signal_restart(),
        "sigchld" => signals::sigchld(),
        "sigaltstack" => signals::sigaltstack(),
        "signal-thread" => signals::signal_thread(),
        "signal-default-term" => signals::signal_default_term(),
        "signal-modify-handlers" => signals::signal_modify_handlers(),
        "stack-overflow" => faults::stack_overflow(),
        "triple-fault" => faults::triple_fault(),
        "vfork" => procs::vfork(),
        "pgflt-handler" => privileged::pgflt_handler(),
        "dirty-bits" => privileged::dirty_bits(),
        "trap-handlers" => privileged::trap_handlers(),
        "ring3" => privileged::ring3(),
        "shootdown" => privileged::shootdown(),
        "hypercall" => privileged::hypercall(),
        "handler-overflow" => faults::handler_overflow(),
        "close-all" => robust::close_all(),
        "descriptors" => robust::descriptors(),
        "memory-guard" => robust::memory_guard(),
        "signals-robust" => robust::signals_robust(),
        _ => {
            eprintln!("usage: dune-testprog SCENARIO (unknown scenario {scenario:?})");
            std::process::exit(64);
        }
    }
    println!("ok {scenario}");
}

thread_local! {
    /// A thread-local value registers, threads and ring3 set and read back.
    static TLS_MARK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The calling thread's signal mask (registers and the signal scenarios).
unsafe fn current_mask() -> u64 {
    let mut old = 0u64;
    // SAFETY: rt_sigprocmask with a null new set only writes 8 bytes into `old`.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, std::ptr::null::<u64>(), &mut old as *mut u64, 8) };
    old
}

/// Read-only data: segv-readonly writes to it; ring3 tries to read it from ring 3.
static READ_ONLY: u64 = 77;

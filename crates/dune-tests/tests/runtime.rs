//! The core runtime, exercised by real programs in Dune mode.
//!
//! These need a `/dev/kvm` with hardware-virtualization semantics: run them through
//! `scripts/test` (which uses the QEMU lane, `scripts/vm-run`) or on a machine whose
//! `dune doctor` says Ready. Elsewhere they fail, by design: `enter()` refuses an
//! emulated ring 0 and the scenario exits 2.

use std::process::{Command, Output};

/// Runs a scenario (killed and failed if it hangs).
fn run(scenario: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dune-testprog"));
    cmd.arg(scenario);
    dune_tests::run_bounded(cmd)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a scenario that must succeed and print `ok <scenario>`.
fn pass(scenario: &str) -> Output {
    let out = run(scenario);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{scenario}: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stdout.lines().any(|l| l == format!("ok {scenario}")), "{scenario}: no ok line\nstdout:\n{stdout}\nstderr:\n{stderr}");
    out
}

#[test]
fn basic_syscalls_and_enter_twice() {
    let out = pass("basic");
    assert!(text(&out.stdout).contains("hello from ring 0"));
}

#[test]
fn registers_tls_fpu_xcr0_sigmask_survive_enter() {
    pass("registers");
}

#[test]
fn file_io() {
    pass("files");
}

#[test]
fn threads_start_in_dune_mode() {
    pass("threads");
}

#[test]
fn hundreds_of_threads_leave_nothing_behind() {
    pass("thread-churn");
}

#[test]
fn forked_child_stays_in_dune_mode() {
    pass("fork");
}

#[test]
fn command_spawns_and_execs() {
    pass("command");
}

#[test]
fn failed_execve_returns_error() {
    pass("exec-fail");
}

#[test]
fn mmap_munmap_mprotect_mremap() {
    pass("mmap");
}

#[test]
fn heap_grows() {
    pass("heap");
}

#[test]
fn memory_mapped_behind_the_runtimes_back_is_picked_up() {
    pass("lazy");
}

#[test]
fn main_stack_grows() {
    pass("stack-growth");
}

#[test]
fn vdso_time_matches_host() {
    pass("time");
}

#[test]
fn memslots_bounded_and_below_maxphyaddr() {
    pass("stats");
}

fn assert_segv(scenario: &str, what: &str) {
    use std::os::unix::process::ExitStatusExt;
    let out = run(scenario);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{scenario}: {:?}\nstderr:\n{stderr}", out.status);
    assert!(stderr.contains("dune: fatal"), "no report:\n{stderr}");
    assert!(stderr.contains("#PF"), "report lacks the vector:\n{stderr}");
    assert!(stderr.contains(what), "report lacks {what:?}:\n{stderr}");
    assert!(stderr.contains("rip 0x") && stderr.contains("cr2 0x"), "report lacks rip/cr2:\n{stderr}");
}

#[test]
fn wild_write_dies_by_sigsegv_with_report() {
    assert_segv("segv-null", "cr2 0x0000000000000010");
}

#[test]
fn write_to_read_only_memory_dies_by_sigsegv() {
    assert_segv("segv-readonly", "r--p");
}

#[test]
fn exit_group_ends_all_threads_with_status() {
    let out = run("exit-group");
    assert_eq!(out.status.code(), Some(17), "stderr:\n{}", text(&out.stderr));
}

#[test]
fn signal_handler_runs_in_dune_mode_with_siginfo_and_mask() {
    pass("signal-handler");
}

#[test]
fn sigsegv_handler_fixes_the_fault_and_the_access_retries() {
    pass("signal-fault-handler");
}

#[test]
fn setitimer_and_timer_create_deliver() {
    pass("signal-timers");
}

#[test]
fn interrupted_read_restarts_only_with_sa_restart() {
    pass("signal-restart");
}

#[test]
fn sigchld_is_delivered() {
    pass("sigchld");
}

#[test]
fn sa_onstack_uses_the_alternate_stack() {
    pass("sigaltstack");
}

#[test]
fn pthread_kill_reaches_that_thread_and_preinstalled_handlers_run_in_dune_mode() {
    pass("signal-thread");
}

#[test]
fn default_action_sigterm_ends_the_process() {
    use std::os::unix::process::ExitStatusExt;
    let out = run("signal-default-term");
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "stderr:\n{}", text(&out.stderr));
}

#[test]
fn stack_overflow_is_reported_by_rusts_handler() {
    use std::os::unix::process::ExitStatusExt;
    let out = run("stack-overflow");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}\nstderr:\n{stderr}", out.status);
    assert!(stderr.contains("has overflowed its stack"), "stderr:\n{stderr}");
}

#[test]
fn triple_fault_dies_with_a_report_not_a_hang() {
    use std::os::unix::process::ExitStatusExt;
    let out = run("triple-fault");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{:?}\nstderr:\n{stderr}", out.status);
    assert!(stderr.contains("dune: fatal: triple fault"), "stderr:\n{stderr}");
    assert!(stderr.contains("rip 0x"), "stderr:\n{stderr}");
}

#[test]
fn vfork_and_posix_spawn() {
    pass("vfork");
}

#[test]
fn page_fault_handler_maps_on_demand_without_exits() {
    pass("pgflt-handler");
}

#[test]
fn dirty_bits_track_exactly_the_written_pages() {
    pass("dirty-bits");
}

#[test]
fn trap_handlers_run_in_ring0_without_exits_and_nest() {
    pass("trap-handlers");
}

#[test]
fn ring3_syscalls_and_faults_reach_ring0_handlers() {
    pass("ring3");
}

#[test]
fn tlb_shootdown_reaches_every_thread() {
    pass("shootdown");
}

#[test]
fn handler_stack_overflow_is_reported_not_hung() {
    use std::os::unix::process::ExitStatusExt;
    let out = run("handler-overflow");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{:?}\nstderr:\n{stderr}", out.status);
    assert!(stderr.contains("trap stack overflow"), "stderr:\n{stderr}");
}

#[test]
fn closing_every_descriptor_leaves_dune_mode_working() {
    pass("close-all");
}

#[test]
fn runtime_descriptors_are_out_of_reach_and_limits_are_handled() {
    pass("descriptors");
}

#[test]
fn runtime_memory_cannot_be_unmapped_remapped_or_reprotected() {
    pass("memory-guard");
}

#[test]
fn handlers_changed_while_signals_are_in_flight() {
    pass("signal-modify-handlers");
}

#[test]
fn vmcall_and_vmmcall_are_system_calls_in_ring0_and_never_reach_linux_from_ring3() {
    pass("hypercall");
}

#[test]
fn blocked_signals_own_fault_handlers_and_alternate_stacks_everywhere() {
    pass("signals-robust");
}

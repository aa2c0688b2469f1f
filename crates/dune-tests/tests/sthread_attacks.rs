//! White-box attacks on sthreads (issue 17), in the VM lane.
//!
//! `apps/sthread/tests/c/sthread-attack.c` (built by `apps/sthread/build-c.sh`) runs
//! one scenario per test; each prints `ESCAPED: ...` for every way it got through the
//! boundary it attacks, and `ok <scenario>` when it ran to the end. A master that
//! dies, or whose thread an sthread holds (an alarm fires), fails the test too.

use std::path::PathBuf;
use std::process::Command;

use dune_tests::{fresh, profile_dir, run_bounded};

fn exe() -> PathBuf {
    let inputs = ["apps/sthread/src", "apps/sthread/include", "apps/sthread/tests/c", "crates/libdune/src"];
    fresh(profile_dir().join("sthread-attack"), &inputs, "build it on the host first with apps/sthread/build-c.sh (scripts/test does)")
}

fn contained(args: &[&str]) -> String {
    let mut cmd = Command::new(exe());
    cmd.args(args);
    let out = run_bounded(cmd);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    let name = args[0];
    assert!(
        !stdout.contains("ESCAPED") && out.status.success() && stdout.lines().any(|l| l == format!("ok {name}")),
        "{name}: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
}

/// A table rebuilt while the compartment's pages were dirty (a blocked sthread
/// handed to a new thread) must not hide those pages from the reset.
#[test]
fn recycling_after_a_rebuild_leaves_nothing_for_the_next_use() {
    contained(&["recycle-rebuild"]);
}

/// MXCSR, the x87 control word and stack, RFLAGS.AC and DF: the master's after every
/// sthread, whether it returned or left by a system call.
#[test]
fn the_masters_fpu_state_and_flags_are_its_own() {
    contained(&["fpu-state"]);
}

/// The vDSO's data pages, some of which KVM cannot back: the sthread ends, not the
/// master.
#[test]
fn an_unbacked_vvar_page_ends_the_sthread_only() {
    contained(&["vvar"]);
}

/// A write that would fill a pipe, `recv(MSG_WAITALL)`, opening a FIFO: none runs
/// on the master's thread.
#[test]
fn blocking_calls_never_hold_the_masters_thread() {
    contained(&["blocking"]);
}

#[test]
fn a_blocking_callgate_never_holds_the_masters_thread() {
    contained(&["blocking-gate"]);
}

/// `/proc/self/mem` through a read-only grant of `/` or `SYS_open`, and
/// `/proc/self/fd/N` of a descriptor not granted.
#[test]
fn procfs_is_not_the_masters() {
    contained(&["procfs"]);
}

#[test]
fn segment_selectors_carry_nothing_to_the_next_use() {
    contained(&["selectors"]);
}

/// Bytes next to the static TLS block and the thread control block are the master's.
#[test]
fn the_tls_snapshot_is_the_tls_block_only() {
    contained(&["tls-margin"]);
}

/// A library unloaded after `sthread_init`, and the master's data mapped where it
/// was.
#[test]
fn read_only_ranges_follow_the_memory_map() {
    contained(&["stale-ranges"]);
}

/// The master closes a client's socket and the next client gets its number: the
/// handler granted the first keeps reading the first.
#[test]
fn a_descriptor_grant_is_the_open_file_not_the_number() {
    contained(&["fd-numbers"]);
}

#[test]
fn no_set_id_files_through_a_directory_grant() {
    contained(&["setid"]);
}

#[test]
fn an_sthread_cannot_use_up_the_masters_descriptors() {
    contained(&["fd-exhaust"]);
}

/// No thread can be made for a blocked sthread: nothing of it is left behind.
#[test]
fn a_failed_hand_off_leaks_nothing() {
    contained(&["handoff-failure"]);
}

// ---- red-team round 1 ----

/// `recvfrom(MSG_TRUNC)` on a granted datagram socket returns more than the buffer:
/// the runtime must neither fail `sthread_create` nor lose the sthread (its tag held,
/// its join hanging), on the master's thread or a thread of its own.
#[test]
fn a_truncated_datagram_breaks_nothing() {
    println!("{}", contained(&["recv-trunc"]));
}

/// An sthread that never makes a system call: `sthread_create` must still return
/// (its time slice ends the session and it goes on on a thread of its own).
#[test]
fn an_sthread_that_computes_for_ever_never_holds_the_masters_thread() {
    println!("{}", contained(&["spin"]));
}

/// `pread64` of `/dev/kmsg` blocks (`pread64` is never checked).
#[test]
fn a_pread_that_blocks_never_holds_the_masters_thread() {
    println!("{}", contained(&["blocking-files", "/dev/kmsg"]));
}

/// `read` of `/proc/kmsg` blocks, although it is a regular file.
#[test]
fn a_read_of_a_regular_file_that_blocks_never_holds_the_masters_thread() {
    println!("{}", contained(&["blocking-files", "/proc/kmsg"]));
}

/// A pipe with bytes to spare but no free page: a write that does not merge waits.
#[test]
fn a_write_to_a_pipe_without_a_free_page_never_holds_the_masters_thread() {
    println!("{}", contained(&["pipe-slots"]));
}

/// A granted `pwrite64` past the master's `RLIMIT_FSIZE`: `SIGXFSZ` must not end the
/// master (as `SIGPIPE` does not).
#[test]
fn a_write_past_the_file_size_limit_never_ends_the_master() {
    println!("{}", contained(&["fsize"]));
}

/// A callgate's descriptor grant is the open file when the sthread was made, not the
/// number when the gate is called.
#[test]
fn a_callgates_descriptor_grant_is_the_open_file_not_the_number() {
    println!("{}", contained(&["gate-fd-numbers"]));
}

/// A running sthread (on a thread of its own) keeps no leaf of a read-only page the
/// master then makes writable, or of a library it unloads and maps data over.
/// Open (red-team round 1): the unload is contained now (its shootdown ends the ring-3
/// session, and the compartment drops what went stale), but making a page writable
/// sends no shootdown, so a running sthread keeps reading it; the same root as the
/// computing sthread: nothing interrupts ring 3 for the library. Run with `--ignored`.
#[test]
fn a_running_sthread_loses_pages_the_master_takes_back() {
    println!("{}", contained(&["stale-running"]));
}

/// Port I/O on the runtime's ports, `syscall` with TF, under `mov ss`, with bad stack
/// pointers or a loaded GS selector, far transfers to ring 0's selectors, `sidt`/`sgdt`
/// and reading the tables: each ends its sthread (or does nothing), never the master.
#[test]
fn ring3_cpu_tricks_end_the_sthread_only() {
    println!("{}", contained(&["cpu-tricks"]));
}

// ---- red-team round 2 ----

/// `sendto(MSG_DONTWAIT)` on a granted pipe: the flag tells the runtime the call
/// cannot block, but on a pipe it is a plain `write` that waits for room.
#[test]
fn sendto_dontwait_on_a_pipe_never_holds_the_masters_thread() {
    println!("{}", contained(&["sendto-pipe"]));
}

/// A granted eventfd says writable, but an add that would overflow its counter waits.
#[test]
fn an_eventfd_write_that_waits_never_holds_the_masters_thread() {
    println!("{}", contained(&["eventfd-write"]));
}

/// A granted pty master with a little room says writable; 64 KiB waits for a reader.
#[test]
fn a_terminal_write_that_waits_never_holds_the_masters_thread() {
    println!("{}", contained(&["pty-write"]));
}

/// An sthread opening a terminal (read-only, beneath a granted directory) must not make
/// it the controlling terminal of the master's session (nor get it SIGHUP on hangup).
#[test]
fn an_sthread_never_gives_the_master_a_controlling_terminal() {
    println!("{}", contained(&["ctty"]));
}

/// The stack-protector canary and pointer guard in the TLS copy are the master's.
#[test]
fn the_tls_copy_holds_none_of_the_masters_guards() {
    println!("{}", contained(&["tls-guards"]));
}

/// A write-only socket grant cannot shut the master's reading side.
#[test]
fn a_write_only_grant_cannot_shut_the_masters_reading() {
    println!("{}", contained(&["shutdown-rd"]));
}

/// `clock_gettime` with a clock id naming another thread of the master (or a clock
/// descriptor not granted).
#[test]
fn clock_ids_name_nothing_of_the_master() {
    println!("{}", contained(&["cpu-clock"]));
}

/// A background master (a job of its terminal) grants the terminal for reading: the
/// sthread's read must not stop the master with SIGTTIN.
#[test]
fn reading_a_granted_terminal_never_stops_the_master() {
    println!("{}", contained(&["sigttin"]));
}

/// `read`, `fstat`, `clock_gettime`, `getrandom` into tag memory granted read-only or
/// copy-on-write: the master's bytes never change, and the next use sees them.
#[test]
fn kernel_filled_buffers_respect_read_only_and_copy_on_write_grants() {
    println!("{}", contained(&["cow-syscall"]));
}

// ---- red-team round 3 ----

/// `mmap(MAP_FIXED)` over a shared read-only page sends no shootdown: a running
/// sthread keeps its leaf and reads the master's new data, and a `write` naming a page
/// it never touched is checked against the ranges from before the change.
#[test]
fn map_fixed_over_a_shared_page_ends_running_sessions() {
    println!("{}", contained(&["remap-fixed"]));
}

/// A read-only page of the image that the master makes writable, fills and makes
/// read-only again after `sthread_init` is the same file at the same offset in the
/// map: a new sthread must not read what the master wrote.
#[test]
fn a_resealed_read_only_page_is_not_shared() {
    println!("{}", contained(&["reseal"]));
}

/// A System V segment attached with `SHM_REMAP` over a shared read-only page records
/// no map change: a new sthread must not read the segment.
#[test]
fn shmat_remap_over_a_shared_page_is_not_shared() {
    println!("{}", contained(&["shm-remap"]));
}

/// The pointer guard hidden from the TLS copy is recoverable from the mangled exit
/// handlers in libc's writable data, copied into every compartment.
#[test]
fn the_snapshot_gives_away_no_pointer_guard() {
    println!("{}", contained(&["guard-leak"]));
}

/// The time slice's interrupt arriving while ring 0 handles the sthread's system
/// calls or page faults must not be lost: `sthread_create` returns.
#[test]
fn a_time_slice_that_ends_in_ring0_still_ends_the_sthread() {
    println!("{}", contained(&["slice-ring0"]));
}

// ---- red-team round 4 ----

/// A jump buffer in the program's data whose mangled RBP was 0 (or any word that is
/// no pointer) is not mangled again with the copy's guard: it is rol(guard, 17).
#[test]
fn a_jmp_buf_in_the_snapshot_gives_away_no_pointer_guard() {
    println!("{}", contained(&["guard-jmpbuf"]));
}

/// A read-only page of the image written through /proc/self/mem after init (no map
/// change) must not be shared with a new sthread.
#[test]
fn a_read_only_page_poked_through_proc_mem_is_not_shared() {
    println!("{}", contained(&["procmem-poke"]));
}

/// A read-only page of the image sealed with the master's data before sthread_init
/// must not be shared.
#[test]
fn a_read_only_page_sealed_before_init_is_not_shared() {
    println!("{}", contained(&["reseal-early"]));
}

/// Poll-then-read of a pipe another sthread also reads: the master's thread must not
/// wait in the read.
#[test]
fn a_pipe_read_raced_by_another_reader_never_holds_the_master() {
    println!("{}", contained(&["race-read"]));
}

/// FIONREAD, then a blocking `recv(MSG_WAITALL)`: another sthread with the same socket
/// takes the bytes in between; the master's thread must not wait in the recv.
#[test]
fn a_waitall_recv_raced_by_another_reader_never_holds_the_master() {
    println!("{}", contained(&["race-waitall"]));
}

/// `openat(O_ASYNC)` of a terminal beneath a read-only grant: the flags set back after
/// the non-blocking open turn on SIGIO with the master as owner; input must not
/// signal (by default: kill) the master.
#[test]
fn an_o_async_open_never_signals_the_master() {
    println!("{}", contained(&["tty-async"]));
}

/// An out-of-band byte alone in an AF_UNIX stream socket: FIONREAD counts it, a
/// recv(MSG_WAITALL) without MSG_OOB drops it and waits; not on the master's thread.
#[test]
fn a_unix_oob_byte_never_makes_a_waitall_recv_hold_the_master() {
    println!("{}", contained(&["unix-oob"]));
}

// ---- red-team round 5 ----

/// A jump buffer in the program's data whose mangled RBP was a known integer that is
/// neither a mapped address nor below 0x10000 (-1, 1000000): it is not mangled again,
/// and gives the master's pointer guard away.
#[test]
#[ignore = "accepted (issue 17, round 5): the pointer guard is not hidden from sthreads when the master keeps values of known plaintext mangled in data the snapshot copies (a jmp_buf saved with a known non-pointer RBP); re-mangling covers pointers into mappings and small values only"]
fn a_jmp_buf_with_a_known_rbp_gives_away_no_pointer_guard() {
    println!("{}", contained(&["guard-rbp"]));
}

/// A long pipe write on the sthread's own thread that blocks part-way and then loses
/// its reader returns a short count with SIGPIPE raised: the master must not die.
#[test]
fn a_partial_pipe_write_never_kills_the_master_with_sigpipe() {
    println!("{}", contained(&["sigpipe-partial"]));
}

/// Poll-then-read of a terminal (no RWF_NOWAIT) raced by other readers: the master's
/// thread must not wait in the read.
#[test]
fn a_terminal_read_raced_by_another_reader_never_holds_the_master() {
    println!("{}", contained(&["tty-race"]));
}

/// A library loaded from a directory granted for writing, truncated by the sthread,
/// whose code it then touches: ring 0 reads the alias past the file's end; the master
/// must not die. (The master then leaves with `_exit`: the library's destructors lie
/// past the file's end, where a native `exit` dies of SIGBUS as well.)
#[test]
fn truncating_a_loaded_library_never_kills_the_master() {
    println!("{}", contained(&["alias-sigbus"]));
}

/// Poll-then-write of a pipe raced by another writer: the master's thread must not
/// wait in the write.
#[test]
fn a_pipe_write_raced_by_another_writer_never_holds_the_master() {
    println!("{}", contained(&["pipe-write-race"]));
}

/// A library loaded from a directory where the alias of round 4 cannot be made (the
/// name's device and inode differ from what /proc/self/maps shows): a write through
/// /proc/self/mem after init must not reach a new sthread.
#[test]
fn a_library_page_poked_through_proc_mem_is_not_shared() {
    println!("{}", contained(&["procmem-lib"]));
}

/// Round 6: `sendto(MSG_ZEROCOPY)` on a granted TCP socket with SO_ZEROCOPY: the
/// kernel must not send from the library's bounce buffer after the call returned
/// (the master's heap, freed and reused).
#[test]
fn a_zerocopy_send_never_carries_the_masters_heap() {
    println!("{}", contained(&["zerocopy"]));
}

// ---- red-team round 7 ----

/// Round 7: an sthread's registers at its entry hold nothing of the master's or of a
/// previous use's (XMM/YMM and scratch registers), and a callgate's caller gets none
/// of the gate's registers back.
#[test]
fn r7_registers_carry_nothing_across_the_boundary() {
    println!("{}", contained(&["r7-vector-regs"]));
}

/// Round 7: odd exceptions and instructions from ring 3 (#DE, int3, int n on the
/// NMI/#DF/#MC vectors, #AC, TF, debug and control registers, hlt, cli, #XM, #MF, a
/// pending x87 exception over calls, vmcall/vmmcall, xsaves...) end the sthread alone.
#[test]
fn r7_odd_exceptions_end_the_sthread_only() {
    println!("{}", contained(&["r7-exceptions"]));
}

/// Round 7: openat flags and paths beneath a read-only directory grant (O_PATH|O_RDWR,
/// O_TMPFILE, O_DIRECTORY|O_CREAT, O_TRUNC, O_ACCMODE 3, symlinks out, FIFOs).
#[test]
fn r7_open_flags_beneath_a_read_only_grant_write_nothing() {
    println!("{}", contained(&["r7-open-flags"]));
}

/// Round 7: a tag deleted and its slot reused while a blocked sthread holds a grant.
#[test]
fn r7_a_tag_held_by_a_blocked_sthread_is_not_reused() {
    println!("{}", contained(&["r7-tag-delete"]));
}

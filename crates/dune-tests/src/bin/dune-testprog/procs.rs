//! Threads and processes: threads, thread churn, fork, vfork, Command, a failed
//! exec, exit_group.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{enter, TLS_MARK};

/// New threads start in Dune mode by themselves; they share memory with the parent.
pub(crate) fn threads() {
    enter();
    let total = std::sync::Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let total = total.clone();
            std::thread::spawn(move || {
                check!(libdune::in_dune_mode(), "thread {i} is not in Dune mode");
                // Each thread allocates, makes calls, and uses its own TLS.
                TLS_MARK.with(|c| c.set(i));
                let v: Vec<u64> = (0..10_000).collect();
                std::thread::sleep(Duration::from_millis(5));
                check!(TLS_MARK.with(|c| c.get()) == i);
                total.fetch_add(v.iter().sum::<u64>() + i, Ordering::SeqCst);
            })
        })
        .collect();
    for h in handles {
        check!(h.join().is_ok());
    }
    check!(total.load(Ordering::SeqCst) == 8 * (9_999 * 10_000 / 2) + 28);
    // pthread_create directly.
    extern "C" fn start(arg: *mut libc::c_void) -> *mut libc::c_void {
        let ok = libdune::in_dune_mode();
        (if ok { arg as usize + 1 } else { 0 }) as *mut libc::c_void
    }
    let mut t: libc::pthread_t = 0;
    let mut ret: *mut libc::c_void = std::ptr::null_mut();
    // SAFETY: standard pthread create/join with a static start routine.
    unsafe {
        check!(libc::pthread_create(&mut t, std::ptr::null(), start, 41 as *mut libc::c_void) == 0);
        check!(libc::pthread_join(t, &mut ret) == 0);
    }
    check!(ret as usize == 42, "pthread returned {}", ret as usize);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// Hundreds of threads one after another leave no vCPU, fd or memslot behind.
pub(crate) fn thread_churn() {
    enter();
    // Warm up: the first threads create the pooled vCPUs and glibc's cached stacks.
    for _ in 0..4 {
        std::thread::spawn(|| {}).join().expect("join");
    }
    let fds = open_fds();
    let slots = libdune::runtime::mem_stats().expect("stats").memslots;
    for i in 0..300u64 {
        let h = std::thread::spawn(move || {
            check!(libdune::in_dune_mode());
            i * 2
        });
        check!(h.join().ok() == Some(i * 2));
    }
    let fds_after = open_fds();
    let slots_after = libdune::runtime::mem_stats().expect("stats").memslots;
    check!(fds_after == fds, "fds {fds} -> {fds_after}");
    check!(slots_after <= slots + 2, "memslots {slots} -> {slots_after}");
}

/// fork: the child continues in Dune mode (in a VM of its own); waitpid works.
pub(crate) fn fork() {
    enter();
    let marker = Box::new(1234u64);
    // SAFETY: the child only uses async-signal-safe-enough code (no locks held by
    // other threads: this process has one thread) and exits with _exit.
    let pid = unsafe { libc::fork() };
    check!(pid >= 0);
    if pid == 0 {
        let ok = libdune::in_dune_mode() && *marker == 1234;
        // The child can allocate, make calls and fork again.
        let v: Vec<u8> = vec![7; 1 << 20];
        // SAFETY: fork again in the single-threaded child.
        let pid2 = unsafe { libc::fork() };
        if pid2 == 0 {
            // SAFETY: exit without running destructors in the grandchild.
            unsafe { libc::_exit(if libdune::in_dune_mode() { 7 } else { 1 }) };
        }
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid2, &mut st, 0) };
        let code = if ok && v[12345] == 7 && libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 7 { 42 } else { 1 };
        // SAFETY: exit without running the parent's destructors twice.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    check!(unsafe { libc::waitpid(pid, &mut status, 0) } == pid);
    check!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 42, "child status {status:#x}");
    check!(libdune::in_dune_mode());
}

/// std::process::Command: fork or posix_spawn, then execve; output through pipes.
pub(crate) fn command() {
    enter();
    let out = Command::new("/bin/echo").arg("spawned").output().expect("spawn echo");
    check!(out.status.success());
    check!(out.stdout == b"spawned\n", "stdout {:?}", String::from_utf8_lossy(&out.stdout));
    let st = Command::new("/bin/sh").args(["-c", "exit 3"]).status().expect("spawn sh");
    check!(st.code() == Some(3));
    let st = Command::new("/bin/sh").args(["-c", "kill -TERM $$"]).status().expect("spawn sh");
    check!(st.signal() == Some(libc::SIGTERM));
    let missing = Command::new("/nonexistent/program").status();
    check!(missing.as_ref().err().map(|e| e.kind()) == Some(std::io::ErrorKind::NotFound), "{missing:?}");
    check!(libdune::in_dune_mode());
}

/// A failed execve returns its error, still in Dune mode.
pub(crate) fn exec_fail() {
    enter();
    let path = c"/nonexistent/exec";
    let argv = [path.as_ptr(), std::ptr::null()];
    // SAFETY: valid NUL-terminated path and argv.
    let r = unsafe { libc::execv(path.as_ptr(), argv.as_ptr()) };
    check!(r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT));
    check!(libdune::in_dune_mode());
}

/// exit_group ends every thread, with the status given.
pub(crate) fn exit_group() {
    enter();
    for _ in 0..3 {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(1));
        });
    }
    std::thread::sleep(Duration::from_millis(20));
    println!("ok exit-group");
    let _ = std::io::stdout().flush();
    std::process::exit(17);
}

/// vfork: the child runs (in Dune mode, in a VM of its own) until it exits; the
/// parent waits for it.
pub(crate) fn vfork() {
    enter();
    // SAFETY: the vfork child only calls async-signal-safe functions and _exit.
    #[allow(deprecated)]
    let pid = unsafe { libc::vfork() };
    if pid == 0 {
        let code = if libdune::in_dune_mode() { 5 } else { 1 };
        // SAFETY: leave the child without touching the parent's state.
        unsafe { libc::_exit(code) };
    }
    check!(pid > 0);
    let mut st = 0;
    // SAFETY: reaping our child.
    check!(unsafe { libc::waitpid(pid, &mut st, 0) } == pid);
    check!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 5, "vfork child status {st:#x}");
    // posix_spawn (a CLONE_VM child that runs natively until it execs).
    let out = Command::new("/bin/sh").args(["-c", "echo spawned-$((6*7))"]).output().expect("spawn");
    check!(out.stdout == b"spawned-42\n");
}

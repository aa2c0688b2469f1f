//! Wedge sthreads (paper §5.2, Table 5): creating a compartment and switching
//! between two, against the Linux way of isolating code, a process.
//!
//! - **create**: `fork` + `_exit` + `waitpid` against a recycled sthread (create +
//!   join of `f(x) = x + 1`; the compartment is reset through its dirty bits and
//!   reused). A second row puts `pthread_create` + join (no isolation) against a
//!   freshly built compartment (page table, private copies of the globals), freed
//!   at the end.
//! - **switch**: one switch between two isolated contexts. Linux: two processes
//!   ping-pong a byte over pipes (a round trip is two switches). Dune: an sthread
//!   calls a callgate, which runs in a compartment of its own and returns (two
//!   compartment switches per call, and the gate's reset).
//!
//! The paper's figures (µs, Table 5) are shown in cycles at its machine's 2.4 GHz.

use crate::measure::{verify, Ctx, Measured, RowError};

use dune_sthread::{Policy, Violation};

fn dune(e: dune_sthread::Error) -> RowError {
    RowError::Verify(format!("sthread: {e}"))
}

fn add_one(x: usize) -> usize {
    x + 1
}

fn joined(h: dune_sthread::Handle) -> Result<usize, RowError> {
    match dune_sthread::join(h).map_err(dune)? {
        Ok(v) => Ok(v as usize),
        Err(v) => Err(RowError::Verify(format!("the sthread was ended: {v:?}"))),
    }
}

/// Linux: fork + exit + wait.
pub fn fork_wait(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let ops: u64 = ctx.pick(50, 10);
    let mut n = 0u64;
    let summary = ctx.repeat(|rep| {
        rep.time(ops, || {
            for _ in 0..ops {
                // SAFETY: the child only calls _exit.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // SAFETY: ends the child at once.
                    unsafe { libc::_exit(7) };
                }
                verify!(pid > 0, "fork failed");
                let mut status = 0;
                // SAFETY: waits for the child just forked.
                let r = unsafe { libc::waitpid(pid, &mut status, 0) };
                verify!(r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 7, "child status {status:#x}");
                n += 1;
            }
            Ok(())
        })?
    })?;
    Ok(Measured { summary, check: format!("{n} children forked, each exited with 7") })
}

/// Linux: pthread_create + join (no isolation).
pub fn pthread_join(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let ops: u64 = ctx.pick(50, 10);
    let mut n = 0u64;
    let summary = ctx.repeat(|rep| {
        rep.time(ops, || {
            for i in 0..ops as usize {
                let r = std::thread::spawn(move || add_one(i)).join();
                verify!(matches!(r, Ok(v) if v == i + 1), "thread result");
                n += 1;
            }
            Ok(())
        })?
    })?;
    Ok(Measured { summary, check: format!("{n} threads joined, each result checked") })
}

fn create_join(ctx: &mut Ctx, recycle: bool) -> Result<Measured, RowError> {
    dune_sthread::init().map_err(dune)?;
    dune_sthread::set_recycle(recycle);
    let policy = Policy::new();
    // Warm: the recycled path starts from a pooled compartment.
    joined(dune_sthread::spawn(&policy, add_one, 0).map_err(dune)?)?;
    let ops: u64 = ctx.pick(if recycle { 200 } else { 20 }, 10);
    let mut n = 0u64;
    let r = ctx.repeat(|rep| {
        rep.time(ops, || {
            for i in 0..ops as usize {
                let h = dune_sthread::spawn(&policy, add_one, i).map_err(dune)?;
                verify!(joined(h)? == i + 1, "sthread result");
                n += 1;
            }
            Ok(())
        })?
    });
    dune_sthread::set_recycle(true);
    let stats = dune_sthread::stats().map_err(dune)?;
    let summary = r?;
    verify!(stats.sthreads == 0, "{} sthreads left unjoined", stats.sthreads);
    let how = if recycle { "recycled" } else { "freshly built" };
    Ok(Measured { summary, check: format!("{n} sthreads ({how} compartments) joined, each result checked; {} compartments alive after", stats.compartments) })
}

/// Dune: create + join, the compartment recycled.
pub fn sthread_recycled(ctx: &mut Ctx) -> Result<Measured, RowError> {
    create_join(ctx, true)
}

/// Dune: create + join, a fresh compartment each time.
pub fn sthread_fresh(ctx: &mut Ctx) -> Result<Measured, RowError> {
    create_join(ctx, false)
}

/// Linux: one switch between two processes (a pipe round trip is two).
pub fn pipe_switch(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let rounds: u64 = ctx.pick(500, 50);
    let (mut a, mut b) = ([0i32; 2], [0i32; 2]);
    // SAFETY: two pipes into locals.
    verify!(unsafe { libc::pipe(a.as_mut_ptr()) == 0 && libc::pipe(b.as_mut_ptr()) == 0 }, "pipe");
    // SAFETY: the child only echoes bytes with read/write and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: the child's copies of the parent's ends: closed so that EOF comes.
        unsafe {
            libc::close(a[1]);
            libc::close(b[0]);
        }
        let mut c = 0u8;
        // SAFETY: one byte at a time between the pipes.
        while unsafe { libc::read(a[0], (&mut c as *mut u8).cast(), 1) } == 1 {
            c = c.wrapping_add(1);
            // SAFETY: as above.
            if unsafe { libc::write(b[1], (&c as *const u8).cast(), 1) } != 1 {
                break;
            }
        }
        // SAFETY: ends the child.
        unsafe { libc::_exit(0) };
    }
    verify!(pid > 0, "fork");
    // SAFETY: the child's ends, not used here.
    unsafe {
        libc::close(a[0]);
        libc::close(b[1]);
    }
    let mut n = 0u64;
    let r = ctx.repeat(|rep| {
        rep.time(2 * rounds, || {
            for i in 0..rounds {
                let out = i as u8;
                let mut back = 0u8;
                // SAFETY: one byte each way.
                let ok = unsafe { libc::write(a[1], (&out as *const u8).cast(), 1) == 1 && libc::read(b[0], (&mut back as *mut u8).cast(), 1) == 1 };
                verify!(ok && back == out.wrapping_add(1), "echo");
                n += 1;
            }
            Ok(())
        })?
    });
    // SAFETY: closing our pipe ends makes the child see EOF and exit.
    unsafe {
        for fd in [a[1], b[0]] {
            libc::close(fd);
        }
        libc::waitpid(pid, core::ptr::null_mut(), 0);
    }
    Ok(Measured { summary: r?, check: format!("{n} round trips, each echo checked") })
}

extern "C" fn echo_gate(_trusted: *mut libc::c_void, untrusted: *mut libc::c_void) -> *mut libc::c_void {
    (untrusted as usize + 1) as *mut libc::c_void
}

/// The sthread: `n` callgate round trips; the sum of the answers.
fn gate_loop(n: usize) -> usize {
    let mut sum = 0usize;
    for i in 0..n {
        sum = sum.wrapping_add(dune_sthread::capi::cgate(Some(echo_gate), core::ptr::null_mut(), i as *mut libc::c_void) as usize);
    }
    sum
}

/// Dune: one switch between two compartments (a callgate round trip is two).
pub fn sthread_switch(ctx: &mut Ctx) -> Result<Measured, RowError> {
    dune_sthread::init().map_err(dune)?;
    let mut policy = Policy::new();
    policy.gate(echo_gate as extern "C" fn(*mut libc::c_void, *mut libc::c_void) -> *mut libc::c_void as usize as u64, Policy::new(), 0).map_err(dune)?;
    let rounds: usize = ctx.pick(500, 50);
    let want = (1..=rounds).sum::<usize>();
    joined(dune_sthread::spawn(&policy, gate_loop, 1).map_err(dune)?)?;
    let mut n = 0u64;
    let summary = ctx.repeat(|rep| {
        rep.time(2 * rounds as u64, || {
            let h = dune_sthread::spawn(&policy, gate_loop, rounds).map_err(dune)?;
            match dune_sthread::join(h).map_err(dune)? {
                Ok(v) => verify!(v as usize == want, "callgate answers summed to {v}, not {want}"),
                Err(v @ Violation::Callgate { .. }) | Err(v) => return Err(RowError::Verify(format!("ended: {v:?}"))),
            }
            n += rounds as u64;
            Ok(())
        })?
    })?;
    Ok(Measured { summary, check: format!("{n} callgate round trips, the answers' sum checked") })
}

// ---- http request latency (Table 5's third column) ----

/// The page every server answers with.
const PAGE_BODY: &[u8] = b"<html><body>hello from a compartment</body></html>\n";
const RESPONSE_HEAD: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 52\r\n\r\n";

/// Serves one request on `conn` (read the request, answer the page). Used by every
/// server: in a forked child, in a thread, and in an sthread (ring 3, where it may
/// only read and write `conn`). Returns 1 when it answered.
fn serve(conn: usize) -> usize {
    let fd = conn as i32;
    let mut buf = [0u8; 1024];
    let mut n = 0usize;
    while n < buf.len() {
        // SAFETY: reads into the rest of a local buffer.
        let k = unsafe { libc::read(fd, buf[n..].as_mut_ptr().cast(), buf.len() - n) };
        if k <= 0 {
            break;
        }
        n += k as usize;
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    if n < 4 || &buf[..4] != b"GET " {
        return 0;
    }
    // SAFETY: writes from static byte strings.
    let ok = unsafe {
        libc::write(fd, RESPONSE_HEAD.as_ptr().cast(), RESPONSE_HEAD.len()) == RESPONSE_HEAD.len() as isize
            && libc::write(fd, PAGE_BODY.as_ptr().cast(), PAGE_BODY.len()) == PAGE_BODY.len() as isize
    };
    ok as usize
}

fn listener() -> Result<(std::net::TcpListener, u16), RowError> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|e| RowError::Os { step: "bind", source: e })?;
    let port = l.local_addr().map_err(|e| RowError::Os { step: "local_addr", source: e })?.port();
    Ok((l, port))
}

/// One request as a client sees it: connect, send, read the whole answer.
fn request(port: u16) -> Result<(), RowError> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| RowError::Os { step: "connect", source: e })?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").map_err(|e| RowError::Os { step: "send", source: e })?;
    let mut r = Vec::new();
    s.read_to_end(&mut r).map_err(|e| RowError::Os { step: "receive", source: e })?;
    verify!(r.starts_with(RESPONSE_HEAD) && r.ends_with(PAGE_BODY), "a wrong answer ({} bytes)", r.len());
    Ok(())
}

/// Times `per_rep` requests per repetition against a server on `port`.
fn client(ctx: &mut Ctx, port: u16, per_rep: u64) -> Result<crate::measure::Summary, RowError> {
    ctx.repeat(|rep| {
        rep.time(per_rep, || {
            for _ in 0..per_rep {
                request(port)?;
            }
            Ok(())
        })?
    })
}

fn requests(ctx: &Ctx) -> u64 {
    ctx.pick(50, 10)
}

/// A server thread: `per_conn` handles each accepted connection; it stops after `n`.
fn server_thread(l: std::net::TcpListener, n: u64, per_conn: fn(i32) -> bool) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let mut ok = 0;
        for _ in 0..n {
            let Ok((c, _)) = l.accept() else { break };
            ok += per_conn(c.as_raw_fd()) as u64;
        }
        ok
    })
}

fn total(ctx: &Ctx) -> u64 {
    let s = ctx.settings();
    (s.warmup + s.reps) as u64 * requests(ctx)
}

/// A server in this process handling each connection with `per_conn`, and the
/// client timing requests against it; `how` names the handling in the check.
fn http_in_process(ctx: &mut Ctx, per_conn: fn(i32) -> bool, how: &str) -> Result<Measured, RowError> {
    let (l, port) = listener()?;
    let n = total(ctx);
    let server = server_thread(l, n, per_conn);
    let per = requests(ctx);
    let summary = client(ctx, port, per)?;
    let served = server.join().map_err(|_| RowError::Verify("the server thread panicked".into()))?;
    verify!(served == n, "{served} of {n} requests served, each {how}");
    Ok(Measured { summary, check: format!("{n} requests, each {how}, every answer checked") })
}

/// Linux: a forked child per request (the paper's "fork" column).
pub fn http_fork(ctx: &mut Ctx) -> Result<Measured, RowError> {
    http_in_process(
        ctx,
        |fd| {
            // SAFETY: the child serves one connection with read/write and exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let r = serve(fd as usize);
                // SAFETY: ends the child.
                unsafe { libc::_exit(if r == 1 { 0 } else { 1 }) };
            }
            let mut status = 0;
            // SAFETY: reaps the child just forked.
            pid > 0 && unsafe { libc::waitpid(pid, &mut status, 0) } == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
        },
        "in a forked child",
    )
}

/// Linux: a thread per request (no isolation).
pub fn http_pthread(ctx: &mut Ctx) -> Result<Measured, RowError> {
    http_in_process(ctx, |fd| std::thread::spawn(move || serve(fd as usize)).join().ok() == Some(1), "in a thread")
}

/// Dune: a separate `dune sthread-bench-server` process serves each request in an
/// sthread that may only read and write its connection; this process is the client.
pub fn http_sthread(ctx: &mut Ctx) -> Result<Measured, RowError> {
    use std::io::BufRead;
    let n = total(ctx);
    let mut child = std::process::Command::new(super::sandbox::dune_binary()?)
        .args(["sthread-bench-server", &n.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| RowError::Os { step: "spawning the sthread server", source: e })?;
    let mut out = std::io::BufReader::new(child.stdout.take().ok_or_else(|| RowError::Verify("no stdout".into()))?);
    let mut line = String::new();
    let _ = out.read_line(&mut line);
    let Some(port) = line.strip_prefix("ready ").and_then(|p| p.trim().parse::<u16>().ok()) else {
        let _ = child.kill();
        let out = child.wait_with_output().map_err(|e| RowError::Os { step: "waiting for the server", source: e })?;
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(125) {
            return Err(RowError::Unsupported(format!("the sthread server cannot enter Dune mode: {}", err.trim())));
        }
        return Err(RowError::Verify(format!("the sthread server did not start: {line:?} {}", err.trim())));
    };
    let per = requests(ctx);
    let r = client(ctx, port, per);
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    let status = child.wait().map_err(|e| RowError::Os { step: "waiting for the server", source: e })?;
    let mut summary = r?;
    verify!(status.success() && rest.contains(&format!("served {n} ")), "the sthread server: {status} {rest:?}");
    // The server's runtime counted its forwarded system calls: each is one exit to the host.
    let exits: f64 = rest.split_whitespace().skip_while(|w| *w != "exits").nth(1).and_then(|e| e.parse().ok()).ok_or_else(|| RowError::Verify(format!("no exit count from the server: {rest:?}")))?;
    summary.exits = Some(crate::measure::ExitsPerOp { exits, io_exits: Some(exits), irq_exits: None, halt_exits: None, syscalls: exits, traps: 0.0, bracket_exits: 0 });
    Ok(Measured { summary, check: format!("{n} requests, each in an sthread holding only its connection, every answer checked; {exits:.2} exits to the host per request in the server") })
}

/// `dune sthread-bench-server N`: serves N requests on a loopback port it prints
/// (`ready PORT`), each in an sthread granted only its connection; then prints
/// `served N exits E` (forwarded system calls per request). Exit status 125 when
/// Dune mode is unavailable.
pub fn server_main(n: u64) -> i32 {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::Ordering::Relaxed;
    if let Err(e) = dune_sthread::init() {
        eprintln!("sthread-bench-server: {e}");
        return 125;
    }
    let Ok((l, port)) = listener() else {
        eprintln!("sthread-bench-server: cannot listen");
        return 1;
    };
    println!("ready {port}");
    let c = libdune::runtime::counters();
    let before = c.syscalls.load(Relaxed);
    let mut served = 0u64;
    for _ in 0..n {
        let Ok((conn, _)) = l.accept() else { break };
        let mut policy = Policy::new();
        if policy.fd(conn.as_raw_fd(), dune_sthread::FD_READ | dune_sthread::FD_WRITE).is_err() {
            break;
        }
        if let Ok(h) = dune_sthread::spawn(&policy, serve, conn.as_raw_fd() as usize) {
            served += matches!(dune_sthread::join(h), Ok(Ok(1))) as u64;
        }
    }
    let exits = (c.syscalls.load(Relaxed) - before) as f64 / n.max(1) as f64;
    println!("served {served} exits {exits:.2}");
    if served == n { 0 } else { 1 }
}

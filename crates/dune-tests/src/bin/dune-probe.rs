//! An unmodified program (it does not link libdune) for `dune run` tests: it reports
//! the privilege level it runs at, from its main thread, new threads and a forked
//! child, after doing what programs do to their descriptors.
//!
//!   dune-probe ring        prints "ring N" for the main thread
//!   dune-probe threads     prints "ring N" for 4 threads (and main)
//!   dune-probe fork        prints the ring of a forked child (and its exit status)
//!   dune-probe closeall    closes every descriptor but stdio, then reports as above
//!   dune-probe exit N      exits with status N
//!   dune-probe kill SIG    kills itself with signal SIG

fn ring() -> u16 {
    let cs: u16;
    // SAFETY: reading CS has no side effects; its low bits are the privilege level.
    unsafe { core::arch::asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack, preserves_flags)) };
    cs & 3
}

fn threads() {
    let hs: Vec<_> = (0..4).map(|_| std::thread::spawn(ring)).collect();
    for h in hs {
        println!("thread ring {}", h.join().unwrap_or(9));
    }
}

fn fork() {
    // SAFETY: the child only reads CS and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: ends the child with its ring as the status.
        unsafe { libc::_exit(ring() as i32) };
    }
    let mut st = 0;
    // SAFETY: waits for the child just forked.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    println!("child ring {}", if libc::WIFEXITED(st) { libc::WEXITSTATUS(st) } else { 9 });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(1) {
        "ring" => println!("ring {}", ring()),
        "threads" => {
            println!("ring {}", ring());
            threads();
        }
        "fork" => fork(),
        "closeall" => {
            let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd").map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()).unwrap_or_default();
            for fd in fds.into_iter().filter(|&fd| fd > 2) {
                // SAFETY: closes descriptors this program does not use.
                unsafe { libc::close(fd) };
            }
            // SAFETY: as above, every number from 3 up.
            unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
            println!("ring {}", ring());
            threads();
            fork();
        }
        "exit" => std::process::exit(arg(2).parse().unwrap_or(1)),
        "kill" => {
            // SAFETY: sends a signal to this process.
            unsafe { libc::kill(libc::getpid(), arg(2).parse().unwrap_or(libc::SIGTERM)) };
            std::thread::sleep(std::time::Duration::from_secs(5));
        }
        other => {
            eprintln!("dune-probe: unknown command {other:?}");
            std::process::exit(64);
        }
    }
}

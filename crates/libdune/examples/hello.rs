//! The smallest Dune program: enter Dune mode, then do ordinary things.
//!
//! `cargo run --example hello` on a machine with hardware virtualization, or
//! `scripts/vm-run target/debug/examples/hello` in the QEMU lane.

fn cpl() -> u16 {
    let cs: u16;
    // SAFETY: reading CS has no side effects.
    unsafe { std::arch::asm!("mov {0:x}, cs", out(reg) cs) };
    cs & 3
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("before enter: ring {}", cpl());
    libdune::enter()?;
    println!("after enter:  ring {} (guest), pid {}", cpl(), std::process::id());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    println!("system calls still work: hostname {}", host.trim());
    let t = std::thread::spawn(cpl).join().map_err(|_| "thread panicked")?;
    println!("a new thread runs in ring {t} too");
    let s = libdune::runtime::mem_stats().ok_or("no stats")?;
    println!("memslots {} covering {} MiB, guest MAXPHYADDR {}", s.memslots, s.memslot_bytes >> 20, s.maxphyaddr);
    Ok(())
}

//! The tight timed loops, in assembly: their cost per iteration is a few instructions
//! whatever the build profile, so `target/debug/dune bench` and a release build
//! measure the same thing. Each loop runs its count down to zero (`n` must not be 0).
//!
//! No `nostack` option on the system-call loop: in Dune mode `syscall` enters the
//! runtime's ring-0 stub on the current stack, so the compiler must not keep data in
//! the red zone across it.

use core::arch::asm;

/// `n` raw getpid system calls (number 39); returns how many did not return `pid`.
pub fn getpid_n(n: u64, pid: i64) -> u64 {
    if n == 0 {
        return 0;
    }
    let mut wrong = 0u64;
    // SAFETY: getpid takes no arguments and touches no memory; syscall clobbers rax
    // (result), rcx and r11, all declared.
    unsafe {
        asm!(
            "2:",
            "mov eax, 39",
            "syscall",
            "cmp rax, {pid}",
            "je 3f",
            "inc {wrong}",
            "3:",
            "dec {n}",
            "jnz 2b",
            n = inout(reg) n => _,
            pid = in(reg) pid,
            wrong = inout(reg) wrong,
            out("rax") _,
            out("rcx") _,
            out("r11") _,
        );
    }
    wrong
}

/// Writes `first`, `first + 1`, ... to the first word of `pages` consecutive 4 KiB
/// pages from `base`.
///
/// # Safety
/// `base` must be page-aligned and the `pages` pages from it writable memory that no
/// Rust reference points into.
pub unsafe fn touch_pages(base: *mut u8, pages: u64, first: u64) {
    if pages == 0 {
        return;
    }
    // SAFETY: the caller guarantees the range is writable and unaliased.
    unsafe {
        asm!(
            "2:",
            "mov qword ptr [{p}], {v}",
            "add {p}, 4096",
            "inc {v}",
            "dec {n}",
            "jnz 2b",
            p = inout(reg) base => _,
            v = inout(reg) first => _,
            n = inout(reg) pages => _,
            options(nostack),
        );
    }
}

/// Follows `n` pointers from `p` (`p = *p`), each load depending on the previous one.
///
/// # Safety
/// Every pointer reached in `n` steps must point at a readable, aligned `usize`.
pub unsafe fn chase(p: *const usize, n: u64) -> *const usize {
    if n == 0 {
        return p;
    }
    let mut p = p;
    // SAFETY: the caller guarantees every pointer on the way is readable.
    unsafe {
        asm!(
            "2:",
            "mov {p}, qword ptr [{p}]",
            "dec {n}",
            "jnz 2b",
            p = inout(reg) p,
            n = inout(reg) n => _,
            options(nostack, readonly),
        );
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getpid_loop() {
        let pid = i64::from(std::process::id());
        assert_eq!(getpid_n(10, pid), 0);
        assert_eq!(getpid_n(10, pid + 1), 10);
        assert_eq!(getpid_n(0, pid + 1), 0);
    }

    #[test]
    fn touch_and_chase() {
        let mut buf = vec![0u64; 3 * 512 + 8];
        let base = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: 3 "pages" of 4 KiB inside buf (alignment to 8 suffices for the writes).
        unsafe { touch_pages(base, 3, 7) };
        assert_eq!((buf[0], buf[512], buf[1024]), (7, 8, 9));
        let mut ring = [0usize; 3];
        let p = ring.as_mut_ptr();
        // SAFETY: a three-element cycle inside `ring`.
        unsafe {
            *p = p.add(2) as usize;
            *p.add(2) = p.add(1) as usize;
            *p.add(1) = p as usize;
            assert_eq!(chase(p, 1), p.add(2).cast_const());
            assert_eq!(chase(p, 3), p.cast_const());
            assert_eq!(chase(p, 0), p.cast_const());
        }
    }
}

//! Memory: mmap and friends, the heap, memory mapped outside Dune mode, stack
//! growth.

use std::sync::atomic::Ordering;

use crate::enter;

/// mmap of a file and of anonymous memory; munmap; mprotect; mremap.
pub(crate) fn mmap() {
    enter();
    let p = std::env::temp_dir().join(format!("dune-mmap-{}", std::process::id()));
    let data: Vec<u8> = (0..3 * 4096 + 17).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&p, &data).expect("write");
    let f = std::fs::File::open(&p).expect("open");
    use std::os::fd::AsRawFd;
    // SAFETY: mapping a file we own read-only and reading within its length.
    unsafe {
        let m = libc::mmap(std::ptr::null_mut(), data.len(), libc::PROT_READ, libc::MAP_PRIVATE, f.as_raw_fd(), 0);
        check!(m != libc::MAP_FAILED);
        let s = std::slice::from_raw_parts(m as *const u8, data.len());
        check!(s == &data[..], "file mapping differs");
        check!(libc::munmap(m, data.len()) == 0);
        // Anonymous, written, protected, then grown with mremap.
        let len = 64 * 4096;
        let a = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) as *mut u8;
        check!(a as *mut libc::c_void != libc::MAP_FAILED);
        for i in 0..len {
            *a.add(i) = (i % 253) as u8;
        }
        check!(libc::mprotect(a as *mut _, len, libc::PROT_READ) == 0);
        check!(*a.add(4097) == (4097 % 253) as u8);
        check!(libc::mprotect(a as *mut _, len, libc::PROT_READ | libc::PROT_WRITE) == 0);
        *a.add(5) = 99;
        let b = libc::mremap(a as *mut _, len, 4 * len, libc::MREMAP_MAYMOVE) as *mut u8;
        check!(b as *mut libc::c_void != libc::MAP_FAILED);
        check!(*b.add(5) == 99 && *b.add(len - 1) == ((len - 1) % 253) as u8);
        *b.add(4 * len - 1) = 1;
        // Unmap the middle, the rest still works.
        check!(libc::munmap(b.add(len) as *mut _, len) == 0);
        check!(*b.add(len - 1) == ((len - 1) % 253) as u8);
        *b.add(2 * len) = 5;
        check!(*b.add(2 * len) == 5);
        // MAP_FIXED over an existing mapping replaces its contents.
        let c = libc::mmap(b.add(2 * len) as *mut _, 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED, -1, 0) as *mut u8;
        check!(c == b.add(2 * len));
        check!(*c == 0, "MAP_FIXED page not fresh");
        check!(libc::munmap(b as *mut _, 4 * len) == 0);
        // madvise(MADV_DONTNEED) on private anonymous memory: reads back as zero.
        let d = libc::mmap(std::ptr::null_mut(), 8 * 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) as *mut u8;
        check!(d as *mut libc::c_void != libc::MAP_FAILED);
        *d.add(3 * 4096) = 0x77;
        check!(libc::madvise(d.add(3 * 4096) as *mut _, 4096, libc::MADV_DONTNEED) == 0);
        check!(*d.add(3 * 4096) == 0, "MADV_DONTNEED page kept its contents");
        *d.add(3 * 4096) = 0x78;
        check!(*d.add(3 * 4096) == 0x78);
        check!(libc::munmap(d as *mut _, 8 * 4096) == 0);
        // System V shared memory: shmat maps it, a forked child writes, the parent sees it.
        let id = libc::shmget(libc::IPC_PRIVATE, 64 * 1024, libc::IPC_CREAT | 0o600);
        check!(id >= 0);
        let shm = libc::shmat(id, std::ptr::null(), 0) as *mut u64;
        check!(shm as isize != -1);
        *shm = 1;
        *shm.add(8191) = 2;
        let pid = libc::fork();
        if pid == 0 {
            *shm.add(100) = 0xc0ffee;
            libc::_exit(0);
        }
        let mut st = 0;
        check!(libc::waitpid(pid, &mut st, 0) == pid && libc::WIFEXITED(st));
        check!(*shm.add(100) == 0xc0ffee && *shm == 1 && *shm.add(8191) == 2, "shared memory not shared");
        check!(libc::shmdt(shm as *const _) == 0);
        check!(libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) == 0);
    }
    let _ = std::fs::remove_file(&p);
}

/// The heap grows past its initial mapping (brk and mmap'd chunks).
pub(crate) fn heap() {
    enter();
    // SAFETY: sbrk(0) queries; sbrk(n) grows the break and returns the old one.
    unsafe {
        let before = libc::sbrk(0) as *mut u8;
        let old = libc::sbrk(1 << 20) as *mut u8;
        check!(old == before);
        for i in (0..(1 << 20)).step_by(4096) {
            *old.add(i) = 1;
        }
        check!(libc::sbrk(-(1 << 19)) as *mut u8 == old.add(1 << 20));
        *old.add((1 << 19) - 1) = 2;
    }
    let mut chunks = Vec::new();
    for i in 0..64 {
        let mut v = vec![0u8; 4 << 20];
        v[i] = i as u8;
        v[(4 << 20) - 1] = 1;
        chunks.push(v);
    }
    check!(chunks.iter().enumerate().all(|(i, v)| v[i] == i as u8 && v[(4 << 20) - 1] == 1));
    let mut big: Vec<u64> = Vec::new();
    for i in 0..(16 << 20) {
        big.push(i);
    }
    check!(big.iter().step_by(4099).all(|&x| big[x as usize] == x));
}

/// Memory mapped by a thread outside Dune mode is picked up on first touch.
pub(crate) fn lazy() {
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let outsider = std::thread::spawn(move || {
        go_rx.recv().expect("go");
        check!(!libdune::in_dune_mode(), "this thread started before enter()");
        // SAFETY: a fresh anonymous mapping, written before being shared.
        let p = unsafe {
            let p = libc::mmap(std::ptr::null_mut(), 1 << 20, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            check!(p != libc::MAP_FAILED);
            *(p as *mut u64) = 0x5eed;
            p
        };
        tx.send(p as usize).expect("send");
    });
    enter();
    go_tx.send(()).expect("go");
    let p = rx.recv().expect("recv") as *mut u64;
    // SAFETY: the outsider mapped 1 MiB at p and no longer touches it.
    unsafe {
        check!(*p == 0x5eed);
        *p.add(1000) = 1;
        check!(*p.add(1000) == 1);
    }
    check!(outsider.join().is_ok());
    let traps = libdune::runtime::counters().traps.load(Ordering::Relaxed);
    check!(traps >= 1, "the first touch should have faulted to the host");
}

/// The main thread's stack grows on demand in Dune mode.
pub(crate) fn stack_growth() {
    #[inline(never)]
    fn recurse(n: u64) -> u64 {
        let buf = std::hint::black_box([n as u8; 4096]);
        if n == 0 { buf[0] as u64 } else { recurse(n - 1) + buf[100] as u64 }
    }
    enter();
    // About 2 MiB below the stack as mapped at enter().
    check!(recurse(500) == (1..=500u64).map(|x| x % 256).sum::<u64>());
}

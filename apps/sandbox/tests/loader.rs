//! The loader end to end, natively (no KVM): real programs loaded with `LibcSpace`
//! into a forked child of this test process and started with a trampoline, and
//! crafted malformed files through `prepare`.
//!
//! Forking a multithreaded test process: everything that can be prepared is prepared
//! before `fork` (`prepare`, `StackOptions::default()`); the child then only calls
//! `load` (which allocates: glibc's `malloc` is made safe across `fork`) and
//! async-signal-safe calls. The forking tests hold one lock, so no other test's child
//! inherits a pipe's write end and delays its end-of-file.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use dune_sandbox::loader::{load, prepare, ElfError, Exec, LibcSpace, LoadError, RegionKind, StackOptions};

static FORK: Mutex<()> = Mutex::new(());

/// Sets `rsp`, zeroes the general registers (`rdx` = 0: no `atexit` function) and
/// jumps to `entry`, as the kernel starts a program.
///
/// # Safety
/// `rsp` must be a stack built by `load` and `entry` its entry point.
unsafe fn jump(entry: u64, rsp: u64) -> ! {
    // SAFETY: the caller gives a loaded program's entry and stack; nothing returns.
    unsafe {
        std::arch::asm!(
            "mov rsp, {sp}",
            "push {entry}",
            "xor eax, eax", "xor ebx, ebx", "xor ecx, ecx", "xor edx, edx",
            "xor esi, esi", "xor edi, edi", "xor ebp, ebp",
            "xor r8d, r8d", "xor r9d, r9d", "xor r10d, r10d", "xor r11d, r11d",
            "xor r12d, r12d", "xor r13d, r13d", "xor r14d, r14d", "xor r15d, r15d",
            "ret",
            sp = in(reg) rsp,
            entry = in(reg) entry,
            options(noreturn),
        )
    }
}

/// Loads and runs `exec` in a forked child; returns its wait status and output
/// (stdout and stderr together).
fn run(exec: &Exec) -> (i32, String) {
    let _g = FORK.lock().unwrap_or_else(|e| e.into_inner());
    let opts = StackOptions::default();
    let mut fds = [0; 2];
    // SAFETY: `fds` is a two-element array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only loads and jumps, or exits (see the module comment).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: fd plumbing on descriptors this process owns.
        unsafe {
            libc::dup2(fds[1], 1);
            libc::dup2(fds[1], 2);
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        let mut space = LibcSpace::new();
        match load(exec, &mut space, &opts) {
            // SAFETY: `load` built this stack and mapped this entry point.
            Ok(l) => unsafe { jump(l.entry, l.rsp) },
            Err(e) => {
                let msg = format!("load failed: {e}\n");
                // SAFETY: writes a live buffer, then exits without unwinding.
                unsafe {
                    libc::write(2, msg.as_ptr().cast(), msg.len());
                    libc::_exit(99)
                }
            }
        }
    }
    // SAFETY: the parent's copy of the write end.
    unsafe { libc::close(fds[1]) };
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut pfd = libc::pollfd { fd: fds[0], events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 1000) };
        if r == 0 {
            if std::time::Instant::now() > deadline {
                // SAFETY: our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                break;
            }
            continue;
        }
        // SAFETY: reads into a live buffer.
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    let mut status = 0;
    // SAFETY: our read end; our child.
    unsafe {
        libc::close(fds[0]);
        libc::waitpid(pid, &mut status, 0);
    }
    (status, String::from_utf8_lossy(&out).into_owned())
}

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

fn env() -> Vec<OsString> {
    os(&["PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"])
}

fn exited(status: i32) -> Option<i32> {
    libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dune-loader-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_exec(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn static_non_pie_busybox() {
    let p = Path::new("/usr/bin/busybox");
    if !p.exists() {
        eprintln!("skipped: no {}", p.display());
        return;
    }
    let exec = prepare(p.as_os_str(), os(&["busybox", "echo", "hello"]), &env()).unwrap();
    assert!(exec.interp.is_none());
    let (st, out) = run(&exec);
    assert_eq!((exited(st), out.as_str()), (Some(0), "hello\n"));
}

#[test]
fn dynamic_pie_through_ld_so() {
    let exec = prepare(OsStr::new("echo"), os(&["echo", "hello", "world"]), &env()).unwrap();
    assert!(exec.interp.is_some());
    let (st, out) = run(&exec);
    assert_eq!((exited(st), out.as_str()), (Some(0), "hello world\n"));
    let exec = prepare(OsStr::new("env"), os(&["env"]), &env()).unwrap();
    let (st, out) = run(&exec);
    assert_eq!(exited(st), Some(0));
    assert_eq!(out, "PATH=/usr/local/bin:/usr/bin:/bin\nLC_ALL=C\n");
}

#[test]
fn exit_status_is_the_programs() {
    let exec = prepare(OsStr::new("false"), os(&["false"]), &env()).unwrap();
    assert_eq!(exited(run(&exec).0), Some(1));
}

#[test]
fn the_dynamic_loader_run_directly_is_an_et_dyn_without_interpreter() {
    let ld = Path::new("/lib64/ld-linux-x86-64.so.2");
    let exec = prepare(ld.as_os_str(), os(&["ld.so", "/bin/echo", "direct"]), &env()).unwrap();
    assert!(exec.interp.is_none());
    let (st, out) = run(&exec);
    assert_eq!((exited(st), out.as_str()), (Some(0), "direct\n"));
}

#[test]
fn scripts_and_nested_scripts() {
    let d = tempdir("scripts");
    let s = d.join("s");
    write_exec(&s, b"#!/bin/sh\necho \"script $0 $*\"\n");
    let s2 = d.join("s2");
    write_exec(&s2, format!("#!{}\n", s.display()).as_bytes());
    let exec = prepare(s.as_os_str(), os(&["s", "a", "b"]), &env()).unwrap();
    assert_eq!(exec.argv, os(&["/bin/sh", s.to_str().unwrap(), "a", "b"]));
    let (st, out) = run(&exec);
    assert_eq!((exited(st), out), (Some(0), format!("script {} a b\n", s.display())));
    let exec = prepare(s2.as_os_str(), os(&["s2", "x"]), &env()).unwrap();
    let (st, out) = run(&exec);
    assert_eq!((exited(st), out), (Some(0), format!("script {} {} x\n", s.display(), s2.display())));
    // A loop of scripts: too many levels.
    let a = d.join("a");
    let b = d.join("b");
    write_exec(&a, format!("#!{}\n", b.display()).as_bytes());
    write_exec(&b, format!("#!{}\n", a.display()).as_bytes());
    let e = prepare(a.as_os_str(), os(&["a"]), &env()).unwrap_err();
    assert!(matches!(e, LoadError::ScriptLoop(_)), "{e}");
    assert_eq!(e.exit_code(), 126);
    let _ = std::fs::remove_dir_all(d);
}

fn auxv_lines(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let k = if k.starts_with("AT_???") { l.rsplit_once(':')?.0.to_string() } else { k.to_string() };
            Some((k, v.trim().to_string()))
        })
        .collect()
}

#[test]
fn auxv_matches_the_kernels() {
    let e = os(&["LD_SHOW_AUXV=1"]);
    let exec = prepare(OsStr::new("/bin/true"), os(&["true"]), &e).unwrap();
    let (st, ours) = run(&exec);
    assert_eq!(exited(st), Some(0), "{ours}");
    let real = std::process::Command::new("/bin/true").env_clear().env("LD_SHOW_AUXV", "1").output().unwrap();
    let theirs = String::from_utf8_lossy(&real.stdout).into_owned();
    let (ours, theirs) = (auxv_lines(&ours), auxv_lines(&theirs));
    let names = |v: &[(String, String)]| v.iter().map(|p| p.0.clone()).collect::<Vec<_>>();
    assert!(theirs.len() >= 20, "{theirs:?}");
    assert_eq!(names(&ours), names(&theirs), "the same entries in the same order");
    let same = [
        "AT_MINSIGSTKSZ", "AT_HWCAP", "AT_PAGESZ", "AT_CLKTCK", "AT_PHENT", "AT_PHNUM", "AT_FLAGS", "AT_UID", "AT_EUID",
        "AT_GID", "AT_EGID", "AT_SECURE", "AT_HWCAP2", "AT_EXECFN", "AT_PLATFORM", "AT_??? (0x1b)", "AT_??? (0x1c)",
    ];
    for (k, v) in &theirs {
        if same.contains(&k.as_str()) {
            let o = ours.iter().find(|p| &p.0 == k).map(|p| p.1.as_str());
            assert_eq!(o, Some(v.as_str()), "{k}");
        }
    }
}

#[test]
fn loaded_regions_and_addresses() {
    let exec = prepare(OsStr::new("/bin/true"), os(&["true"]), &env()).unwrap();
    let _g = FORK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the child loads into its own copy of this address space and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut space = LibcSpace::new();
        let ok = match load(&exec, &mut space, &StackOptions::default()) {
            Ok(l) => {
                l.rsp % 16 == 0
                    && l.load_bias % 4096 == 0
                    && l.interp_base != 0
                    && l.brk_start % 4096 == 0
                    && l.phdr > l.load_bias
                    && l.regions.iter().any(|r| r.kind == RegionKind::Stack && r.start < l.rsp && l.rsp < r.start + r.len)
                    && l.regions.iter().any(|r| r.kind == RegionKind::Interpreter && r.start <= l.entry && l.entry < r.start + r.len && r.prot & libc::PROT_EXEC != 0)
                    && l.regions.iter().filter(|r| r.kind == RegionKind::Program).all(|r| r.start >= l.load_bias && r.start + r.len <= l.brk_start)
            }
            Err(_) => false,
        };
        // SAFETY: exits the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut st = 0;
    // SAFETY: our child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    assert_eq!(exited(st), Some(0));
}

/// A small x86-64 ELF: `ty` (2 EXEC, 3 DYN), program headers `phs` (type, flags,
/// offset, vaddr, filesz, memsz), the string `interp` at 0x200 if given.
fn craft(ty: u16, phs: &[(u32, u32, u64, u64, u64, u64)], interp: Option<&[u8]>) -> Vec<u8> {
    let mut b = vec![0u8; 0x2000];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    b[16..18].copy_from_slice(&ty.to_le_bytes());
    b[18..20].copy_from_slice(&62u16.to_le_bytes());
    b[24..32].copy_from_slice(&0x400100u64.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&(phs.len() as u16).to_le_bytes());
    for (i, &(t, fl, off, va, fs, ms)) in phs.iter().enumerate() {
        let p = 64 + 56 * i;
        b[p..p + 4].copy_from_slice(&t.to_le_bytes());
        b[p + 4..p + 8].copy_from_slice(&fl.to_le_bytes());
        b[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
        b[p + 16..p + 24].copy_from_slice(&va.to_le_bytes());
        b[p + 32..p + 40].copy_from_slice(&fs.to_le_bytes());
        b[p + 40..p + 48].copy_from_slice(&ms.to_le_bytes());
        b[p + 48..p + 56].copy_from_slice(&0x1000u64.to_le_bytes());
    }
    if let Some(s) = interp {
        b[0x200..0x200 + s.len()].copy_from_slice(s);
    }
    b
}

const LOAD: u32 = 1;
const INTERP: u32 = 3;

fn text() -> (u32, u32, u64, u64, u64, u64) {
    (LOAD, 5, 0, 0x400000, 0x1000, 0x1000)
}

fn data() -> (u32, u32, u64, u64, u64, u64) {
    (LOAD, 6, 0x1000, 0x401000, 0x800, 0x2000)
}

#[test]
fn malformed_files_are_error_values() {
    let d = tempdir("malformed");
    let f = d.join("prog");
    let check = |bytes: &[u8], want: ElfError| {
        write_exec(&f, bytes);
        match prepare(f.as_os_str(), os(&["prog"]), &env()) {
            Err(LoadError::Elf { error, .. }) => assert_eq!(error, want),
            other => panic!("{want:?}: got {other:?}"),
        }
    };
    let good = craft(2, &[text(), data()], None);
    write_exec(&f, &good);
    let ok = prepare(f.as_os_str(), os(&["prog"]), &env()).unwrap();
    assert_eq!(ok.program.info.span(), (0x400000, 0x403000));

    let mut c32 = good.clone();
    c32[4] = 1;
    check(&c32, ElfError::Class32);
    let mut arm = good.clone();
    arm[18] = 183;
    check(&arm, ElfError::Machine(183));
    let mut rel = good.clone();
    rel[16] = 1;
    check(&rel, ElfError::Type(1));
    check(&good[..40], ElfError::TruncatedHeader);
    check(&good[..64 + 56 + 10], ElfError::TruncatedPhdrs);
    let mut far = good.clone();
    far[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    check(&far, ElfError::TruncatedPhdrs);
    let mut many = good.clone();
    many[56..58].copy_from_slice(&2000u16.to_le_bytes());
    check(&many, ElfError::TooManyPhdrs(2000));
    let mut ent = good.clone();
    ent[54] = 32;
    check(&ent, ElfError::PhentSize(32));
    check(&craft(2, &[(LOAD, 5, 0x1000, 0x400000, 0x2000, 0x2000)], None), ElfError::SegmentTruncated(0));
    check(&craft(2, &[(LOAD, 5, 0, 0x400000, u64::MAX, u64::MAX)], None), ElfError::SegmentTruncated(0));
    check(&craft(2, &[(LOAD, 5, 0, 0x400000, 0x1000, 0x800)], None), ElfError::FileszExceedsMemsz(0));
    check(&craft(2, &[(LOAD, 6, 0, 0x400000, 0, 1 << 62)], None), ElfError::OutOfRange(0));
    check(&craft(2, &[(LOAD, 6, 0, u64::MAX - 0xfff, 0, 0x2000)], None), ElfError::OutOfRange(0));
    check(&craft(2, &[(LOAD, 6, 0, 0x7fff_ffff_e000, 0, 0x2000)], None), ElfError::OutOfRange(0));
    // Overlapping, listed out of order.
    check(&craft(2, &[data(), (LOAD, 5, 0, 0x400000, 0x1000, 0x1800)], None), ElfError::Overlap(0, 1));
    check(&craft(2, &[(LOAD, 5, 0x10, 0x400000, 0x100, 0x100)], None), ElfError::Misaligned(0));
    check(&craft(2, &[(INTERP, 4, 0x200, 0, 8, 8), text()], Some(b"/bin/shX")), ElfError::InterpNotTerminated);
    check(&craft(2, &[(INTERP, 4, 0x1ff0, 0, 0x100, 0x100), text()], None), ElfError::InterpOutOfFile);
    check(&craft(2, &[(INTERP, 4, 0x200, 0, 5000, 5000), text()], None), ElfError::InterpLength(5000));
    check(&craft(2, &[(INTERP, 4, 0x200, 0, 8, 8), (INTERP, 4, 0x200, 0, 8, 8), text()], Some(b"/bin/sh\0")), ElfError::MultipleInterp);
    check(&craft(2, &[(6, 4, 64, 0, 56, 56)], None), ElfError::NoLoad);

    let interp_err = |interp: &[u8]| {
        let mut s = interp.to_vec();
        s.push(0);
        write_exec(&f, &craft(2, &[(INTERP, 4, 0x200, 0, s.len() as u64, s.len() as u64), text()], Some(&s)));
        prepare(f.as_os_str(), os(&["prog"]), &env()).unwrap_err()
    };
    let e = interp_err(b"/nonexistent/ld.so");
    assert!(matches!(e, LoadError::MissingInterpreter { .. }), "{e}");
    assert_eq!(e.exit_code(), 127);
    if Path::new("/usr/bin/busybox").exists() {
        let e = interp_err(b"/usr/bin/busybox");
        assert!(matches!(e, LoadError::BadInterpreter { error: ElfError::InterpNotDyn, .. }), "{e}");
    }
    let e = interp_err(b"/bin/true");
    assert!(matches!(e, LoadError::BadInterpreter { error: ElfError::InterpHasInterp, .. }), "{e}");
    assert_eq!(e.exit_code(), 126);

    write_exec(&f, b"just text\n");
    let e = prepare(f.as_os_str(), os(&["prog"]), &env()).unwrap_err();
    assert!(matches!(e, LoadError::ExecFormat(_)), "{e}");
    assert_eq!(e.exit_code(), 126);
    assert_eq!(e.to_string(), format!("{}: cannot execute binary file: Exec format error", f.display()));
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(prepare(f.as_os_str(), os(&["prog"]), &env()).unwrap_err().exit_code(), 126);
    let e = prepare(OsStr::new("no-such-program-anywhere"), os(&["x"]), &env()).unwrap_err();
    assert_eq!(e.exit_code(), 127);
    let e = prepare(d.join("missing").as_os_str(), os(&["x"]), &env()).unwrap_err();
    assert_eq!(e.exit_code(), 127);
    assert_eq!(prepare(d.as_os_str(), os(&["x"]), &env()).unwrap_err().exit_code(), 126);
    let e = prepare(OsStr::new("/bin/true"), vec![OsString::from(OsStr::from_bytes(b"a\0b"))], &env()).unwrap_err();
    assert_eq!(e.exit_code(), 126);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn an_et_exec_program_over_an_existing_mapping_is_refused() {
    // busybox wants 0x400000; occupy it first in a child, then load.
    if !Path::new("/usr/bin/busybox").exists() {
        return;
    }
    let exec = prepare(OsStr::new("/usr/bin/busybox"), os(&["busybox", "true"]), &env()).unwrap();
    let _g = FORK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the child maps into its own copy of this address space and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: a fresh mapping at a fixed address that must be free (NOREPLACE).
        let p = unsafe {
            libc::mmap(0x40_1000 as *mut libc::c_void, 4096, libc::PROT_READ, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE, -1, 0)
        };
        let ok = p as u64 == 0x40_1000
            && matches!(load(&exec, &mut LibcSpace::new(), &StackOptions::default()), Err(e @ LoadError::AddressInUse { .. }) if e.exit_code() == 126);
        // SAFETY: exits the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut st = 0;
    // SAFETY: our child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    assert_eq!(exited(st), Some(0));
}

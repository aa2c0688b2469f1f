//! The initial stack, laid out as Linux's `create_elf_tables` lays it out.
//!
//! From the top: an 8-byte zero word, the `AT_EXECFN` string, the environment
//! strings, the argument strings (each group in order, lowest address first),
//! 16-byte alignment, the `"x86_64"` platform string, 16 random bytes (`AT_RANDOM`),
//! padding to 16 bytes, then the auxiliary vector (ending with `AT_NULL`), the
//! environment pointers and a null, the argument pointers and a null, and `argc`,
//! where `rsp` points (16-byte aligned).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;

use super::elf::{page_up, PAGE};
use super::map::{Placement, Region, RegionKind, Space};

/// Auxiliary vector tags (`<linux/auxvec.h>`, `<asm/auxvec.h>`).
#[allow(missing_docs)]
pub mod at {
    pub const NULL: u64 = 0;
    pub const PHDR: u64 = 3;
    pub const PHENT: u64 = 4;
    pub const PHNUM: u64 = 5;
    pub const PAGESZ: u64 = 6;
    pub const BASE: u64 = 7;
    pub const FLAGS: u64 = 8;
    pub const ENTRY: u64 = 9;
    pub const UID: u64 = 11;
    pub const EUID: u64 = 12;
    pub const GID: u64 = 13;
    pub const EGID: u64 = 14;
    pub const PLATFORM: u64 = 15;
    pub const HWCAP: u64 = 16;
    pub const CLKTCK: u64 = 17;
    pub const SECURE: u64 = 23;
    pub const RANDOM: u64 = 25;
    pub const HWCAP2: u64 = 26;
    pub const RSEQ_FEATURE_SIZE: u64 = 27;
    pub const RSEQ_ALIGN: u64 = 28;
    pub const HWCAP3: u64 = 29;
    pub const HWCAP4: u64 = 30;
    pub const EXECFN: u64 = 31;
    pub const SYSINFO_EHDR: u64 = 33;
    pub const MINSIGSTKSZ: u64 = 51;
}

/// The platform string (`AT_PLATFORM`).
pub const PLATFORM: &[u8] = b"x86_64\0";
/// Linux's limit on one argument or environment string (`MAX_ARG_STRLEN`).
pub const MAX_ARG_STRLEN: usize = 32 * PAGE as usize;

/// How the initial stack is made and what the auxiliary vector says about the machine.
/// [`Default`] takes the machine's values from this process's own auxiliary vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackOptions {
    /// The stack's size in bytes (rounded up to pages); default 8 MiB.
    pub size: u64,
    /// The inaccessible guard below it; default 1 MiB (Linux's stack guard gap).
    pub guard: u64,
    /// `AT_SYSINFO_EHDR`, the vDSO the program may use (the monitor maps or permits
    /// it); `None` leaves the entry out. Default: this process's own vDSO.
    pub sysinfo_ehdr: Option<u64>,
    /// `AT_MINSIGSTKSZ`.
    pub minsigstksz: u64,
    /// `AT_HWCAP`.
    pub hwcap: u64,
    /// `AT_HWCAP2`.
    pub hwcap2: u64,
    /// `AT_CLKTCK`.
    pub clktck: u64,
    /// `AT_UID`, `AT_EUID`, `AT_GID`, `AT_EGID`.
    pub ids: [u64; 4],
    /// Entries newer kernels add after `AT_PLATFORM` (`AT_RSEQ_FEATURE_SIZE`,
    /// `AT_RSEQ_ALIGN`, `AT_HWCAP3`, `AT_HWCAP4`), in order. Default: this process's.
    pub extra: Vec<(u64, u64)>,
}

impl Default for StackOptions {
    fn default() -> Self {
        let host = host_auxv();
        let get = |tag: u64, dflt: u64| host.iter().find(|e| e.0 == tag).map_or(dflt, |e| e.1);
        // SAFETY: plain system calls without arguments.
        let ids = unsafe { [libc::getuid(), libc::geteuid(), libc::getgid(), libc::getegid()] };
        StackOptions {
            size: 8 << 20,
            guard: 1 << 20,
            sysinfo_ehdr: host.iter().find(|e| e.0 == at::SYSINFO_EHDR).map(|e| e.1),
            minsigstksz: get(at::MINSIGSTKSZ, 2048),
            hwcap: get(at::HWCAP, 0),
            hwcap2: get(at::HWCAP2, 0),
            clktck: get(at::CLKTCK, 100),
            ids: ids.map(u64::from),
            extra: host.iter().copied().filter(|e| (at::RSEQ_FEATURE_SIZE..=at::HWCAP4).contains(&e.0)).collect(),
        }
    }
}

/// This process's auxiliary vector, from `/proc/self/auxv`, else from `getauxval`.
pub fn host_auxv() -> Vec<(u64, u64)> {
    if let Ok(b) = std::fs::read("/proc/self/auxv") {
        let v: Vec<(u64, u64)> = b
            .chunks_exact(16)
            .map(|c| (u64::from_ne_bytes(c[..8].try_into().unwrap_or_default()), u64::from_ne_bytes(c[8..].try_into().unwrap_or_default())))
            .take_while(|e| e.0 != at::NULL)
            .collect();
        if !v.is_empty() {
            return v;
        }
    }
    [at::SYSINFO_EHDR, at::MINSIGSTKSZ, at::HWCAP, at::HWCAP2, at::CLKTCK]
        .into_iter()
        // SAFETY: getauxval only reads the process's auxiliary vector.
        .map(|t| (t, unsafe { libc::getauxval(t) }))
        .filter(|e| e.1 != 0)
        .collect()
}

/// What the auxiliary vector says about the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramAux {
    /// `AT_PHDR`: the program headers in memory (0 when they are not loaded).
    pub phdr: u64,
    /// `AT_PHNUM`.
    pub phnum: u64,
    /// `AT_BASE`: the interpreter's base (0 without one).
    pub base: u64,
    /// `AT_ENTRY`: the program's own entry point.
    pub entry: u64,
}

/// Why the stack could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The strings do not fit (`E2BIG`).
    #[error("argument list too long")]
    TooBig,
    /// A string with a NUL byte inside.
    #[error("an argument or environment string contains a NUL byte")]
    Nul,
    /// `getrandom` failed.
    #[error("cannot get random bytes: {0}")]
    Random(io::Error),
    /// Mapping or writing the stack failed.
    #[error("cannot map the stack ({what}): {source}")]
    Map {
        /// What the loader was doing.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
}

/// The stack as built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stack {
    /// The initial `rsp`: points to `argc`, 16-byte aligned.
    pub rsp: u64,
    /// The stack's top (exclusive).
    pub top: u64,
    /// `AT_RANDOM`: where the 16 random bytes are.
    pub random: u64,
    /// `AT_EXECFN`: where the executable's name is.
    pub execfn: u64,
}

/// The strings the stack holds.
#[derive(Debug, Clone, Copy)]
pub struct Strings<'a> {
    /// The arguments.
    pub argv: &'a [OsString],
    /// The environment.
    pub env: &'a [OsString],
    /// `AT_EXECFN`: the name the program was executed as.
    pub execfn: &'a OsStr,
}

/// Lays out the stack whose top (exclusive) is `top`; returns it and the bytes from
/// its `rsp` to `top`. At most `limit` bytes are used.
pub fn layout(
    top: u64,
    limit: u64,
    strs: &Strings<'_>,
    random: [u8; 16],
    opts: &StackOptions,
    prog: &ProgramAux,
) -> Result<(Stack, Vec<u8>), StackError> {
    let Strings { argv, env, execfn } = *strs;
    let strings = argv.iter().chain(env).map(|s| s.as_bytes()).chain([execfn.as_bytes()]);
    let mut strings_len = 0u64;
    for s in strings.clone() {
        if s.contains(&0) {
            return Err(StackError::Nul);
        }
        if s.len() >= MAX_ARG_STRLEN {
            return Err(StackError::TooBig);
        }
        strings_len += s.len() as u64 + 1;
    }
    let pointers = 8 * (argv.len() as u64 + env.len() as u64 + 3);
    // Linux allows the strings and their pointers a quarter of the stack.
    if strings_len + pointers > limit / 4 {
        return Err(StackError::TooBig);
    }
    let mut p = top - 8;
    p -= strings_len;
    let strings_at = p;
    let mut addrs = Vec::with_capacity(argv.len() + env.len() + 1);
    let mut at = strings_at;
    for s in strings {
        addrs.push(at);
        at += s.len() as u64 + 1;
    }
    let execfn_at = addrs[addrs.len() - 1];
    p &= !15;
    p -= PLATFORM.len() as u64;
    let platform_at = p;
    p -= 16;
    let random_at = p;
    let mut aux: Vec<(u64, u64)> = Vec::with_capacity(32);
    if let Some(v) = opts.sysinfo_ehdr {
        aux.push((at::SYSINFO_EHDR, v));
    }
    aux.extend([
        (at::MINSIGSTKSZ, opts.minsigstksz),
        (at::HWCAP, opts.hwcap),
        (at::PAGESZ, PAGE),
        (at::CLKTCK, opts.clktck),
        (at::PHDR, prog.phdr),
        (at::PHENT, 56),
        (at::PHNUM, prog.phnum),
        (at::BASE, prog.base),
        (at::FLAGS, 0),
        (at::ENTRY, prog.entry),
        (at::UID, opts.ids[0]),
        (at::EUID, opts.ids[1]),
        (at::GID, opts.ids[2]),
        (at::EGID, opts.ids[3]),
        (at::SECURE, 0),
        (at::RANDOM, random_at),
        (at::HWCAP2, opts.hwcap2),
        (at::EXECFN, execfn_at),
        (at::PLATFORM, platform_at),
    ]);
    aux.extend(opts.extra.iter().copied());
    aux.push((at::NULL, 0));
    let words = 1 + argv.len() as u64 + 1 + env.len() as u64 + 1 + 2 * aux.len() as u64;
    let sp = (p - 8 * words) & !15;
    if top - sp > limit {
        return Err(StackError::TooBig);
    }

    let mut img = vec![0u8; (top - sp) as usize];
    let mut put = |addr: u64, bytes: &[u8]| {
        let o = (addr - sp) as usize;
        img[o..o + bytes.len()].copy_from_slice(bytes);
    };
    let mut w = sp;
    let mut word = |put: &mut dyn FnMut(u64, &[u8]), v: u64| {
        put(w, &v.to_ne_bytes());
        w += 8;
    };
    word(&mut put, argv.len() as u64);
    for &a in &addrs[..argv.len()] {
        word(&mut put, a);
    }
    word(&mut put, 0);
    for &a in &addrs[argv.len()..argv.len() + env.len()] {
        word(&mut put, a);
    }
    word(&mut put, 0);
    for &(k, v) in &aux {
        word(&mut put, k);
        word(&mut put, v);
    }
    put(random_at, &random);
    put(platform_at, PLATFORM);
    let all = argv.iter().chain(env).map(|s| s.as_bytes()).chain([execfn.as_bytes()]);
    for (s, &a) in all.zip(&addrs) {
        put(a, s);
    }
    Ok((Stack { rsp: sp, top, random: random_at, execfn: execfn_at }, img))
}

/// 16 bytes from `getrandom`.
pub fn random_bytes() -> Result<[u8; 16], StackError> {
    let mut b = [0u8; 16];
    let mut got = 0;
    while got < b.len() {
        // SAFETY: writes at most the rest of `b`, a live local buffer.
        let n = unsafe { libc::getrandom(b[got..].as_mut_ptr().cast(), b.len() - got, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(StackError::Random(e));
        }
        got += n as usize;
    }
    Ok(b)
}

/// Maps the stack (guard below, inaccessible), lays it out and writes it. Executable
/// when `exec` (`PT_GNU_STACK` with `PF_X`).
pub fn build(
    space: &mut dyn Space,
    opts: &StackOptions,
    strs: &Strings<'_>,
    prog: &ProgramAux,
    exec: bool,
    regions: &mut Vec<Region>,
) -> Result<Stack, StackError> {
    let size = page_up(opts.size.clamp(16 * PAGE, 1 << 40));
    let guard = page_up(opts.guard.min(1 << 30));
    let random = random_bytes()?;
    let map = |what| move |source| StackError::Map { what, source };
    let base = space.reserve(Placement::Anywhere, guard + size).map_err(map("reserve"))?;
    let bottom = base + guard;
    let top = bottom + size;
    // Lay out first: a too-long argument list must not leave a mapping behind.
    let (stack, img) = match layout(top, size, strs, random, opts, prog) {
        Ok(v) => v,
        Err(e) => {
            let _ = space.unmap(base, guard + size);
            return Err(e);
        }
    };
    let prot = libc::PROT_READ | libc::PROT_WRITE | if exec { libc::PROT_EXEC } else { 0 };
    space.map_anon(bottom, size, prot).map_err(map("map"))?;
    space.write(stack.rsp, &img).map_err(map("write"))?;
    if guard > 0 {
        regions.push(Region { start: base, len: guard, prot: libc::PROT_NONE, kind: RegionKind::StackGuard });
    }
    regions.push(Region { start: bottom, len: size, prot, kind: RegionKind::Stack });
    Ok(stack)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(img: &[u8], sp: u64, addr: u64) -> u64 {
        let o = (addr - sp) as usize;
        u64::from_ne_bytes(img[o..o + 8].try_into().unwrap())
    }

    fn cstr(img: &[u8], sp: u64, addr: u64) -> &[u8] {
        let o = (addr - sp) as usize;
        let n = img[o..].iter().position(|&b| b == 0).unwrap();
        &img[o..o + n]
    }

    #[test]
    fn layout_is_the_kernels() {
        let opts = StackOptions { sysinfo_ehdr: Some(0x7fff_0000_0000), extra: vec![(27, 28), (28, 32)], ..StackOptions::default() };
        let prog = ProgramAux { phdr: 0x400040, phnum: 9, base: 0x7f00_0000_0000, entry: 0x401000 };
        let argv = ["prog", "a b", ""].map(OsString::from);
        let env = ["A=1", "PATH=/bin"].map(OsString::from);
        let top = 0x7ffd_0000_0000;
        let (st, img) = layout(top, 8 << 20, &Strings { argv: &argv, env: &env, execfn: OsStr::new("/bin/prog") }, [7; 16], &opts, &prog).unwrap();
        let sp = st.rsp;
        assert_eq!(sp % 16, 0);
        assert_eq!(sp + img.len() as u64, top);
        assert_eq!(word(&img, sp, top - 8), 0, "the top word is zero");
        assert_eq!(word(&img, sp, sp), 3);
        let mut a = sp + 8;
        for s in ["prog", "a b", ""] {
            assert_eq!(cstr(&img, sp, word(&img, sp, a)), s.as_bytes());
            a += 8;
        }
        assert_eq!(word(&img, sp, a), 0);
        a += 8;
        let first_env = word(&img, sp, a);
        for s in ["A=1", "PATH=/bin"] {
            assert_eq!(cstr(&img, sp, word(&img, sp, a)), s.as_bytes());
            a += 8;
        }
        assert_eq!(word(&img, sp, a), 0);
        a += 8;
        // Strings in order, lowest first: argv, then env, then execfn.
        assert!(word(&img, sp, sp + 8) < first_env && first_env < st.execfn);
        let mut tags = vec![];
        loop {
            let (k, v) = (word(&img, sp, a), word(&img, sp, a + 8));
            a += 16;
            if k == at::NULL {
                break;
            }
            tags.push(k);
            match k {
                at::RANDOM => assert_eq!(&img[(v - sp) as usize..][..16], &[7; 16]),
                at::EXECFN => assert_eq!(cstr(&img, sp, v), b"/bin/prog"),
                at::PLATFORM => assert_eq!(cstr(&img, sp, v), b"x86_64"),
                at::PHDR => assert_eq!(v, 0x400040),
                at::BASE => assert_eq!(v, 0x7f00_0000_0000),
                at::SECURE | at::FLAGS => assert_eq!(v, 0),
                at::PAGESZ => assert_eq!(v, 4096),
                _ => {}
            }
        }
        use at::*;
        assert_eq!(
            tags,
            [SYSINFO_EHDR, MINSIGSTKSZ, HWCAP, PAGESZ, CLKTCK, PHDR, PHENT, PHNUM, BASE, FLAGS, ENTRY, UID, EUID, GID, EGID, SECURE, RANDOM, HWCAP2, EXECFN, PLATFORM, 27, 28]
        );
        assert!(a <= st.random, "auxv ends below the random bytes");
    }

    #[test]
    fn too_big_and_nul() {
        let opts = StackOptions::default();
        let prog = ProgramAux { phdr: 0, phnum: 1, base: 0, entry: 0 };
        let big = vec![OsString::from("x".repeat(100_000)); 30];
        let e = layout(1 << 40, 8 << 20, &Strings { argv: &big, env: &[], execfn: OsStr::new("p") }, [0; 16], &opts, &prog).unwrap_err();
        assert!(matches!(e, StackError::TooBig));
        let nul = [OsString::from("a\0b")];
        assert!(matches!(layout(1 << 40, 8 << 20, &Strings { argv: &nul, env: &[], execfn: OsStr::new("p") }, [0; 16], &opts, &prog), Err(StackError::Nul)));
    }
}

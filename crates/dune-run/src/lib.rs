//! `dune run`: an unmodified program in Dune mode from before `main`.
//!
//! The program is started with `libdune_preload.so` in `LD_PRELOAD`; its ELF
//! constructor enters Dune mode (crate `dune-preload`). This crate decides whether
//! that can work, as a shell would decide whether the program can run at all:
//!
//! - [`resolve`] finds the program as `execvp` does (a name with a slash is a path;
//!   otherwise each `PATH` entry), with the shell's statuses: 127 when it is missing,
//!   126 when it cannot be executed;
//! - [`inspect`] reads its ELF header (or its `#!` line, then the interpreter's): a
//!   statically linked, 32-bit or foreign program never loads a preload library, so
//!   it is refused with a one-line reason instead of running outside Dune mode;
//! - [`exec`] replaces the calling process with the program (so its exit status,
//!   signals and standard streams are the program's own).

use std::ffi::{CString, OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why a program cannot be run; `Display` is the one-line message, [`RunError::exit_code`]
/// the status a shell would give.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No such program on `PATH` (or no such file, for a path).
    #[error("{0}: command not found")]
    NotFound(String),
    /// A path that does not exist.
    #[error("{0}: No such file or directory")]
    NoSuchFile(String),
    /// Exists, but is a directory.
    #[error("{0}: Is a directory")]
    IsDirectory(String),
    /// Exists, but may not be executed (or read).
    #[error("{0}: Permission denied")]
    PermissionDenied(String),
    /// Neither an ELF file nor a `#!` script.
    #[error("{0}: cannot execute binary file: Exec format error")]
    ExecFormat(String),
    /// An ELF file this machine cannot run in Dune mode (32-bit, another machine).
    #[error("{path}: {why}")]
    Unsupported {
        /// The program.
        path: String,
        /// Why.
        why: &'static str,
    },
    /// Statically linked: it never loads the preload library.
    #[error("{0}: statically linked: `dune run` enters Dune mode from a preloaded library, which a static program never loads (run it under `dune sandbox`, whose loader serves static programs)")]
    Static(String),
    /// The preload library is missing.
    #[error("cannot find {0} (build it with `cargo build -p dune-preload`, or point DUNE_PRELOAD at it)")]
    NoPreload(String),
    /// `execve` itself failed.
    #[error("{path}: {source}")]
    Exec {
        /// The program.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

impl RunError {
    /// The exit status a shell gives for the same problem: 127 for a program that is
    /// not there, 126 for one that cannot be executed, 125 for `dune run`'s own failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::NotFound(_) | RunError::NoSuchFile(_) => 127,
            RunError::NoPreload(_) => 125,
            RunError::Exec { source, .. } if source.raw_os_error() == Some(libc::ENOENT) => 127,
            _ => 126,
        }
    }
}

/// What kind of program a file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A dynamically linked x86-64 ELF executable, with its interpreter.
    Dynamic {
        /// `PT_INTERP`, the dynamic loader.
        interpreter: PathBuf,
    },
    /// A `#!` script whose interpreter is itself a dynamic program.
    Script {
        /// The interpreter named on the `#!` line.
        interpreter: PathBuf,
    },
}

/// Finds `name` as `execvp` does. `path_var` is the value of `PATH`.
pub fn resolve(name: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, RunError> {
    let shown = name.to_string_lossy().into_owned();
    if name.as_bytes().contains(&b'/') {
        let p = PathBuf::from(name);
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => Err(RunError::IsDirectory(shown)),
            Ok(_) => Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(RunError::PermissionDenied(shown)),
            Err(_) => Err(RunError::NoSuchFile(shown)),
        };
    }
    if name.is_empty() {
        return Err(RunError::NotFound(shown));
    }
    let path_var = path_var.map(OsStr::to_os_string).unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    let mut denied = false;
    for dir in path_var.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() { Path::new(".") } else { Path::new(OsStr::from_bytes(dir)) };
        let cand = dir.join(name);
        if let Ok(m) = std::fs::metadata(&cand) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
            denied |= m.is_file();
        }
    }
    Err(if denied { RunError::PermissionDenied(shown) } else { RunError::NotFound(shown) })
}

/// Reads what kind of program `path` is, following one `#!` line.
pub fn inspect(path: &Path) -> Result<Program, RunError> {
    inspect_depth(path, 0)
}

fn inspect_depth(path: &Path, depth: u32) -> Result<Program, RunError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|_| RunError::NoSuchFile(shown.clone()))?;
    if meta.is_dir() {
        return Err(RunError::IsDirectory(shown));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(RunError::PermissionDenied(shown));
    }
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
        .map_err(|_| RunError::PermissionDenied(shown.clone()))?;
    if head.starts_with(b"#!") {
        if depth > 0 {
            // Linux allows nested interpreters, but a script interpreter that is itself
            // a script is rare; judge the first real program instead.
            return Err(RunError::ExecFormat(shown));
        }
        let line = head[2..].split(|&b| b == b'\n').next().unwrap_or_default();
        let interp = line.split(|&b| b == b' ' || b == b'\t').find(|w| !w.is_empty()).ok_or_else(|| RunError::ExecFormat(shown.clone()))?;
        let interpreter = PathBuf::from(OsStr::from_bytes(interp));
        return match inspect_depth(&interpreter, depth + 1)? {
            Program::Dynamic { .. } => Ok(Program::Script { interpreter }),
            Program::Script { .. } => Err(RunError::ExecFormat(shown)),
        };
    }
    let whole = || std::fs::read(path).map_err(|_| RunError::PermissionDenied(shown.clone()));
    match elf_interpreter(&head, whole)? {
        Elf::Other => Err(RunError::ExecFormat(shown)),
        Elf::Unsupported(why) => Err(RunError::Unsupported { path: shown, why }),
        Elf::Static => Err(RunError::Static(shown)),
        Elf::Dynamic(interpreter) => Ok(Program::Dynamic { interpreter }),
    }
}

/// What an ELF header says.
#[derive(Debug, PartialEq, Eq)]
enum Elf {
    Other,
    Unsupported(&'static str),
    Static,
    Dynamic(PathBuf),
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// Classifies an ELF file from its first bytes (`head`); `whole` reads all of it when
/// the program headers or the interpreter name lie beyond `head`.
fn elf_interpreter(head: &[u8], whole: impl Fn() -> Result<Vec<u8>, RunError>) -> Result<Elf, RunError> {
    const PT_INTERP: u32 = 3;
    const EM_X86_64: u16 = 62;
    if !head.starts_with(b"\x7fELF") {
        return Ok(Elf::Other);
    }
    match head.get(4) {
        Some(2) => {}
        Some(1) => return Ok(Elf::Unsupported("32-bit program: Dune mode runs x86-64 programs only")),
        _ => return Ok(Elf::Other),
    }
    if head.get(5) != Some(&1) {
        return Ok(Elf::Unsupported("big-endian ELF: not an x86-64 program"));
    }
    let Some(machine) = u16_at(head, 18) else { return Ok(Elf::Other) };
    if machine != EM_X86_64 {
        return Ok(Elf::Unsupported("not an x86-64 program"));
    }
    if !matches!(u16_at(head, 16), Some(2 | 3)) {
        return Ok(Elf::Unsupported("not an executable (ELF type is neither EXEC nor DYN)"));
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(head, 32), u16_at(head, 54), u16_at(head, 56)) else { return Ok(Elf::Other) };
    if phentsize < 56 {
        return Ok(Elf::Other);
    }
    let end = (phoff as usize).saturating_add(phentsize as usize * phnum as usize);
    let owned;
    let bytes = if end <= head.len() {
        head
    } else {
        owned = whole()?;
        &owned[..]
    };
    let mut interp = None;
    for i in 0..phnum as usize {
        let Some(at) = (phoff as usize).checked_add(i * phentsize as usize) else { return Ok(Elf::Other) };
        let Some(ty) = u32_at(bytes, at) else { return Ok(Elf::Other) };
        if ty == PT_INTERP {
            let (Some(off), Some(size)) = (u64_at(bytes, at + 8), u64_at(bytes, at + 32)) else { return Ok(Elf::Other) };
            interp = Some((off as usize, size as usize));
        }
    }
    let Some((off, size)) = interp else { return Ok(Elf::Static) };
    if size == 0 || size > 4096 {
        return Ok(Elf::Other);
    }
    let owned2;
    let bytes = if off.saturating_add(size) <= bytes.len() {
        bytes
    } else {
        owned2 = whole()?;
        &owned2[..]
    };
    let Some(name) = off.checked_add(size).and_then(|end| bytes.get(off..end)) else { return Ok(Elf::Other) };
    let name = name.split(|&b| b == 0).next().unwrap_or_default();
    Ok(Elf::Dynamic(PathBuf::from(OsStr::from_bytes(name))))
}

/// Where `libdune_preload.so` is: `$DUNE_PRELOAD`, else next to the `dune` executable
/// (a cargo build), else `../lib/dune/` from it (an installation).
pub fn preload_path(env: Option<&OsStr>, exe: &Path) -> Result<PathBuf, RunError> {
    const NAME: &str = "libdune_preload.so";
    if let Some(p) = env {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(RunError::NoPreload(p.display().to_string())) };
    }
    let dir = exe.parent().unwrap_or(Path::new("."));
    for cand in [dir.join(NAME), dir.join("../lib/dune").join(NAME)] {
        if cand.is_file() {
            return Ok(cand);
        }
    }
    Err(RunError::NoPreload(dir.join(NAME).display().to_string()))
}

/// `LD_PRELOAD` with `lib` first (the runtime must enter before any other preloaded
/// library's constructor runs code).
pub fn preload_value(lib: &Path, existing: Option<&OsStr>) -> OsString {
    let mut v = lib.as_os_str().to_os_string();
    if let Some(e) = existing.filter(|e| !e.is_empty()) {
        v.push(":");
        v.push(e);
    }
    v
}

/// How to run the program.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print the runtime's exit counts when the program (and each forked child) exits.
    pub stats: bool,
}

/// Replaces this process with `argv[0]` (found by [`resolve`]) in Dune mode. Returns
/// only on failure.
pub fn exec(argv: &[OsString], opts: &RunOptions, preload: &Path) -> RunError {
    let Some(name) = argv.first() else { return RunError::NotFound(String::new()) };
    let path = match resolve(name, std::env::var_os("PATH").as_deref()) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if let Err(e) = inspect(&path) {
        return e;
    }
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().filter(|(k, _)| k != "LD_PRELOAD" && k != "DUNE_STATS").collect();
    env.push(("LD_PRELOAD".into(), preload_value(preload, std::env::var_os("LD_PRELOAD").as_deref())));
    if opts.stats {
        env.push(("DUNE_STATS".into(), "1".into()));
    }
    let shown = path.display().to_string();
    let cstr = |s: OsString| CString::new(s.into_vec()).map_err(|_| RunError::Exec { path: shown.clone(), source: std::io::Error::from_raw_os_error(libc::EINVAL) });
    let prog = match cstr(path.clone().into_os_string()) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let args: Result<Vec<CString>, RunError> = argv.iter().cloned().map(cstr).collect();
    let envs: Result<Vec<CString>, RunError> = env
        .into_iter()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            cstr(kv)
        })
        .collect();
    let (args, envs) = match (args, envs) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let mut ap: Vec<*const libc::c_char> = args.iter().map(|c| c.as_ptr()).collect();
    ap.push(std::ptr::null());
    let mut ep: Vec<*const libc::c_char> = envs.iter().map(|c| c.as_ptr()).collect();
    ep.push(std::ptr::null());
    // SAFETY: SIGPIPE back to its default action, which the Rust runtime set to
    // "ignore" for this process and execve would pass on (a shell gives programs the
    // default: `dune run yes | head` must end `yes` by SIGPIPE, not with EPIPE); then
    // NUL-terminated strings in arrays ending with a null pointer, all alive across
    // the call; execve returns only on failure.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::execve(prog.as_ptr(), ap.as_ptr(), ep.as_ptr())
    };
    RunError::Exec { path: shown, source: std::io::Error::last_os_error() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(head: &[u8]) -> Elf {
        elf_interpreter(head, || Ok(head.to_vec())).unwrap()
    }

    /// A minimal x86-64 ELF header with `phnum` program headers after it, the first
    /// of type `first_type`, interpreter string at 0x200.
    fn image(class: u8, machine: u16, first_type: u32) -> Vec<u8> {
        let mut b = vec![0u8; 0x300];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = class;
        b[5] = 1;
        b[16..18].copy_from_slice(&3u16.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&2u16.to_le_bytes());
        b[64..68].copy_from_slice(&first_type.to_le_bytes());
        b[64 + 8..64 + 16].copy_from_slice(&0x200u64.to_le_bytes());
        b[64 + 32..64 + 40].copy_from_slice(&28u64.to_le_bytes());
        b[120..124].copy_from_slice(&1u32.to_le_bytes());
        b[0x200..0x200 + 28].copy_from_slice(b"/lib64/ld-linux-x86-64.so.2\0");
        b
    }

    #[test]
    fn classifies_elf_headers() {
        assert_eq!(elf(&image(2, 62, 3)), Elf::Dynamic("/lib64/ld-linux-x86-64.so.2".into()));
        assert_eq!(elf(&image(2, 62, 1)), Elf::Static);
        assert!(matches!(elf(&image(1, 3, 3)), Elf::Unsupported(w) if w.contains("32-bit")));
        assert!(matches!(elf(&image(2, 183, 3)), Elf::Unsupported(_)));
        assert_eq!(elf(b"#!/bin/sh\n"), Elf::Other);
        assert_eq!(elf(b"\x7fELF"), Elf::Other);
    }

    #[test]
    fn truncated_and_hostile_headers_are_errors_not_panics() {
        let good = image(2, 62, 3);
        for n in 0..good.len() {
            let _ = elf_interpreter(&good[..n], || Ok(good[..n].to_vec()));
        }
        let mut huge = image(2, 62, 3);
        huge[56..58].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(elf(&huge), Elf::Other);
        let mut far = image(2, 62, 3);
        far[64 + 8..64 + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(elf(&far), Elf::Other);
        let mut big_interp = image(2, 62, 3);
        big_interp[64 + 32..64 + 40].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert_eq!(elf(&big_interp), Elf::Other);
    }

    #[test]
    fn random_corruptions_never_panic() {
        // A bounded property test: 20,000 headers with random bytes overwritten.
        let good = image(2, 62, 3);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut b = good.clone();
            for _ in 0..(next() % 8 + 1) {
                let at = (next() % 128) as usize;
                b[at] = next() as u8;
            }
            let len = (next() as usize) % (b.len() + 1);
            let _ = elf_interpreter(&b[..len], || Ok(b[..len].to_vec()));
        }
    }

    #[test]
    fn real_programs_on_this_machine() {
        let sh = inspect(Path::new("/bin/sh")).unwrap();
        assert!(matches!(sh, Program::Dynamic { .. }), "{sh:?}");
        let e = inspect(Path::new("/nonexistent/prog")).unwrap_err();
        assert_eq!(e.exit_code(), 127);
        let e = inspect(Path::new("/etc/passwd")).unwrap_err();
        assert_eq!(e.exit_code(), 126, "{e}");
        let e = inspect(Path::new("/etc")).unwrap_err();
        assert!(matches!(e, RunError::IsDirectory(_)));
    }

    #[test]
    fn resolves_like_execvp() {
        let p = resolve(OsStr::new("sh"), Some(OsStr::new("/nonexistent:/bin"))).unwrap();
        assert_eq!(p, Path::new("/bin/sh"));
        let e = resolve(OsStr::new("no-such-program-here"), Some(OsStr::new("/bin"))).unwrap_err();
        assert_eq!(e.to_string(), "no-such-program-here: command not found");
        assert_eq!(e.exit_code(), 127);
        let e = resolve(OsStr::new("./no/such/file"), None).unwrap_err();
        assert_eq!(e.exit_code(), 127);
    }

    #[test]
    fn preload_goes_first() {
        assert_eq!(preload_value(Path::new("/a.so"), None), OsString::from("/a.so"));
        assert_eq!(preload_value(Path::new("/a.so"), Some(OsStr::new("/b.so"))), OsString::from("/a.so:/b.so"));
    }
}

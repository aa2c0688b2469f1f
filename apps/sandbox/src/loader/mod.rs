//! The monitor's own ELF loader: it puts an unmodified Linux x86-64 program (and its
//! dynamic loader) into an address space and builds its initial stack, as the
//! kernel's `execve` would, without the kernel's `execve`.
//!
//! Two steps:
//!
//! - [`prepare`] finds the program as `execvp` does ([`dune_run::resolve`]), follows
//!   `#!` lines (at most [`script::MAX_DEPTH`] levels; the argument vector is
//!   rewritten as the kernel rewrites it), opens and validates the ELF file and its
//!   `PT_INTERP`: every header field the loader uses is checked against the file
//!   ([`elf::parse`]). Nothing is mapped yet; a failure is a [`LoadError`] whose
//!   [`LoadError::exit_code`] is the shell's status (127 missing, 126 cannot execute).
//! - [`load`] maps the program and its interpreter through a [`Space`] (the monitor's
//!   record of the program's memory; [`LibcSpace`] does it with plain `mmap` in this
//!   process), builds the stack ([`stack`]) and returns where to start: [`Loaded`].
//!   Every region it made is in [`Loaded::regions`].
//!
//! Placement: an `ET_EXEC` program goes at its link addresses, reserved with
//! `MAP_FIXED_NOREPLACE` semantics ([`Placement::Exactly`]): a conflict with an
//! existing mapping is [`LoadError::AddressInUse`]. An `ET_DYN` program (PIE,
//! static-pie) goes at a random page-aligned hint near Linux's `ELF_ET_DYN_BASE`
//! (anywhere else if that is taken), the interpreter wherever the space chooses;
//! both aligned to their largest `p_align`. Segments are then mapped only inside the
//! reservation. The program break starts at the page-aligned end of the program's
//! highest segment ([`Loaded::brk_start`]); the monitor emulates `brk` from there.
//!
//! Environment: `PATH` for the search comes from `env` when it has one, else from
//! this process.

pub mod elf;
pub mod map;
pub mod script;
pub mod stack;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use dune_run::RunError;

pub use elf::{ElfError, ElfInfo, ElfKind};
pub use map::{LibcSpace, Placement, Region, RegionKind, Space};
pub use stack::{StackError, StackOptions};

/// Why a program cannot be loaded; `Display` is one line, [`LoadError::exit_code`]
/// the status a shell gives for the same problem.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// From the `PATH` search: not found, a directory, permission denied.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Opening or reading the file failed.
    #[error("{path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// A file that is neither ELF nor a `#!` script, or an unusable `#!` line.
    #[error("{0}: cannot execute binary file: Exec format error")]
    ExecFormat(String),
    /// An ELF file that fails validation.
    #[error("{path}: {error}")]
    Elf {
        /// The file.
        path: String,
        /// What is wrong with it.
        error: ElfError,
    },
    /// The interpreter (`PT_INTERP` or `#!`) does not exist.
    #[error("{path}: {interp}: bad interpreter: No such file or directory")]
    MissingInterpreter {
        /// The program.
        path: String,
        /// The interpreter it names.
        interp: String,
    },
    /// The `PT_INTERP` file fails validation.
    #[error("{path}: interpreter {interp}: {error}")]
    BadInterpreter {
        /// The program.
        path: String,
        /// The interpreter it names.
        interp: String,
        /// What is wrong with it.
        error: ElfError,
    },
    /// More than [`script::MAX_DEPTH`] levels of `#!` (`ELOOP`).
    #[error("{0}: too many levels of #! interpreters")]
    ScriptLoop(String),
    /// The stack could not be built (too many arguments, a NUL in a string...).
    #[error("{path}: {error}")]
    Stack {
        /// The program.
        path: String,
        /// Why.
        error: StackError,
    },
    /// An `ET_EXEC` program's addresses are already in use in this address space.
    #[error("{path}: cannot load at {addr:#x}..{end:#x}: the range is already in use", end = addr.saturating_add(*len))]
    AddressInUse {
        /// The program.
        path: String,
        /// The start of the range it needs.
        addr: u64,
        /// Its length.
        len: u64,
    },
    /// Mapping failed.
    #[error("{path}: cannot {what} at {addr:#x} ({len:#x} bytes): {source}")]
    Map {
        /// The file being mapped.
        path: String,
        /// What the loader was doing.
        what: &'static str,
        /// The address.
        addr: u64,
        /// The length.
        len: u64,
        /// The error.
        source: io::Error,
    },
}

impl LoadError {
    /// The exit status a shell gives: 127 for a program (or interpreter) that is not
    /// there, 126 for one that cannot be executed.
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadError::Run(e) => e.exit_code(),
            LoadError::MissingInterpreter { .. } => 127,
            LoadError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
            _ => 126,
        }
    }
}

/// An opened, validated ELF file.
#[derive(Debug)]
pub struct Image {
    /// Its path.
    pub path: PathBuf,
    /// The open file (mapped from by [`load`]).
    pub file: File,
    /// What its headers say.
    pub info: ElfInfo,
}

/// A program ready to load: what [`prepare`] found.
#[derive(Debug)]
pub struct Exec {
    /// The program (after `#!` lines: the ELF file that runs).
    pub program: Image,
    /// Its `PT_INTERP`, opened and validated.
    pub interp: Option<Image>,
    /// The arguments, rewritten for `#!` lines as the kernel does.
    pub argv: Vec<OsString>,
    /// The environment.
    pub env: Vec<OsString>,
    /// `AT_EXECFN`: the path the search found (the script's, for a script).
    pub execfn: OsString,
}

/// Where the loaded program starts and what it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Where to jump: the interpreter's entry, else the program's.
    pub entry: u64,
    /// The initial stack pointer (points to `argc`, 16-byte aligned).
    pub rsp: u64,
    /// The program's own entry point (`AT_ENTRY`).
    pub program_entry: u64,
    /// Added to the program's addresses (0 for `ET_EXEC`).
    pub load_bias: u64,
    /// The interpreter's base (`AT_BASE`), 0 without one.
    pub interp_base: u64,
    /// Where the program break starts.
    pub brk_start: u64,
    /// `AT_PHDR` (0 when the program headers are not in a loaded segment).
    pub phdr: u64,
    /// `AT_RANDOM`.
    pub random: u64,
    /// Every region the loader made, the program's to use.
    pub regions: Vec<Region>,
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// How [`prepare_with`] opens a file: plainly ([`prepare`]), or through a policy's
/// path rules (the sandbox's monitor).
pub type Opener<'a> = &'a dyn Fn(&Path) -> io::Result<File>;

/// Opens `path` as the kernel's `open_exec` does: a regular file with an execute bit.
fn open_exec(path: &Path, open: Opener<'_>) -> Result<(File, u64), io::Error> {
    let file = open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    }
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(io::Error::from_raw_os_error(libc::EACCES));
    }
    Ok((file, meta.len()))
}

fn open_error(path: &Path, e: io::Error) -> LoadError {
    let p = shown(path);
    match e.raw_os_error() {
        Some(libc::ENOENT) => LoadError::Run(RunError::NoSuchFile(p)),
        Some(libc::EISDIR) => LoadError::Run(RunError::IsDirectory(p)),
        Some(libc::EACCES) => LoadError::Run(RunError::PermissionDenied(p)),
        _ => LoadError::Open { path: p, source: e },
    }
}

/// Finds, reads and validates a program: `name` is searched as `execvp` searches,
/// `argv` is its argument vector (`argv[0]` included), `env` its environment.
/// Nothing is mapped.
pub fn prepare(name: &OsStr, argv: Vec<OsString>, env: &[OsString]) -> Result<Exec, LoadError> {
    prepare_with(name, argv, env, &|p| File::open(p))
}

/// [`prepare`], opening the program, its `#!` interpreters and its `PT_INTERP` with
/// `open`.
pub fn prepare_with(name: &OsStr, argv: Vec<OsString>, env: &[OsString], open: Opener<'_>) -> Result<Exec, LoadError> {
    let path_var = env
        .iter()
        .find_map(|e| e.as_bytes().strip_prefix(b"PATH=").map(|v| OsStr::from_bytes(v).to_os_string()))
        .or_else(|| std::env::var_os("PATH"));
    let found = dune_run::resolve(name, path_var.as_deref())?;
    let execfn = found.clone().into_os_string();
    for s in argv.iter().chain(env) {
        if s.as_bytes().contains(&0) {
            return Err(LoadError::Stack { path: shown(&found), error: StackError::Nul });
        }
    }
    let mut argv = argv;
    let mut path = found;
    let mut depth = 0;
    // The script whose `#!` line named `path`, if any.
    let mut script: Option<PathBuf> = None;
    let (file, info) = loop {
        // The interpreter is opened through `open` like the program (a check of its
        // own, by `exists`, would tell the program about files no rule lets it see).
        let (file, size) = open_exec(&path, open).map_err(|e| match &script {
            Some(s) if e.kind() == io::ErrorKind::NotFound => LoadError::MissingInterpreter { path: shown(s), interp: shown(&path) },
            _ => open_error(&path, e),
        })?;
        let mut head = vec![0u8; script::LINE_MAX.min(size as usize)];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0).map_err(|e| LoadError::Open { path: shown(&path), source: e })?;
        if let Some(sb) = script::parse(&head) {
            let sb = sb.map_err(|()| LoadError::ExecFormat(shown(&path)))?;
            depth += 1;
            if depth > script::MAX_DEPTH {
                return Err(LoadError::ScriptLoop(shown(&path)));
            }
            let interp = PathBuf::from(OsString::from_vec(sb.interp.clone()));
            argv = script::rewrite_argv(&sb, &path.clone().into_os_string(), argv);
            script = Some(std::mem::replace(&mut path, interp));
            continue;
        }
        match elf::parse(&elf::FileSource { file: &file, size }) {
            Ok(info) => break (file, info),
            Err(ElfError::NotElf) => return Err(LoadError::ExecFormat(shown(&path))),
            Err(error) => return Err(LoadError::Elf { path: shown(&path), error }),
        }
    };
    let interp = match &info.interp {
        None => None,
        Some(name) => {
            let ipath = PathBuf::from(OsStr::from_bytes(name));
            let bad = |error| LoadError::BadInterpreter { path: shown(&path), interp: shown(&ipath), error };
            let (ifile, isize) = match open_exec(&ipath, open) {
                Ok(v) => v,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(LoadError::MissingInterpreter { path: shown(&path), interp: shown(&ipath) })
                }
                Err(e) => return Err(open_error(&ipath, e)),
            };
            let iinfo = elf::parse_interpreter(&elf::FileSource { file: &ifile, size: isize }).map_err(bad)?;
            Some(Image { path: ipath, file: ifile, info: iinfo })
        }
    };
    Ok(Exec { program: Image { path, file, info }, interp, argv, env: env.to_vec(), execfn })
}

/// A random page-aligned address in the 1 TiB above Linux's `ELF_ET_DYN_BASE`, where
/// the kernel puts position-independent programs.
fn pie_hint() -> Option<u64> {
    const ET_DYN_BASE: u64 = 0x5555_5555_4000;
    let r = stack::random_bytes().ok()?;
    let n = u64::from_ne_bytes(r[..8].try_into().ok()?);
    Some(ET_DYN_BASE + (n % (1 << 28)) * elf::PAGE)
}

fn map_error(path: &Path, f: map::MapFailure) -> LoadError {
    if f.what == "reserve" && f.source.raw_os_error() == Some(libc::EEXIST) {
        return LoadError::AddressInUse { path: shown(path), addr: f.addr, len: f.len };
    }
    LoadError::Map { path: shown(path), what: f.what, addr: f.addr, len: f.len, source: f.source }
}

/// Maps a prepared program and its interpreter into `space` and builds its stack.
/// On failure, what was mapped stays mapped (the caller discards the space).
pub fn load(exec: &Exec, space: &mut dyn Space, opts: &StackOptions) -> Result<Loaded, LoadError> {
    let prog = &exec.program;
    let mut regions = Vec::new();
    let hint = if prog.info.kind == ElfKind::Dyn { pie_hint() } else { None };
    let m = map::map_image(space, &prog.info, prog.file.as_fd(), hint, RegionKind::Program, &mut regions).map_err(|f| map_error(&prog.path, f))?;
    let program_entry = prog.info.entry.wrapping_add(m.bias);
    let (entry, interp_base) = match &exec.interp {
        None => (program_entry, 0),
        Some(i) => {
            let im = map::map_image(space, &i.info, i.file.as_fd(), None, RegionKind::Interpreter, &mut regions).map_err(|f| map_error(&i.path, f))?;
            (i.info.entry.wrapping_add(im.bias), im.bias + i.info.span().0)
        }
    };
    let phdr = prog.info.phdr_vaddr().map_or(0, |v| v.wrapping_add(m.bias));
    let aux = stack::ProgramAux { phdr, phnum: u64::from(prog.info.phnum), base: interp_base, entry: program_entry };
    let strs = stack::Strings { argv: &exec.argv, env: &exec.env, execfn: &exec.execfn };
    let st = stack::build(space, opts, &strs, &aux, prog.info.exec_stack, &mut regions).map_err(|error| LoadError::Stack { path: shown(&prog.path), error })?;
    Ok(Loaded {
        entry,
        rsp: st.rsp,
        program_entry,
        load_bias: m.bias,
        interp_base,
        brk_start: m.end,
        phdr,
        random: st.random,
        regions,
    })
}

//! `#!` scripts, read as Linux's `binfmt_script` reads them.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// How many bytes of a file the kernel looks at for the `#!` line (`BINPRM_BUF_SIZE`).
pub const LINE_MAX: usize = 256;
/// At most this many `#!` levels (a script whose interpreter is a script...).
pub const MAX_DEPTH: u32 = 4;

/// A parsed `#!` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shebang {
    /// The interpreter's path, used as is (no `PATH` search).
    pub interp: Vec<u8>,
    /// The optional single argument: everything after the interpreter's name, spaces
    /// and tabs trimmed at both ends.
    pub arg: Option<Vec<u8>>,
}

/// The `#!` line of a file whose first bytes are `head`: `None` when it does not start
/// with `#!`, `Some(Err(()))` for an unusable line (empty, or the interpreter's name
/// cut by the 256-byte limit), which is `ENOEXEC`. A NUL byte ends the line, as in C.
pub fn parse(head: &[u8]) -> Option<Result<Shebang, ()>> {
    if !head.starts_with(b"#!") {
        return None;
    }
    // The kernel's buffer: the first 256 bytes, NUL-padded; its last byte is never
    // part of the line.
    let mut buf = [0u8; LINE_MAX];
    let n = head.len().min(LINE_MAX);
    buf[..n].copy_from_slice(&head[..n]);
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let line = match buf.iter().position(|&b| b == b'\n') {
        Some(end) => &buf[2..end],
        None => {
            let body = &buf[2..LINE_MAX - 1];
            let Some(start) = body.iter().position(|b| !blank(b)) else { return Some(Err(())) };
            // No space, tab or NUL after the name: it may be cut, so the kernel refuses it.
            if !body[start..].iter().any(|b| blank(b) || *b == 0) {
                return Some(Err(()));
            }
            body
        }
    };
    let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
    let start = line.iter().position(|b| !blank(b)).unwrap_or(line.len());
    let line = &line[start..];
    let name_len = line.iter().position(blank).unwrap_or(line.len());
    if name_len == 0 {
        return Some(Err(()));
    }
    let interp = line[..name_len].to_vec();
    let after = &line[name_len..];
    let a = after.iter().position(|b| !blank(b)).unwrap_or(after.len());
    let z = after.iter().rposition(|b| !blank(b)).map_or(a, |z| z + 1);
    let arg = (a < z).then(|| after[a..z].to_vec());
    Some(Ok(Shebang { interp, arg }))
}

/// The new argument vector, as the kernel builds it: `argv[0]` is dropped, and the
/// interpreter, its argument and the script's path come first.
pub fn rewrite_argv(sb: &Shebang, script: &OsString, argv: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len() + 2);
    out.push(OsString::from_vec(sb.interp.clone()));
    if let Some(a) = &sb.arg {
        out.push(OsString::from_vec(a.clone()));
    }
    out.push(script.clone());
    out.extend(argv.into_iter().skip(1));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(head: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        let s = parse(head).unwrap().unwrap();
        (s.interp, s.arg)
    }

    #[test]
    fn lines_as_linux_reads_them() {
        assert_eq!(parse(b"\x7fELF"), None);
        assert_eq!(ok(b"#!/bin/sh\necho"), (b"/bin/sh".to_vec(), None));
        assert_eq!(ok(b"#! /bin/sh -e \t\nx"), (b"/bin/sh".to_vec(), Some(b"-e".to_vec())));
        assert_eq!(ok(b"#!/usr/bin/env python3 -u x\n"), (b"/usr/bin/env".to_vec(), Some(b"python3 -u x".to_vec())));
        assert_eq!(ok(b"#!/bin/sh"), (b"/bin/sh".to_vec(), None), "no newline but a short file");
        assert_eq!(parse(b"#!\n"), Some(Err(())));
        assert_eq!(parse(b"#!   \t \n"), Some(Err(())));
        let mut long = b"#!/".to_vec();
        long.extend(std::iter::repeat_n(b'a', 300));
        assert_eq!(parse(&long), Some(Err(())), "interpreter name cut at 256 bytes");
        let mut long_arg = b"#!/bin/sh ".to_vec();
        long_arg.extend(std::iter::repeat_n(b'a', 300));
        let (_, arg) = ok(&long_arg);
        assert_eq!(arg.unwrap().len(), LINE_MAX - 3 - 8, "the argument is cut, as Linux does");
    }

    #[test]
    fn argv_rewriting() {
        let sb = Shebang { interp: b"/bin/sh".to_vec(), arg: Some(b"-e".to_vec()) };
        let v = rewrite_argv(&sb, &"./s".into(), vec!["s".into(), "a".into()]);
        assert_eq!(v, ["/bin/sh", "-e", "./s", "a"].map(OsString::from));
    }
}

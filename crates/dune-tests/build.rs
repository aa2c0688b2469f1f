//! Builds the C programs the sandbox tests run (`csrc/`) with the system's C
//! compiler; their paths reach the tests as `SANDBOX_ESCAPE`, `SANDBOX_WORKLOAD` and
//! `SANDBOX_ATTACK`, `SANDBOX_FUZZ`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    for (src, bin, var) in [("csrc/sandbox-escape.c", "sandbox-escape", "SANDBOX_ESCAPE"), ("csrc/sandbox-workload.c", "sandbox-workload", "SANDBOX_WORKLOAD"), ("csrc/sandbox-attack.c", "sandbox-attack", "SANDBOX_ATTACK"), ("csrc/sandbox-fuzz.c", "sandbox-fuzz", "SANDBOX_FUZZ")] {
        println!("cargo:rerun-if-changed={src}");
        let dst = out.join(bin);
        let status = Command::new(&cc).args(["-O1", "-g", "-pthread", "-Wall", "-o"]).arg(&dst).arg(src).status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("{cc} {src} failed: {s}"),
            Err(e) => panic!("cannot run the C compiler {cc} for {src}: {e}"),
        }
        println!("cargo:rustc-env={var}={}", dst.display());
    }
}

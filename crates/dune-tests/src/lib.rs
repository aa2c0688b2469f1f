//! Helpers shared by the tests that run programs in Dune mode (`tests/*.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// How long a program may run before it counts as hung.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// How long output may stay open after the program ended (a descendant may hold it).
const STREAM_GRACE: Duration = Duration::from_secs(30);

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<target>/debug`, from the calling test binary's path `<target>/debug/deps/<name>`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

/// Newest modification time of `p` (a file, or everything under a directory).
pub fn newest(p: &Path) -> SystemTime {
    let meta = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut t = meta.modified().expect("mtime");
    if meta.is_dir() {
        for e in std::fs::read_dir(p).expect("read_dir").flatten() {
            t = t.max(newest(&e.path()));
        }
    }
    t
}

/// `exe`, after checking it is newer than every input (paths relative to the
/// repository): a stale binary fails the test with `how_to_build`, never a pass on
/// old code.
pub fn fresh(exe: PathBuf, inputs: &[&str], how_to_build: &str) -> PathBuf {
    let built = std::fs::metadata(&exe).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
    for input in inputs {
        assert!(built >= newest(&repo().join(input)), "{} is missing or older than {input}: {how_to_build}", exe.display());
    }
    exe
}

/// Runs `cmd` (without `DUNE_ALLOW_EMULATED`), collecting its output; a program
/// still running after [`RUN_LIMIT`] is killed and the test fails: a hang is a
/// failure, never a stuck test run.
pub fn run_bounded(cmd: Command) -> Output {
    run_bounded_for(cmd, RUN_LIMIT)
}

/// [`run_bounded`] with a limit of its own (a run meant to be long).
pub fn run_bounded_for(mut cmd: Command, limit: Duration) -> Output {
    use std::io::Read;
    use std::sync::mpsc;
    let what = format!("{cmd:?}");
    let mut child = cmd
        .env_remove("DUNE_ALLOW_EMULATED")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    // Each stream is read on a thread that reports through a channel: a descendant
    // that outlives the program (a hung forked child) keeps the pipe open, and
    // waiting for end-of-file then would hang the test run instead of failing it.
    let reader = |mut r: Box<dyn Read + Send>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            let _ = tx.send(v);
        });
        rx
    };
    let out_rx = reader(Box::new(child.stdout.take().expect("stdout")));
    let err_rx = reader(Box::new(child.stderr.take().expect("stderr")));
    let collect = |rx: &mpsc::Receiver<Vec<u8>>| rx.recv_timeout(STREAM_GRACE).unwrap_or_else(|_| b"<stream still held open by a descendant>".to_vec());
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let st = child.wait().expect("wait");
            let stderr = String::from_utf8_lossy(&collect(&err_rx)).into_owned();
            let tail: Vec<&str> = stderr.lines().rev().take(200).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!("{what}: hung for {limit:?} and was killed ({st:?})\nstderr (last 200 lines):\n{}", tail.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (collect(&out_rx), collect(&err_rx));
    Output { status, stdout, stderr }
}

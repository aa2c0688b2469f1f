//! The project's one C library, `libdune.a` and `libdune.so`: the C APIs of every
//! component in one artifact over one copy of libdune and the Rust runtime.
//!
//! | header | API | crate |
//! | --- | --- | --- |
//! | `include/libdune/dune.h` | the original libdune | `libdune-c` |
//! | `apps/sthread/include/sthread.h` | Wedge sthreads | `dune-sthread` |
//! | `apps/gc/include/gc.h` | the collector (Boehm's names) | `dune-gc` |
//! | `apps/sandbox/include/dune/sandbox.h` | the sandbox | `dune-sandbox` |
//!
//! Each crate is a Rust library only. Were each also a C library of its own, every one
//! would carry its own runtime: `-lsthread -ldune` would define `dune_enter` twice, and
//! two shared ones would put two runtimes, each with its own VM, in one process.
//! `scripts/install` gives this library the other names C programs link it by
//! (`libsthread`, `libdune_sthread`, `libdune_gc`, `libdune_sandbox`) as symbolic
//! links, with a pkg-config file for each.
//!
//! Nothing here but the links: the `#[no_mangle]` functions of every crate linked in are
//! the library's exports.

extern crate dune_c as _;
extern crate dune_gc as _;
extern crate dune_sandbox as _;
extern crate dune_sthread as _;

//! A conservative, non-moving mark-sweep garbage collector for C and Rust programs
//! whose dirty pages can come from the guest page table (paper §5.3).
//!
//! Not built yet: this crate is the place the garbage-collector issue fills. Planned
//! layout (see `apps/README.md`), after bdwgc's split of the dirty-page interface and
//! MMTk's split of plan from policy:
//!
//! - `dirty`: one trait for "which pages were written since the last collection" and
//!   one file per source (none, mprotect, soft-dirty, uffd, dune-fault, dune-dirty);
//! - `heap`, `mark`, `sweep`, `roots`: the collector;
//! - `capi`: the core of bdwgc's `gc.h`, as a static and a shared library;
//! - `bench`: `dune bench gc` (GCBench, LinkedList, HashMap, XML; Boehm GC as a peer).

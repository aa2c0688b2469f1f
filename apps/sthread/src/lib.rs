//! Wedge sthreads on Dune (paper §5.2): privilege-separated compartments started
//! from a pristine snapshot of the program and recycled by restoring only the pages
//! whose dirty bit is set.
//!
//! Not built yet: this crate is the place the sthreads issue fills. Planned layout
//! (see `apps/README.md`):
//!
//! - `policy`: tags, memory, descriptor and system-call grants, callgates;
//! - `compartment`: page tables per sthread, PCIDs, snapshot and dirty-bit reset;
//! - `capi`: the Wedge-on-Dune `sthread.h` API (`libsthread.a`, `libsthread.so`);
//! - `bench`: its rows for `dune bench` (create, context switch, http request).

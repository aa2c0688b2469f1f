//! The runtime as a program sees it: entering Dune mode, what the runtime has done
//! so far (exits by kind, memory mapped into the VM), and what of the process it
//! keeps for itself (descriptors and memory the program cannot touch).

pub use crate::guest::in_dune_mode;
pub use crate::host::init::init;
pub use crate::host::kvm::{hypercalls, Hypercalls};
pub use crate::host::memory::MemStats;
pub use crate::host::run::enter;
pub use crate::host::state::{counters, current_vcpu_fd, mem_stats, Counters};

/// The first descriptor number the runtime keeps for itself, once the VM exists. The
/// program can use every number below it (its `RLIMIT_NOFILE` is capped there) and
/// none at or above it: calls that name one fail with `EBADF`.
pub fn descriptor_base() -> Option<i32> {
    let b = crate::host::reserved::fd_base();
    (b != i32::MAX).then_some(b)
}

/// The runtime's own mappings, `(start, end)`: host stacks, page tables, vCPU areas,
/// fixed tables, `kvm_run` areas. `munmap`, `mmap(MAP_FIXED)`, `mremap`, `mprotect`
/// and destructive `madvise` over them fail with `EPERM`.
pub fn reserved_memory() -> Vec<(u64, u64)> {
    let mut v = Vec::new();
    crate::host::reserved::for_each_range(|s, e| v.push((s, e)));
    v
}

/// A number that changes whenever the runtime maps or unmaps memory of its own (a new
/// vCPU area, host stack or arena chunk). A page table built from [`crate::vm::pgroot`]
/// for [`crate::user::UserContext::cr3`] must map the runtime's memory as `pgroot`
/// does; rebuilding the shared part when this changes keeps it so.
pub fn memory_generation() -> u64 {
    crate::host::reserved::generation()
}

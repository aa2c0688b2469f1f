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

/// Where an application's own reserved descriptors start ([`dup_reserved`]), once the
/// VM exists: above the runtime's, out of the program's reach.
pub fn application_descriptor_floor() -> Option<i32> {
    let b = crate::host::reserved::app_floor();
    (b != i32::MAX).then_some(b)
}

/// A close-on-exec duplicate of `fd` at the application's reserved numbers (from
/// [`application_descriptor_floor`]): above the program's `RLIMIT_NOFILE`, so the
/// program can neither name it nor `dup2` onto it, and left out of listings of
/// `/proc/self/fd`. The caller keeps `fd` (and closes it). For an application that runs
/// untrusted code in ring 3 and holds descriptors of its own (the sandbox's monitor);
/// its ring-0 calls may use the duplicate once it called [`guard_descriptors`].
pub fn dup_reserved(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let r = if crate::guest::in_dune_mode() {
        crate::guest::dispatch::service(crate::guest::entry::SERVICE_DUP_APP, fd.as_raw_fd() as u64)
    } else {
        crate::host::reserved::dup_app(fd.as_raw_fd()).map_or_else(|e| -(e as i64), |f| f as i64)
    };
    if r < 0 {
        return Err(std::io::Error::from_raw_os_error(-r as i32));
    }
    // SAFETY: the service made this descriptor just now and nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(r as i32) })
}

/// Declares that this process runs its untrusted code in ring 3 and checks that
/// code's descriptor arguments itself: ring-0 calls may use the application's reserved
/// numbers, and the caller takes [`exclusive_descriptors`] around the program's
/// `close`, `dup2`, `dup3` and `close_range` (the runtime no longer does: the
/// application's own pins would block it).
pub fn guard_descriptors() {
    crate::host::reserved::set_app_mode();
}

/// Lets ring-0 calls use the duplicates [`dup_reserved`] makes, for an application
/// whose ring-0 code is the program's own (sthreads: the master is trusted, the code
/// in ring 3 is not): the program gets none of those numbers from the kernel and
/// cannot `dup2` onto them, and the runtime keeps serializing the program's `close`,
/// `dup2`, `dup3` and `close_range` itself (unlike [`guard_descriptors`]).
pub fn use_application_descriptors() {
    crate::host::reserved::open_app_range();
}

/// Held while a descriptor sits at a low number (below the program's limit) that the
/// runtime or the application will use or move: see [`pin_descriptors`].
pub use crate::host::reserved::Pin as DescriptorPin;
/// Held while a call that replaces or closes a given descriptor number runs.
pub use crate::host::reserved::Exclusive as DescriptorsExclusive;

/// Pins descriptor numbers: until the pin drops, no `close`, `dup2`, `dup3` or
/// `close_range` of the program runs, so a descriptor the caller just opened (at the
/// lowest free number, which the program can name) stays the caller's. Shared; never
/// hold it across a call that can block for long.
pub fn pin_descriptors() -> DescriptorPin {
    crate::host::reserved::pin()
}

/// For an application after [`guard_descriptors`]: taken around the program's calls
/// that replace or close a given number. Waits for every [`DescriptorPin`].
pub fn exclusive_descriptors() -> DescriptorsExclusive {
    crate::host::reserved::exclusive()
}

/// The text of `/proc/self/maps`, read through the runtime's own descriptor of it,
/// which sits at the runtime's numbers: an application that reads the map while the
/// program runs beside it must not open the file itself (the descriptor would be born
/// at the lowest free number of the table the program shares, where a sibling thread
/// could duplicate it and read the map).
pub fn own_maps() -> std::io::Result<Vec<u8>> {
    let text = if crate::guest::in_dune_mode() {
        // Ring 0 cannot use the runtime's numbers: the host hands over a duplicate at
        // the application's.
        // No duplicate, no map: never a fresh descriptor at the program's numbers here.
        let dup = crate::guest::dispatch::service(crate::guest::entry::SERVICE_DUP_MAPS, 0);
        if dup < 0 {
            return Err(std::io::Error::from_raw_os_error(-dup as i32));
        }
        let text = crate::host::procmap::text_through(Some(dup as i32));
        // SAFETY: the duplicate the service made for this call, owned here.
        drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dup as i32) });
        text
    } else {
        crate::host::procmap::text()
    };
    text.map_err(|e| std::io::Error::other(format!("/proc/self/maps: {e}")))
}

/// For an application whose ring-3 page tables follow the memory map (sthreads share
/// the master's read-only pages): after every `munmap`, `mprotect`, `mremap` and
/// `shmdt`, including one that only adds access, every vCPU running ring 3 leaves its
/// `run_user` session (`UserExit::Interrupt` with the TLB-shootdown vector) before the
/// call returns, so the application can look at [`map_generation`] again before ring 3
/// runs on. Costs one interrupt broadcast per such call.
pub fn interrupt_sessions_on_map_change(on: bool) {
    crate::host::exits::syscall::INTERRUPT_SESSIONS.store(on, core::sync::atomic::Ordering::Release);
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

/// Changes whenever the program's memory map changes in Dune mode (`munmap`,
/// `mremap`, `mprotect`, `mmap` at a fixed address, `shmdt`): for a component that
/// keeps something derived from the map.
pub fn map_generation() -> u64 {
    crate::host::mapchanges::generation()
}

/// Calls `f(start, end)` for each range of the map that changed after generation
/// `since` up to `until` ([`map_generation`] values). False when the runtime no longer
/// remembers them all: then any range may have changed.
pub fn map_changes(since: u64, until: u64, f: impl FnMut(u64, u64)) -> bool {
    crate::host::mapchanges::since(since, until, f)
}

//! Errors of the runtime: one variant per step that can fail, each with its source.

use std::io;

/// Result type of libdune.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while preparing or running Dune mode.
///
/// Variants carry a `&'static str` naming the step instead of a `String`: errors are
/// also built on exit paths where allocating is not allowed (see `runtime`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `/dev/kvm` does not exist.
    #[error("/dev/kvm not found: load kvm_intel or kvm_amd, or enable virtualization in the BIOS or hypervisor")]
    NoKvm,
    /// `/dev/kvm` exists but cannot be opened.
    #[error("/dev/kvm: permission denied: add the user to the `kvm` group or check the ACL of /dev/kvm")]
    KvmAccess,
    /// Opening `/dev/kvm` failed for another reason.
    #[error("cannot open /dev/kvm: {0}")]
    KvmOpen(#[source] io::Error),
    /// The kernel's KVM API is older than what the runtime needs.
    #[error("KVM on this kernel lacks {0}; Linux 5.16 or later is required")]
    MissingCapability(&'static str),
    /// Guest ring 0 is emulated by the hypervisor (kvm_pvm), and the user did not opt in.
    #[error("guest ring 0 is emulated here ({0}); Dune mode would run ~2,000x slower and fault on AVX. Set DUNE_ALLOW_EMULATED=1 (or Options::allow_emulated) to run anyway")]
    EmulatedRing0(String),
    /// A KVM ioctl failed.
    #[error("KVM {step} failed: {source}")]
    Kvm {
        /// The ioctl or step that failed.
        step: &'static str,
        /// The errno KVM returned.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// A host system call made by the runtime itself failed.
    #[error("{step} failed: {source}")]
    Os {
        /// The system call or step that failed.
        step: &'static str,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// No more vCPUs can be created in this VM.
    #[error("too many threads in Dune mode: KVM allows {0} vCPUs per VM")]
    TooManyVcpus(usize),
    /// Mapping more memory would exceed the bound on memslot kernel memory.
    #[error("memslot budget exceeded: mapping {requested} more bytes would pass the limit of {budget} bytes (set DUNE_MEMSLOT_BUDGET to raise it)")]
    MemslotBudget {
        /// Bytes that were asked for.
        requested: u64,
        /// The configured budget.
        budget: u64,
    },
    /// The guest-physical address space (below MAXPHYADDR) is used up.
    #[error("guest-physical address space exhausted (MAXPHYADDR {0} bits)")]
    GuestPhysExhausted(u8),
    /// A fixed-capacity runtime table is full.
    #[error("runtime table full: {0}")]
    TableFull(&'static str),
    /// Building the guest page table failed.
    #[error("guest page table: {0}")]
    PageTable(dune_x86::paging::Error),
    /// `/proc/self/maps` could not be read or parsed.
    #[error("/proc/self/maps: {0}")]
    ProcMaps(&'static str),
    /// An option had a value the runtime cannot use.
    #[error("invalid option {name}: {why}")]
    InvalidOption {
        /// Option or environment variable name.
        name: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl Error {
    pub(crate) fn kvm(step: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Error {
        move |source| Error::Kvm { step, source }
    }

    pub(crate) fn os_errno(step: &'static str, errno: i32) -> Error {
        Error::Os { step, source: io::Error::from_raw_os_error(errno) }
    }
}

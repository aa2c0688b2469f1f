//! Errors of the page-table mapper.

use core::fmt;

/// Why a page-table operation failed.
///
/// Operations that fail leave every entry they did not get to unchanged; range
/// operations may have completed a prefix of the range (see each method).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// [`FrameSource::alloc_table`](crate::paging::FrameSource::alloc_table)
    /// returned `None`.
    OutOfTables,
    /// A table address (the root, or one read from an entry) is not memory the
    /// [`FrameSource`](crate::paging::FrameSource) can reach, or a new table
    /// was not 4 KiB-aligned.
    InvalidTable(u64),
    /// The virtual address is not canonical (SDM Vol. 1 §3.3.7.1).
    NonCanonical(u64),
    /// An address or length is not a multiple of the required alignment.
    Misaligned {
        /// The offending address or length.
        addr: u64,
        /// The alignment it needs, in bytes.
        align: u64,
    },
    /// The physical address does not fit in entry bits 51:12.
    PhysAddrTooLarge(u64),
    /// Flags outside [`LEAF_FLAGS_MASK`](crate::paging::LEAF_FLAGS_MASK), or a
    /// flag update that touches P.
    InvalidFlags(u64),
    /// The range is empty-by-inversion (start after end), crosses the
    /// non-canonical hole, or its bounds are not canonical.
    InvalidRange {
        /// First byte of the range, as given.
        start: u64,
        /// End of the range, as given.
        end: u64,
    },
    /// No present leaf maps the address.
    NotMapped(u64),
    /// The address is already covered by a mapping of a different page size: a
    /// larger page, or a lower-level table that still holds present leaves.
    SizeConflict(u64),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::OutOfTables => write!(f, "out of memory for page tables"),
            Error::InvalidTable(pa) => {
                write!(f, "page table at physical address {pa:#x} is not reachable")
            }
            Error::NonCanonical(va) => write!(f, "virtual address {va:#x} is not canonical"),
            Error::Misaligned { addr, align } => {
                write!(f, "{addr:#x} is not aligned to {align:#x} bytes")
            }
            Error::PhysAddrTooLarge(pa) => {
                write!(f, "physical address {pa:#x} exceeds 52 bits")
            }
            Error::InvalidFlags(flags) => write!(f, "invalid entry flags {flags:#x}"),
            Error::InvalidRange { start, end } => {
                write!(f, "invalid virtual address range {start:#x}..{end:#x}")
            }
            Error::NotMapped(va) => write!(f, "virtual address {va:#x} is not mapped"),
            Error::SizeConflict(va) => write!(
                f,
                "virtual address {va:#x} is already mapped with a different page size"
            ),
        }
    }
}

impl core::error::Error for Error {}

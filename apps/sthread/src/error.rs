//! Errors are values; the C API turns them into -1 (or NULL) and errno.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Dune runtime refused (not in Dune mode, no KVM, out of memory, ...).
    #[error("dune: {0}")]
    Dune(#[from] libdune::Error),
    /// `init` has not run.
    #[error("sthread_init has not been called")]
    NotInitialized,
    /// A bad argument.
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// The tag does not exist (or was deleted).
    #[error("no such tag")]
    NoSuchTag,
    /// The sthread handle is unknown, stale or already joined.
    #[error("no such sthread")]
    NoSuchSthread,
    /// The tag is granted to an sthread still running.
    #[error("tag in use by a running sthread")]
    Busy,
    /// Not allowed: a callgate policy larger than its creator's, a call from ring 3.
    #[error("not permitted: {0}")]
    NotPermitted(&'static str),
    /// Out of tag space or pages.
    #[error("out of memory: {0}")]
    NoMemory(&'static str),
    /// A bug in this crate or a state it cannot handle.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// The errno the C API sets.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Dune(_) | Error::Internal(_) => libc::EIO,
            Error::NotInitialized => libc::ENXIO,
            Error::Invalid(_) => libc::EINVAL,
            Error::NoSuchTag | Error::NoSuchSthread => libc::ESRCH,
            Error::Busy => libc::EBUSY,
            Error::NotPermitted(_) => libc::EPERM,
            Error::NoMemory(_) => libc::ENOMEM,
        }
    }
}

/// This crate's result.
pub type Result<T> = core::result::Result<T, Error>;

//! The KVM device and VM descriptors, opened at the runtime's descriptor numbers
//! (`reserved`), out of the program's reach.

use std::os::fd::{AsRawFd, FromRawFd};

use kvm_ioctls::{Kvm, VmFd};

use crate::error::{Error, Result};
use super::{reserved, sys};

/// The KVM device: `inherited` if that descriptor really is `/dev/kvm` (a character
/// device 10:232 answering API version 12), else opened at `path`; checked, and
/// moved to the runtime's numbers.
pub fn open(path: &std::path::Path, inherited: Option<i32>) -> Result<Kvm> {
    if let Some(fd) = inherited.filter(|&fd| is_kvm_device(fd)) {
        // SAFETY: the descriptor is the KVM device (checked) and was passed to this
        // image for the runtime alone; the Kvm takes it over.
        let kvm = unsafe { Kvm::from_raw_fd(fd) };
        if kvm.get_api_version() == 12 {
            return move_high(kvm);
        }
        std::mem::forget(kvm);
    }
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::InvalidOption { name: "kvm_path", why: "contains a NUL byte" })?;
    let kvm = Kvm::new_with_path(&c).map_err(|e| match e.errno() {
        libc::ENOENT => Error::NoKvm,
        libc::EACCES | libc::EPERM => Error::KvmAccess,
        _ => Error::KvmOpen(std::io::Error::from_raw_os_error(e.errno())),
    })?;
    if kvm.get_api_version() != 12 {
        return Err(Error::MissingCapability("KVM API version 12 (is this really /dev/kvm?)"));
    }
    move_high(kvm)
}

fn move_high(kvm: Kvm) -> Result<Kvm> {
    let high = reserved::with_fd_room(|| reserved::dup_high(kvm.as_raw_fd())).map_err(|e| Error::os_errno("moving the KVM descriptor to the runtime's numbers", e))?;
    // SAFETY: `high` is a fresh duplicate of the /dev/kvm descriptor, owned by nothing
    // else; the original is closed when `kvm` drops.
    Ok(unsafe { Kvm::from_raw_fd(high) })
}

/// Whether `fd` is an open descriptor of the KVM device (misc character device 10:232).
fn is_kvm_device(fd: i32) -> bool {
    // SAFETY: fstat into a zeroed local.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fstat writes one struct stat into the local; a bad descriptor is an
    // error, not a fault.
    let r = unsafe { sys::syscall(libc::SYS_fstat, fd as u64, &mut st as *mut libc::stat as u64, 0) };
    r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFCHR && libc::major(st.st_rdev) == 10 && libc::minor(st.st_rdev) == 232
}

/// A new VM whose descriptor sits at the runtime's numbers, out of the program's reach.
pub fn create_vm(kvm: &Kvm, step: &'static str) -> Result<VmFd> {
    reserved::with_fd_room(|| {
        let low = kvm.create_vm().map_err(Error::kvm(step))?;
        let high = reserved::dup_high(low.as_raw_fd()).map_err(|e| Error::os_errno("moving the VM descriptor to the runtime's numbers", e))?;
        // SAFETY: `high` is a fresh duplicate of the new VM's descriptor, owned by
        // nothing else; `low` closes its own when it drops.
        unsafe { kvm.create_vmfd_from_rawfd(high) }.map_err(Error::kvm(step))
    })
}

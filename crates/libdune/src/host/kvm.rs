//! The KVM device and VM descriptors, opened at the runtime's descriptor numbers
//! (`reserved`), out of the program's reach.

use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicU8, Ordering};

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
    // The descriptor was born below the program's limit: pinned until it moved up.
    let _pin = reserved::pin_runtime();
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

/// A new VM whose descriptor sits at the runtime's numbers, out of the program's reach,
/// with hypercalls set up for `vmcall`/`vmmcall` as system calls ([`hypercalls`]).
pub fn create_vm(kvm: &Kvm, step: &'static str) -> Result<VmFd> {
    let vm = reserved::with_fd_room(|| {
        let _pin = reserved::pin_runtime();
        let low = kvm.create_vm().map_err(Error::kvm(step))?;
        let high = reserved::dup_high(low.as_raw_fd()).map_err(|e| Error::os_errno("moving the VM descriptor to the runtime's numbers", e))?;
        // SAFETY: `high` is a fresh duplicate of the new VM's descriptor, owned by
        // nothing else; `low` closes its own when it drops.
        unsafe { kvm.create_vmfd_from_rawfd(high) }.map_err(Error::kvm(step))
    })?;
    keep_faults_synchronous(kvm, &vm);
    let h = setup_hypercalls(kvm, &vm)?;
    HYPERCALLS.store(h.foreign_ud as u8 | (h.native_exit as u8) << 1, Ordering::Release);
    Ok(vm)
}

/// Makes KVM resolve the guest's faults on host memory synchronously.
///
/// With an in-kernel local APIC and guest interrupts on (the runtime has both, for
/// TLB shootdowns), KVM uses "asynchronous page faults": a host page that needs work
/// is faulted in by a kernel worker while the vCPU halts. For a page that cannot be
/// faulted in at all (a file mapping beyond the end of its file, where Linux sends
/// SIGBUS) the worker fails, the vCPU retries, and the cycle never ends: `KVM_RUN`
/// does not return. KVM does not use asynchronous faults when HLT exits are disabled
/// and the guest cannot take "page not present" events (`kvm_can_do_async_pf`); then
/// the fault fails at once and `KVM_RUN` returns `EFAULT`, which the runtime handles.
/// The runtime never executes `hlt`, so nothing else changes.
fn keep_faults_synchronous(kvm: &Kvm, vm: &VmFd) {
    let exits = kvm.check_extension_raw(kvm_bindings::KVM_CAP_X86_DISABLE_EXITS as libc::c_ulong);
    if exits > 0 && exits as u32 & kvm_bindings::KVM_X86_DISABLE_EXITS_HLT != 0 {
        let mut cap = kvm_bindings::kvm_enable_cap { cap: kvm_bindings::KVM_CAP_X86_DISABLE_EXITS, ..Default::default() };
        cap.args[0] = kvm_bindings::KVM_X86_DISABLE_EXITS_HLT as u64;
        // Best effort: without it a SIGBUS access hangs, everything else works.
        let _ = vm.enable_cap(&cap);
    }
}

/// How `vmcall` and `vmmcall` reach the runtime on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hypercalls {
    /// The other vendor's instruction (`vmcall` on AMD, `vmmcall` on Intel) raises #UD
    /// in the guest instead of being rewritten in the guest's text
    /// (`KVM_X86_QUIRK_FIX_HYPERCALL_INSN` disabled).
    pub foreign_ud: bool,
    /// The CPU's own instruction exits to user space (`KVM_EXIT_XEN`, Xen hypercall
    /// interception) instead of being answered by KVM's own hypercalls.
    pub native_exit: bool,
}

static HYPERCALLS: AtomicU8 = AtomicU8::new(0);

/// What the VM was set up with (both false before `init`).
pub fn hypercalls() -> Hypercalls {
    let h = HYPERCALLS.load(Ordering::Acquire);
    Hypercalls { foreign_ud: h & 1 != 0, native_exit: h & 2 != 0 }
}

/// `_IOW(KVMIO, 0x7a, struct kvm_xen_hvm_config)` (linux/kvm.h).
const KVM_XEN_HVM_CONFIG: libc::c_ulong = 0x4038_ae7a;
const _: () = assert!(core::mem::size_of::<kvm_bindings::kvm_xen_hvm_config>() == 0x38);

/// Sets up what this KVM offers so `vmcall`/`vmmcall` reach the runtime.
fn setup_hypercalls(kvm: &Kvm, vm: &VmFd) -> Result<Hypercalls> {
    let mut h = Hypercalls::default();
    let quirks = kvm.check_extension_raw(kvm_bindings::KVM_CAP_DISABLE_QUIRKS2 as libc::c_ulong);
    if quirks > 0 && quirks as u32 & kvm_bindings::KVM_X86_QUIRK_FIX_HYPERCALL_INSN != 0 {
        let mut cap = kvm_bindings::kvm_enable_cap { cap: kvm_bindings::KVM_CAP_DISABLE_QUIRKS2, ..Default::default() };
        cap.args[0] = kvm_bindings::KVM_X86_QUIRK_FIX_HYPERCALL_INSN as u64;
        vm.enable_cap(&cap).map_err(Error::kvm("KVM_ENABLE_CAP(KVM_CAP_DISABLE_QUIRKS2)"))?;
        h.foreign_ud = true;
    }
    let xen = kvm.check_extension_raw(kvm_bindings::KVM_CAP_XEN_HVM as libc::c_ulong);
    if xen > 0 && xen as u32 & kvm_bindings::KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL != 0 {
        let cfg = kvm_bindings::kvm_xen_hvm_config { flags: kvm_bindings::KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL, ..Default::default() };
        // SAFETY: KVM_XEN_HVM_CONFIG reads one kvm_xen_hvm_config from the local; no
        // hypercall page MSR (msr 0) and no blobs.
        let r = unsafe { libc::ioctl(vm.as_raw_fd(), KVM_XEN_HVM_CONFIG as _, &cfg) };
        h.native_exit = r == 0;
    }
    Ok(h)
}

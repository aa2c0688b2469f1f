//! The KVM device: does `/dev/kvm` open read-write, does it speak API version
//! 12, and is the kernel new enough for every capability the runtime uses.

use std::fs;
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd};

use kvm_bindings::KVM_API_VERSION;
use kvm_ioctls::Kvm;

use super::types::{Check, Probe, Status, KVM_DEVICE};

/// Oldest kernel with every capability the runtime uses
/// (`KVM_CAP_VCPU_ATTRIBUTES` / `KVM_VCPU_TSC_OFFSET` arrived in 5.16).
const MIN_KERNEL: (u32, u32) = (5, 16);

/// Opens `/dev/kvm` read-write and pushes the `kvm-device` check.
pub(super) fn probe_device(checks: &mut Vec<Check>) -> Option<Kvm> {
    match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(KVM_DEVICE)
    {
        Ok(file) => {
            checks.push(Check::new(
                Probe::KvmDevice,
                Status::Ok,
                "/dev/kvm opens read-write",
            ));
            // SAFETY: `into_raw_fd` hands over ownership of a descriptor we
            // just opened on /dev/kvm; `Kvm` becomes its only owner and closes it.
            Some(unsafe { Kvm::from_raw_fd(file.into_raw_fd()) })
        }
        Err(e) => {
            checks.push(Check::new(
                Probe::KvmDevice,
                Status::Fail,
                device_error_detail(&e),
            ));
            None
        }
    }
}

/// What to tell the user when `/dev/kvm` does not open.
fn device_error_detail(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => {
            "no /dev/kvm: load kvm_intel/kvm_amd or enable virtualization in the BIOS/hypervisor"
                .into()
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "permission denied: add your user to the kvm group or check the /dev/kvm ACL".into()
        }
        Some(libc::ENXIO) | Some(libc::ENODEV) => {
            format!("/dev/kvm exists but no KVM module serves it ({e}): load kvm_intel/kvm_amd")
        }
        _ => format!("cannot open /dev/kvm read-write: {e}"),
    }
}

pub(super) fn api_version_check(version: i32) -> Check {
    let expected = i64::from(KVM_API_VERSION);
    if i64::from(version) == expected {
        Check::new(Probe::ApiVersion, Status::Ok, format!("{version}"))
    } else {
        Check::new(
            Probe::ApiVersion,
            Status::Fail,
            format!("KVM API version {version}, expected {expected}"),
        )
    }
}

/// `uname -r`.
pub(super) fn kernel_release() -> Option<String> {
    // SAFETY: `utsname` is plain old data (arrays of `c_char`); all zeros is a
    // valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable `utsname` that outlives the call.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    let bytes: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(bytes).ok()
}

/// `(major, minor)` from a release such as `6.18.44-fc-v657`.
fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

pub(super) fn kernel_check(release: Option<&str>) -> Check {
    let Some(release) = release else {
        return Check::new(Probe::Kernel, Status::Warn, "uname failed");
    };
    match parse_kernel_version(release) {
        Some(v) if v >= MIN_KERNEL => Check::new(Probe::Kernel, Status::Ok, release),
        Some(_) => Check::new(
            Probe::Kernel,
            Status::Warn,
            format!(
                "{release}: older than {}.{}, some capabilities below will be missing",
                MIN_KERNEL.0, MIN_KERNEL.1
            ),
        ),
        None => Check::new(
            Probe::Kernel,
            Status::Warn,
            format!("{release}: cannot parse the version"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(parse_kernel_version("5.4.0-150-generic"), Some((5, 4)));
        assert_eq!(parse_kernel_version("6.1"), Some((6, 1)));
        assert_eq!(parse_kernel_version("linux"), None);
        assert_eq!(kernel_check(Some("5.4.0")).status, Status::Warn);
        assert_eq!(kernel_check(Some("5.16.0")).status, Status::Ok);
    }

    #[test]
    fn device_errors_say_what_to_do() {
        let enoent = device_error_detail(&io::Error::from_raw_os_error(libc::ENOENT));
        assert!(
            enoent.starts_with("no /dev/kvm: load kvm_intel/kvm_amd"),
            "{enoent}"
        );
        let eacces = device_error_detail(&io::Error::from_raw_os_error(libc::EACCES));
        assert!(eacces.contains("kvm group"), "{eacces}");
    }
}

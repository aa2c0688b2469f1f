//! KVM's binary statistics of a vCPU (`KVM_GET_STATS_FD`, Linux 5.14+): how many VM
//! exits the calling thread's vCPU took, for benchmarks and tests.
//!
//! ```no_run
//! libdune::enter()?;
//! let mut stats = libdune::stats::VcpuStats::open_current()?;
//! let before = stats.read()?;
//! // SAFETY: getpid has no memory arguments.
//! unsafe { libc::syscall(libc::SYS_getpid) };
//! let after = stats.read()?;
//! // The getpid exit, plus the exit of the second read itself (it is a forwarded
//! // pread); measure an empty region to subtract the latter.
//! println!("{} exits", after.delta(&before).exits);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Format (kernel `Documentation/virt/kvm/api.rst`, "KVM_GET_STATS_FD"; structs in
//! `include/uapi/linux/kvm.h`): the file starts with a `struct kvm_stats_header`
//! giving the offsets of an id string, of `num_desc` descriptors and of the data
//! block. Each descriptor (`struct kvm_stats_desc`, 16 bytes, then a NUL-padded name
//! of `name_size` bytes) gives a stat's name, its number of `u64` values and their
//! offset from the data block. Values are read with `pread`, which does not move the
//! file offset, so one open file serves any number of reads.
//!
//! In Dune mode every `read` is a forwarded system call, hence one exit itself.

use std::fs::File;
use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, RawFd};
use std::os::unix::fs::FileExt;

/// `KVM_GET_STATS_FD`: `_IO(KVMIO, 0xce)` (`include/uapi/linux/kvm.h`, KVMIO = 0xAE).
pub const KVM_GET_STATS_FD: libc::c_ulong = 0xAECE;

/// Size of `struct kvm_stats_header`: six `__u32`.
pub const HEADER_SIZE: usize = 24;
/// Size of `struct kvm_stats_desc` without its name: `__u32 flags; __s16 exponent;
/// __u16 size; __u32 offset; __u32 bucket_size;`.
pub const DESC_SIZE: usize = 16;

/// Descriptors larger than this are refused (the kernel's are about 100 entries of
/// 64 bytes); it bounds what a corrupt header can make us allocate.
const MAX_DESC_BYTES: usize = 1 << 20;

/// What can go wrong while opening or reading the statistics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `open_current` was called by a thread that is not in Dune mode.
    #[error("the calling thread is not in Dune mode: it has no vCPU")]
    NotInDuneMode,
    /// The `KVM_GET_STATS_FD` ioctl failed (kernels before 5.14 lack it).
    #[error("KVM_GET_STATS_FD on the vCPU failed (Linux 5.14+ needed): {0}")]
    GetStatsFd(#[source] io::Error),
    /// `pread` on the statistics file failed.
    #[error("reading KVM statistics ({what}) failed: {source}")]
    Read {
        /// Which part was being read.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The file does not follow the documented layout.
    #[error("malformed KVM statistics: {0}")]
    Format(&'static str),
    /// No stat of this name (the required `exits` is missing).
    #[error("KVM statistics have no stat named {0:?}")]
    Missing(&'static str),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// `struct kvm_stats_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Reserved, 0 today.
    pub flags: u32,
    /// Bytes of the id string and of every descriptor's name.
    pub name_size: u32,
    /// Number of descriptors.
    pub num_desc: u32,
    /// File offset of the id string.
    pub id_offset: u32,
    /// File offset of the first descriptor.
    pub desc_offset: u32,
    /// File offset of the data block.
    pub data_offset: u32,
}

impl Header {
    /// Parses the first [`HEADER_SIZE`] bytes of a statistics file.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < HEADER_SIZE {
            return Err(Error::Format("header shorter than 24 bytes"));
        }
        let h = Header {
            flags: u32_at(bytes, 0),
            name_size: u32_at(bytes, 4),
            num_desc: u32_at(bytes, 8),
            id_offset: u32_at(bytes, 12),
            desc_offset: u32_at(bytes, 16),
            data_offset: u32_at(bytes, 20),
        };
        if h.name_size == 0 {
            return Err(Error::Format("name_size is 0"));
        }
        if h.desc_bytes().is_none_or(|n| n > MAX_DESC_BYTES) {
            return Err(Error::Format("descriptor block too large"));
        }
        Ok(h)
    }

    /// Bytes of one descriptor, name included.
    pub fn desc_size(&self) -> usize {
        DESC_SIZE + self.name_size as usize
    }

    /// Bytes of all descriptors, or `None` on overflow.
    fn desc_bytes(&self) -> Option<usize> {
        (self.num_desc as usize).checked_mul(self.desc_size())
    }
}

/// One `struct kvm_stats_desc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Type, unit and base (`KVM_STATS_TYPE_*`, `KVM_STATS_UNIT_*`, `KVM_STATS_BASE_*`).
    pub flags: u32,
    /// Power of the base the unit is scaled by.
    pub exponent: i16,
    /// Number of `u64` values (1 for a counter, more for a histogram).
    pub size: u16,
    /// Offset of the values from the data block.
    pub offset: u32,
    /// Bucket size of a linear histogram, else 0.
    pub bucket_size: u32,
    /// The stat's name, such as `exits`.
    pub name: String,
}

/// Parses `header.num_desc` descriptors from `bytes` (the block at `desc_offset`).
pub fn parse_descriptors(header: &Header, bytes: &[u8]) -> Result<Vec<Descriptor>> {
    let size = header.desc_size();
    let need = header.desc_bytes().ok_or(Error::Format("descriptor block too large"))?;
    if bytes.len() < need {
        return Err(Error::Format("descriptor block truncated"));
    }
    bytes[..need]
        .chunks_exact(size)
        .map(|d| {
            let raw_name = &d[DESC_SIZE..];
            let len = raw_name.iter().position(|&b| b == 0).unwrap_or(raw_name.len());
            let name = std::str::from_utf8(&raw_name[..len])
                .map_err(|_| Error::Format("stat name is not UTF-8"))?;
            Ok(Descriptor {
                flags: u32_at(d, 0),
                exponent: i16::from_le_bytes([d[4], d[5]]),
                size: u16::from_le_bytes([d[6], d[7]]),
                offset: u32_at(d, 8),
                bucket_size: u32_at(d, 12),
                name: name.to_string(),
            })
        })
        .collect()
}

/// Exit counts of one vCPU at one moment. All are cumulative since the vCPU was
/// created; compare two readings with [`Counts::delta`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Every VM exit, whether KVM handled it in the kernel (nested page faults,
    /// host interrupts) or returned to user space.
    pub exits: u64,
    /// Exits for port I/O: in Dune mode, the exits that reached the runtime's host
    /// loop (forwarded system calls and traps use `out`). `None` if KVM lacks it.
    pub io_exits: Option<u64>,
    /// Exits for `hlt`.
    pub halt_exits: Option<u64>,
    /// Exits because a host interrupt arrived while the guest ran (timer ticks,
    /// IPIs): noise, not caused by the guest's work.
    pub irq_exits: Option<u64>,
}

impl Counts {
    /// `self - earlier`, field by field (saturating; a field missing from either is
    /// `None`).
    pub fn delta(&self, earlier: &Counts) -> Counts {
        let d = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b?));
        Counts {
            exits: self.exits.saturating_sub(earlier.exits),
            io_exits: d(self.io_exits, earlier.io_exits),
            halt_exits: d(self.halt_exits, earlier.halt_exits),
            irq_exits: d(self.irq_exits, earlier.irq_exits),
        }
    }
}

/// Where the wanted values sit, as offsets into the slice read by one `pread`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// File offset of the first wanted value.
    start: u64,
    /// Bytes from `start` through the last wanted value.
    len: usize,
    exits: usize,
    io_exits: Option<usize>,
    halt_exits: Option<usize>,
    irq_exits: Option<usize>,
}

impl Layout {
    fn new(header: &Header, descs: &[Descriptor]) -> Result<Self> {
        let find = |name: &str| {
            descs
                .iter()
                .find(|d| d.name == name && d.size >= 1)
                .map(|d| u64::from(header.data_offset) + u64::from(d.offset))
        };
        let exits = find("exits").ok_or(Error::Missing("exits"))?;
        let others = [find("io_exits"), find("halt_exits"), find("irq_exits")];
        let all = || std::iter::once(exits).chain(others.iter().flatten().copied());
        let start = all().min().unwrap_or(exits);
        let end = all().max().unwrap_or(exits) + 8;
        let len = usize::try_from(end - start).map_err(|_| Error::Format("stat offsets too far apart"))?;
        if len > MAX_DESC_BYTES {
            return Err(Error::Format("stat offsets too far apart"));
        }
        let rel = |off: u64| (off - start) as usize;
        Ok(Layout {
            start,
            len,
            exits: rel(exits),
            io_exits: others[0].map(rel),
            halt_exits: others[1].map(rel),
            irq_exits: others[2].map(rel),
        })
    }

    fn counts(&self, buf: &[u8]) -> Counts {
        Counts {
            exits: u64_at(buf, self.exits),
            io_exits: self.io_exits.map(|o| u64_at(buf, o)),
            halt_exits: self.halt_exits.map(|o| u64_at(buf, o)),
            irq_exits: self.irq_exits.map(|o| u64_at(buf, o)),
        }
    }
}

/// An open statistics file of one vCPU. Each [`read`](Self::read) is one `pread`
/// into a buffer allocated at open time.
#[derive(Debug)]
pub struct VcpuStats {
    file: File,
    id: String,
    layout: Layout,
    buf: Vec<u8>,
}

impl VcpuStats {
    /// Opens the statistics of the calling thread's vCPU (it must be in Dune mode).
    pub fn open_current() -> Result<Self> {
        let fd = crate::host::state::current_vcpu_fd().ok_or(Error::NotInDuneMode)?;
        // SAFETY: the vCPU fd stays open while this thread is in Dune mode, which it is
        // for the duration of this call.
        Self::open(unsafe { BorrowedFd::borrow_raw(fd) })
    }

    /// Opens the statistics of the vCPU behind `vcpu_fd` (a fd of the calling process:
    /// KVM refuses others).
    pub fn open(vcpu_fd: BorrowedFd<'_>) -> Result<Self> {
        use std::os::fd::AsRawFd;
        // SAFETY: KVM_GET_STATS_FD takes no argument and only creates a new fd.
        let fd: RawFd = unsafe { libc::ioctl(vcpu_fd.as_raw_fd(), KVM_GET_STATS_FD, 0) };
        if fd < 0 {
            return Err(Error::GetStatsFd(io::Error::last_os_error()));
        }
        // SAFETY: fd was just returned by the kernel and is owned by no one else.
        Self::from_file(unsafe { File::from_raw_fd(fd) })
    }

    /// Reads the header and descriptors of any file in the binary statistics format
    /// (a vCPU's, or a synthetic one in tests).
    pub fn from_file(file: File) -> Result<Self> {
        let mut head = [0u8; HEADER_SIZE];
        read_exact_at(&file, &mut head, 0, "header")?;
        let header = Header::parse(&head)?;
        let mut descs = vec![0u8; header.desc_bytes().unwrap_or(0)];
        read_exact_at(&file, &mut descs, u64::from(header.desc_offset), "descriptors")?;
        let descs = parse_descriptors(&header, &descs)?;
        let mut id = vec![0u8; header.name_size as usize];
        read_exact_at(&file, &mut id, u64::from(header.id_offset), "id")?;
        let id_len = id.iter().position(|&b| b == 0).unwrap_or(id.len());
        let id = String::from_utf8_lossy(&id[..id_len]).into_owned();
        let layout = Layout::new(&header, &descs)?;
        Ok(VcpuStats { file, id, layout, buf: vec![0; layout.len] })
    }

    /// The id string KVM gave this file, such as `kvm-1234/vcpu-0`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Reads the current counts: one `pread` (in Dune mode, one exit).
    pub fn read(&mut self) -> Result<Counts> {
        read_exact_at(&self.file, &mut self.buf, self.layout.start, "values")?;
        Ok(self.layout.counts(&self.buf))
    }
}

fn read_exact_at(file: &File, buf: &mut [u8], offset: u64, what: &'static str) -> Result<()> {
    file.read_exact_at(buf, offset).map_err(|source| Error::Read { what, source })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const NAME_SIZE: usize = 48;

    /// A statistics file as KVM lays it out: header, id, descriptors, data.
    fn synthetic(stats: &[(&str, u16, &[u64])]) -> Vec<u8> {
        let id_offset = HEADER_SIZE;
        let desc_offset = id_offset + NAME_SIZE;
        let data_offset = desc_offset + stats.len() * (DESC_SIZE + NAME_SIZE);
        let mut out = Vec::new();
        for v in [0, NAME_SIZE, stats.len(), id_offset, desc_offset, data_offset] {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        let mut id = b"kvm-42/vcpu-0".to_vec();
        id.resize(NAME_SIZE, 0);
        out.extend_from_slice(&id);
        let mut value_offset = 0u32;
        for (name, size, _) in stats {
            out.extend_from_slice(&0u32.to_le_bytes()); // flags: cumulative, no unit
            out.extend_from_slice(&0i16.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&value_offset.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            let mut n = name.as_bytes().to_vec();
            n.resize(NAME_SIZE, 0);
            out.extend_from_slice(&n);
            value_offset += u32::from(*size) * 8;
        }
        for (_, _, values) in stats {
            for v in *values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    fn file_with(bytes: &[u8]) -> File {
        let mut f = tempfile();
        f.write_all(bytes).expect("write");
        f
    }

    fn tempfile() -> File {
        // SAFETY: memfd_create with a NUL-terminated name; the fd is owned by the File.
        let fd = unsafe { libc::memfd_create(c"kvm-stats-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd_create: {}", io::Error::last_os_error());
        // SAFETY: fd is new and owned by no one else.
        unsafe { File::from_raw_fd(fd) }
    }

    #[test]
    fn header_and_descriptors_parse() {
        let bytes = synthetic(&[("halt_wait_hist", 32, &[7; 32]), ("exits", 1, &[1234])]);
        let h = Header::parse(&bytes).expect("header");
        assert_eq!((h.name_size, h.num_desc, h.id_offset), (48, 2, 24));
        let descs = parse_descriptors(&h, &bytes[h.desc_offset as usize..]).expect("descs");
        assert_eq!(descs[0].name, "halt_wait_hist");
        assert_eq!((descs[0].size, descs[0].offset), (32, 0));
        assert_eq!(descs[1].name, "exits");
        assert_eq!((descs[1].size, descs[1].offset), (1, 256));
    }

    #[test]
    fn reads_exits_and_optional_counts() {
        let bytes = synthetic(&[
            ("pf_taken", 1, &[5]),
            ("exits", 1, &[1000]),
            ("halt_poll_fail_hist", 4, &[9, 9, 9, 9]),
            ("io_exits", 1, &[700]),
            ("irq_exits", 1, &[20]),
        ]);
        let mut s = VcpuStats::from_file(file_with(&bytes)).expect("open");
        assert_eq!(s.id(), "kvm-42/vcpu-0");
        let c = s.read().expect("read");
        assert_eq!(c, Counts { exits: 1000, io_exits: Some(700), halt_exits: None, irq_exits: Some(20) });
        // A second read goes through pread again and sees the same values.
        assert_eq!(s.read().expect("read again"), c);
    }

    #[test]
    fn values_change_between_reads() {
        let mut bytes = synthetic(&[("exits", 1, &[1]), ("io_exits", 1, &[1])]);
        let f = file_with(&bytes);
        let mut s = VcpuStats::from_file(f.try_clone().expect("dup")).expect("open");
        let first = s.read().expect("read");
        let at = bytes.len() - 16;
        bytes[at..at + 8].copy_from_slice(&11u64.to_le_bytes());
        f.write_all_at(&bytes, 0).expect("rewrite");
        let d = s.read().expect("read").delta(&first);
        assert_eq!((d.exits, d.io_exits, d.halt_exits), (10, Some(0), None));
    }

    #[test]
    fn missing_exits_is_an_error() {
        let bytes = synthetic(&[("io_exits", 1, &[3])]);
        let e = VcpuStats::from_file(file_with(&bytes)).expect_err("no exits");
        assert!(matches!(e, Error::Missing("exits")), "{e}");
    }

    #[test]
    fn truncated_files_are_errors() {
        let bytes = synthetic(&[("exits", 1, &[3])]);
        assert!(matches!(Header::parse(&bytes[..10]), Err(Error::Format(_))));
        let h = Header::parse(&bytes).expect("header");
        let descs = &bytes[h.desc_offset as usize..h.desc_offset as usize + 20];
        assert!(matches!(parse_descriptors(&h, descs), Err(Error::Format(_))));
        // Data block cut off: the pread of the values comes up short.
        let cut = &bytes[..bytes.len() - 4];
        let mut s = VcpuStats::from_file(file_with(cut)).expect("header and descriptors are intact");
        assert!(matches!(s.read(), Err(Error::Read { what: "values", .. })));
    }

    #[test]
    fn absurd_header_is_refused() {
        let mut bytes = synthetic(&[("exits", 1, &[3])]);
        bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes()); // num_desc
        assert!(matches!(Header::parse(&bytes), Err(Error::Format(_))));
        bytes[4..8].copy_from_slice(&0u32.to_le_bytes()); // name_size
        assert!(matches!(Header::parse(&bytes), Err(Error::Format(_))));
    }

    #[test]
    fn not_in_dune_mode() {
        assert!(matches!(VcpuStats::open_current(), Err(Error::NotInDuneMode)));
    }
}

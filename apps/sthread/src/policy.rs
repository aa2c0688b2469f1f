//! What an sthread may touch (Wedge's `sc_t`): memory tags, descriptors, system calls
//! and callgates.

use crate::tag::TagId;

/// Calls a policy can grant. `read`, `write` and `close` (on granted descriptors)
/// and `exit` are always allowed, as in the original.
#[allow(non_upper_case_globals)] // libc's SYS_* names
pub fn supported(nr: i64) -> bool {
    use libc::*;
    matches!(
        nr,
        SYS_read | SYS_write | SYS_pread64 | SYS_pwrite64 | SYS_close | SYS_lseek | SYS_fstat | SYS_open | SYS_openat
            | SYS_getpid | SYS_gettid | SYS_getppid | SYS_getuid | SYS_geteuid | SYS_getgid | SYS_getegid | SYS_sched_yield
            | SYS_clock_gettime | SYS_gettimeofday | SYS_nanosleep | SYS_getrandom | SYS_sendto | SYS_recvfrom | SYS_shutdown
            | SYS_exit | SYS_exit_group
    )
}

/// Access to a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemProt {
    /// Read only.
    Read,
    /// Read and write, shared with the creator and every sthread granted it.
    Write,
    /// Read, and write to a private copy made on first write (the creator's data
    /// never changes); the copy is dropped when the sthread ends.
    CopyOnWrite,
}

impl MemProt {
    fn rank(self) -> u8 {
        match self {
            MemProt::Read => 0,
            MemProt::CopyOnWrite => 1,
            MemProt::Write => 2,
        }
    }
}

/// Descriptor access bits.
pub const FD_READ: u8 = 1;
/// See [`FD_READ`].
pub const FD_WRITE: u8 = 2;

/// Highest system-call number a policy can name (exclusive).
pub const MAX_SYSCALL: usize = 1024;

/// A callgate attached to a policy: the entry point, the gate's own policy and the
/// argument the creator fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    /// Entry point: `extern "C" fn(trusted: *mut c_void, untrusted: *mut c_void) -> *mut c_void`.
    pub entry: u64,
    /// What the gate runs with.
    pub policy: Box<Policy>,
    /// The creator's argument (the first one the gate gets).
    pub trusted: u64,
}

/// A policy. Empty: no tags, no descriptors, only the calls every sthread has
/// (`read`/`write` on granted descriptors, `exit`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    pub(crate) mem: Vec<(TagId, MemProt)>,
    pub(crate) fds: Vec<(i32, u8)>,
    pub(crate) sys: Vec<u64>,
    pub(crate) gates: Vec<Gate>,
}

impl Policy {
    /// The empty policy.
    pub fn new() -> Policy {
        Policy { sys: vec![0; MAX_SYSCALL / 64], ..Default::default() }
    }

    /// Grants a tag (a later grant of the same tag replaces the earlier one).
    pub fn mem(&mut self, tag: TagId, prot: MemProt) -> &mut Self {
        self.mem.retain(|&(t, _)| t != tag);
        self.mem.push((tag, prot));
        self.mem.sort();
        self
    }

    /// Grants descriptor `fd` with [`FD_READ`] and/or [`FD_WRITE`].
    pub fn fd(&mut self, fd: i32, mode: u8) -> crate::Result<&mut Self> {
        if fd < 0 || mode & !(FD_READ | FD_WRITE) != 0 || mode == 0 {
            return Err(crate::Error::Invalid("descriptor grant"));
        }
        match self.fds.iter_mut().find(|(f, _)| *f == fd) {
            Some(g) => g.1 |= mode,
            None => self.fds.push((fd, mode)),
        }
        Ok(self)
    }

    /// Grants system call `nr`. Only calls the sthread runtime checks can be granted
    /// (see [`supported`]); others are refused here, never passed
    /// through unchecked.
    pub fn syscall(&mut self, nr: i64) -> crate::Result<&mut Self> {
        if nr < 0 || nr as usize >= MAX_SYSCALL || !supported(nr) {
            return Err(crate::Error::Invalid("system call not supported in sthreads"));
        }
        if self.sys.is_empty() {
            self.sys = vec![0; MAX_SYSCALL / 64];
        }
        self.sys[nr as usize / 64] |= 1 << (nr % 64);
        Ok(self)
    }

    /// Attaches a callgate.
    pub fn gate(&mut self, entry: u64, policy: Policy, trusted: u64) -> crate::Result<&mut Self> {
        if entry == 0 {
            return Err(crate::Error::Invalid("callgate entry"));
        }
        self.gates.retain(|g| g.entry != entry);
        self.gates.push(Gate { entry, policy: Box::new(policy), trusted });
        Ok(self)
    }

    pub(crate) fn allows(&self, nr: i64) -> bool {
        nr >= 0 && (nr as usize) < MAX_SYSCALL && self.sys.get(nr as usize / 64).is_some_and(|w| w & (1 << (nr % 64)) != 0)
    }

    pub(crate) fn fd_mode(&self, fd: i32) -> u8 {
        self.fds.iter().find(|(f, _)| *f == fd).map_or(0, |g| g.1)
    }

    /// Whether everything `self` grants, `other` grants too (callgates included).
    pub fn within(&self, other: &Policy) -> bool {
        self.mem.iter().all(|&(t, p)| other.mem.iter().any(|&(u, q)| u == t && p.rank() <= q.rank()))
            && self.fds.iter().all(|&(f, m)| other.fd_mode(f) & m == m)
            && (0..MAX_SYSCALL as i64).all(|n| !self.allows(n) || other.allows(n))
            && self.gates.iter().all(|g| g.policy.within(other) && other.gates.iter().any(|h| h.entry == g.entry))
    }

    /// Every callgate a callgate carries is within the policy of the gate that
    /// carries it (its creator). Gates attached by the master (which holds every
    /// right) are unrestricted: granting what the sthread lacks is their purpose.
    pub(crate) fn gates_within_creators(&self) -> bool {
        fn nested_ok(p: &Policy) -> bool {
            p.gates.iter().all(|h| h.policy.within(p) && nested_ok(&h.policy))
        }
        self.gates.iter().all(|g| nested_ok(&g.policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_checked_calls_can_be_granted() {
        let mut p = Policy::new();
        assert!(p.syscall(libc::SYS_getpid).is_ok());
        for nr in [libc::SYS_execve, libc::SYS_mmap, libc::SYS_fork, libc::SYS_ptrace, -1, 1023, 1024, 100_000] {
            assert!(p.syscall(nr).is_err(), "{nr} granted");
        }
        assert!(p.allows(libc::SYS_getpid) && !p.allows(libc::SYS_getppid) && !p.allows(5000));
        assert!(p.fd(-1, FD_READ).is_err() && p.fd(3, 0).is_err() && p.fd(3, 4).is_err());
    }

    #[test]
    fn within_compares_every_kind_of_grant() {
        let mut big = Policy::new();
        big.mem(1, MemProt::Write).mem(2, MemProt::Read);
        big.fd(3, FD_READ | FD_WRITE).unwrap();
        big.syscall(libc::SYS_getpid).unwrap();
        let mut small = Policy::new();
        small.mem(1, MemProt::CopyOnWrite).fd(3, FD_READ).unwrap().syscall(libc::SYS_getpid).unwrap();
        assert!(small.within(&big) && !big.within(&small));
        let mut more = small.clone();
        more.mem(2, MemProt::Write);
        assert!(!more.within(&big), "write where only read is granted");
        let mut fd = small.clone();
        fd.fd(4, FD_READ).unwrap();
        assert!(!fd.within(&big));
        let mut sys = small.clone();
        sys.syscall(libc::SYS_gettid).unwrap();
        assert!(!sys.within(&big));
    }

    #[test]
    fn nested_gates_may_not_exceed_their_creator() {
        let mut key = Policy::new();
        key.mem(7, MemProt::Read);
        // The master attaches a gate with more than the sthread: allowed.
        let mut st = Policy::new();
        st.gate(0x1000, key.clone(), 0).unwrap();
        assert!(st.gates_within_creators());
        // A gate carrying a gate with more than itself: refused.
        let mut outer = Policy::new();
        outer.gate(0x2000, key.clone(), 0).unwrap();
        let mut holder = Policy::new();
        holder.gate(0x3000, outer, 0).unwrap();
        assert!(!holder.gates_within_creators());
        assert!(Policy::new().gate(0, key, 0).is_err());
    }
}

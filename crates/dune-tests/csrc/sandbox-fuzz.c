/* The sandbox's fuzzer: random system calls, with arguments drawn from each call's
 * description, from several threads and forked children, inside `dune sandbox`.
 *
 *   sandbox-fuzz SEED SECONDS RW RO OUTSIDE
 *
 * RW is the writable tree, RO a read-only one, OUTSIDE a directory in no tree (its
 * files hold a canary secret, "CANARY-..."; the policy's rule comments hold one too,
 * so the monitor's memory does). Arguments are drawn from pools that mix the good
 * and the hostile: descriptors (the program's own, closed ones, numbers above its
 * limit), paths (in each tree, outside them, /proc magic, symlinks planted in RW
 * that point out, devices), pointers (a scratch buffer, NULL, one byte before an
 * unmapped page, the monitor's own text, kernel addresses), flags (random bits and
 * the values each call knows).
 *
 * Invariant checked here: no canary byte string ever appears in memory the program
 * can see (every buffer a call may have written is scanned, and the whole scratch
 * region periodically). The test outside checks the rest: nothing outside RW was
 * created or changed, the monitor did not die, no output holds the canary.
 *
 * It refuses to run unless OUTSIDE/secret exists and cannot be read: natively, as
 * root, its calls would damage the machine.
 *
 * Last line: "fuzz: N calls, F forks, S scans, K findings" (K must be 0). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define THREADS 3
#define SCRATCH (1 << 20)

static const char *rw, *ro, *outside;
static double deadline;
static atomic_long calls, forks, scans, findings;
static unsigned char *scratch;     /* the fuzzer's own buffers: SCRATCH bytes, then a guard page */
static unsigned char *region;      /* what memory calls may map, unmap and protect */
static uintptr_t monitor_text;     /* the `dune` executable's text */
static char paths[64][512];
static int npaths;

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s) {
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t pick(uint64_t *s, uint64_t n) {
	return n ? rnd(s) % n : 0;
}

/* Looks for the canary marker in [p, p+n) (readable memory of the fuzzer's own). */
static void scan(const unsigned char *p, size_t n, const char *after) {
	atomic_fetch_add(&scans, 1);
	if (n < 7)
		return;
	const unsigned char *hit = memmem(p, n, "CANARY-", 7);
	if (hit) {
		atomic_fetch_add(&findings, 1);
		char shown[40] = { 0 };
		memcpy(shown, hit, n - (hit - p) < 39 ? n - (hit - p) : 39);
		printf("FINDING: the canary is visible to the program after %s: %s\n", after, shown);
		fflush(stdout);
	}
}

static uint64_t ptr_arg(uint64_t *s) {
	switch (pick(s, 12)) {
	case 0:
		return 0;
	case 1:
		return (uint64_t)scratch + SCRATCH - 1; /* crosses into the guard page */
	case 2:
		return monitor_text + pick(s, 4096);
	case 3:
		return 0xffff800000000000ull + (pick(s, 1 << 20) << 12);
	case 4:
		return pick(s, 1ull << 47);
	case 5:
		return 0x1000;
	default:
		return (uint64_t)scratch + pick(s, SCRATCH - 4096);
	}
}

static uint64_t len_arg(uint64_t *s) {
	switch (pick(s, 8)) {
	case 0:
		return 0;
	case 1:
		return ~0ull;
	case 2:
		return 1ull << 31;
	case 3:
		return 4096;
	default:
		return pick(s, 600);
	}
}

static uint64_t fd_arg(uint64_t *s) {
	switch (pick(s, 10)) {
	case 0:
		return -1;
	case 1:
		return 1000 + pick(s, 70000); /* above the program's limit: the runtime's, the monitor's */
	case 2:
		return AT_FDCWD;
	default:
		return pick(s, 40);
	}
}

static uint64_t path_arg(uint64_t *s) {
	if (pick(s, 16) == 0)
		return ptr_arg(s);
	return (uint64_t)paths[pick(s, npaths)];
}

static uint64_t flags_arg(uint64_t *s) {
	static const uint64_t interesting[] = { 0, 1, 2, 3, O_CREAT | O_WRONLY, O_CREAT | O_EXCL | O_RDWR, O_PATH, O_DIRECTORY, O_TRUNC | O_WRONLY, O_NOFOLLOW,
		O_TMPFILE | O_RDWR, O_APPEND | O_WRONLY, 04755, 02755, 0777, 0xffffffff };
	if (pick(s, 3))
		return interesting[pick(s, sizeof interesting / sizeof interesting[0])];
	return rnd(s);
}

static void add_path(const char *fmt, const char *a, const char *b) {
	if (npaths < 64)
		snprintf(paths[npaths++], sizeof paths[0], fmt, a, b);
}

static void setup_paths(void) {
	add_path("%s/%s", rw, "f");
	add_path("%s/%s", rw, "d");
	add_path("%s/%s", rw, "d/x");
	add_path("%s/%s", rw, "link-out");
	add_path("%s/%s", rw, "link-dir");
	add_path("%s/%s", rw, "link-dir/secret");
	add_path("%s/%s", rw, "../outside-sibling");
	add_path("%s/%s", rw, "fifo");
	add_path("%s/%s", rw, "hard");
	add_path("%s/%s", rw, "sock");
	add_path("%s/%s", ro, "marker");
	add_path("%s/%s", ro, "new");
	add_path("%s/%s", ro, "..");
	add_path("%s/%s", outside, "secret");
	add_path("%s/%s", outside, "new");
	add_path("%s/%s", outside, "dir/deep");
	add_path("%s%s", "/proc/self/", "mem");
	add_path("%s%s", "/proc/self/", "fd/3");
	add_path("%s%s", "/proc/self/", "environ");
	add_path("%s%s", "/proc/self/", "maps");
	add_path("%s%s", "/proc/1/", "environ");
	add_path("%s%s", "/etc/", "shadow");
	add_path("%s%s", "/dev/", "port");
	add_path("%s%s", "/dev/", "null");
	add_path("%s%s", "/dev/", "kvm");
	add_path("%s%s", "/", "");
	add_path("%s%s", ".", "");
	add_path("%s%s", "..", "/..");
	add_path("%s%s", "", "");
	char longp[512];
	memset(longp, 'a', 500);
	longp[500] = 0;
	add_path("%s%s", rw, longp + 480);
	/* Symlinks planted in the writable tree that point out of it. */
	char p[600];
	snprintf(p, sizeof p, "%s/link-out", rw);
	char t[600];
	snprintf(t, sizeof t, "%s/secret", outside);
	symlink(t, p);
	snprintf(p, sizeof p, "%s/link-dir", rw);
	symlink(outside, p);
	snprintf(p, sizeof p, "%s/d", rw);
	mkdir(p, 0755);
}

/* One random call. Calls that would end the fuzzer itself (exit, execve, fatal
 * signals to itself, unmapping its own code or stack) are drawn only in harmless
 * forms. */
static void one(uint64_t *s) {
	uint64_t a[6] = { 0 }, nr;
	unsigned char *buf = scratch + pick(s, SCRATCH / 2);
	size_t blen = 512;
	memset(buf, 0, blen);
	int wrote = 1;
	switch (pick(s, 48)) {
	case 0: nr = SYS_read; a[0] = fd_arg(s); a[1] = pick(s, 8) ? (uint64_t)buf : ptr_arg(s); a[2] = pick(s, 8) ? blen : len_arg(s); break;
	case 1: nr = SYS_write; a[0] = fd_arg(s); a[1] = ptr_arg(s); a[2] = len_arg(s) % 4096; wrote = 0; break;
	case 2: nr = SYS_openat; a[0] = fd_arg(s); a[1] = path_arg(s); a[2] = flags_arg(s); a[3] = flags_arg(s); break;
	case 3: nr = SYS_open; a[0] = path_arg(s); a[1] = flags_arg(s); a[2] = flags_arg(s); break;
	case 4: nr = SYS_newfstatat; a[0] = fd_arg(s); a[1] = path_arg(s); a[2] = (uint64_t)buf; a[3] = pick(s, 2) ? AT_SYMLINK_NOFOLLOW : (pick(s, 2) ? AT_EMPTY_PATH : 0); break;
	case 5: nr = SYS_readlinkat; a[0] = fd_arg(s); a[1] = path_arg(s); a[2] = (uint64_t)buf; a[3] = blen; break;
	case 6: nr = SYS_mkdirat; a[0] = fd_arg(s); a[1] = path_arg(s); a[2] = flags_arg(s); break;
	case 7: nr = SYS_unlinkat; a[0] = fd_arg(s); a[1] = path_arg(s); a[2] = pick(s, 2) ? AT_REMOVEDIR : 0; break;
	case 8: nr = SYS_renameat2; a[0] = fd_arg(s); a[1] = path_arg(s); a[2] = fd_arg(s); a[3] = path_arg(s); a[4] = pick(s, 4); break;
	case 9: nr = SYS_linkat; a[0] = fd_arg(s); a[1] = path_arg(s); a[2] = fd_arg(s); a[3] = path_arg(s); a[4] = pick(s, 2) ? AT_SYMLINK_FOLLOW : 0; break;
	case 10: nr = SYS_symlinkat; a[0] = path_arg(s); a[1] = fd_arg(s); a[2] = path_arg(s); break;
	case 11: nr = SYS_fchmodat; a[0] = fd_arg(s); a[1] = path_arg(s); a[2] = flags_arg(s); break;
	case 12: nr = SYS_fchownat; a[0] = fd_arg(s); a[1] = path_arg(s); a[2] = pick(s, 3) - 1; a[3] = pick(s, 3) - 1; a[4] = pick(s, 2) ? AT_SYMLINK_NOFOLLOW : 0; break;
	case 13: nr = SYS_utimensat; a[0] = fd_arg(s); a[1] = pick(s, 4) ? path_arg(s) : 0; a[2] = pick(s, 2) ? 0 : ptr_arg(s); a[3] = pick(s, 2) ? AT_SYMLINK_NOFOLLOW : 0; break;
	case 14: nr = SYS_truncate; a[0] = path_arg(s); a[1] = pick(s, 100); break;
	case 15: nr = SYS_mknodat; a[0] = fd_arg(s); a[1] = path_arg(s); a[2] = pick(s, 2) ? (S_IFIFO | 0644) : flags_arg(s); a[3] = pick(s, 2) ? 0 : 0x103; break;
	case 16: nr = SYS_fchmod; a[0] = fd_arg(s); a[1] = flags_arg(s); break;
	case 17: nr = SYS_fchown; a[0] = fd_arg(s); a[1] = pick(s, 3) - 1; a[2] = pick(s, 3) - 1; break;
	case 18: nr = SYS_dup2; a[0] = fd_arg(s); a[1] = 3 + pick(s, 30); break;
	case 19: nr = SYS_close; a[0] = 3 + pick(s, 30); break;
	case 20: nr = SYS_fcntl; a[0] = fd_arg(s); a[1] = pick(s, 2) ? pick(s, 1100) : (uint64_t[]){ F_SETLK, F_SETLEASE, F_DUPFD, F_SETOWN, F_SETSIG, F_OFD_SETLK, F_GETLK }[pick(s, 7)]; a[2] = pick(s, 2) ? (uint64_t)buf : pick(s, 100); break;
	case 21: nr = SYS_ioctl; a[0] = fd_arg(s); a[1] = pick(s, 2) ? rnd(s) : (uint64_t[]){ 0x5412, 0x5402, 0x5401, 0x541b, 0x5410, 0xae01, 0x4008ae89 }[pick(s, 7)]; a[2] = ptr_arg(s); break;
	case 22: nr = SYS_flock; a[0] = fd_arg(s); a[1] = pick(s, 9); break;
	case 23: nr = SYS_socket; a[0] = pick(s, 2) ? (uint64_t[]){ AF_UNIX, AF_INET, AF_INET6 }[pick(s, 3)] : pick(s, 46); a[1] = pick(s, 2) ? pick(s, 11) : rnd(s); a[2] = pick(s, 2) ? 0 : pick(s, 300); break;
	case 24: nr = SYS_bind; a[0] = fd_arg(s); a[1] = (uint64_t)buf; a[2] = pick(s, 128); {
		unsigned short fam = (unsigned short)(uint64_t[]){ AF_UNIX, AF_INET, AF_INET6, AF_NETLINK }[pick(s, 4)];
		memcpy(buf, &fam, 2);
		if (fam == AF_UNIX)
			snprintf((char *)buf + 2, 100, "%s", paths[pick(s, npaths)]);
		else
			for (int i = 2; i < 28; i++)
				buf[i] = pick(s, 3) ? 0 : rnd(s);
	} break;
	case 25: nr = SYS_connect; a[0] = fd_arg(s); a[1] = (uint64_t)buf; a[2] = pick(s, 128); {
		unsigned short fam = (unsigned short)(uint64_t[]){ AF_UNIX, AF_INET, AF_INET6 }[pick(s, 3)];
		memcpy(buf, &fam, 2);
		if (fam == AF_UNIX)
			snprintf((char *)buf + 2, 100, "%s", paths[pick(s, npaths)]);
		else
			for (int i = 2; i < 28; i++)
				buf[i] = pick(s, 2) ? 0 : rnd(s);
	} break;
	case 26: nr = SYS_listen; a[0] = fd_arg(s); a[1] = pick(s, 10); break;
	case 27: nr = SYS_setsockopt; a[0] = fd_arg(s); a[1] = (uint64_t[]){ 0, 1, 6, 17, 41, 255 }[pick(s, 6)]; a[2] = pick(s, 100); a[3] = ptr_arg(s); a[4] = len_arg(s) % 512; wrote = 0; break;
	case 28: nr = SYS_getsockopt; a[0] = fd_arg(s); a[1] = (uint64_t[]){ 0, 1, 6, 17, 41, 255 }[pick(s, 6)]; a[2] = pick(s, 100); a[3] = (uint64_t)buf; *(uint32_t *)(buf + 256) = pick(s, 300); a[4] = (uint64_t)(buf + 256); break;
	case 29: nr = SYS_sendto; a[0] = fd_arg(s); a[1] = ptr_arg(s); a[2] = len_arg(s) % 256; a[3] = 0; a[4] = pick(s, 2) ? 0 : ptr_arg(s); a[5] = pick(s, 128); wrote = 0; break;
	case 30: nr = SYS_recvfrom; a[0] = fd_arg(s); a[1] = (uint64_t)buf; a[2] = blen; a[3] = MSG_DONTWAIT; break;
	case 31: nr = SYS_mmap; a[0] = pick(s, 2) ? 0 : (uint64_t)region + (pick(s, 256 - 17) << 12); a[1] = (1 + pick(s, 16)) << 12; a[2] = pick(s, 8); a[3] = pick(s, 2) ? (MAP_PRIVATE | MAP_ANONYMOUS | (a[0] ? MAP_FIXED : 0)) : rnd(s); a[4] = fd_arg(s); a[5] = 0; wrote = 0; break;
	case 32: nr = SYS_mprotect; a[0] = (uint64_t)region + (pick(s, 256 - 17) << 12); a[1] = (1 + pick(s, 16)) << 12; a[2] = pick(s, 8); wrote = 0; break;
	case 33: nr = SYS_madvise; a[0] = (uint64_t)region + (pick(s, 256 - 17) << 12); a[1] = (1 + pick(s, 16)) << 12; a[2] = pick(s, 30) + (pick(s, 8) ? 0 : 90); wrote = 0; break;
	case 34: nr = SYS_mremap; a[0] = (uint64_t)region + (pick(s, 256 - 17) << 12); a[1] = 4096; a[2] = (1 + pick(s, 4)) << 12; a[3] = pick(s, 4); a[4] = (uint64_t)region + (pick(s, 256 - 17) << 12); wrote = 0; break;
	case 35: nr = SYS_prctl; a[0] = pick(s, 70); a[1] = pick(s, 3) ? pick(s, 4) : (uint64_t)buf; a[2] = pick(s, 2) ? 0 : (uint64_t)buf; break;
	case 36:
		/* Other processes only ever get signal 0 (a probe): the fuzzer must be safe to
		 * run anywhere, sandbox or not. */
		nr = SYS_kill;
		a[0] = (uint64_t[]){ 0, 1, (uint64_t)getppid(), (uint64_t)getpid(), -1, 2 + pick(s, 500) }[pick(s, 6)];
		a[1] = (a[0] == (uint64_t)getpid() && pick(s, 2)) ? SIGUSR1 : 0;
		break;
	case 37: nr = SYS_prlimit64; a[0] = pick(s, 2) ? 0 : pick(s, 500); a[1] = pick(s, 16); a[2] = 0; a[3] = (uint64_t)buf; break;
	case 38: nr = SYS_getdents64; a[0] = fd_arg(s); a[1] = (uint64_t)buf; a[2] = blen; break;
	case 39: nr = SYS_pipe2; a[0] = (uint64_t)buf; a[1] = pick(s, 2) ? O_CLOEXEC : rnd(s); break;
	case 40: nr = SYS_memfd_create; a[0] = path_arg(s); a[1] = pick(s, 8); break;
	case 41: nr = SYS_statx; a[0] = fd_arg(s); a[1] = path_arg(s); a[2] = pick(s, 2) ? AT_EMPTY_PATH : 0; a[3] = 0xfff; a[4] = (uint64_t)buf; break;
	case 42: nr = SYS_chdir; a[0] = path_arg(s); break;
	case 43: nr = SYS_getcwd; a[0] = (uint64_t)buf; a[1] = pick(s, 2) ? blen : len_arg(s); break;
	case 44: nr = SYS_sendmsg; a[0] = fd_arg(s); a[1] = ptr_arg(s); a[2] = pick(s, 2) ? 0 : rnd(s); wrote = 0; break;
	case 45: nr = SYS_uname; a[0] = (uint64_t)buf; break;
	case 46: nr = SYS_brk; a[0] = pick(s, 2) ? 0 : (uint64_t)sbrk(0) + pick(s, 1 << 20); wrote = 0; break;
	default: nr = SYS_inotify_add_watch; a[0] = fd_arg(s); a[1] = path_arg(s); a[2] = rnd(s); break;
	}
	long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	atomic_fetch_add(&calls, 1);
	(void)r;
	if (wrote) {
		char what[64];
		snprintf(what, sizeof what, "system call %lu", (unsigned long)nr);
		scan(buf, blen, what);
	}
	/* Whatever a read brought in from a descriptor ends up in the buffer too. */
	if (nr == SYS_openat || nr == SYS_open) {
		if (r >= 0) {
			long n = read(r, buf, blen);
			if (n > 0)
				scan(buf, n, "reading a descriptor the sandbox opened");
			if (r > 40)
				close(r);
		}
	}
}

/* A 20 ms timer for the calling thread alone: a call that blocks (a read on an
 * empty pipe, opening a FIFO, a lock) is interrupted with EINTR. */
static void thread_timer(void) {
	struct sigevent ev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGALRM };
	ev._sigev_un._tid = syscall(SYS_gettid);
	timer_t id;
	if (timer_create(CLOCK_MONOTONIC, &ev, &id) == 0) {
		struct itimerspec it = { { 0, 20000000 }, { 0, 20000000 } };
		timer_settime(id, 0, &it, NULL);
	}
}

static void *worker(void *arg) {
	uint64_t s = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	thread_timer();
	while (now() < deadline) {
		for (int i = 0; i < 64; i++)
			one(&s);
		if (pick(&s, 40) == 0) {
			pid_t c = fork();
			if (c == 0) {
				thread_timer();
				double end = now() + 0.3;
				while (now() < end)
					one(&s);
				_exit(0);
			}
			if (c > 0) {
				atomic_fetch_add(&forks, 1);
				waitpid(c, NULL, 0);
			}
		}
		scan(scratch, SCRATCH, "the whole scratch region");
	}
	return NULL;
}

static void ignore(int sig) {
	(void)sig;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 6) {
		fprintf(stderr, "usage: sandbox-fuzz SEED SECONDS RW RO OUTSIDE\n");
		return 2;
	}
	/* Never outside a sandbox: these calls, made natively by root, would damage the
	 * machine (chmod /, truncate /etc/shadow, unlink devices). The canary file must
	 * exist and be refused; anything else is not a sandbox with OUTSIDE outside. */
	char canary[600];
	snprintf(canary, sizeof canary, "%s/secret", argv[5]);
	int probe = open(canary, O_RDONLY);
	if (probe >= 0 || (errno != EACCES && errno != EPERM)) {
		fprintf(stderr, "sandbox-fuzz: %s is %s: this is not a sandbox that keeps OUTSIDE out; refusing to run\n", canary, probe >= 0 ? "readable" : strerror(errno));
		return 3;
	}
	uint64_t seed = strtoull(argv[1], NULL, 0);
	deadline = now() + atof(argv[2]);
	rw = argv[3];
	ro = argv[4];
	outside = argv[5];
	scratch = mmap(NULL, SCRATCH + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mprotect(scratch + SCRATCH, 4096, PROT_NONE);
	region = mmap(NULL, 256 << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	while (f && fgets(line, sizeof line, f)) {
		unsigned long st, en;
		char perm[8], path[256] = "";
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &st, &en, perm, path) >= 3 && strchr(perm, 'x') && strlen(path) >= 5 && !strcmp(path + strlen(path) - 5, "/dune"))
			monitor_text = st;
	}
	if (f)
		fclose(f);
	/* Signals interrupt calls (no SA_RESTART) and do nothing else. */
	struct sigaction sa = { .sa_handler = ignore };
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	signal(SIGIO, SIG_IGN);
	signal(SIGURG, SIG_IGN);
	setup_paths();
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(seed * 31 + i + 1));
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	scan(scratch, SCRATCH, "the end");
	printf("fuzz: %ld calls, %ld forks, %ld scans, %ld findings\n", (long)calls, (long)forks, (long)scans, (long)findings);
	return findings ? 1 : 0;
}

/* The sthread C API, exercised scenario by scenario (argv[1]); each prints
 * "ok <scenario>" and exits 0, or says what failed and exits 1. Run in Dune mode
 * by crates/dune-tests/tests/sthread.rs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sthread.h>

#define CHECK(c, ...) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #c); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); exit(1); } } while (0)

static int global = 42;
static char secret_global[64] = "global secret";
static int *heap_secret;

/* Joins, failing with what ended the sthread if it did not return. */
static void *join_ok(sthread_t st)
{
	void *ret = NULL;
	struct sthread_violation w;
	if (sthread_join_why(st, &ret, &w) != 0) {
		fprintf(stderr, "sthread ended: kind %d errno %d nr %ld addr %#lx rip %#lx\n", w.kind, w.errnum, w.nr, w.addr, w.rip);
		FILE *m = fopen("/proc/self/maps", "r");
		char line[512];
		while (m && fgets(line, sizeof line, m)) {
			unsigned long a, b;
			if (sscanf(line, "%lx-%lx", &a, &b) == 2 && ((w.addr >= a && w.addr < b) || (w.rip >= a && w.rip < b)))
				fputs(line, stderr);
		}
		exit(1);
	}
	return ret;
}

static void *body_ret(void *arg) { return (void *)((uintptr_t)arg + 1); }

static void *body_global(void *arg)
{
	(void)arg;
	int seen = global;
	global = 1000;
	return (void *)(intptr_t)seen;
}



/* Expects the sthread to have been ended with violation `kind`. */
static struct sthread_violation join_violated(sthread_t st, int kind, const char *what)
{
	void *ret = NULL;
	struct sthread_violation w;
	memset(&w, 0, sizeof w);
	int r = sthread_join_why(st, &ret, &w);
	CHECK(r == -1 && w.kind == kind && errno == w.errnum, "%s: join %d, kind %d (wanted %d), errno %d, ret %p", what, r, w.kind, kind, errno, ret);
	return w;
}

static sthread_t run(sc_t *sc, stcb_t f, void *arg)
{
	sthread_t st;
	CHECK(sthread_create(&st, sc, f, arg) == 0, "create: %s", strerror(errno));
	return st;
}

/* ---- basic ---- */

/* clock_gettime through the vDSO: its code and data pages are the process's,
 * mapped read-only for the sthread on first use; no system call. */
static void *vdso_time(void *arg)
{
	(void)arg;
	struct timespec a, b;
	if (clock_gettime(CLOCK_MONOTONIC, &a) || clock_gettime(CLOCK_MONOTONIC, &b))
		return (void *)-1L;
	return (void *)(long)(a.tv_sec > 0 && (b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec)));
}

static void basic(void)
{
	sc_t sc;
	sthread_t st;
	void *ret;
	CHECK(sc_init(&sc) == 0, "sc_init");
	ret = join_ok(run(&sc, body_ret, (void *)41));
	CHECK(ret == (void *)42, "ret %p", ret);
	for (int i = 0; i < 3; i++) {
		ret = join_ok(run(&sc, body_global, NULL));
		CHECK(ret == (void *)42, "use %d saw global %ld", i, (long)ret);
	}
	CHECK(global == 42, "the master's global changed: %d", global);
	CHECK(join_ok(run(&sc, vdso_time, NULL)) == (void *)1L, "clock_gettime in an sthread");
	global = 7; /* after init: sthreads still see the snapshot */
	CHECK(join_ok(run(&sc, body_global, NULL)) == (void *)42, "sthreads see globals as at init");
	global = 42;
	/* Joining twice, or a made-up handle: ESRCH, nothing else happens. */
	st = run(&sc, body_ret, 0);
	join_ok(st);
	CHECK(sthread_join(st, &ret) == -1 && errno == ESRCH, "second join");
	CHECK(sthread_join(12345678, &ret) == -1 && errno == ESRCH, "unknown handle");
	/* Policies: what cannot be granted is refused, not exited on. */
	CHECK(sc_sys_add(&sc, SYS_execve) == -1 && errno == EINVAL, "granting execve");
	CHECK(sc_sys_add(&sc, 5000) == -1 && errno == EINVAL, "granting 5000");
	CHECK(sc_mem_add(&sc, 999, PROT_READ) == -1 && errno == ESRCH, "unknown tag");
	CHECK(sc_fd_add(&sc, -1, PROT_READ) == -1 && errno == EINVAL, "bad fd");
	sc_t bad;
	memset(&bad, 0, sizeof bad);
	CHECK(sthread_create(&st, &bad, body_ret, 0) == -1 && errno == EINVAL, "uninitialised sc_t");
	/* From an sthread, the API refuses. */
	sc_destroy(&sc);
}

/* ---- memory ---- */

static const char rodata[] = "read-only";
static char exec_buf[64];

static void *read_heap(void *arg) { (void)arg; return (void *)(long)*heap_secret; }
static void *read_ptr(void *arg) { return (void *)(long)*(volatile char *)arg; }
static void *write_ptr(void *arg) { *(volatile char *)arg = 1; return NULL; }
static void *exec_ptr(void *arg) { ((void (*)(void))arg)(); return NULL; }
static void *privileged(void *arg) { (void)arg; __asm__ volatile("hlt"); return NULL; }
static void *do_vmcall(void *arg) { (void)arg; __asm__ volatile("vmcall"); return NULL; }
static void *do_int80(void *arg) { (void)arg; __asm__ volatile("int $0x80" ::: "memory"); return NULL; }
static void *write_cr3(void *arg) { (void)arg; __asm__ volatile("mov %0, %%cr3" :: "r"(0UL)); return NULL; }

static void memory(char **argv)
{
	sc_t sc, ro;
	tag_t t = tag_new(), other = tag_new();
	CHECK(t >= 0 && other >= 0, "tag_new");
	char *tp = smalloc(t, 64), *op = smalloc(other, 64);
	strcpy(tp, "granted");
	strcpy(op, "another sthread's tag");
	sc_init(&sc);
	sc_init(&ro);
	sc_mem_add(&ro, t, PROT_READ);
	struct sthread_violation w;
	w = join_violated(run(&sc, read_heap, NULL), 1, "reading the master's heap");
	CHECK(w.addr == (unsigned long)heap_secret, "fault at %#lx, heap at %p", w.addr, (void *)heap_secret);
	join_violated(run(&sc, read_ptr, argv[0]), 1, "reading the master's stack (argv)");
	join_violated(run(&sc, write_ptr, (void *)body_ret), 1, "writing code");
	join_violated(run(&sc, write_ptr, (void *)rodata), 1, "writing rodata");
	join_violated(run(&sc, read_ptr, op), 1, "reading an ungranted tag");
	join_violated(run(&ro, write_ptr, tp), 1, "writing a read-only tag");
	CHECK(join_ok(run(&ro, read_ptr, tp)) == (void *)'g', "reading a granted tag");
	exec_buf[0] = (char)0xc3; /* ret */
	join_violated(run(&sc, exec_ptr, exec_buf), 1, "executing a global");
	join_violated(run(&sc, exec_ptr, tp), 1, "executing a tag");
	join_violated(run(&sc, privileged, NULL), 2, "hlt");
	join_violated(run(&sc, do_vmcall, NULL), 2, "vmcall");
	join_violated(run(&sc, do_int80, NULL), 2, "int 0x80");
	join_violated(run(&sc, write_cr3, NULL), 2, "mov to cr3");
	/* Runtime memory: the page tables' and vCPUs' pages are not the sthread's. */
	join_violated(run(&sc, read_ptr, (void *)&sc), 1, "the master's sc_t on its stack");
	CHECK(*heap_secret == 0x5ec7e7 && !strcmp(tp, "granted"), "the master's data changed");
	/* The master and other sthreads carry on. */
	CHECK(join_ok(run(&sc, body_ret, (void *)1)) == (void *)2, "after violations");
}

/* ---- descriptors ---- */

static void *write_fd(void *arg) { return (void *)write((int)(long)arg, "x", 1); }
static void *read_fd(void *arg) { char c; return (void *)read((int)(long)arg, &c, 1); }
static void *close_fd(void *arg) { return (void *)(long)close((int)(long)arg); }

static void descriptors(void)
{
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	sc_t none, rd, wr;
	sc_init(&none);
	sc_init(&rd);
	sc_init(&wr);
	sc_fd_add(&rd, p[0], PROT_READ);
	sc_fd_add(&rd, p[1], PROT_READ);
	sc_fd_add(&wr, p[1], PROT_WRITE);
	sc_sys_add(&wr, SYS_close);
	struct sthread_violation w = join_violated(run(&none, write_fd, (void *)(long)p[1]), 4, "an ungranted descriptor");
	CHECK(w.nr == p[1] && w.addr == SYS_write, "descriptor violation names fd %ld call %lu", w.nr, w.addr);
	join_violated(run(&rd, write_fd, (void *)(long)p[1]), 4, "writing a read-only grant");
	join_violated(run(&wr, read_fd, (void *)(long)p[0]), 4, "reading an ungranted end");
	join_violated(run(&none, write_fd, (void *)2L), 4, "stderr, not granted");
	CHECK(join_ok(run(&wr, write_fd, (void *)(long)p[1])) == (void *)1, "granted write");
	CHECK(join_ok(run(&rd, read_fd, (void *)(long)p[0])) == (void *)1, "granted read");
	/* Closing a granted descriptor drops the grant; the master's stays open. */
	CHECK(join_ok(run(&wr, close_fd, (void *)(long)p[1])) == 0, "close");
	CHECK(fcntl(p[1], F_GETFD) >= 0, "the master's descriptor was closed by an sthread");
	CHECK(write(p[1], "y", 1) == 1, "master write after");
}

/* The directory descriptor comes as the argument: globals set after sthread_init
 * are not visible in sthreads. */
#define AT(fd) ((int)(long)(fd))
static void *open_inside(void *fd) { return (void *)(long)openat(AT(fd), "inside", O_RDONLY); }
static void *open_dotdot(void *fd) { return (void *)(long)openat(AT(fd), "../../etc/passwd", O_RDONLY); }
static void *open_absolute(void *fd) { return (void *)(long)openat(AT(fd), "/etc/passwd", O_RDONLY); }
static void *open_link(void *fd) { return (void *)(long)openat(AT(fd), "link", O_RDONLY); }
static void *create_new(void *fd) { return (void *)(long)openat(AT(fd), "new", O_CREAT | O_WRONLY, 0600); }
static void *open_cwd(void *arg) { (void)arg; return (void *)(long)open("/etc/passwd", O_RDONLY); }

/* openat beneath a granted directory: nothing outside it, and nothing written
 * through a read-only grant. The paths are string literals (rodata). */
static void directories(void)
{
	char tmpl[] = "/tmp/sthread-dir-XXXXXX";
	CHECK(mkdtemp(tmpl) != NULL, "mkdtemp");
	char path[256];
	snprintf(path, sizeof path, "%s/inside", tmpl);
	int f = open(path, O_CREAT | O_WRONLY, 0600);
	CHECK(f >= 0, "create %s", path);
	close(f);
	int dir_fd = open(tmpl, O_DIRECTORY | O_RDONLY);
	CHECK(dir_fd >= 0, "open dir");
	snprintf(path, sizeof path, "%s/link", tmpl);
	CHECK(symlink("/etc/passwd", path) == 0, "symlink");
	void *d = (void *)(long)dir_fd;
	sc_t ro, rw;
	sc_init(&ro);
	sc_init(&rw);
	sc_sys_add(&ro, SYS_openat);
	sc_fd_add(&ro, dir_fd, PROT_READ);
	sc_sys_add(&rw, SYS_openat);
	sc_fd_add(&rw, dir_fd, PROT_READ | PROT_WRITE);
	CHECK((long)join_ok(run(&ro, open_inside, d)) >= 0, "a file beneath the directory");
	CHECK((long)join_ok(run(&ro, open_dotdot, d)) < 0, "dot-dot out of the directory opened");
	CHECK((long)join_ok(run(&ro, open_absolute, d)) < 0, "an absolute path opened");
	CHECK((long)join_ok(run(&ro, open_link, d)) < 0, "a symlink out of the directory opened");
	join_violated(run(&ro, open_cwd, NULL), 4, "open() of any path without SYS_open");
	join_violated(run(&ro, create_new, d), 4, "creating through a read-only directory grant");
	CHECK((long)join_ok(run(&rw, create_new, d)) >= 0, "creating through a writable grant");
	close(dir_fd);
}

/* ---- system calls ---- */

static void *call0(void *arg) { return (void *)syscall((long)arg); }

static void syscalls(void)
{
	sc_t sc, pid;
	sc_init(&sc);
	sc_init(&pid);
	CHECK(sc_sys_add(&pid, SYS_getpid) == 0, "grant getpid");
	struct sthread_violation w = join_violated(run(&sc, call0, (void *)SYS_getpid), 3, "getpid not granted");
	CHECK(w.nr == SYS_getpid, "violation names %ld", w.nr);
	join_violated(run(&sc, call0, (void *)200L), 3, "call 200");
	join_violated(run(&sc, call0, (void *)1023L), 3, "call 1023");
	join_violated(run(&sc, call0, (void *)100000L), 3, "call 100000");
	join_violated(run(&pid, call0, (void *)(long)SYS_fork), 3, "fork");
	join_violated(run(&pid, call0, (void *)(long)SYS_mmap), 3, "mmap");
	CHECK(join_ok(run(&pid, call0, (void *)SYS_getpid)) == (void *)(long)getpid(), "granted getpid");
}

/* ---- pointers ---- */

static void *write_rodata(void *arg) { (void)arg; return (void *)write(1, rodata, 9); }

struct two_pages { int fd; };
static void *read_across(void *arg)
{
	char buf[6000];
	int fd = (int)(long)arg;
	memset(buf, 0, sizeof buf);
	/* buf spans two stack pages. */
	long n = read(fd, buf + 100, 5000);
	long sum = 0;
	for (int i = 0; i < 5000; i++)
		sum += (unsigned char)buf[100 + i];
	return (void *)(n == 5000 ? sum : -n);
}
static void *write_heap(void *arg) { return (void *)write((int)(long)arg, heap_secret, 4); }
static char *edge_path;
static void *open_edge(void *arg) { (void)arg; return (void *)(long)open(edge_path, O_RDONLY); }

static void pointers(void)
{
	sc_t out, pipe_rd, w, op;
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	sc_init(&out);
	sc_fd_add(&out, 1, PROT_WRITE);
	CHECK(join_ok(run(&out, write_rodata, NULL)) == (void *)9, "write from rodata");
	printf("\n");
	char data[5000];
	long sum = 0;
	for (int i = 0; i < 5000; i++) {
		data[i] = (char)(i * 7);
		sum += (unsigned char)data[i];
	}
	CHECK(write(p[1], data, 5000) == 5000, "fill");
	sc_init(&pipe_rd);
	sc_fd_add(&pipe_rd, p[0], PROT_READ);
	void *r = join_ok(run(&pipe_rd, read_across, (void *)(long)p[0]));
	CHECK(r == (void *)sum, "read across pages: %ld, wanted %ld", (long)r, sum);
	sc_init(&w);
	sc_fd_add(&w, p[1], PROT_WRITE);
	struct sthread_violation v = join_violated(run(&w, write_heap, (void *)(long)p[1]), 5, "write() from the master's heap");
	CHECK(v.addr == (unsigned long)heap_secret, "pointer %#lx", v.addr);
	/* A path that runs into an unmapped page: a violation, not a ring-0 fault. */
	tag_t t = tag_new();
	char *blk = smalloc(t, 65536 - 16);
	CHECK(blk != NULL, "smalloc");
	/* The tag's first chunk is 64 KiB; its last bytes hold no NUL. */
	memset(blk, 'a', 65536 - 16);
	edge_path = blk + 65536 - 16 - 8;
	sc_init(&op);
	sc_sys_add(&op, SYS_open);
	sc_sys_add(&op, SYS_openat);
	sc_mem_add(&op, t, PROT_READ);
	join_violated(run(&op, open_edge, NULL), 5, "path into an unmapped page");
}

/* ---- recycle ---- */

static char page_buf[3 * 4096] __attribute__((aligned(4096)));
/* Reads the stack the previous use of the compartment left at the same place. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
static void *dirty_then_report(void *arg)
{
	long seen = page_buf[4096] + page_buf[100];
	volatile char stack[2048];
	long stack_junk = 0;
	for (int i = 0; i < 2048; i++)
		stack_junk += stack[i];
	strcpy(secret_global, (char *)arg);
	page_buf[4096] = 'X';
	page_buf[100] = 'Y';
	for (int i = 0; i < 2048; i++)
		stack[i] = 'S';
	return (void *)(seen * 1000000 + stack_junk);
}
#pragma GCC diagnostic pop
static void *bounced_read(void *arg) { return (void *)read((int)(long)arg, page_buf + 2 * 4096, 16); }
static void *peek_bounced(void *arg) { (void)arg; return (void *)(long)page_buf[2 * 4096]; }

static void recycle_once(int pcid)
{
	sthread_set_pcid(pcid);
	sc_t sc;
	sc_init(&sc);
	/* Three uses of the same compartment: the second writes the same pages again
	 * through whatever the TLB kept; the third must still see the snapshot. */
	for (int i = 0; i < 3; i++) {
		void *r = join_ok(run(&sc, dirty_then_report, i ? "second" : "first secret"));
		CHECK(r == 0, "use %d saw %ld (page_buf written before, or stack junk)", i, (long)r);
	}
	struct sthread_counters c;
	sthread_counters(&c);
	/* Pages written only by the kernel (a bounced read) are restored too. */
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	CHECK(write(p[1], "ZZZZZZZZZZZZZZZZ", 16) == 16, "fill");
	sc_t rd;
	sc_init(&rd);
	sc_fd_add(&rd, p[0], PROT_READ);
	CHECK(join_ok(run(&rd, bounced_read, (void *)(long)p[0])) == (void *)16, "bounced read");
	CHECK(join_ok(run(&rd, peek_bounced, NULL)) == 0, "a page written by the kernel leaked into the next use");
	close(p[0]);
	close(p[1]);
	CHECK(!strcmp(secret_global, "global secret"), "master's copy changed");
}

static void recycle(void)
{
	recycle_once(1);
	recycle_once(0);
}

/* ---- endurance ---- */

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

static void *open_and_leave(void *arg) { (void)arg; return (void *)(long)open("/dev/null", O_RDONLY); }

static void endurance(void)
{
	sc_t a, b;
	sc_init(&a);
	sc_init(&b);
	sc_sys_add(&b, SYS_open);
	sc_sys_add(&b, SYS_openat);
	/* Warm up both compartments, then count. */
	join_ok(run(&a, body_ret, 0));
	join_ok(run(&b, open_and_leave, 0));
	struct sthread_counters c0, c1;
	sthread_counters(&c0);
	int fds0 = count_fds();
	for (int i = 0; i < 10000; i++) {
		if (i % 1000 == 999) {
			/* A fresh compartment: a tag of its own, deleted afterwards. */
			sc_t f;
			tag_t t = tag_new();
			sc_init(&f);
			sc_mem_add(&f, t, PROT_READ | PROT_WRITE);
			join_ok(run(&f, body_ret, 0));
			CHECK(tag_delete(t) == 0, "tag_delete: %s", strerror(errno));
			sc_destroy(&f);
		} else if (i % 2) {
			CHECK(join_ok(run(&a, body_ret, (void *)(long)i)) == (void *)(long)(i + 1), "cycle %d", i);
		} else {
			CHECK((long)join_ok(run(&b, open_and_leave, 0)) >= 0, "open in cycle %d", i);
		}
	}
	sthread_counters(&c1);
	int fds1 = count_fds();
	CHECK(fds1 == fds0, "descriptors %d -> %d", fds0, fds1);
	CHECK(c1.compartments == c0.compartments && c1.pooled == c0.pooled && c1.sthreads == 0, "compartments %ld/%ld -> %ld/%ld, sthreads %ld", c0.compartments, c0.pooled, c1.compartments, c1.pooled, c1.sthreads);
	CHECK(c1.runtime_pages <= c0.runtime_pages + 16, "runtime pages %ld -> %ld", c0.runtime_pages, c1.runtime_pages);
	CHECK(c1.pcids <= 64, "pcids %ld", c1.pcids);
	printf("compartments %ld pooled %ld runtime pages %ld -> %ld fds %d\n", c1.compartments, c1.pooled, c0.runtime_pages, c1.runtime_pages, fds1);
}

/* ---- threads ---- */

static void *reader(void *arg)
{
	char buf[32];
	long n = read((int)(long)arg, buf, sizeof buf);
	return (void *)(n > 0 ? (long)buf[0] : -1);
}

static void *writer(void *arg) { return (void *)write((int)(long)arg, "Q", 1); }

static void *busy_thread(void *arg)
{
	sc_t sc;
	sc_init(&sc);
	long n = 0;
	for (int i = 0; i < 200; i++)
		n += (long)join_ok(run(&sc, body_ret, (void *)(long)i));
	*(long *)arg = n;
	return NULL;
}

static void threads(void)
{
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	sc_t rd, wr;
	sc_init(&rd);
	sc_init(&wr);
	sc_fd_add(&rd, p[0], PROT_READ);
	sc_fd_add(&wr, p[1], PROT_WRITE);
	tag_t t = tag_new();
	sc_mem_add(&rd, t, PROT_READ);
	/* The reader is created first and blocks: create returns (test_parallel). */
	sthread_t r = run(&rd, reader, (void *)(long)p[0]);
	CHECK(tag_delete(t) == -1 && errno == EBUSY, "deleting a tag a running sthread holds");
	long sums[2] = {0, 0};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&th[i], NULL, busy_thread, &sums[i]) == 0, "pthread_create");
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK(sums[0] == 20100 && sums[1] == 20100, "threads' sthreads: %ld %ld", sums[0], sums[1]);
	sthread_t w = run(&wr, writer, (void *)(long)p[1]);
	CHECK(join_ok(w) == (void *)1, "writer");
	CHECK(join_ok(r) == (void *)'Q', "reader");
	CHECK(tag_delete(t) == 0, "tag_delete after join");
}

/* ---- tags ---- */

static void *sum_tag(void *arg)
{
	unsigned char *p = arg;
	long s = 0;
	for (int i = 0; i < 300000; i += 4096)
		s += p[i];
	return (void *)(s + p[299999]);
}
static void *scribble(void *arg) { strcpy((char *)arg, "sthread wrote this"); return (void *)(long)((char *)arg)[0]; }

static void tags(void)
{
	tag_t t = tag_new();
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ);
	char *small = smalloc(t, 100);
	CHECK(small != NULL, "smalloc");
	/* Grown past the first chunk after the grant. */
	unsigned char *big = smalloc(t, 300000);
	CHECK(big != NULL, "smalloc 300000: %s", strerror(errno));
	memset(big, 1, 300000);
	CHECK(join_ok(run(&sc, sum_tag, big)) == (void *)(74L + 1), "sum over a grown tag");
	/* sfree: the space is reused. */
	sfree(small);
	char *again = smalloc(t, 100);
	CHECK(again == small, "sfree'd block not reused (%p, %p)", (void *)small, (void *)again);
	/* Shared writes are the master's; copy-on-write ones are not. */
	tag_t s = tag_new(), c = tag_new();
	char *sp = smalloc(s, 64), *cp = smalloc(c, 64);
	strcpy(sp, "master");
	strcpy(cp, "master");
	sc_t shw, cow;
	sc_init(&shw);
	sc_init(&cow);
	sc_mem_add(&shw, s, PROT_READ | PROT_WRITE);
	sc_mem_add(&cow, c, PROT_READ | SC_PROT_COW);
	CHECK(join_ok(run(&shw, scribble, sp)) == (void *)'s' && !strcmp(sp, "sthread wrote this"), "shared write: %s", sp);
	CHECK(join_ok(run(&cow, scribble, cp)) == (void *)'s' && !strcmp(cp, "master"), "copy-on-write changed the master's: %s", cp);
	CHECK(join_ok(run(&cow, read_ptr, cp)) == (void *)'m', "the next use sees the master's data again");
	CHECK(tag_delete(t) == 0 && tag_delete(t) == -1 && errno == ESRCH, "tag_delete twice");
	CHECK(smalloc(t, 10) == NULL && errno == ESRCH, "smalloc on a deleted tag");
	sc_t stale;
	sc_init(&stale);
	CHECK(sc_mem_add(&stale, t, PROT_READ) == -1, "granting a deleted tag");
	sthread_t st;
	CHECK(sthread_create(&st, &sc, read_ptr, big) == -1 && errno == ESRCH, "a policy naming a deleted tag");
}

/* ---- callgates ---- */

static tag_t key_tag, x_tag;
static char *key, *xbuf;

/* The gate: "signs" the request in X with the key (an XOR checksum), never
 * revealing the key itself. */
static void *sign(void *trusted, void *untrusted)
{
	const char *k = trusted;
	char *x = untrusted;
	unsigned char sig = 0;
	for (int i = 0; k[i]; i++)
		sig ^= (unsigned char)k[i];
	for (int i = 0; x[i]; i++)
		sig ^= (unsigned char)x[i];
	x[60] = (char)sig;
	return (void *)(long)sig;
}
static void *leaky_gate(void *trusted, void *untrusted) { (void)trusted; (void)untrusted; return (void *)(long)*heap_secret; }
/* The request sthread: X holds the request; asks the gate to sign it. Globals
 * set after sthread_init (key, xbuf) are not visible here: pointers come as the
 * argument. */
static void *request(void *arg)
{
	char *x = arg;
	long sig = (long)cgate(sign, NULL, x);
	return (void *)(sig == (unsigned char)x[60] ? sig : -1);
}
static void *steal_key(void *arg) { return (void *)(long)*(volatile char *)arg; }
static void *call_ungranted(void *arg) { (void)arg; return cgate(leaky_gate, NULL, NULL); }
static void *call_leaky(void *arg) { (void)arg; void *r = cgate(leaky_gate, NULL, NULL); return (void *)(long)(r == NULL ? errno : -1); }

static void callgates(void)
{
	key_tag = tag_new();
	x_tag = tag_new();
	key = smalloc(key_tag, 64);
	xbuf = smalloc(x_tag, 64);
	strcpy(key, "-----PRIVATE KEY-----");
	sc_t req, gate, leaky;
	sc_init(&req);
	sc_init(&gate);
	sc_init(&leaky);
	sc_mem_add(&gate, key_tag, PROT_READ);
	sc_mem_add(&gate, x_tag, PROT_READ | PROT_WRITE);
	sc_mem_add(&req, x_tag, PROT_READ | PROT_WRITE);
	CHECK(sc_cgate_add(&req, sign, &gate, key) == 0, "sc_cgate_add");
	CHECK(sc_cgate_add(&req, leaky_gate, &leaky, NULL) == 0, "sc_cgate_add leaky");
	unsigned char want = 0;
	for (const char *p = key; *p; p++)
		want ^= (unsigned char)*p;
	for (const char *p = "GET /"; *p; p++)
		want ^= (unsigned char)*p;
	strcpy(xbuf, "GET /");
	CHECK(join_ok(run(&req, request, xbuf)) == (void *)(long)want, "signature");
	CHECK((unsigned char)xbuf[60] == want, "the gate's write to X is the master's to see");
	/* The caller never holds the gate's rights. */
	CHECK(join_violated(run(&req, steal_key, key), 1, "reading the key from the caller").addr == (unsigned long)key, "fault address");
	/* A gate the policy does not carry. */
	sc_t bare;
	sc_init(&bare);
	sc_mem_add(&bare, x_tag, PROT_READ | PROT_WRITE);
	join_violated(run(&bare, call_ungranted, NULL), 6, "an ungranted callgate");
	/* A gate that violates its own policy ends; the caller carries on. */
	CHECK(join_ok(run(&req, call_leaky, NULL)) == (void *)(long)EFAULT, "a violating gate returns NULL/EFAULT");
	/* A gate carrying a gate with more than itself: refused at create. */
	sc_t outer, inner, holder;
	sc_init(&outer);
	sc_init(&inner);
	sc_init(&holder);
	sc_mem_add(&inner, key_tag, PROT_READ);
	sc_cgate_add(&outer, sign, &inner, key);
	sc_cgate_add(&holder, sign, &outer, key);
	sthread_t st;
	CHECK(sthread_create(&st, &holder, body_ret, NULL) == -1 && errno == EPERM, "a nested gate exceeding its creator");
	/* The API refuses from inside an sthread. */
	CHECK(!strcmp(key, "-----PRIVATE KEY-----"), "key changed");
}

static void *api_from_ring3(void *arg)
{
	(void)arg;
	sc_t sc;
	sthread_t st;
	long r = 0;
	r |= smalloc(0, 8) != NULL;
	r |= (sc_init(&sc) != -1) << 1;
	r |= (sthread_create(&st, &sc, body_ret, NULL) != -1) << 2;
	return (void *)r;
}

static void ring3_api(void)
{
	sc_t sc;
	sc_init(&sc);
	CHECK(join_ok(run(&sc, api_from_ring3, NULL)) == 0, "the API worked from ring 3");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: sthread-test SCENARIO\n");
		return 2;
	}
	heap_secret = malloc(sizeof *heap_secret);
	*heap_secret = 0x5ec7e7;
	if (sthread_init() != 0) {
		fprintf(stderr, "sthread_init: %s\n", strerror(errno));
		return 2;
	}
	const char *s = argv[1];
	if (!strcmp(s, "basic"))
		basic();
	else if (!strcmp(s, "memory"))
		memory(argv);
	else if (!strcmp(s, "descriptors"))
		descriptors();
	else if (!strcmp(s, "syscalls"))
		syscalls();
	else if (!strcmp(s, "directories"))
		directories();
	else if (!strcmp(s, "pointers"))
		pointers();
	else if (!strcmp(s, "recycle"))
		recycle();
	else if (!strcmp(s, "endurance"))
		endurance();
	else if (!strcmp(s, "threads"))
		threads();
	else if (!strcmp(s, "tags"))
		tags();
	else if (!strcmp(s, "callgates"))
		callgates();
	else if (!strcmp(s, "ring3-api"))
		ring3_api();
	else {
		fprintf(stderr, "unknown scenario %s\n", s);
		return 2;
	}
	printf("ok %s\n", s);
	return 0;
}

/* White-box attacks on sthreads (issue 17), scenario by scenario (argv[1]).
 *
 * Each scenario attacks one boundary: what one use of a compartment leaves for the
 * next, the master's CPU state, the master's thread and life, procfs, descriptor
 * grants, the snapshot's TLS and read-only ranges. It prints "ESCAPED: ..." for
 * every way it got through, and "ok <scenario>" when it ran to the end; the lane
 * test (crates/dune-tests/tests/sthread_attacks.rs) requires "ok" and no ESCAPED.
 * A master that dies or hangs fails the test too (an alarm reports a hang).
 *
 * Globals set after sthread_init are not visible in sthreads: data goes in
 * arguments or tags. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <dirent.h>
#include <elf.h>
#include <poll.h>
#include <setjmp.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sthread.h>

static int escaped;

#define ESCAPED(...) do { printf("ESCAPED: " __VA_ARGS__); printf("\n"); fflush(stdout); escaped++; } while (0)
#define CHECK(c, ...) do { if (!(c)) { fprintf(stderr, "%s:%d: setup failed: %s: ", __FILE__, __LINE__, #c); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); exit(2); } } while (0)

static const char *current;

static void on_alarm(int sig)
{
	(void)sig;
	char m[256];
	int n = snprintf(m, sizeof m, "ESCAPED: %s: the master's thread is stuck (a blocked sthread or callgate holds it)\n", current);
	if (write(1, m, n) < 0) {}
	_exit(3);
}

/* The master must get its thread back within `secs`. */
static void deadline(unsigned secs)
{
	signal(SIGALRM, on_alarm);
	alarm(secs);
}

static sthread_t run(sc_t *sc, stcb_t f, void *arg)
{
	sthread_t st;
	CHECK(sthread_create(&st, sc, f, arg) == 0, "create: %s", strerror(errno));
	return st;
}

/* The value the sthread returned, or -1000 - violation kind. */
static long join(sthread_t st)
{
	void *ret = NULL;
	struct sthread_violation w;
	memset(&w, 0, sizeof w);
	if (sthread_join_why(st, &ret, &w) != 0)
		return -1000 - w.kind;
	return (long)ret;
}

/* ---- 1. recycling after a page-table rebuild ---- */

static char recycled[4096] __attribute__((aligned(4096)));

static void *write_then_block(void *arg)
{
	(void)arg;
	strcpy(recycled, "GLOBAL-SECRET-OF-THE-FIRST-USE");
	volatile char deep[3000];
	for (int i = 0; i < 3000; i++)
		deep[i] = "STACK-SECRET-OF-THE-FIRST-USE"[i % 29];
	/* Blocks: handed to a thread of its own, whose start changes the runtime's
	 * memory and rebuilds this compartment's table while the pages are dirty. */
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	syscall(SYS_nanosleep, &ts, NULL); /* glibc's nanosleep is clock_nanosleep */
	return (void *)(long)deep[0];
}

static void *look_for_secrets(void *arg)
{
	(void)arg;
	long found = 0;
	if (memmem(recycled, sizeof recycled, "SECRET", 6))
		found |= 1;
	/* The stack below this frame, where the first use's frame was. */
	volatile char *sp = (volatile char *)__builtin_frame_address(0);
	for (long i = 64; i < 12 * 1024; i++)
		if (sp[-i] == 'S' && sp[-i + 1] == 'T' && sp[-i + 2] == 'A' && sp[-i + 3] == 'C' && sp[-i + 4] == 'K')
			found |= 2;
	return (void *)found;
}

static void recycle_rebuild(void)
{
	sc_t sc;
	sc_init(&sc);
	CHECK(sc_sys_add(&sc, SYS_nanosleep) == 0, "grant nanosleep");
	for (int round = 0; round < 3; round++) {
		long w = join(run(&sc, write_then_block, NULL));
		CHECK(w > 0, "the writer ended with %ld", w);
		long r = join(run(&sc, look_for_secrets, NULL));
		if (r < 0)
			ESCAPED("recycle: the reader was ended (%ld) instead of finding clean pages", r);
		if (r & 1)
			ESCAPED("recycle (round %d): the next use read the previous use's globals after its table was rebuilt", round);
		if (r & 2)
			ESCAPED("recycle (round %d): the next use read the previous use's stack after its table was rebuilt", round);
	}
}

/* ---- 2. the master's FPU state and flags ---- */

static void *wreck_fpu(void *arg)
{
	(void)arg;
	/* Round toward zero, flush to zero, denormals are zero, precision unmasked. */
	unsigned mx = (0x1f80 | 0x6000 | 0x8000 | 0x40) & ~0x1000u;
	__asm__ volatile("ldmxcsr %0" :: "m"(mx));
	/* x87: round toward zero, single precision, the stack left full. */
	unsigned short cw = 0x0c7f & ~0x0300;
	__asm__ volatile("fldcw %0" :: "m"(cw));
	__asm__ volatile("fld1; fld1; fld1; fld1; fld1; fld1; fld1; fld1" ::: "memory");
	/* Alignment check and direction flags. */
	__asm__ volatile("pushf; orq $0x40400, (%%rsp); popf" ::: "memory", "cc");
	return (void *)1;
}

static void *wreck_fpu_syscall(void *arg)
{
	wreck_fpu(arg);
	/* Leaves through a system call rather than a return. */
	syscall(SYS_exit, 1);
	return NULL;
}

static unsigned long flags_now(void)
{
	unsigned long f;
	__asm__ volatile("pushf; pop %0" : "=r"(f));
	return f;
}

static void fpu_state(void)
{
	sc_t sc;
	sc_init(&sc);
	stcb_t bodies[2] = { wreck_fpu, wreck_fpu_syscall };
	for (int i = 0; i < 2; i++) {
		unsigned mx0, mx1;
		unsigned short cw0, cw1;
		__asm__ volatile("stmxcsr %0; fnstcw %1" : "=m"(mx0), "=m"(cw0));
		long r = join(run(&sc, bodies[i], NULL));
		unsigned long fl = flags_now();
		__asm__ volatile("stmxcsr %0; fnstcw %1" : "=m"(mx1), "=m"(cw1));
		CHECK(r == 1, "the sthread ended with %ld", r);
		if ((mx1 & 0xffc0) != (mx0 & 0xffc0))
			ESCAPED("fpu %d: the master's MXCSR went from %#x to %#x", i, mx0, mx1);
		if (cw1 != cw0)
			ESCAPED("fpu %d: the master's x87 control word went from %#x to %#x", i, cw0, cw1);
		if (fl & 0x40000)
			ESCAPED("fpu %d: RFLAGS.AC is set in the master after the sthread", i);
		if (fl & 0x400)
			ESCAPED("fpu %d: RFLAGS.DF is set in the master after the sthread", i);
		volatile double a = 1.0, b = 3.0;
		double q = a / b;
		volatile long double la = 1.0L, lb = 3.0L;
		long double lq = la / lb;
		if (q != 0x1.5555555555555p-2)
			ESCAPED("fpu %d: 1.0/3.0 in the master is %a", i, q);
		if ((double)lq != 0x1.5555555555555p-2)
			ESCAPED("fpu %d: 1.0L/3.0L in the master is %La", i, lq);
		/* fnstenv's tag word: 0xffff when the x87 stack is empty (it also masks
		 * every x87 exception: the control word is put back). */
		struct { uint32_t cw, sw, tw, rest[4]; } env;
		__asm__ volatile("fnstenv %0; fldcw %1" : "=m"(env) : "m"(cw1));
		if ((env.tw & 0xffff) != 0xffff)
			ESCAPED("fpu %d: the x87 stack of the master holds values (tag word %#x)", i, env.tw & 0xffff);
		long double x = 0;
		for (int k = 0; k < 9; k++)
			x += la;
		if (x != 9.0L)
			ESCAPED("fpu %d: x87 arithmetic in the master is wrong (%Lg)", i, x);
	}
}

/* ---- 3. an unbacked vvar page ---- */

struct range { unsigned long start, end; };

static void *touch_range(void *arg)
{
	struct range *r = arg;
	long sum = 0;
	for (unsigned long p = r->start; p < r->end; p += 4096)
		sum += *(volatile unsigned char *)p;
	return (void *)(sum & 0x7fffffff);
}

static void vvar(void)
{
	FILE *m = fopen("/proc/self/maps", "r");
	CHECK(m != NULL, "maps");
	char line[512];
	tag_t t = tag_new();
	struct range *r = smalloc(t, sizeof *r);
	CHECK(r != NULL, "smalloc");
	r->start = r->end = 0;
	while (fgets(line, sizeof line, m))
		if (strstr(line, "[vvar]") || strstr(line, "[vvar_vclock]")) {
			unsigned long a, b;
			if (sscanf(line, "%lx-%lx", &a, &b) == 2) {
				if (!r->start)
					r->start = a;
				r->end = b;
			}
		}
	fclose(m);
	if (!r->start) {
		printf("no [vvar] here\n");
		return;
	}
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ);
	long v = join(run(&sc, touch_range, r));
	printf("vvar %#lx-%#lx: the sthread got %ld\n", r->start, r->end, v);
	/* Reaching this line is the test: the master is alive. It goes on working. */
	CHECK(join(run(&sc, touch_range, r)) != -2000, "again");
}

/* ---- 4. blocking calls on the master's thread ---- */

static void *write_lots(void *arg)
{
	static const char zeros[65536];
	/* One write: the pipe is writable, but not for all of it. */
	return (void *)write((int)(long)arg, zeros, sizeof zeros);
}

struct waitall { int fd; char buf[128]; };

static void *recv_waitall(void *arg)
{
	struct waitall *w = arg;
	return (void *)recvfrom(w->fd, w->buf, 100, MSG_WAITALL, NULL, NULL);
}

static void *open_fifo(void *arg)
{
	int fd = openat((int)(long)arg, "fifo", O_RDONLY);
	if (fd < 0)
		return (void *)(long)-errno;
	char c;
	long n = read(fd, &c, 1);
	return (void *)(n == 1 ? (long)c : -100);
}

static void blocking(void)
{
	/* A pipe with 60 KiB free: a 64 KiB write would wait. */
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	static char fill[4096];
	CHECK(write(p[1], fill, sizeof fill) == sizeof fill, "fill");
	sc_t sc;
	sc_init(&sc);
	sc_fd_add(&sc, p[1], PROT_WRITE);
	current = "a 64 KiB write to a pipe with 60 KiB free";
	deadline(10);
	sthread_t st = run(&sc, write_lots, (void *)(long)p[1]);
	alarm(0);
	static char sink[128 * 1024];
	long got = 0;
	while (got < 4096 + 65536) {
		long n = read(p[0], sink, sizeof sink);
		CHECK(n > 0, "drain");
		got += n;
	}
	CHECK(join(st) == 65536, "the writer");

	/* recv(MSG_WAITALL) of 100 bytes with one queued. */
	int s[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0, "socketpair");
	CHECK(write(s[1], "x", 1) == 1, "one byte");
	tag_t t = tag_new();
	struct waitall *w = smalloc(t, sizeof *w);
	w->fd = s[0];
	sc_t rs;
	sc_init(&rs);
	sc_fd_add(&rs, s[0], PROT_READ);
	sc_sys_add(&rs, SYS_recvfrom);
	sc_mem_add(&rs, t, PROT_READ | PROT_WRITE);
	current = "recv(MSG_WAITALL) with one byte queued";
	deadline(10);
	st = run(&rs, recv_waitall, w);
	alarm(0);
	static char more[99];
	CHECK(write(s[1], more, sizeof more) == sizeof more, "the rest");
	CHECK(join(st) == 100, "recv");

	/* open() of a FIFO beneath a granted directory. */
	char dir[] = "/tmp/sthread-fifo-XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	char path[128];
	snprintf(path, sizeof path, "%s/fifo", dir);
	CHECK(mkfifo(path, 0600) == 0, "mkfifo");
	int d = open(dir, O_DIRECTORY | O_RDONLY);
	sc_t fs;
	sc_init(&fs);
	sc_fd_add(&fs, d, PROT_READ);
	sc_sys_add(&fs, SYS_openat);
	current = "open() of a FIFO";
	deadline(10);
	st = run(&fs, open_fifo, (void *)(long)d);
	alarm(0);
	int wf = open(path, O_WRONLY);
	CHECK(wf >= 0, "the FIFO's writer");
	CHECK(write(wf, "F", 1) == 1, "write F");
	close(wf);
	CHECK(join(st) == 'F', "the FIFO reader");
	unlink(path);
	rmdir(dir);
}

/* A callgate that blocks: the sthread calls it at once. */
static void *gate_reads(void *trusted, void *untrusted)
{
	(void)untrusted;
	char c;
	return (void *)read((int)(long)trusted, &c, 1);
}

static void *call_gate(void *arg)
{
	(void)arg;
	return cgate(gate_reads, NULL, NULL);
}

static void blocking_gate(void)
{
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	sc_t gate, sc;
	sc_init(&gate);
	sc_fd_add(&gate, p[0], PROT_READ);
	sc_init(&sc);
	CHECK(sc_cgate_add(&sc, gate_reads, &gate, (void *)(long)p[0]) == 0, "cgate");
	current = "a callgate that blocks";
	deadline(10);
	sthread_t st = run(&sc, call_gate, NULL);
	alarm(0);
	CHECK(write(p[1], "g", 1) == 1, "wake the gate");
	CHECK(join(st) == 1, "the gate's read");
}

/* ---- 5. procfs ---- */

struct procarg { int dirfd; int fd; unsigned long addr; char buf[64]; };

static void *read_proc_mem(void *arg)
{
	struct procarg *a = arg;
	int fd = openat(a->dirfd, "proc/self/mem", O_RDONLY);
	if (fd < 0)
		return (void *)(long)-errno;
	return (void *)pread(fd, a->buf, 32, (off_t)a->addr);
}

static void *write_proc_mem(void *arg)
{
	struct procarg *a = arg;
	int fd = open("/proc/self/mem", O_RDWR);
	if (fd < 0)
		return (void *)(long)-errno;
	return (void *)pwrite(fd, "OWNED", 5, (off_t)a->addr);
}

static void *reopen_fd(void *arg)
{
	struct procarg *a = arg;
	char path[64] = "/proc/self/fd/";
	int n = a->fd, len = 14;
	char digits[16];
	int k = 0;
	do { digits[k++] = '0' + n % 10; n /= 10; } while (n);
	while (k)
		path[len++] = digits[--k];
	path[len] = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return (void *)(long)-errno;
	return (void *)read(fd, a->buf, 32);
}

static void procfs(void)
{
	char *heap = malloc(64);
	strcpy(heap, "HEAP-SECRET-OF-THE-MASTER");
	tag_t t = tag_new();
	struct procarg *a = smalloc(t, sizeof *a);
	memset(a, 0, sizeof *a);
	a->addr = (unsigned long)heap;
	a->dirfd = open("/", O_DIRECTORY | O_RDONLY);
	sc_t ro;
	sc_init(&ro);
	sc_fd_add(&ro, a->dirfd, PROT_READ);
	sc_sys_add(&ro, SYS_openat);
	sc_sys_add(&ro, SYS_pread64);
	sc_mem_add(&ro, t, PROT_READ | PROT_WRITE);
	long r = join(run(&ro, read_proc_mem, a));
	if (r > 0 && memmem(a->buf, 32, "HEAP-SECRET", 11))
		ESCAPED("procfs: a read-only grant of / read the master's heap through proc/self/mem");
	sc_t op;
	sc_init(&op);
	sc_sys_add(&op, SYS_open);
	sc_sys_add(&op, SYS_pwrite64);
	sc_mem_add(&op, t, PROT_READ | PROT_WRITE);
	r = join(run(&op, write_proc_mem, a));
	if (!strncmp(heap, "OWNED", 5))
		ESCAPED("procfs: SYS_open wrote the master's heap through /proc/self/mem (%ld)", r);
	char tmpl[] = "/tmp/sthread-secret-XXXXXX";
	int s = mkstemp(tmpl);
	CHECK(s >= 0 && write(s, "FILE-SECRET-NOT-GRANTED", 23) == 23, "secret file");
	unlink(tmpl);
	a->fd = s;
	memset(a->buf, 0, sizeof a->buf);
	sc_sys_add(&op, SYS_read);
	r = join(run(&op, reopen_fd, a));
	if (r > 0 && memmem(a->buf, 32, "FILE-SECRET", 11))
		ESCAPED("procfs: /proc/self/fd/%d reopened a descriptor the sthread was not granted", s);
}

/* ---- 6. segment selectors ---- */

static void *set_selectors(void *arg)
{
	(void)arg;
	unsigned short ds = 3, es = 2, gs = 1;
	__asm__ volatile("mov %0, %%ds; mov %1, %%es; mov %2, %%gs" :: "r"(ds), "r"(es), "r"(gs));
	return (void *)1;
}

static void *get_selectors(void *arg)
{
	(void)arg;
	unsigned short ds, es, fs, gs;
	__asm__ volatile("mov %%ds, %0; mov %%es, %1; mov %%fs, %2; mov %%gs, %3" : "=r"(ds), "=r"(es), "=r"(fs), "=r"(gs));
	return (void *)((unsigned long)ds | (unsigned long)es << 16 | (unsigned long)fs << 32 | (unsigned long)gs << 48);
}

static void selectors(void)
{
	sc_t sc;
	sc_init(&sc);
	long before = join(run(&sc, get_selectors, NULL));
	CHECK(join(run(&sc, set_selectors, NULL)) == 1, "set");
	long after = join(run(&sc, get_selectors, NULL));
	if (after != before)
		ESCAPED("selectors: one sthread set DS/ES/FS/GS to %#lx for the next (fresh: %#lx)", after, before);
}

/* ---- 7. the TLS snapshot ---- */

struct tls_probe { int above; unsigned long lo, hi; unsigned long n_below, n_above; unsigned char below[8192], above_bytes[8192]; };

/* Reads the bytes next to the block on one side, nearest first. */
static void *probe_tls(void *arg)
{
	struct tls_probe *p = arg;
	if (p->above)
		for (unsigned long i = 0; i < p->n_above; i++)
			p->above_bytes[i] = *(volatile unsigned char *)(p->hi + i);
	else
		for (unsigned long i = 1; i <= p->n_below; i++)
			p->below[p->n_below - i] = *(volatile unsigned char *)(p->lo - i);
	return (void *)1;
}

static void tls_margin(void)
{
	void (*info)(size_t *, size_t *) = (void (*)(size_t *, size_t *))dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
	const unsigned *tcb = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");
	CHECK(info && tcb, "glibc's TLS layout symbols");
	size_t size, align;
	info(&size, &align);
	unsigned long fs = (unsigned long)__builtin_thread_pointer();
	tag_t t = tag_new();
	struct tls_probe *p = smalloc(t, sizeof *p);
	CHECK(p != NULL, "smalloc");
	memset(p, 0, sizeof *p);
	/* The static TLS block and the TCB: [fs - (size - tcb), fs + tcb). */
	p->lo = fs - (size - *tcb);
	p->hi = fs + *tcb;
	/* Up to the page boundaries on both sides, then a page more below. */
	p->n_below = (p->lo & 4095) + 4096;
	p->n_above = 4096 - (p->hi & 4095);
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	/* A probe that faults stops there; what it read up to then still counts. */
	p->above = 0;
	printf("tls: below: %ld\n", join(run(&sc, probe_tls, p)));
	p->above = 1;
	printf("tls: above: %ld\n", join(run(&sc, probe_tls, p)));
	unsigned long leaked = 0, nonzero = 0;
	for (unsigned long i = 0; i < p->n_below; i++) {
		unsigned char m = *(volatile unsigned char *)(p->lo - p->n_below + i);
		nonzero += m != 0;
		leaked += m != 0 && m == p->below[i];
	}
	for (unsigned long i = 0; i < p->n_above; i++) {
		unsigned char m = *(volatile unsigned char *)(p->hi + i);
		nonzero += m != 0;
		leaked += m != 0 && m == p->above_bytes[i];
	}
	printf("tls: block %#lx-%#lx, %lu non-zero master bytes around it\n", p->lo, p->hi, nonzero);
	if (leaked)
		ESCAPED("tls: the sthread read %lu bytes of the master's memory next to the TLS block", leaked);
}

/* ---- 8. stale read-only ranges ---- */

static void *read_at(void *arg)
{
	return (void *)(long)*(volatile unsigned char *)arg;
}

static void stale_ranges(const char *lib, const char *sym)
{
	/* Loaded before sthread_init: in the snapshot's read-only ranges. */
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	CHECK(h != NULL, "dlopen %s: %s", lib, dlerror());
	unsigned char *f = dlsym(h, sym);
	CHECK(f != NULL, "dlsym");
	CHECK(sthread_init() == 0, "sthread_init");
	unsigned long page = (unsigned long)f & ~4095UL;
	CHECK(dlclose(h) == 0, "dlclose");
	sc_t sc;
	sc_init(&sc);
	/* Unmapped now: touching it must end the sthread, not the master. */
	unsigned char probe;
	if (mincore((void *)page, 4096, &probe) == 0) {
		printf("stale: %s stayed mapped after dlclose\n", lib);
		return;
	}
	long r = join(run(&sc, read_at, (void *)(page + 8)));
	printf("stale: reading the unmapped page gave %ld\n", r);
	/* The master maps data of its own there. */
	char *m = mmap((void *)page, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(m == (char *)page, "mmap at %#lx", page);
	memset(m, 'Z', 4096);
	r = join(run(&sc, read_at, (void *)(page + 8)));
	if (r == 'Z')
		ESCAPED("stale: after dlclose, an sthread read the master's new mapping at %#lx", page);
}

/* ---- 9. descriptor grants are numbers ---- */

struct twice { int fd; char first[16], second[16]; };

static void *read_twice(void *arg)
{
	struct twice *t = arg;
	if (read(t->fd, t->first, 15) <= 0)
		return (void *)-1L;
	if (read(t->fd, t->second, 15) <= 0)
		return (void *)-2L;
	return (void *)1L;
}

static void fd_numbers(void)
{
	int a[2], b[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, b) == 0, "socketpairs");
	tag_t t = tag_new();
	struct twice *tw = smalloc(t, sizeof *tw);
	memset(tw, 0, sizeof *tw);
	tw->fd = a[0];
	sc_t sc;
	sc_init(&sc);
	sc_fd_add(&sc, a[0], PROT_READ);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	sthread_t st = run(&sc, read_twice, tw);
	/* The master is done with client A: the next client gets the same number. */
	int n = a[0];
	CHECK(close(a[0]) == 0 && dup2(b[0], n) == n, "renumber");
	CHECK(write(b[1], "CLIENT-B-SECRET", 15) == 15, "B");
	CHECK(write(a[1], "client-a-first.", 15) == 15, "A1");
	usleep(200 * 1000);
	CHECK(write(a[1], "client-a-second", 15) == 15, "A2");
	close(a[1]);
	long r = join(st);
	if (strstr(tw->first, "CLIENT-B") || strstr(tw->second, "CLIENT-B"))
		ESCAPED("fd: the handler granted client A's descriptor read client B's request (%.15s / %.15s)", tw->first, tw->second);
	printf("fd: %ld, read %.15s then %.15s\n", r, tw->first, tw->second);
}

/* ---- seen in the code ---- */

static void *create_setid(void *arg)
{
	return (void *)(long)openat((int)(long)arg, "setid", O_CREAT | O_WRONLY, 06755);
}

static void setid(void)
{
	char dir[] = "/tmp/sthread-setid-XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	int d = open(dir, O_DIRECTORY | O_RDONLY);
	sc_t sc;
	sc_init(&sc);
	sc_fd_add(&sc, d, PROT_READ | PROT_WRITE);
	sc_sys_add(&sc, SYS_openat);
	long r = join(run(&sc, create_setid, (void *)(long)d));
	struct stat st;
	char path[128];
	snprintf(path, sizeof path, "%s/setid", dir);
	if (r >= 0 && stat(path, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID)))
		ESCAPED("setid: a writable directory grant made a set-id file (mode %o)", st.st_mode & 07777);
	unlink(path);
	rmdir(dir);
}

static void *exhaust_fds(void *arg)
{
	(void)arg;
	long n = 0;
	while (n < 2000000 && open("/dev/null", O_RDONLY) >= 0)
		n++;
	struct timespec ts = { 0, 500 * 1000 * 1000 };
	syscall(SYS_nanosleep, &ts, NULL); /* glibc's nanosleep is clock_nanosleep */
	return (void *)n;
}

static void fd_exhaust(void)
{
	sc_t sc;
	sc_init(&sc);
	sc_sys_add(&sc, SYS_open);
	sc_sys_add(&sc, SYS_nanosleep);
	sthread_t st = run(&sc, exhaust_fds, NULL);
	usleep(200 * 1000);
	int f = open("/dev/null", O_RDONLY);
	if (f < 0)
		ESCAPED("fd-exhaust: the master cannot open a file while an sthread holds every descriptor (%s)", strerror(errno));
	else
		close(f);
	printf("fd-exhaust: the sthread opened %ld\n", join(st));
}

/* A hand-off that fails (no thread can be made) must not leak the sthread's
 * compartment or hold its tags. */
static void *block_forever(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	syscall(SYS_nanosleep, &ts, NULL); /* glibc's nanosleep is clock_nanosleep */
	return (void *)1;
}

static void handoff_failure(void)
{
	tag_t t = tag_new();
	CHECK(smalloc(t, 16) != NULL, "smalloc");
	sc_t sc;
	sc_init(&sc);
	sc_sys_add(&sc, SYS_nanosleep);
	sc_mem_add(&sc, t, PROT_READ);
	struct sthread_counters c0, c1;
	CHECK(sthread_counters(&c0) == 0, "counters");
	/* No thread can be made: an unprivileged user at its process limit. */
	CHECK(setgid(65534) == 0 && setuid(65534) == 0, "drop to nobody");
	struct rlimit one = { 1, 1 };
	CHECK(setrlimit(RLIMIT_NPROC, &one) == 0, "RLIMIT_NPROC");
	sthread_t st;
	int r = sthread_create(&st, &sc, block_forever, NULL);
	printf("handoff: create gave %d (%s)\n", r, r ? strerror(errno) : "ok");
	if (r == 0)
		printf("handoff: joined %ld\n", join(st));
	CHECK(sthread_counters(&c1) == 0, "counters");
	if (c1.sthreads != c0.sthreads)
		ESCAPED("handoff: %ld sthreads left behind after a failed hand-off", c1.sthreads - c0.sthreads);
	if (tag_delete(t) != 0)
		ESCAPED("handoff: the sthread's tag is still held after a failed hand-off (%s)", strerror(errno));
	if (c1.compartments > c0.compartments + 1)
		ESCAPED("handoff: compartments went from %ld to %ld", c0.compartments, c1.compartments);
}

/* ---- red-team round 1 ---- */

/* A. recvfrom(MSG_TRUNC) on a granted datagram socket returns the datagram's real
 * length, longer than the buffer the runtime bounced it through. */
struct trunc { int fd; char buf[16]; };

static void *recv_trunc(void *arg)
{
	struct trunc *t = arg;
	return (void *)recvfrom(t->fd, t->buf, 1, MSG_TRUNC, NULL, NULL);
}

static void *sleep_then_recv_trunc(void *arg)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	syscall(SYS_nanosleep, &ts, NULL); /* handed to a thread of its own */
	return recv_trunc(arg);
}

static void recv_truncated(void)
{
	static char dgram[200];
	memset(dgram, 'D', sizeof dgram);
	for (int round = 0; round < 2; round++) {
		int s[2];
		CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, s) == 0, "socketpair");
		CHECK(write(s[1], dgram, sizeof dgram) == sizeof dgram, "datagram");
		tag_t t = tag_new();
		struct trunc *tr = smalloc(t, sizeof *tr);
		CHECK(tr != NULL, "smalloc");
		memset(tr, 0, sizeof *tr);
		tr->fd = s[0];
		sc_t sc;
		sc_init(&sc);
		sc_fd_add(&sc, s[0], PROT_READ);
		sc_sys_add(&sc, SYS_recvfrom);
		sc_sys_add(&sc, SYS_nanosleep);
		sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
		current = round ? "recvfrom(MSG_TRUNC) on a thread of its own" : "recvfrom(MSG_TRUNC) on the master's thread";
		deadline(15);
		sthread_t st;
		int rc = sthread_create(&st, &sc, round ? sleep_then_recv_trunc : recv_trunc, tr);
		if (rc != 0) {
			alarm(0);
			ESCAPED("recv-trunc (round %d): a granted recvfrom(MSG_TRUNC) broke sthread_create (%s)", round, strerror(errno));
		} else {
			long r = join(st);
			alarm(0);
			printf("recv-trunc (round %d): the sthread got %ld\n", round, r);
		}
		if (tag_delete(t) != 0)
			ESCAPED("recv-trunc (round %d): the sthread's tag is held for ever (%s)", round, strerror(errno));
		struct sthread_counters c;
		CHECK(sthread_counters(&c) == 0, "counters");
		if (c.sthreads != 0)
			ESCAPED("recv-trunc (round %d): %ld sthreads left behind", round, c.sthreads);
		close(s[0]);
		close(s[1]);
	}
}

/* B. An sthread that never makes a system call. */
static void *spin_forever(void *arg)
{
	(void)arg;
	for (;;)
		__asm__ volatile("pause");
	return NULL;
}

static void spin(void)
{
	sc_t sc;
	sc_init(&sc);
	current = "an sthread that computes for ever";
	deadline(15);
	sthread_t st = run(&sc, spin_forever, NULL);
	alarm(0);
	printf("spin: sthread_create returned (%d)\n", st);
}

/* C. Reads that block although the runtime thinks they cannot: /proc/kmsg is a
 * regular file, and pread64 is never checked at all (/dev/kmsg). */
struct drain { int fd; int positional; };

static void *drain_log(void *arg)
{
	struct drain *d = arg;
	static char buf[16384];
	for (long i = 0; i < 1000000; i++) {
		long n = d->positional ? pread(d->fd, buf, sizeof buf, 0) : read(d->fd, buf, sizeof buf);
		if (n < 0 && n != -EPIPE && errno != EPIPE)
			return (void *)(-1000 - (long)errno);
	}
	return (void *)1;
}

static void blocking_files(const char *which)
{
	const char *files[2] = { "/dev/kmsg", "/proc/kmsg" };
	for (int i = 0; i < 2; i++) {
		if (which && strcmp(which, files[i]))
			continue;
		int fd = open(files[i], O_RDONLY);
		if (fd < 0) {
			printf("blocking-files: no %s here (%s)\n", files[i], strerror(errno));
			continue;
		}
		tag_t t = tag_new();
		struct drain *d = smalloc(t, sizeof *d);
		d->fd = fd;
		d->positional = i == 0;
		sc_t sc;
		sc_init(&sc);
		sc_fd_add(&sc, fd, PROT_READ);
		sc_sys_add(&sc, SYS_pread64);
		sc_mem_add(&sc, t, PROT_READ);
		char what[64];
		snprintf(what, sizeof what, "%s of %s", i == 0 ? "pread64" : "read", files[i]);
		current = what;
		deadline(15);
		sthread_t st = run(&sc, drain_log, d);
		alarm(0);
		printf("blocking-files: %s: sthread_create returned (%d)\n", what, st);
	}
}

/* C1. A pipe's room is counted in pages (slots), not bytes: 16 writes of 4000 bytes
 * leave 1536 bytes "free" but no free slot, and 1000 bytes do not merge into the
 * last page. */
static void *write_some(void *arg)
{
	static const char k[1000];
	return (void *)write((int)(long)arg, k, sizeof k);
}

static void pipe_slots(void)
{
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	CHECK(fcntl(p[1], F_GETPIPE_SZ) == 65536, "a 64 KiB pipe");
	static char chunk[4000];
	for (int i = 0; i < 16; i++)
		CHECK(write(p[1], chunk, sizeof chunk) == sizeof chunk, "chunk %d", i);
	sc_t sc;
	sc_init(&sc);
	sc_fd_add(&sc, p[1], PROT_WRITE);
	current = "a 1000-byte write to a pipe with 1536 bytes but no page free";
	deadline(15);
	sthread_t st = run(&sc, write_some, (void *)(long)p[1]);
	alarm(0);
	static char sink[65536];
	CHECK(read(p[0], sink, sizeof sink) > 0, "drain");
	printf("pipe-slots: the writer gave %ld\n", join(st));
}

/* C2. A write past RLIMIT_FSIZE: the kernel sends SIGXFSZ to the thread that made
 * it (the master's, for an sthread running on it), whose default action ends the
 * process, as SIGPIPE's would. */
static void *write_far(void *arg)
{
	return (void *)pwrite((int)(long)arg, "X", 1, 4 << 20);
}

static void fsize(void)
{
	char tmpl[] = "/tmp/sthread-fsize-XXXXXX";
	int fd = mkstemp(tmpl);
	CHECK(fd >= 0, "mkstemp");
	unlink(tmpl);
	/* The master keeps its log files small. */
	struct rlimit lim = { 1 << 20, RLIM_INFINITY };
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "RLIMIT_FSIZE");
	sc_t sc;
	sc_init(&sc);
	sc_fd_add(&sc, fd, PROT_READ | PROT_WRITE);
	sc_sys_add(&sc, SYS_pwrite64);
	long r = join(run(&sc, write_far, (void *)(long)fd));
	printf("fsize: the sthread's pwrite gave %ld; the master lives\n", r);
}

/* D. A callgate's descriptor grant: the open file, or whatever has the number when
 * the gate is called? */
struct gatebuf { char got[32]; };

static void *gate_read_fd(void *trusted, void *untrusted)
{
	struct gatebuf *b = untrusted;
	return (void *)read((int)(long)trusted, b->got, 15);
}

static void *call_read_gate_later(void *arg)
{
	struct timespec ts = { 0, 300 * 1000 * 1000 };
	syscall(SYS_nanosleep, &ts, NULL); /* the master renumbers meanwhile */
	return cgate(gate_read_fd, NULL, arg);
}

static void gate_fd_numbers(void)
{
	int a[2], b[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, b) == 0, "socketpairs");
	tag_t t = tag_new();
	struct gatebuf *gb = smalloc(t, sizeof *gb);
	memset(gb, 0, sizeof *gb);
	sc_t gate, sc;
	sc_init(&gate);
	sc_fd_add(&gate, a[0], PROT_READ);
	sc_mem_add(&gate, t, PROT_READ | PROT_WRITE);
	sc_init(&sc);
	sc_sys_add(&sc, SYS_nanosleep);
	sc_mem_add(&sc, t, PROT_READ);
	CHECK(sc_cgate_add(&sc, gate_read_fd, &gate, (void *)(long)a[0]) == 0, "cgate");
	sthread_t st = run(&sc, call_read_gate_later, gb);
	/* The master is done with client A: client B gets the number. */
	int n = a[0];
	CHECK(close(a[0]) == 0 && dup2(b[0], n) == n, "renumber");
	CHECK(write(b[1], "CLIENT-B-SECRET", 15) == 15, "B");
	/* Client A's socket is the gate's, if the gate holds it: it has data waiting. */
	long wa = write(a[1], "client-a-data..", 15);
	if (wa != 15)
		printf("gate-fd-numbers: nothing holds client A's socket any more (%s)\n", strerror(errno));
	long r = join(st);
	if (strstr(gb->got, "CLIENT-B"))
		ESCAPED("gate-fd-numbers: the gate granted client A's descriptor read client B's data for the sthread (%.15s)", gb->got);
	printf("gate-fd-numbers: %ld, the gate read %.15s\n", r, gb->got);
}

/* E. A running sthread keeps the leaves it mapped while the master's map changes. */
static const char ro_page[4096] __attribute__((aligned(4096))) = "RODATA-ORIGINAL";

struct watch { volatile const char *page; volatile int started, stop; char orig[16]; char seen[32]; };

static void *watch_page(void *arg)
{
	struct watch *w = arg;
	char c = w->page[0]; /* mapped now, while it is shared */
	(void)c;
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	syscall(SYS_nanosleep, &ts, NULL); /* on a thread of its own from here on */
	w->started = 1;
	while (!w->stop) {
		for (int i = 0; i < 8; i++)
			if (w->page[i] != w->orig[i]) {
				for (int k = 0; k < 31; k++)
					w->seen[k] = w->page[k];
				return (void *)1;
			}
		__asm__ volatile("pause");
	}
	return (void *)0;
}

static void stale_running(const char *lib, const char *sym)
{
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	CHECK(h != NULL, "dlopen %s: %s", lib, dlerror());
	unsigned char *f = dlsym(h, sym);
	CHECK(f != NULL, "dlsym");
	CHECK(sthread_init() == 0, "sthread_init");
	tag_t t = tag_new();
	struct watch *w = smalloc(t, sizeof *w);
	CHECK(w != NULL, "smalloc");
	sc_t sc;
	sc_init(&sc);
	sc_sys_add(&sc, SYS_nanosleep);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);

	/* 1: the master makes a page of its rodata writable and writes to it. */
	memset(w, 0, sizeof *w);
	w->page = ro_page;
	memcpy(w->orig, ro_page, 8);
	sthread_t st = run(&sc, watch_page, w);
	for (int i = 0; i < 200 && !w->started; i++)
		usleep(10 * 1000);
	usleep(100 * 1000);
	CHECK(mprotect((void *)ro_page, 4096, PROT_READ | PROT_WRITE) == 0, "mprotect");
	volatile char *wp = (volatile char *)(uintptr_t)ro_page;
	for (int i = 0; i < 29; i++)
		wp[i] = "MASTER-SECRET-AFTER-MPROTECT"[i];
	usleep(500 * 1000);
	w->stop = 1;
	current = "stale-running (mprotect)";
	deadline(15);
	long r = join(st);
	alarm(0);
	if (r == 1 && strstr(w->seen, "MASTER-SECRET"))
		ESCAPED("stale-running: a running sthread read what the master wrote after making its rodata page writable (%.28s)", w->seen);
	printf("stale-running (mprotect): %ld, saw %.28s\n", r, w->seen);

	/* 2: the master unloads a library and maps data of its own where it was. */
	unsigned long page = (unsigned long)f & ~4095UL;
	memset(w, 0, sizeof *w);
	w->page = (const char *)page;
	memcpy(w->orig, (const void *)page, 8);
	st = run(&sc, watch_page, w);
	for (int i = 0; i < 200 && !w->started; i++)
		usleep(10 * 1000);
	usleep(100 * 1000);
	CHECK(dlclose(h) == 0, "dlclose");
	unsigned char probe;
	if (mincore((void *)page, 4096, &probe) == 0) {
		printf("stale-running: %s stayed mapped after dlclose\n", lib);
	} else {
		char *m = mmap((void *)page, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		CHECK(m == (char *)page, "mmap at %#lx", page);
		strcpy(m, "MASTER-SECRET-AFTER-DLCLOSE");
	}
	usleep(500 * 1000);
	w->stop = 1;
	current = "stale-running (dlclose)";
	deadline(15);
	r = join(st);
	alarm(0);
	if (r == 1 && strstr(w->seen, "MASTER-SECRET"))
		ESCAPED("stale-running: a running sthread read the master's new mapping where an unloaded library was (%.27s)", w->seen);
	printf("stale-running (dlclose): %ld, saw %.27s\n", r, w->seen);
}

/* F. Ring-3 instructions aimed at ring 0's entry paths and the CPU's tables. Each
 * must end its sthread (or do nothing); the master must live. */
struct trick { unsigned long v[4]; };

#define TRICK(name, ...) static void *name(void *arg) { struct trick *tk = arg; (void)tk; __VA_ARGS__; return (void *)7; }

/* out/in on the runtime's own ports: the host would run a system call. */
TRICK(t_out_port, {
	long r;
	__asm__ volatile("lea 1f(%%rip), %%rcx\n\tmov $39, %%eax\n\tout %%al, $0x0d\n1:" : "=a"(r) :: "rcx", "r11", "memory");
	tk->v[0] = r;
	return (void *)r;
})
TRICK(t_in_port, { unsigned char c; __asm__ volatile("in $0x10, %%al" : "=a"(c)); tk->v[0] = c; })
/* System call with TF set by the popf just before it. */
TRICK(t_tf_syscall, {
	long r;
	__asm__ volatile("mov $24, %%eax\n\tpushfq\n\torq $0x100, (%%rsp)\n\tpopfq\n\tsyscall\n\tpushfq\n\tandq $~0x100, (%%rsp)\n\tpopfq" : "=a"(r) :: "rcx", "r11", "memory", "cc");
	tk->v[0] = r;
})
/* mov ss; syscall (the interrupt shadow over the entry). */
TRICK(t_movss_syscall, {
	long r;
	__asm__ volatile("mov $24, %%eax\n\tmov %%ss, %%dx\n\tmov %%dx, %%ss\n\tsyscall" : "=a"(r) :: "rcx", "rdx", "r11", "memory");
	tk->v[0] = r;
})
/* TF, then mov ss, then syscall: a single-step trap held over into ring 0. */
TRICK(t_tf_movss_syscall, {
	long r;
	__asm__ volatile("mov $24, %%eax\n\tmov %%ss, %%dx\n\tpushfq\n\torq $0x100, (%%rsp)\n\tpopfq\n\tmov %%dx, %%ss\n\tsyscall\n\tpushfq\n\tandq $~0x100, (%%rsp)\n\tpopfq" : "=a"(r) :: "rcx", "rdx", "r11", "memory", "cc");
	tk->v[0] = r;
})
/* A system call with a non-canonical stack pointer: ring 0 returns with iretq. */
TRICK(t_noncanon_rsp, {
	long r;
	__asm__ volatile("mov %%rsp, %%r12\n\tmovabs $0x0000800000000000, %%rsp\n\tmov $24, %%eax\n\tsyscall\n\tmov %%r12, %%rsp" : "=a"(r) :: "rcx", "r11", "r12", "memory");
	tk->v[0] = r;
})
/* ... and one pointing into the kernel half. */
TRICK(t_kernel_rsp, {
	long r;
	__asm__ volatile("mov %%rsp, %%r12\n\tmovabs $0xffff800000001000, %%rsp\n\tmov $24, %%eax\n\tsyscall\n\tmov %%r12, %%rsp" : "=a"(r) :: "rcx", "r11", "r12", "memory");
	tk->v[0] = r;
})
/* A GS selector load (GS base 0 in ring 3), then a system call and an exception. */
TRICK(t_gs_syscall, {
	long r;
	__asm__ volatile("mov $0x1b, %%edx\n\tmov %%edx, %%gs\n\tmov $24, %%eax\n\tsyscall" : "=a"(r) :: "rcx", "rdx", "r11", "memory");
	tk->v[0] = r;
	__asm__ volatile("ud2");
})
TRICK(t_gs_pf_stack, {
	__asm__ volatile("mov $0x1b, %%edx\n\tmov %%edx, %%gs\n\txor %%esp, %%esp\n\tmovb $1, (%%rsp)" ::: "rdx", "memory");
})
TRICK(t_icebp, { __asm__ volatile(".byte 0xf1"); })
TRICK(t_int_signal, { __asm__ volatile("int $0xf0"); })
TRICK(t_int_pf, { __asm__ volatile("int $0x0e"); })
TRICK(t_sysenter, { __asm__ volatile("sysenter" ::: "memory"); })
TRICK(t_swapgs, { __asm__ volatile("swapgs"); })
TRICK(t_wrmsr, { __asm__ volatile("wrmsr" :: "c"(0xc0000102), "a"(0), "d"(0)); })
TRICK(t_rdpmc, { unsigned a, d; __asm__ volatile("rdpmc" : "=a"(a), "=d"(d) : "c"(0)); tk->v[0] = a; })
TRICK(t_wrfsbase, { __asm__ volatile("wrfsbase %0" :: "r"(0UL)); })
TRICK(t_wrpkru, { __asm__ volatile("wrpkru" :: "a"(0), "c"(0), "d"(0)); })
/* Far return to the kernel's code selector, and an iretq frame naming it. */
TRICK(t_lret_kernel_cs, {
	__asm__ volatile("pushq $0x08\n\tlea 1f(%%rip), %%rax\n\tpushq %%rax\n\tlretq\n1:" ::: "rax", "memory");
	tk->v[0] = 1;
})
TRICK(t_iret_kernel_cs, {
	__asm__ volatile("mov %%rsp, %%rdx\n\tpushq $0x10\n\tpushq %%rdx\n\tpushfq\n\tpushq $0x08\n\tlea 1f(%%rip), %%rax\n\tpushq %%rax\n\tiretq\n1:" ::: "rax", "rdx", "memory");
	tk->v[0] = 1;
})
/* The TSS as a code selector, the LDT, a 32-bit far jump through selector 0x13. */
TRICK(t_ljmp_tss, {
	struct __attribute__((packed)) { unsigned int off; unsigned short sel; } far = { 0, 0x2b };
	__asm__ volatile("ljmp *%0" :: "m"(far));
})
TRICK(t_ljmp_ldt, {
	struct __attribute__((packed)) { unsigned int off; unsigned short sel; } far = { 0, 0x0f };
	__asm__ volatile("ljmp *%0" :: "m"(far));
})
/* The descriptor tables: where they are (no UMIP), and whether ring 3 reads them. */
TRICK(t_sidt_read, {
	struct __attribute__((packed)) { unsigned short lim; unsigned long base; } d = { 0, 0 };
	__asm__ volatile("sidt %0" : "=m"(d));
	tk->v[1] = d.base;
	tk->v[2] = 1;
	tk->v[0] = *(volatile unsigned long *)d.base;
	tk->v[3] = 1;
})
TRICK(t_sgdt_read, {
	struct __attribute__((packed)) { unsigned short lim; unsigned long base; } d = { 0, 0 };
	__asm__ volatile("sgdt %0" : "=m"(d));
	tk->v[1] = d.base;
	tk->v[2] = 1;
	tk->v[0] = *(volatile unsigned long *)(d.base + 8);
	tk->v[3] = 1;
})

static void cpu_tricks(void)
{
	struct { const char *name; stcb_t f; } tricks[] = {
		{ "out to the system-call port", t_out_port },
		{ "in from the service port", t_in_port },
		{ "syscall with TF", t_tf_syscall },
		{ "mov ss; syscall", t_movss_syscall },
		{ "TF; mov ss; syscall", t_tf_movss_syscall },
		{ "syscall with a non-canonical rsp", t_noncanon_rsp },
		{ "syscall with a kernel-half rsp", t_kernel_rsp },
		{ "GS selector then syscall and #UD", t_gs_syscall },
		{ "GS selector then #PF with rsp 0", t_gs_pf_stack },
		{ "icebp", t_icebp },
		{ "int 0xf0 (the signal vector)", t_int_signal },
		{ "int 0x0e", t_int_pf },
		{ "sysenter", t_sysenter },
		{ "swapgs", t_swapgs },
		{ "wrmsr KERNEL_GS_BASE", t_wrmsr },
		{ "rdpmc", t_rdpmc },
		{ "wrfsbase", t_wrfsbase },
		{ "wrpkru", t_wrpkru },
		{ "lret to the kernel CS", t_lret_kernel_cs },
		{ "iretq to the kernel CS", t_iret_kernel_cs },
		{ "ljmp to the TSS selector", t_ljmp_tss },
		{ "ljmp through the LDT", t_ljmp_ldt },
		{ "sidt and read the IDT", t_sidt_read },
		{ "sgdt and read the GDT", t_sgdt_read },
	};
	tag_t t = tag_new();
	struct trick *tk = smalloc(t, sizeof *tk);
	CHECK(tk != NULL, "smalloc");
	sc_t sc;
	sc_init(&sc);
	sc_sys_add(&sc, SYS_sched_yield);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	long master_pid = getpid();
	for (size_t i = 0; i < sizeof tricks / sizeof tricks[0]; i++) {
		memset(tk, 0, sizeof *tk);
		printf("cpu: trying %s\n", tricks[i].name);
		current = tricks[i].name;
		deadline(15);
		long r = join(run(&sc, tricks[i].f, tk));
		alarm(0);
		printf("cpu: %s: %ld (v %#lx %#lx %lu %lu)\n", tricks[i].name, r, tk->v[0], tk->v[1], tk->v[2], tk->v[3]);
		if (tricks[i].f == t_out_port && r == master_pid)
			ESCAPED("cpu: out to port 0x0d from ring 3 ran getpid in the host (%ld)", r);
		if (tricks[i].f == t_in_port && r == 7)
			ESCAPED("cpu: in from a runtime port worked in ring 3");
		if ((tricks[i].f == t_lret_kernel_cs || tricks[i].f == t_iret_kernel_cs) && r == 7)
			ESCAPED("cpu: %s returned: ring 3 reached the kernel code selector", tricks[i].name);
		if ((tricks[i].f == t_ljmp_tss || tricks[i].f == t_ljmp_ldt || tricks[i].f == t_swapgs || tricks[i].f == t_wrmsr || tricks[i].f == t_wrfsbase) && r == 7)
			ESCAPED("cpu: %s did not fault in ring 3", tricks[i].name);
		if ((tricks[i].f == t_sidt_read || tricks[i].f == t_sgdt_read) && tk->v[3])
			ESCAPED("cpu: %s: ring 3 read the table at %#lx (%#lx)", tricks[i].name, tk->v[1], tk->v[0]);
		if ((tricks[i].f == t_sidt_read || tricks[i].f == t_sgdt_read) && tk->v[2])
			printf("cpu: note: %s: no UMIP, ring 3 learns the runtime address %#lx\n", tricks[i].name, tk->v[1]);
	}
	/* The master still works, and so do sthreads. */
	sc_t plain;
	sc_init(&plain);
	CHECK(join(run(&plain, read_at, (void *)ro_page)) == 'R', "an sthread after the tricks");
}

/* ---- red-team round 2 ---- */

/* Reads what is in a non-blocking copy of `fd` until nothing comes for `ms`. */
static long drain_for(int fd, int ms)
{
	static char sink[64 * 1024];
	long got = 0;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, ms) <= 0)
			return got;
		long n = read(fd, sink, sizeof sink);
		if (n <= 0)
			return got;
		got += n;
	}
}

/* G1. sendto(MSG_DONTWAIT) on a granted pipe: the flag says "won't block" to the
 * runtime's check, but a pipe is not a socket and the call becomes write(). */
static void *sendto_dontwait(void *arg)
{
	static const char zeros[65536];
	return (void *)sendto((int)(long)arg, zeros, sizeof zeros, MSG_DONTWAIT, NULL, 0);
}

static void sendto_pipe(void)
{
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	static char fill[4096];
	CHECK(write(p[1], fill, sizeof fill) == sizeof fill, "fill");
	sc_t sc;
	sc_init(&sc);
	sc_fd_add(&sc, p[1], PROT_WRITE);
	CHECK(sc_sys_add(&sc, SYS_sendto) == 0, "grant sendto");
	current = "sendto(MSG_DONTWAIT) of 64 KiB to a pipe with 60 KiB free";
	deadline(10);
	sthread_t st = run(&sc, sendto_dontwait, (void *)(long)p[1]);
	alarm(0);
	long got = drain_for(p[0], 500);
	printf("sendto-pipe: drained %ld, the sthread's sendto gave %ld\n", got, join(st));
}

/* G2. write(2) to a granted eventfd: poll says writable (the counter is far from its
 * maximum), but adding 0xfffffffffffffffe to a counter of 1 waits for a reader. */
static void *eventfd_add_max(void *arg)
{
	uint64_t v = 0xfffffffffffffffeULL;
	return (void *)write((int)(long)arg, &v, sizeof v);
}

static void eventfd_overflow(void)
{
	int e = eventfd(1, 0);
	CHECK(e >= 0, "eventfd");
	sc_t sc;
	sc_init(&sc);
	sc_fd_add(&sc, e, PROT_WRITE);
	current = "write to an eventfd that would overflow";
	deadline(10);
	sthread_t st = run(&sc, eventfd_add_max, (void *)(long)e);
	alarm(0);
	uint64_t v;
	CHECK(read(e, &v, sizeof v) == sizeof v, "read the eventfd");
	printf("eventfd-write: the sthread's write gave %ld\n", join(st));
}

/* G3. write(2) of 64 KiB to a granted pty master with a little room: poll says
 * writable, the terminal layer waits until all of it is taken. */
static void *write_64k(void *arg)
{
	static const char zeros[65536];
	return (void *)write((int)(long)arg, zeros, sizeof zeros);
}

static void pty_write(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK(m >= 0, "posix_openpt");
	CHECK(grantpt(m) == 0 && unlockpt(m) == 0, "unlockpt");
	int s = open(ptsname(m), O_RDWR | O_NOCTTY | O_NONBLOCK);
	CHECK(s >= 0, "the slave");
	struct termios t;
	CHECK(tcgetattr(s, &t) == 0, "tcgetattr");
	cfmakeraw(&t);
	CHECK(tcsetattr(s, TCSANOW, &t) == 0, "tcsetattr");
	/* Fill it, then make a little room. */
	CHECK(fcntl(m, F_SETFL, O_NONBLOCK) == 0, "nonblock");
	static char fill[4096];
	long filled = 0;
	for (int i = 0; i < 100000; i++) {
		long n = write(m, fill, sizeof fill);
		if (n <= 0)
			break;
		filled += n;
	}
	long room = drain_for(s, 100);
	CHECK(fcntl(m, F_SETFL, 0) == 0, "blocking again");
	struct pollfd pp = { m, POLLOUT, 0 };
	poll(&pp, 1, 0);
	printf("pty-write: filled %ld, drained %ld, POLLOUT %d\n", filled, room, !!(pp.revents & POLLOUT));
	sc_t sc;
	sc_init(&sc);
	sc_fd_add(&sc, m, PROT_WRITE);
	current = "a 64 KiB write to a pty with less room";
	deadline(10);
	sthread_t st = run(&sc, write_64k, (void *)(long)m);
	alarm(0);
	long got = 0;
	for (int i = 0; i < 50; i++)
		got += drain_for(s, 100);
	printf("pty-write: drained %ld, the sthread's write gave %ld\n", got, join(st));
}

/* G4. Opening a terminal under a read-only directory grant: without O_NOCTTY it
 * becomes the controlling terminal of the master's session (a daemon's: a session
 * leader without one), whose hangup then sends the master SIGHUP. */
struct ptsarg { int dirfd; char name[32]; };

static void *open_tty(void *arg)
{
	struct ptsarg *a = arg;
	int fd = openat(a->dirfd, a->name, O_RDONLY);
	return (void *)(long)(fd < 0 ? -errno : fd);
}

static int have_ctty(void)
{
	int t = open("/dev/tty", O_RDONLY | O_NOCTTY);
	if (t < 0)
		return 0;
	close(t);
	return 1;
}

static void ctty_child(void)
{
	CHECK(setsid() > 0, "setsid: %s", strerror(errno));
	CHECK(sthread_init() == 0, "sthread_init");
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK(m >= 0, "posix_openpt");
	CHECK(grantpt(m) == 0 && unlockpt(m) == 0, "unlockpt");
	const char *name = ptsname(m);
	CHECK(name && !strncmp(name, "/dev/pts/", 9), "ptsname");
	tag_t tg = tag_new();
	struct ptsarg *a = smalloc(tg, sizeof *a);
	CHECK(a != NULL, "smalloc");
	a->dirfd = open("/dev/pts", O_DIRECTORY | O_RDONLY);
	CHECK(a->dirfd >= 0, "/dev/pts");
	snprintf(a->name, sizeof a->name, "%s", name + 9);
	int before = have_ctty();
	sc_t sc;
	sc_init(&sc);
	sc_fd_add(&sc, a->dirfd, PROT_READ);
	sc_sys_add(&sc, SYS_openat);
	sc_mem_add(&sc, tg, PROT_READ);
	long r = join(run(&sc, open_tty, a));
	int after = have_ctty();
	printf("ctty: the sthread's open of %s gave %ld; controlling terminal before %d, after %d\n", name, r, before, after);
	if (!before && after)
		ESCAPED("ctty: an sthread's read-only open made %s the controlling terminal of the master's session", name);
	fflush(stdout);
	/* The master is done with the terminal. */
	close(m);
	usleep(300 * 1000);
	printf("ctty: the master lives after closing the terminal\n");
	exit(escaped ? 1 : 0);
}

static void ctty(void)
{
	pid_t c = fork();
	CHECK(c >= 0, "fork");
	if (c == 0)
		ctty_child();
	int status;
	CHECK(waitpid(c, &status, 0) == c, "waitpid");
	if (WIFSIGNALED(status))
		ESCAPED("ctty: the master was killed by signal %d (%s) after an sthread opened a terminal", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status) != 0)
		escaped++;
}

/* G5. The TLS copy holds the master's stack-protector canary and pointer guard
 * (fs:0x28, fs:0x30 in glibc's TCB): secrets the master's hardening rests on. */
static void *read_guard(void *arg)
{
	unsigned long v;
	if (arg)
		__asm__ volatile("mov %%fs:0x30, %0" : "=r"(v));
	else
		__asm__ volatile("mov %%fs:0x28, %0" : "=r"(v));
	return (void *)v;
}

static void tls_guards(void)
{
	unsigned long canary, pguard;
	__asm__ volatile("mov %%fs:0x28, %0; mov %%fs:0x30, %1" : "=r"(canary), "=r"(pguard));
	sc_t sc;
	sc_init(&sc);
	unsigned long c = (unsigned long)join(run(&sc, read_guard, NULL));
	unsigned long p = (unsigned long)join(run(&sc, read_guard, (void *)1));
	if (canary && c == canary)
		ESCAPED("tls-guards: the sthread read the master's stack-protector canary (%#lx)", c);
	if (pguard && p == pguard)
		ESCAPED("tls-guards: the sthread read the master's pointer guard (%#lx)", p);
}

/* G6. A write-only grant of a socket: shutdown(SHUT_RD) takes the master's reading
 * side away (and the peer's writes fail). */
static void *shut_read(void *arg)
{
	return (void *)(long)shutdown((int)(long)arg, SHUT_RD);
}

static void shutdown_rd(void)
{
	int s[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0, "socketpair");
	sc_t sc;
	sc_init(&sc);
	sc_fd_add(&sc, s[0], PROT_WRITE);
	sc_sys_add(&sc, SYS_shutdown);
	long r = join(run(&sc, shut_read, (void *)(long)s[0]));
	long w = write(s[1], "hello", 5);
	char buf[8];
	long n = recv(s[0], buf, sizeof buf, MSG_DONTWAIT);
	printf("shutdown-rd: shutdown gave %ld; the peer's write %ld, the master's read %ld\n", r, w, n);
	if (r == 0 && (w < 0 || n == 0))
		ESCAPED("shutdown-rd: a write-only grant shut the master's reading side of its socket (write %ld, read %ld)", w, n);
}

/* G7. clock_gettime with a clock id that names something not granted: the CPU clock
 * of another thread of the master, and a dynamic (descriptor) clock. */
struct clockarg { long id; long sec, nsec; };

static void *read_clock(void *arg)
{
	struct clockarg *a = arg;
	struct timespec ts = { 0, 0 };
	long r = syscall(SYS_clock_gettime, a->id, &ts);
	a->sec = ts.tv_sec;
	a->nsec = ts.tv_nsec;
	return (void *)r;
}

static volatile int worker_tid, worker_stop;

static void *busy_worker(void *arg)
{
	(void)arg;
	worker_tid = (int)syscall(SYS_gettid);
	struct timespec t0, t1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	do
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	while ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) < 300000000L);
	while (!worker_stop)
		usleep(10 * 1000);
	return NULL;
}

static void cpu_clock(void)
{
	pthread_t th;
	CHECK(pthread_create(&th, NULL, busy_worker, NULL) == 0, "pthread_create");
	for (int i = 0; i < 500 && !worker_tid; i++)
		usleep(10 * 1000);
	usleep(600 * 1000);
	tag_t t = tag_new();
	struct clockarg *a = smalloc(t, sizeof *a);
	CHECK(a != NULL, "smalloc");
	sc_t sc;
	sc_init(&sc);
	sc_sys_add(&sc, SYS_clock_gettime);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	/* MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED) */
	a->id = ((long)~worker_tid << 3) | 4 | 2;
	long r = join(run(&sc, read_clock, a));
	printf("cpu-clock: the worker %d's CPU clock from the sthread: %ld, %ld.%09lds\n", worker_tid, r, a->sec, a->nsec);
	if (r == 0 && (a->sec > 0 || a->nsec > 100000000L))
		ESCAPED("cpu-clock: an sthread read the CPU time of the master's thread %d (%ld.%09lds)", worker_tid, a->sec, a->nsec);
	worker_stop = 1;
	pthread_join(th, NULL);
	/* A PTP clock the master holds, not granted. */
	DIR *d = opendir("/dev");
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, "ptp", 3)) {
			char path[300];
			snprintf(path, sizeof path, "/dev/%.250s", e->d_name);
			int fd = open(path, O_RDONLY);
			if (fd < 0)
				continue;
			a->id = ((long)~fd << 3) | 3; /* FD_TO_CLOCKID */
			r = join(run(&sc, read_clock, a));
			printf("cpu-clock: %s (fd %d, not granted) from the sthread: %ld\n", path, fd, r);
			if (r == 0)
				ESCAPED("cpu-clock: an sthread read the master's PTP clock descriptor %d, not granted", fd);
			close(fd);
			break;
		}
	if (d)
		closedir(d);
}

/* G8. A master run as a background job of a terminal (a server started with `&`)
 * grants its terminal for reading: the sthread's read raises SIGTTIN for the master's
 * process group, which stops the master (the runtime holds back SIGPIPE and SIGXFSZ,
 * not the job-control signals). */
static void *read_one(void *arg)
{
	char c;
	return (void *)read((int)(long)arg, &c, 1);
}

static void sigttin_master(int tty)
{
	CHECK(sthread_init() == 0, "sthread_init");
	printf("sigttin: the master is pid %d, pgrp %d; the terminal's foreground %d\n", getpid(), getpgrp(), tcgetpgrp(tty));
	sc_t sc;
	sc_init(&sc);
	sc_fd_add(&sc, tty, PROT_READ);
	long r = join(run(&sc, read_one, (void *)(long)tty));
	printf("sigttin: the sthread's read gave %ld; the master runs on\n", r);
	exit(0);
}

static void sigttin_shell(void)
{
	CHECK(setsid() > 0, "setsid");
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0, "pty");
	int tty = open(ptsname(m), O_RDWR); /* the session's controlling terminal */
	CHECK(tty >= 0 && have_ctty(), "controlling terminal");
	CHECK(write(m, "typed\n", 6) == 6, "input");
	pid_t c = fork();
	CHECK(c >= 0, "fork");
	if (c == 0) {
		setpgid(0, 0);
		sigttin_master(tty);
	}
	setpgid(c, c);
	int status = 0;
	signal(SIGALRM, SIG_IGN);
	struct timespec wait = { 0, 100 * 1000 * 1000 };
	int done = 0;
	for (int i = 0; i < 150 && !done; i++) {
		pid_t w = waitpid(c, &status, WUNTRACED | WNOHANG);
		if (w == c)
			done = 1;
		else
			nanosleep(&wait, NULL);
	}
	if (!done) {
		printf("sigttin: the master neither ended nor stopped\n");
		kill(c, SIGKILL);
		exit(1);
	}
	if (WIFSTOPPED(status)) {
		ESCAPED("sigttin: an sthread's read of the granted terminal stopped the master (signal %d, %s)", WSTOPSIG(status), strsignal(WSTOPSIG(status)));
		kill(c, SIGKILL);
		waitpid(c, &status, 0);
		exit(1);
	}
	exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

static void sigttin(void)
{
	pid_t c = fork();
	CHECK(c >= 0, "fork");
	if (c == 0)
		sigttin_shell();
	int status;
	CHECK(waitpid(c, &status, 0) == c, "waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		escaped++;
}

/* G9. Buffers the kernel fills, aimed at tag memory granted read-only or
 * copy-on-write: read(2), fstat, clock_gettime and getrandom must not write the
 * master's pages, and the next use of the compartment sees the master's bytes. */
struct cowarg { int fd, which; char *target; };

static void *fill_target(void *arg)
{
	struct cowarg *a = arg;
	struct timespec ts;
	switch (a->which) {
	case 0: return (void *)read(a->fd, a->target, 16);
	case 1: return (void *)(long)syscall(SYS_fstat, a->fd, a->target);
	case 2: return (void *)(long)syscall(SYS_clock_gettime, CLOCK_REALTIME, a->target);
	case 3: return (void *)(long)syscall(SYS_getrandom, a->target, 16, 0);
	default: memcpy(&ts, a->target, sizeof ts); return (void *)(long)(a->target[0] == 'O');
	}
}

static void cow_syscall(void)
{
	tag_t data = tag_new(), args = tag_new();
	char *target = smalloc(data, 4096);
	struct cowarg *a = smalloc(args, sizeof *a);
	CHECK(target && a, "smalloc");
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	const char *names[] = { "read", "fstat", "clock_gettime", "getrandom" };
	for (int prot = 0; prot < 2; prot++)
		for (int which = 0; which < 4; which++) {
			memset(target, 'O', 4096);
			CHECK(write(p[1], "XXXXXXXXXXXXXXXX", 16) == 16, "pipe data");
			sc_t sc;
			sc_init(&sc);
			sc_mem_add(&sc, data, prot ? (PROT_READ | SC_PROT_COW) : PROT_READ);
			sc_mem_add(&sc, args, PROT_READ);
			sc_fd_add(&sc, p[0], PROT_READ);
			sc_sys_add(&sc, SYS_fstat);
			sc_sys_add(&sc, SYS_clock_gettime);
			sc_sys_add(&sc, SYS_getrandom);
			a->fd = p[0];
			a->which = which;
			a->target = target;
			long r = join(run(&sc, fill_target, a));
			int changed = 0;
			for (int i = 0; i < 144; i++)
				changed += target[i] != 'O';
			if (changed)
				ESCAPED("cow-syscall: %s through a %s grant changed %d bytes of the master's tag (%ld)", names[which], prot ? "copy-on-write" : "read-only", changed, r);
			/* The next use of the same compartment sees the master's bytes. */
			a->which = 9;
			long again = join(run(&sc, fill_target, a));
			if (again != 1)
				ESCAPED("cow-syscall: after %s (%s), the next sthread saw %ld, not the master's bytes", names[which], prot ? "copy-on-write" : "read-only", again);
			drain_for(p[0], 0);
			sc_destroy(&sc);
		}
}


/* ---- red-team round 3 ---- */

/* H1. mmap(MAP_FIXED) over a read-only page the compartments share interrupts no
 * ring-3 session (only munmap, mprotect, mremap and shmdt do): a running sthread
 * keeps its leaf of the page and reads what the master maps there; and a system call
 * naming a page it never touched is checked against the read-only ranges as they
 * were before the change (calls are handled before the ranges are looked at again),
 * so ring 0 copies the master's new page for it. */
static const char fixed_pages[2][4096] __attribute__((aligned(4096))) = { "RODATA-FIXED-ONE", "RODATA-FIXED-TWO" };

struct fixed_watch { volatile const char *page; const char *untouched; volatile int started, go; int pipefd; int changed; char orig[16]; char seen[32]; long wrote; };

static void *watch_fixed(void *arg)
{
	struct fixed_watch *w = arg;
	char c = w->page[0]; /* the leaf, mapped while the page is shared */
	(void)c;
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	syscall(SYS_nanosleep, &ts, NULL); /* on a thread of its own from here on */
	/* The handoff rebuilt the table: touch libc's syscall() again now, so the call
	 * below traps straight into the handler (a first-touch fault would look at the
	 * ranges again first). */
	syscall(SYS_write, w->pipefd, w->orig, 0);
	w->started = 1;
	while (!w->go) {
		if (!w->changed)
			for (int i = 0; i < 8; i++)
				if (w->page[i] != w->orig[i]) {
					for (int k = 0; k < 31; k++)
						w->seen[k] = w->page[k];
					w->changed = 1;
					break;
				}
		__asm__ volatile("pause");
	}
	/* A page it never touched, handed to ring 0 to copy. */
	w->wrote = syscall(SYS_write, w->pipefd, w->untouched, 32);
	return (void *)1;
}

static void remap_fixed(void)
{
	tag_t t = tag_new();
	struct fixed_watch *w = smalloc(t, sizeof *w);
	CHECK(w != NULL, "smalloc");
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	sc_t sc;
	sc_init(&sc);
	sc_sys_add(&sc, SYS_nanosleep);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	sc_fd_add(&sc, p[1], PROT_WRITE);
	memset(w, 0, sizeof *w);
	w->page = fixed_pages[0];
	w->untouched = fixed_pages[1];
	w->pipefd = p[1];
	memcpy(w->orig, fixed_pages[0], 8);
	sthread_t st = run(&sc, watch_fixed, w);
	for (int i = 0; i < 300 && !w->started; i++)
		usleep(10 * 1000);
	CHECK(w->started, "the watcher never started");
	usleep(100 * 1000);
	/* The master replaces both pages with data of its own (MAP_FIXED: no munmap). */
	char *m = mmap((void *)fixed_pages, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(m == (char *)fixed_pages, "mmap MAP_FIXED");
	strcpy(m, "MASTER-SECRET-AFTER-MAP-FIXED");
	strcpy(m + 4096, "MASTER-SECRET-OF-PAGE-TWO");
	usleep(500 * 1000);
	w->go = 1;
	current = "remap-fixed";
	deadline(20);
	long r = join(st);
	alarm(0);
	if (w->changed && strstr(w->seen, "MASTER-SECRET"))
		ESCAPED("remap-fixed: a running sthread read what the master mapped with MAP_FIXED over a shared read-only page (%.29s)", w->seen);
	char buf[64] = { 0 };
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	long n = read(p[0], buf, 32);
	if (n > 0 && strstr(buf, "MASTER-SECRET"))
		ESCAPED("remap-fixed: write() of a page the sthread never touched copied the master's MAP_FIXED data out (%.25s)", buf);
	printf("remap-fixed: %ld, leaf saw %.29s, write %ld gave %.25s\n", r, w->changed ? w->seen : "(nothing new)", w->wrote, n > 0 ? buf : "(nothing)");
}

/* H2/H3. Pages of a loaded object's read-only range that the master fills after
 * sthread_init: made writable, written and read-only again (the map shows the same
 * file at the same offset), or a System V segment attached over it with SHM_REMAP
 * (no change of the map is recorded at all). New sthreads read what the master
 * wrote. */
static const char sealed_page[4096] __attribute__((aligned(4096))) = "RODATA-SEALED";
static const char shm_page[4096] __attribute__((aligned(4096))) = "RODATA-SHM";

struct copy_req { const char *src; char out[32]; };

static void *copy_page(void *arg)
{
	struct copy_req *q = arg;
	for (int k = 0; k < 31; k++)
		q->out[k] = q->src[k];
	return (void *)1;
}

static void sealed_ranges(int use_shm)
{
	const char *page = use_shm ? shm_page : sealed_page;
	const char *secret = use_shm ? "MASTER-SECRET-IN-SYSV-SHM" : "MASTER-SECRET-SEALED-AFTER-INIT";
	tag_t t = tag_new();
	struct copy_req *q = smalloc(t, sizeof *q);
	CHECK(q != NULL, "smalloc");
	if (use_shm) {
		int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
		CHECK(id >= 0, "shmget: %s", strerror(errno));
		char *m = shmat(id, page, SHM_REMAP);
		CHECK(m == page, "shmat SHM_REMAP: %s", strerror(errno));
		strcpy(m, secret);
		shmctl(id, IPC_RMID, NULL);
	} else {
		CHECK(mprotect((void *)page, 4096, PROT_READ | PROT_WRITE) == 0, "mprotect rw");
		strcpy((char *)(uintptr_t)page, secret);
		CHECK(mprotect((void *)page, 4096, PROT_READ) == 0, "mprotect r");
	}
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	memset(q, 0, sizeof *q);
	q->src = page;
	long r = join(run(&sc, copy_page, q));
	if (r == 1 && strstr(q->out, "MASTER-SECRET"))
		ESCAPED("%s: a new sthread read what the master wrote after sthread_init into a read-only range (%.31s)", use_shm ? "shm-remap" : "reseal", q->out);
	printf("%s: %ld, read %.31s\n", use_shm ? "shm-remap" : "reseal", r, r == 1 ? q->out : "(ended)");
}

/* H4. The pointer guard (fs:0x30) the TLS copy hides is in the snapshot anyway:
 * glibc mangles every exit handler it keeps (PTR_MANGLE: xor with the guard, rotate
 * left 17), and the list lives in libc's writable data, copied at sthread_init. One
 * handler whose address the sthread knows (here one the program registered; always,
 * ld.so's _dl_fini) gives the guard away. */
#define GUARD_MAGIC 0x5eed5eed1dea5a17UL
extern int __cxa_atexit(void (*)(void *), void *, void *);
static void guard_handler(void *a)
{
	(void)a;
}

struct guard_leak { unsigned long libc_fn, handler, found, guard; };

static void *find_guard(void *arg)
{
	struct guard_leak *l = arg;
	/* libc's ELF header: the first page of its read-only range, below its code. */
	unsigned long base = l->libc_fn & ~4095UL;
	while (!(((const char *)base)[0] == 0x7f && ((const char *)base)[1] == 'E' && ((const char *)base)[2] == 'L' && ((const char *)base)[3] == 'F'))
		base -= 4096;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_W))
			continue;
		const unsigned long *lo = (const unsigned long *)((base + ph[i].p_vaddr + 7) & ~7UL);
		const unsigned long *hi = (const unsigned long *)((base + ph[i].p_vaddr + ph[i].p_memsz) & ~7UL);
		/* struct exit_function: flavor (ef_cxa = 4), fn (mangled), arg, dso_handle. */
		for (const unsigned long *w = lo + 2; w < hi; w++)
			if (w[0] == GUARD_MAGIC && w[-2] == 4) {
				unsigned long m = w[-1];
				l->guard = ((m >> 17) | (m << 47)) ^ l->handler;
				l->found++;
			}
	}
	return (void *)1;
}

static void guard_leak(void)
{
	unsigned long pguard;
	__asm__ volatile("mov %%fs:0x30, %0" : "=r"(pguard));
	tag_t t = tag_new();
	struct guard_leak *l = smalloc(t, sizeof *l);
	CHECK(l != NULL, "smalloc");
	memset(l, 0, sizeof *l);
	l->libc_fn = (unsigned long)dlsym(RTLD_DEFAULT, "puts");
	l->handler = (unsigned long)guard_handler;
	CHECK(l->libc_fn != 0, "dlsym puts");
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	long r = join(run(&sc, find_guard, l));
	if (r == 1 && l->found && pguard && l->guard == pguard)
		ESCAPED("guard-leak: the sthread computed the master's pointer guard (%#lx) from the exit handlers in its snapshot", l->guard);
	printf("guard-leak: %ld, %lu handler(s) found, guard %s\n", r, l->found, l->found ? (l->guard == pguard ? "is the master's" : "differs") : "unknown");
}

/* H5. The time slice is the vCPU's one-shot APIC timer, and an interrupt that arrives
 * while ring 0 runs is acknowledged and dropped: if it fires while ring 0 handles the
 * sthread's system calls (or page faults) on the master's thread, nothing is left to
 * end the computing that follows. */
static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void *storm_then_compute(void *arg)
{
	long faults = (long)arg;
	struct timespec t0;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t0);
	if (faults) {
		/* Ring 0 time through first touches of stack pages, 600 KiB deep. */
		volatile char deep[600 * 1024];
		for (long i = sizeof deep - 4096; i >= 0; i -= 4096)
			deep[i] = 1;
		(void)deep[0];
	}
	while (ms_since(&t0) < 300)
		;
	/* Then computes for 20 s, with a system call now and then. */
	while (ms_since(&t0) < 20000)
		for (volatile int i = 0; i < 20000; i++)
			;
	return (void *)2;
}

static void slice_ring0(void)
{
	sc_t sc;
	sc_init(&sc);
	sc_sys_add(&sc, SYS_clock_gettime);
	for (long faults = 0; faults < 2; faults++) {
		current = faults ? "slice-ring0 (page faults)" : "slice-ring0 (system calls)";
		deadline(10);
		sthread_t st = run(&sc, storm_then_compute, (void *)faults);
		alarm(0);
		printf("slice-ring0 %ld: sthread_create returned (%d)\n", faults, st);
	}
}


/* ---- red-team round 4 ---- */

/* R4-1. remangle() re-mangles only words that demangle to a mapped address: a jump
 * buffer's mangled RBP holds whatever RBP was (0 or a small integer in code built
 * without frame pointers), so PTR_MANGLE(0) = rol(guard, 17) stays in the copied .bss
 * and hands the sthread the master's pointer guard directly. */
jmp_buf r4_jb;
void r4_setjmp_rbp0(void);
__asm__(".text\n.globl r4_setjmp_rbp0\n.type r4_setjmp_rbp0,@function\nr4_setjmp_rbp0:\n"
	"\tpush %rbp\n\txor %ebp, %ebp\n\tlea r4_jb(%rip), %rdi\n\tcall _setjmp@PLT\n\tpop %rbp\n\tret\n"
	".size r4_setjmp_rbp0, .-r4_setjmp_rbp0\n");

struct r4_guard { unsigned long guard; };

static void *r4_read_jmpbuf(void *arg)
{
	struct r4_guard *g = arg;
	unsigned long w = ((volatile unsigned long *)r4_jb)[1]; /* JB_RBP */
	g->guard = (w >> 17) | (w << 47);
	return (void *)1;
}

static void guard_jmpbuf(void)
{
	unsigned long pguard;
	__asm__ volatile("mov %%fs:0x30, %0" : "=r"(pguard));
	tag_t t = tag_new();
	struct r4_guard *g = smalloc(t, sizeof *g);
	CHECK(g != NULL, "smalloc");
	memset(g, 0, sizeof *g);
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	long r = join(run(&sc, r4_read_jmpbuf, g));
	if (r == 1 && pguard && g->guard == pguard)
		ESCAPED("guard-jmpbuf: the sthread read the master's pointer guard (%#lx) from a jmp_buf's mangled RBP in its snapshot", g->guard);
	printf("guard-jmpbuf: %ld, guard %s\n", r, g->guard == pguard ? "is the master's" : "differs");
}

/* R4-2. A read-only page of the image written through /proc/self/mem (FOLL_FORCE:
 * the kernel copies it on write, the map does not change and no map change is
 * recorded): a new sthread reads what the master wrote there. */
static const char poked_page[4096] __attribute__((aligned(4096))) = "RODATA-POKED";

static void procmem_poke(void)
{
	tag_t t = tag_new();
	struct copy_req *q = smalloc(t, sizeof *q);
	CHECK(q != NULL, "smalloc");
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	/* One use before: the compartment is pooled, the page shared. */
	memset(q, 0, sizeof *q);
	q->src = poked_page;
	long r0 = join(run(&sc, copy_page, q));
	int fd = open("/proc/self/mem", O_RDWR);
	CHECK(fd >= 0, "/proc/self/mem: %s", strerror(errno));
	const char secret[] = "MASTER-SECRET-POKED-AFTER-INIT";
	long w = pwrite(fd, secret, sizeof secret, (off_t)(uintptr_t)poked_page);
	close(fd);
	CHECK(w == (long)sizeof secret, "pwrite /proc/self/mem: %ld %s", w, strerror(errno));
	memset(q, 0, sizeof *q);
	q->src = poked_page;
	long r = join(run(&sc, copy_page, q));
	if (r == 1 && strstr(q->out, "MASTER-SECRET"))
		ESCAPED("procmem-poke: a new sthread read what the master wrote through /proc/self/mem into a read-only range (%.31s)", q->out);
	printf("procmem-poke: %ld/%ld, read %.31s\n", r0, r, r == 1 ? q->out : "(ended)");
}

/* R4-3. A read-only page of the image made writable, filled and made read-only again
 * before sthread_init (a text relocation, a key sealed in place): at init the map
 * shows the file at the same offset and the page is shared, although it is the
 * master's private memory (pagemap would say so). */
static const char early_page[4096] __attribute__((aligned(4096))) = "RODATA-EARLY";

static void reseal_early_setup(void)
{
	CHECK(mprotect((void *)early_page, 4096, PROT_READ | PROT_WRITE) == 0, "mprotect rw");
	strcpy((char *)(uintptr_t)early_page, "MASTER-SECRET-SEALED-BEFORE-INIT");
	CHECK(mprotect((void *)early_page, 4096, PROT_READ) == 0, "mprotect r");
}

static void reseal_early(void)
{
	tag_t t = tag_new();
	struct copy_req *q = smalloc(t, sizeof *q);
	CHECK(q != NULL, "smalloc");
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	memset(q, 0, sizeof *q);
	q->src = early_page;
	long r = join(run(&sc, copy_page, q));
	if (r == 1 && strstr(q->out, "MASTER-SECRET"))
		ESCAPED("reseal-early: an sthread read what the master sealed read-only in its image before sthread_init (%.31s)", q->out);
	printf("reseal-early: %ld, read %.31s\n", r, r == 1 ? q->out : "(ended)");
}

/* R4-4. Poll, then read: a pipe that poll says readable is read on the master's
 * thread, but another reader of the same pipe (an sthread on a thread of its own)
 * can take the byte between the two; the read then waits on the master's thread
 * until someone writes again. */
static void *r4_thief(void *arg)
{
	int fd = (int)(long)arg;
	char c;
	for (;;)
		if (read(fd, &c, 1) <= 0)
			return (void *)0;
}

struct r4_pipe { int r, w; };

static int r4_feed_fd, r4_feed_stop;

static void *r4_feed(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&r4_feed_stop, __ATOMIC_SEQ_CST)) {
		if (write(r4_feed_fd, "y", 1) < 0) {}
		usleep(500);
	}
	return NULL;
}

static void *r4_victim(void *arg)
{
	struct r4_pipe *p = arg;
	char c = 'x';
	struct timespec t0;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t0);
	for (long i = 0;; i++) {
		if ((i & 63) == 0 && ms_since(&t0) > 300)
			return (void *)1;
		if (write(p->w, &c, 1) != 1)
			return (void *)2;
		/* A delay that sweeps the thief's wake-up across the poll-read window. */
		for (volatile long k = 0; k < (i * 7) % 3000; k++) {}
		if (read(p->r, &c, 1) <= 0)
			return (void *)0;
	}
}

static void race_read(void)
{
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	tag_t t = tag_new();
	struct r4_pipe *a = smalloc(t, sizeof *a);
	CHECK(a != NULL, "smalloc");
	a->r = p[0];
	a->w = p[1];
	sc_t sc, tsc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ);
	sc_fd_add(&sc, p[0], PROT_READ);
	sc_fd_add(&sc, p[1], PROT_WRITE);
	CHECK(sc_sys_add(&sc, SYS_clock_gettime) == 0, "grant clock_gettime");
	sc_init(&tsc);
	sc_fd_add(&tsc, p[0], PROT_READ);
	sthread_t ts[4];
	for (int i = 0; i < 4; i++)
		ts[i] = run(&tsc, r4_thief, (void *)(long)p[0]);
	static sthread_t vs[400];
	int nv = 0;
	struct timespec t0;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t0);
	while (nv < 400 && ms_since(&t0) < 6000) {
		static char what[160];
		snprintf(what, sizeof what, "race-read: sthread_create of victim %d (%ld ms in) did not return: its pipe read waits on the master's thread", nv, ms_since(&t0));
		current = what;
		deadline(10);
		vs[nv++] = run(&sc, r4_victim, a);
		alarm(0);
	}
	/* Victims left waiting on threads of their own (their byte taken) get bytes
	 * until every one has ended. */
	current = "race-read: joins";
	r4_feed_fd = p[1];
	pthread_t feeder;
	CHECK(pthread_create(&feeder, NULL, r4_feed, NULL) == 0, "feeder");
	deadline(30);
	for (int i = 0; i < nv; i++)
		join(vs[i]);
	__atomic_store_n(&r4_feed_stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(feeder, NULL);
	close(p[1]);
	for (int i = 0; i < 4; i++)
		join(ts[i]);
	alarm(0);
	printf("race-read: %d victims, the master's thread came back every time\n", nv);
}

/* R4-5. The same race on a socket, made likely on one CPU: recv(MSG_WAITALL) on the
 * master's thread is judged by FIONREAD, then made blocking. A thief on a thread of
 * its own (it computed past the time slice) takes queued bytes with MSG_DONTWAIT
 * whenever the host scheduler runs it, which is whenever it preempts the master's
 * thread, also between the FIONREAD and the recv. */
struct r4_sock { int r, w; volatile int stop; };

static void *r4_sock_thief(void *arg)
{
	struct r4_sock *k = arg;
	char buf[64];
	struct timespec t0;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t0);
	while (ms_since(&t0) < 80) {} /* past the slice: a thread of its own */
	while (!k->stop) {
		for (volatile int i = 0; i < 200; i++) {}
		recvfrom(k->r, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL);
	}
	return (void *)1;
}

static void *r4_sock_victim(void *arg)
{
	struct r4_sock *k = arg;
	char c = 'x';
	struct timespec t0;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t0);
	for (long i = 0;; i++) {
		if ((i & 15) == 0 && ms_since(&t0) > 300)
			return (void *)1;
		if (write(k->w, &c, 1) != 1)
			return (void *)2;
		if (recvfrom(k->r, &c, 1, MSG_WAITALL, NULL, NULL) <= 0)
			return (void *)0;
	}
}

static void race_waitall(int thieves)
{
	int s[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0, "socketpair");
	tag_t t = tag_new();
	struct r4_sock *k = smalloc(t, sizeof *k);
	CHECK(k != NULL, "smalloc");
	k->r = s[1];
	k->w = s[0];
	k->stop = 0;
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	sc_fd_add(&sc, s[1], PROT_READ);
	sc_fd_add(&sc, s[0], PROT_WRITE);
	CHECK(sc_sys_add(&sc, SYS_clock_gettime) == 0 && sc_sys_add(&sc, SYS_recvfrom) == 0, "grants");
	sthread_t ts[2];
	for (int i = 0; i < thieves; i++)
		ts[i] = run(&sc, r4_sock_thief, k);
	static sthread_t vs[400];
	int nv = 0;
	struct timespec t0;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t0);
	while (nv < 400 && ms_since(&t0) < 8000) {
		static char what[180];
		snprintf(what, sizeof what, "race-waitall: sthread_create of victim %d (%ld ms in) did not return: its recv(MSG_WAITALL) waits on the master's thread", nv, ms_since(&t0));
		current = what;
		deadline(10);
		vs[nv++] = run(&sc, r4_sock_victim, k);
		alarm(0);
	}
	current = "race-waitall: joins";
	r4_feed_fd = s[0];
	pthread_t feeder;
	CHECK(pthread_create(&feeder, NULL, r4_feed, NULL) == 0, "feeder");
	deadline(30);
	for (int i = 0; i < nv; i++)
		join(vs[i]);
	k->stop = 1;
	for (int i = 0; i < thieves; i++)
		join(ts[i]);
	__atomic_store_n(&r4_feed_stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(feeder, NULL);
	alarm(0);
	printf("race-waitall: %d victims, the master's thread came back every time\n", nv);
}

/* R4-6. open(O_ASYNC) of a terminal: open_checked opens non-blocking, then sets the
 * flags back with F_SETFL, O_ASYNC among them; for a tty that turns on SIGIO with the
 * calling process (the master) as owner. Input on the terminal then sends the master
 * SIGIO, whose default action ends it. Here only a read-only grant of /dev/pts. */
struct r4_tty { int dir; char name[32]; int fd; };

static void *r4_open_async(void *arg)
{
	struct r4_tty *k = arg;
	int fd = openat(k->dir, k->name, O_RDONLY | O_ASYNC);
	k->fd = fd;
	if (fd < 0)
		return (void *)2;
	char c;
	if (read(fd, &c, 1) < 0) {} /* waits (on a thread of its own) with the file open */
	return (void *)1;
}

static void on_sigio(int sig)
{
	(void)sig;
	static const char m[] = "ESCAPED: tty-async: the master got SIGIO (default action: terminate) from a terminal an sthread opened with O_ASYNC\n";
	if (write(1, m, sizeof m - 1) < 0) {}
	_exit(4);
}

static void tty_async(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0, "pty: %s", strerror(errno));
	const char *name = ptsname(m);
	CHECK(name && !strncmp(name, "/dev/pts/", 9), "ptsname");
	int dir = open("/dev/pts", O_RDONLY | O_DIRECTORY);
	CHECK(dir >= 0, "/dev/pts: %s", strerror(errno));
	tag_t t = tag_new();
	struct r4_tty *k = smalloc(t, sizeof *k);
	CHECK(k != NULL, "smalloc");
	memset(k, 0, sizeof *k);
	k->dir = dir;
	snprintf(k->name, sizeof k->name, "%s", name + 9);
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	sc_fd_add(&sc, dir, PROT_READ);
	CHECK(sc_sys_add(&sc, SYS_openat) == 0, "grant openat");
	/* The master keeps SIGIO's default (terminate); the handler only reports it. */
	signal(SIGIO, on_sigio);
	deadline(10);
	sthread_t st = run(&sc, r4_open_async, k);
	alarm(0);
	usleep(200 * 1000);
	printf("tty-async: the sthread opened %s as %d; input arrives\n", name, k->fd);
	CHECK(write(m, "x\n", 2) == 2, "pty write");
	usleep(300 * 1000);
	deadline(10);
	long r = join(st);
	alarm(0);
	printf("tty-async: %ld, no SIGIO for the master\n", r);
}

/* R4-7. FIONREAD of an AF_UNIX stream socket counts an out-of-band byte, which a
 * recv without MSG_OOB drops: with only that byte queued, FIONREAD says 1 and
 * recv(MSG_WAITALL) of 1 byte waits on the master's thread. No race. */
struct r4_oob { int r, w; };

static void *r4_oob_waitall(void *arg)
{
	struct r4_oob *k = arg;
	char c = 'B';
	if (sendto(k->w, &c, 1, MSG_OOB, NULL, 0) != 1)
		return (void *)2;
	if (recvfrom(k->r, &c, 1, MSG_WAITALL, NULL, NULL) < 0)
		return (void *)3;
	return (void *)1;
}

static void unix_oob(void)
{
	int s[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0, "socketpair");
	tag_t t = tag_new();
	struct r4_oob *k = smalloc(t, sizeof *k);
	CHECK(k != NULL, "smalloc");
	k->r = s[1];
	k->w = s[0];
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ);
	sc_fd_add(&sc, s[1], PROT_READ);
	sc_fd_add(&sc, s[0], PROT_WRITE);
	CHECK(sc_sys_add(&sc, SYS_recvfrom) == 0 && sc_sys_add(&sc, SYS_sendto) == 0, "grants");
	current = "unix-oob: recv(MSG_WAITALL) after an out-of-band byte waits on the master's thread";
	deadline(10);
	sthread_t st = run(&sc, r4_oob_waitall, k);
	alarm(0);
	CHECK(write(s[0], "z", 1) == 1, "unblock");
	deadline(10);
	long r = join(st);
	alarm(0);
	printf("unix-oob: %ld, the master's thread came back\n", r);
}


/* ---- red-team round 5 ---- */

/* R5-1. remangle() re-mangles a copied word only when it demangles (with the master's
 * guard) to a mapped address or a number below 0x10000. A jump buffer's mangled RBP
 * holds whatever RBP held at setjmp: in code built without frame pointers any integer
 * (-1 as "none", a count, a length). An sthread that knows that value computes the
 * master's pointer guard from the copy: guard = ror(word, 17) ^ value. */
jmp_buf r5_jb_m1, r5_jb_n;
void r5_setjmp_rbp(void);
__asm__(".text\n.globl r5_setjmp_rbp\n.type r5_setjmp_rbp,@function\nr5_setjmp_rbp:\n"
	"\tpush %rbp\n\tmov $-1, %rbp\n\tlea r5_jb_m1(%rip), %rdi\n\tcall _setjmp@PLT\n"
	"\tmov $1000000, %ebp\n\tlea r5_jb_n(%rip), %rdi\n\tcall _setjmp@PLT\n\tpop %rbp\n\tret\n"
	".size r5_setjmp_rbp, .-r5_setjmp_rbp\n");

struct r5_guard { unsigned long g1, g2; };

static void *r5_read_rbp(void *arg)
{
	struct r5_guard *g = arg;
	unsigned long w1 = ((volatile unsigned long *)r5_jb_m1)[1], w2 = ((volatile unsigned long *)r5_jb_n)[1];
	g->g1 = ((w1 >> 17) | (w1 << 47)) ^ ~0UL;
	g->g2 = ((w2 >> 17) | (w2 << 47)) ^ 1000000UL;
	return (void *)1;
}

static void guard_rbp(void)
{
	unsigned long pguard;
	__asm__ volatile("mov %%fs:0x30, %0" : "=r"(pguard));
	tag_t t = tag_new();
	struct r5_guard *g = smalloc(t, sizeof *g);
	CHECK(g != NULL, "smalloc");
	memset(g, 0, sizeof *g);
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	long r = join(run(&sc, r5_read_rbp, g));
	if (r == 1 && pguard && (g->g1 == pguard || g->g2 == pguard))
		ESCAPED("guard-rbp: the sthread computed the master's pointer guard (%#lx) from a jmp_buf whose RBP held a known non-pointer (-1 or 1000000)", pguard);
	printf("guard-rbp: %ld, guesses %s/%s\n", r, g->g1 == pguard ? "the master's" : "differ", g->g2 == pguard ? "the master's" : "differ");
}

/* R5-2. SIGPIPE is held back around pipe writes, and taken back only when the write
 * failed with EPIPE. A long write on the sthread's own thread that blocks part-way and
 * then loses its reader returns the bytes written so far, with SIGPIPE raised for the
 * thread: once the mask is restored, the default action ends the whole process. */
struct r5_big { int fd; char *buf; };

static void *r5_big_write(void *arg)
{
	struct r5_big *b = arg;
	return (void *)(long)write(b->fd, b->buf, 65536);
}

static void sigpipe_partial_master(void)
{
	signal(SIGPIPE, SIG_DFL);
	CHECK(sthread_init() == 0, "sthread_init");
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096, "F_SETPIPE_SZ: %s", strerror(errno));
	tag_t t = tag_new();
	struct r5_big *b = smalloc(t, sizeof *b);
	char *buf = smalloc(t, 65536);
	CHECK(b && buf, "smalloc");
	memset(buf, 'p', 65536);
	b->fd = p[1];
	b->buf = buf;
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ);
	sc_fd_add(&sc, p[1], PROT_WRITE);
	sthread_t st = run(&sc, r5_big_write, b);
	usleep(300 * 1000);
	close(p[0]); /* the client went away */
	usleep(300 * 1000);
	long r = join(st);
	printf("sigpipe-partial: the sthread's write gave %ld; the master runs on\n", r);
	exit(0);
}

static void sigpipe_partial(void)
{
	pid_t c = fork();
	CHECK(c >= 0, "fork");
	if (c == 0)
		sigpipe_partial_master();
	int status;
	CHECK(waitpid(c, &status, 0) == c, "waitpid");
	if (WIFSIGNALED(status))
		ESCAPED("sigpipe-partial: the master died of signal %d (%s) raised by an sthread's partial pipe write", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		escaped++;
}

/* R5-3. Round 4's poll-then-read race, on a terminal: a pty does not take
 * RWF_NOWAIT (EOPNOTSUPP), so a read on the master's thread is judged by poll and
 * then made blocking; another reader of the same terminal (sthreads on threads of
 * their own) takes the byte in between and the master's thread waits. */
struct r5_tty { int m, s; };

/* A reader that is mostly not waiting in read(): bytes sit readable for a while (poll
 * says ready), and its next read lands at any moment, also between a poll and a read. */
static void *r5_tty_thief(void *arg)
{
	int fd = (int)(long)arg;
	char c;
	struct timespec nap = { 0, 20 * 1000 };
	for (;;) {
		syscall(SYS_nanosleep, &nap, NULL);
		if (read(fd, &c, 1) <= 0)
			return (void *)0;
	}
}

static void *r5_tty_victim(void *arg)
{
	struct r5_tty *p = arg;
	char c = 'x';
	struct timespec t0;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t0);
	for (long i = 0;; i++) {
		if ((i & 63) == 0 && ms_since(&t0) > 300)
			return (void *)1;
		if (write(p->m, &c, 1) != 1)
			return (void *)2;
		for (volatile long k = 0; k < (i * 7) % 3000; k++) {}
		if (read(p->s, &c, 1) <= 0)
			return (void *)0;
	}
}

static void tty_race(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0, "pty");
	int s = open(ptsname(m), O_RDWR | O_NOCTTY);
	CHECK(s >= 0, "pts");
	struct termios tio;
	CHECK(tcgetattr(s, &tio) == 0, "tcgetattr");
	cfmakeraw(&tio);
	CHECK(tcsetattr(s, TCSANOW, &tio) == 0, "tcsetattr");
	/* The master side is non-blocking: writing it on the master's thread is allowed. */
	CHECK(fcntl(m, F_SETFL, O_NONBLOCK) == 0, "nonblock");
	tag_t t = tag_new();
	struct r5_tty *a = smalloc(t, sizeof *a);
	CHECK(a != NULL, "smalloc");
	a->m = m;
	a->s = s;
	sc_t sc, tsc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ);
	sc_fd_add(&sc, s, PROT_READ);
	sc_fd_add(&sc, m, PROT_WRITE);
	CHECK(sc_sys_add(&sc, SYS_clock_gettime) == 0, "grant clock_gettime");
	sc_init(&tsc);
	sc_fd_add(&tsc, s, PROT_READ);
	CHECK(sc_sys_add(&tsc, SYS_nanosleep) == 0, "grant nanosleep");
	sthread_t ts[4];
	for (int i = 0; i < 4; i++)
		ts[i] = run(&tsc, r5_tty_thief, (void *)(long)s);
	static sthread_t vs[400];
	int nv = 0;
	struct timespec t0;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t0);
	while (nv < 400 && ms_since(&t0) < 6000) {
		static char what[160];
		snprintf(what, sizeof what, "tty-race: sthread_create of victim %d (%ld ms in) did not return: its terminal read waits on the master's thread", nv, ms_since(&t0));
		current = what;
		deadline(10);
		vs[nv++] = run(&sc, r5_tty_victim, a);
		alarm(0);
	}
	current = "tty-race: joins";
	r4_feed_fd = m;
	pthread_t feeder;
	CHECK(pthread_create(&feeder, NULL, r4_feed, NULL) == 0, "feeder");
	deadline(30);
	for (int i = 0; i < nv; i++)
		join(vs[i]);
	__atomic_store_n(&r4_feed_stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(feeder, NULL);
	close(m); /* hangup: the thieves' reads end */
	for (int i = 0; i < 4; i++)
		join(ts[i]);
	alarm(0);
	printf("tty-race: %d victims, the master's thread came back every time\n", nv);
}

/* R5-4. Compartments read shared pages through a MAP_SHARED alias of the library's
 * file, from ring 0 (Compartment::fault, pgroot_pa). An sthread granted a directory
 * for writing, in which the master loaded a library (plugins next to their data),
 * truncates that file and touches the library's code: ring 0 reads a page beyond the
 * file's end, SIGBUS, and the master dies. */
struct r5_trunc { int dir; char name[32]; const volatile char *code; };

static void *r5_truncate_then_touch(void *arg)
{
	struct r5_trunc *k = arg;
	int fd = openat(k->dir, k->name, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return (void *)2;
	close(fd);
	return (void *)(long)(k->code[0] + 1000);
}

static void alias_sigbus_master(void)
{
	static const char *paths[] = { "/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib64/libz.so.1", "/lib64/libz.so.1", "/usr/lib/libz.so.1" };
	int in = -1;
	for (unsigned i = 0; i < sizeof paths / sizeof *paths && in < 0; i++)
		in = open(paths[i], O_RDONLY);
	CHECK(in >= 0, "libz.so.1 not found");
	char dir[] = "/tmp/r5-plugins-XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	char path[64];
	snprintf(path, sizeof path, "%s/libr5.so", dir);
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(out >= 0, "copy");
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		CHECK(write(out, buf, n) == n, "copy write");
	close(in);
	close(out);
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	CHECK(h != NULL, "dlopen %s: %s", path, dlerror());
	const char *code = dlsym(h, "deflateInit2_");
	CHECK(code != NULL, "dlsym");
	CHECK(sthread_init() == 0, "sthread_init");
	int d = open(dir, O_RDONLY | O_DIRECTORY);
	CHECK(d >= 0, "dir");
	tag_t t = tag_new();
	struct r5_trunc *k = smalloc(t, sizeof *k);
	CHECK(k != NULL, "smalloc");
	k->dir = d;
	snprintf(k->name, sizeof k->name, "libr5.so");
	k->code = code;
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ);
	sc_fd_add(&sc, d, PROT_READ | PROT_WRITE);
	CHECK(sc_sys_add(&sc, SYS_openat) == 0, "grant openat");
	long r = join(run(&sc, r5_truncate_then_touch, k));
	printf("alias-sigbus: the sthread gave %ld; the master runs on\n", r);
	/* The master itself must not touch the cut library now: its destructors (run
	 * by exit) lie past the file's end, and natively exit() dies of SIGBUS there
	 * too. What this attack asks is whether the sthread's touch ends the master. */
	unlink(path);
	rmdir(dir);
	fflush(stdout);
	_exit(0);
}

static void alias_sigbus(void)
{
	pid_t c = fork();
	CHECK(c >= 0, "fork");
	if (c == 0)
		alias_sigbus_master();
	int status;
	CHECK(waitpid(c, &status, 0) == c, "waitpid");
	if (WIFSIGNALED(status))
		ESCAPED("alias-sigbus: the master died of signal %d (%s) after an sthread truncated a loaded library and touched its code", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("alias-sigbus: the master exited with %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		escaped++;
	}
}

/* R5-5. Round 4's race, on the writing side: a pipe write on the master's thread is
 * judged by poll (POLLOUT: a free page, at most PIPE_BUF bytes) and then made
 * blocking (no RWF_NOWAIT there). Another writer (an sthread on a thread of its own,
 * blocked in a long write) fills the free page between the two; the sthreads' own
 * reader has stopped, so the master's thread waits for ever. */
struct r5_pw { int r, w; volatile int stop, done; char *buf; };

static void *r5_filler(void *arg)
{
	struct r5_pw *k = arg;
	while (!k->done)
		if (write(k->w, k->buf, 4096) < 0)
			return (void *)2;
	return (void *)1;
}

static void *r5_drainer(void *arg)
{
	struct r5_pw *k = arg;
	char b[4096];
	struct timespec nap = { 0, 50 * 1000 };
	for (;;) {
		while (k->stop)
			syscall(SYS_nanosleep, &nap, NULL);
		if (read(k->r, b, sizeof b) <= 0)
			return (void *)1;
	}
}

static void *r5_pw_victim(void *arg)
{
	struct r5_pw *k = arg;
	k->stop = 1;
	char c = 'v';
	return (void *)(long)write(k->w, &c, 1);
}

static void pipe_write_race(void)
{
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096, "F_SETPIPE_SZ");
	tag_t t = tag_new();
	struct r5_pw *k = smalloc(t, sizeof *k);
	char *buf = smalloc(t, 4096);
	CHECK(k && buf, "smalloc");
	memset(buf, 'f', 4096);
	k->r = p[0];
	k->w = p[1];
	k->stop = 0;
	k->done = 0;
	k->buf = buf;
	sc_t fsc, dsc, vsc;
	sc_init(&fsc);
	sc_mem_add(&fsc, t, PROT_READ);
	sc_fd_add(&fsc, p[1], PROT_WRITE);
	sc_init(&dsc);
	sc_mem_add(&dsc, t, PROT_READ);
	sc_fd_add(&dsc, p[0], PROT_READ);
	CHECK(sc_sys_add(&dsc, SYS_nanosleep) == 0, "grant nanosleep");
	sc_init(&vsc);
	sc_mem_add(&vsc, t, PROT_READ | PROT_WRITE);
	sc_fd_add(&vsc, p[1], PROT_WRITE);
	sthread_t fs[2], ds = run(&dsc, r5_drainer, k);
	for (int i = 0; i < 2; i++)
		fs[i] = run(&fsc, r5_filler, k);
	static sthread_t vs[2000];
	int nv = 0;
	struct timespec t0;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t0);
	while (nv < 2000 && ms_since(&t0) < 6000) {
		static char what[160];
		snprintf(what, sizeof what, "pipe-write-race: sthread_create of victim %d (%ld ms in) did not return: its pipe write waits on the master's thread", nv, ms_since(&t0));
		current = what;
		deadline(10);
		vs[nv++] = run(&vsc, r5_pw_victim, k);
		alarm(0);
		k->stop = 0;
		usleep(200);
	}
	current = "pipe-write-race: joins";
	deadline(30);
	k->stop = 0;
	for (int i = 0; i < nv; i++)
		join(vs[i]);
	k->done = 1;
	for (int i = 0; i < 2; i++)
		join(fs[i]);
	close(p[1]);
	join(ds);
	alarm(0);
	printf("pipe-write-race: %d victims, the master's thread came back every time\n", nv);
}

/* R5-6. Round 4's /proc/self/mem fix needs an alias of the file, opened by the name
 * /proc/self/maps shows and checked by device and inode. A library loaded from a
 * directory where that check fails (no alias: the master's own mapping is used) is
 * shared as before: a write through /proc/self/mem after init reaches new sthreads. */
static const char *r5_poked;

static void procmem_lib_setup(void)
{
	static const char *paths[] = { "/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib64/libz.so.1", "/lib64/libz.so.1", "/usr/lib/libz.so.1" };
	int in = -1;
	for (unsigned i = 0; i < sizeof paths / sizeof *paths && in < 0; i++)
		in = open(paths[i], O_RDONLY);
	CHECK(in >= 0, "libz.so.1 not found");
	static char dir[] = "/tmp/r5-lib-XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	char path[64];
	snprintf(path, sizeof path, "%s/libr5z.so", dir);
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(out >= 0, "copy");
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		CHECK(write(out, buf, n) == n, "copy write");
	close(in);
	close(out);
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	CHECK(h != NULL, "dlopen %s: %s", path, dlerror());
	const char *(*version)(void) = (const char *(*)(void))dlsym(h, "zlibVersion");
	CHECK(version != NULL, "dlsym");
	r5_poked = version();
	FILE *m = fopen("/proc/self/maps", "r");
	char line[512];
	while (m && fgets(line, sizeof line, m))
		if (strstr(line, "libr5z"))
			printf("procmem-lib: maps: %s", line);
	if (m)
		fclose(m);
	struct stat st;
	CHECK(stat(path, &st) == 0, "stat");
	printf("procmem-lib: stat dev %02x:%02x inode %lu\n", major(st.st_dev), minor(st.st_dev), (unsigned long)st.st_ino);
}

static void procmem_lib(void)
{
	tag_t t = tag_new();
	struct copy_req *q = smalloc(t, sizeof *q);
	CHECK(q != NULL, "smalloc");
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	memset(q, 0, sizeof *q);
	q->src = r5_poked;
	long r0 = join(run(&sc, copy_page, q));
	printf("procmem-lib: before: %.31s\n", r0 == 1 ? q->out : "(ended)");
	int fd = open("/proc/self/mem", O_RDWR);
	CHECK(fd >= 0, "/proc/self/mem: %s", strerror(errno));
	const char secret[] = "MASTER-SECRET-POKED-IN-A-LIB";
	long w = pwrite(fd, secret, sizeof secret, (off_t)(uintptr_t)r5_poked);
	close(fd);
	CHECK(w == (long)sizeof secret, "pwrite /proc/self/mem: %ld %s", w, strerror(errno));
	memset(q, 0, sizeof *q);
	q->src = r5_poked;
	long r = join(run(&sc, copy_page, q));
	if (r == 1 && strstr(q->out, "MASTER-SECRET"))
		ESCAPED("procmem-lib: a new sthread read what the master wrote through /proc/self/mem into a library's read-only data (%.31s)", q->out);
	printf("procmem-lib: %ld/%ld, read %.31s\n", r0, r, r == 1 ? q->out : "(ended)");
}


/* ---- red-team round 6 ---- */

/* R6-1. MSG_ZEROCOPY through a granted TCP socket. The library copies the sthread's
 * bytes into a bounce buffer on the master's heap and passes the sthread's flags on to
 * send(). With SO_ZEROCOPY on the socket (a master that uses zero-copy sends itself),
 * MSG_ZEROCOPY makes the kernel pin the bounce buffer's pages and send from them
 * later: what the peer's closed window keeps queued is read from the master's heap
 * when it goes out, after the buffer was freed and reused by the master. */
struct r6_zc {
	int fd;
	long sent;
	long err;
};

static void *r6_zc_send(void *arg)
{
	struct r6_zc *z = arg;
	char buf[16384];
	memset(buf, 'Z', sizeof buf);
	long total = 0;
	for (int i = 0; i < 3; i++) {
		long r = syscall(SYS_sendto, z->fd, buf, sizeof buf, MSG_ZEROCOPY | MSG_DONTWAIT, NULL, 0);
		if (r < 0) {
			z->err = errno;
			break;
		}
		total += r;
	}
	z->sent = total;
	return (void *)1;
}

static void zerocopy_leak(void)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(l >= 0, "socket");
	int small = 2048;
	setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0 && getsockname(l, (struct sockaddr *)&a, &al) == 0, "bind/listen: %s", strerror(errno));
	int c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(c >= 0, "socket");
	int one = 1, big = 1 << 20;
	if (setsockopt(c, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one) != 0) {
		printf("zerocopy: SO_ZEROCOPY not available here (%s): nothing to try\n", strerror(errno));
		return;
	}
	setsockopt(c, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));
	int s = accept(l, NULL, NULL);
	CHECK(s >= 0, "accept");
	tag_t t = tag_new();
	struct r6_zc *z = smalloc(t, sizeof *z);
	CHECK(z != NULL, "smalloc");
	memset(z, 0, sizeof *z);
	z->fd = c;
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	sc_fd_add(&sc, c, PROT_WRITE);
	CHECK(sc_sys_add(&sc, SYS_sendto) == 0, "grant sendto");
	deadline(20);
	long r = join(run(&sc, r6_zc_send, z));
	printf("zerocopy: the sthread ended with %ld, sent %ld bytes (errno %ld)\n", r, z->sent, z->err);
	/* The master goes on using its heap: secrets in freshly allocated buffers. */
	static const char secret[] = "MASTER-HEAP-SECRET:";
	char *bufs[96];
	for (int i = 0; i < 96; i++) {
		bufs[i] = malloc(16384 + 16 * (i % 4));
		CHECK(bufs[i] != NULL, "malloc");
		for (size_t k = 0; k + sizeof secret - 1 <= 16384; k += sizeof secret - 1)
			memcpy(bufs[i] + k, secret, sizeof secret - 1);
	}
	/* The peer reads: the window opens and the queued data goes out now. */
	CHECK(fcntl(s, F_SETFL, O_NONBLOCK) == 0, "nonblock");
	static char got[1 << 18];
	long n = 0;
	for (;;) {
		struct pollfd p = { s, POLLIN, 0 };
		if (poll(&p, 1, 300) <= 0)
			break;
		long k = read(s, got + n, sizeof got - (size_t)n);
		if (k <= 0)
			break;
		n += k;
		if (n == (long)sizeof got)
			break;
	}
	alarm(0);
	long zs = 0, other = 0;
	for (long i = 0; i < n; i++) {
		if (got[i] == 'Z')
			zs++;
		else
			other++;
	}
	printf("zerocopy: the peer read %ld bytes: %ld 'Z', %ld other\n", n, zs, other);
	if (n > 0 && memmem(got, (size_t)n, "MASTER-HEAP", 11))
		ESCAPED("zerocopy: the sthread's MSG_ZEROCOPY send delivered the master's heap (MASTER-HEAP-SECRET) to its socket's peer");
	else if (other)
		ESCAPED("zerocopy: the peer received %ld bytes the sthread never wrote (the master's reused heap)", other);
	for (int i = 0; i < 96; i++)
		free(bufs[i]);
	close(s);
	close(c);
	close(l);
}

/* ---- red-team round 7 ---- */

/* R7-1. Vector and general registers: what an sthread finds at its entry (the
 * master's XMM/YMM registers before sthread_create, a previous use's), and what a
 * caller finds after a callgate returns (the gate's key left in its registers). */
struct r7_regs {
	unsigned long avx;          /* 0: read the upper halves of the YMM registers too */
	unsigned char x[16][32];    /* 8: xmm/ymm 0..15 (low 16 bytes, then the upper 16) */
	unsigned long g[9];         /* 520: rcx rdx rsi rdi r8 r9 r10 r11 rbx */
	unsigned long entry;        /* 592: the callgate the caller calls */
};

struct r7_key {
	unsigned long key;
	unsigned long avx;
};

#define R7_XSTORE \
	".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\tmovdqu %xmm\\i, 8+32*\\i(%rbx)\n\t.endr\n" \
	"\tcmpq $0, (%rbx)\n\tje 9f\n" \
	".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\tvextractf128 $1, %ymm\\i, 24+32*\\i(%rbx)\n\t.endr\n" \
	"9:\n"

/* An sthread body: its registers at entry, into *arg, first thing. */
__asm__(".text\n.globl r7_read_regs\n.type r7_read_regs,@function\nr7_read_regs:\n"
	"\tmov %rcx, 520(%rdi)\n\tmov %rdx, 528(%rdi)\n\tmov %rsi, 536(%rdi)\n\tmov %rdi, 544(%rdi)\n"
	"\tmov %r8, 552(%rdi)\n\tmov %r9, 560(%rdi)\n\tmov %r10, 568(%rdi)\n\tmov %r11, 576(%rdi)\n\tmov %rbx, 584(%rdi)\n"
	"\tpush %rbx\n\tmov %rdi, %rbx\n" R7_XSTORE
	"\tpop %rbx\n\txor %eax, %eax\n\tret\n");

/* Calls the callgate at 592(arg) with a raw syscall and stores every register it
 * comes back with. */
__asm__(".text\n.globl r7_gate_caller\n.type r7_gate_caller,@function\nr7_gate_caller:\n"
	"\tpush %rbx\n\tmov %rdi, %rbx\n\tmov 592(%rbx), %rdi\n\txor %esi, %esi\n\txor %edx, %edx\n"
	"\tmov $0x57440001, %eax\n\tsyscall\n"
	"\tmov %rcx, 520(%rbx)\n\tmov %rdx, 528(%rbx)\n\tmov %rsi, 536(%rbx)\n\tmov %rdi, 544(%rbx)\n"
	"\tmov %r8, 552(%rbx)\n\tmov %r9, 560(%rbx)\n\tmov %r10, 568(%rbx)\n\tmov %r11, 576(%rbx)\n"
	R7_XSTORE
	"\tpop %rbx\n\txor %eax, %eax\n\tret\n");

/* Fills every vector register and the scratch registers with the key at (rdi)
 * (the upper YMM halves too when 8(rdi) says so), and returns 0 without touching
 * them again. A callgate's or an sthread's body. */
__asm__(".text\n.globl r7_fill\n.type r7_fill,@function\n.globl r7_gate_fill\nr7_gate_fill:\nr7_fill:\n"
	"\tmov 8(%rdi), %r8\n\tmov (%rdi), %rax\n\tmovq %rax, %xmm0\n\tpunpcklqdq %xmm0, %xmm0\n"
	"\ttest %r8, %r8\n\tjz 1f\n\tvinsertf128 $1, %xmm0, %ymm0, %ymm0\n"
	".irp i,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\tvmovaps %ymm0, %ymm\\i\n\t.endr\n\tjmp 2f\n"
	"1:\n.irp i,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\tmovaps %xmm0, %xmm\\i\n\t.endr\n"
	"2:\n\tmov %rax, %rcx\n\tmov %rax, %rdx\n\tmov %rax, %rsi\n\tmov %rax, %r8\n\tmov %rax, %r9\n"
	"\tmov %rax, %r10\n\tmov %rax, %r11\n\tmov %rax, %rdi\n\txor %eax, %eax\n\tret\n");

void *r7_read_regs(void *);
void *r7_gate_caller(void *);
void *r7_fill(void *);
void *r7_gate_fill(void *, void *);

/* The master's own registers, filled right before sthread_create. */
static void __attribute__((noinline)) r7_master_fill(const struct r7_key *k)
{
	__asm__ volatile("mov %0, %%rdi\n\tcall r7_fill" :: "r"(k) : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory");
}

/* How many 8-byte words of the registers hold `key`. */
static int r7_hits(const struct r7_regs *r, unsigned long key, char *where, size_t wlen)
{
	int n = 0;
	where[0] = 0;
	for (int i = 0; i < 16; i++)
		for (int w = 0; w < 4; w++) {
			unsigned long v;
			memcpy(&v, r->x[i] + 8 * w, 8);
			if (v == key) {
				if (!n)
					snprintf(where, wlen, "%s%d word %d", w >= 2 ? "ymm" : "xmm", i, w);
				n++;
			}
		}
	static const char *gn[9] = { "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "rbx" };
	for (int i = 0; i < 9; i++)
		if (r->g[i] == key) {
			if (!n)
				snprintf(where, wlen, "%s", gn[i]);
			n++;
		}
	return n;
}

static void r7_vector_regs(void)
{
	int avx = __builtin_cpu_supports("avx");
	unsigned long rnd;
	CHECK(syscall(SYS_getrandom, &rnd, sizeof rnd, 0) == sizeof rnd, "getrandom");
	char where[64];
	tag_t t = tag_new();
	struct r7_regs *r = smalloc(t, sizeof *r);
	struct r7_key *prev = smalloc(t, sizeof *prev);
	CHECK(r && prev, "smalloc");
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	printf("vregs: AVX %s\n", avx ? "on" : "off");

	/* (a) The master's registers at the sthread's entry. */
	static struct r7_key mk;
	mk.key = (rnd | 1) ^ 0x4d41535445520000UL;
	mk.avx = avx;
	memset(r, 0, sizeof *r);
	r->avx = avx;
	r7_master_fill(&mk);
	sthread_t st;
	int rc = sthread_create(&st, &sc, r7_read_regs, r);
	CHECK(rc == 0, "create");
	long v = join(st);
	int n = r7_hits(r, mk.key, where, sizeof where);
	printf("vregs: master's key in %d words at the sthread's entry (ret %ld)\n", n, v);
	if (n)
		ESCAPED("vregs: the sthread read the master's register contents at its entry (%s)", where);

	/* (b) A previous use's registers (the same memory grants: the pooled compartment). */
	prev->key = (rnd * 3) ^ 0x5052455600000000UL;
	prev->avx = avx;
	CHECK(join(run(&sc, r7_fill, prev)) == 0, "fill sthread");
	unsigned long pk = prev->key;
	prev->key = 0;
	memset(r, 0, sizeof *r);
	r->avx = avx;
	v = join(run(&sc, r7_read_regs, r));
	n = r7_hits(r, pk, where, sizeof where);
	printf("vregs: previous use's key in %d words at entry (ret %ld)\n", n, v);
	if (n)
		ESCAPED("vregs: the next sthread read the previous one's registers (%s)", where);

	/* (c) A callgate's key left in its registers when it returns to its caller. */
	tag_t k = tag_new();
	struct r7_key *gk = smalloc(k, sizeof *gk);
	CHECK(gk != NULL, "smalloc");
	gk->key = (rnd * 5) ^ 0x4741544500000000UL;
	gk->avx = avx;
	sc_t gsc;
	sc_init(&gsc);
	sc_mem_add(&gsc, k, PROT_READ);
	sc_t csc;
	sc_init(&csc);
	sc_mem_add(&csc, t, PROT_READ | PROT_WRITE);
	CHECK(sc_cgate_add(&csc, r7_gate_fill, &gsc, gk) == 0, "cgate");
	memset(r, 0, sizeof *r);
	r->avx = avx;
	r->entry = (unsigned long)r7_gate_fill;
	v = join(run(&csc, r7_gate_caller, r));
	n = r7_hits(r, gk->key, where, sizeof where);
	printf("vregs: the gate's key in %d words of its caller's registers (ret %ld)\n", n, v);
	if (n)
		ESCAPED("vregs: a callgate's caller read the gate's secret from the registers it returned with (%s)", where);
	if (v < -1000 + 1 || v != 0)
		printf("vregs: note: the caller ended with %ld\n", v);
}

/* R7-2. Odd exceptions and instructions from ring 3: each must end the sthread alone
 * (or run harmlessly), and the master and the next sthread carry on. */
TRICK(r7_de, { __asm__ volatile("xor %%ecx, %%ecx\n\txor %%edx, %%edx\n\tmov $1, %%eax\n\tdiv %%ecx" ::: "rax", "rcx", "rdx"); })
TRICK(r7_int3, { __asm__ volatile("int3"); })
TRICK(r7_int1, { __asm__ volatile("int $1"); })
TRICK(r7_int2, { __asm__ volatile("int $2"); })
TRICK(r7_int4, { __asm__ volatile("int $4"); })
TRICK(r7_int8, { __asm__ volatile("int $8"); })
TRICK(r7_int12, { __asm__ volatile("int $0x12"); })
TRICK(r7_int20, { __asm__ volatile("int $0x20"); })
TRICK(r7_int80, { __asm__ volatile("int $0x80" :: "a"(39)); })
TRICK(r7_intff, { __asm__ volatile("int $0xff"); })
TRICK(r7_intef, { __asm__ volatile("int $0xef"); })
TRICK(r7_intf1, { __asm__ volatile("int $0xf1"); })
TRICK(r7_ac, { unsigned long b[2] = { 0, 0 }; unsigned long x;
	__asm__ volatile("pushfq\n\torq $0x40000, (%%rsp)\n\tpopfq\n\tmov 1(%1), %0\n\tpushfq\n\tandq $~0x40000, (%%rsp)\n\tpopfq" : "=r"(x) : "r"(b) : "memory", "cc"); tk->v[0] = x; })
TRICK(r7_tf, { __asm__ volatile("pushfq\n\torq $0x100, (%%rsp)\n\tpopfq\n\tnop\n\tnop\n\tpushfq\n\tandq $~0x100, (%%rsp)\n\tpopfq" ::: "memory", "cc"); })
TRICK(r7_dr7, { unsigned long x; __asm__ volatile("mov %%db7, %0" : "=r"(x)); tk->v[0] = x; })
TRICK(r7_wdr0, { __asm__ volatile("mov %0, %%db0" :: "r"(0UL)); })
TRICK(r7_hlt, { __asm__ volatile("hlt"); })
TRICK(r7_cli, { __asm__ volatile("cli"); })
TRICK(r7_xm, { unsigned mx = 0; float a = 1, z = 0; __asm__ volatile("ldmxcsr %1\n\tdivss %2, %0" : "+x"(a) : "m"(mx), "x"(z)); tk->v[0] = (unsigned long)a; })
TRICK(r7_mf, { unsigned short cw = 0x0340; __asm__ volatile("fldcw %0\n\tfldz\n\tfld1\n\tfdivp\n\tfwait\n\tfstp %%st(0)" :: "m"(cw)); })
/* An x87 exception left pending across a system call: ring 0 runs with it. */
TRICK(r7_mf_pending, { unsigned short cw = 0x0340; __asm__ volatile("fldcw %0\n\tfldz\n\tfld1\n\tfdivp" :: "m"(cw)); syscall(SYS_sched_yield); syscall(SYS_sched_yield); })
/* MXCSR with every exception unmasked and DAZ/FTZ/round-up across system calls. */
TRICK(r7_mxcsr_calls, { unsigned mx = 0xe040 & ~0x1f80u; __asm__ volatile("ldmxcsr %0" :: "m"(mx)); for (int i = 0; i < 50; i++) syscall(SYS_sched_yield); })
TRICK(r7_vmcall, { unsigned long r = 39; __asm__ volatile("vmcall" : "+a"(r) :: "memory"); tk->v[0] = r; })
TRICK(r7_vmmcall, { unsigned long r = 39; __asm__ volatile("vmmcall" : "+a"(r) :: "memory"); tk->v[0] = r; })
TRICK(r7_invlpg, { __asm__ volatile("invlpg (%0)" :: "r"(tk) : "memory"); })
TRICK(r7_wbinvd, { __asm__ volatile("wbinvd"); })
TRICK(r7_clts, { __asm__ volatile("clts"); })
TRICK(r7_movcr3, { unsigned long x; __asm__ volatile("mov %%cr3, %0" : "=r"(x)); tk->v[0] = x; })
TRICK(r7_lds_kernel, { __asm__ volatile("mov %0, %%ds" :: "r"(0x10)); })
TRICK(r7_xsaves, { static char buf[8192] __attribute__((aligned(64))); __asm__ volatile("xsaves (%0)" :: "r"(buf), "a"(-1), "d"(-1) : "memory"); })
TRICK(r7_fxrstor_bad, { static unsigned char img[512] __attribute__((aligned(16))); memset(img, 0, sizeof img); img[27] = 0xff; __asm__ volatile("fxrstor64 (%0)" :: "r"(img)); })
TRICK(r7_sysret, { __asm__ volatile("sysretq"); })
TRICK(r7_leaky, { unsigned long a = 0, b = 0, c = 0, d = 0; unsigned aux = 0;
	__asm__ volatile("sldt %0" : "=r"(a)); __asm__ volatile("str %0" : "=r"(b)); __asm__ volatile("smsw %0" : "=r"(c));
	__asm__ volatile("rdtscp" : "=a"(d), "=c"(aux) :: "rdx");
	tk->v[0] = a; tk->v[1] = b; tk->v[2] = c; tk->v[3] = aux; })
TRICK(r7_rdpid, { unsigned long p = 0; __asm__ volatile("rdpid %0" : "=r"(p)); tk->v[0] = p; })
TRICK(r7_cpuid, { unsigned a, b, c, d; __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0)); tk->v[0] = c; })

static void r7_exceptions(void)
{
	struct { const char *name; stcb_t f; } tricks[] = {
		{ "#DE", r7_de }, { "int3", r7_int3 }, { "int 1", r7_int1 }, { "int 2 (NMI)", r7_int2 }, { "int 4", r7_int4 },
		{ "int 8 (#DF)", r7_int8 }, { "int 0x12 (#MC)", r7_int12 }, { "int 0x20", r7_int20 }, { "int 0x80", r7_int80 },
		{ "int 0xff", r7_intff }, { "int 0xef", r7_intef }, { "int 0xf1", r7_intf1 }, { "#AC with RFLAGS.AC", r7_ac },
		{ "TF single-step", r7_tf }, { "mov dr7", r7_dr7 }, { "mov to dr0", r7_wdr0 }, { "hlt", r7_hlt }, { "cli", r7_cli },
		{ "#XM unmasked", r7_xm }, { "#MF x87", r7_mf }, { "x87 exception pending over calls", r7_mf_pending },
		{ "MXCSR unmasked over calls", r7_mxcsr_calls }, { "vmcall", r7_vmcall }, { "vmmcall", r7_vmmcall },
		{ "invlpg", r7_invlpg }, { "wbinvd", r7_wbinvd }, { "clts", r7_clts }, { "mov cr3", r7_movcr3 },
		{ "mov ds, kernel data", r7_lds_kernel }, { "xsaves", r7_xsaves }, { "fxrstor bad MXCSR", r7_fxrstor_bad },
		{ "sysretq", r7_sysret }, { "sldt/str/smsw/rdtscp", r7_leaky }, { "rdpid", r7_rdpid }, { "cpuid", r7_cpuid },
	};
	tag_t t = tag_new();
	struct trick *tk = smalloc(t, sizeof *tk);
	CHECK(tk != NULL, "smalloc");
	sc_t sc;
	sc_init(&sc);
	sc_sys_add(&sc, SYS_sched_yield);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	unsigned mx0, mx1;
	unsigned short cw0, cw1;
	__asm__ volatile("stmxcsr %0; fnstcw %1" : "=m"(mx0), "=m"(cw0));
	volatile double acc = 1.0;
	for (size_t i = 0; i < sizeof tricks / sizeof tricks[0]; i++) {
		memset(tk, 0, sizeof *tk);
		current = tricks[i].name;
		deadline(20);
		long r = join(run(&sc, tricks[i].f, tk));
		alarm(0);
		printf("exc: %s: %ld (v %#lx %#lx %#lx %#lx)\n", tricks[i].name, r, tk->v[0], tk->v[1], tk->v[2], tk->v[3]);
		if ((tricks[i].f == r7_hlt || tricks[i].f == r7_cli || tricks[i].f == r7_dr7 || tricks[i].f == r7_wdr0 || tricks[i].f == r7_movcr3 ||
		     tricks[i].f == r7_clts || tricks[i].f == r7_wbinvd || tricks[i].f == r7_invlpg || tricks[i].f == r7_xsaves || tricks[i].f == r7_lds_kernel) && r == 7)
			ESCAPED("exc: %s ran in ring 3", tricks[i].name);
		if ((tricks[i].f == r7_vmcall || tricks[i].f == r7_vmmcall) && r == 7 && tk->v[0] == (unsigned long)getpid())
			ESCAPED("exc: %s from ring 3 ran getpid in the host", tricks[i].name);
		if (tricks[i].f == r7_int80 && r == 7)
			printf("exc: note: int 0x80 returned in ring 3\n");
		/* The master's floating point after each. */
		acc = acc * 3.0 / 3.0 + 0.1 - 0.1;
		__asm__ volatile("stmxcsr %0; fnstcw %1" : "=m"(mx1), "=m"(cw1));
		/* Control bits only: the sum above sets the master's own precision flag. */
		if ((mx1 & ~0x3fu) != (mx0 & ~0x3fu) || cw1 != cw0)
			ESCAPED("exc: after %s the master's MXCSR %#x->%#x, FCW %#x->%#x", tricks[i].name, mx0, mx1, cw0, cw1);
		unsigned long fl;
		__asm__ volatile("pushfq; pop %0" : "=r"(fl));
		if (fl & 0x40500)
			ESCAPED("exc: after %s the master runs with RFLAGS %#lx (AC/DF/TF)", tricks[i].name, fl);
	}
	sc_t plain;
	sc_init(&plain);
	CHECK(join(run(&plain, read_at, (void *)ro_page)) == 'R', "an sthread after the exceptions");
}

/* R7-3. openat flags and paths beneath a directory granted read-only: nothing may be
 * created, truncated, written or reached outside it. Each try runs in an sthread of
 * its own (a refused one ends it). */
struct r7_open {
	int dir;
	int flags;
	int then;      /* 1: write 4 bytes to what it opened; 2: open "secret" O_WRONLY|O_TRUNC beneath it */
	char path[64];
	long fd;
	long w;
	long w2;
};

static void *r7_open_try(void *arg)
{
	struct r7_open *o = arg;
	long fd = syscall(SYS_openat, o->dir, o->path, o->flags, 0644);
	o->fd = fd < 0 ? -errno : fd;
	if (fd >= 0 && o->then == 1) {
		long w = syscall(SYS_write, fd, "PWND", 4);
		o->w = w < 0 ? -errno : w;
	}
	if (fd >= 0 && o->then == 2) {
		long f2 = syscall(SYS_openat, fd, "secret", O_WRONLY | O_TRUNC, 0);
		o->w = f2 < 0 ? -errno : f2;
		if (f2 >= 0) {
			long w = syscall(SYS_write, f2, "PWND", 4);
			o->w2 = w < 0 ? -errno : w;
		}
	}
	if (fd >= 0 && o->then == 3) {
		char b[64];
		long n = syscall(SYS_read, fd, b, sizeof b);
		o->w = n;
	}
	return (void *)0;
}

static void r7_open_flags(void)
{
	char dir[] = "/tmp/sthread-r7-XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	char p[256];
	snprintf(p, sizeof p, "%s/secret", dir);
	int f = open(p, O_CREAT | O_WRONLY, 0644);
	CHECK(f >= 0 && write(f, "ORIGINAL", 8) == 8, "secret");
	close(f);
	snprintf(p, sizeof p, "%s/sub", dir);
	CHECK(mkdir(p, 0755) == 0, "sub");
	snprintf(p, sizeof p, "%s/up", dir);
	CHECK(symlink("..", p) == 0, "symlink up");
	snprintf(p, sizeof p, "%s/abs", dir);
	CHECK(symlink("/etc/hostname", p) == 0, "symlink abs");
	snprintf(p, sizeof p, "%s/fifo", dir);
	CHECK(mkfifo(p, 0644) == 0, "fifo");
	int d = open(dir, O_DIRECTORY | O_RDONLY);
	CHECK(d >= 0, "open dir");
	struct { const char *path; int flags; int then; } tries[] = {
		{ "secret", O_RDONLY | O_TRUNC, 0 },
		{ "secret", O_PATH | O_RDWR, 1 },
		{ "secret", O_PATH | O_TRUNC, 0 },
		{ "sub", O_PATH | O_RDWR, 2 },
		{ ".", O_PATH, 2 },
		{ ".", O_RDONLY | O_DIRECTORY, 2 },
		{ "sub", O_DIRECTORY | O_CREAT, 0 },
		{ ".", O_TMPFILE | O_RDWR, 1 },
		{ "new", O_RDONLY | O_CREAT, 0 },
		{ "new2", O_RDONLY | O_CREAT | O_EXCL, 0 },
		{ "secret", O_RDONLY | O_APPEND, 1 },
		{ "secret", 3 /* O_ACCMODE: ioctl-only */, 1 },
		{ "secret", O_RDONLY | O_NOATIME | O_DIRECT, 1 },
		{ "up/", O_RDONLY | O_DIRECTORY, 3 },
		{ "sub/../../", O_RDONLY | O_DIRECTORY, 0 },
		{ "abs", O_RDONLY, 3 },
		{ "/etc/hostname", O_RDONLY, 3 },
		{ "fifo", O_RDONLY | O_NONBLOCK, 3 },
		{ "fifo", O_WRONLY | O_NONBLOCK, 1 },
		{ "secret", O_RDONLY | 0x40000000, 1 },
		{ "secret", O_RDONLY | O_LARGEFILE | O_ASYNC | O_SYNC, 1 },
		{ "sub", O_RDONLY | O_DIRECTORY, 4 /* must open: O_DIRECTORY alone writes nothing */ },
	};
	tag_t t = tag_new();
	struct r7_open *o = smalloc(t, sizeof *o);
	CHECK(o != NULL, "smalloc");
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ | PROT_WRITE);
	sc_fd_add(&sc, d, PROT_READ);
	sc_sys_add(&sc, SYS_openat);
	for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
		memset(o, 0, sizeof *o);
		o->fd = o->w = o->w2 = -9999; /* untouched if the sthread is ended first */
		o->dir = d;
		o->flags = tries[i].flags;
		o->then = tries[i].then;
		snprintf(o->path, sizeof o->path, "%s", tries[i].path);
		current = tries[i].path;
		deadline(20);
		long r = join(run(&sc, r7_open_try, o));
		alarm(0);
		printf("open: %s flags %#x: ended %ld, fd %ld, then %ld %ld\n", tries[i].path, tries[i].flags, r, o->fd, o->w, o->w2);
		if (o->then == 1 && o->fd >= 0 && o->w > 0)
			ESCAPED("open: %s (%#x) beneath a read-only grant was written (%ld)", tries[i].path, tries[i].flags, o->w);
		if (o->then == 2 && o->fd >= 0 && o->w >= 0)
			ESCAPED("open: beneath %s (%#x) the sthread opened secret for writing (%ld, wrote %ld)", tries[i].path, tries[i].flags, o->w, o->w2);
		CHECK(o->then != 4 || o->fd >= 0, "open: %s (%#x) beneath a read-only grant refused (%ld)", tries[i].path, tries[i].flags, o->fd);
		if (o->then == 3 && o->fd >= 0 && (!strcmp(tries[i].path, "abs") || !strcmp(tries[i].path, "/etc/hostname") || !strcmp(tries[i].path, "up/")))
			ESCAPED("open: %s outside the granted directory opened (fd %ld)", tries[i].path, o->fd);
	}
	char buf[32] = { 0 };
	snprintf(p, sizeof p, "%s/secret", dir);
	f = open(p, O_RDONLY);
	long n = read(f, buf, sizeof buf - 1);
	close(f);
	if (n != 8 || memcmp(buf, "ORIGINAL", 8))
		ESCAPED("open: the read-only granted file now holds %ld bytes \"%s\"", n, buf);
	DIR *dd = opendir(dir);
	struct dirent *e;
	int extra = 0;
	while ((e = readdir(dd)) != NULL) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "secret") && strcmp(e->d_name, "sub") && strcmp(e->d_name, "up") && strcmp(e->d_name, "abs") && strcmp(e->d_name, "fifo")) {
			ESCAPED("open: the sthread created %s beneath a read-only grant", e->d_name);
			extra++;
		}
	}
	closedir(dd);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd)) {}
}

/* R7-4. A tag deleted and its slot reused while a blocked sthread (on a thread of
 * its own) still holds a grant of it: the new tag's data must not reach the sthread. */
struct r7_td {
	volatile unsigned long *at;
	unsigned long seen;
};

static void *r7_td_body(void *arg)
{
	struct r7_td *d = arg;
	struct timespec ts = { 0, 600 * 1000 * 1000 };
	syscall(SYS_nanosleep, &ts, NULL);
	d->seen = *d->at;
	return (void *)1;
}

static void r7_tag_delete(void)
{
	tag_t t = tag_new();
	unsigned long *old = smalloc(t, 4096);
	CHECK(old != NULL, "smalloc");
	old[0] = 0x4f4c44;
	tag_t dt = tag_new();
	struct r7_td *d = smalloc(dt, sizeof *d);
	CHECK(d != NULL, "smalloc");
	d->at = old;
	d->seen = 0;
	sc_t sc;
	sc_init(&sc);
	sc_mem_add(&sc, t, PROT_READ);
	sc_mem_add(&sc, dt, PROT_READ | PROT_WRITE);
	sc_sys_add(&sc, SYS_nanosleep);
	deadline(20);
	sthread_t st = run(&sc, r7_td_body, d);
	int del = tag_delete(t);
	printf("tagdel: tag_delete while the sthread sleeps: %d (%s)\n", del, del ? strerror(errno) : "ok");
	if (del == 0) {
		/* The slot again, the master's secret in it. */
		tag_t n = -1;
		unsigned long *p = NULL;
		for (int i = 0; i < 1024 && p != old; i++) {
			n = tag_new();
			p = smalloc(n, 4096);
		}
		if (p == old) {
			p[0] = 0x5345435245540000UL;
			printf("tagdel: new tag %d at the old address\n", n);
		}
	}
	long r = join(st);
	alarm(0);
	printf("tagdel: the sthread ended %ld, saw %#lx\n", r, d->seen);
	if (d->seen == 0x5345435245540000UL)
		ESCAPED("tagdel: the sthread read the new tag's data through its grant of the deleted one");
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGPIPE, SIG_IGN);
	CHECK(argc >= 2, "usage: sthread-attack SCENARIO");
	const char *s = argv[1];
	current = s;
	if (!strcmp(s, "stale-ranges")) {
		stale_ranges(argc > 2 ? argv[2] : "libz.so.1", argc > 3 ? argv[3] : "zlibVersion");
		printf("ok %s\n", s);
		return escaped ? 1 : 0;
	}
	if (!strcmp(s, "stale-running")) {
		stale_running(argc > 2 ? argv[2] : "libz.so.1", argc > 3 ? argv[3] : "zlibVersion");
		printf("ok %s\n", s);
		return escaped ? 1 : 0;
	}
	if (!strcmp(s, "sigttin")) {
		sigttin();
		printf("ok %s\n", s);
		return escaped ? 1 : 0;
	}
	if (!strcmp(s, "ctty")) {
		ctty();
		printf("ok %s\n", s);
		return escaped ? 1 : 0;
	}
	if (!strcmp(s, "sigpipe-partial")) {
		sigpipe_partial();
		printf("ok %s\n", s);
		return escaped ? 1 : 0;
	}
	if (!strcmp(s, "alias-sigbus")) {
		alias_sigbus();
		printf("ok %s\n", s);
		return escaped ? 1 : 0;
	}
	if (!strcmp(s, "guard-rbp"))
		r5_setjmp_rbp();
	if (!strcmp(s, "procmem-lib"))
		procmem_lib_setup();
	if (!strcmp(s, "guard-jmpbuf"))
		r4_setjmp_rbp0();
	if (!strcmp(s, "reseal-early"))
		reseal_early_setup();
	if (!strcmp(s, "guard-leak"))
		CHECK(__cxa_atexit(guard_handler, (void *)GUARD_MAGIC, NULL) == 0, "__cxa_atexit");
	CHECK(sthread_init() == 0, "sthread_init: %s", strerror(errno));
	if (!strcmp(s, "recycle-rebuild"))
		recycle_rebuild();
	else if (!strcmp(s, "fpu-state"))
		fpu_state();
	else if (!strcmp(s, "vvar"))
		vvar();
	else if (!strcmp(s, "blocking"))
		blocking();
	else if (!strcmp(s, "blocking-gate"))
		blocking_gate();
	else if (!strcmp(s, "procfs"))
		procfs();
	else if (!strcmp(s, "selectors"))
		selectors();
	else if (!strcmp(s, "tls-margin"))
		tls_margin();
	else if (!strcmp(s, "fd-numbers"))
		fd_numbers();
	else if (!strcmp(s, "setid"))
		setid();
	else if (!strcmp(s, "fd-exhaust"))
		fd_exhaust();
	else if (!strcmp(s, "handoff-failure"))
		handoff_failure();
	else if (!strcmp(s, "recv-trunc"))
		recv_truncated();
	else if (!strcmp(s, "spin"))
		spin();
	else if (!strcmp(s, "blocking-files"))
		blocking_files(argc > 2 ? argv[2] : NULL);
	else if (!strcmp(s, "fsize"))
		fsize();
	else if (!strcmp(s, "pipe-slots"))
		pipe_slots();
	else if (!strcmp(s, "gate-fd-numbers"))
		gate_fd_numbers();
	else if (!strcmp(s, "cpu-tricks"))
		cpu_tricks();
	else if (!strcmp(s, "sendto-pipe"))
		sendto_pipe();
	else if (!strcmp(s, "eventfd-write"))
		eventfd_overflow();
	else if (!strcmp(s, "pty-write"))
		pty_write();
	else if (!strcmp(s, "tls-guards"))
		tls_guards();
	else if (!strcmp(s, "shutdown-rd"))
		shutdown_rd();
	else if (!strcmp(s, "cpu-clock"))
		cpu_clock();
	else if (!strcmp(s, "cow-syscall"))
		cow_syscall();
	else if (!strcmp(s, "remap-fixed"))
		remap_fixed();
	else if (!strcmp(s, "reseal"))
		sealed_ranges(0);
	else if (!strcmp(s, "shm-remap"))
		sealed_ranges(1);
	else if (!strcmp(s, "guard-leak"))
		guard_leak();
	else if (!strcmp(s, "slice-ring0"))
		slice_ring0();
	else if (!strcmp(s, "guard-jmpbuf"))
		guard_jmpbuf();
	else if (!strcmp(s, "procmem-poke"))
		procmem_poke();
	else if (!strcmp(s, "reseal-early"))
		reseal_early();
	else if (!strcmp(s, "race-read"))
		race_read();
	else if (!strcmp(s, "unix-oob"))
		unix_oob();
	else if (!strcmp(s, "tty-async"))
		tty_async();
	else if (!strcmp(s, "guard-rbp"))
		guard_rbp();
	else if (!strcmp(s, "procmem-lib"))
		procmem_lib();
	else if (!strcmp(s, "tty-race"))
		tty_race();
	else if (!strcmp(s, "pipe-write-race"))
		pipe_write_race();
	else if (!strcmp(s, "zerocopy"))
		zerocopy_leak();
	else if (!strcmp(s, "r7-vector-regs"))
		r7_vector_regs();
	else if (!strcmp(s, "r7-exceptions"))
		r7_exceptions();
	else if (!strcmp(s, "r7-open-flags"))
		r7_open_flags();
	else if (!strcmp(s, "r7-tag-delete"))
		r7_tag_delete();
	else if (!strcmp(s, "race-waitall"))
		race_waitall(argc > 2 ? atoi(argv[2]) : 2);
	else {
		fprintf(stderr, "unknown scenario %s\n", s);
		return 2;
	}
	printf("ok %s\n", s);
	return escaped ? 1 : 0;
}

/* The sandbox's adversarial suite: one escape attempt per subcommand.
 *
 *   sandbox-escape NAME [DIR]
 *
 * Each attempt either is refused (the program prints "contained: NAME" and exits 0)
 * or gets the program killed (the test expects the signal). An attempt that works
 * prints "ESCAPED: ..." and exits 1. The monitor's own memory is found through
 * /proc/self/stat: the start of the `dune` executable's code, which the program never
 * owns. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include <asm/prctl.h>

static const char *name;

static void escaped(const char *what) {
	printf("ESCAPED: %s: %s\n", name, what);
	exit(1);
}

static void contained(void) {
	printf("contained: %s\n", name);
	exit(0);
}

/* The start of the monitor's executable text (`dune`): field 26 of /proc/self/stat,
 * the kernel's start_code of the process (the monitor's; /proc/self/maps as the
 * program reads it shows only the program's own mappings). */
static uintptr_t monitor_text(void) {
	FILE *f = fopen("/proc/self/stat", "r");
	char buf[1024];
	if (!f || !fgets(buf, sizeof buf, f)) {
		perror("/proc/self/stat");
		exit(2);
	}
	fclose(f);
	/* After the command name in parentheses: fields 3 onwards. */
	char *p = strrchr(buf, ')');
	unsigned long v = 0;
	for (int field = 3; p && field <= 26; field++) {
		p = strchr(p + 1, ' ');
		if (p && field == 26)
			v = strtoul(p + 1, NULL, 10);
	}
	if (!v) {
		fprintf(stderr, "no start_code in /proc/self/stat\n");
		exit(2);
	}
	return v & ~4095UL;
}

/* Must fail: a call that returns without an error escaped. */
#define REFUSED(call)                       \
	do {                                \
		errno = 0;                  \
		long r_ = (long)(call);     \
		if (r_ >= 0 && errno == 0)  \
			escaped(#call);     \
	} while (0)

static volatile int flip_stop;
static char flip_path[64];

static void *flipper(void *arg) {
	(void)arg;
	while (!flip_stop) {
		strcpy(flip_path, "/etc/shadow");
		strcpy(flip_path, "/etc/passwd");
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: sandbox-escape NAME [DIR]\n");
		return 2;
	}
	name = argv[1];
	uintptr_t mon = monitor_text();
	char buf[64];
	int p[2];

	/* ---- refused calls ------------------------------------------------------- */
	if (!strcmp(name, "proc-self-mem")) {
		REFUSED(open("/proc/self/mem", O_RDWR));
		REFUSED(open("/proc/self/mem", O_RDONLY));
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/mem", getpid());
		REFUSED(open(path, O_RDWR));
		REFUSED(open("/proc/thread-self/mem", O_RDWR));
		contained();
	}
	if (!strcmp(name, "process-vm")) {
		struct iovec l = { buf, 16 }, r = { (void *)mon, 16 };
		REFUSED(process_vm_readv(getpid(), &l, 1, &r, 1, 0));
		REFUSED(process_vm_writev(getpid(), &l, 1, &r, 1, 0));
		contained();
	}
	if (!strcmp(name, "ptrace")) {
		REFUSED(ptrace(PTRACE_TRACEME, 0, 0, 0));
		pid_t c = fork();
		if (c == 0) {
			REFUSED(ptrace(PTRACE_ATTACH, getppid(), 0, 0));
			REFUSED(ptrace(PTRACE_SEIZE, getppid(), 0, 0));
			_exit(0);
		}
		int st;
		waitpid(c, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			escaped("child ptrace");
		contained();
	}
	if (!strcmp(name, "io-uring")) {
		char params[120] = { 0 };
		REFUSED(syscall(425, 8, params)); /* io_uring_setup */
		contained();
	}
	if (!strcmp(name, "modify-ldt")) {
		char desc[16] = { 0 };
		REFUSED(syscall(SYS_modify_ldt, 1, desc, sizeof desc));
		REFUSED(syscall(SYS_personality, 0x0400000 /* READ_IMPLIES_EXEC */));
		REFUSED(syscall(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */));
		contained();
	}
	if (!strcmp(name, "monitor-memory-calls")) {
		REFUSED(mprotect((void *)mon, 4096, PROT_READ | PROT_WRITE | PROT_EXEC));
		REFUSED(munmap((void *)mon, 4096));
		if (mremap((void *)mon, 4096, 8192, MREMAP_MAYMOVE) != MAP_FAILED)
			escaped("mremap");
		if (mmap((void *)mon, 4096, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED)
			escaped("mmap MAP_FIXED");
		REFUSED(madvise((void *)mon, 4096, MADV_DONTNEED));
		contained();
	}
	if (!strcmp(name, "monitor-pointers")) {
		if (pipe(p))
			return 2;
		REFUSED(write(p[1], (void *)mon, 16));
		int z = open("/dev/zero", O_RDONLY);
		if (z < 0)
			return 2;
		REFUSED(read(z, (void *)mon, 16));
		REFUSED(syscall(SYS_uname, (void *)mon));
		REFUSED(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)mon));
		REFUSED(syscall(SYS_open, (void *)mon, O_RDONLY));
		REFUSED(syscall(SYS_rt_sigaction, SIGUSR1, (void *)mon, NULL, 8));
		struct iovec iov = { (void *)mon, 16 };
		REFUSED(writev(p[1], &iov, 1));
		contained();
	}
	if (!strcmp(name, "handler-in-monitor")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = (void (*)(int))mon;
		REFUSED(sigaction(SIGUSR1, &sa, NULL));
		contained();
	}
	if (!strcmp(name, "fs-gs-base")) {
		REFUSED(syscall(SYS_arch_prctl, ARCH_SET_FS, mon));
		REFUSED(syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)buf));
		contained();
	}
	if (!strcmp(name, "unknown-syscalls")) {
		REFUSED(syscall(1000));
		REFUSED(syscall(0x40000000 | SYS_getpid)); /* x32 */
		REFUSED(syscall(SYS_rseq, buf, 32, 0, 0));
		REFUSED(syscall(SYS_kexec_load, 0, 0, 0, 0));
		REFUSED(syscall(SYS_bpf, 0, 0, 0));
		REFUSED(syscall(SYS_userfaultfd, 0));
		REFUSED(syscall(SYS_perf_event_open, buf, 0, -1, -1, 0));
		contained();
	}
	if (!strcmp(name, "close-everything")) {
		/* Close and overwrite every descriptor but the standard ones; the monitor's
		 * own must survive (the test then sees its audit line for a denied open). */
		for (int fd = 3; fd < 4096; fd++)
			close(fd);
		syscall(SYS_close_range, 3, ~0U, 0);
		for (int fd = 3; fd < 1100; fd++)
			dup2(0, fd);
		for (int fd = 3; fd < 1100; fd++)
			close(fd);
		REFUSED(open("/etc/shadow", O_RDONLY));
		contained();
	}
	if (!strcmp(name, "toctou-path")) {
		struct stat want;
		if (stat("/etc/passwd", &want))
			return 2;
		strcpy(flip_path, "/etc/passwd");
		pthread_t t;
		pthread_create(&t, NULL, flipper, NULL);
		int opened = 0;
		for (int i = 0; i < 3000; i++) {
			int fd = open(flip_path, O_RDONLY);
			if (fd < 0)
				continue;
			struct stat st;
			fstat(fd, &st);
			if (st.st_ino != want.st_ino)
				escaped("opened /etc/shadow through a path changed after the check");
			opened++;
			close(fd);
		}
		flip_stop = 1;
		pthread_join(t, NULL);
		printf("opened /etc/passwd %d times\n", opened);
		contained();
	}
	if (!strcmp(name, "symlink-escape")) {
		if (argc < 3)
			return 2;
		char l[512], d[512];
		snprintf(l, sizeof l, "%s/link", argv[2]);
		snprintf(d, sizeof d, "%s/../../../../etc/shadow", argv[2]);
		unlink(l);
		if (symlink("/etc/shadow", l))
			escaped("could not even make the link in the writable tree");
		REFUSED(open(l, O_RDONLY));
		REFUSED(open(d, O_RDONLY));
		REFUSED(open("/etc/shadow", O_RDONLY));
		REFUSED(open("/root/.bashrc", O_RDONLY));
		contained();
	}
	if (!strcmp(name, "network")) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80) };
		inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
		REFUSED(connect(s, (struct sockaddr *)&a, sizeof a));
		REFUSED(bind(s, (struct sockaddr *)&a, sizeof a));
		REFUSED(socket(AF_NETLINK, SOCK_RAW, 0));
		REFUSED(socket(AF_PACKET, SOCK_RAW, 0));
		contained();
	}
	if (!strcmp(name, "gs-selector")) {
		/* A selector load sets ring 3's GS base (to 0): the entry code must not
		 * trust it. System calls and page 0 after that. */
		unsigned short sel = 0x1b;
		__asm__ volatile("mov %0, %%gs" ::"r"(sel));
		if (syscall(SYS_getpid) <= 0)
			escaped("getpid after the GS load");
		if (mmap((void *)0, 4096, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED)
			escaped("mapped page 0");
		sel = 0;
		__asm__ volatile("mov %0, %%gs" ::"r"(sel));
		struct timespec ts;
		if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) != 0)
			escaped("clock_gettime after the null GS load");
		contained();
	}
	if (!strcmp(name, "runtime-fds")) {
		/* Pass every descriptor number over a socket: only the program's own may go
		 * (the runtime's VM and vCPU descriptors and the monitor's must not). */
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv))
			return 2;
		for (int fd = 3; fd < 65536; fd++) {
			if (fd == sv[0] || fd == sv[1])
				continue;
			char c = 'x', cbuf[CMSG_SPACE(sizeof(int))];
			struct iovec iov = { &c, 1 };
			struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
			struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &fd, sizeof fd);
			if (sendmsg(sv[0], &m, 0) >= 0) {
				char what[64];
				snprintf(what, sizeof what, "sent descriptor %d", fd);
				escaped(what);
			}
			if (fd > 4096)
				fd += 1023; /* sample the high range */
		}
		contained();
	}
	if (!strcmp(name, "signals-to-others")) {
		REFUSED(kill(1, 0));
		REFUSED(kill(getppid(), 0));
		REFUSED(syscall(SYS_tgkill, 1, 1, 0));
		contained();
	}

	/* ---- the program must be killed --------------------------------------------- */
	/* A hypercall from ring 3 carrying exit_group(42) as libdune's hypercall system
	 * calls do: if it reached Linux the program would exit 42. It either faults
	 * (#UD/#GP: killed) or fails with an error in rax (KVM refuses it at CPL 3). */
	if (!strcmp(name, "vmcall") || !strcmp(name, "vmmcall")) {
		long r;
		if (!strcmp(name, "vmcall"))
			__asm__ volatile("vmcall" : "=a"(r) : "a"(231L), "D"(42L) : "memory");
		else
			__asm__ volatile("vmmcall" : "=a"(r) : "a"(231L), "D"(42L) : "memory");
		if (r >= 0)
			escaped("hypercall returned success");
		printf("%s failed with %ld\n", name, r);
		contained();
	} else if (!strcmp(name, "int80")) /* 32-bit exit(0): would exit 0 if it worked */
		__asm__ volatile("mov $1, %%eax; xor %%ebx, %%ebx; int $0x80" ::: "eax", "ebx", "memory");
	else if (!strcmp(name, "sysenter"))
		__asm__ volatile("mov $1, %%eax; xor %%ebx, %%ebx; sysenter" ::: "eax", "ebx", "memory");
	else if (!strcmp(name, "hlt"))
		__asm__ volatile("hlt");
	else if (!strcmp(name, "cli"))
		__asm__ volatile("cli");
	else if (!strcmp(name, "outb"))
		__asm__ volatile("outb %%al, $0x80" ::"a"(0));
	else if (!strcmp(name, "mov-cr3"))
		__asm__ volatile("mov %%cr3, %%rax" ::: "rax");
	else if (!strcmp(name, "wrmsr"))
		__asm__ volatile("wrmsr" ::"c"(0xc0000101), "a"(0), "d"(0));
	else if (!strcmp(name, "lgdt")) {
		char gdtr[10] = { 0 };
		__asm__ volatile("lgdt %0" ::"m"(gdtr));
	} else if (!strcmp(name, "wrgsbase"))
		__asm__ volatile("wrgsbase %0" ::"r"((unsigned long)buf));
	else if (!strcmp(name, "read-monitor"))
		printf("%d\n", *(volatile char *)mon);
	else if (!strcmp(name, "jump-monitor"))
		((void (*)(void))mon)();
	else if (!strcmp(name, "far-jump-ring0")) {
		/* ljmp through a far pointer to the kernel code selector. */
		struct { uint64_t off; uint16_t sel; } __attribute__((packed)) fp = { (uint64_t)&&after, 0x08 };
		__asm__ volatile("rex64 ljmp *%0" ::"m"(fp));
	after:;
	} else if (!strcmp(name, "sigreturn-ring0")) {
		/* A forged rt_sigreturn frame that would load the kernel's selectors. */
		static uint64_t frame[64];
		memset(frame, 0, sizeof frame);
		/* ucontext: uc_mcontext at +40; rip at +40+128, cs/gs/fs/ss at +40+144. */
		frame[(40 + 128) / 8] = (uint64_t)&escaped;
		frame[(40 + 144) / 8] = 0x10 | (0x18ull << 48);
		__asm__ volatile("mov %0, %%rsp; mov $15, %%eax; syscall" ::"r"(frame) : "rax", "memory");
	} else {
		fprintf(stderr, "unknown attempt %s\n", name);
		return 2;
	}
	escaped("the instruction ran in ring 3 without a fault");
	return 1;
}

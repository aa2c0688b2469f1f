/*
 * misc.c - the rest of the C API: dune_printf (register, vector and stack
 * arguments; also from a trap handler), dune_get_ticks, dune_mmap, dune_signal,
 * signal handlers with trap frames (dune_register_signal_handler, including a
 * SIGILL whose frame is changed to skip the instruction), dune_procmap_iterate and
 * _dump, dune_dump_trap_frame, threads and forked children in Dune mode,
 * dune_die and libdune's assert.
 * Prints lines the test checks and "ok misc" on success; exits 1 at a failed check.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdune/dune.h"
#include "check.h"

static volatile int usr1_sig, usr2_count, ill_count;
static volatile uint64_t usr2_rip, usr2_cs, usr2_rsp;

static void on_usr1(int sig)
{
	usr1_sig = sig;
}

static void on_usr2(struct dune_tf *tf)
{
	usr2_count++;
	usr2_rip = tf->rip;
	usr2_cs = tf->cs;
	usr2_rsp = tf->rsp;
}

/* rax = 5; ud2; return rax. The SIGILL handler sets rax and skips the ud2. */
extern long probe_ill(void);
__asm__(".text\n"
		".globl probe_ill\n"
		"probe_ill:\n"
		"	mov $5, %eax\n"
		"	ud2\n"
		"	ret\n");

static void on_ill(struct dune_tf *tf)
{
	ill_count++;
	tf->rax = 99;
	tf->rip += 2;
}

static void on_bp(struct dune_tf *tf)
{
	dune_printf("printf from a trap handler, vector %d\n", 3);
	tf->rbx = 0xb0b;
	dune_dump_trap_frame(tf);
}

static int n_maps, saw_text, saw_stack;
static uintptr_t text_addr, stack_addr;

static void on_map(const struct dune_procmap_entry *e)
{
	n_maps++;
	if (e->begin <= text_addr && text_addr < e->end && e->x && e->type == PROCMAP_TYPE_FILE &&
		strstr(e->path, "misc"))
		saw_text = 1;
	if (e->begin <= stack_addr && stack_addr < e->end && e->type == PROCMAP_TYPE_STACK && e->r && e->w &&
		e->p && e->path[0] == '[')
		saw_stack = 1;
}

static void *thread_main(void *arg)
{
	uint16_t cs;
	(void)arg;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	if ((cs & 3) != 0)
		return (void *)1; /* threads start in Dune mode */
	if (dune_enter() != 0)
		return (void *)2;
	return NULL;
}

int main(void)
{
	/* dune_printf works outside Dune mode too. */
	CHECK(dune_printf("before %s\n", "entering") == 16);
	ENTER();

	int n = dune_printf("printf %d %s %lx %.2f %c|%d %d %d %d %d %d %d %d %.1f %.1f\n", 42, "str",
						0xabcUL, 3.25, 'z', 1, 2, 3, 4, 5, 6, 7, 8, 0.5, 1.5);
	CHECKF(n == 49, "dune_printf returned %d", n);

	uint64_t t0 = dune_get_ticks();
	for (volatile int i = 0; i < 1000; i++)
		;
	CHECK(dune_get_ticks() > t0);

	/* dune_mmap: the raw result, an address or -errno. */
	char *m = dune_mmap(NULL, 2 * PGSIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECKF((intptr_t)m > 0, "dune_mmap gave %p", (void *)m);
	m[0] = 1;
	m[PGSIZE] = 2;
	CHECK(m[0] + m[PGSIZE] == 3);
	CHECK(munmap(m, 2 * PGSIZE) == 0);
	CHECK((intptr_t)dune_mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == -EINVAL);

	/* dune_signal: a plain handler, in Dune mode. */
	CHECK(dune_signal(SIGUSR1, on_usr1) == NULL);
	CHECK(dune_signal(SIGKILL, on_usr1) == SIG_ERR);
	CHECK(raise(SIGUSR1) == 0);
	CHECK(usr1_sig == SIGUSR1);

	/* Signal handlers with frames: the interrupted registers. */
	CHECK(dune_register_signal_handler(SIGUSR2, on_usr2) == 0);
	int here;
	CHECK(raise(SIGUSR2) == 0);
	CHECK(usr2_count == 1);
	CHECKF(usr2_rip != 0 && (usr2_cs & 3) == 0, "rip %#lx cs %#lx", (unsigned long)usr2_rip, (unsigned long)usr2_cs);
	CHECKF(usr2_rsp < (uintptr_t)&here && (uintptr_t)&here - usr2_rsp < (1 << 20), "rsp %#lx, a local at %p",
		   (unsigned long)usr2_rsp, (void *)&here);
	CHECK(dune_register_signal_handler(SIGUSR2, NULL) == 0);
	CHECK(dune_register_signal_handler(SIGKILL, on_usr2) == -EINVAL);
	CHECK(dune_register_signal_handler(0, on_usr2) == -EINVAL);

	/* #UD without a trap handler becomes SIGILL; the frame change skips the ud2. */
	CHECK(dune_register_intr_handler(DUNE_SIGNAL_INTR_BASE + SIGILL, on_ill) == 0);
	long r = probe_ill();
	CHECKF(r == 99 && ill_count == 1, "probe returned %ld after %d signals", r, ill_count);

	/* From a trap handler: dune_printf and dune_dump_trap_frame. */
	CHECK(dune_register_intr_handler(3, on_bp) == 0);
	uint64_t rbx;
	__asm__ volatile("xor %%ebx, %%ebx\n\tint3\n\tmov %%rbx, %0" : "=r"(rbx)::"rbx");
	CHECK(rbx == 0xb0b);

	/* The memory map. */
	text_addr = (uintptr_t)main;
	stack_addr = (uintptr_t)&here;
	dune_procmap_iterate(on_map);
	CHECKF(n_maps > 5 && saw_text && saw_stack, "%d maps, text %d, stack %d", n_maps, saw_text, saw_stack);
	dune_procmap_dump();

	/* Threads are in Dune mode from the start. */
	pthread_t t;
	void *ret;
	CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0);
	CHECK(pthread_join(t, &ret) == 0);
	CHECKF(ret == NULL, "thread failed at step %ld", (long)ret);

	/* A forked child is in Dune mode; dune_die ends it with status 1. */
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (dune_enter() != 0)
			_exit(3);
		dune_printf("child in Dune mode\n");
		dune_die();
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 1, "child status %#x", st);

	/* libdune's assert: message on stdout, then dune_die. */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		assert(1 + 1 == 3);
		_exit(0);
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 1, "assert child status %#x", st);

	printf("ok misc\n");
	return 0;
}

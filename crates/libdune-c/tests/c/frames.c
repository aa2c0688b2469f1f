/*
 * frames.c - dune_pop_trap_frame and dune_dump_trap_frame: a frame built by hand
 * resumes with every register it holds (and only the flags it may set); a frame
 * popped from inside an int3 handler leaves the trap for good, a hundred times in a
 * row (the trap stack would overflow after a few if the abandoned traps stayed on
 * it), and traps, nested faults and signals work afterwards; refused frames return
 * with errno. The dump shows the stack and code, or says where they are unmapped,
 * in and outside Dune mode. Prints "ok frames" on success, exits 1 at the first
 * failed check.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

#include "libdune/dune.h"
#include "check.h"

/* What capture saw: rdi..r15 and rax in struct dune_tf order, rsp, rflags. */
uint64_t captured[17];
static volatile int resumed;
static jmp_buf back;
static uint64_t stack[4096] __attribute__((aligned(16)));

void after_capture(void);

/* The resumed code: saves every register without touching one, then the flags,
 * clears DF for C and calls after_capture() on an aligned stack. */
extern char capture[];
__asm__(".text\n"
		".globl capture\n"
		"capture:\n"
		"	mov %rdi, captured+0(%rip)\n"
		"	mov %rsi, captured+8(%rip)\n"
		"	mov %rdx, captured+16(%rip)\n"
		"	mov %rcx, captured+24(%rip)\n"
		"	mov %r8, captured+32(%rip)\n"
		"	mov %r9, captured+40(%rip)\n"
		"	mov %r10, captured+48(%rip)\n"
		"	mov %r11, captured+56(%rip)\n"
		"	mov %rbx, captured+64(%rip)\n"
		"	mov %rbp, captured+72(%rip)\n"
		"	mov %r12, captured+80(%rip)\n"
		"	mov %r13, captured+88(%rip)\n"
		"	mov %r14, captured+96(%rip)\n"
		"	mov %r15, captured+104(%rip)\n"
		"	mov %rax, captured+112(%rip)\n"
		"	mov %rsp, captured+120(%rip)\n"
		"	pushfq\n"
		"	pop %rax\n"
		"	mov %rax, captured+128(%rip)\n"
		"	cld\n"
		"	and $-16, %rsp\n"
		"	call after_capture\n"
		"	ud2\n");

void after_capture(void)
{
	resumed++;
	longjmp(back, 1);
}

static struct dune_tf frame(uint64_t seed)
{
	struct dune_tf tf;
	uint64_t w[21] = {0};
	for (int i = 0; i < 15; i++) /* rdi .. rax */
		w[i] = seed + i;
	memcpy(&tf, w, sizeof(tf));
	tf.rip = (uintptr_t)capture;
	tf.cs = GD_KT;
	tf.ss = GD_KD;
	tf.rsp = (uintptr_t)&stack[4096] - 64;
	tf.rflags = 0x2 | FL_CF | FL_DF | FL_TF | FL_IOPL_3; /* TF and IOPL are not taken */
	return tf;
}

static void check_resumed(const struct dune_tf *tf)
{
	uint64_t w[21];
	memcpy(w, tf, sizeof(w));
	for (int i = 0; i < 15; i++)
		CHECKF(captured[i] == w[i], "register %d: %#lx, frame %#lx", i, (unsigned long)captured[i], (unsigned long)w[i]);
	CHECK(captured[15] == tf->rsp);
	uint64_t fl = captured[16];
	CHECKF((fl & (FL_CF | FL_DF | FL_IF)) == (FL_CF | FL_DF | FL_IF) && !(fl & (FL_TF | FL_IOPL_MASK)), "rflags %#lx",
		   (unsigned long)fl);
}

static struct dune_tf next;
static volatile int bp_count, usr1_count;

static void pop_from_handler(struct dune_tf *tf)
{
	if (++bp_count == 1)
		dune_dump_trap_frame(tf);
	dune_pop_trap_frame(&next);
	dune_die(); /* not reached */
}

static void plain_bp(struct dune_tf *tf)
{
	(void)tf;
	bp_count++;
}

static void on_usr1(int sig)
{
	(void)sig;
	usr1_count++;
}

int main(void)
{
	struct dune_tf tf = frame(0x1000);

	/* Outside Dune mode: refused; the dump reads memory safely. */
	errno = 0;
	dune_pop_trap_frame(&tf);
	CHECK(errno == EPERM);
	int local = 7;
	struct dune_tf here = tf;
	here.rsp = (uintptr_t)&local;
	here.rip = (uintptr_t)main;
	dune_dump_trap_frame(&here);

	ENTER();

	/* Refusals. */
	errno = 0;
	dune_pop_trap_frame(NULL);
	CHECK(errno == EINVAL);
	struct dune_tf bad = tf;
	bad.cs = GD_UT | 3;
	bad.ss = GD_UD | 3;
	errno = 0;
	dune_pop_trap_frame(&bad);
	CHECK(errno == EINVAL);
	bad = tf;
	bad.rip = 0x0000800000000000UL;
	errno = 0;
	dune_pop_trap_frame(&bad);
	CHECK(errno == EINVAL);
	CHECK(resumed == 0);

	/* From ordinary code: every register of the frame, on its stack. */
	if (setjmp(back) == 0) {
		dune_pop_trap_frame(&tf);
		CHECKF(0, "dune_pop_trap_frame returned, errno %d", errno);
	}
	CHECK(resumed == 1);
	check_resumed(&tf);
	/* ss 0 is a ring-0 frame too. */
	tf = frame(0x2000);
	tf.ss = 0;
	if (setjmp(back) == 0)
		dune_pop_trap_frame(&tf);
	CHECK(resumed == 2);
	check_resumed(&tf);

	/* From a handler, many times: each leaves the trap for good. */
	CHECK(dune_register_intr_handler(3, pop_from_handler) == 0);
	for (volatile int i = 0; i < 100; i++) {
		next = frame(0x10000 * (i + 1));
		if (setjmp(back) == 0) {
			__asm__ volatile("int3");
			CHECKF(0, "int3 returned at round %d", (int)i);
		}
		check_resumed(&next);
	}
	CHECK(resumed == 102 && bp_count == 100);

	/* Traps and signals work as before. */
	CHECK(dune_register_intr_handler(3, plain_bp) == 0);
	__asm__ volatile("int3");
	CHECK(bp_count == 101);
	CHECK(dune_signal(SIGUSR1, on_usr1) == NULL);
	CHECK(raise(SIGUSR1) == 0);
	CHECK(usr1_count == 1);

	/* The dump of a frame whose stack and code are not mapped. */
	struct dune_tf nowhere = tf;
	nowhere.rsp = 0x390000000000UL;
	nowhere.rip = 0x390000001000UL;
	dune_dump_trap_frame(&nowhere);

	printf("ok frames\n");
	return 0;
}

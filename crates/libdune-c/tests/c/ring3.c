/*
 * ring3.c - ring 3 from C: code copied to a PERM_U page runs with dune_jump_to_user;
 * its system calls reach the handler (logged, passed to Linux, denied, the session
 * ended with dune_ret_from_user), ARG3 is r10 (copied into rcx and back), and faults
 * and privileged instructions in ring 3 come back as traps marked cs & 3 == 3.
 * Prints "ok ring3" on success, exits 1 at the first failed check.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "libdune/dune.h"
#include "check.h"

#define CODE  ((char *)0x330000000000UL) /* guest-only */
#define STACK ((char *)0x330000100000UL)

/*
 * The ring-3 program (position independent, copied to CODE):
 *   main: getpid; a denied call 1000 with r10 = 0x1234; rt_sigprocmask(SIG_BLOCK,
 *         NULL, NULL, 8), whose fourth argument (r10) must reach Linux; then
 *         exit(getpid, denied result, r10 after the denied call, sigprocmask result).
 *   fault: reads the address in rax (a supervisor page).
 *   privileged: cli.
 */
extern char user_start[], user_fault[], user_privileged[], user_end[];
__asm__(".pushsection .rodata\n"
		".globl user_start, user_fault, user_privileged, user_end\n"
		"user_start:\n"
		"	mov $39, %eax\n"
		"	syscall\n"
		"	mov %rax, %rbx\n"
		"	mov $1000, %eax\n"
		"	mov $0x1234, %r10\n"
		"	syscall\n"
		"	mov %rax, %r12\n"
		"	mov %r10, %r13\n"
		"	mov $14, %eax\n"
		"	xor %edi, %edi\n"
		"	xor %esi, %esi\n"
		"	xor %edx, %edx\n"
		"	mov $8, %r10\n"
		"	syscall\n"
		"	mov %rax, %r14\n"
		"	mov $60, %eax\n"
		"	mov %rbx, %rdi\n"
		"	mov %r12, %rsi\n"
		"	mov %r13, %rdx\n"
		"	mov %r14, %r10\n"
		"	syscall\n"
		"	ud2\n"
		"user_fault:\n"
		"	mov (%rax), %rbx\n"
		"	ud2\n"
		"user_privileged:\n"
		"	cli\n"
		"	ud2\n"
		"user_end:\n"
		".popsection\n");

static volatile uint64_t seen[16];
static volatile int nseen;
static volatile uint64_t arg3_of_denied, exit_args[4];
static const uint64_t secret = 0x5ec4e7;

static void on_syscall(struct dune_tf *tf)
{
	if (nseen < 16)
		seen[nseen++] = tf->rax;
	switch (tf->rax) {
	case 39: /* getpid */
	case 14: /* rt_sigprocmask */
		dune_passthrough_syscall(tf);
		break;
	case 1000:
		arg3_of_denied = ARG3(tf);
		ARG3(tf) = 0x5678; /* goes back to r10 */
		tf->rax = -EPERM;
		break;
	case 60:
		exit_args[0] = ARG0(tf);
		exit_args[1] = ARG1(tf);
		exit_args[2] = ARG2(tf);
		exit_args[3] = ARG3(tf);
		dune_ret_from_user(0x600d);
	default:
		tf->rax = -ENOSYS;
	}
}

static void on_pgflt(uintptr_t addr, uint64_t fec, struct dune_tf *tf)
{
	(void)addr;
	if ((tf->cs & 3) == 3)
		dune_ret_from_user(-(1000 + (int)fec));
}

static void on_gp(struct dune_tf *tf)
{
	if ((tf->cs & 3) == 3)
		dune_ret_from_user(-13);
}

static int run(char *entry, uint64_t rax)
{
	struct dune_tf tf;
	memset(&tf, 0, sizeof(tf));
	tf.rip = (uintptr_t)(CODE + (entry - user_start));
	tf.rsp = (uintptr_t)(STACK + PGSIZE - 64);
	tf.rax = rax;
	return dune_jump_to_user(&tf);
}

int main(void)
{
	struct dune_tf tf;
	memset(&tf, 0, sizeof(tf));
	CHECK(dune_jump_to_user(&tf) == -EPERM); /* not in Dune mode yet */

	ENTER();
	CHECK(dune_vm_map_pages(pgroot, CODE, PGSIZE, PERM_R | PERM_W) == 0);
	CHECK(dune_vm_map_pages(pgroot, STACK, PGSIZE, PERM_USTACK) == 0);
	memcpy(CODE, user_start, user_end - user_start);
	CHECK(dune_vm_mprotect(pgroot, CODE, PGSIZE, PERM_UCODE) == 0);
	dune_register_syscall_handler(on_syscall);
	dune_register_pgflt_handler(on_pgflt);
	CHECK(dune_register_intr_handler(13, on_gp) == 0);

	dune_set_user_fs(0x1234000);
	CHECK(dune_get_user_fs() == 0x1234000);
	dune_set_user_fs(0);

	int r = run(user_start, 0);
	CHECKF(r == 0x600d, "session returned %#x", r);
	CHECKF(nseen == 4 && seen[0] == 39 && seen[1] == 1000 && seen[2] == 14 && seen[3] == 60,
		   "system calls seen: %d: %lu %lu %lu %lu", nseen, (unsigned long)seen[0],
		   (unsigned long)seen[1], (unsigned long)seen[2], (unsigned long)seen[3]);
	CHECKF(exit_args[0] == (uint64_t)getpid(), "getpid passed through gave %lu", (unsigned long)exit_args[0]);
	CHECKF((int64_t)exit_args[1] == -EPERM, "denied call returned %ld", (long)exit_args[1]);
	CHECKF(arg3_of_denied == 0x1234, "ARG3 of the denied call %#lx (r10 was 0x1234)", (unsigned long)arg3_of_denied);
	CHECKF(exit_args[2] == 0x5678, "r10 after the call %#lx (ARG3 set to 0x5678)", (unsigned long)exit_args[2]);
	CHECKF(exit_args[3] == 0, "rt_sigprocmask with sigsetsize in r10 returned %ld", (long)exit_args[3]);

	/* Supervisor memory is out of reach of ring 3: a read faults with P|U. */
	r = run(user_fault, (uintptr_t)&secret);
	CHECKF(r == -(1000 + (FEC_P | FEC_U)), "user read of a supervisor page returned %d", r);
	r = run(user_privileged, 0);
	CHECKF(r == -13, "cli in ring 3 returned %d", r);

	/* Ring 0 is intact after the sessions. */
	CHECK(getpid() > 0);
	printf("ok ring3\n");
	return 0;
}

/*
 * ring3-syscalls.c - a ring-3 sandbox: run code with user privilege and decide
 * about each of its system calls in ring 0.
 *
 * The untrusted code (a few instructions, below) writes a message, asks for its
 * pid, tries to open /etc/passwd and exits with what that returned. Its pages are
 * ordinary process memory made accessible to ring 3 (PERM_U) in the guest page
 * table; everything else stays supervisor-only. Each syscall it makes traps to
 * on_syscall in ring 0, with no exit to the host: write and getpid are passed to
 * Linux, openat is denied with EACCES, exit_group ends the session. The handler
 * only records what happened (it runs in a trap: no stdio); main prints the log.
 *
 * Run in Dune mode (the VM lane). The Rust version is
 * examples/rust/src/bin/ring3_syscalls.rs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libdune/dune.h"

/* The ring-3 program. Position independent (it is copied), data next to the code. */
extern char ring3_program_start[], ring3_program_end[];
__asm__(".pushsection .rodata\n"
		"ring3_program_start:\n"
		"	mov $1, %eax\n"           /* write(1, message, length) */
		"	mov $1, %edi\n"
		"	lea 1f(%rip), %rsi\n"
		"	mov $(2f - 1f), %edx\n"
		"	syscall\n"
		"	mov $39, %eax\n"          /* getpid() */
		"	syscall\n"
		"	mov $257, %eax\n"         /* openat(AT_FDCWD, "/etc/passwd", O_RDONLY) */
		"	mov $-100, %rdi\n"
		"	lea 3f(%rip), %rsi\n"
		"	xor %edx, %edx\n"
		"	syscall\n"
		"	mov %rax, %rdi\n"         /* exit_group(what openat returned) */
		"	mov $231, %eax\n"
		"	syscall\n"
		"	ud2\n"
		"1:	.ascii \"hello from ring 3\\n\"\n"
		"2:\n"
		"3:	.asciz \"/etc/passwd\"\n"
		"ring3_program_end:\n"
		".popsection\n");

/* The log: system call number and result (or -errno), filled by the handler. */
static struct {
	long nr, result;
} log_[16];
static volatile int logged;

static void log_call(long nr, long result)
{
	if (logged < 16) {
		log_[logged].nr = nr;
		log_[logged].result = result;
		logged++;
	}
}

/* Ring 0, for every system call made in ring 3. */
static void on_syscall(struct dune_tf *tf)
{
	long nr = tf->rax;
	switch (nr) {
	case SYS_write:
	case SYS_getpid:
		dune_passthrough_syscall(tf); /* Linux does it; result in rax */
		log_call(nr, tf->rax);
		break;
	case SYS_exit_group:
		log_call(nr, 0);
		dune_ret_from_user(ARG0(tf)); /* dune_jump_to_user returns this */
	default:
		log_call(nr, -EACCES);
		tf->rax = -EACCES; /* denied: the call "fails" */
	}
}

static const char *name(long nr)
{
	switch (nr) {
	case SYS_write: return "write";
	case SYS_getpid: return "getpid";
	case SYS_openat: return "openat";
	case SYS_exit_group: return "exit_group";
	default: return "?";
	}
}

int main(void)
{
	if (dune_init_and_enter())
		return 2;

	/* Two pages of ordinary memory: code (with its data) and stack. */
	char *mem;
	if (posix_memalign((void **)&mem, PGSIZE, 2 * PGSIZE))
		return 1;
	memset(mem, 0, 2 * PGSIZE);
	memcpy(mem, ring3_program_start, ring3_program_end - ring3_program_start);
	char *code = mem, *stack = mem + PGSIZE;

	/* Give ring 3 access to exactly these two pages (in the guest page table only). */
	if (dune_vm_mprotect(pgroot, code, PGSIZE, PERM_UCODE) ||
		dune_vm_mprotect(pgroot, stack, PGSIZE, PERM_USTACK))
		return 1;

	dune_register_syscall_handler(on_syscall);
	struct dune_tf tf;
	memset(&tf, 0, sizeof(tf));
	tf.rip = (uintptr_t)code;
	tf.rsp = (uintptr_t)(stack + PGSIZE - 64);
	int status = dune_jump_to_user(&tf);
	dune_register_syscall_handler(NULL);

	for (int i = 0; i < logged; i++) {
		long nr = log_[i].nr, result = log_[i].result;
		printf("ring 3 called %s: ", name(nr));
		if (nr == SYS_exit_group)
			printf("ends the session\n");
		else if (nr == SYS_getpid && result == getpid())
			printf("allowed, returned our pid\n");
		else if (result == -EACCES)
			printf("denied with EACCES\n");
		else
			printf("allowed, returned %ld\n", result);
	}
	printf("ring 3 session returned %d\n", status);

	/* Back to supervisor-only before the memory returns to the allocator. */
	dune_vm_mprotect(pgroot, mem, 2 * PGSIZE, PERM_R | PERM_W);
	free(mem);
	return 0;
}

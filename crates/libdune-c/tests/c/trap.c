/*
 * trap.c - trap handlers from C: a page-fault handler that maps pages on demand,
 * #UD, int3 and a software interrupt in ring 0 with frames that can be changed,
 * vector 14 taking precedence over the page-fault handler, a fault nested in a
 * handler, and faults the handler leaves alone reaching the runtime (SIGSEGV).
 * Prints "ok trap" on success, exits 1 at the first failed check.
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdune/dune.h"
#include "check.h"

#define DEMAND   0x350000000000UL /* guest-only, mapped on first touch */
#define NPAGES   64
#define ELSEWHERE 0x350100000000UL /* guest-only, never mapped */
#define VEC14    0x350200000000UL /* mapped by the vector-14 handler */

static volatile int pf_count, pf_foreign, ud_count, bp_count, soft_count, v14_count;
static volatile uint64_t ud_rip, ud_cs, soft_vector_rax;

static void on_pgflt(uintptr_t addr, uint64_t fec, struct dune_tf *tf)
{
	(void)fec;
	if ((tf->cs & 3) || addr < DEMAND || addr >= DEMAND + NPAGES * PGSIZE) {
		pf_foreign++; /* not ours: leave it to the runtime */
		return;
	}
	if (dune_vm_map_pages(pgroot, (void *)PGADDR(addr), PGSIZE, PERM_R | PERM_W) == 0)
		pf_count++;
}

/* A probe: rax = 5, ud2, return rax (the handler changes it and skips the ud2). */
extern long probe_ud2(void);
extern char probe_ud2_at[];
__asm__(".text\n"
		".globl probe_ud2\n"
		"probe_ud2:\n"
		"	mov $5, %eax\n"
		".globl probe_ud2_at\n"
		"probe_ud2_at:\n"
		"	ud2\n"
		"	ret\n");

static void on_ud(struct dune_tf *tf)
{
	ud_count++;
	ud_rip = tf->rip;
	ud_cs = tf->cs;
	/* A page fault inside a handler nests: the demand pager maps the page. */
	*(volatile uint64_t *)(DEMAND + (ud_count % NPAGES) * PGSIZE + 8) = ud_count;
	tf->rax = 77;
	tf->rip += 2;
}

static void on_bp(struct dune_tf *tf)
{
	(void)tf;
	bp_count++;
}

static void on_soft(struct dune_tf *tf)
{
	soft_count++;
	soft_vector_rax = tf->rax;
}

static void on_vec14(struct dune_tf *tf)
{
	uint64_t cr2;
	(void)tf;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	if (cr2 >= VEC14 && cr2 < VEC14 + PGSIZE &&
		dune_vm_map_pages(pgroot, (void *)VEC14, PGSIZE, PERM_R | PERM_W) == 0)
		v14_count++;
}

int main(void)
{
	ENTER();
	dune_register_pgflt_handler(on_pgflt);
	CHECK(dune_register_intr_handler(6, on_ud) == 0);
	CHECK(dune_register_intr_handler(3, on_bp) == 0);
	CHECK(dune_register_intr_handler(100, on_soft) == 0);
	CHECK(dune_register_intr_handler(256, on_bp) == -EINVAL);
	CHECK(dune_register_intr_handler(-1, on_bp) == -EINVAL);
	/* Grow the runtime's memory up front so handlers need not ask the kernel. */
	for (int i = 0; i < 4; i++) {
		struct page *pg = dune_page_alloc();
		CHECK(pg != NULL);
		dune_page_put(pg);
	}

	/* Demand paging: each page is mapped by the handler on first touch. */
	for (int i = 0; i < NPAGES; i++)
		*(volatile uint64_t *)(DEMAND + i * PGSIZE) = i * 3;
	CHECKF(pf_count == NPAGES, "handler mapped %d pages", pf_count);
	for (int i = 0; i < NPAGES; i++)
		CHECK(*(volatile uint64_t *)(DEMAND + i * PGSIZE) == (uint64_t)i * 3);

	/* #UD: the frame is the interrupted code's; changes to it take effect. */
	for (int i = 0; i < 100; i++) {
		long r = probe_ud2();
		CHECKF(r == 77, "probe returned %ld", r);
	}
	CHECK(ud_count == 100);
	CHECKF(ud_rip == (uintptr_t)probe_ud2_at, "rip %#lx, ud2 at %p", (unsigned long)ud_rip, (void *)probe_ud2_at);
	CHECKF((ud_cs & 3) == 0, "cs %#lx", (unsigned long)ud_cs);

	/* int3 and int $100 resume after themselves. */
	for (int i = 0; i < 100; i++)
		__asm__ volatile("int3");
	CHECK(bp_count == 100);
	__asm__ volatile("mov $0x1234, %%rax\n\tint $100" ::: "rax");
	CHECK(soft_count == 1 && soft_vector_rax == 0x1234);
	CHECK(dune_register_intr_handler(100, NULL) == 0);

	/* Vector 14 takes precedence over the page-fault handler while registered. */
	CHECK(dune_register_intr_handler(14, on_vec14) == 0);
	*(volatile uint64_t *)VEC14 = 14;
	CHECK(v14_count == 1 && *(volatile uint64_t *)VEC14 == 14);
	CHECK(dune_register_intr_handler(14, NULL) == 0);

	/* The FPU state survived hundreds of traps. */
	double sum = 0;
	for (int i = 0; i < 1000; i++)
		sum += i * 0.5;
	CHECK(sum == 249750.0);

	/* A fault the handler leaves alone goes to the runtime: SIGSEGV. */
	int foreign = pf_foreign;
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		*(volatile uint64_t *)ELSEWHERE = 1;
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "child status %#x", st);

	/* Without handlers, traps go to the runtime again. */
	dune_register_pgflt_handler(NULL);
	CHECK(dune_register_intr_handler(6, NULL) == 0);
	CHECK(pf_foreign == foreign);

	printf("ok trap\n");
	return 0;
}

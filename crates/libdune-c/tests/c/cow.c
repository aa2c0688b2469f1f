/*
 * cow.c - copy on write with dune_vm_default_pgflt_handler: one allocator page
 * mapped PERM_COW at two addresses; the first write copies (both sides keep their
 * own data, the page loses the writer's reference), the second write to the last
 * holder takes the page as it is. Then the same across tables: a clone of pgroot
 * shares a COW page with pgroot, each side writes under its own CR3. The handler is
 * called from the program's own page-fault callback and registered directly; faults
 * it does not resolve (a write to a read-only page without PTE_COW) still reach the
 * runtime. Prints "ok cow" on success, exits 1 at the first failed check.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdune/dune.h"
#include "check.h"

#define A     ((char *)0x370000000000UL) /* guest-only */
#define B     ((char *)0x370000100000UL)
#define C     ((char *)0x370000200000UL)
#define PLAIN ((char *)0x370000300000UL)

static volatile int faults, cow_faults;

static void on_pgflt(uintptr_t addr, uint64_t fec, struct dune_tf *tf)
{
	(void)tf;
	faults++;
	if (addr >= (uintptr_t)A && addr < (uintptr_t)PLAIN + PGSIZE) {
		cow_faults++;
		dune_vm_default_pgflt_handler(addr, fec);
	}
}

static ptent_t pte_of(ptent_t *root, void *va)
{
	ptent_t *pte = NULL;
	CHECK(dune_vm_lookup(root, va, CREATE_NONE, &pte) == 0 && pte != NULL);
	return *pte;
}

static uint64_t read_cr3(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

int main(void)
{
	ENTER();
	dune_register_pgflt_handler(on_pgflt);

	/* One page, two COW mappings, a reference each. */
	struct page *pg = dune_page_alloc();
	CHECK(pg != NULL);
	physaddr_t pa = dune_page2pa(pg);
	strcpy(dune_pa2va(pa), "original");
	CHECK(dune_page_get(pg) == pg);
	CHECK(dune_vm_map_phys(pgroot, A, PGSIZE, (void *)pa, PERM_R | PERM_COW) == 0);
	CHECK(dune_vm_map_phys(pgroot, B, PGSIZE, (void *)pa, PERM_R | PERM_COW) == 0);
	CHECK((pte_of(pgroot, A) & (PTE_COW | PTE_W)) == PTE_COW);
	CHECK(strcmp(A, "original") == 0 && strcmp(B, "original") == 0);
	CHECK(faults == 0);

	/* The first write copies: A gets its own writable page, B keeps the original. */
	A[0] = 'O';
	CHECKF(cow_faults == 1, "%d COW faults", cow_faults);
	physaddr_t a_pa = PTE_ADDR(pte_of(pgroot, A));
	CHECK(a_pa != pa && dune_page_isfrompool(a_pa));
	CHECK((pte_of(pgroot, A) & (PTE_COW | PTE_W | PTE_P)) == (PTE_W | PTE_P));
	CHECK(strcmp(A, "Original") == 0 && strcmp(B, "original") == 0);
	CHECK(strcmp(dune_pa2va(pa), "original") == 0);
	CHECK(dune_page_refcount(pg) == 1);
	A[1] = 'R'; /* writable now: no fault */
	CHECK(cow_faults == 1);

	/* The last holder's write takes the page itself, no copy. */
	B[0] = 'b';
	CHECK(cow_faults == 2);
	CHECK(PTE_ADDR(pte_of(pgroot, B)) == pa && dune_page_refcount(pg) == 1);
	CHECK((pte_of(pgroot, B) & (PTE_COW | PTE_W)) == PTE_W);
	CHECK(strcmp(A, "ORiginal") == 0 && strcmp(B, "briginal") == 0);

	/* Registered directly (cast: the frame argument is not used). */
	dune_register_pgflt_handler((dune_pgflt_cb)(void (*)(void))dune_vm_default_pgflt_handler);
	struct page *pg2 = dune_page_alloc();
	CHECK(pg2 != NULL);
	physaddr_t pa2 = dune_page2pa(pg2);
	strcpy(dune_pa2va(pa2), "shared");
	CHECK(dune_vm_map_phys(pgroot, C, PGSIZE, (void *)pa2, PERM_R | PERM_W) == 0);
	C[0] = 's'; /* writable, not COW yet: no fault */
	CHECK(dune_vm_mprotect(pgroot, C, PGSIZE, PERM_R | PERM_COW) == 0);
	CHECK((pte_of(pgroot, C) & (PTE_COW | PTE_W)) == PTE_COW);

	/* Across tables: a clone shares C (a reference more), each side writes its own. */
	ptent_t *clone = dune_vm_clone(pgroot);
	CHECK(clone != NULL);
	CHECK(dune_page_refcount(pg2) == 2);
	C[0] = 'S'; /* under pgroot: copies */
	CHECK(strcmp(C, "Shared") == 0);
	CHECK(PTE_ADDR(pte_of(pgroot, C)) != pa2 && PTE_ADDR(pte_of(clone, C)) == pa2);
	CHECK(dune_page_refcount(pg2) == 1);
	uint64_t own = read_cr3();
	load_cr3(dune_va_to_pa(clone));
	int clone_sees_shared = strcmp(C, "shared") == 0;
	C[1] = 'H'; /* under the clone: the last reference, taken as it is */
	load_cr3(own);
	CHECK(clone_sees_shared);
	CHECK(PTE_ADDR(pte_of(clone, C)) == pa2 && (pte_of(clone, C) & (PTE_COW | PTE_W)) == PTE_W);
	CHECK(strcmp(dune_pa2va(pa2), "sHared") == 0 && strcmp(C, "Shared") == 0);
	dune_vm_free(clone);

	/* Not a COW entry: the handler leaves it, the runtime sends SIGSEGV. */
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct page *p = dune_page_alloc();
		if (!p || dune_vm_map_phys(pgroot, PLAIN, PGSIZE, (void *)dune_page2pa(p), PERM_R) != 0)
			_exit(3);
		if (*(volatile char *)PLAIN != 0) /* present and readable */
			_exit(5);
		*(volatile char *)PLAIN = 1;
		_exit(4);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "child status %#x", st);

	dune_register_pgflt_handler(NULL);
	printf("ok cow\n");
	return 0;
}

/*
 * pages.c - the page allocator from C: struct page handles and guest-physical
 * addresses, reference counts, zeroed pages, mapping a page with dune_vm_map_phys,
 * handles that stay stable, dune_vm_insert_page and dune_vm_lookup_page, PERM_USR1..3,
 * dune_page_stats, dune_enter_ex, __invpcid, and allocation from several threads at
 * once.
 * Prints "ok pages" on success, exits 1 at the first failed check.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "libdune/dune.h"
#include "check.h"

#define VA      ((char *)0x360000000000UL) /* guest-only */
#define MANY    256
#define THREADS 4
#define PER_THREAD 64

static int all_zero(const unsigned char *p)
{
	for (int i = 0; i < PGSIZE; i++)
		if (p[i])
			return 0;
	return 1;
}

static void *churn(void *arg)
{
	struct page *pgs[PER_THREAD];
	(void)arg;
	if (dune_enter() != 0) /* in Dune mode already: returns 0 */
		return (void *)1;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < PER_THREAD; i++) {
			pgs[i] = dune_page_alloc();
			if (!pgs[i] || dune_pa2page(dune_page2pa(pgs[i])) != pgs[i])
				return (void *)2;
			*(unsigned long *)dune_pa2va(dune_page2pa(pgs[i])) = (unsigned long)pgs[i];
		}
		for (int i = 0; i < PER_THREAD; i++) {
			if (*(unsigned long *)dune_pa2va(dune_page2pa(pgs[i])) != (unsigned long)pgs[i])
				return (void *)3;
			dune_page_put(pgs[i]);
		}
	}
	return NULL;
}

static int local_marker;
static volatile int ud_count;

/* #UD from an INVPCID the CPU does not offer: skip it (66 0f 38 82 08, 5 bytes). */
static void on_ud(struct dune_tf *tf)
{
	ud_count++;
	tf->rip += 5;
}

int main(void)
{
	ENTER();

	/* A page: handle <-> address, reference count 1, zeroed, reachable. */
	struct page *pg = dune_page_alloc();
	CHECK(pg != NULL);
	physaddr_t pa = dune_page2pa(pg);
	CHECKF(pa != 0 && PGOFF(pa) == 0, "pa %#lx", (unsigned long)pa);
	CHECK(dune_pa2page(pa) == pg);
	CHECK(dune_page_isfrompool(pa));
	CHECK(dune_page_refcount(pg) == 1);
	unsigned char *direct = dune_pa2va(pa);
	CHECK(direct != NULL && all_zero(direct));
	strcpy((char *)direct, "page contents");

	/* References. */
	CHECK(dune_page_get(pg) == pg);
	CHECK(dune_page_refcount(pg) == 2);
	dune_page_put(pg);
	CHECK(dune_page_refcount(pg) == 1 && dune_page_isfrompool(pa));

	/* Mapped elsewhere (the mapping holds a reference, dropped by unmap). */
	CHECK(dune_page_get(pg) == pg);
	CHECK(dune_vm_map_phys(pgroot, VA, PGSIZE, (void *)pa, PERM_R | PERM_W) == 0);
	CHECK(strcmp(VA, "page contents") == 0);
	CHECK(dune_va_to_pa(VA) == pa);
	VA[0] = 'P';
	CHECK(direct[0] == 'P');
	dune_vm_unmap(pgroot, VA, PGSIZE);
	CHECK(dune_va_to_pa(VA) == 0);
	CHECK(dune_page_refcount(pg) == 1);

	/* The last put frees it; the handle keeps naming the address. */
	dune_page_put(pg);
	CHECK(dune_page_refcount(pg) == 0 && !dune_page_isfrompool(pa));
	CHECK(dune_page2pa(pg) == pa && dune_pa2page(pa) == pg);
	CHECK(dune_page_get(pg) == NULL); /* not allocated */

	/* Many pages: distinct, zeroed even when reused, freed whatever their count. */
	static struct page *pgs[MANY];
	for (int i = 0; i < MANY; i++) {
		pgs[i] = dune_page_alloc();
		CHECK(pgs[i] != NULL);
		CHECK(all_zero(dune_pa2va(dune_page2pa(pgs[i]))));
		memset(dune_pa2va(dune_page2pa(pgs[i])), 0xa5, PGSIZE);
		for (int j = 0; j < i; j += 17)
			CHECK(pgs[j] != pgs[i] && dune_page2pa(pgs[j]) != dune_page2pa(pgs[i]));
	}
	for (int i = 0; i < MANY; i++) {
		if (i % 2)
			CHECK(dune_page_get(pgs[i]) == pgs[i]);
		dune_page_free(pgs[i]);
		CHECK(dune_page_refcount(pgs[i]) == 0);
	}
	for (int i = 0; i < 10; i++) {
		struct page *again = dune_page_alloc();
		CHECK(again != NULL && all_zero(dune_pa2va(dune_page2pa(again))));
		dune_page_put(again);
	}

	/* Not handles, not allocator pages. */
	int local = 1;
	CHECK(dune_pa2page(0) == NULL);
	CHECK(dune_pa2page(pa + 1) == NULL);
	CHECK(dune_pa2page(dune_va_to_pa(&local)) == NULL);
	CHECK(dune_page2pa(NULL) == 0);
	CHECK(dune_page2pa((struct page *)&local) == 0);
	CHECK(dune_pa2va(dune_va_to_pa(&local)) == NULL);

	/* dune_vm_insert_page holds a reference; dune_vm_lookup_page finds the page. */
	struct page *ins = dune_page_alloc();
	CHECK(ins != NULL);
	strcpy(dune_pa2va(dune_page2pa(ins)), "inserted");
	CHECK(dune_vm_insert_page(pgroot, VA + 5, ins, PERM_R | PERM_W | PERM_USR1 | PERM_USR3) == 0);
	CHECK(dune_page_refcount(ins) == 2);
	CHECK(strcmp(VA, "inserted") == 0);
	CHECK(dune_vm_lookup_page(pgroot, VA + 100) == ins);
	ptent_t *pte;
	CHECK(dune_vm_lookup(pgroot, VA, CREATE_NONE, &pte) == 0);
	CHECKF((*pte & (PTE_USR1 | PTE_USR2 | PTE_USR3)) == (PTE_USR1 | PTE_USR3), "pte %#lx", (unsigned long)*pte);
	CHECK(dune_vm_mprotect(pgroot, VA, PGSIZE, PERM_R | PERM_USR2) == 0);
	CHECKF((*pte & (PTE_USR1 | PTE_USR2 | PTE_USR3 | PTE_W)) == PTE_USR2, "pte %#lx", (unsigned long)*pte);
	CHECK(dune_vm_insert_page(pgroot, VA, (struct page *)&local_marker, PERM_R) == -EINVAL);
	CHECK(dune_vm_insert_page(pgroot, VA, ins, PERM_W) == -EINVAL); /* no PERM_R */
	CHECK(dune_vm_lookup_page(pgroot, VA + PGSIZE) == NULL);     /* nothing there */
	int on_stack = 0;
	CHECK(dune_vm_lookup_page(pgroot, &on_stack) == NULL);       /* not an allocator page */
	dune_vm_unmap(pgroot, VA, PGSIZE);
	CHECK(dune_page_refcount(ins) == 1 && dune_vm_lookup_page(pgroot, VA) == NULL);

	/* dune_page_stats: the allocator's counts, one more page allocated than before. */
	fflush(stdout);
	dune_page_stats();
	struct page *extra = dune_page_alloc();
	CHECK(extra != NULL);
	dune_page_stats();
	dune_page_put(extra);
	dune_page_put(ins);

	/* dune_enter_ex: in Dune mode already, as dune_enter. */
	CHECK(dune_enter_ex(NULL) == 0);

	/* __invpcid: runs where CPUID offers INVPCID, raises #UD where it does not. */
	unsigned int a = 7, b = 0, c = 0, d = 0;
	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	CHECK(dune_register_intr_handler(6, on_ud) == 0);
	__invpcid(2, 0); /* every PCID, global entries too */
	__invpcid(3, 0);
	CHECK(dune_register_intr_handler(6, NULL) == 0);
	CHECKF(ud_count == ((b >> 10) & 1 ? 0 : 2), "INVPCID offered %u, #UD %d", (b >> 10) & 1, ud_count);
	printf("invpcid: %s\n", (b >> 10) & 1 ? "offered, ran" : "not offered, #UD");

	/* Threads (in Dune mode from the start) allocate at once. */
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, churn, NULL) == 0);
	for (int i = 0; i < THREADS; i++) {
		void *ret;
		CHECK(pthread_join(t[i], &ret) == 0);
		CHECKF(ret == NULL, "thread %d failed at step %ld", i, (long)ret);
	}

	printf("ok pages\n");
	return 0;
}

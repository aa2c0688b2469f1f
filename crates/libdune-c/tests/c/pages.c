/*
 * pages.c - the page allocator from C: struct page handles and guest-physical
 * addresses, reference counts, zeroed pages, mapping a page with dune_vm_map_phys,
 * handles that stay stable, and allocation from several threads at once.
 * Prints "ok pages" on success, exits 1 at the first failed check.
 */
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

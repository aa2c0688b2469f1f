/*
 * vm.c - the page-table API from C: map, look up and edit entries through
 * ptent_t pointers, mprotect, walks, dirty bits, aliases, clones and load_cr3.
 * Prints "ok vm" on success, exits 1 at the first failed check.
 */
#include <errno.h>
#include <string.h>

#include "libdune/dune.h"
#include "check.h"

/* Guest-only addresses, far from anything Linux maps for the process. */
#define BASE  ((char *)0x340000000000UL)
#define ALIAS ((char *)0x340040000000UL)
#define BIG   ((char *)0x340080000000UL)
#define N     16

static int count_cb(const void *arg, ptent_t *pte, void *va)
{
	(void)pte;
	(void)va;
	(*(int *)arg)++;
	return 0;
}

/* Counts the leaves a walk visits, and those that are large pages. */
struct leaves {
	int all;
	int large;
};

static int count_leaves(const void *arg, ptent_t *pte, void *va)
{
	(void)va;
	struct leaves *l = (struct leaves *)arg;
	l->all++;
	l->large += (*pte & PTE_PS) != 0;
	return 0;
}

/* Zero-filled data of the program itself, 2 MiB-aligned: the runtime mirrors it with
 * 2 MiB pages where it can. */
#define BSS_SIZE (6UL << 20)
static char bss[BSS_SIZE] __attribute__((aligned(2 << 20)));

static int stop_at_fifth(const void *arg, ptent_t *pte, void *va)
{
	(void)pte;
	(void)va;
	return ++*(int *)arg == 5 ? 42 : 0;
}

static int clear_ad(const void *arg, ptent_t *pte, void *va)
{
	(void)arg;
	(void)va;
	*pte &= ~(ptent_t)(PTE_A | PTE_D);
	return 0;
}

/* Sets bit i of *arg for each dirty page i of BASE. */
static int collect_dirty(const void *arg, ptent_t *pte, void *va)
{
	if (*pte & PTE_D)
		*(unsigned long *)arg |= 1UL << (((char *)va - BASE) / PGSIZE);
	return 0;
}

static ptent_t *pte_of(ptent_t *root, void *va)
{
	ptent_t *pte = NULL;
	int rc = dune_vm_lookup(root, va, CREATE_NONE, &pte);
	CHECKF(rc == 0 && pte, "lookup %p: %d", va, rc);
	return pte;
}

int main(void)
{
	ENTER();
	CHECK(pgroot != NULL);
	CHECK(dune_enter() == 0); /* again: harmless */

	ptent_t *pte;
	CHECK(dune_vm_lookup(pgroot, BASE, CREATE_NONE, &pte) == -ENOENT);
	CHECK(dune_vm_lookup(pgroot, BASE, 7, &pte) == -EINVAL);
	CHECK(dune_vm_lookup(NULL, BASE, CREATE_NONE, &pte) == -EINVAL);

	/* Fresh zeroed pages, one entry each. */
	CHECK(dune_vm_map_pages(pgroot, BASE, N * PGSIZE, PERM_R | PERM_W) == 0);
	for (int i = 0; i < N; i++) {
		volatile unsigned long *p = (unsigned long *)(BASE + i * PGSIZE);
		CHECK(*p == 0);
		*p = i * 7 + 1;
	}
	for (int i = 0; i < N; i++) {
		pte = pte_of(pgroot, BASE + i * PGSIZE);
		CHECKF((*pte & (PTE_P | PTE_W | PTE_NX | PTE_U)) == (PTE_P | PTE_W | PTE_NX), "pte %#lx", (unsigned long)*pte);
		CHECK(PTE_ADDR(*pte) == dune_va_to_pa(BASE + i * PGSIZE));
		CHECK(dune_va_to_pa(BASE + i * PGSIZE + 123) == PTE_ADDR(*pte) + 123);
		CHECK(*(unsigned long *)(BASE + i * PGSIZE) == (unsigned long)i * 7 + 1);
	}
	/* The process's own memory translates too. */
	int local = 5;
	CHECK(dune_va_to_pa(&local) != 0);

	/* An entry written by hand through the pointer lookup returns. */
	struct page *pg = dune_page_alloc();
	CHECK(pg != NULL);
	physaddr_t pa = dune_page2pa(pg);
	strcpy(dune_pa2va(pa), "written by ring 0");
	CHECK(dune_page_get(pg) == pg); /* the mapping's reference */
	char *hand = BASE + 100 * PGSIZE;
	CHECK(dune_vm_lookup(pgroot, hand, CREATE_NORMAL, &pte) == 0 && *pte == 0);
	*pte = PTE_ADDR(pa) | PTE_P | PTE_W | PTE_NX;
	CHECK(strcmp(hand, "written by ring 0") == 0);
	CHECK(dune_va_to_pa(hand) == pa);
	dune_vm_unmap(pgroot, hand, PGSIZE);
	CHECK(dune_page_refcount(pg) == 1);
	dune_page_put(pg);
	CHECK(dune_page_refcount(pg) == 0);

	/* mprotect: read-only, back, not present, back; W without R is refused. */
	CHECK(dune_vm_mprotect(pgroot, BASE, N * PGSIZE, PERM_R) == 0);
	CHECK(!(*pte_of(pgroot, BASE) & PTE_W));
	CHECK(*(volatile unsigned long *)BASE == 1);
	CHECK(dune_vm_mprotect(pgroot, BASE, N * PGSIZE, PERM_R | PERM_W) == 0);
	CHECK(*pte_of(pgroot, BASE + PGSIZE) & PTE_W);
	*(volatile unsigned long *)(BASE + PGSIZE) = 8;
	CHECK(dune_vm_mprotect(pgroot, BASE, PGSIZE, PERM_W) == -EINVAL);
	CHECK(dune_vm_mprotect(pgroot, BASE, PGSIZE, PERM_NONE) == 0);
	CHECK(!(*pte_of(pgroot, BASE) & PTE_P));
	CHECK(dune_vm_mprotect(pgroot, BASE, PGSIZE, PERM_R | PERM_W) == 0);
	CHECK(*(volatile unsigned long *)BASE == 1);

	/* Walks: all pages; an early stop returns the callback's value; end is inclusive. */
	int n = 0;
	CHECK(dune_vm_page_walk(pgroot, BASE, BASE + N * PGSIZE - 1, count_cb, &n) == 0);
	CHECKF(n == N, "walk saw %d pages", n);
	n = 0;
	CHECK(dune_vm_page_walk(pgroot, BASE, BASE + N * PGSIZE - 1, stop_at_fifth, &n) == 42);
	CHECK(n == 5);
	n = 0;
	CHECK(dune_vm_page_walk(pgroot, BASE, BASE + 3 * PGSIZE, count_cb, &n) == 0);
	CHECKF(n == 4, "inclusive end: %d pages", n);
	n = 0;
	CHECK(dune_vm_page_walk(pgroot, VA_START, VA_END, count_cb, &n) == 0);
	CHECKF(n > N, "whole address space: %d pages", n);

	/* Dirty bits: clear, write three pages, find exactly those. */
	for (int round = 0; round < 3; round++) {
		CHECK(dune_vm_page_walk(pgroot, BASE, BASE + N * PGSIZE - 1, clear_ad, NULL) == 0);
		dune_flush_tlb();
		unsigned long want = 0, dirty = 0;
		for (int i = round; i < N; i += 5) {
			*(volatile unsigned long *)(BASE + i * PGSIZE) += 1;
			want |= 1UL << i;
		}
		CHECK(dune_vm_page_walk(pgroot, BASE, BASE + N * PGSIZE - 1, collect_dirty, &dirty) == 0);
		CHECKF(dirty == want, "round %d: dirty %#lx, wrote %#lx", round, dirty, want);
	}

	/* An alias of page 3, read-only; it holds a reference while mapped. */
	physaddr_t pa3 = dune_va_to_pa(BASE + 3 * PGSIZE);
	struct page *pg3 = dune_pa2page(pa3);
	CHECK(pg3 != NULL && dune_page2pa(pg3) == pa3 && dune_page_refcount(pg3) == 1);
	CHECK(dune_page_get(pg3) == pg3);
	CHECK(dune_vm_map_phys(pgroot, ALIAS, PGSIZE, (void *)pa3, PERM_R) == 0);
	*(volatile unsigned long *)(BASE + 3 * PGSIZE) = 0x3333;
	CHECK(*(volatile unsigned long *)ALIAS == 0x3333);
	CHECK(!(*pte_of(pgroot, ALIAS) & PTE_W));
	dune_vm_unmap(pgroot, ALIAS, PGSIZE);
	CHECK(dune_page_refcount(pg3) == 1);

	/* A clone shares the pages (each gains a reference) and can be run under. */
	ptent_t *copy = dune_vm_clone(pgroot);
	CHECK(copy != NULL && copy != pgroot);
	CHECK(PTE_ADDR(*pte_of(copy, BASE + PGSIZE)) == dune_va_to_pa(BASE + PGSIZE));
	CHECKF(dune_page_refcount(dune_pa2page(dune_va_to_pa(BASE))) == 2, "refcount %d pa %#lx", dune_page_refcount(dune_pa2page(dune_va_to_pa(BASE))), (unsigned long)dune_va_to_pa(BASE));
	unsigned long before = *(volatile unsigned long *)(BASE + PGSIZE);
	load_cr3(dune_va_to_pa(copy));
	unsigned long under_copy = *(volatile unsigned long *)(BASE + PGSIZE);
	load_cr3(dune_va_to_pa(pgroot));
	CHECKF(under_copy == before, "read %lu under the clone, %lu before", under_copy, before);
	dune_vm_unmap(copy, BASE, PGSIZE);
	CHECK(*pte_of(pgroot, BASE) & PTE_P); /* the original keeps it */
	CHECK(dune_page_refcount(dune_pa2page(dune_va_to_pa(BASE))) == 1);
	dune_vm_free(copy);
	CHECK(dune_page_refcount(dune_pa2page(dune_va_to_pa(BASE + PGSIZE))) == 1);

	/* A clone maps the program's memory with 4 KiB pages, as libdune's tables did: a
	 * walk of it visits one entry per page, which programs written for libdune count
	 * on (Wedge's sthread.c finds each page's private copy that way). */
	memset(bss, 1, BSS_SIZE);
	struct leaves in_root = { 0, 0 }, in_copy = { 0, 0 };
	CHECK(dune_vm_page_walk(pgroot, bss, bss + BSS_SIZE - 1, count_leaves, &in_root) == 0);
	CHECKF(in_root.large > 0, "the process's table maps the zero-filled data with %d large pages of %d entries", in_root.large, in_root.all);
	copy = dune_vm_clone(pgroot);
	CHECK(copy != NULL);
	CHECK(dune_vm_page_walk(copy, bss, bss + BSS_SIZE - 1, count_leaves, &in_copy) == 0);
	CHECKF(in_copy.all == (int)(BSS_SIZE / PGSIZE) && in_copy.large == 0, "the clone maps %d entries (%d large) for %lu pages", in_copy.all, in_copy.large, BSS_SIZE / PGSIZE);
	load_cr3(dune_va_to_pa(copy));
	char seen = *(volatile char *)(bss + BSS_SIZE - 1);
	load_cr3(dune_va_to_pa(pgroot));
	CHECK(seen == 1);
	dune_vm_free(copy);

	/* Unmap: the pages go back to the allocator. */
	dune_vm_unmap(pgroot, BASE, N * PGSIZE);
	int rc = dune_vm_lookup(pgroot, BASE, CREATE_NONE, &pte);
	CHECK(rc == -ENOENT || (rc == 0 && !(*pte & PTE_P)));
	CHECK(dune_page_refcount(pg3) == 0);

	/* CREATE_BIG builds down to the 2 MiB entry. */
	CHECK(dune_vm_lookup(pgroot, BIG, CREATE_BIG, &pte) == 0 && *pte == 0);
	CHECK(dune_vm_lookup(pgroot, BIG, CREATE_NONE, &pte) == -ENOENT);

	printf("ok vm\n");
	return 0;
}

/*
 * demand-paging.c - a page-fault handler that maps memory on first touch.
 *
 * A 64 MiB region at guest-only addresses starts empty. The handler runs in ring 0
 * on every page fault, with no exit to the host; for an address in the region it
 * maps one fresh zeroed page, and the faulting access is retried. Faults it leaves
 * alone (anything else) go to the runtime as usual.
 *
 * Build: crates/libdune-c/build-c.sh (or cc -I include demand-paging.c libdune.a
 * -lpthread -ldl -lm); run in Dune mode (the VM lane). The Rust version is
 * examples/rust/src/bin/demand_paging.rs.
 */
#include <stdio.h>

#include "libdune/dune.h"

#define REGION       0x380000000000UL /* nothing of the process lives here */
#define REGION_PAGES 16384UL          /* 64 MiB */

static volatile unsigned long faults;

/* Runs in ring 0 on each page fault. */
static void on_page_fault(uintptr_t addr, uint64_t fec, struct dune_tf *tf)
{
	(void)fec;
	if ((tf->cs & 3) || addr < REGION || addr >= REGION + REGION_PAGES * PGSIZE)
		return; /* not ours: the runtime handles it */
	if (dune_vm_map_pages(pgroot, (void *)PGADDR(addr), PGSIZE, PERM_R | PERM_W) == 0)
		faults++;
}

static int count_page(const void *arg, ptent_t *pte, void *va)
{
	(void)pte;
	(void)va;
	(*(unsigned long *)arg)++;
	return 0;
}

int main(void)
{
	if (dune_init_and_enter())
		return 2;
	dune_register_pgflt_handler(on_page_fault);

	/* Touch 100 pages spread over the region (97 is odd, so all are distinct). */
	unsigned long pages[100];
	for (int i = 0; i < 100; i++) {
		pages[i] = i * 97UL % REGION_PAGES;
		*(volatile unsigned long *)(REGION + pages[i] * PGSIZE) = pages[i];
	}
	/* Count what is mapped in the region now. */
	unsigned long mapped = 0;
	dune_vm_page_walk(pgroot, (void *)REGION, (void *)(REGION + REGION_PAGES * PGSIZE - 1), count_page, &mapped);
	printf("demand paging: touched %d pages, %lu faults handled, %lu of %lu pages mapped\n", 100, faults, mapped,
		   REGION_PAGES);

	/* The data is there, and further accesses no longer fault. */
	int intact = 1;
	for (int i = 0; i < 100; i++)
		intact &= *(volatile unsigned long *)(REGION + pages[i] * PGSIZE) == pages[i];
	printf("demand paging: data intact: %s, faults after rereading: %lu\n", intact ? "yes" : "no", faults);

	dune_register_pgflt_handler(NULL);
	dune_vm_unmap(pgroot, (void *)REGION, REGION_PAGES * PGSIZE); /* gives the pages back */
	return 0;
}

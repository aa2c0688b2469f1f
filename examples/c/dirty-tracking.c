/*
 * dirty-tracking.c - which pages of a buffer were written since the last look?
 *
 * In Dune mode the process reads its own page table, so the CPU's dirty bits
 * answer this without write-protecting anything and without faults. Each round
 * clears the accessed and dirty bits of the buffer's entries, flushes the TLB (so
 * the CPU sets them again on the next write), writes some pages, and lists the
 * entries the CPU marked dirty.
 *
 * Only writes made by this CPU in Dune mode set the bits: data the kernel writes
 * into the buffer on the process's behalf (read(2)) goes through the host's page
 * table and is not seen here.
 *
 * Run in Dune mode (the VM lane). The Rust version is
 * examples/rust/src/bin/dirty_tracking.rs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libdune/dune.h"

#define PAGES 256

static char *buf;

static int clear_bits(const void *arg, ptent_t *pte, void *va)
{
	(void)arg;
	(void)va;
	*pte &= ~(ptent_t)(PTE_A | PTE_D);
	return 0;
}

/* Appends the page number of each dirty entry to the list in arg. */
static int collect_dirty(const void *arg, ptent_t *pte, void *va)
{
	unsigned long *list = (unsigned long *)arg; /* list[0] = count */
	if (*pte & PTE_D)
		list[1 + list[0]++] = ((char *)va - buf) / PGSIZE;
	return 0;
}

int main(void)
{
	if (dune_init_and_enter())
		return 2;
	/* An ordinary heap buffer, page aligned, every page touched once so it is mapped. */
	if (posix_memalign((void **)&buf, PGSIZE, PAGES * PGSIZE))
		return 1;
	memset(buf, 1, PAGES * PGSIZE);
	char *last = buf + PAGES * PGSIZE - 1;

	for (int round = 1; round <= 3; round++) {
		dune_vm_page_walk(pgroot, buf, last, clear_bits, NULL);
		dune_flush_tlb();
		/* Write every (round * 17)th page, and read some others (reads do not count). */
		unsigned long written[PAGES], nwritten = 0, sum = 0;
		for (int i = 0; i < PAGES; i += round * 17) {
			buf[i * PGSIZE] = round;
			written[nwritten++] = i;
		}
		for (int i = 1; i < PAGES; i += 5)
			sum += *(volatile char *)(buf + i * PGSIZE);
		(void)sum;
		unsigned long dirty[1 + PAGES] = {0};
		dune_vm_page_walk(pgroot, buf, last, collect_dirty, dirty);

		int same = dirty[0] == nwritten && !memcmp(dirty + 1, written, nwritten * sizeof(long));
		printf("dirty tracking: round %d: wrote %lu pages, dirty [", round, nwritten);
		for (unsigned long i = 0; i < dirty[0]; i++)
			printf("%s%lu", i ? ", " : "", dirty[1 + i]);
		printf("], same: %s\n", same ? "yes" : "no");
	}
	free(buf);
	return 0;
}

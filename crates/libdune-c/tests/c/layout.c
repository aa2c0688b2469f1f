/*
 * layout.c - the layout globals: phys_limit (1 << the guest's MAXPHYADDR, as
 * DUNE_EXPECT_MAXPHYADDR says when set), stack_base (the main stack's 1 GiB window),
 * and mmap_base: a free window below the kernel's mmap area that the kernel does not
 * use for new mappings, and where MAP_FIXED mappings made from Dune mode work (at
 * its start, middle and 8 GiB end), also after a fork. Prints "ok layout" on
 * success, exits 1 at the first failed check.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdune/dune.h"
#include "check.h"

#define GIB    (1UL << 30)
#define WINDOW (64 * GIB) /* free when dune_init chose it */
#define USABLE (8 * GIB)  /* what the original's sandbox uses */
#define CHUNK  (2UL << 20)

/* Whether any line of /proc/self/maps overlaps [lo, hi). */
static int mapped_in(uintptr_t lo, uintptr_t hi)
{
	FILE *f = fopen("/proc/self/maps", "r");
	CHECK(f != NULL);
	char line[512];
	int hit = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long b, e;
		if (sscanf(line, "%lx-%lx", &b, &e) == 2 && b < hi && e > lo)
			hit = 1;
	}
	fclose(f);
	return hit;
}

/* Maps CHUNK bytes at addr with MAP_FIXED_NOREPLACE (fails if anything is there),
 * writes and reads them in Dune mode, and checks they are in the guest page table. */
static void use_at(uintptr_t addr, unsigned char tag)
{
	unsigned char *p = mmap((void *)addr, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECKF(p == (unsigned char *)addr, "MAP_FIXED_NOREPLACE at %#lx: %p", (unsigned long)addr, (void *)p);
	for (size_t i = 0; i < CHUNK; i += PGSIZE)
		p[i] = tag;
	for (size_t i = 0; i < CHUNK; i += PGSIZE)
		CHECK(p[i] == tag);
	uintptr_t pa = dune_va_to_pa(p + PGSIZE);
	CHECKF(pa != 0 && pa < phys_limit, "pa %#lx, phys_limit %#lx", (unsigned long)pa, (unsigned long)phys_limit);
	CHECK(munmap(p, CHUNK) == 0);
}

int main(void)
{
	CHECK(phys_limit == 0 && mmap_base == 0 && stack_base == 0);
	ENTER();

	/* phys_limit: a power of two, the guest's MAXPHYADDR. */
	CHECKF(phys_limit >= (1UL << 36) && phys_limit <= (1UL << 52) && (phys_limit & (phys_limit - 1)) == 0, "phys_limit %#lx",
		   (unsigned long)phys_limit);
	const char *want = getenv("DUNE_EXPECT_MAXPHYADDR");
	if (want)
		CHECKF(phys_limit == 1UL << atoi(want), "phys_limit %#lx, expected %s bits", (unsigned long)phys_limit, want);

	/* stack_base: the main stack is in its 1 GiB window. */
	int local;
	CHECK(stack_base % GIB == 0);
	CHECKF(stack_base <= (uintptr_t)&local && (uintptr_t)&local < stack_base + GIB, "stack_base %#lx, a local at %p",
		   (unsigned long)stack_base, (void *)&local);

	/* mmap_base: aligned, below the kernel's mmap area (libc is above it), free. */
	CHECK(mmap_base % GIB == 0);
	CHECKF(mmap_base + WINDOW <= (uintptr_t)&printf && mmap_base + WINDOW <= (uintptr_t)&local, "mmap_base %#lx",
		   (unsigned long)mmap_base);
	CHECK(!mapped_in(mmap_base, mmap_base + WINDOW));

	/* The kernel places new mappings elsewhere: 2 GiB of reservations stay out of it. */
	void *res[64];
	for (int i = 0; i < 64; i++) {
		res[i] = mmap(NULL, 32UL << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		CHECK(res[i] != MAP_FAILED);
		CHECKF((uintptr_t)res[i] + (32UL << 20) <= mmap_base || (uintptr_t)res[i] >= mmap_base + USABLE, "mmap at %p",
			   res[i]);
	}
	CHECK(!mapped_in(mmap_base, mmap_base + USABLE));
	for (int i = 0; i < 64; i++)
		CHECK(munmap(res[i], 32UL << 20) == 0);

	/* MAP_FIXED into the window from Dune mode, as the original's sandbox does. */
	use_at(mmap_base, 1);
	use_at(mmap_base + USABLE / 2, 2);
	use_at(mmap_base + USABLE - CHUNK, 3);
	char *fixed = mmap((void *)(mmap_base + GIB), 4 * PGSIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(fixed == (char *)(mmap_base + GIB));
	strcpy(fixed + 3 * PGSIZE, "in the window");

	/* A forked child has the same layout and the same mapping. */
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (dune_enter() != 0 || mmap_base + GIB != (uintptr_t)fixed || strcmp(fixed + 3 * PGSIZE, "in the window") != 0)
			_exit(3);
		use_at(mmap_base + 2 * GIB, 4);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	CHECK(munmap(fixed, 4 * PGSIZE) == 0);

	printf("phys_limit %#lx mmap_base %#lx stack_base %#lx\n", (unsigned long)phys_limit, (unsigned long)mmap_base,
		   (unsigned long)stack_base);
	printf("ok layout\n");
	return 0;
}

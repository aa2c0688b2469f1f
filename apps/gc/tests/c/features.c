/* Finalizers, memory returned to the OS, and threads created with pthread_create
 * under GC_THREADS, through gc.h: `features SCENARIO` prints `ok SCENARIO`. */
#define GC_THREADS
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <gc.h>

#define CHECK(c, ...) do { if (!(c)) { fprintf(stderr, "FAILED %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } } while (0)

typedef struct Obj { long id; struct Obj *child; } Obj;

static long finalized, finalized_wrong;

static void fin(void *p, void *cd)
{
	Obj *o = p;
	/* The object and what it reaches are intact when its finalizer runs. */
	if (o->id % 2 != 1 || !o->child || o->child->id != -o->id || cd != (void *)(o->id * 16))
		finalized_wrong++;
	finalized++;
}

Obj **kept; /* a global root */

/* Dead stack slots and registers may still hold a pointer (the collector is
 * conservative): overwrite the stack below the caller. */
static __attribute__((noinline)) void clear_stack(void)
{
	volatile char junk[32768];
	memset((char *)junk, 0, sizeof junk);
}

static __attribute__((noinline)) void make_finalizable(void)
{
	kept = GC_MALLOC(sizeof(Obj *) * 1000);
	for (long i = 0; i < 1000; i++) {
		Obj *o = GC_NEW(Obj);
		o->id = i;
		o->child = GC_NEW(Obj);
		o->child->id = -i;
		GC_register_finalizer(o, fin, (void *)(i * 16), NULL, NULL);
		if (i % 2 == 0)
			kept[i] = o;
	}
}

static __attribute__((noinline)) void check_kept(void)
{
	GC_finalization_proc old = NULL;
	void *ocd = NULL;
	for (long i = 0; i < 1000; i += 2)
		CHECK(kept[i]->id == i && kept[i]->child->id == -i, "kept object %ld damaged", i);
	/* Unregistering returns the old registration. */
	GC_register_finalizer(kept[2], NULL, NULL, &old, &ocd);
	CHECK(old == fin && ocd == (void *)32, "old registration not returned");
	kept = NULL;
}

static __attribute__((noinline)) void collect_and_finalize(void)
{
	clear_stack();
	for (int k = 0; k < 4; k++) {
		GC_gcollect();
		GC_invoke_finalizers();
	}
}

static void finalizers(void)
{
	make_finalizable();
	collect_and_finalize();
	/* Every unreachable one but at most two a dead slot still names. */
	CHECK(finalized >= 498 && finalized <= 500, "%ld finalizers ran, 500 expected", finalized);
	CHECK(finalized_wrong == 0, "%ld finalizers saw a freed object", finalized_wrong);
	check_kept();
	collect_and_finalize();
	CHECK(finalized >= 997 && finalized <= 999, "after dropping the rest: %ld finalizers ran, 999 expected", finalized);
	printf("finalized %ld of 999\n", finalized);
}

static long rss_mb(void)
{
	long pages = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	CHECK(f && fscanf(f, "%ld %ld", &pages, &res) == 2, "statm");
	fclose(f);
	return res * sysconf(_SC_PAGESIZE) >> 20;
}

static void release(void)
{
	enum { N = 1600 };
	char **big = GC_MALLOC(sizeof(char *) * N);
	for (int i = 0; i < N; i++) {
		big[i] = GC_MALLOC_ATOMIC(64 * 1024);
		memset(big[i], 0x5a, 64 * 1024);
	}
	long before = rss_mb();
	size_t heap = GC_get_heap_size();
	memset(big, 0, sizeof(char *) * N);
	for (int k = 0; k < 4; k++)
		GC_gcollect();
	long after = rss_mb();
	printf("rss %ld MiB -> %ld MiB, returned %zu MiB\n", before, after, GC_get_unmapped_bytes() >> 20);
	CHECK(GC_get_unmapped_bytes() >= 80u << 20, "only %zu bytes returned", GC_get_unmapped_bytes());
	CHECK(before - after >= 80, "resident memory %ld MiB -> %ld MiB", before, after);
	/* (The heap size is published by collections: `heap` was read before the last.) */
	CHECK(GC_get_heap_size() < (16u << 20), "heap size %zu -> %zu", heap, GC_get_heap_size());
	/* Reused memory reads as zeros. */
	for (int i = 0; i < N; i++) {
		char *p = GC_MALLOC(64 * 1024);
		CHECK(p[0] == 0 && p[64 * 1024 - 1] == 0, "reused memory not zeroed");
	}
}

static void *worker(void *arg)
{
	long t = (long)arg;
	Obj *head = NULL;
	for (long i = 0; i < 20000; i++) {
		Obj *o = GC_NEW(Obj);
		o->id = t * 1000000 + i;
		o->child = head;
		head = o;
		GC_MALLOC(300); /* garbage, so collections stop this thread mid-work */
	}
	long n = 0;
	for (Obj *o = head; o && n <= 20000; o = o->child, n++)
		if (o->id != t * 1000000 + 19999 - n)
			return (void *)1;
	return (void *)(n == 20000 ? 0L : 1L);
}

static void threads(void)
{
	pthread_t t[4];
	for (long i = 0; i < 4; i++)
		CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0, "pthread_create");
	for (int i = 0; i < 4; i++) {
		void *r;
		CHECK(pthread_join(t[i], &r) == 0 && r == NULL, "thread %d's list was damaged", i);
	}
	CHECK(GC_get_gc_no() > 2, "no collection ran while the threads worked");
}

int main(int argc, char **argv)
{
	GC_INIT();
	if (getenv("INCREMENTAL"))
		GC_enable_incremental();
	const char *s = argc > 1 ? argv[1] : "";
	if (!strcmp(s, "finalizers"))
		finalizers();
	else if (!strcmp(s, "release"))
		release();
	else if (!strcmp(s, "threads"))
		threads();
	else {
		fprintf(stderr, "usage: features finalizers|release|threads\n");
		return 2;
	}
	printf("ok %s source=%s collections=%lu\n", s, GC_dirty_source(), (unsigned long)GC_get_gc_no());
	return 0;
}

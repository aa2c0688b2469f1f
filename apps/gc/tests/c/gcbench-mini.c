/* A small GCBench-shaped check of the C API: trees built and dropped, a long-lived
 * tree and an atomic array that must survive every collection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gc.h>

typedef struct Node { struct Node *left, *right; long i, j; } Node;

static Node *make(int depth)
{
	Node *n = GC_NEW(Node);
	if (!n) { fprintf(stderr, "out of memory\n"); exit(1); }
	if (depth > 0) { n->left = make(depth - 1); n->right = make(depth - 1); }
	return n;
}

static long count(Node *n) { return n ? 1 + count(n->left) + count(n->right) : 0; }

int main(void)
{
	GC_INIT();
	if (getenv("INCREMENTAL"))
		GC_enable_incremental();
	Node *longlived = make(14);
	double *array = GC_MALLOC_ATOMIC(sizeof(double) * 50000);
	for (int i = 0; i < 50000; i++) array[i] = 1.0 / (i + 1);
	for (int d = 4; d <= 14; d += 2)
		for (int k = 0; k < (1 << (16 - d)); k++)
			if (count(make(d)) != (1L << (d + 1)) - 1) { fprintf(stderr, "bad tree\n"); return 1; }
	char *s = GC_MALLOC(10);
	strcpy(s, "realloc");
	s = GC_REALLOC(s, 5000);
	if (strcmp(s, "realloc")) { fprintf(stderr, "realloc lost data\n"); return 1; }
	GC_gcollect();
	if (count(longlived) != (1L << 15) - 1 || array[1000] != 1.0 / 1001) { fprintf(stderr, "live data lost\n"); return 1; }
	printf("ok source=%s incremental=%d collections=%lu heap=%zu total=%zu\n", GC_dirty_source(), GC_is_incremental_mode(), (unsigned long)GC_gc_no, GC_get_heap_size(), GC_get_total_bytes());
	return 0;
}

/* GCBench (Ellis, Kovac, Boehm), with Boehm's parameters: a stretch tree of depth 18,
 * a long-lived tree of depth 16 and an array of 500,000 doubles kept alive, and
 * trees of depth 4 to 16 built top-down and bottom-up. */
#include "bench.h"

enum { kStretchTreeDepth = 18, kLongLivedTreeDepth = 16, kArraySize = 500000, kMinTreeDepth = 4, kMaxTreeDepth = 16 };

typedef struct Node0 { struct Node0 *left, *right; int i, j; } Node;

static long TreeSize(int i) { return (1L << (i + 1)) - 1; }
static long NumIters(int i) { return 2 * TreeSize(kStretchTreeDepth) / TreeSize(i); }

static Node *NewNode(Node *l, Node *r)
{
	Node *n = GC_NEW(Node);
	if (!n) bench_fail("gcbench", "out of memory");
	n->left = l;
	n->right = r;
	return n;
}

static void Populate(int depth, Node *n)
{
	if (depth <= 0) return;
	depth--;
	n->left = NewNode(NULL, NULL);
	n->right = NewNode(NULL, NULL);
	Populate(depth, n->left);
	Populate(depth, n->right);
}

static Node *MakeTree(int depth)
{
	return depth <= 0 ? NewNode(NULL, NULL) : NewNode(MakeTree(depth - 1), MakeTree(depth - 1));
}

static long Count(Node *n) { return n ? 1 + Count(n->left) + Count(n->right) : 0; }

int main(int argc, char **argv)
{
	long scale = bench_begin(argc, argv);
	if (Count(MakeTree(kStretchTreeDepth)) != TreeSize(kStretchTreeDepth)) bench_fail("gcbench", "stretch tree");
	Node *longLived = NewNode(NULL, NULL);
	Populate(kLongLivedTreeDepth, longLived);
	double *array = GC_MALLOC_ATOMIC(sizeof(double) * kArraySize);
	if (!array) bench_fail("gcbench", "out of memory");
	for (int i = 0; i < kArraySize / 2; i++) array[i] = 1.0 / i;
	for (int d = kMinTreeDepth; d <= kMaxTreeDepth; d += 2) {
		long iters = NumIters(d) / scale;
		if (iters < 1) iters = 1;
		for (long i = 0; i < iters; i++) {
			Node *t = NewNode(NULL, NULL);
			Populate(d, t);
			if (Count(t) != TreeSize(d)) bench_fail("gcbench", "top-down tree");
			if (Count(MakeTree(d)) != TreeSize(d)) bench_fail("gcbench", "bottom-up tree");
		}
	}
	if (Count(longLived) != TreeSize(kLongLivedTreeDepth) || array[1000] != 1.0 / 1000) bench_fail("gcbench", "long-lived data lost");
	bench_end("gcbench");
	return 0;
}

/* HashMap: 3,000,000 updates over 30,000 keys, each storing a new 4,000-byte value
 * (the old one becomes garbage), in a chained table allocated by the collector. */
#include "bench.h"

enum { KEYS = 30000, BUCKETS = 4096, VALUE = 4000 };

typedef struct Entry { struct Entry *next; long key; unsigned char *value; } Entry;

int main(int argc, char **argv)
{
	long scale = bench_begin(argc, argv);
	long updates = 3000000 / scale;
	Entry **table = GC_MALLOC(sizeof(Entry *) * BUCKETS);
	if (!table) bench_fail("hashmap", "out of memory");
	unsigned long x = 88172645463325252UL;
	for (long u = 0; u < updates; u++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		long key = (long)(x % KEYS);
		Entry **b = &table[key % BUCKETS], *e = *b;
		while (e && e->key != key) e = e->next;
		if (!e) {
			e = GC_NEW(Entry);
			if (!e) bench_fail("hashmap", "out of memory");
			e->key = key;
			e->next = *b;
			*b = e;
		}
		unsigned char *v = GC_MALLOC_ATOMIC(VALUE);
		if (!v) bench_fail("hashmap", "out of memory");
		v[0] = (unsigned char)key;
		v[VALUE - 1] = (unsigned char)(u & 0xff);
		e->value = v;
	}
	long found = 0;
	for (int i = 0; i < BUCKETS; i++)
		for (Entry *e = table[i]; e; e = e->next) {
			if (e->value[0] != (unsigned char)e->key) bench_fail("hashmap", "a value was lost");
			found++;
		}
	if (found == 0 || found > KEYS) bench_fail("hashmap", "key count");
	bench_end("hashmap");
	return 0;
}

/* LinkedList: for i < 10,000, build a list of 10i+1 nodes and sum it. The work
 * grows with the square of the list count, so a divisor d makes it 10,000/sqrt(d). */
#include <math.h>
#include "bench.h"

typedef struct Cell { struct Cell *next; long value; } Cell;

int main(int argc, char **argv)
{
	long scale = bench_begin(argc, argv);
	long n = (long)(10000 / sqrt((double)scale));
	for (long i = 0; i < n; i++) {
		long len = 10 * i + 1;
		Cell *head = NULL;
		for (long k = 0; k < len; k++) {
			Cell *c = GC_NEW(Cell);
			if (!c) bench_fail("linkedlist", "out of memory");
			c->next = head;
			c->value = k;
			head = c;
		}
		long sum = 0, count = 0;
		for (Cell *c = head; c; c = c->next) {
			sum += c->value;
			count++;
		}
		if (count != len || sum != len * (len - 1) / 2) bench_fail("linkedlist", "list sum");
	}
	bench_end("linkedlist");
	return 0;
}

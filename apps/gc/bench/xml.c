/* XML: parse a generated bibliography of about 150 MB (DBLP-shaped records with one
 * to four authors) into a tree allocated by the collector, then count publications
 * per author, checked against the counts the generator kept. */
#include "bench.h"

enum { AUTHORS = 50000, HASH = 65536 };

typedef struct XNode {
	char *name, *text, *key;
	struct XNode **kids;
	long nkids, cap;
} XNode;

typedef struct Count { struct Count *next; char *name; long n; } Count;

static char *doc;
static long doc_len, doc_cap, *expected;

static void emit(const char *s)
{
	long n = (long)strlen(s);
	if (doc_len + n + 1 > doc_cap) {
		doc_cap = doc_cap ? doc_cap * 2 : 1 << 20;
		doc = realloc(doc, doc_cap);
		if (!doc) bench_fail("xml", "out of memory for the document");
	}
	memcpy(doc + doc_len, s, n + 1);
	doc_len += n;
}

static void generate(long bytes)
{
	char buf[256];
	unsigned long x = 0x2545F4914F6CDD1DUL;
	expected = calloc(AUTHORS, sizeof(long));
	emit("<?xml version=\"1.0\"?>\n<dblp>\n");
	for (long r = 0; doc_len < bytes; r++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		snprintf(buf, sizeof buf, "<article key=\"journals/x/%ld\">", r);
		emit(buf);
		int authors = 1 + (int)(x % 4);
		for (int a = 0; a < authors; a++) {
			long who = (long)((x >> (8 + 12 * a)) % AUTHORS);
			expected[who]++;
			snprintf(buf, sizeof buf, "<author>Author Number %ld</author>", who);
			emit(buf);
		}
		snprintf(buf, sizeof buf, "<title>On the collection of garbage, part %ld</title><year>%ld</year></article>\n", r, 1970 + (long)(x % 50));
		emit(buf);
	}
	emit("</dblp>\n");
}

static const char *p;

static char *copy(const char *s, long n)
{
	char *c = GC_MALLOC_ATOMIC(n + 1);
	if (!c) bench_fail("xml", "out of memory");
	memcpy(c, s, n);
	c[n] = 0;
	return c;
}

static void skip_ws(void) { while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++; }

static XNode *element(void)
{
	/* At '<' of a start tag. */
	XNode *e = GC_NEW(XNode);
	if (!e) bench_fail("xml", "out of memory");
	const char *s = ++p;
	while (*p != '>' && *p != ' ' && *p != '/') p++;
	e->name = copy(s, p - s);
	while (*p == ' ') {
		skip_ws();
		const char *k = p;
		while (*p != '=') p++;
		long klen = p - k;
		p += 2;
		const char *v = p;
		while (*p != '"') p++;
		if (klen == 3 && !memcmp(k, "key", 3)) e->key = copy(v, p - v);
		p++;
	}
	if (*p == '/') { p += 2; return e; }
	p++;
	for (;;) {
		const char *t = p;
		while (*p && *p != '<') p++;
		if (p > t && !e->text) {
			const char *q = t;
			while (q < p && (*q == ' ' || *q == '\n')) q++;
			if (q < p) e->text = copy(t, p - t);
		}
		if (!*p) bench_fail("xml", "unterminated element");
		if (p[1] == '/') {
			while (*p != '>') p++;
			p++;
			return e;
		}
		XNode *k = element();
		if (e->nkids == e->cap) {
			e->cap = e->cap ? 2 * e->cap : 4;
			e->kids = GC_REALLOC(e->kids, sizeof(XNode *) * e->cap);
			if (!e->kids) bench_fail("xml", "out of memory");
		}
		e->kids[e->nkids++] = k;
	}
}

static unsigned long hash(const char *s)
{
	unsigned long h = 5381;
	while (*s) h = h * 33 + (unsigned char)*s++;
	return h;
}

XNode *xml_root; /* a global root, as a program would keep its document */

int main(int argc, char **argv)
{
	long scale = bench_begin(argc, argv);
	generate(150L * 1000 * 1000 / scale);
	p = doc;
	while (*p != '<' || p[1] == '?') p++;
	xml_root = element();
	Count **counts = GC_MALLOC(sizeof(Count *) * HASH);
	if (!counts) bench_fail("xml", "out of memory");
	long pubs = 0;
	for (long i = 0; i < xml_root->nkids; i++) {
		XNode *rec = xml_root->kids[i];
		if (!rec->key) bench_fail("xml", "a record lost its key");
		pubs++;
		for (long j = 0; j < rec->nkids; j++) {
			XNode *a = rec->kids[j];
			if (strcmp(a->name, "author")) continue;
			Count **b = &counts[hash(a->text) % HASH], *c = *b;
			while (c && strcmp(c->name, a->text)) c = c->next;
			if (!c) {
				c = GC_NEW(Count);
				if (!c) bench_fail("xml", "out of memory");
				c->name = a->text;
				c->next = *b;
				*b = c;
			}
			c->n++;
		}
	}
	long authors = 0;
	for (int h = 0; h < HASH; h++)
		for (Count *c = counts[h]; c; c = c->next) {
			long who = atol(c->name + strlen("Author Number "));
			if (who < 0 || who >= AUTHORS || expected[who] != c->n) bench_fail("xml", "publications per author");
			authors++;
		}
	if (pubs == 0 || authors == 0) bench_fail("xml", "empty document");
	free(doc);
	bench_end("xml");
	return 0;
}

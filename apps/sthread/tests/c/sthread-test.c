/* The sthread C API, exercised scenario by scenario (argv[1]); each prints
 * "ok <scenario>" and exits 0, or says what failed and exits 1. Run in Dune mode
 * by crates/dune-tests/tests/sthread.rs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sthread.h>

#define CHECK(c, ...) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #c); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); exit(1); } } while (0)

static int global = 42;
static char secret_global[64] = "global secret";
static int *heap_secret;

/* Joins, failing with what ended the sthread if it did not return. */
static void *join_ok(sthread_t st)
{
	void *ret = NULL;
	struct sthread_violation w;
	if (sthread_join_why(st, &ret, &w) != 0) {
		fprintf(stderr, "sthread ended: kind %d errno %d nr %ld addr %#lx rip %#lx\n", w.kind, w.errnum, w.nr, w.addr, w.rip);
		exit(1);
	}
	return ret;
}

static void *body_ret(void *arg) { return (void *)((uintptr_t)arg + 1); }

static void *body_global(void *arg)
{
	(void)arg;
	int seen = global;
	global = 1000;
	return (void *)(intptr_t)seen;
}

static void *body_write(void *arg)
{
	const char *s = arg;
	return (void *)write(1, s, strlen(s));
}

static void smoke(void)
{
	sc_t sc;
	sthread_t st;
	void *ret;
	CHECK(sc_init(&sc) == 0, "sc_init");
	CHECK(sthread_create(&st, &sc, body_ret, (void *)41) == 0, "create: %s", strerror(errno));
	ret = join_ok(st);
	CHECK(ret == (void *)42, "ret %p", ret);
	for (int i = 0; i < 3; i++) {
		CHECK(sthread_create(&st, &sc, body_global, NULL) == 0, "create");
		CHECK(sthread_join(st, &ret) == 0, "join: %s", strerror(errno));
		CHECK(ret == (void *)42, "use %d saw global %ld", i, (long)ret);
	}
	CHECK(global == 42, "the master's global changed: %d", global);
	sc_fd_add(&sc, 1, PROT_WRITE);
	CHECK(sthread_create(&st, &sc, body_write, "hello from an sthread\n") == 0, "create");
	CHECK(sthread_join(st, &ret) == 0, "join write: %s", strerror(errno));
	CHECK(ret == (void *)22, "write returned %ld", (long)ret);
	(void)secret_global;
	(void)heap_secret;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: sthread-test SCENARIO\n");
		return 2;
	}
	heap_secret = malloc(sizeof *heap_secret);
	*heap_secret = 0x5ec7e7;
	if (sthread_init() != 0) {
		fprintf(stderr, "sthread_init: %s\n", strerror(errno));
		return 2;
	}
	const char *s = argv[1];
	if (!strcmp(s, "smoke"))
		smoke();
	else {
		fprintf(stderr, "unknown scenario %s\n", s);
		return 2;
	}
	printf("ok %s\n", s);
	return 0;
}

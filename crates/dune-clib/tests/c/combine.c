/* One program per combination of the project's C APIs (WITH_DUNE, WITH_STHREAD,
 * WITH_GC, WITH_SANDBOX), linked with the matching -l options (-ldune, -lsthread,
 * -ldune_gc, -ldune_sandbox), static or shared: crates/dune-clib/build-c.sh builds
 * every pair and all four together, and crates/dune-tests/tests/clib.rs runs them in
 * the lane. Each API is used for real; at the end the program checks that one copy of
 * the library is loaded (shared) or none (static), and prints "ok" and what it did. */
#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef WITH_DUNE
#include "libdune/dune.h"
#endif
#ifdef WITH_STHREAD
#include "sthread.h"
#endif
#ifdef WITH_GC
#include "gc.h"
#endif
#ifdef WITH_SANDBOX
#include "dune/sandbox.h"
#endif

#define FAIL(...) do { printf("FAIL: " __VA_ARGS__); printf("\n"); exit(1); } while (0)

static char did[256];

static void note(const char *what)
{
	strcat(did, " ");
	strcat(did, what);
}

/* Loaded objects named like one of the library's names. */
static int copies(struct dl_phdr_info *info, size_t size, void *data)
{
	static const char *names[] = { "libdune.so", "libsthread.so", "libdune_sthread.so", "libdune_gc.so", "libdune_sandbox.so" };
	(void)size;
	const char *base = strrchr(info->dlpi_name, '/');
	base = base ? base + 1 : info->dlpi_name;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(base, names[i]) == 0)
			++*(int *)data;
	return 0;
}

#ifdef WITH_STHREAD
static void *in_sthread(void *arg)
{
	return (char *)arg + 1;
}
#endif

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
#ifdef WITH_SANDBOX
	/* First, in a child, before anything here enters Dune mode: the sandbox's monitor
	 * takes the process over (exec semantics) and runs /bin/true under its policy. */
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		char err[512];
		struct dune_sandbox *sb = dune_sandbox_new(NULL, err, sizeof err);
		if (!sb || dune_sandbox_allow_read(sb, "/", err, sizeof err) != 0) {
			fprintf(stderr, "sandbox: %s\n", err);
			_exit(90);
		}
		char *args[] = { "/bin/true", NULL };
		char *env[] = { NULL };
		dune_sandbox_exec(sb, args, env, err, sizeof err);
		fprintf(stderr, "sandbox exec: %s\n", err);
		_exit(91);
	}
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		FAIL("sandboxed /bin/true: status %#x", status);
	note("sandbox");
#endif
#ifdef WITH_DUNE
	if (dune_init_and_enter() != 0)
		FAIL("dune_init_and_enter");
	unsigned short cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	if ((cs & 3) != 0)
		FAIL("not in ring 0 after dune_enter (cs %#x)", cs);
	note("dune");
#endif
#ifdef WITH_GC
	GC_INIT();
	void **keep = GC_MALLOC(64 * sizeof(void *));
	for (int i = 0; i < 64; i++) {
		keep[i] = GC_MALLOC(4096);
		memset(keep[i], i, 4096);
		for (int j = 0; j < 16; j++)
			GC_MALLOC(4096); /* garbage */
	}
	GC_gcollect();
	for (int i = 0; i < 64; i++)
		if (((unsigned char *)keep[i])[4095] != i)
			FAIL("gc: live block %d lost", i);
	note("gc");
#endif
#ifdef WITH_STHREAD
	if (sthread_init() != 0)
		FAIL("sthread_init: %s", strerror(errno));
	sc_t sc;
	sthread_t st;
	void *ret = NULL;
	sc_init(&sc);
	if (sthread_create(&st, &sc, in_sthread, (void *)0x1000) != 0 || sthread_join(st, &ret) != 0)
		FAIL("sthread: %s", strerror(errno));
	if (ret != (void *)0x1001)
		FAIL("sthread returned %p", ret);
	note("sthread");
#endif
	int n = 0;
	dl_iterate_phdr(copies, &n);
#ifdef SHARED
	if (n != 1)
		FAIL("%d copies of the library loaded, not 1", n);
#else
	if (n != 0)
		FAIL("%d copies of the library loaded in a static program", n);
#endif
	printf("ok%s (library objects loaded: %d)\n", did, n);
	return 0;
}

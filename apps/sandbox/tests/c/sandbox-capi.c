/* The sandbox's C API: `sandbox-capi POLICY|- DIR PROGRAM [ARGS...]` runs PROGRAM in
 * the sandbox (built-in policy for "-") with DIR readable. Before that it checks the
 * API's errors: a missing policy file and a malformed one give NULL and a one-line
 * message; a bad network rule gives -1. */
#include <dune/sandbox.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
	char err[256];
	if (argc < 4) {
		fprintf(stderr, "usage: sandbox-capi POLICY|- DIR PROGRAM [ARGS...]\n");
		return 2;
	}
	if (dune_sandbox_new("/no/such/policy.json", err, sizeof err) != NULL || strchr(err, '\n') || !strstr(err, "/no/such/policy.json")) {
		fprintf(stderr, "missing policy: got \"%s\"\n", err);
		return 3;
	}
	struct dune_sandbox *sb = dune_sandbox_new(strcmp(argv[1], "-") ? argv[1] : NULL, err, sizeof err);
	if (!sb) {
		printf("policy error: %s\n", err);
		return 4;
	}
	if (dune_sandbox_allow_net(sb, "not an address", err, sizeof err) != -1 || !err[0]) {
		fprintf(stderr, "bad network rule accepted\n");
		return 5;
	}
	if (dune_sandbox_allow_read(sb, argv[2], err, sizeof err) != 0) {
		fprintf(stderr, "allow_read: %s\n", err);
		return 6;
	}
	int status = dune_sandbox_exec(sb, argv + 3, environ, err, sizeof err);
	printf("exec failed (%d): %s\n", status, err);
	return status;
}

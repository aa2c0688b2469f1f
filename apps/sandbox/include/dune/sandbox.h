/* The Dune sandbox, C API (libdune_sandbox.a / libdune_sandbox.so).
 *
 * Runs an unmodified Linux program in ring 3 of a hardware VM, under a policy, with
 * a monitor in ring 0 of the same process that checks every system call.
 *
 *     char err[256];
 *     struct dune_sandbox *sb = dune_sandbox_new(NULL, err, sizeof err); // built-in policy
 *     dune_sandbox_allow_read(sb, "/srv/data", err, sizeof err);
 *     int status = dune_sandbox_exec(sb, argv, environ, err, sizeof err);
 *     // only on failure: status is 125, 126 or 127 and err says why
 *
 * Errors are return values with a one-line message in the caller's buffer (cut to
 * fit, always NUL-terminated when errlen > 0). */
#ifndef DUNE_SANDBOX_H
#define DUNE_SANDBOX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dune_sandbox;

/* A sandbox enforcing the built-in policy (policy_file NULL) or an OCI runtime-spec
 * seccomp profile (Docker's format, with an optional "dune" section). NULL on error
 * (unreadable file, bad JSON, unknown key: "FILE:LINE:COL: message"). */
struct dune_sandbox *dune_sandbox_new(const char *policy_file, char *err, size_t errlen);

/* Lets the program read (allow_read) or read and write (allow_write) a file or tree;
 * bind, connect and send to an address "ADDR[/PREFIX][:PORT]" (allow_net). 0, or -1
 * with a message. */
int dune_sandbox_allow_read(struct dune_sandbox *sb, const char *path, char *err, size_t errlen);
int dune_sandbox_allow_write(struct dune_sandbox *sb, const char *path, char *err, size_t errlen);
int dune_sandbox_allow_net(struct dune_sandbox *sb, const char *spec, char *err, size_t errlen);

/* Log every system call with its arguments and verdict (trace); print the monitor's
 * counts when the program exits (stats). */
void dune_sandbox_trace(struct dune_sandbox *sb, int on);
void dune_sandbox_stats(struct dune_sandbox *sb, int on);

/* Replaces the calling process with argv[0] (found as execvp does, using envp's
 * PATH) running in the sandbox, as execve would: the process's exit status becomes
 * the program's. Call it before the process has other threads. Returns only on
 * failure, with a shell-like status (127 not found, 126 cannot be run, 125 Dune mode
 * unavailable) and the reason in err. Frees sb either way. */
int dune_sandbox_exec(struct dune_sandbox *sb, char *const argv[], char *const envp[], char *err, size_t errlen);

/* Frees a sandbox that was not run. */
void dune_sandbox_free(struct dune_sandbox *sb);

#ifdef __cplusplus
}
#endif

#endif

/* Ordinary program behaviour the sandbox must keep: threads, fork and exec,
 * signals and timers. `sandbox-workload NAME` prints what it saw and exits 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CHECK(c)                                                           \
	do {                                                               \
		if (!(c)) {                                                \
			fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #c); \
			exit(1);                                           \
		}                                                          \
	} while (0)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static __thread long mine;

static void *worker(void *arg) {
	for (int i = 0; i < 20000; i++) {
		mine++;
		pthread_mutex_lock(&lock);
		counter++;
		pthread_mutex_unlock(&lock);
	}
	return (void *)(mine + (long)arg * 0);
}

static void *spin(void *arg) {
	(void)arg;
	for (volatile unsigned long i = 0;; i++)
		;
	return NULL;
}

static void *block_read(void *arg) {
	char c;
	read(*(int *)arg, &c, 1);
	return NULL;
}

static void *sleeper(void *arg) {
	(void)arg;
	sleep(1000);
	return NULL;
}

static volatile sig_atomic_t alarms, usr1, chld, on_alt;
static char altstack[65536];

static void on_alarm(int s) { (void)s; alarms++; }
static void on_chld(int s) { (void)s; chld++; }
static void on_usr1(int s, siginfo_t *si, void *uc) {
	(void)s; (void)uc;
	if (si->si_signo == SIGUSR1 && si->si_code == SI_TKILL)
		usr1++;
	/* Clobber the FPU: the interrupted code's registers must come back. */
	volatile double x = 1.5;
	for (int i = 0; i < 10; i++)
		x = x * 3.25 + 0.5;
}
static void on_usr2(int s) {
	(void)s;
	char here;
	if (&here >= altstack && &here < altstack + sizeof altstack)
		on_alt = 1;
}

int main(int argc, char **argv) {
	if (argc < 2)
		return 2;
	const char *what = argv[1];
	if (!strcmp(what, "threads")) {
		pthread_t t[8];
		for (long i = 0; i < 8; i++)
			CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
		long per = 0;
		for (int i = 0; i < 8; i++) {
			void *r;
			pthread_join(t[i], &r);
			per += (long)r;
		}
		printf("threads: counter %ld, per-thread %ld\n", counter, per);
		CHECK(counter == 160000 && per == 160000);
		return 0;
	}
	if (!strcmp(what, "fork-exec")) {
		pid_t c = fork();
		CHECK(c >= 0);
		if (c == 0) {
			execl("/bin/echo", "echo", "child-exec", (char *)NULL);
			_exit(99);
		}
		int st;
		CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
		pid_t s;
		char *args[] = { "sh", "-c", "exit 7", NULL };
		CHECK(posix_spawn(&s, "/bin/sh", NULL, NULL, args, environ) == 0);
		CHECK(waitpid(s, &st, 0) == s && WIFEXITED(st) && WEXITSTATUS(st) == 7);
		/* A child that dies by a signal. */
		c = fork();
		if (c == 0) {
			raise(SIGTERM);
			_exit(0);
		}
		CHECK(waitpid(c, &st, 0) == c && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
		printf("fork-exec: ok\n");
		return 0;
	}
	if (!strcmp(what, "signals")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_alarm;
		CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
		/* A timer interrupting pure ring-3 computation: no system calls at all. */
		struct itimerval it = { { 0, 20000 }, { 0, 20000 } };
		CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
		volatile uint64_t spin = 0;
		while (alarms < 3)
			spin++;
		memset(&it, 0, sizeof it);
		setitimer(ITIMER_REAL, &it, NULL);
		/* SA_SIGINFO handler; FPU state kept across it. */
		sa.sa_handler = NULL;
		sa.sa_sigaction = on_usr1;
		sa.sa_flags = SA_SIGINFO;
		CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
		volatile double d = 2.0;
		double before = d * 1.25;
		raise(SIGUSR1);
		CHECK(usr1 == 1 && d * 1.25 == before);
		/* Blocked, pending, delivered on unblock. */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
		raise(SIGUSR1);
		sigset_t pend;
		sigpending(&pend);
		CHECK(usr1 == 1 && sigismember(&pend, SIGUSR1));
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		CHECK(usr1 == 2);
		/* An alternate signal stack. */
		stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack };
		CHECK(sigaltstack(&ss, NULL) == 0);
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_usr2;
		sa.sa_flags = SA_ONSTACK;
		CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
		raise(SIGUSR2);
		CHECK(on_alt == 1);
		/* SIGCHLD. */
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_chld;
		CHECK(sigaction(SIGCHLD, &sa, NULL) == 0);
		pid_t c = fork();
		if (c == 0)
			_exit(0);
		int st;
		while (waitpid(c, &st, 0) < 0 && errno == EINTR)
			;
		for (int i = 0; i < 100 && !chld; i++)
			usleep(1000);
		CHECK(chld == 1);
		/* A blocking read interrupted by a timer: EINTR without SA_RESTART. */
		int p[2];
		CHECK(pipe(p) == 0);
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_alarm;
		sigaction(SIGALRM, &sa, NULL);
		alarms = 0;
		struct itimerval once = { { 0, 0 }, { 0, 30000 } };
		setitimer(ITIMER_REAL, &once, NULL);
		char b;
		errno = 0;
		CHECK(read(p[0], &b, 1) == -1 && errno == EINTR && alarms == 1);
		printf("signals: ok (spun %llu)\n", (unsigned long long)(spin > 0));
		return 0;
	}
	if (!strcmp(what, "vdso")) {
		/* Time through the vDSO: no system call should reach the monitor. */
		struct timespec ts;
		long long last = 0;
		for (int i = 0; i < 20000; i++) {
			CHECK(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
			long long now = ts.tv_sec * 1000000000LL + ts.tv_nsec;
			CHECK(now >= last);
			last = now;
		}
		printf("vdso: ok\n");
		return 0;
	}
	if (!strcmp(what, "exec-threads")) {
		/* execve from a program with threads busy in ring 3, blocked in read and
		 * sleeping: they all end, the new image runs. */
		pthread_t t;
		static int p[2];
		CHECK(pipe(p) == 0);
		CHECK(pthread_create(&t, NULL, spin, NULL) == 0);
		CHECK(pthread_create(&t, NULL, block_read, &p[0]) == 0);
		CHECK(pthread_create(&t, NULL, sleeper, NULL) == 0);
		usleep(20000);
		execl("/bin/echo", "echo", "exec-threads: ok", (char *)NULL);
		return 1;
	}
	if (!strcmp(what, "exit-group")) {
		/* Threads spinning in ring 3 forever; exit from main must end them all. */
		pthread_t t;
		for (int i = 0; i < 4; i++)
			CHECK(pthread_create(&t, NULL, spin, NULL) == 0);
		usleep(20000);
		printf("exit-group: ok\n");
		fflush(stdout);
		exit(0);
	}
	return 2;
}

/* A privilege-separated web server, the Wedge way (issue 10's demo).
 *
 *   sthread-httpd PORT DOCROOT KEYFILE CONNECTIONS
 *
 * The master loads a private key into tag K and serves CONNECTIONS connections on
 * 127.0.0.1:PORT. Each request runs in an sthread that holds only its socket, the
 * document root (as a directory descriptor: files beneath it, nothing else) and a
 * small tag X for talking to the callgate. The callgate `sign` is the one piece
 * that holds the key: it signs the response body (a keyed FNV-1a, a stand-in for
 * a real MAC) and writes the signature into X.
 *
 * The request parser has a deliberate bug: an "X-Debug: <hex address>" header makes
 * it read 8 bytes at that address and echo them (an arbitrary read, like
 * Heartbleed). Aimed at the key, it ends the sthread with a memory violation; the
 * master answers 500 and keeps serving. "GET /../key" fails inside openat2. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sthread.h>

struct req {
	int conn;
	int docfd;
	unsigned long body_len;
	unsigned long sig;
	char body[8192];
};

static uint64_t fnv(uint64_t h, const char *p, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* The callgate: trusted = the key (tag K), untrusted = the request (tag X). */
static void *sign(void *trusted, void *untrusted)
{
	const char *key = trusted;
	struct req *r = untrusted;
	if (r->body_len > sizeof r->body)
		return (void *)-1L;
	r->sig = fnv(fnv(0xcbf29ce484222325ULL, key, strlen(key)), r->body, r->body_len);
	return (void *)0L;
}

static void put(int fd, const char *s) { (void)!write(fd, s, strlen(s)); }

static void hex(char *out, unsigned long v)
{
	for (int i = 15; i >= 0; i--, v >>= 4)
		out[i] = "0123456789abcdef"[v & 15];
	out[16] = 0;
}

/* The request handler, in an sthread. */
static void *handle(void *arg)
{
	struct req *r = arg;
	char buf[2048];
	long n = 0;
	while (n < (long)sizeof buf - 1) {
		long k = read(r->conn, buf + n, sizeof buf - 1 - n);
		if (k <= 0)
			break;
		n += k;
		buf[n] = 0;
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	buf[n] = 0;
	if (strncmp(buf, "GET /", 5)) {
		put(r->conn, "HTTP/1.0 400 Bad Request\r\n\r\n");
		return (void *)400L;
	}
	char path[256];
	int i = 0;
	for (const char *p = buf + 5; *p && *p != ' ' && i < 255; p++)
		path[i++] = *p;
	path[i] = 0;
	if (!i)
		strcpy(path, "index.html");
	char debug[40] = "";
	const char *d = strstr(buf, "X-Debug: ");
	if (d) {
		/* THE BUG: trusts an address from the request. */
		unsigned long addr = strtoul(d + 9, NULL, 16);
		hex(debug, *(unsigned long *)addr);
	}
	int fd = openat(r->docfd, path, O_RDONLY);
	if (fd < 0) {
		put(r->conn, "HTTP/1.0 404 Not Found\r\n\r\n");
		return (void *)404L;
	}
	long len = read(fd, r->body, sizeof r->body);
	close(fd);
	r->body_len = len > 0 ? (unsigned long)len : 0;
	if (cgate(sign, NULL, r) != NULL)
		return (void *)500L;
	char h[64];
	put(r->conn, "HTTP/1.0 200 OK\r\nX-Signature: ");
	hex(h, r->sig);
	put(r->conn, h);
	if (debug[0]) {
		put(r->conn, "\r\nX-Debug-Value: ");
		put(r->conn, debug);
	}
	put(r->conn, "\r\n\r\n");
	(void)!write(r->conn, r->body, r->body_len);
	return (void *)200L;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: sthread-httpd PORT DOCROOT KEYFILE CONNECTIONS\n");
		return 2;
	}
	if (sthread_init()) {
		fprintf(stderr, "sthread_init: %s\n", strerror(errno));
		return 1;
	}
	tag_t K = tag_new(), X = tag_new();
	char *key = smalloc(K, 4096);
	int kf = open(argv[3], O_RDONLY);
	long kn = kf >= 0 ? read(kf, key, 4095) : -1;
	if (kn <= 0) {
		fprintf(stderr, "reading the key %s: %s\n", argv[3], strerror(errno));
		return 1;
	}
	key[kn] = 0;
	close(kf);
	int docfd = open(argv[2], O_DIRECTORY | O_RDONLY);
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (docfd < 0 || ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 16)) {
		fprintf(stderr, "setting up: %s\n", strerror(errno));
		return 1;
	}
	sc_t gate;
	sc_init(&gate);
	sc_mem_add(&gate, K, PROT_READ);
	sc_mem_add(&gate, X, PROT_READ | PROT_WRITE);
	printf("listening on %s key at %p\n", argv[1], (void *)key);
	fflush(stdout);
	int served = 0, violations = 0;
	for (int i = 0; i < atoi(argv[4]); i++) {
		int c = accept(ls, NULL, NULL);
		if (c < 0)
			continue;
		struct req *r = smalloc(X, sizeof *r);
		memset(r, 0, sizeof *r);
		r->conn = c;
		r->docfd = docfd;
		sc_t sc;
		sc_init(&sc);
		sc_fd_add(&sc, c, PROT_READ | PROT_WRITE);
		sc_fd_add(&sc, docfd, PROT_READ);
		sc_sys_add(&sc, SYS_openat);
		sc_mem_add(&sc, X, PROT_READ | PROT_WRITE);
		sc_cgate_add(&sc, sign, &gate, key);
		sthread_t st;
		void *ret;
		struct sthread_violation w;
		if (sthread_create(&st, &sc, handle, r) == 0 && sthread_join_why(st, &ret, &w) == 0) {
			served++;
		} else {
			violations++;
			fprintf(stderr, "request %d: handler ended (violation kind %d at %#lx)\n", i, w.kind, w.addr);
			put(c, "HTTP/1.0 500 Internal Server Error\r\n\r\nthe request handler was stopped\n");
		}
		sc_destroy(&sc);
		sfree(r);
		close(c);
	}
	printf("served %d violations %d\n", served, violations);
	return 0;
}

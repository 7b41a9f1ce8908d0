/* SPDX-License-Identifier: MIT */
/*
 * Embedding liblivemig the way a hypervisor would: the "guest RAM" is a
 * buffer this program owns.  It forks a destination process, registers the
 * buffer as a RAM block, migrates it over a Unix socket and checks that the
 * destination received exactly these bytes.
 *
 *   cc embed.c $(pkg-config --cflags --libs livemig) && ./a.out
 */
#include <livemig/livemig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define RAM_SIZE (64u << 20)

static void fill(uint8_t *ram, size_t size)
{
	/* Text-like bytes on most pages, every fifth page left zero. */
	uint32_t x = 12345;
	for (size_t page = 0; page < size / 4096; page++) {
		if (page % 5 == 4)
			continue;
		for (size_t i = 0; i < 4096; i++) {
			x = x * 1103515245 + 12345;
			ram[page * 4096 + i] = (uint8_t)('a' + (x >> 16) % 16);
		}
	}
}

static int destination(const char *uri, int ready_fd)
{
	livemig_session *s = livemig_session_new(LIVEMIG_DEST);
	if (!s || livemig_start(s, uri)) {
		fprintf(stderr, "dest: %s\n", s ? livemig_last_error(s) : "out of memory");
		return 1;
	}
	(void)!write(ready_fd, "", 1); /* listening: the source may connect */
	int r = livemig_wait(s);
	if (r) {
		fprintf(stderr, "dest: migration failed: %s\n", livemig_last_error(s));
		livemig_session_free(s);
		return 1;
	}
	/* The library allocated the block from the source's announcement. */
	const char *name;
	void *host;
	uint64_t size;
	livemig_ram_get(s, 0, &name, &host, &size);
	uint8_t *expect = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill(expect, RAM_SIZE);
	int same = size == RAM_SIZE && !memcmp(host, expect, RAM_SIZE);
	printf("dest: block '%s' of %llu bytes %s the source's\n", name, (unsigned long long)size,
	       same ? "equals" : "DIFFERS FROM");
	livemig_session_free(s);
	return same ? 0 : 1;
}

int main(void)
{
	char uri[64];
	int ready[2];
	snprintf(uri, sizeof(uri), "unix:/tmp/livemig-embed-%d.sock", (int)getpid());
	if (pipe(ready))
		return 1;
	pid_t pid = fork();
	if (pid == 0)
		_exit(destination(uri, ready[1]));
	char b;
	if (read(ready[0], &b, 1) != 1) {
		waitpid(pid, NULL, 0);
		return 1;
	}

	uint8_t *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);
	fill(ram, RAM_SIZE);
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	int r = !s || livemig_set_parameter(s, "multifd-channels", "2") ||
		livemig_set_parameter(s, "multifd-compression", "zstd") ||
		livemig_ram_register(s, "guest.ram", ram, RAM_SIZE) || livemig_start(s, uri) ||
		livemig_wait(s);
	if (r) {
		fprintf(stderr, "source: %s\n", s ? livemig_last_error(s) : "out of memory");
	} else {
		struct livemig_stats st;
		livemig_query(s, &st);
		printf("source: %s in %llu ms, %llu normal + %llu zero pages, ratio %.2f\n",
		       livemig_status_name(st.status), (unsigned long long)st.total_time_ms,
		       (unsigned long long)st.normal, (unsigned long long)st.duplicate,
		       st.compression_ratio);
	}
	livemig_session_free(s);
	int status;
	waitpid(pid, &status, 0);
	return r || !WIFEXITED(status) || WEXITSTATUS(status) ? 1 : 0;
}

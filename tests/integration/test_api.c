/* SPDX-License-Identifier: MIT */
/*
 * The public API as an embedder uses it: error returns, and a destination
 * that registers its own (dirty) memory gets every page written, zero pages
 * included.
 */
#include <errno.h>
#include <livemig/livemig.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../unit/t.h"

#define SIZE (8u << 20)

static void api_errors(void)
{
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	uint8_t *mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(s && mem != MAP_FAILED);
	CHECK(livemig_set_parameter(s, "multifd-channels", "0") == -EINVAL);
	CHECK(strstr(livemig_last_error(s), "multifd-channels") != NULL);
	CHECK(livemig_set_parameter(s, "bogus", "1") == -ENOENT);
	CHECK(livemig_set_capability(s, "bogus", true) == -ENOENT);
	CHECK(livemig_ram_register(s, "ram", mem + 1, 4096) == -EINVAL);  /* unaligned */
	CHECK(livemig_ram_register(s, "ram", mem, 4095) == -EINVAL);      /* size */
	CHECK(livemig_ram_register(s, "ram", NULL, 4096) == -EINVAL);     /* source needs memory */
	CHECK(livemig_ram_register(s, "ram", mem, SIZE) == 0);
	CHECK(livemig_ram_register(s, "ram", mem, SIZE) == -EEXIST);
	CHECK(livemig_start(s, "sctp:1.2.3.4:5") == -EINVAL);
	livemig_session_free(s);

	s = livemig_session_new(LIVEMIG_SOURCE);
	CHECK(livemig_start(s, "unix:/tmp/nothing-here") == -EINVAL); /* no RAM block */
	livemig_session_free(s);

	/* Connection errors of a source come from wait(), even after an
	 * earlier rejected call. */
	s = livemig_session_new(LIVEMIG_SOURCE);
	livemig_ram_register(s, "ram", mem, SIZE);
	CHECK(livemig_set_parameter(s, "multifd-zstd-level", "99") == -EINVAL);
	CHECK(livemig_start(s, "unix:/tmp/livemig-api-no-such.sock") == 0);
	CHECK(livemig_start(s, "unix:/tmp/x") == -EBUSY);
	CHECK(livemig_set_parameter(s, "multifd-channels", "3") == -EBUSY);
	int r = livemig_wait(s);
	CHECKF(r == -ENOENT, "wait returned %d", r);
	struct livemig_stats st;
	CHECK(livemig_query(s, &st) == 0 && st.status == LIVEMIG_STATUS_FAILED);
	livemig_session_free(s);
	livemig_session_free(NULL);
	munmap(mem, SIZE);
}

/* Destination with registered memory full of 0xAA; the source's memory is
 * mostly zero pages.  The result must be the source's bytes exactly. */
static void dirty_destination_memory(void)
{
	char uri[64];
	int ready[2];
	snprintf(uri, sizeof(uri), "unix:/tmp/livemig-api-%d.sock", (int)getpid());
	CHECK(pipe(ready) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		uint8_t *mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memset(mem, 0xaa, SIZE);
		livemig_session *d = livemig_session_new(LIVEMIG_DEST);
		if (livemig_ram_register(d, "ram", mem, SIZE) || livemig_start(d, uri))
			_exit(2);
		(void)!write(ready[1], "", 1);
		if (livemig_wait(d))
			_exit(3);
		int bad = 0;
		for (size_t i = 0; i < SIZE; i++)
			bad |= mem[i] != (i % (16 * 4096) < 4096 ? (uint8_t)(i * 7 + 1) : 0);
		livemig_session_free(d);
		_exit(bad ? 4 : 0);
	}
	char b;
	CHECK(read(ready[0], &b, 1) == 1);
	uint8_t *src = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (size_t i = 0; i < SIZE; i++)
		src[i] = i % (16 * 4096) < 4096 ? (uint8_t)(i * 7 + 1) : 0;
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	CHECK(livemig_ram_register(s, "ram", src, SIZE) == 0);
	CHECK(livemig_start(s, uri) == 0);
	int r = livemig_wait(s);
	CHECKF(r == 0, "source: %s", livemig_last_error(s));
	struct livemig_stats st;
	livemig_query(s, &st);
	CHECK(st.duplicate == SIZE / 4096 / 16 * 15 && st.verify_match == 1);
	livemig_session_free(s);
	int status;
	waitpid(pid, &status, 0);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "destination status %d", status);
	munmap(src, SIZE);
}

int main(void)
{
	api_errors();
	dirty_destination_memory();
	T_DONE();
}

/* SPDX-License-Identifier: MIT */
/*
 * What a control-socket client sends (src/qmp/server.c): the bytes go
 * through the line framing (lm_jl_read, lm_jl_skip_line after a malformed
 * line) into the command dispatch (lm_qmp_dispatch) of a session that has
 * not started, one client's negotiation state across the values.
 * Input: the bytes a client writes, at most 64 KiB.
 * Holds: every value gets a reply that is an object with exactly one of
 * "return" and "error"; an error has a class (GenericError or
 * CommandNotFound) and a desc; the reply carries the request's "id" when
 * it had one; a malformed line ends no more than that line.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "qmp/jsonline.h"
#include "qmp/server.h"

static void check_reply(json_object *req, json_object *r)
{
	FUZZ_ASSERT(json_object_is_type(r, json_type_object));
	json_object *ret, *err, *id, *rid;
	bool has_ret = json_object_object_get_ex(r, "return", &ret);
	bool has_err = json_object_object_get_ex(r, "error", &err);
	FUZZ_ASSERT(has_ret != has_err);
	if (has_err) {
		const char *cls = lm_json_get_str(err, "class");
		FUZZ_ASSERT(cls && (!strcmp(cls, "GenericError") || !strcmp(cls, "CommandNotFound")));
		FUZZ_ASSERT(lm_json_get_str(err, "desc"));
	}
	bool req_id = json_object_is_type(req, json_type_object) &&
		      json_object_object_get_ex(req, "id", &id);
	FUZZ_ASSERT(req_id == json_object_object_get_ex(r, "id", &rid));
	if (req_id)
		FUZZ_ASSERT(json_object_equal(id, rid));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return 0;
	/* A unix socket's buffer holds 64 KiB: written whole before reading. */
	if (write(sv[1], data, size) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	close(sv[1]);
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	struct lm_jl jl;
	bool negotiated = false;
	if (!s || lm_jl_init(&jl, sv[0])) {
		livemig_session_free(s);
		close(sv[0]);
		return 0;
	}
	for (;;) {
		json_object *req = NULL;
		int r = lm_jl_read(&jl, 0, &req);
		if (r == -EPROTO) {
			lm_jl_skip_line(&jl);
			continue;
		}
		if (r)
			break; /* the end (-ECONNRESET) */
		json_object *reply = lm_qmp_dispatch(s, &negotiated, req);
		FUZZ_ASSERT(reply);
		check_reply(req, reply);
		json_object_put(reply);
		json_object_put(req);
	}
	lm_jl_destroy(&jl);
	close(sv[0]);
	livemig_session_free(s);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Parameters as --set NAME=VALUE gives them (lm_params_set, and through it
 * every value parser: whole numbers, sizes, enums, x-auto-speeds,
 * x-delay-channel, x-fault-engine), and sizes alone (lm_parse_size).
 * Input: text; up to the first '=' the name, after it the value, for each
 * role.  Without '=', the whole text is a size.
 * Holds: a refused value leaves the parameters untouched and says why; an
 * accepted one reads back (lm_params_get) as text that, set again, gives
 * the same parameters.  A size that parses prints and parses back to
 * itself.
 */
#include <errno.h>
#include <inttypes.h>

#include "core/internal.h"
#include "fuzz.h"
#include "util/util.h"

static void size_alone(const char *text)
{
	uint64_t v, w;
	char buf[32];
	if (lm_parse_size(text, &v))
		return;
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	FUZZ_ASSERT(lm_parse_size(buf, &w) == 0 && w == v);
}

static void set(enum livemig_role role, const char *name, const char *value)
{
	struct lm_params p, before, again;
	char err[256] = "", text[256];

	lm_params_default(&p);
	before = p;
	int r = lm_params_set(&p, role, name, value, err, sizeof(err));
	FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -ENOENT);
	if (r) {
		FUZZ_ASSERT(err[0] && !memcmp(&p, &before, sizeof(p)));
		return;
	}
	FUZZ_ASSERT(lm_params_get(&p, name, text, sizeof(text)) >= 0);
	again = p;
	r = lm_params_set(&again, role, name, text, err, sizeof(err));
	FUZZ_ASSERT(r == 0);
	FUZZ_ASSERT(!memcmp(&p, &again, sizeof(p)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_alloc(size + 1);
	memcpy(text, data, size);
	text[size] = 0;
	char *eq = strchr(text, '=');
	if (!eq) {
		size_alone(text);
	} else {
		*eq = 0;
		set(LIVEMIG_SOURCE, text, eq + 1);
		set(LIVEMIG_DEST, text, eq + 1);
	}
	free(text);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The hello, the first 40 bytes of every connection (lm_hello_decode).
 * Input: the hello's bytes (more are ignored, fewer are not a hello).
 * Holds: a hello is refused with a reason, or its fields are in range and
 * encoding them gives back exactly the bytes decoded (no field or reserved
 * byte is left unchecked).
 */
#include <errno.h>

#include "core/wire.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < LM_HELLO_SIZE)
		return 0;
	uint8_t *in = fuzz_dup(data, LM_HELLO_SIZE);
	struct lm_hello h;
	const char *why = NULL;
	int r = lm_hello_decode(in, &h, &why);

	FUZZ_ASSERT(r == 0 || (r == -EPROTO && why));
	if (r == 0) {
		FUZZ_ASSERT(h.version == LM_WIRE_VERSION);
		FUZZ_ASSERT(h.nchannels >= 1 && h.nchannels <= 255 && h.channel <= h.nchannels);
		FUZZ_ASSERT(!(h.flags & ~LM_HELLO_FLAGS_KNOWN));
		FUZZ_ASSERT(!(h.flags & LM_HELLO_RESOLVE) || h.channel == 0);
		FUZZ_ASSERT(!(h.flags & LM_HELLO_RECONNECT) || h.channel != 0);
		uint8_t out[LM_HELLO_SIZE];
		lm_hello_encode(&h, out);
		FUZZ_ASSERT(!memcmp(out, in, LM_HELLO_SIZE));
	}
	free(in);
	return 0;
}

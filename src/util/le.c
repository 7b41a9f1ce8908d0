/* SPDX-License-Identifier: MIT */
/* The lm_buf cursor (le.h). */
#include <string.h>

#include "util/le.h"

static uint8_t *put(struct lm_buf *b, size_t n)
{
	if (b->bad || b->cap - b->len < n) {
		b->bad = true;
		return NULL;
	}
	uint8_t *p = b->p + b->len;
	b->len += n;
	return p;
}

void lm_put_u8(struct lm_buf *b, uint8_t v)
{
	uint8_t *p = put(b, 1);
	if (p)
		*p = v;
}
void lm_put_u16(struct lm_buf *b, uint16_t v)
{
	uint8_t *p = put(b, 2);
	if (p)
		lm_le16(p, v);
}
void lm_put_u32(struct lm_buf *b, uint32_t v)
{
	uint8_t *p = put(b, 4);
	if (p)
		lm_le32(p, v);
}
void lm_put_u64(struct lm_buf *b, uint64_t v)
{
	uint8_t *p = put(b, 8);
	if (p)
		lm_le64(p, v);
}
void lm_put_bytes(struct lm_buf *b, const void *v, size_t n)
{
	uint8_t *p = put(b, n);
	if (p && n)
		memcpy(p, v, n);
}

/* Readers use len as the cursor and cap as the end; reading past the end
 * sets bad and yields zeros, so a parser checks bad once at the end. */
static const uint8_t *get(struct lm_buf *b, size_t n)
{
	if (b->bad || b->cap - b->len < n) {
		b->bad = true;
		return NULL;
	}
	const uint8_t *p = b->p + b->len;
	b->len += n;
	return p;
}

uint8_t lm_get_u8(struct lm_buf *b)
{
	const uint8_t *p = get(b, 1);
	return p ? *p : 0;
}
uint16_t lm_get_u16(struct lm_buf *b)
{
	const uint8_t *p = get(b, 2);
	return p ? lm_rd16(p) : 0;
}
uint32_t lm_get_u32(struct lm_buf *b)
{
	const uint8_t *p = get(b, 4);
	return p ? lm_rd32(p) : 0;
}
uint64_t lm_get_u64(struct lm_buf *b)
{
	const uint8_t *p = get(b, 8);
	return p ? lm_rd64(p) : 0;
}
void lm_get_bytes(struct lm_buf *b, void *v, size_t n)
{
	const uint8_t *p = get(b, n);
	if (p)
		memcpy(v, p, n);
	else
		memset(v, 0, n);
}

/* SPDX-License-Identifier: MIT */
/*
 * Little-endian fields: inline helpers for fixed layouts, and a bounded
 * cursor (struct lm_buf) for variable-length payloads.
 */
#ifndef LM_LE_H
#define LM_LE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline void lm_le16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static inline void lm_le32(uint8_t *p, uint32_t v)
{
	p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}
static inline void lm_le64(uint8_t *p, uint64_t v)
{
	lm_le32(p, (uint32_t)v);
	lm_le32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t lm_rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t lm_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t lm_rd64(const uint8_t *p)
{
	return (uint64_t)lm_rd32(p) | (uint64_t)lm_rd32(p + 4) << 32;
}

/*
 * A cursor over p[0..cap).  Writers append at len; readers use len as the
 * read position.  Writing past cap or reading past it sets bad (reads then
 * yield zeros), so an encoder or parser checks bad once at the end.
 */
struct lm_buf {
	uint8_t *p;
	size_t len, cap;
	bool bad;
};
void lm_put_u8(struct lm_buf *b, uint8_t v);
void lm_put_u16(struct lm_buf *b, uint16_t v);
void lm_put_u32(struct lm_buf *b, uint32_t v);
void lm_put_u64(struct lm_buf *b, uint64_t v);
void lm_put_bytes(struct lm_buf *b, const void *v, size_t n);
uint8_t lm_get_u8(struct lm_buf *b);
uint16_t lm_get_u16(struct lm_buf *b);
uint32_t lm_get_u32(struct lm_buf *b);
uint64_t lm_get_u64(struct lm_buf *b);
void lm_get_bytes(struct lm_buf *b, void *v, size_t n);

#endif

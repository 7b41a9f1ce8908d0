/* SPDX-License-Identifier: MIT */
/*
 * Building a JSON document with json-c without checking every call: json-c
 * returns NULL when out of memory, and a NULL value would be stored as a
 * JSON null.  Every value goes through lm_json_put() or lm_json_push(),
 * which notice it (and return NULL, which the next put notices in turn)
 * and set b->oom, so that a short document is never passed off as the
 * answer: lm_json_print() then fails with -ENOMEM.  The statistics
 * (core/stats.c) and livemig info (core/info.c) are built this way.
 * Single-threaded: one builder per document.
 */
#ifndef LM_UTIL_JSON_H
#define LM_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

struct lm_json {
	bool oom; /* some value was lost: the document is incomplete */
};

/* Adds v to obj under key and returns v (owned by obj now), or NULL - v
 * freed, b->oom set - when obj or v is NULL or the add fails. */
json_object *lm_json_put(struct lm_json *b, json_object *obj, const char *key, json_object *v);

/* Appends v to the array arr; as lm_json_put. */
json_object *lm_json_push(struct lm_json *b, json_object *arr, json_object *v);

/* Shorthands for lm_json_put: a string (NULL as ""), a boolean, an int,
 * an unsigned 64-bit integer. */
void lm_json_str(struct lm_json *b, json_object *obj, const char *key, const char *s);
void lm_json_bool(struct lm_json *b, json_object *obj, const char *key, bool v);
void lm_json_int(struct lm_json *b, json_object *obj, const char *key, int v);
void lm_json_u64(struct lm_json *b, json_object *obj, const char *key, uint64_t v);

/* A number printed with fmt (a printf format for one double, e.g. "%.1f"),
 * so that a rate does not show seventeen digits. */
void lm_json_double(struct lm_json *b, json_object *obj, const char *key, double v,
		    const char *fmt);

/* JSON null under key. */
void lm_json_null(struct lm_json *b, json_object *obj, const char *key);

/* A string, or JSON null for NULL. */
void lm_json_str_or_null(struct lm_json *b, json_object *obj, const char *key, const char *s);

/*
 * Prints root, pretty ("key": value, two-space indent) and followed by a
 * newline, into buf, and frees root (NULL is accepted and counts as out of
 * memory).  snprintf's contract: returns the length of the whole text
 * (without the NUL) even when len was too small and the text was cut;
 * -ENOMEM when b->oom is set or json-c fails.
 */
int lm_json_print(struct lm_json *b, json_object *root, char *buf, size_t len);

/* Reading a parsed document (QMP, the CLI's own JSON) without failing on a
 * missing or mistyped member: the string member key of o, or NULL; the
 * object member key of o (borrowed), or NULL.  o may be NULL. */
const char *lm_json_get_str(json_object *o, const char *key);
json_object *lm_json_get_obj(json_object *o, const char *key);

#endif

/* SPDX-License-Identifier: MIT */
/* The JSON builder on json-c; see json.h. */
#include <errno.h>
#include <stdio.h>

#include "util/json.h"

json_object *lm_json_put(struct lm_json *b, json_object *obj, const char *key, json_object *v)
{
	if (!obj || !v || json_object_object_add(obj, key, v)) {
		json_object_put(v);
		b->oom = true;
		return NULL;
	}
	return v;
}

json_object *lm_json_push(struct lm_json *b, json_object *arr, json_object *v)
{
	if (!arr || !v || json_object_array_add(arr, v)) {
		json_object_put(v);
		b->oom = true;
		return NULL;
	}
	return v;
}

void lm_json_str(struct lm_json *b, json_object *obj, const char *key, const char *s)
{
	lm_json_put(b, obj, key, json_object_new_string(s ? s : ""));
}

void lm_json_bool(struct lm_json *b, json_object *obj, const char *key, bool v)
{
	lm_json_put(b, obj, key, json_object_new_boolean(v));
}

void lm_json_int(struct lm_json *b, json_object *obj, const char *key, int v)
{
	lm_json_put(b, obj, key, json_object_new_int(v));
}

void lm_json_u64(struct lm_json *b, json_object *obj, const char *key, uint64_t v)
{
	lm_json_put(b, obj, key, json_object_new_uint64(v));
}

void lm_json_double(struct lm_json *b, json_object *obj, const char *key, double v,
		    const char *fmt)
{
	char text[64];
	snprintf(text, sizeof(text), fmt, v);
	lm_json_put(b, obj, key, json_object_new_double_s(v, text));
}

void lm_json_null(struct lm_json *b, json_object *obj, const char *key)
{
	if (!obj || json_object_object_add(obj, key, NULL))
		b->oom = true;
}

void lm_json_str_or_null(struct lm_json *b, json_object *obj, const char *key, const char *s)
{
	if (s)
		lm_json_str(b, obj, key, s);
	else
		lm_json_null(b, obj, key);
}

int lm_json_print(struct lm_json *b, json_object *root, char *buf, size_t len)
{
	const char *text = b->oom || !root ? NULL : json_object_to_json_string_ext(
		root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
			      JSON_C_TO_STRING_NOSLASHESCAPE);
	int n = text ? snprintf(buf, len, "%s\n", text) : -ENOMEM;
	json_object_put(root); /* frees text too */
	return n;
}

const char *lm_json_get_str(json_object *o, const char *key)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

json_object *lm_json_get_obj(json_object *o, const char *key)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_object))
		return NULL;
	return v;
}

#include "util/canon.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/sha256.h"

void
canon_string(const char *s, struct strbuf *sb)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run = p;

	sb_putc(sb, '"');
	for (; *p; p++) {
		const char *esc = NULL;
		char u[7];

		if (*p >= 0x20 && *p != '"' && *p != '\\')
			continue; /* plain bytes are copied as a run below */
		switch (*p) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
			u[4] = hex[*p >> 4], u[5] = hex[*p & 15], u[6] = 0;
			esc = u;
		}
		sb_add(sb, (const char *)run, (size_t)(p - run));
		sb_puts(sb, esc);
		run = p + 1;
	}
	sb_add(sb, (const char *)run, (size_t)(p - run));
	sb_putc(sb, '"');
}

static int
key_cmp(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

	return strcmp(x->string, y->string);
}

int
canon_json(const cJSON *item, struct strbuf *sb)
{
	const cJSON *c;
	int rc = 0;

	if (cJSON_IsNull(item)) {
		sb_puts(sb, "null");
	} else if (cJSON_IsTrue(item)) {
		sb_puts(sb, "true");
	} else if (cJSON_IsFalse(item)) {
		sb_puts(sb, "false");
	} else if (cJSON_IsRaw(item)) {
		sb_puts(sb, item->valuestring);
	} else if (cJSON_IsNumber(item)) {
		double v = item->valuedouble;
		if (!isfinite(v) || v != floor(v) || fabs(v) > 9007199254740992.0)
			return -1;
		sb_printf(sb, "%lld", (long long)v);
	} else if (cJSON_IsString(item)) {
		canon_string(item->valuestring, sb);
	} else if (cJSON_IsArray(item)) {
		sb_putc(sb, '[');
		for (c = item->child; c && rc == 0; c = c->next) {
			if (c != item->child)
				sb_putc(sb, ',');
			rc = canon_json(c, sb);
		}
		sb_putc(sb, ']');
	} else if (cJSON_IsObject(item)) {
		size_t n = 0, i;
		const cJSON **keys;

		for (c = item->child; c; c = c->next)
			n++;
		keys = xcalloc(n, sizeof(*keys));
		for (c = item->child, i = 0; c; c = c->next)
			keys[i++] = c;
		qsort(keys, n, sizeof(*keys), key_cmp);
		sb_putc(sb, '{');
		for (i = 0; i < n && rc == 0; i++) {
			if (i)
				sb_putc(sb, ',');
			canon_string(keys[i]->string, sb);
			sb_putc(sb, ':');
			rc = canon_json(keys[i], sb);
		}
		sb_putc(sb, '}');
		free(keys);
	} else {
		return -1;
	}
	return rc;
}

int
canon_sha256(const cJSON *item, char out[65])
{
	struct strbuf sb = STRBUF_INIT;
	int rc;

	rc = canon_json(item, &sb);
	if (rc == 0)
		rc = sha256_hex(sb_str(&sb), sb.len, out);
	sb_free(&sb);
	return rc;
}

/*
 * Canonical JSON: object keys sorted by their UTF-8 bytes, no insignificant
 * white space, strings with the minimal escapes (\" \\ \b \f \n \r \t, other
 * control characters as \u00xx), integers without a fraction or exponent.
 * Two equal documents always give the same bytes, so the bytes can be hashed.
 */
#ifndef TS_UTIL_CANON_H
#define TS_UTIL_CANON_H

#include <cjson/cJSON.h>

#include "util/strbuf.h"

/*
 * Appends the canonical form of item to sb. cJSON_Raw items are copied as they
 * are (the caller has checked they are JSON numbers). Returns 0, or -1 for a
 * non-integral or non-finite number, which has no single canonical spelling.
 */
int canon_json(const cJSON *item, struct strbuf *sb);

/* Canonical form of item hashed with SHA-256, hex into out[65]. Returns 0 or -1. */
int canon_sha256(const cJSON *item, char out[65]);

/* Appends s as a JSON string literal (with the quotes) to sb. */
void canon_string(const char *s, struct strbuf *sb);

#endif

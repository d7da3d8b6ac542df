/* UTF-8 validation with the position of the first bad byte. */
#ifndef TS_UTIL_UTF8_H
#define TS_UTIL_UTF8_H

#include <stddef.h>

/*
 * Returns the offset of the first byte that is not part of well-formed UTF-8
 * (overlongs, surrogates and code points past U+10FFFF are rejected), or
 * len when all of buf is valid.
 */
size_t utf8_check(const char *buf, size_t len);

/* 1-based line and column (in characters) of offset in buf. */
void text_position(const char *buf, size_t offset, unsigned *line, unsigned *col);

#endif

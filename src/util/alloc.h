/* Allocation wrappers that abort on out-of-memory, and a bump arena. */
#ifndef TS_UTIL_ALLOC_H
#define TS_UTIL_ALLOC_H

#include <stddef.h>

/* malloc/calloc/realloc/strdup that never return NULL: they abort on OOM. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * An arena owns every allocation made from it; arena_free releases them all.
 * Used for one parsed plan, so a plan is freed in one call.
 */
struct arena;

struct arena *arena_new(void);
void arena_free(struct arena *a);
void *arena_alloc(struct arena *a, size_t n);	    /* zeroed, 16-byte aligned */
size_t arena_reserved(const struct arena *a);	    /* bytes of its blocks, used or not */
char *arena_strdup(struct arena *a, const char *s); /* NULL stays NULL */
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

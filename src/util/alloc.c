#include "util/alloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
oom(void)
{
	fputs("taskslaps: out of memory\n", stderr);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom();
	return q;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		oom();
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		oom();
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	return s;
}

/* Blocks are chained; a request larger than a block gets a block of its own. */
struct arena_block {
	struct arena_block *next;
	size_t used, size;
	_Alignas(16) unsigned char data[];
};

struct arena {
	struct arena_block *head;
};

/*
 * Blocks grow from ARENA_FIRST to ARENA_BLOCK, doubling: a parsed one-step
 * plan takes about 2 KB, and the daemon keeps every plan at the tip in
 * memory (its plan cache), so a first block of 8 KB would waste three
 * quarters of it on the common plan.
 */
#define ARENA_FIRST 1024
#define ARENA_BLOCK 8192

struct arena *
arena_new(void)
{
	return xcalloc(1, sizeof(struct arena));
}

void
arena_free(struct arena *a)
{
	struct arena_block *b, *next;

	if (!a)
		return;
	for (b = a->head; b; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}

void *
arena_alloc(struct arena *a, size_t n)
{
	struct arena_block *b = a->head;
	size_t need = (n + 15) & ~(size_t)15;
	void *p;

	/* the rounding, or the block header added to it, must not wrap around */
	if (need < n || need > SIZE_MAX - sizeof(*b))
		oom();
	if (!b || b->size - b->used < need) {
		size_t step = !b ? ARENA_FIRST : b->size >= ARENA_BLOCK ? ARENA_BLOCK : b->size * 2;
		size_t size = need > step ? need : step;
		b = xmalloc(sizeof(*b) + size);
		b->used = 0;
		b->size = size;
		if (a->head && need > ARENA_BLOCK) {
			/* keep the partly used head block in front */
			b->next = a->head->next;
			a->head->next = b;
		} else {
			b->next = a->head;
			a->head = b;
		}
	}
	p = b->data + b->used;
	b->used += need;
	memset(p, 0, n);
	return p;
}

size_t
arena_reserved(const struct arena *a)
{
	size_t n = 0;

	for (const struct arena_block *b = a->head; b; b = b->next)
		n += b->size;
	return n;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p;

	if (!s)
		return NULL;
	p = arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
	return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

char *
arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	char *tmp, *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	p = arena_strndup(a, tmp, (size_t)n);
	free(tmp);
	return p;
}

/* The bump arena that owns a parsed plan, and the allocation wrappers. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* after setjmp.h, stdarg.h, stddef.h and stdint.h, which it needs */
#include <cmocka.h>

#include "util/alloc.h"

static bool
all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void
test_util_arena__many_allocations(void **state)
{
	struct arena *a = arena_new();
	enum { N = 20000 };
	unsigned char **v = calloc(N, sizeof(*v));

	(void)state;
	for (size_t i = 0; i < N; i++) {
		size_t n = i % 97;
		v[i] = arena_alloc(a, n);
		assert_non_null(v[i]);
		assert_int_equal((uintptr_t)v[i] % 16, 0);
		assert_true(all_zero(v[i], n));
		memset(v[i], (int)(i & 0xff), n);
	}
	/* nothing overlapped: every block still holds what was written */
	for (size_t i = 0; i < N; i++)
		for (size_t k = 0; k < i % 97; k++)
			assert_int_equal(v[i][k], i & 0xff);
	free(v);
	arena_free(a);
}

static void
test_util_arena__large_allocations(void **state)
{
	struct arena *a = arena_new();
	unsigned char *small1 = arena_alloc(a, 100);
	unsigned char *big = arena_alloc(a, 1 << 20);
	unsigned char *small2 = arena_alloc(a, 100);
	unsigned char *edge = arena_alloc(a, 8192);
	unsigned char *big2 = arena_alloc(a, 8193);

	(void)state;
	assert_true(all_zero(big, 1 << 20));
	assert_true(all_zero(edge, 8192));
	assert_true(all_zero(big2, 8193));
	memset(small1, 1, 100);
	memset(big, 2, 1 << 20);
	memset(small2, 3, 100);
	memset(edge, 4, 8192);
	memset(big2, 5, 8193);
	assert_int_equal(small1[99], 1);
	assert_int_equal(big[(1 << 20) - 1], 2);
	assert_int_equal(small2[0], 3);
	assert_int_equal(edge[8191], 4);
	assert_int_equal(big2[8192], 5);
	assert_int_equal((uintptr_t)big % 16, 0);
	assert_int_equal((uintptr_t)big2 % 16, 0);
	arena_free(a);
}

static void
test_util_arena__strings(void **state)
{
	struct arena *a = arena_new();
	char long_text[3000];
	char *s;

	(void)state;
	assert_null(arena_strdup(a, NULL));
	assert_null(arena_strndup(a, NULL, 3));
	assert_string_equal(arena_strdup(a, "coffee"), "coffee");
	assert_string_equal(arena_strndup(a, "coffee", 3), "cof");
	assert_string_equal(arena_strndup(a, "", 0), "");
	assert_string_equal(arena_printf(a, "%s-%04d", "plan", 7), "plan-0007");
	memset(long_text, 'q', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	s = arena_printf(a, "<%s>", long_text);
	assert_int_equal(strlen(s), sizeof(long_text) + 1);
	assert_int_equal(s[0], '<');
	assert_int_equal(s[sizeof(long_text)], '>');
	arena_free(a);
	arena_free(NULL);
}

static void
test_util_arena__empty_arena(void **state)
{
	(void)state;
	arena_free(arena_new());
}

/*
 * The child makes an absurd request: it must stop in the allocator's own
 * out-of-memory abort, not after scribbling past a short block.
 */
static void
test_util_arena__huge_request_aborts(void **state)
{
	static const size_t sizes[] = { SIZE_MAX, SIZE_MAX - 20, SIZE_MAX - 16 };

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		int status = 0, fds[2];
		char out[256];
		ssize_t n;
		pid_t pid;

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct arena *a = arena_new();
			dup2(fds[1], 2);
			(void)arena_alloc(a, sizes[i]);
			_exit(0);
		}
		close(fds[1]);
		n = read(fds[0], out, sizeof(out) - 1);
		close(fds[0]);
		out[n > 0 ? n : 0] = '\0';
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGABRT);
		assert_string_equal(out, "taskslaps: out of memory\n");
	}
}

static void
test_util_arena__wrappers(void **state)
{
	char *s = xstrdup("mug");
	char *t = xstrndup("mugs", 3);
	char *u = xasprintf("%s:%d", "line", 12);
	int *z = xcalloc(16, sizeof(int));
	char *r = xmalloc(0);

	(void)state;
	assert_string_equal(s, "mug");
	assert_string_equal(t, "mug");
	assert_string_equal(u, "line:12");
	for (int i = 0; i < 16; i++)
		assert_int_equal(z[i], 0);
	r = xrealloc(r, 100);
	memset(r, 1, 100);
	free(s);
	free(t);
	free(u);
	free(z);
	free(r);
}

/* Blocks start small and double: a small plan does not hold 8 KB. */
static void
test_util_arena__grows_from_small_blocks(void **state)
{
	struct arena *a = arena_new();

	(void)state;
	assert_int_equal(arena_reserved(a), 0);
	for (int i = 0; i < 125; i++) /* 2,000 bytes */
		(void)arena_alloc(a, 16);
	assert_true(arena_reserved(a) >= 2000);
	assert_true(arena_reserved(a) <= 3072);
	for (int i = 0; i < 1000; i++) /* 18,000 bytes more: blocks of 8 KB by then */
		(void)arena_alloc(a, 16);
	assert_true(arena_reserved(a) <= 20000 + 8192 + 4096);
	arena_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_arena__many_allocations),
		cmocka_unit_test(test_util_arena__large_allocations),
		cmocka_unit_test(test_util_arena__grows_from_small_blocks),
		cmocka_unit_test(test_util_arena__strings),
		cmocka_unit_test(test_util_arena__empty_arena),
		cmocka_unit_test(test_util_arena__huge_request_aborts),
		cmocka_unit_test(test_util_arena__wrappers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

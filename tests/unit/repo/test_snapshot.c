/* The plans at a branch tip: which files, in which order, with what bytes; and the errors. */
#include "repo_test.h"

#include <sys/resource.h>

static char *home;

static int
group_setup(void **state)
{
	(void)state;
	home = rt_env();
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	rt_rm_rf(home);
	return 0;
}

/* A repository whose migrations/ holds plans, non-plans, a hidden file and a subdirectory. */
static char *
make_repo(void)
{
	char *d = rt_init();

	rt_write(d, "migrations/0002-b.yaml", "title: b\n");
	rt_write(d, "migrations/0001-a.yml", "title: a\n");
	rt_write(d, "migrations/0003-c.json", "{\"title\": \"c\"}\n");
	rt_write(d, "migrations/B-upper.yaml", "title: upper\n");
	rt_write(d, "migrations/README.md", "not a plan\n");
	rt_write(d, "migrations/notes.txt", "not a plan\n");
	rt_write(d, "migrations/.hidden.yaml", "hidden\n");
	rt_write(d, "migrations/sub/0000-nested.yaml", "title: nested\n");
	rt_write(d, "migrations/dir.yaml/0000-x.yaml", "a directory named like a plan\n");
	rt_write(d, "other/0000-elsewhere.yaml", "title: elsewhere\n");
	free(rt_commit(d, "alice", "plans"));
	return d;
}

static void
check_snapshot(struct repo *r)
{
	static const char *const want[] = { "migrations/0001-a.yml", "migrations/0002-b.yaml",
					    "migrations/0003-c.json", "migrations/B-upper.yaml" };
	struct repo_snapshot *s = rt_snap(r, "migrations");
	char *head = rt_out("git --git-dir='%s' rev-parse refs/heads/main", repo_gitdir(r));

	assert_string_equal(s->tip, head);
	assert_int_equal(s->n, 4);
	for (size_t i = 0; i < 4; i++) {
		char *blob =
		    rt_out("git --git-dir='%s' rev-parse 'main:%s'", repo_gitdir(r), want[i]);

		assert_string_equal(s->files[i].path, want[i]);
		assert_string_equal(s->files[i].blob, blob);
		assert_string_equal(s->files[i].commit, head);
		assert_string_equal(s->files[i].author_name, "alice");
		assert_string_equal(s->files[i].author_email, "alice@example.com");
		assert_true(s->files[i].commit_time > 1700000000);
		free(blob);
	}
	assert_string_equal(s->files[1].content, "title: b\n");
	assert_int_equal(s->files[1].len, 9);
	assert_string_equal(s->files[2].content, "{\"title\": \"c\"}\n");
	free(head);
	repo_snapshot_free(s);
}

static void
test_repo_snapshot__non_bare(void **state)
{
	char *d = make_repo();
	struct repo *r = rt_open(d, NULL, "main");
	char *gitdir = xasprintf("%s/.git", d);

	(void)state;
	assert_false(repo_is_remote(r));
	assert_string_equal(repo_gitdir(r), gitdir);
	check_snapshot(r);
	repo_free(r);
	free(gitdir);
	rt_rm_rf(d);
}

static void
test_repo_snapshot__bare(void **state)
{
	char *d = make_repo();
	char *bare = xasprintf("%s.git", d);
	struct repo *r;

	(void)state;
	rt_sh("git clone -q --bare '%s' '%s'", d, bare);
	r = rt_open(bare, NULL, "main");
	assert_string_equal(repo_gitdir(r), bare);
	check_snapshot(r);
	repo_free(r);
	rt_rm_rf(bare);
	rt_rm_rf(d);
}

static void
test_repo_snapshot__dir_spellings(void **state)
{
	char *d = make_repo();
	struct repo *r = rt_open(d, NULL, "main");
	struct repo_snapshot *s;

	(void)state;
	s = rt_snap(r, "./migrations/");
	assert_int_equal(s->n, 4);
	assert_string_equal(s->files[0].path, "migrations/0001-a.yml");
	repo_snapshot_free(s);
	s = rt_snap(r, "migrations/sub");
	assert_int_equal(s->n, 1);
	assert_string_equal(s->files[0].path, "migrations/sub/0000-nested.yaml");
	assert_string_equal(s->files[0].content, "title: nested\n");
	repo_snapshot_free(s);
	/* The root: no plan files there. */
	s = rt_snap(r, ".");
	assert_int_equal(s->n, 0);
	repo_snapshot_free(s);
	repo_free(r);
	rt_rm_rf(d);
}

static void
test_repo_snapshot__missing_branch(void **state)
{
	char *d = make_repo();
	struct repo *r = rt_open(d, NULL, "release");
	struct repo_snapshot *s = NULL;
	char err[512] = "";

	(void)state;
	assert_int_equal(repo_snapshot(r, "migrations", &s, err, sizeof(err)), -1);
	assert_null(s);
	assert_non_null(strstr(err, "branch 'release' not found in"));
	assert_non_null(strstr(err, d));
	repo_free(r);
	rt_rm_rf(d);
}

static void
test_repo_snapshot__missing_dir(void **state)
{
	char *d = make_repo();
	struct repo *r = rt_open(d, NULL, "main");
	struct repo_snapshot *s = NULL;
	char err[512] = "";

	(void)state;
	assert_int_equal(repo_snapshot(r, "db/migrations", &s, err, sizeof(err)), -1);
	assert_null(s);
	assert_non_null(strstr(err, "'db/migrations' not found"));
	assert_int_equal(repo_snapshot(r, "migrations/README.md", &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is not a directory"));
	repo_free(r);
	rt_rm_rf(d);
}

static void
test_repo_snapshot__open_errors(void **state)
{
	struct repo *r = NULL;
	char err[512] = "";
	char *d = rt_tmpdir();

	(void)state;
	/* A plain directory is not a repository, and no parent is searched. */
	assert_int_equal(repo_open(&r, d, NULL, "main", err, sizeof(err)), -1);
	assert_null(r);
	assert_non_null(strstr(err, "cannot open repository"));
	assert_int_equal(repo_open(&r, "/nonexistent/taskslaps", NULL, "main", err, sizeof(err)),
			 -1);
	assert_int_equal(repo_open(&r, d, NULL, "bad..name", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "invalid branch name"));
	repo_free(NULL);
	rt_rm_rf(d);
}

static void
test_repo_snapshot__watch_paths(void **state)
{
	char *d = make_repo();
	struct repo *r;
	const char *const *w;
	char *want;

	(void)state;
	rt_sh("git -C '%s' branch team/db/x", d);
	r = rt_open(d, NULL, "team/db/x");
	w = repo_watch_paths(r);
	want = xasprintf("%s/.git/refs/heads", d);
	assert_string_equal(w[0], want);
	free(want);
	want = xasprintf("%s/.git/refs/heads/team", d);
	assert_string_equal(w[1], want);
	free(want);
	want = xasprintf("%s/.git/refs/heads/team/db", d);
	assert_string_equal(w[2], want);
	free(want);
	want = xasprintf("%s/.git", d);
	assert_string_equal(w[3], want);
	free(want);
	assert_null(w[4]);
	repo_free(r);

	r = rt_open(d, NULL, "main");
	w = repo_watch_paths(r);
	assert_non_null(w[0]);
	assert_non_null(w[1]);
	assert_null(w[2]);
	repo_free(r);
	rt_rm_rf(d);
}

/* Peak resident set of this process, in KiB. */
static long
peak_rss_kib(void)
{
	struct rusage ru;

	assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_maxrss;
}

/* Snapshot of d's migrations/ with 0002-big.yaml too large: not read, and the small one is. */
static void
check_big(const char *d, size_t big)
{
	struct repo *r = rt_open(d, NULL, "main");
	long before = peak_rss_kib(), grew;
	struct repo_snapshot *s = rt_snap(r, "migrations");
	const struct repo_plan_file *f = rt_file(s, "migrations/0002-big.yaml");

	grew = peak_rss_kib() - before;
	/* reading it would have taken at least its size (libgit2's copy, then ours) */
	if (grew > 16 * 1024)
		print_message("the snapshot grew the peak RSS by %ld KiB\n", grew);
	assert_true(grew <= 16 * 1024);
	assert_true(f->too_large);
	assert_null(f->content);
	assert_int_equal(f->len, big);
	assert_string_equal(rt_file(s, "migrations/0001-small.yaml")->content, "title: small\n");
	assert_false(rt_file(s, "migrations/0001-small.yaml")->too_large);
	repo_snapshot_free(s);
	repo_free(r);
}

/*
 * A plan far over the size limit (128 MiB of spaces: a few hundred KB in
 * git) is refused from its size, never inflated: loose, packed, and as a
 * packed delta of another big blob.
 */
static void
test_repo_snapshot__too_large_not_read(void **state)
{
	const size_t big = 128u * 1024 * 1024;
	char *d = rt_init();

	(void)state;
	rt_write(d, "migrations/0001-small.yaml", "title: small\n");
	rt_sh("head -c %zu /dev/zero | tr '\\0' ' ' > '%s/migrations/0002-big.yaml'", big, d);
	free(rt_commit(d, "alice", "a big plan"));
	check_big(d, big); /* loose */
	rt_sh("printf x | dd of='%s/migrations/0002-big.yaml' bs=1 seek=1000 conv=notrunc "
	      "status=none",
	      d);
	free(rt_commit(d, "alice", "a big plan, edited"));
	rt_sh("git -C '%s' -c pack.window=2 repack -q -a -d", d);
	check_big(d, big); /* packed, and the newer one a delta or the base of one */
	rt_rm_rf(d);
}

/* The cleaning itself: bad bytes and control characters become \xNN, valid text stays. */
static void
test_repo_snapshot__text_clean(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "bob@x.test", "bob@x.test" },
		{ "b\xffob@x.test", "b\\xffob@x.test" },
		{ "J\xc3\xb6rg \xe2\x82\xac", "J\xc3\xb6rg \xe2\x82\xac" }, /* valid: kept */
		{ "a\nStatus: applied", "a\\x0aStatus: applied" },
		{ "tab\tdel\x7f", "tab\\x09del\\x7f" },
		{ "\xc3", "\\xc3" },		       /* cut short */
		{ "\xc0\xaf", "\\xc0\\xaf" },	       /* overlong */
		{ "\xed\xa0\x80", "\\xed\\xa0\\x80" }, /* surrogate */
		{ "", "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = repo_text_clean(cases[i].in, strlen(cases[i].in));

		assert_string_equal(got, cases[i].want);
		free(got);
	}
}

/*
 * An author e-mail and name that are not UTF-8, and a file name that is not
 * either, come out of the snapshot as valid one-line UTF-8.
 */
static void
test_repo_snapshot__author_not_utf8(void **state)
{
	char *d = rt_init();
	struct repo *r;
	struct repo_snapshot *s;
	const struct repo_plan_file *f;

	(void)state;
	rt_write(d, "migrations/0001-a.yaml", "title: a\n");
	rt_sh("cd '%s' && printf 'title: b\\n' > \"migrations/0002-$(printf 'b\\377')\".yaml", d);
	/* git commit would re-encode the bytes as Latin-1: write the object as it is */
	rt_sh("cd '%s' && git add -A && printf 'tree %%s\\nauthor Bo\\001b <b\\377ob@x.test> "
	      "1700000000 +0000\\ncommitter c <c@x.test> 1700000000 +0000\\n\\nplans\\n' "
	      "\"$(git write-tree)\" | git hash-object -t commit -w --stdin > .c && "
	      "git update-ref refs/heads/main \"$(cat .c)\"",
	      d);
	r = rt_open(d, NULL, "main");
	s = rt_snap(r, "migrations");
	f = rt_file(s, "migrations/0001-a.yaml");
	assert_string_equal(f->author_email, "b\\xffob@x.test");
	assert_string_equal(f->author_name, "Bo\\x01b");
	f = rt_file(s, "migrations/0002-b\\xff.yaml");
	assert_string_equal(f->content, "title: b\n");
	repo_snapshot_free(s);
	repo_free(r);
	rt_rm_rf(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repo_snapshot__non_bare),
		cmocka_unit_test(test_repo_snapshot__bare),
		cmocka_unit_test(test_repo_snapshot__dir_spellings),
		cmocka_unit_test(test_repo_snapshot__missing_branch),
		cmocka_unit_test(test_repo_snapshot__missing_dir),
		cmocka_unit_test(test_repo_snapshot__open_errors),
		cmocka_unit_test(test_repo_snapshot__watch_paths),
		cmocka_unit_test(test_repo_snapshot__too_large_not_read),
		cmocka_unit_test(test_repo_snapshot__text_clean),
		cmocka_unit_test(test_repo_snapshot__author_not_utf8),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

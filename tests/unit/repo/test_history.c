/*
 * Which commit brought each plan: across authors, merges, a delete and
 * re-add, a conflict resolved either way; and how long it takes on a long
 * history.
 */
#include "repo_test.h"

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

static void
assert_file(const struct repo_snapshot *s, const char *path, const char *commit, const char *author)
{
	const struct repo_plan_file *f = rt_file(s, path);
	char *email = xasprintf("%s@example.com", author);

	assert_string_equal(f->commit, commit);
	assert_string_equal(f->author_name, author);
	assert_string_equal(f->author_email, email);
	free(email);
}

/* Each file's commit agrees with `git log -1 -- path` (git's history simplification). */
static void
assert_like_git_log(const char *dir, const struct repo_snapshot *s)
{
	for (size_t i = 0; i < s->n; i++) {
		char *want =
		    rt_out("git -C '%s' log -1 --format=%%H main -- '%s'", dir, s->files[i].path);

		assert_string_equal(s->files[i].commit, want);
		free(want);
	}
}

static void
test_repo_history__authors_merge_readd(void **state)
{
	char *d = rt_init(), *c1, *c2, *c3, *c4, *c5, *c6, *c7, *c8, *git;
	struct repo *r;
	struct repo_snapshot *s;

	(void)state;
	rt_write(d, "migrations/0001-a.yaml", "a1\n");
	rt_write(d, "migrations/0002-b.yaml", "b1\n");
	c1 = rt_commit(d, "alice", "a and b");
	rt_write(d, "migrations/0002-b.yaml", "b2\n");
	rt_write(d, "migrations/0003-c.yaml", "c1\n");
	c2 = rt_commit(d, "bob", "b changed, c");
	rt_sh("git -C '%s' rm -q migrations/0003-c.yaml", d);
	c3 = rt_commit(d, "carol", "c deleted");
	rt_write(d, "migrations/0003-c.yaml", "c1\n");
	c4 = rt_commit(d, "dave", "c back, same bytes");
	rt_sh("git -C '%s' checkout -q -b side", d);
	rt_write(d, "migrations/0001-a.yaml", "a2\n");
	c5 = rt_commit(d, "erin", "a changed on a side branch");
	rt_sh("git -C '%s' checkout -q main", d);
	rt_write(d, "migrations/0004-d.yaml", "d1\n");
	c6 = rt_commit(d, "frank", "d");
	git = rt_who("grace");
	rt_sh("cd '%s' && %s merge -q --no-ff -m 'merge side' side", d, git);
	free(git);
	c7 = rt_rev(d, "HEAD");
	rt_write(d, "README.md", "not a plan\n");
	c8 = rt_commit(d, "heidi", "readme only");

	r = rt_open(d, NULL, "main");
	s = rt_snap(r, "migrations");
	assert_string_equal(s->tip, c8);
	assert_int_equal(s->n, 4);
	assert_file(s, "migrations/0001-a.yaml", c5, "erin"); /* through the merge */
	assert_file(s, "migrations/0002-b.yaml", c2, "bob");  /* untouched since */
	assert_file(s, "migrations/0003-c.yaml", c4, "dave"); /* re-added */
	assert_file(s, "migrations/0004-d.yaml", c6, "frank");
	assert_true(rt_file(s, "migrations/0001-a.yaml")->commit_time <
		    rt_file(s, "migrations/0004-d.yaml")->commit_time);
	assert_like_git_log(d, s);
	repo_snapshot_free(s);
	repo_free(r);
	free(c1), free(c2), free(c3), free(c4), free(c5), free(c6), free(c7), free(c8);
	rt_rm_rf(d);
}

static void
test_repo_history__conflicted_merge(void **state)
{
	char *d = rt_init(), *c1, *s1, *m1, *mm, *git;
	struct repo *r;
	struct repo_snapshot *s;

	(void)state;
	rt_write(d, "migrations/0001-x.yaml", "base\n");
	rt_write(d, "migrations/0002-y.yaml", "base\n");
	c1 = rt_commit(d, "alice", "base");
	rt_sh("git -C '%s' checkout -q -b side", d);
	rt_write(d, "migrations/0001-x.yaml", "side\n");
	rt_write(d, "migrations/0002-y.yaml", "side\n");
	s1 = rt_commit(d, "bob", "side");
	rt_sh("git -C '%s' checkout -q main", d);
	rt_write(d, "migrations/0001-x.yaml", "main\n");
	rt_write(d, "migrations/0002-y.yaml", "main\n");
	m1 = rt_commit(d, "carol", "main, newer than side");
	git = rt_who("dave");
	rt_sh("cd '%s' && (%s merge -q side >/dev/null 2>&1 || true)", d, git);
	free(git);
	/* x resolved to something new; y resolved to the side's version. */
	rt_write(d, "migrations/0001-x.yaml", "merged\n");
	rt_write(d, "migrations/0002-y.yaml", "side\n");
	mm = rt_commit(d, "dave", "merge side, resolved");
	git = rt_rev(d, "HEAD^2");
	assert_string_equal(git, s1); /* a merge commit */
	free(git);

	r = rt_open(d, NULL, "main");
	s = rt_snap(r, "migrations");
	assert_string_equal(s->tip, mm);
	assert_file(s, "migrations/0001-x.yaml", mm, "dave");
	assert_file(s, "migrations/0002-y.yaml", s1, "bob");
	assert_like_git_log(d, s);
	repo_snapshot_free(s);
	repo_free(r);
	free(c1), free(s1), free(m1), free(mm);
	rt_rm_rf(d);
}

#ifndef LONG_COMMITS
#define LONG_COMMITS 2000
#endif
#define LONG_FILES 100

/*
 * A bare repository of LONG_COMMITS commits made with git fast-import: the
 * first adds LONG_FILES plans, each next one changes one plan (all but plan 0,
 * in turn) and a README. Plan 0 is only in the root commit, so the walk goes
 * all the way. marks gets the commit ids (mark i = commit i).
 */
static char *
make_long_repo(char **marks)
{
	char *d = rt_tmpdir();
	char *stream = xasprintf("%s.stream", d);
	FILE *f = fopen(stream, "w");

	assert_non_null(f);
	rt_sh("git init -q --bare -b main '%s'", d);
	for (int i = 1; i <= LONG_COMMITS; i++) {
		long t = 1600000000L + i * 60L;
		char msg[64];

		snprintf(msg, sizeof(msg), "commit %d\n", i);
		fprintf(f, "commit refs/heads/main\nmark :%d\n", i);
		fprintf(f, "author dev%d <dev%d@example.com> %ld +0000\n", i % 7, i % 7, t);
		fprintf(f, "committer ci <ci@example.com> %ld +0000\n", t);
		fprintf(f, "data %zu\n%s", strlen(msg), msg);
		if (i > 1)
			fprintf(f, "from :%d\n", i - 1);
		for (int k = 0; k < LONG_FILES; k++) {
			char body[64];

			if (i > 1 && k != (i - 2) % (LONG_FILES - 1) + 1)
				continue;
			snprintf(body, sizeof(body), "title: plan %d version %d\n", k, i);
			fprintf(f, "M 100644 inline migrations/%04d-plan.yaml\ndata %zu\n%s", k,
				strlen(body), body);
		}
		fprintf(f, "M 100644 inline README.md\ndata 3\n%03d", i % 1000);
		fputc('\n', f);
	}
	assert_int_equal(fclose(f), 0);
	*marks = xasprintf("%s.marks", d);
	rt_sh("git -C '%s' fast-import --quiet --export-marks='%s' < '%s'", d, *marks, stream);
	rt_sh("git -C '%s' gc -q", d);
	rt_sh("rm -f '%s'", stream);
	free(stream);
	return d;
}

static void
test_repo_history__long_history(void **state)
{
	char *marks, *d = make_long_repo(&marks);
	struct repo *r = rt_open(d, NULL, "main");
	struct repo_snapshot *s = NULL;
	double best = 1e9, t0, t;

	(void)state;
	for (int run = 0; run < 3; run++) {
		repo_snapshot_free(s);
		t0 = rt_ms();
		s = rt_snap(r, "migrations");
		t = rt_ms() - t0;
		best = t < best ? t : best;
	}
	print_message("repo_snapshot: %d commits, %d plans: %.1f ms (best of 3)\n", LONG_COMMITS,
		      LONG_FILES, best);
	assert_int_equal(s->n, LONG_FILES);
	for (int k = 0; k < LONG_FILES; k++) {
		/* The last commit i that changed plan k (plan 0: the root). */
		int last = 1;
		char *want, *author;

		for (int i = 2; i <= LONG_COMMITS; i++)
			if (k == (i - 2) % (LONG_FILES - 1) + 1)
				last = i;
		want = rt_out("sed -n 's/^:%d //p' '%s'", last, marks);
		author = xasprintf("dev%d", last % 7);
		assert_string_equal(s->files[k].commit, want);
		assert_string_equal(s->files[k].author_name, author);
		assert_int_equal(s->files[k].commit_time, 1600000000L + last * 60L);
		free(want);
		free(author);
	}
	repo_snapshot_free(s);
	repo_free(r);
	rt_sh("rm -f '%s'", marks);
	free(marks);
	rt_rm_rf(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repo_history__authors_merge_readd),
		cmocka_unit_test(test_repo_history__conflicted_merge),
		cmocka_unit_test(test_repo_history__long_history),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

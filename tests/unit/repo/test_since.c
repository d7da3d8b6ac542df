/*
 * A snapshot computed from the previous one (repo_snapshot_since) is the full
 * snapshot, field by field, across histories that move the tip forward
 * (straight, merges from older side branches, a change and its undoing in one
 * push, a delete and re-add, renames, an unrelated history merged in, the
 * directory gone and back) and ones that rewrite it (a force-push); and it
 * copies what did not change.
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
assert_same_file(const struct repo_plan_file *a, const struct repo_plan_file *b)
{
	assert_string_equal(a->path, b->path);
	assert_string_equal(a->git_path, b->git_path);
	assert_int_equal(a->len, b->len);
	assert_int_equal(a->too_large, b->too_large);
	assert_string_equal(a->blob, b->blob);
	if (strcmp(a->commit, b->commit) != 0)
		print_message("%s: full %s, since %s\n", a->path, a->commit, b->commit);
	assert_string_equal(a->commit, b->commit);
	assert_string_equal(a->author_name, b->author_name);
	assert_string_equal(a->author_email, b->author_email);
	assert_int_equal(a->commit_time, b->commit_time);
	if (!a->content) {
		assert_null(b->content);
	} else {
		assert_non_null(b->content);
		assert_memory_equal(a->content, b->content, a->len + 1);
	}
}

/*
 * The snapshot of r's main from *prev (may be NULL), which must equal the
 * full one; replaces *prev with it, as the daemon keeps its last one.
 * Returns how many entries it copied.
 */
static size_t
step(struct repo *r, const char *dir, struct repo_snapshot **prev)
{
	struct repo_snapshot *full = rt_snap(r, dir), *inc = NULL;
	char err[512] = "";
	size_t reused;

	if (repo_snapshot_since(r, dir, *prev, &inc, err, sizeof(err)) < 0)
		print_message("repo_snapshot_since: %s\n", err);
	assert_non_null(inc);
	assert_string_equal(full->tip, inc->tip);
	assert_int_equal(full->n, inc->n);
	assert_int_equal(full->reused, 0);
	for (size_t i = 0; i < full->n; i++)
		assert_same_file(&full->files[i], &inc->files[i]);
	reused = inc->reused;
	repo_snapshot_free(full);
	repo_snapshot_free(*prev);
	*prev = inc;
	return reused;
}

static char *
merge(const char *d, const char *who, const char *branch, const char *extra)
{
	char *git = rt_who(who);

	rt_sh("cd '%s' && %s merge -q --no-ff %s -m 'merge %s' %s", d, git, extra, branch, branch);
	free(git);
	return rt_rev(d, "HEAD");
}

static void
test_repo_since__straight(void **state)
{
	char *d = rt_init(), *c;
	struct repo *r;
	struct repo_snapshot *prev = NULL;

	(void)state;
	rt_write(d, "migrations/0001-a.yaml", "a1\n");
	rt_write(d, "migrations/0002-b.yaml", "b1\n");
	rt_write(d, "migrations/0003-c.yaml", "c1\n");
	free(rt_commit(d, "alice", "a b c"));
	rt_write(d, "README.md", "readme\n");
	free(rt_commit(d, "alice", "readme"));
	r = rt_open(d, NULL, "main");
	assert_int_equal(step(r, "migrations", &prev), 0); /* no previous one: all read */

	/* the same tip again: everything is copied */
	assert_int_equal(step(r, "migrations", &prev), 3);

	rt_write(d, "migrations/0004-d.yaml", "d1\n");
	free(rt_commit(d, "bob", "d"));
	assert_int_equal(step(r, "migrations", &prev), 3);
	/* d, brought by the previous tip, is copied too; b is read */
	rt_write(d, "migrations/0002-b.yaml", "b2\n");
	free(rt_commit(d, "carol", "b2"));
	rt_write(d, "README.md", "readme 2\n");
	free(rt_commit(d, "carol", "readme 2"));
	assert_int_equal(step(r, "migrations", &prev), 3);
	c = rt_rev(d, "HEAD~1");
	assert_string_equal(rt_file(prev, "migrations/0002-b.yaml")->commit, c);
	assert_string_equal(rt_file(prev, "migrations/0002-b.yaml")->content, "b2\n");
	free(c);

	/* several commits in one push, one of them deleting a */
	rt_write(d, "migrations/0005-e.yaml", "e1\n");
	free(rt_commit(d, "dave", "e"));
	rt_sh("git -C '%s' rm -q migrations/0001-a.yaml", d);
	free(rt_commit(d, "dave", "a deleted"));
	rt_write(d, "migrations/0003-c.yaml", "c2\n");
	free(rt_commit(d, "erin", "c2"));
	assert_int_equal(step(r, "migrations", &prev), 2); /* b and d */
	assert_int_equal(prev->n, 4);

	/* a directory that is not the one followed: nothing is copied, nothing is wrong */
	assert_int_equal(step(r, "", &prev), 0);
	assert_int_equal(step(r, "migrations", &prev), 0);
	repo_snapshot_free(prev);
	repo_free(r);
	rt_rm_rf(d);
}

/* A change undone in the same push brings the old bytes again: the newer commit. */
static void
test_repo_since__changed_and_back(void **state)
{
	char *d = rt_init(), *c0, *back;
	struct repo *r;
	struct repo_snapshot *prev = NULL;

	(void)state;
	rt_write(d, "migrations/0001-a.yaml", "A\n");
	rt_write(d, "migrations/0002-b.yaml", "b\n");
	c0 = rt_commit(d, "alice", "a is A");
	rt_write(d, "README.md", "x\n");
	free(rt_commit(d, "alice", "readme"));
	r = rt_open(d, NULL, "main");
	step(r, "migrations", &prev);
	assert_string_equal(rt_file(prev, "migrations/0001-a.yaml")->commit, c0);

	rt_write(d, "migrations/0001-a.yaml", "B\n");
	free(rt_commit(d, "bob", "a is B"));
	rt_write(d, "migrations/0001-a.yaml", "A\n");
	back = rt_commit(d, "carol", "a is A again");
	assert_int_equal(step(r, "migrations", &prev), 1); /* b only */
	assert_string_equal(rt_file(prev, "migrations/0001-a.yaml")->commit, back);
	assert_string_equal(rt_file(prev, "migrations/0001-a.yaml")->author_name, "carol");

	/* deleted and re-added with the same bytes, in one push */
	rt_write(d, "README.md", "y\n");
	free(rt_commit(d, "dave", "readme"));
	step(r, "migrations", &prev);
	rt_sh("git -C '%s' rm -q migrations/0002-b.yaml", d);
	free(rt_commit(d, "dave", "b deleted"));
	rt_write(d, "migrations/0002-b.yaml", "b\n");
	free(back);
	back = rt_commit(d, "erin", "b back");
	assert_int_equal(step(r, "migrations", &prev), 1); /* a */
	assert_string_equal(rt_file(prev, "migrations/0002-b.yaml")->commit, back);

	/* and in two pushes */
	rt_sh("git -C '%s' rm -q migrations/0001-a.yaml", d);
	free(rt_commit(d, "frank", "a deleted"));
	assert_int_equal(step(r, "migrations", &prev), 1); /* b, the previous tip's */
	assert_int_equal(prev->n, 1);
	rt_write(d, "migrations/0001-a.yaml", "A\n");
	free(back);
	back = rt_commit(d, "grace", "a back");
	assert_int_equal(step(r, "migrations", &prev), 1);
	assert_string_equal(rt_file(prev, "migrations/0001-a.yaml")->commit, back);
	repo_snapshot_free(prev);
	repo_free(r);
	free(c0), free(back);
	rt_rm_rf(d);
}

/* Renames: the new name is new; its content came with the rename. */
static void
test_repo_since__rename(void **state)
{
	char *d = rt_init(), *mv;
	struct repo *r;
	struct repo_snapshot *prev = NULL;

	(void)state;
	rt_write(d, "migrations/0001-a.yaml", "a\n");
	rt_write(d, "migrations/0002-b.yaml", "b\n");
	free(rt_commit(d, "alice", "a b"));
	rt_write(d, "README.md", "x\n");
	free(rt_commit(d, "alice", "readme"));
	r = rt_open(d, NULL, "main");
	step(r, "migrations", &prev);

	rt_sh("git -C '%s' mv migrations/0001-a.yaml migrations/0003-a.yaml", d);
	mv = rt_commit(d, "bob", "a renamed");
	assert_int_equal(step(r, "migrations", &prev), 1);
	assert_string_equal(rt_file(prev, "migrations/0003-a.yaml")->commit, mv);
	free(mv);

	/* renamed back and a plan moved out of the directory, in one push */
	rt_sh("git -C '%s' mv migrations/0003-a.yaml migrations/0001-a.yaml", d);
	free(rt_commit(d, "carol", "a renamed back"));
	rt_sh("git -C '%s' mv migrations/0002-b.yaml 0002-b.yaml", d);
	free(rt_commit(d, "carol", "b out"));
	assert_int_equal(step(r, "migrations", &prev), 0);
	assert_int_equal(prev->n, 1);
	/* into a plan file's place, a directory, then a file again */
	rt_sh("git -C '%s' rm -q migrations/0001-a.yaml", d);
	rt_write(d, "migrations/0001-a.yaml/x.yaml", "x\n");
	free(rt_commit(d, "dave", "a is a directory"));
	rt_sh("git -C '%s' rm -q -r migrations/0001-a.yaml", d);
	rt_write(d, "migrations/0001-a.yaml", "a\n");
	free(rt_commit(d, "dave", "a is a file"));
	rt_write(d, "README.md", "y\n");
	free(rt_commit(d, "dave", "readme"));
	assert_int_equal(step(r, "migrations", &prev), 0);
	repo_snapshot_free(prev);
	repo_free(r);
	rt_rm_rf(d);
}

/*
 * Side branches merged: made before the previous tip (older commits inside
 * the new range), one that changed a file the main line has too, one taken
 * with "ours", an unrelated history, and the directory deleted and restored.
 */
static void
test_repo_since__merges(void **state)
{
	char *d = rt_init(), *m, *git;
	struct repo *r;
	struct repo_snapshot *prev = NULL;
	size_t got;

	(void)state;
	rt_write(d, "migrations/0001-a.yaml", "a1\n");
	rt_write(d, "migrations/0002-b.yaml", "b1\n");
	rt_write(d, "migrations/0003-c.yaml", "c1\n");
	free(rt_commit(d, "alice", "base"));
	rt_sh("git -C '%s' checkout -q -b side", d);
	rt_write(d, "migrations/0002-b.yaml", "b-side\n");
	rt_write(d, "migrations/0004-d.yaml", "d-side\n");
	free(rt_commit(d, "bob", "side: b, d"));
	rt_sh("git -C '%s' checkout -q -b other main", d);
	rt_write(d, "migrations/0003-c.yaml", "c-other\n");
	free(rt_commit(d, "bob", "other: c"));
	rt_sh("git -C '%s' checkout -q main", d);
	rt_write(d, "migrations/0005-e.yaml", "e1\n");
	free(rt_commit(d, "carol", "main: e, newer than the sides"));
	rt_write(d, "README.md", "x\n");
	free(rt_commit(d, "carol", "readme"));
	r = rt_open(d, NULL, "main");
	step(r, "migrations", &prev);

	m = merge(d, "dave", "side", "");
	assert_int_equal(step(r, "migrations", &prev), 3); /* a, c, e */
	assert_string_equal(rt_file(prev, "migrations/0002-b.yaml")->author_name, "bob");
	free(m);
	/* the other side taken with its content refused: c is still main's */
	m = merge(d, "erin", "other", "-s ours");
	assert_int_equal(step(r, "migrations", &prev), 4);
	assert_string_equal(rt_file(prev, "migrations/0003-c.yaml")->author_name, "alice");
	free(m);

	/*
	 * A branch from before a changed, merged with a set back to the branch's
	 * bytes: no commit of the range brought them, but they are older ones.
	 */
	rt_sh("git -C '%s' checkout -q -b old main", d);
	rt_write(d, "migrations/0008-h.yaml", "h\n");
	free(rt_commit(d, "kim", "old: h"));
	rt_sh("git -C '%s' checkout -q main", d);
	rt_write(d, "migrations/0001-a.yaml", "a2\n");
	free(rt_commit(d, "kim", "a2"));
	rt_write(d, "README.md", "z\n");
	free(rt_commit(d, "kim", "readme"));
	step(r, "migrations", &prev);
	assert_string_equal(rt_file(prev, "migrations/0001-a.yaml")->author_name, "kim");
	git = rt_who("liam");
	rt_sh("cd '%s' && %s merge -q --no-ff --no-commit old >/dev/null 2>&1", d, git);
	free(git);
	rt_sh("git -C '%s' checkout -q old -- migrations/0001-a.yaml", d);
	free(rt_commit(d, "liam", "merge old, a as old has it"));
	assert_int_equal(step(r, "migrations", &prev), 4); /* b c d e */
	assert_string_equal(rt_file(prev, "migrations/0001-a.yaml")->author_name, "alice");
	assert_string_equal(rt_file(prev, "migrations/0008-h.yaml")->author_name, "kim");

	/* an unrelated history with a plan of its own and one that main has */
	rt_sh("git -C '%s' checkout -q --orphan lone", d);
	rt_sh("git -C '%s' rm -q -r -f .", d);
	rt_write(d, "migrations/0006-f.yaml", "f\n");
	rt_write(d, "migrations/0001-a.yaml", "a1\n");
	free(rt_commit(d, "frank", "lone"));
	rt_sh("git -C '%s' checkout -q main", d);
	free(merge(d, "grace", "lone", "--allow-unrelated-histories"));
	step(r, "migrations", &prev);
	assert_string_equal(rt_file(prev, "migrations/0006-f.yaml")->author_name, "frank");

	/* the directory deleted and restored in one push */
	rt_sh("git -C '%s' rm -q -r migrations", d);
	free(rt_commit(d, "heidi", "no migrations"));
	rt_sh("git -C '%s' checkout -q HEAD~1 -- migrations", d);
	free(rt_commit(d, "heidi", "migrations back"));
	assert_int_equal(step(r, "migrations", &prev), 0);
	assert_string_equal(rt_file(prev, "migrations/0005-e.yaml")->author_name, "heidi");

	/* a merge of a branch made from before the previous tip, with a fast-forward too */
	rt_sh("git -C '%s' checkout -q -b late HEAD~2", d);
	rt_write(d, "migrations/0007-g.yaml", "g\n");
	free(rt_commit(d, "ivan", "late: g"));
	rt_sh("git -C '%s' checkout -q main", d);
	rt_write(d, "README.md", "y\n");
	free(rt_commit(d, "judy", "readme"));
	step(r, "migrations", &prev);
	free(merge(d, "judy", "late", ""));
	rt_write(d, "migrations/0002-b.yaml", "b-main\n");
	free(rt_commit(d, "judy", "b"));
	got = step(r, "migrations", &prev);
	assert_int_equal(got, prev->n - 2); /* g and b read */
	repo_snapshot_free(prev);
	repo_free(r);
	rt_rm_rf(d);
}

/* A force-push: the previous tip is not an ancestor; the full snapshot, nothing copied. */
static void
test_repo_since__force_push(void **state)
{
	char *d = rt_init(), *base;
	struct repo *r;
	struct repo_snapshot *prev = NULL, *saved = NULL;
	char err[512] = "";

	(void)state;
	rt_write(d, "migrations/0001-a.yaml", "a\n");
	rt_write(d, "migrations/0002-b.yaml", "b\n");
	base = rt_commit(d, "alice", "a b");
	rt_write(d, "migrations/0002-b.yaml", "b2\n");
	rt_write(d, "migrations/0003-c.yaml", "c\n");
	free(rt_commit(d, "bob", "b2 c"));
	r = rt_open(d, NULL, "main");
	step(r, "migrations", &prev);
	assert_int_equal(prev->n, 3);

	rt_sh("git -C '%s' reset -q --hard '%s'", d, base);
	rt_write(d, "README.md", "rewritten\n");
	free(rt_commit(d, "carol", "rewritten"));
	assert_int_equal(step(r, "migrations", &prev), 0);
	assert_int_equal(prev->n, 2);
	assert_string_equal(rt_file(prev, "migrations/0002-b.yaml")->commit, base);

	/* a previous snapshot whose tip the repository no longer has at all */
	assert_int_equal(repo_snapshot_since(r, "migrations", prev, &saved, err, sizeof(err)), 0);
	memset(saved->tip, 'f', 40);
	assert_int_equal(step(r, "migrations", &saved), 0);
	/* and one whose tip is not a commit id */
	strcpy(saved->tip, "not an id");
	assert_int_equal(step(r, "migrations", &saved), 0);
	repo_snapshot_free(saved);
	repo_snapshot_free(prev);
	repo_free(r);
	free(base);
	rt_rm_rf(d);
}

/* What is copied is the previous snapshot's: proof that nothing untouched was read again. */
static void
test_repo_since__copies_entries(void **state)
{
	char *d = rt_init();
	struct repo *r;
	struct repo_snapshot *prev = NULL, *next = NULL;
	struct repo_plan_file *f;
	char err[512] = "";

	(void)state;
	rt_write(d, "migrations/0001-a.yaml", "a\n");
	free(rt_commit(d, "alice", "a"));
	rt_write(d, "README.md", "x\n");
	free(rt_commit(d, "alice", "readme"));
	r = rt_open(d, NULL, "main");
	step(r, "migrations", &prev);
	rt_write(d, "migrations/0002-b.yaml", "b\n");
	free(rt_commit(d, "bob", "b"));

	f = &prev->files[0];
	free(f->author_name);
	f->author_name = xstrdup("marked");
	f->content[0] = 'Z';
	assert_int_equal(repo_snapshot_since(r, "migrations", prev, &next, err, sizeof(err)), 0);
	assert_int_equal(next->reused, 1);
	assert_string_equal(next->files[0].author_name, "marked");
	assert_string_equal(next->files[0].content, "Z\n");
	assert_string_equal(next->files[1].author_name, "bob");
	/* copies: the previous one can go first */
	repo_snapshot_free(prev);
	assert_string_equal(next->files[0].author_email, "alice@example.com");
	repo_snapshot_free(next);
	repo_free(r);
	rt_rm_rf(d);
}

/*
 * repo_snapshot_since_move: the same snapshot, whose reused entries took the
 * previous one's strings (left NULL there), which can still be freed.
 */
static void
test_repo_since__move_takes_entries(void **state)
{
	char *d = rt_init();
	struct repo *r;
	struct repo_snapshot *prev = NULL, *next = NULL, *full;
	char *content, *path, *git_path;
	char err[512] = "";

	(void)state;
	rt_write(d, "migrations/0001-a.yaml", "a\n");
	rt_write(d, "migrations/0002-b.yaml", "b\n");
	free(rt_commit(d, "alice", "a and b"));
	r = rt_open(d, NULL, "main");
	step(r, "migrations", &prev);
	rt_write(d, "migrations/0002-b.yaml", "b2\n");
	rt_write(d, "migrations/0003-c.yaml", "c\n");
	free(rt_commit(d, "bob", "b2 and c"));

	content = prev->files[0].content;
	path = prev->files[0].path;
	git_path = prev->files[0].git_path;
	assert_int_equal(repo_snapshot_since_move(r, "migrations", prev, &next, err, sizeof(err)),
			 0);
	assert_int_equal(next->reused, 1);
	/* taken, not copied: the same bytes at the same address, gone from prev */
	assert_ptr_equal(next->files[0].content, content);
	assert_ptr_equal(next->files[0].path, path);
	assert_ptr_equal(next->files[0].git_path, git_path);
	assert_null(prev->files[0].content);
	assert_null(prev->files[0].author_name);
	assert_null(prev->files[0].path);
	assert_null(prev->files[0].git_path);
	assert_non_null(prev->files[1].content); /* changed: not taken */
	repo_snapshot_free(prev);
	full = rt_snap(r, "migrations");
	assert_int_equal(full->n, next->n);
	for (size_t i = 0; i < full->n; i++)
		assert_same_file(&full->files[i], &next->files[i]);
	repo_snapshot_free(full);
	repo_snapshot_free(next);
	repo_free(r);
	rt_rm_rf(d);
}

/*
 * A directory among the plan files: git orders a tree's entries as if a
 * directory's name ended in '/', so "a" sorts after "a.yaml" and before
 * "a0.yaml", where byte order puts it first. The commits of a push are
 * compared with their parents entry by entry in git's order; a file changed
 * and changed back behind the directory is brought again (the newer commit),
 * one beside it that nobody touched keeps its entry.
 */
static void
test_repo_since__directory_among_files(void **state)
{
	char *d = rt_init(), *back;
	struct repo *r;
	struct repo_snapshot *prev = NULL;

	(void)state;
	rt_write(d, "migrations/a.yaml", "a1\n");
	rt_write(d, "migrations/a/x.yaml", "x1\n");
	rt_write(d, "migrations/a0.yaml", "a0 1\n");
	rt_write(d, "migrations/b.yaml", "b1\n");
	rt_write(d, "migrations/a-.yaml", "a- 1\n");
	free(rt_commit(d, "alice", "a a/ a0 b a-"));
	r = rt_open(d, NULL, "main");
	assert_int_equal(step(r, "migrations", &prev), 0);
	assert_int_equal(prev->n, 4);

	/* a0 changed and back, the directory changed too, in one push */
	rt_write(d, "migrations/a0.yaml", "a0 2\n");
	rt_write(d, "migrations/a/x.yaml", "x2\n");
	free(rt_commit(d, "bob", "a0 2"));
	rt_write(d, "migrations/a0.yaml", "a0 1\n");
	back = rt_commit(d, "bob", "a0 back");
	assert_int_equal(step(r, "migrations", &prev), 3); /* all but a0 */
	assert_string_equal(rt_file(prev, "migrations/a0.yaml")->commit, back);
	free(back);

	/* the directory alone: nothing read */
	rt_write(d, "migrations/a/x.yaml", "x3\n");
	free(rt_commit(d, "carol", "x3"));
	assert_int_equal(step(r, "migrations", &prev), 4);

	/* a file where the directory was: a plan named like it is new */
	rt_sh("git -C '%s' rm -q -r migrations/a", d);
	rt_write(d, "migrations/a", "not a plan\n");
	rt_write(d, "migrations/a.yaml", "a2\n");
	free(rt_commit(d, "dave", "a is a file"));
	assert_int_equal(step(r, "migrations", &prev), 3); /* a.yaml read */
	repo_snapshot_free(prev);
	repo_free(r);
	rt_rm_rf(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repo_since__straight),
		cmocka_unit_test(test_repo_since__changed_and_back),
		cmocka_unit_test(test_repo_since__rename),
		cmocka_unit_test(test_repo_since__merges),
		cmocka_unit_test(test_repo_since__force_push),
		cmocka_unit_test(test_repo_since__copies_entries),
		cmocka_unit_test(test_repo_since__move_takes_entries),
		cmocka_unit_test(test_repo_since__directory_among_files),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/*
 * Notes: written, rewritten, left alone when identical, shown by git log,
 * and pushed to a remote whose notes moved meanwhile without losing the
 * other writer's notes or forcing.
 */
#include "repo_test.h"

#include "repo/repo_int.h" /* the before_push test seam */

#define NREF "refs/notes/taskslaps/prod"

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
sync_ok(struct repo *r, const char *commit, const char *text, bool push)
{
	struct repo_note n = { commit, text };
	char err[512] = "";

	if (repo_notes_sync(r, NREF, &n, 1, push, err, sizeof(err)) < 0)
		print_message("repo_notes_sync: %s\n", err);
	assert_string_equal(err, "");
}

/* The note on commit must be want (NULL: none). */
static void
assert_note(struct repo *r, const char *commit, const char *want)
{
	char *got = repo_note_read(r, NREF, commit);

	if (!want) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* The notes ref of the repository at gitdir ("" when there is none); caller frees. */
static char *
notes_tip(const char *gitdir)
{
	return rt_out("git --git-dir='%s' rev-parse -q --verify " NREF " || true", gitdir);
}

static void
test_repo_notes__write_rewrite_identical(void **state)
{
	char *d = rt_init(), *c1, *c2, *t1, *t2, *t3, *t4, *out, *gitdir;
	struct repo *r;
	struct repo_note two[2];
	char err[512] = "";
	const char *applied = "taskslaps prod: applied 0001-a H1 3/3 steps\n\nPlan: 0001-a\n"
			      "Status: applied\n";

	(void)state;
	rt_write(d, "migrations/0001-a.yaml", "a\n");
	c1 = rt_commit(d, "alice", "a");
	rt_write(d, "migrations/0002-b.yaml", "b\n");
	c2 = rt_commit(d, "bob", "b");
	r = rt_open(d, NULL, "main");
	gitdir = xstrdup(repo_gitdir(r));
	assert_note(r, c1, NULL);

	sync_ok(r, c1, "taskslaps prod: running 0001-a H1 1/3 steps\n", false);
	assert_note(r, c1, "taskslaps prod: running 0001-a H1 1/3 steps\n");
	t1 = notes_tip(gitdir);
	out = rt_out("git --git-dir='%s' log -1 --format='%%an <%%ae>|%%cn <%%ce>' " NREF, gitdir);
	assert_string_equal(out, "taskslaps <taskslaps@localhost>|taskslaps <taskslaps@localhost>");
	free(out);

	/* The same text again: no new notes commit. */
	sync_ok(r, c1, "taskslaps prod: running 0001-a H1 1/3 steps\n", false);
	t2 = notes_tip(gitdir);
	assert_string_equal(t1, t2);

	/* A new status replaces the note, on top of the previous notes commit. */
	sync_ok(r, c1, applied, false);
	assert_note(r, c1, applied);
	t3 = notes_tip(gitdir);
	assert_string_not_equal(t3, t1);
	out = rt_rev(gitdir, NREF "^");
	assert_string_equal(out, t1);
	free(out);

	out = rt_out("git -C '%s' log -1 --notes=taskslaps/prod '%s'", d, c1);
	assert_non_null(strstr(out, "Notes (taskslaps/prod):"));
	assert_non_null(strstr(out, "    taskslaps prod: applied 0001-a H1 3/3 steps"));
	assert_non_null(strstr(out, "    Status: applied"));
	free(out);

	/* Two notes, one unchanged: a single notes commit for the change. */
	two[0] = (struct repo_note){ c1, applied };
	two[1] = (struct repo_note){ c2, "taskslaps prod: pending 0002-b H0 0/1 steps\n" };
	assert_int_equal(repo_notes_sync(r, NREF, two, 2, true, err, sizeof(err)), 0);
	t4 = notes_tip(gitdir);
	out = rt_out("git --git-dir='%s' rev-list --count '%s..%s'", gitdir, t3, t4);
	assert_string_equal(out, "1");
	free(out);
	out = rt_out("git -C '%s' notes --ref=taskslaps/prod show '%s'", d, c2);
	assert_string_equal(out, "taskslaps prod: pending 0002-b H0 0/1 steps");
	free(out);
	assert_note(r, c1, applied);

	/* No text removes a note. */
	sync_ok(r, c2, NULL, false);
	assert_note(r, c2, NULL);
	assert_note(r, c1, applied);

	free(c1), free(c2), free(t1), free(t2), free(t3), free(t4), free(gitdir);
	repo_free(r);
	rt_rm_rf(d);
}

/*
 * A writer that chose its notes from the state it left the ref in
 * (repo_notes_sync_at): a ref another hand moved meanwhile is left alone and
 * said to have moved, so no note that hand dropped stays dropped; the id it
 * hands back is the one it wrote.
 */
static void
test_repo_notes__sync_at_expected_ref(void **state)
{
	char *d = rt_init(), *c1, *c2, *gitdir, *tip, *out, *git;
	struct repo *r;
	struct repo_note n;
	char err[512] = "", written[41];

	(void)state;
	rt_write(d, "migrations/0001-a.yaml", "a\n");
	c1 = rt_commit(d, "alice", "a");
	rt_write(d, "migrations/0002-b.yaml", "b\n");
	c2 = rt_commit(d, "bob", "b");
	r = rt_open(d, NULL, "main");
	gitdir = xstrdup(repo_gitdir(r));

	/* No ref expected, none there: written, and the id handed back is the tip. */
	n = (struct repo_note){ c1, "taskslaps prod: applied 0001-a\n" };
	assert_int_equal(repo_notes_sync_at(r, NREF, &n, 1, "", written, err, sizeof(err)), 0);
	tip = notes_tip(gitdir);
	assert_string_equal(written, tip);
	free(tip);

	/* Another hand removes that note: the ref is no longer where we left it. */
	git = rt_who("other");
	rt_sh("%s -C '%s' notes --ref=taskslaps/prod remove '%s'", git, d, c1);
	free(git);
	tip = notes_tip(gitdir);
	assert_string_not_equal(tip, written);

	/* Expecting our id: nothing written, the other hand's ref kept, "moved" said. */
	n = (struct repo_note){ c2, "taskslaps prod: pending 0002-b\n" };
	assert_int_equal(repo_notes_sync_at(r, NREF, &n, 1, written, written, err, sizeof(err)),
			 REPO_NOTES_MOVED);
	out = notes_tip(gitdir);
	assert_string_equal(out, tip);
	free(out);
	assert_note(r, c2, NULL);
	/* Expecting no ref while there is one: the same. */
	assert_int_equal(repo_notes_sync_at(r, NREF, &n, 1, "", written, err, sizeof(err)),
			 REPO_NOTES_MOVED);

	/* Expecting what is there: written on top of it. */
	assert_int_equal(repo_notes_sync_at(r, NREF, &n, 1, tip, written, err, sizeof(err)), 0);
	assert_note(r, c2, "taskslaps prod: pending 0002-b\n");
	assert_note(r, c1, NULL);
	out = rt_rev(gitdir, NREF "^");
	assert_string_equal(out, tip);
	free(out);
	free(tip);
	tip = notes_tip(gitdir);
	assert_string_equal(written, tip);

	/* Nothing to change: the id handed back is where the ref stays. */
	assert_int_equal(repo_notes_sync_at(r, NREF, &n, 1, tip, written, err, sizeof(err)), 0);
	assert_string_equal(written, tip);
	/* Any state (NULL): written on top of what is there. */
	n = (struct repo_note){ c1, "taskslaps prod: applied 0001-a\n" };
	assert_int_equal(repo_notes_sync_at(r, NREF, &n, 1, NULL, written, err, sizeof(err)), 0);
	assert_note(r, c1, "taskslaps prod: applied 0001-a\n");
	assert_note(r, c2, "taskslaps prod: pending 0002-b\n");
	assert_string_not_equal(written, tip);

	free(c1), free(c2), free(gitdir), free(tip);
	repo_free(r);
	rt_rm_rf(d);
}

static void
test_repo_notes__errors(void **state)
{
	char *d = rt_init(), *c1;
	struct repo *r;
	struct repo_note n;
	char err[512] = "";

	(void)state;
	c1 = rt_commit(d, "alice", "empty");
	r = rt_open(d, NULL, "main");
	n = (struct repo_note){ c1, "x" };
	assert_int_equal(repo_notes_sync(r, "refs/heads/main", &n, 1, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "invalid notes ref"));
	n = (struct repo_note){ "not-a-commit", "x" };
	assert_int_equal(repo_notes_sync(r, NREF, &n, 1, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "invalid commit id"));
	assert_null(repo_note_read(r, NREF, "zz"));
	/* Nothing to write: no ref appears. */
	assert_int_equal(repo_notes_sync(r, NREF, NULL, 0, false, err, sizeof(err)), 0);
	c1 = (free(c1), notes_tip(repo_gitdir(r)));
	assert_string_equal(c1, "");
	free(c1);
	repo_free(r);
	rt_rm_rf(d);
}

static void
test_repo_notes__bare_local(void **state)
{
	char *d = rt_init(), *bare, *c1, *out;
	struct repo *r;

	(void)state;
	c1 = rt_commit(d, "alice", "empty");
	bare = xasprintf("%s.git", d);
	rt_sh("git clone -q --bare '%s' '%s'", d, bare);
	r = rt_open(bare, NULL, "main");
	sync_ok(r, c1, "taskslaps prod: applied x H0 1/1 steps\n", true);
	out = rt_out("git --git-dir='%s' notes --ref=taskslaps/prod show '%s'", bare, c1);
	assert_string_equal(out, "taskslaps prod: applied x H0 1/1 steps");
	free(out);
	repo_free(r);
	free(c1);
	rt_rm_rf(bare);
	rt_rm_rf(d);
}

/* Points ref in gitdir at a new blob; returns the blob's id (caller frees). */
static char *
ref_to_blob(const char *gitdir, const char *ref)
{
	char *blob = rt_out("echo 'not notes' | git --git-dir='%s' hash-object -w --stdin", gitdir);

	rt_sh("git --git-dir='%s' update-ref '%s' '%s'", gitdir, ref, blob);
	return blob;
}

/*
 * A notes ref pushed to point at a blob: the next sync replaces it with
 * notes written anew (returning 1 and saying what it was), and the one
 * after is an ordinary sync again.
 */
static void
test_repo_notes__ref_not_a_commit_replaced(void **state)
{
	char *d = rt_init(), *bare, *c1, *blob, *out;
	struct repo *r;
	struct repo_note n;
	char err[512] = "";

	(void)state;
	c1 = rt_commit(d, "alice", "empty");
	bare = xasprintf("%s.git", d);
	rt_sh("git clone -q --bare '%s' '%s'", d, bare);
	r = rt_open(bare, NULL, "main");
	sync_ok(r, c1, "v1\n", false);
	blob = ref_to_blob(bare, NREF);

	n = (struct repo_note){ c1, "v2\n" };
	assert_int_equal(repo_notes_sync(r, NREF, &n, 1, false, err, sizeof(err)), 1);
	assert_non_null(strstr(err, NREF " pointed at a blob"));
	assert_non_null(strstr(err, "replaced"));
	assert_note(r, c1, "v2\n");
	out = rt_out("git --git-dir='%s' cat-file -t " NREF, bare);
	assert_string_equal(out, "commit");
	free(out);
	/* repaired: the next one is ordinary */
	sync_ok(r, c1, "v3\n", false);
	assert_note(r, c1, "v3\n");

	/* nothing to write: the bad ref just goes */
	free(ref_to_blob(bare, NREF));
	assert_int_equal(repo_notes_sync(r, NREF, NULL, 0, false, err, sizeof(err)), 1);
	out = notes_tip(bare);
	assert_string_equal(out, "");
	free(out);

	repo_free(r);
	free(c1), free(blob);
	rt_rm_rf(bare);
	rt_rm_rf(d);
}

/*
 * With a URL: the mirror's own notes ref at a blob is replaced and pushed;
 * the remote's at a blob is reported, never forced, and fetching the branch
 * still works meanwhile.
 */
static void
test_repo_notes__remote_ref_not_a_commit(void **state)
{
	char *work = rt_init(), *st = rt_tmpdir(), *origin, *url, *c1, *c2, *blob, *out;
	struct repo *r;
	struct repo_note n;
	char err[512] = "";

	(void)state;
	c1 = rt_commit(work, "alice", "one");
	origin = xasprintf("%s.git", work);
	rt_sh("git clone -q --bare '%s' '%s'", work, origin);
	url = xasprintf("file://%s", origin);
	r = rt_open(url, st, "main");
	sync_ok(r, c1, "v1\n", true);

	/* ours at a blob: replaced, and the push is an ordinary fast-forward */
	free(ref_to_blob(repo_gitdir(r), NREF));
	n = (struct repo_note){ c1, "v2\n" };
	assert_int_equal(repo_notes_sync(r, NREF, &n, 1, true, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "pointed at a blob"));
	out = rt_out("git --git-dir='%s' notes --ref=taskslaps/prod show '%s'", origin, c1);
	assert_string_equal(out, "v2");
	free(out);

	/* the remote's at a blob: an error that says so, and the blob stays */
	blob = ref_to_blob(origin, NREF);
	n = (struct repo_note){ c1, "v3\n" };
	assert_int_equal(repo_notes_sync(r, NREF, &n, 1, true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "points at a blob"));
	assert_non_null(strstr(err, "never does"));
	out = rt_rev(origin, NREF);
	assert_string_equal(out, blob);
	free(out);
	/* and the branch is still followed */
	c2 = rt_commit(work, "bob", "two");
	rt_sh("git -C '%s' push -q '%s' main", work, origin);
	assert_int_equal(repo_fetch(r, err, sizeof(err)), 0);
	out = rt_rev(repo_gitdir(r), "refs/heads/main");
	assert_string_equal(out, c2);
	free(out);
	/* the mirror's notes stay ours, and nothing staged is left */
	out = rt_out("git --git-dir='%s' cat-file -t " NREF, repo_gitdir(r));
	assert_string_equal(out, "commit");
	free(out);
	out = rt_out("git --git-dir='%s' for-each-ref refs/taskslaps", repo_gitdir(r));
	assert_string_equal(out, "");
	free(out);

	repo_free(r);
	free(c1), free(c2), free(blob), free(url);
	rt_rm_rf(st);
	rt_rm_rf(origin);
	rt_rm_rf(work);
}

static void
test_repo_notes__push_over_other_writer(void **state)
{
	char *work = rt_init(), *st = rt_tmpdir(), *st2 = rt_tmpdir(), *url, *c1, *c2, *c3;
	char *origin, *other, *tip, *tip2, *out, *git;
	struct repo *r;

	(void)state;
	c1 = rt_commit(work, "alice", "one");
	c2 = rt_commit(work, "bob", "two");
	c3 = rt_commit(work, "carol", "three");
	/* Where developers push: a bare repository (libgit2 pushes only to bare ones over file://).
	 */
	origin = xasprintf("%s.git", work);
	rt_sh("git clone -q --bare '%s' '%s'", work, origin);
	url = xasprintf("file://%s", origin);
	r = rt_open(url, st, "main");

	/* Without push only the mirror has it. */
	sync_ok(r, c1, "ours v1\n", false);
	assert_note(r, c1, "ours v1\n");
	tip = notes_tip(origin);
	assert_string_equal(tip, "");
	free(tip);
	/* With push, the mirror's notes go up as they are. */
	sync_ok(r, c1, "ours v1\n", true);
	out = rt_out("git --git-dir='%s' notes --ref=taskslaps/prod show '%s'", origin, c1);
	assert_string_equal(out, "ours v1");
	free(out);

	/* Another writer adds a note on another commit, straight in the origin. */
	git = rt_who("other");
	rt_sh("%s --git-dir='%s' notes --ref=taskslaps/prod add -m 'other writer' '%s'", git,
	      origin, c2);
	free(git);
	other = notes_tip(origin);

	/* Our mirror's notes are behind: the rewrite goes on top of the remote's. */
	sync_ok(r, c1, "ours v2\n", true);
	out = rt_out("git --git-dir='%s' notes --ref=taskslaps/prod show '%s'", origin, c1);
	assert_string_equal(out, "ours v2");
	free(out);
	out = rt_out("git --git-dir='%s' notes --ref=taskslaps/prod show '%s'", origin, c2);
	assert_string_equal(out, "other writer");
	free(out);
	/* Not forced: the other writer's notes commit is in the history. */
	rt_sh("git --git-dir='%s' merge-base --is-ancestor '%s' " NREF, origin, other);
	out = rt_out("git --git-dir='%s' rev-list --count " NREF, origin);
	assert_string_equal(out, "3");
	free(out);
	assert_note(r, c2, "other writer\n");
	tip = notes_tip(origin);
	out = notes_tip(repo_gitdir(r));
	assert_string_equal(out, tip);
	free(out);
	/* No temporary ref left behind. */
	out = rt_out("git --git-dir='%s' for-each-ref refs/taskslaps", repo_gitdir(r));
	assert_string_equal(out, "");
	free(out);

	/* Identical notes: nothing pushed. */
	sync_ok(r, c1, "ours v2\n", true);
	tip2 = notes_tip(origin);
	assert_string_equal(tip2, tip);
	free(tip2);
	repo_free(r);

	/* A fresh mirror sees the notes from its first fetch, and writes only what changed. */
	r = rt_open(url, st2, "main");
	assert_note(r, c1, "ours v2\n");
	{
		struct repo_note both[2] = { { c1, "ours v2\n" }, { c3, "ours on three\n" } };
		char err[512] = "";

		assert_int_equal(repo_notes_sync(r, NREF, both, 2, true, err, sizeof(err)), 0);
	}
	out = rt_out("git --git-dir='%s' rev-list --count '%s.." NREF "'", origin, tip);
	assert_string_equal(out, "1");
	free(out);
	out = rt_out("git --git-dir='%s' log --notes=taskslaps/prod --format='%%N' -1 '%s'", origin,
		     c3);
	assert_string_equal(out, "ours on three");
	free(out);
	repo_free(r);

	free(c1), free(c2), free(c3), free(url), free(other), free(tip);
	rt_rm_rf(st);
	rt_rm_rf(st2);
	rt_rm_rf(origin);
	rt_rm_rf(work);
}

static void
test_repo_notes__fetch_keeps_local_notes(void **state)
{
	char *work = rt_init(), *st = rt_tmpdir(), *st2 = rt_tmpdir(), *url, *c1, *c2;
	char *origin, *mine, *out, *git;
	struct repo *r, *r2;
	char err[512] = "";

	(void)state;
	c1 = rt_commit(work, "alice", "one");
	c2 = rt_commit(work, "bob", "two");
	origin = xasprintf("%s.git", work);
	rt_sh("git clone -q --bare '%s' '%s'", work, origin);
	url = xasprintf("file://%s", origin);
	r = rt_open(url, st, "main");
	r2 = rt_open(url, st2, "main");

	/* push_notes off: the mirror's notes are the only copy, and a fetch keeps them. */
	sync_ok(r, c1, "local only\n", false);
	mine = notes_tip(repo_gitdir(r));
	git = rt_who("other");
	rt_sh("%s --git-dir='%s' notes --ref=taskslaps/prod add -m 'other writer' '%s'", git,
	      origin, c2);
	assert_int_equal(repo_fetch(r, err, sizeof(err)), 0);
	out = notes_tip(repo_gitdir(r));
	assert_string_equal(out, mine);
	free(out);
	assert_note(r, c1, "local only\n");

	/* A mirror without notes of its own follows the remote's as they grow. */
	assert_int_equal(repo_fetch(r2, err, sizeof(err)), 0);
	assert_note(r2, c2, "other writer\n");
	rt_sh("%s --git-dir='%s' notes --ref=taskslaps/prod add -m 'more' '%s'", git, origin, c1);
	assert_int_equal(repo_fetch(r2, err, sizeof(err)), 0);
	assert_note(r2, c1, "more\n");
	free(git);

	repo_free(r);
	repo_free(r2);
	free(c1), free(c2), free(url), free(mine);
	rt_rm_rf(st);
	rt_rm_rf(st2);
	rt_rm_rf(origin);
	rt_rm_rf(work);
}

/* Another writer that adds a note in the origin each time we are about to push. */
struct racer {
	const char *origin;
	char **commits; /* one per race */
	int races, calls;
};

static void
racer_moves(void *arg)
{
	struct racer *rc = arg;
	char *git;

	if (rc->calls >= rc->races) {
		rc->calls++;
		return;
	}
	git = rt_who("racer");
	rt_sh("%s --git-dir='%s' notes --ref=taskslaps/prod add -f -m 'race %d' '%s' 2>/dev/null",
	      git, rc->origin, rc->calls, rc->commits[rc->calls]);
	free(git);
	rc->calls++;
}

static void
test_repo_notes__push_retries_when_remote_moves(void **state)
{
	char *work = rt_init(), *st = rt_tmpdir(), *url, *c[6], *origin, *out;
	struct racer race = { 0 };
	struct repo *r;
	struct repo_note n;
	char err[512] = "";

	(void)state;
	for (int i = 0; i < 6; i++)
		c[i] = rt_commit(work, "alice", "commit");
	origin = xasprintf("%s.git", work);
	rt_sh("git clone -q --bare '%s' '%s'", work, origin);
	url = xasprintf("file://%s", origin);
	r = rt_open(url, st, "main");
	race.origin = origin;
	race.commits = &c[1];
	r->before_push = racer_moves;
	r->before_push_arg = &race;

	/* Twice the remote moves between our fetch and our push: the third round lands. */
	race.races = 2;
	sync_ok(r, c[0], "ours\n", true);
	assert_int_equal(race.calls, 3);
	out = rt_out("git --git-dir='%s' notes --ref=taskslaps/prod show '%s'", origin, c[0]);
	assert_string_equal(out, "ours");
	free(out);
	for (int i = 1; i <= 2; i++) {
		out =
		    rt_out("git --git-dir='%s' notes --ref=taskslaps/prod show '%s'", origin, c[i]);
		assert_non_null(strstr(out, "race"));
		free(out);
	}

	/* A remote that never stops moving: bounded, an error, nothing forced. */
	race.calls = 0;
	race.races = 5;
	race.commits = &c[1]; /* rewritten notes on the same commits: still new commits */
	n = (struct repo_note){ c[0], "ours again\n" };
	assert_int_equal(repo_notes_sync(r, NREF, &n, 1, true, err, sizeof(err)), -1);
	assert_int_equal(race.calls, 5);
	assert_non_null(strstr(err, "refused 5 times"));
	out = rt_out("git --git-dir='%s' notes --ref=taskslaps/prod show '%s'", origin, c[0]);
	assert_string_equal(out, "ours");
	free(out);
	out = rt_out("git --git-dir='%s' notes --ref=taskslaps/prod show '%s'", origin, c[5]);
	assert_string_equal(out, "race 4");
	free(out);
	r->before_push = NULL;

	repo_free(r);
	for (int i = 0; i < 6; i++)
		free(c[i]);
	free(url);
	rt_rm_rf(st);
	rt_rm_rf(origin);
	rt_rm_rf(work);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repo_notes__write_rewrite_identical),
		cmocka_unit_test(test_repo_notes__sync_at_expected_ref),
		cmocka_unit_test(test_repo_notes__errors),
		cmocka_unit_test(test_repo_notes__bare_local),
		cmocka_unit_test(test_repo_notes__ref_not_a_commit_replaced),
		cmocka_unit_test(test_repo_notes__remote_ref_not_a_commit),
		cmocka_unit_test(test_repo_notes__push_over_other_writer),
		cmocka_unit_test(test_repo_notes__fetch_keeps_local_notes),
		cmocka_unit_test(test_repo_notes__push_retries_when_remote_moves),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

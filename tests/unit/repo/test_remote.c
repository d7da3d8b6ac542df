/* A repository given as a URL: mirrored into the state directory and fetched. */
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
test_repo_remote__location_kinds(void **state)
{
	(void)state;
	assert_true(repo_location_is_url("file:///srv/git/migrations.git"));
	assert_true(repo_location_is_url("https://git.example.com/db/migrations.git"));
	assert_true(repo_location_is_url("ssh://git@git.example.com:2222/db/migrations.git"));
	assert_true(repo_location_is_url("git@git.example.com:db/migrations.git"));
	assert_true(repo_location_is_url("gitserver:migrations.git"));
	assert_false(repo_location_is_url("/srv/git/migrations.git"));
	assert_false(repo_location_is_url("migrations.git"));
	assert_false(repo_location_is_url("./a:b"));
	assert_false(repo_location_is_url("/srv/odd:name.git"));
}

static void
test_repo_remote__redact(void **state)
{
	char *s;

	(void)state;
	s = repo_url_redact("https://deploy:hunter2@git.example.com/db/m.git");
	assert_string_equal(s, "https://deploy:***@git.example.com/db/m.git");
	free(s);
	s = repo_url_redact("ssh://git@git.example.com/db/m.git");
	assert_string_equal(s, "ssh://git@git.example.com/db/m.git");
	free(s);
	s = repo_url_redact("https://git.example.com/a@b/m.git");
	assert_string_equal(s, "https://git.example.com/a@b/m.git");
	free(s);
	s = repo_url_redact("git@host:m.git");
	assert_string_equal(s, "git@host:m.git");
	free(s);
}

static void
test_repo_remote__mirror_and_fetch(void **state)
{
	char *origin = rt_init(), *st = rt_tmpdir(), *url, *c1, *c2, *mirror;
	struct repo *r;
	struct repo_snapshot *s;
	char err[512] = "";

	(void)state;
	rt_write(origin, "migrations/0001-a.yaml", "a1\n");
	c1 = rt_commit(origin, "alice", "a");
	url = xasprintf("file://%s", origin);
	r = rt_open(url, st, "main");
	assert_true(repo_is_remote(r));
	mirror = xasprintf("%s/mirror.git", st);
	assert_string_equal(repo_gitdir(r), mirror);
	assert_string_equal(repo_display(r), url);
	assert_null(repo_watch_paths(r)[0]);
	s = rt_snap(r, "migrations");
	assert_string_equal(s->tip, c1);
	assert_int_equal(s->n, 1);
	repo_snapshot_free(s);

	rt_write(origin, "migrations/0002-b.yaml", "b1\n");
	c2 = rt_commit(origin, "bob", "b");
	s = rt_snap(r, "migrations");
	assert_string_equal(s->tip, c1); /* not fetched yet */
	repo_snapshot_free(s);
	assert_int_equal(repo_fetch(r, err, sizeof(err)), 0);
	s = rt_snap(r, "migrations");
	assert_string_equal(s->tip, c2);
	assert_int_equal(s->n, 2);
	assert_string_equal(rt_file(s, "migrations/0002-b.yaml")->author_name, "bob");
	assert_string_equal(rt_file(s, "migrations/0002-b.yaml")->content, "b1\n");
	repo_snapshot_free(s);

	/* A rewritten branch is taken as it is: the remote is authoritative. */
	rt_sh("git -C '%s' reset -q --hard '%s'", origin, c1);
	assert_int_equal(repo_fetch(r, err, sizeof(err)), 0);
	s = rt_snap(r, "migrations");
	assert_string_equal(s->tip, c1);
	repo_snapshot_free(s);
	repo_free(r);

	/* Opening again reuses the mirror. */
	r = rt_open(url, st, "main");
	s = rt_snap(r, "migrations");
	assert_string_equal(s->tip, c1);
	repo_snapshot_free(s);
	repo_free(r);

	free(c1), free(c2), free(url), free(mirror);
	rt_rm_rf(st);
	rt_rm_rf(origin);
}

static void
test_repo_remote__other_branch(void **state)
{
	char *origin = rt_init(), *st = rt_tmpdir(), *url, *c1, *c2, *specs;
	struct repo *r;
	struct repo_snapshot *s = NULL;
	char err[512] = "";

	(void)state;
	rt_write(origin, "migrations/0001-a.yaml", "a1\n");
	c1 = rt_commit(origin, "alice", "a");
	rt_sh("git -C '%s' checkout -q -b release/1", origin);
	rt_write(origin, "migrations/0002-b.yaml", "b1\n");
	c2 = rt_commit(origin, "bob", "b");
	url = xasprintf("file://%s", origin);
	r = rt_open(url, st, "main");
	repo_free(r);
	/* The same state directory following another branch: the refspecs follow. */
	r = rt_open(url, st, "release/1");
	specs = rt_out("git --git-dir='%s' config --get-all remote.origin.fetch", repo_gitdir(r));
	assert_string_equal(specs, "+refs/heads/release/1:refs/heads/release/1\n"
				   "refs/notes/taskslaps/*:refs/notes/taskslaps/*");
	s = rt_snap(r, "migrations");
	assert_string_equal(s->tip, c2);
	repo_snapshot_free(s);
	/* Deleted upstream: gone from the mirror at the next fetch. */
	rt_sh("git -C '%s' checkout -q main && git -C '%s' branch -q -D release/1", origin, origin);
	assert_int_equal(repo_fetch(r, err, sizeof(err)), 0);
	s = NULL;
	assert_int_equal(repo_snapshot(r, "migrations", &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "branch 'release/1' not found"));
	repo_free(r);
	/* A branch the remote does not have. */
	r = rt_open(url, st, "nope");
	s = NULL;
	assert_int_equal(repo_snapshot(r, "migrations", &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "branch 'nope' not found in file://"));
	repo_free(r);
	free(c1), free(c2), free(url), free(specs);
	rt_rm_rf(st);
	rt_rm_rf(origin);
}

static void
test_repo_remote__fetch_errors(void **state)
{
	char *st = rt_tmpdir();
	struct repo *r = NULL;
	char err[512] = "";

	(void)state;
	assert_int_equal(
	    repo_open(&r, "file:///nonexistent/taskslaps.git", st, "main", err, sizeof(err)), -1);
	assert_null(r);
	assert_non_null(strstr(err, "cannot fetch file:///nonexistent/taskslaps.git: "));
	/* Port 1 on the loopback refuses at once; the password never shows. */
	assert_int_equal(
	    repo_open(&r, "https://deploy:hunter2@127.0.0.1:1/m.git", st, "main", err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "cannot fetch https://deploy:***@127.0.0.1:1/m.git: "));
	assert_null(strstr(err, "hunter2"));
	/* A URL needs a state directory. */
	assert_int_equal(repo_open(&r, "file:///x.git", NULL, "main", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "state_dir"));
	rt_rm_rf(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repo_remote__location_kinds),
		cmocka_unit_test(test_repo_remote__redact),
		cmocka_unit_test(test_repo_remote__mirror_and_fetch),
		cmocka_unit_test(test_repo_remote__other_branch),
		cmocka_unit_test(test_repo_remote__fetch_errors),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/*
 * A migrations directory: which files are plans, in which order, and ids
 * that must be unique across them.
 */
#include "plan_test.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan/plan_dir.h"

static void
touch(const char *dir, const char *name)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("title: t\n", f);
	fclose(f);
}

static void
remove_tree(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void
test_plan_dir__is_plan_name(void **state)
{
	(void)state;
	assert_true(plan_dir_is_plan_name("0001-a.yaml"));
	assert_true(plan_dir_is_plan_name("0001-a.yml"));
	assert_true(plan_dir_is_plan_name("0001-a.json"));
	assert_true(plan_dir_is_plan_name("x.yml"));
	assert_false(plan_dir_is_plan_name(".yaml"));
	assert_false(plan_dir_is_plan_name(".0001-a.yaml"));
	assert_false(plan_dir_is_plan_name("0001-a.yaml~"));
	assert_false(plan_dir_is_plan_name("0001-a.yaml.bak"));
	assert_false(plan_dir_is_plan_name("0001-a.YAML"));
	assert_false(plan_dir_is_plan_name("README.md"));
	assert_false(plan_dir_is_plan_name("yaml"));
	assert_false(plan_dir_is_plan_name(""));
}

static void
test_plan_dir__lists_plans_in_byte_order(void **state)
{
	char dir[] = "/tmp/ts_plan_dir_XXXXXX", sub[128];
	static const char *const files[] = { "0010-z.yaml",  "0002-b.json", "0002-a.yml",
					     "B.yaml",	     "a.yaml",	    "_x.json",
					     ".hidden.yaml", "notes.txt",   "0003.yaml.orig",
					     "README.md" };
	static const char *const want[] = { "0002-a.yml", "0002-b.json", "0010-z.yaml",
					    "B.yaml",	  "_x.json",	 "a.yaml" };
	struct plan_dir pd = { NULL, 0 };
	struct diags d = DIAGS_INIT;

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++)
		touch(dir, files[i]);
	/* a directory named like a plan is not one */
	snprintf(sub, sizeof(sub), "%s/0005-dir.yaml", dir);
	assert_int_equal(mkdir(sub, 0700), 0);

	assert_int_equal(plan_dir_list(&pd, dir, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(pd.n, sizeof(want) / sizeof(*want));
	for (size_t i = 0; i < pd.n; i++) {
		char path[256];
		snprintf(path, sizeof(path), "%s/%s", dir, want[i]);
		assert_string_equal(pd.paths[i], path);
	}
	plan_dir_free(&pd);
	assert_null(pd.paths);
	assert_int_equal(pd.n, 0);

	/* a trailing slash does not double */
	snprintf(sub, sizeof(sub), "%s/", dir);
	assert_int_equal(plan_dir_list(&pd, sub, &d), 0);
	{
		char path[256];
		snprintf(path, sizeof(path), "%s/%s", dir, want[0]);
		assert_string_equal(pd.paths[0], path);
	}
	plan_dir_free(&pd);
	remove_tree(dir);
}

static void
test_plan_dir__many_files(void **state)
{
	char dir[] = "/tmp/ts_plan_dir_XXXXXX";
	struct plan_dir pd = { NULL, 0 };
	struct diags d = DIAGS_INIT;

	(void)state;
	assert_non_null(mkdtemp(dir));
	/* more than the first allocation of names, written out of order */
	for (int i = 199; i >= 0; i--) {
		char name[32];
		snprintf(name, sizeof(name), "%04d-step.yaml", i * 7 % 200);
		touch(dir, name);
	}
	assert_int_equal(plan_dir_list(&pd, dir, &d), 0);
	assert_int_equal(pd.n, 200);
	for (size_t i = 1; i < pd.n; i++)
		assert_true(strcmp(pd.paths[i - 1], pd.paths[i]) < 0);
	plan_dir_free(&pd);
	remove_tree(dir);
}

static void
test_plan_dir__symlinks_followed(void **state)
{
	/* readdir says DT_LNK: a link to a directory is skipped, one to a file listed */
	char dir[] = "/tmp/ts_plan_dir_XXXXXX", sub[128], link[128];
	struct plan_dir pd = { NULL, 0 };
	struct diags d = DIAGS_INIT;

	(void)state;
	assert_non_null(mkdtemp(dir));
	touch(dir, "0001-a.yaml");
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(link, sizeof(link), "%s/0002-dir.yaml", dir);
	assert_int_equal(symlink("sub", link), 0);
	snprintf(link, sizeof(link), "%s/0003-file.yaml", dir);
	assert_int_equal(symlink("0001-a.yaml", link), 0);
	snprintf(link, sizeof(link), "%s/0004-dangling.yaml", dir);
	assert_int_equal(symlink("nowhere", link), 0);

	assert_int_equal(plan_dir_list(&pd, dir, &d), 0);
	assert_int_equal(pd.n, 3);
	assert_non_null(strstr(pd.paths[0], "/0001-a.yaml"));
	assert_non_null(strstr(pd.paths[1], "/0003-file.yaml"));
	/* listed: reading it says why it is not a plan */
	assert_non_null(strstr(pd.paths[2], "/0004-dangling.yaml"));
	plan_dir_free(&pd);
	remove_tree(dir);
}

/* plan_dir_open of dir/name: 0 opened (and closed again), -1 refused (d filled). */
static int
try_open(const char *dir, const char *name, struct diags *d)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = plan_dir_open(path, d);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* The one diagnostic in d is an error about dir/name containing want, and nothing of "s3cret". */
static void
refused_with(struct diags *d, const char *dir, const char *name, const char *want)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (d->n != 1 || strcmp(d->v[0].file, path) || !strstr(d->v[0].msg, want))
		pt_dump(d);
	assert_int_equal(d->nerrors, 1);
	assert_int_equal(d->n, 1);
	assert_string_equal(d->v[0].file, path);
	assert_int_equal(d->v[0].line, 0);
	assert_non_null(strstr(d->v[0].msg, want));
	assert_null(strstr(d->v[0].msg, "s3cret"));
	diags_clear(d);
}

static void
link_at(const char *dir, const char *name, const char *target)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(symlink(target, path), 0);
}

/*
 * A plan file is a regular file, or a link to one inside its directory: a
 * link out of it (absolute, through .., to nothing) and a FIFO are refused
 * by name, and nothing of what they point to is read or shown. Before, lint
 * followed the links, quoted the secret file in its error, and waited
 * forever on a FIFO: the alarm turns such a wait into a failure.
 */
static void
test_plan_dir__open_refuses_links_out_and_special_files(void **state)
{
	char dir[] = "/tmp/ts_plan_dir_XXXXXX", out[] = "/tmp/ts_plan_out_XXXXXX";
	char path[256], secret[256];
	const char *link_out = "refused: a symbolic link that does not lead to a file inside";
	struct diags d = DIAGS_INIT;
	struct plan *p = NULL;
	FILE *f;

	(void)state;
	alarm(20);
	assert_non_null(mkdtemp(dir));
	assert_non_null(mkdtemp(out));
	snprintf(secret, sizeof(secret), "%s/pgpass", out);
	f = fopen(secret, "w");
	assert_non_null(f);
	fputs("db.example:5432:*:app:s3cret\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/fifo", out);
	assert_int_equal(mkfifo(path, 0600), 0);
	touch(dir, "0001-a.yaml");
	snprintf(path, sizeof(path), "%s/sub", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	touch(path, "x.yaml");

	/* inside the directory: followed, also through a subdirectory, .. and a chain */
	assert_int_equal(try_open(dir, "0001-a.yaml", &d), 0);
	link_at(dir, "0002-same.yaml", "0001-a.yaml");
	assert_int_equal(try_open(dir, "0002-same.yaml", &d), 0);
	link_at(dir, "0003-sub.yaml", "sub/../sub/x.yaml");
	assert_int_equal(try_open(dir, "0003-sub.yaml", &d), 0);
	link_at(dir, "0004-chain.yaml", "0002-same.yaml");
	assert_int_equal(try_open(dir, "0004-chain.yaml", &d), 0);
	snprintf(path, sizeof(path), "%s/0001-a.yaml", dir);
	link_at(dir, "0005-absolute-inside.yaml", path);
	assert_int_equal(try_open(dir, "0005-absolute-inside.yaml", &d), 0);
	assert_int_equal(d.n, 0);

	/* out of it: refused, whether the target exists or not */
	link_at(dir, "0010-pgpass.yaml", secret);
	assert_int_equal(try_open(dir, "0010-pgpass.yaml", &d), -1);
	refused_with(&d, dir, "0010-pgpass.yaml", link_out);
	snprintf(path, sizeof(path), "../%s/pgpass", strrchr(out, '/') + 1);
	link_at(dir, "0011-dotdot.yaml", path);
	assert_int_equal(try_open(dir, "0011-dotdot.yaml", &d), -1);
	refused_with(&d, dir, "0011-dotdot.yaml", link_out);
	link_at(dir, "0012-chain-out.yaml", "0010-pgpass.yaml");
	assert_int_equal(try_open(dir, "0012-chain-out.yaml", &d), -1);
	refused_with(&d, dir, "0012-chain-out.yaml", link_out);
	link_at(dir, "0013-dangling.yaml", "nowhere");
	assert_int_equal(try_open(dir, "0013-dangling.yaml", &d), -1);
	refused_with(&d, dir, "0013-dangling.yaml", link_out);
	link_at(dir, "0014-kmsg.yaml", "/proc/kmsg");
	assert_int_equal(try_open(dir, "0014-kmsg.yaml", &d), -1);
	refused_with(&d, dir, "0014-kmsg.yaml", link_out);
	snprintf(path, sizeof(path), "%s/fifo", out);
	link_at(dir, "0015-fifo-out.yaml", path);
	assert_int_equal(try_open(dir, "0015-fifo-out.yaml", &d), -1);
	refused_with(&d, dir, "0015-fifo-out.yaml", link_out);

	/* not a regular file: refused without waiting for a writer */
	snprintf(path, sizeof(path), "%s/0020-fifo.yaml", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(try_open(dir, "0020-fifo.yaml", &d), -1);
	refused_with(&d, dir, "0020-fifo.yaml", "refused: a FIFO, not a regular file");
	link_at(dir, "0021-fifo-in.yaml", "0020-fifo.yaml");
	assert_int_equal(try_open(dir, "0021-fifo-in.yaml", &d), -1);
	refused_with(&d, dir, "0021-fifo-in.yaml", "refused: a FIFO, not a regular file");
	assert_int_equal(try_open(dir, "sub", &d), -1);
	refused_with(&d, dir, "sub", "refused: a directory, not a regular file");

	/* plan_load goes through it: the secret is neither read nor shown */
	snprintf(path, sizeof(path), "%s/0010-pgpass.yaml", dir);
	assert_int_equal(plan_load(&p, path, &d), -1);
	assert_null(p);
	refused_with(&d, dir, "0010-pgpass.yaml", link_out);
	snprintf(path, sizeof(path), "%s/0020-fifo.yaml", dir);
	assert_int_equal(plan_load(&p, path, &d), -1);
	refused_with(&d, dir, "0020-fifo.yaml", "a FIFO");

	alarm(0);
	remove_tree(dir);
	remove_tree(out);
}

static void
test_plan_dir__empty_and_missing(void **state)
{
	char dir[] = "/tmp/ts_plan_dir_XXXXXX", missing[128];
	struct plan_dir pd = { NULL, 0 };
	struct diags d = DIAGS_INIT;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(plan_dir_list(&pd, dir, &d), 0);
	assert_int_equal(pd.n, 0);
	plan_dir_free(&pd);

	snprintf(missing, sizeof(missing), "%s/nope", dir);
	assert_int_equal(plan_dir_list(&pd, missing, &d), -1);
	assert_int_equal(d.nerrors, 1);
	assert_string_equal(d.v[0].file, missing);
	assert_non_null(strstr(d.v[0].msg, "cannot open the directory: No such file or directory"));
	diags_clear(&d);
	remove_tree(dir);
}

static void
test_plan_dir__idset_detects_duplicates(void **state)
{
	struct plan_idset *s = plan_idset_new();
	const char *first = NULL;

	(void)state;
	assert_true(plan_idset_add(s, "0001-a", "m/0001-a.yaml", &first));
	assert_true(plan_idset_add(s, "0002-b", "m/0002-b.yaml", &first));
	assert_null(first);
	assert_false(plan_idset_add(s, "0001-a", "m/0009-copy.json", &first));
	assert_string_equal(first, "m/0001-a.yaml");
	/* ids are compared exactly */
	assert_true(plan_idset_add(s, "0001-A", "m/x.yaml", &first));
	assert_true(plan_idset_add(s, "0001-a ", "m/y.yaml", &first));
	plan_idset_free(s);
	plan_idset_free(NULL);
}

static void
test_plan_dir__idset_grows(void **state)
{
	struct plan_idset *s = plan_idset_new();
	const char *first = NULL;
	char id[32], file[64];

	(void)state;
	/* far past the initial table, so it rehashes several times */
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "%05d-plan", i);
		snprintf(file, sizeof(file), "m/%05d.yaml", i);
		assert_true(plan_idset_add(s, id, file, &first));
	}
	for (int i = 0; i < 5000; i += 37) {
		snprintf(id, sizeof(id), "%05d-plan", i);
		snprintf(file, sizeof(file), "m/%05d.yaml", i);
		first = NULL;
		assert_false(plan_idset_add(s, id, "m/dup.yaml", &first));
		assert_non_null(first);
		assert_string_equal(first, file);
	}
	assert_true(plan_idset_add(s, "05000-plan", "m/new.yaml", &first));
	plan_idset_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_dir__is_plan_name),
		cmocka_unit_test(test_plan_dir__lists_plans_in_byte_order),
		cmocka_unit_test(test_plan_dir__many_files),
		cmocka_unit_test(test_plan_dir__symlinks_followed),
		cmocka_unit_test(test_plan_dir__open_refuses_links_out_and_special_files),
		cmocka_unit_test(test_plan_dir__empty_and_missing),
		cmocka_unit_test(test_plan_dir__idset_detects_duplicates),
		cmocka_unit_test(test_plan_dir__idset_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

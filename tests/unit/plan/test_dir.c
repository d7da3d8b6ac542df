/*
 * A migrations directory: which files are plans, in which order, and ids
 * that must be unique across them.
 */
#include "plan_test.h"

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
	static const char *const files[] = {
	    "0010-z.yaml", "0002-b.json",  "0002-a.yml", "B.yaml",	   "a.yaml",
	    "_x.json",	   ".hidden.yaml", "notes.txt",	 "0003.yaml.orig", "README.md"};
	static const char *const want[] = {"0002-a.yml", "0002-b.json", "0010-z.yaml",
					   "B.yaml",	 "_x.json",	"a.yaml"};
	struct plan_dir pd = {NULL, 0};
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
	struct plan_dir pd = {NULL, 0};
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
	struct plan_dir pd = {NULL, 0};
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

static void
test_plan_dir__empty_and_missing(void **state)
{
	char dir[] = "/tmp/ts_plan_dir_XXXXXX", missing[128];
	struct plan_dir pd = {NULL, 0};
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
	    cmocka_unit_test(test_plan_dir__empty_and_missing),
	    cmocka_unit_test(test_plan_dir__idset_detects_duplicates),
	    cmocka_unit_test(test_plan_dir__idset_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

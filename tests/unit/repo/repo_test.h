/*
 * Helpers shared by the git side's unit tests: throwaway directories, real
 * repositories made by running git, and a few assertions. Header-only
 * (static inline), so every test_<topic>.c stays one executable.
 */
#ifndef TS_TESTS_REPO_TEST_H
#define TS_TESTS_REPO_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "repo/repo.h"
#include "util/alloc.h"

/* A fresh directory under $TMPDIR (or /tmp); caller frees the name and removes it. */
static inline char *
rt_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	char *d = xasprintf("%s/ts-repo-test-XXXXXX", t && *t ? t : "/tmp");

	assert_non_null(mkdtemp(d));
	return d;
}

/* Runs a shell command; it must exit 0. */
static inline void rt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void
rt_sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	int rc;

	va_start(ap, fmt);
	assert_true(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		print_message("command failed (%d): %s\n", rc, cmd);
	assert_int_equal(rc, 0);
	free(cmd);
}

/* Runs a shell command and returns its stdout without the trailing newline (caller frees). */
static inline char *rt_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *
rt_out(const char *fmt, ...)
{
	va_list ap;
	char *cmd, *buf = NULL;
	size_t len = 0;
	FILE *f, *mem;
	char chunk[4096];
	size_t got;

	va_start(ap, fmt);
	assert_true(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	f = popen(cmd, "r");
	assert_non_null(f);
	mem = open_memstream(&buf, &len);
	assert_non_null(mem);
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, got, mem);
	fclose(mem);
	if (pclose(f) != 0)
		print_message("command failed: %s\n", cmd);
	free(cmd);
	while (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	return buf;
}

static inline void
rt_rm_rf(char *dir)
{
	if (dir)
		rt_sh("rm -rf '%s'", dir);
	free(dir);
}

/* Writes content to dir/rel, making its directories. */
static inline void
rt_write(const char *dir, const char *rel, const char *content)
{
	char *path = xasprintf("%s/%s", dir, rel);
	char *slash = strrchr(path, '/');
	FILE *f;

	*slash = '\0';
	rt_sh("mkdir -p '%s'", path);
	*slash = '/';
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
	free(path);
}

/*
 * Isolates git from the caller's configuration: a throwaway HOME (so no
 * ~/.gitconfig, for git and libgit2 alike) and no system config.
 */
static inline char *
rt_env(void)
{
	char *home = rt_tmpdir();

	setenv("HOME", home, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	unsetenv("GIT_DIR");
	unsetenv("GIT_WORK_TREE");
	unsetenv("GIT_INDEX_FILE");
	unsetenv("SSH_AUTH_SOCK");
	return home;
}

/* The environment for a git command by who: fixed, increasing dates so order is stable. */
static inline char *
rt_who(const char *name)
{
	static long t = 1700000000;

	t += 60;
	return xasprintf(
	    "GIT_AUTHOR_DATE='@%ld +0000' GIT_COMMITTER_DATE='@%ld +0000' "
	    "git -c user.name='%s' -c user.email='%s@example.com' -c commit.gpgsign=false",
	    t, t, name, name);
}

/* A new non-bare repository on branch main in a fresh directory (caller frees). */
static inline char *
rt_init(void)
{
	char *d = rt_tmpdir();

	rt_sh("git init -q -b main '%s'", d);
	return d;
}

/* Commits everything in the work tree as name (name@example.com); returns the id (caller frees). */
static inline char *
rt_commit(const char *dir, const char *name, const char *msg)
{
	char *git = rt_who(name);

	rt_sh("cd '%s' && git add -A && %s commit -q --allow-empty -m '%s'", dir, git, msg);
	free(git);
	return rt_out("git -C '%s' rev-parse HEAD", dir);
}

static inline char *
rt_rev(const char *dir, const char *rev)
{
	return rt_out("git -C '%s' rev-parse '%s'", dir, rev);
}

/* Milliseconds of the monotonic clock. */
static inline double
rt_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Opens a local repository that must open; the handle is the caller's. */
static inline struct repo *
rt_open(const char *location, const char *state_dir, const char *branch)
{
	struct repo *r = NULL;
	char err[512] = "";

	if (repo_open(&r, location, state_dir, branch, err, sizeof(err)) < 0)
		print_message("repo_open %s: %s\n", location, err);
	assert_non_null(r);
	return r;
}

/* Snapshot that must succeed (free with repo_snapshot_free). */
static inline struct repo_snapshot *
rt_snap(struct repo *r, const char *dir)
{
	struct repo_snapshot *s = NULL;
	char err[512] = "";

	if (repo_snapshot(r, dir, &s, err, sizeof(err)) < 0)
		print_message("repo_snapshot: %s\n", err);
	assert_non_null(s);
	return s;
}

/* The snapshot's file with this path, which must be there. */
static inline const struct repo_plan_file *
rt_file(const struct repo_snapshot *s, const char *path)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->files[i].path, path))
			return &s->files[i];
	print_message("no %s in the snapshot\n", path);
	fail();
	return NULL;
}

#endif

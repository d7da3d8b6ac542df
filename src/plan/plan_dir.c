#include "plan/plan_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"

bool
plan_dir_is_plan_name(const char *name)
{
	size_t n = strlen(name);

	if (name[0] == '.')
		return false;
	return (n > 5 && !strcmp(name + n - 5, ".yaml")) ||
	       (n > 4 && !strcmp(name + n - 4, ".yml")) ||
	       (n > 5 && !strcmp(name + n - 5, ".json")) ||
	       (n > 4 && !strcmp(name + n - 4, ".sql"));
}

/* What a file that is not a regular one is, for a message. */
static const char *
file_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	return "a special file";
}

/* Whether the resolved path is inside the resolved directory dir. */
static bool
beneath(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

int
plan_dir_open(const char *path, struct diags *d)
{
	/*
	 * O_NOFOLLOW: a symbolic link is not opened here, whatever it points to.
	 * O_NONBLOCK: a FIFO (or a device) someone left in the directory is opened
	 * without waiting for a writer, and refused below; reading a regular file
	 * is the same with or without it.
	 */
	const int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
	const char *slash = strrchr(path, '/');
	char *dir = NULL, *rdir = NULL, *target = NULL;
	struct stat st;
	int fd = open(path, flags);

	if (fd < 0 && errno == ELOOP) {
		/*
		 * The link is followed only to a file inside the directory that holds
		 * it (resolved: `..`, absolute targets and links to links included),
		 * so a plan cannot make lint read ~/.pgpass or /proc/kmsg and show it
		 * in an error. A dangling link gets the same message: the output does
		 * not tell which files exist outside the directory.
		 */
		if (!slash)
			dir = xstrdup(".");
		else
			dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
		rdir = realpath(dir, NULL);
		target = realpath(path, NULL);
		if (!rdir || !target || !beneath(target, rdir)) {
			diags_add(d, DIAG_ERROR, path, 0, 0,
				  "refused: a symbolic link that does not lead to a file inside "
				  "its directory %s (a plan is a file of the migrations "
				  "directory)",
				  dir);
			goto out;
		}
		fd = open(target, flags);
	}
	if (fd < 0) {
		diags_add(d, DIAG_ERROR, path, 0, 0, "cannot read: %s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		diags_add(d, DIAG_ERROR, path, 0, 0, "cannot read: %s", strerror(errno));
		close(fd);
		fd = -1;
	} else if (!S_ISREG(st.st_mode)) {
		diags_add(d, DIAG_ERROR, path, 0, 0,
			  "refused: %s, not a regular file (a plan is a file of the migrations "
			  "directory)",
			  file_kind(st.st_mode));
		close(fd);
		fd = -1;
	}
out:
	free(dir);
	free(rdir);
	free(target);
	return fd;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
plan_dir_list(struct plan_dir *out, const char *dir, struct diags *d)
{
	DIR *dh = opendir(dir);
	struct dirent *de;
	char **paths = NULL;
	size_t n = 0, cap = 0, dl = strlen(dir);
	size_t sl = dl && dir[dl - 1] == '/' ? 0 : 1; /* a '/' between dir and name */

	if (!dh) {
		diags_add(d, DIAG_ERROR, dir, 0, 0, "cannot open the directory: %s",
			  strerror(errno));
		return -1;
	}
	while ((de = readdir(dh)) != NULL) {
		size_t nl;
		char *path;

		if (!plan_dir_is_plan_name(de->d_name))
			continue;
		/* a directory named x.yaml is not a plan; d_type spares a stat when it is known */
		if (de->d_type == DT_DIR)
			continue;
		nl = strlen(de->d_name);
		path = xmalloc(dl + sl + nl + 1);
		memcpy(path, dir, dl);
		path[dl] = '/';
		memcpy(path + dl + sl, de->d_name, nl + 1);
		if (de->d_type != DT_REG) { /* DT_LNK, DT_UNKNOWN: follow it */
			struct stat st;

			if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
				free(path);
				continue;
			}
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			paths = xrealloc(paths, cap * sizeof(*paths));
		}
		paths[n++] = path;
	}
	closedir(dh);
	/* every path has the same prefix, so this is the order of the names */
	if (n) /* paths is NULL then, and qsort(NULL, 0, ...) is undefined */
		qsort(paths, n, sizeof(*paths), cmp_str);
	out->paths = n ? paths : xcalloc(1, sizeof(char *));
	out->n = n;
	return 0;
}

void
plan_dir_free(struct plan_dir *pd)
{
	for (size_t i = 0; i < pd->n; i++)
		free(pd->paths[i]);
	free(pd->paths);
	pd->paths = NULL;
	pd->n = 0;
}

/* Open addressing with linear probing; grows at half full. */
struct plan_idset {
	char **ids;
	char **files;
	size_t n, cap;
};

struct plan_idset *
plan_idset_new(void)
{
	struct plan_idset *s = xcalloc(1, sizeof(*s));

	s->cap = 256;
	s->ids = xcalloc(s->cap, sizeof(char *));
	s->files = xcalloc(s->cap, sizeof(char *));
	return s;
}

void
plan_idset_free(struct plan_idset *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->cap; i++) {
		free(s->ids[i]);
		free(s->files[i]);
	}
	free(s->ids);
	free(s->files);
	free(s);
}

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static size_t
slot(char **ids, size_t cap, const char *id)
{
	size_t i = (size_t)(fnv1a(id) & (cap - 1));

	while (ids[i] && strcmp(ids[i], id) != 0)
		i = (i + 1) & (cap - 1);
	return i;
}

bool
plan_idset_add(struct plan_idset *s, const char *id, const char *file, const char **first_file)
{
	size_t i;

	if (2 * (s->n + 1) > s->cap) {
		size_t ncap = s->cap * 2;
		char **ids = xcalloc(ncap, sizeof(char *)), **files = xcalloc(ncap, sizeof(char *));

		for (size_t k = 0; k < s->cap; k++) {
			if (!s->ids[k])
				continue;
			i = slot(ids, ncap, s->ids[k]);
			ids[i] = s->ids[k];
			files[i] = s->files[k];
		}
		free(s->ids);
		free(s->files);
		s->ids = ids;
		s->files = files;
		s->cap = ncap;
	}
	i = slot(s->ids, s->cap, id);
	if (s->ids[i]) {
		*first_file = s->files[i];
		return false;
	}
	s->ids[i] = xstrdup(id);
	s->files[i] = xstrdup(file);
	s->n++;
	return true;
}

const char *
plan_idset_find(const struct plan_idset *s, const char *id)
{
	size_t i = slot(s->ids, s->cap, id);

	return s->ids[i] ? s->files[i] : NULL;
}

/*
 * The plans at the branch tip, each with the newest commit that brought its
 * content (repo_walk.c finds it). From an earlier snapshot whose tip is an
 * ancestor (repo_snapshot_since), only the commits between the two tips are
 * compared with their parents: a file with the old tip's blob that none of
 * them brought has, in the walk from the new tip, only the candidates it had
 * in the walk from the old one, so it is attributed where it was; its entry
 * is moved (or copied), and only the other files are read and walked for.
 */
#include "repo/repo_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plan/doc.h"
#include "plan/plan_dir.h"
#include "util/alloc.h"

/*
 * The files' prev: the index in prev of the file with the path and the
 * blob of ents[i] (names[i] its name, under dirpath), or REPO_NONE. Both
 * are sorted by name, under the same directory: one merge of the two
 * lists. Nothing matches when prev read another directory.
 */
static void
prev_same(const struct repo_snapshot *prev, const char *dirpath, const git_tree_entry *const *ents,
	  const char *const *names, struct repo_snapshot *s)
{
	size_t off = *dirpath ? strlen(dirpath) + 1 : 0, j = 0;

	for (size_t i = 0; i < s->n; i++)
		s->files[i].prev = REPO_NONE;
	if (!prev->dir || strcmp(prev->dir, dirpath) != 0)
		return;
	s->prev_serial = prev->serial;
	for (size_t i = 0; i < s->n && j < prev->n; i++) {
		char hex[GIT_OID_HEXSZ];
		int c = 1;

		while (j < prev->n && (c = strcmp(names[i], prev->files[j].git_path + off)) > 0)
			j++;
		if (c != 0)
			continue;
		git_oid_fmt(hex, git_tree_entry_id(ents[i]));
		if (!memcmp(hex, prev->files[j].blob, GIT_OID_HEXSZ) &&
		    !prev->files[j].blob[GIT_OID_HEXSZ])
			s->files[i].prev = j;
	}
}

/* Copies prev's entry of the same path and blob into f. */
static void
file_copy(struct repo_plan_file *f, const struct repo_plan_file *p)
{
	f->path = xstrdup(p->path);
	f->git_path = xstrdup(p->git_path);
	memcpy(f->blob, p->blob, sizeof(f->blob));
	f->len = p->len;
	f->too_large = p->too_large;
	if (p->content) {
		f->content = xmalloc(p->len + 1);
		memcpy(f->content, p->content, p->len + 1);
	}
	memcpy(f->commit, p->commit, sizeof(f->commit));
	f->author_name = xstrdup(p->author_name);
	f->author_email = xstrdup(p->author_email);
	f->commit_time = p->commit_time;
	f->by_tip = p->by_tip;
}

/*
 * Which files of s keep prev's entry (reuse[i]: the index in prev, or -1):
 * when prev's tip is tip or an ancestor of it, each path whose blob is
 * prev's and that no commit in between brought; one prev attributed to its
 * own tip only if that tip did bring it (by_tip). Returns 0 (all -1 when
 * prev cannot serve), or -1 with err.
 */
static int
snap_reuse(struct repo *r, struct walk *w, const git_oid *tip, const struct repo_snapshot *prev,
	   struct repo_snapshot *s, const git_tree_entry *const *ents, const char *const *names,
	   ptrdiff_t *reuse, char *err, size_t errlen)
{
	bool *touched;
	git_oid pid;

	for (size_t i = 0; i < s->n; i++) {
		reuse[i] = -1;
		s->files[i].prev = REPO_NONE;
	}
	if (!prev || strlen(prev->tip) != GIT_OID_HEXSZ || git_oid_fromstr(&pid, prev->tip) < 0)
		return 0;
	/* a rewritten branch, or a tip gone (gc): the full snapshot */
	if (!git_oid_equal(&pid, tip) && git_graph_descendant_of(r->git, tip, &pid) != 1)
		return 0;
	touched = xcalloc(s->n ? s->n : 1, sizeof(*touched));
	if (repo_range_touched(r, w, tip, &pid, names, s->n, touched) < 0) {
		free(touched);
		return repo_seterr(err, errlen, "cannot walk the history of %s: %s", r->display,
				   repo_giterr());
	}
	prev_same(prev, w->dirpath, ents, names, s);
	for (size_t i = 0; i < s->n; i++) {
		size_t at = s->files[i].prev;

		if (at == REPO_NONE || touched[i])
			continue;
		/* a cut history's stand-in at prev's tip: the newer tip stands in now */
		if (!strcmp(prev->files[at].commit, prev->tip) && !prev->files[at].by_tip)
			continue;
		reuse[i] = (ptrdiff_t)at;
		s->reused++;
	}
	free(touched);
	return 0;
}

static int
cmp_entry_name(const void *a, const void *b)
{
	return strcmp(git_tree_entry_name(*(const git_tree_entry *const *)a),
		      git_tree_entry_name(*(const git_tree_entry *const *)b));
}

/* migrations_dir without "./", leading or trailing slashes ("" for the root). */
static char *
repo_norm_dir(const char *dir)
{
	size_t n;

	for (;;) {
		if (dir[0] == '/')
			dir++;
		else if (dir[0] == '.' && dir[1] == '/')
			dir += 2;
		else if (dir[0] == '.' && !dir[1])
			dir++;
		else
			break;
	}
	n = strlen(dir);
	while (n && dir[n - 1] == '/')
		n--;
	return xstrndup(dir, n);
}

/* The plan entries of dir, sorted by name, borrowed from dir; *n their number. */
static const git_tree_entry **
repo_plan_entries(git_tree *dir, size_t *n)
{
	size_t cnt = git_tree_entrycount(dir), k = 0;
	const git_tree_entry **v = xcalloc(cnt ? cnt : 1, sizeof(*v));

	bool sorted = true;

	for (size_t i = 0; i < cnt; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(dir, i);
		git_filemode_t m = git_tree_entry_filemode(e);

		/* Regular files only: not symlinks, subdirectories or submodules. */
		if ((m == GIT_FILEMODE_BLOB || m == GIT_FILEMODE_BLOB_EXECUTABLE) &&
		    plan_dir_is_plan_name(git_tree_entry_name(e))) {
			if (k && sorted && cmp_entry_name(&v[k - 1], &e) > 0)
				sorted = false;
			v[k++] = e;
		}
	}
	/*
	 * git's order of a tree is byte order for files (a directory sorts as
	 * if its name ended in '/'): sorted already, but for a tree git did
	 * not write.
	 */
	if (!sorted)
		qsort(v, k, sizeof(*v), cmp_entry_name);
	*n = k;
	return v;
}

int
repo_tip(struct repo *r, char out[41], char *err, size_t errlen)
{
	char *ref = xasprintf("refs/heads/%s", r->branch);
	git_oid tip;
	int rc = git_reference_name_to_id(&tip, r->git, ref);

	free(ref);
	if (rc < 0) {
		repo_seterr(err, errlen, "cannot read branch '%s' of %s", r->branch, r->display);
		return -1;
	}
	git_oid_tostr(out, 41, &tip);
	return 0;
}

int
repo_snapshot(struct repo *r, const char *migrations_dir, struct repo_snapshot **out, char *err,
	      size_t errlen)
{
	return repo_snapshot_since(r, migrations_dir, NULL, out, err, errlen);
}

/* file_copy that takes p's strings instead (p stays freeable, its strings NULL). */
static void
file_move(struct repo_plan_file *f, struct repo_plan_file *p)
{
	f->path = p->path;
	p->path = NULL;
	f->git_path = p->git_path;
	p->git_path = NULL;
	memcpy(f->blob, p->blob, sizeof(f->blob));
	f->len = p->len;
	f->too_large = p->too_large;
	f->content = p->content;
	p->content = NULL;
	memcpy(f->commit, p->commit, sizeof(f->commit));
	f->author_name = p->author_name;
	p->author_name = NULL;
	f->author_email = p->author_email;
	p->author_email = NULL;
	f->commit_time = p->commit_time;
	f->by_tip = p->by_tip;
}

static int snapshot_since(struct repo *r, const char *migrations_dir,
			  const struct repo_snapshot *prev, struct repo_snapshot *take,
			  struct repo_snapshot **out, char *err, size_t errlen);

int
repo_snapshot_since(struct repo *r, const char *migrations_dir, const struct repo_snapshot *prev,
		    struct repo_snapshot **out, char *err, size_t errlen)
{
	return snapshot_since(r, migrations_dir, prev, NULL, out, err, errlen);
}

int
repo_snapshot_since_move(struct repo *r, const char *migrations_dir, struct repo_snapshot *prev,
			 struct repo_snapshot **out, char *err, size_t errlen)
{
	return snapshot_since(r, migrations_dir, prev, prev, out, err, errlen);
}

/* The source of snapshots' serials. */
static unsigned long long snap_serial;

/* repo_snapshot_since; with take (prev itself), reused entries move out of it. */
static int
snapshot_since(struct repo *r, const char *migrations_dir, const struct repo_snapshot *prev,
	       struct repo_snapshot *take, struct repo_snapshot **out, char *err, size_t errlen)
{
	char *ref = xasprintf("refs/heads/%s", r->branch);
	char *dirpath = repo_norm_dir(migrations_dir ? migrations_dir : "");
	struct repo_snapshot *s = xcalloc(1, sizeof(*s));
	const git_tree_entry **ents = NULL;
	const char **names = NULL;
	struct repo_plan_file **todo = NULL;
	const char **todo_names = NULL;
	ptrdiff_t *reuse = NULL;
	size_t ntodo = 0;
	struct walk w = { .git = r->git };
	git_commit *commit = NULL;
	git_tree *root = NULL, *dir = NULL;
	git_tree_entry *de = NULL;
	git_odb *odb = NULL;
	git_oid tip;
	int rc;

	rc = git_reference_name_to_id(&tip, r->git, ref);
	if (rc == GIT_ENOTFOUND && access(r->gitdir, F_OK) < 0) {
		/* moved or deleted under us: say that, not that the branch is missing */
		repo_seterr(err, errlen, "repository %s is gone: %s: %s", r->display, r->gitdir,
			    strerror(errno));
		goto fail;
	}
	if (rc == GIT_ENOTFOUND) {
		repo_seterr(err, errlen, "branch '%s' not found in %s", r->branch, r->display);
		goto fail;
	}
	if (rc < 0 || git_commit_lookup(&commit, r->git, &tip) < 0 ||
	    git_commit_tree(&root, commit) < 0)
		goto giterr;
	git_oid_tostr(s->tip, sizeof(s->tip), &tip);
	w.dirpath = dirpath;
	s->dir = xstrdup(dirpath);
	s->serial = __atomic_add_fetch(&snap_serial, 1, __ATOMIC_RELAXED);
	if (!*dirpath) {
		dir = root;
		root = NULL;
	} else {
		rc = git_tree_entry_bypath(&de, root, dirpath);
		if (rc == GIT_ENOTFOUND) {
			repo_seterr(err, errlen,
				    "migrations directory '%s' not found at %s (branch '%s')",
				    dirpath, s->tip, r->branch);
			goto fail;
		}
		if (rc < 0)
			goto giterr;
		if (git_tree_entry_type(de) != GIT_OBJECT_TREE) {
			repo_seterr(
			    err, errlen,
			    "migrations directory '%s' is not a directory at %s (branch '%s')",
			    dirpath, s->tip, r->branch);
			goto fail;
		}
		if (git_tree_lookup(&dir, r->git, git_tree_entry_id(de)) < 0)
			goto giterr;
	}
	if (git_repository_odb(&odb, r->git) < 0)
		goto giterr;
	/*
	 * The walks below ask for this tree and, most often, for the previous
	 * tip's (its parent's): both are at hand, not read again.
	 */
	repo_walk_hold(&w, dir);
	if (prev && prev->dir_tree)
		repo_walk_hold(&w, prev->dir_tree);
	ents = repo_plan_entries(dir, &s->n);
	s->files = xcalloc(s->n ? s->n : 1, sizeof(*s->files));
	names = xcalloc(s->n ? s->n : 1, sizeof(*names));
	todo = xcalloc(s->n ? s->n : 1, sizeof(*todo));
	todo_names = xcalloc(s->n ? s->n : 1, sizeof(*todo_names));
	reuse = xcalloc(s->n ? s->n : 1, sizeof(*reuse));
	for (size_t i = 0; i < s->n; i++)
		names[i] = git_tree_entry_name(ents[i]);
	if (snap_reuse(r, &w, &tip, prev, s, ents, names, reuse, err, errlen) < 0)
		goto fail;
	for (size_t i = 0; i < s->n; i++) {
		struct repo_plan_file *f = &s->files[i];
		git_object_t type;
		git_blob *blob;
		size_t len;

		if (reuse[i] >= 0) {
			/* the same path and blob: prev's strings serve */
			if (take)
				file_move(f, &take->files[reuse[i]]);
			else
				file_copy(f, &prev->files[reuse[i]]);
			continue;
		}
		f->git_path = *dirpath ? xasprintf("%s/%s", dirpath, names[i]) : xstrdup(names[i]);
		/* a file name may be any bytes but '/' and NUL */
		f->path = repo_text_clean(f->git_path, strlen(f->git_path));
		git_oid_tostr(f->blob, sizeof(f->blob), git_tree_entry_id(ents[i]));
		todo[ntodo] = f;
		todo_names[ntodo++] = names[i];
		/*
		 * The size from the object's header first: looking the blob up
		 * inflates all of it, and a plan of 512 MiB of spaces is 4 MB in
		 * the repository. git_odb_read_header reads a loose object's first
		 * bytes, or a packed one's entry header (a delta's result size is
		 * at the start of the delta), and inflates nothing else.
		 */
		if (git_odb_read_header(&len, &type, odb, git_tree_entry_id(ents[i])) < 0)
			goto giterr;
		if (len > REPO_PLAN_MAX_BYTES) {
			f->len = len;
			f->too_large = true;
			continue;
		}
		if (git_blob_lookup(&blob, r->git, git_tree_entry_id(ents[i])) < 0)
			goto giterr;
		len = (size_t)git_blob_rawsize(blob);
		f->content = xmalloc(len + 1);
		memcpy(f->content, git_blob_rawcontent(blob), len);
		f->content[len] = '\0';
		f->len = len;
		git_blob_free(blob);
	}
	if (repo_attribute(r, &w, &tip, todo, todo_names, ntodo, err, errlen) < 0)
		goto fail;
	/* kept for the next snapshot, whose tip's parent this tip most often is */
	s->dir_tree = dir;
	dir = NULL;
	*out = s;
	s = NULL;
	rc = 0;
	goto out;
giterr:
	repo_seterr(err, errlen, "cannot read branch '%s' of %s: %s", r->branch, r->display,
		    repo_giterr());
fail:
	rc = -1;
out:
	repo_snapshot_free(s);
	repo_walk_free(&w);
	free(reuse);
	free(todo_names);
	free(todo);
	free(names);
	free(ents);
	git_odb_free(odb);
	git_tree_entry_free(de);
	git_tree_free(dir);
	git_tree_free(root);
	git_commit_free(commit);
	free(dirpath);
	free(ref);
	return rc;
}

void
repo_snapshot_free(struct repo_snapshot *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->files[i].path);
		free(s->files[i].git_path);
		free(s->files[i].content);
		free(s->files[i].author_name);
		free(s->files[i].author_email);
	}
	free(s->files);
	free(s->dir);
	git_tree_free(s->dir_tree);
	free(s);
}

/* Whether commit's tree has blob at path: 1 yes, 0 no, -1 error. */
static int
commit_has(git_commit *c, const char *path, const git_oid *blob)
{
	git_tree *tree = NULL;
	git_tree_entry *e = NULL;
	int rc;

	if (git_commit_tree(&tree, c) < 0)
		return -1;
	rc = git_tree_entry_bypath(&e, tree, path);
	if (rc == 0)
		rc = git_oid_equal(git_tree_entry_id(e), blob);
	else if (rc == GIT_ENOTFOUND)
		rc = 0;
	else
		rc = -1;
	git_tree_entry_free(e);
	git_tree_free(tree);
	return rc;
}

int
repo_landed_commit(struct repo *r, const char *tip, const struct repo_plan_file *f, char *out,
		   size_t outlen, char *err, size_t errlen)
{
	git_commit *c = NULL, *parent = NULL;
	git_oid id, blob;
	int rc;

	if (!tip || strlen(tip) != GIT_OID_HEXSZ || git_oid_fromstr(&id, tip) < 0 ||
	    git_oid_fromstr(&blob, f->blob) < 0)
		return repo_seterr(err, errlen, "invalid commit id '%s'", tip ? tip : "(null)");
	if (git_commit_lookup(&c, r->git, &id) < 0)
		goto giterr;
	if ((rc = commit_has(c, f->git_path, &blob)) <= 0) {
		if (rc < 0)
			goto giterr;
		git_commit_free(c);
		return repo_seterr(err, errlen, "%s is not at %.12s as it was read", f->path, tip);
	}
	for (;;) {
		if (git_commit_parentcount(c) == 0)
			break;
		/* a cut history (shallow, graft) ends here as a root does */
		if (git_commit_parent(&parent, c, 0) < 0)
			break;
		if ((rc = commit_has(parent, f->git_path, &blob)) < 0)
			goto giterr;
		if (rc == 0)
			break;
		git_commit_free(c);
		c = parent;
		parent = NULL;
	}
	git_oid_tostr(out, outlen, git_commit_id(c));
	git_commit_free(parent);
	git_commit_free(c);
	return 0;
giterr:
	git_commit_free(parent);
	git_commit_free(c);
	return repo_seterr(err, errlen, "cannot walk the history of %s: %s", r->display,
			   repo_giterr());
}

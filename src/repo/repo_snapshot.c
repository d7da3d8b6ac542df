/*
 * The plans at the branch tip, and for each the newest commit that brought
 * its content: one history walk from the tip (topological, then by time) for
 * all files at once, stopping as soon as every file is attributed.
 *
 * A commit C brought file f (whose blob at the tip is X) when f is X in C and
 * f is not X in any parent of C (or C has no parent). For a linear history
 * that is "the newest commit that changed f"; at a merge it follows the side
 * the content came from, as git log's history simplification does: a merge
 * that took f unchanged from one parent did not change it, and a commit on
 * another line that changed f to something else is not the one that made X.
 *
 * From an earlier snapshot whose tip is an ancestor (repo_snapshot_since),
 * only the commits between the two tips are compared with their parents: a
 * file with the old tip's blob that none of them brought has, in the walk
 * from the new tip, only the candidates it had in the walk from the old one,
 * so it is attributed where it was; its entry is copied, and only the other
 * files are read and walked for.
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

/* commit id -> id of its migrations_dir tree (or absent), so each is looked up once. */
struct dirmap_slot {
	git_oid commit;
	git_oid dir;
	unsigned char used, present;
};

struct dirmap {
	struct dirmap_slot *slots;
	size_t cap, n; /* cap a power of two */
};

#define REPO_TREE_CACHE 8

struct walk {
	git_repository *git;
	const char *dirpath; /* "" for the root tree */
	struct dirmap map;
	git_tree *trees[REPO_TREE_CACHE]; /* a small FIFO of loaded directory trees */
	unsigned next_tree;
};

static size_t
dirmap_hash(const git_oid *id)
{
	size_t h;

	memcpy(&h, id->id, sizeof(h));
	return h;
}

static struct dirmap_slot *
dirmap_find(struct dirmap *m, const git_oid *commit)
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = dirmap_hash(commit) & (m->cap - 1); m->slots[i].used; i = (i + 1) & (m->cap - 1))
		if (git_oid_equal(&m->slots[i].commit, commit))
			return &m->slots[i];
	return NULL;
}

static void
dirmap_put(struct dirmap *m, const git_oid *commit, const git_oid *dir, bool present)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap) {
		struct dirmap old = *m;

		m->cap = old.cap ? old.cap * 2 : 1024;
		m->slots = xcalloc(m->cap, sizeof(*m->slots));
		m->n = 0;
		for (size_t j = 0; j < old.cap; j++)
			if (old.slots[j].used)
				dirmap_put(m, &old.slots[j].commit, &old.slots[j].dir,
					   old.slots[j].present);
		free(old.slots);
	}
	for (i = dirmap_hash(commit) & (m->cap - 1); m->slots[i].used; i = (i + 1) & (m->cap - 1))
		;
	m->slots[i].used = 1;
	m->slots[i].present = present;
	git_oid_cpy(&m->slots[i].commit, commit);
	if (present)
		git_oid_cpy(&m->slots[i].dir, dir);
	m->n++;
}

/* The id of the migrations directory tree in a root tree; 1 found, 0 absent, -1 error. */
static int
walk_dir_in_tree(struct walk *w, const git_oid *root_id, git_oid *out)
{
	git_tree *root = NULL;
	git_tree_entry *e = NULL;
	int rc;

	if (!*w->dirpath) {
		git_oid_cpy(out, root_id);
		return 1;
	}
	if (git_tree_lookup(&root, w->git, root_id) < 0)
		return -1;
	rc = git_tree_entry_bypath(&e, root, w->dirpath);
	if (rc == GIT_ENOTFOUND) {
		rc = 0;
	} else if (rc == 0) {
		rc = git_tree_entry_type(e) == GIT_OBJECT_TREE;
		if (rc)
			git_oid_cpy(out, git_tree_entry_id(e));
	}
	git_tree_entry_free(e);
	git_tree_free(root);
	return rc;
}

/* The migrations directory of a commit (commit may be NULL: looked up); 1, 0 absent, -1. */
static int
walk_dir_of(struct walk *w, const git_oid *id, git_commit *commit, git_oid *out)
{
	struct dirmap_slot *s = dirmap_find(&w->map, id);
	git_commit *own = NULL;
	int rc;

	if (s) {
		if (s->present)
			git_oid_cpy(out, &s->dir);
		return s->present;
	}
	if (!commit) {
		if (git_commit_lookup(&own, w->git, id) < 0)
			return -1;
		commit = own;
	}
	rc = walk_dir_in_tree(w, git_commit_tree_id(commit), out);
	git_commit_free(own);
	if (rc >= 0)
		dirmap_put(&w->map, id, out, rc == 1);
	return rc;
}

/* A loaded directory tree, borrowed until the next call. */
static git_tree *
walk_tree(struct walk *w, const git_oid *id)
{
	git_tree *t;

	for (unsigned i = 0; i < REPO_TREE_CACHE; i++)
		if (w->trees[i] && git_oid_equal(git_tree_id(w->trees[i]), id))
			return w->trees[i];
	if (git_tree_lookup(&t, w->git, id) < 0)
		return NULL;
	git_tree_free(w->trees[w->next_tree]);
	w->trees[w->next_tree] = t;
	w->next_tree = (w->next_tree + 1) % REPO_TREE_CACHE;
	return t;
}

/*
 * A tree the walk holds already (its own reference): a lookup of its id
 * finds it without reading the object again, whatever libgit2's cache
 * dropped meanwhile.
 */
static void
walk_hold(struct walk *w, git_tree *t)
{
	git_object *dup;

	if (!t || git_object_dup(&dup, (git_object *)t) < 0)
		return;
	git_tree_free(w->trees[w->next_tree]);
	w->trees[w->next_tree] = (git_tree *)dup;
	w->next_tree = (w->next_tree + 1) % REPO_TREE_CACHE;
}

/* walk_tree, with a reference of the caller's own (git_tree_free it), or -1. */
static int
walk_tree_ref(struct walk *w, git_tree **out, const git_oid *id)
{
	git_tree *t = walk_tree(w, id);

	return t ? git_object_dup((git_object **)out, (git_object *)t) : -1;
}

static void
walk_free(struct walk *w)
{
	free(w->map.slots);
	for (unsigned i = 0; i < REPO_TREE_CACHE; i++)
		git_tree_free(w->trees[i]);
}

static void
file_set_commit(struct repo_plan_file *f, const git_commit *c)
{
	const git_signature *a = git_commit_author(c);

	git_oid_tostr(f->commit, sizeof(f->commit), git_commit_id(c));
	f->author_name = a && a->name ? repo_text_clean(a->name, strlen(a->name)) : xstrdup("");
	f->author_email = a && a->email ? repo_text_clean(a->email, strlen(a->email)) : xstrdup("");
	f->commit_time = a ? (int64_t)a->when.time : (int64_t)git_commit_time(c);
}

/* Whether tree's entry name (a file name, without the directory) is blob. */
static bool
tree_has(git_tree *tree, const char *name, const git_oid *blob)
{
	const git_tree_entry *e = git_tree_entry_byname(tree, name);

	return e && git_oid_equal(git_tree_entry_id(e), blob);
}

/* Examines one commit; marks the files it brought. Returns the number resolved, or -1. */
static int
walk_commit(struct walk *w, git_commit *c, struct repo_plan_file **files, const char *const *names,
	    const git_oid *blobs, bool *done, bool *cand, size_t n)
{
	unsigned np = git_commit_parentcount(c);
	git_oid dir, *pdirs;
	bool *ppresent;
	git_tree *t;
	size_t ncand = 0;
	int rc, resolved = -1;

	rc = walk_dir_of(w, git_commit_id(c), c, &dir);
	if (rc <= 0)
		return rc;
	pdirs = xcalloc(np ? np : 1, sizeof(*pdirs));
	ppresent = xcalloc(np ? np : 1, sizeof(*ppresent));
	for (unsigned p = 0; p < np; p++) {
		rc = walk_dir_of(w, git_commit_parent_id(c, p), NULL, &pdirs[p]);
		if (rc < 0)
			goto out;
		ppresent[p] = rc == 1;
		/* The directory as a parent had it: no file can differ from every parent. */
		if (ppresent[p] && git_oid_equal(&pdirs[p], &dir)) {
			resolved = 0;
			goto out;
		}
	}
	if (!(t = walk_tree(w, &dir)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		cand[i] = !done[i] && tree_has(t, names[i], &blobs[i]);
		ncand += cand[i];
	}
	for (unsigned p = 0; ncand && p < np; p++) {
		if (!ppresent[p])
			continue;
		if (!(t = walk_tree(w, &pdirs[p])))
			goto out;
		for (size_t i = 0; i < n; i++)
			if (cand[i] && tree_has(t, names[i], &blobs[i])) {
				cand[i] = false;
				ncand--;
			}
	}
	for (size_t i = 0; i < n; i++)
		if (cand[i]) {
			file_set_commit(files[i], c);
			done[i] = true;
		}
	resolved = (int)ncand;
out:
	free(pdirs);
	free(ppresent);
	return resolved;
}

/*
 * Attributes each of the n files (names[i]: the name of files[i] in the
 * directory) to the commit that brought its content.
 */
static int
repo_attribute(struct repo *r, struct walk *w, const git_oid *tip, struct repo_plan_file **files,
	       const char *const *names, size_t n, char *err, size_t errlen)
{
	git_revwalk *rw = NULL;
	git_oid *blobs = xcalloc(n ? n : 1, sizeof(*blobs));
	bool *done = xcalloc(n ? n : 1, sizeof(bool));
	bool *cand = xcalloc(n ? n : 1, sizeof(bool));
	size_t left = n;
	git_oid id;
	int rc = -1, wrc = 0;

	for (size_t i = 0; i < n; i++)
		(void)git_oid_fromstr(&blobs[i], files[i]->blob);
	if (left && (git_revwalk_new(&rw, r->git) < 0 ||
		     git_revwalk_sorting(rw, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME) < 0 ||
		     git_revwalk_push(rw, tip) < 0))
		goto giterr;
	while (left && (wrc = git_revwalk_next(&id, rw)) == 0) {
		git_commit *c;
		int got;

		if (git_commit_lookup(&c, r->git, &id) < 0)
			goto giterr;
		got = walk_commit(w, c, files, names, blobs, done, cand, n);
		git_commit_free(c);
		if (got < 0)
			goto giterr;
		left -= (size_t)got;
	}
	if (left && wrc != GIT_ITEROVER)
		goto giterr;
	{
		char hex[GIT_OID_HEXSZ + 1];

		/* brought by the tip: the walk found it there (not a cut history's stand-in) */
		git_oid_tostr(hex, sizeof(hex), tip);
		for (size_t i = 0; i < n; i++)
			files[i]->by_tip = done[i] && !strcmp(files[i]->commit, hex);
	}
	if (left) {
		/* Only a cut history (graft, shallow) ends before a file began. */
		git_commit *c;

		if (git_commit_lookup(&c, r->git, tip) < 0)
			goto giterr;
		for (size_t i = 0; i < n; i++)
			if (!done[i])
				file_set_commit(files[i], c);
		git_commit_free(c);
	}
	rc = 0;
	goto out;
giterr:
	rc = repo_seterr(err, errlen, "cannot walk the history of %s: %s", r->display,
			 repo_giterr());
out:
	git_revwalk_free(rw);
	free(blobs);
	free(done);
	free(cand);
	return rc;
}

/* The index of name in the n sorted names, or -1. */
static ptrdiff_t
name_index(const char *const *names, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, names[mid]);

		if (!c)
			return (ptrdiff_t)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

/*
 * Marks touched[i] for each of the names that commit tree t brought: t has
 * it with an id that none of the np parent trees (NULL: the directory is
 * absent there) has at that name. tree_has's test, as walk_commit makes it,
 * made as one merge of t's entries with each parent's (both in git's order
 * of a tree): only the entries that no parent has are looked up in names,
 * so a commit that changed k of N files costs N comparisons and k searches.
 */
static void
mark_brought(git_tree *t, git_tree *const *pts, unsigned np, const char *const *names, size_t n,
	     bool *touched)
{
	size_t cnt = git_tree_entrycount(t);
	bool *kept = xcalloc(cnt ? cnt : 1, sizeof(*kept));

	for (unsigned p = 0; p < np; p++) {
		size_t pcnt = pts[p] ? git_tree_entrycount(pts[p]) : 0, j = 0;

		for (size_t i = 0; i < cnt && j < pcnt; i++) {
			const git_tree_entry *e = git_tree_entry_byindex(t, i), *pe = NULL;
			int c = 1;

			while (j < pcnt && (c = git_tree_entry_cmp(
						pe = git_tree_entry_byindex(pts[p], j), e)) < 0)
				j++;
			if (c == 0 && git_oid_equal(git_tree_entry_id(pe), git_tree_entry_id(e)))
				kept[i] = true;
		}
	}
	for (size_t i = 0; i < cnt; i++) {
		ptrdiff_t at;

		if (kept[i])
			continue;
		at = name_index(names, n, git_tree_entry_name(git_tree_entry_byindex(t, i)));
		if (at >= 0)
			touched[at] = true;
	}
	free(kept);
}

/*
 * Marks the names commit c brought, as walk_commit decides it: a name its
 * directory has with an id no parent's directory has there. *pts is scratch
 * room for the parents' trees (*cap of them), grown as needed. Returns 0, or
 * -1 (libgit2's error).
 */
static int
commit_brought(struct walk *w, git_commit *c, git_tree ***pts, unsigned *cap,
	       const char *const *names, size_t n, bool *touched)
{
	unsigned np = git_commit_parentcount(c), p, loaded = 0;
	git_tree *t = NULL;
	git_oid dir, pdir;
	int rc = -1, drc;

	if (np > *cap) {
		*cap = np;
		*pts = xrealloc(*pts, np * sizeof(**pts));
	}
	if ((drc = walk_dir_of(w, git_commit_id(c), c, &dir)) <= 0)
		return drc; /* no directory: nothing brought */
	for (p = 0; p < np; p++) {
		int prc = walk_dir_of(w, git_commit_parent_id(c, p), NULL, &pdir);

		if (prc < 0)
			goto out;
		/* the directory as a parent had it: nothing brought */
		if (prc == 1 && git_oid_equal(&pdir, &dir)) {
			rc = 0;
			goto out;
		}
		(*pts)[p] = NULL;
		loaded = p + 1;
		if (prc == 1 && walk_tree_ref(w, &(*pts)[p], &pdir) < 0)
			goto out;
	}
	if (walk_tree_ref(w, &t, &dir) < 0)
		goto out;
	mark_brought(t, *pts, np, names, n, touched);
	rc = 0;
out:
	for (p = 0; p < loaded; p++)
		git_tree_free((*pts)[p]);
	git_tree_free(t);
	return rc;
}

/*
 * Which of the n names some commit between prev (excluded) and tip
 * (included) brought: each commit reachable from tip and not from prev, as
 * commit_brought. A name no commit of the range brought and whose blob at
 * tip is its blob at prev has the same candidates in the walk from tip as in
 * the walk from prev, all of them behind prev. Returns 0, or -1 (libgit2's
 * error).
 */
static int
range_touched(struct repo *r, struct walk *w, const git_oid *tip, const git_oid *prev,
	      const char *const *names, size_t n, bool *touched)
{
	git_revwalk *rw = NULL;
	git_tree **pts = NULL;
	unsigned cap = 0;
	git_oid id;
	int rc = -1, wrc;

	if (git_revwalk_new(&rw, r->git) < 0 || git_revwalk_push(rw, tip) < 0 ||
	    git_revwalk_hide(rw, prev) < 0)
		goto out;
	while ((wrc = git_revwalk_next(&id, rw)) == 0) {
		git_commit *c;
		int got;

		if (git_commit_lookup(&c, r->git, &id) < 0)
			goto out;
		got = commit_brought(w, c, &pts, &cap, names, n, touched);
		git_commit_free(c);
		if (got < 0)
			goto out;
	}
	if (wrc == GIT_ITEROVER)
		rc = 0;
out:
	free(pts);
	git_revwalk_free(rw);
	return rc;
}

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
	if (range_touched(r, w, tip, &pid, names, s->n, touched) < 0) {
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
	walk_hold(&w, dir);
	if (prev && prev->dir_tree)
		walk_hold(&w, prev->dir_tree);
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
	walk_free(&w);
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

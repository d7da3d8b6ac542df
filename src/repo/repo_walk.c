/*
 * The history walk of a snapshot (repo_snapshot.c): for each plan file the
 * newest commit that brought its content, in one walk from the tip
 * (topological, then by time) for all files at once, stopping as soon as
 * every file is attributed.
 *
 * A commit C brought file f (whose blob at the tip is X) when f is X in C and
 * f is not X in any parent of C (or C has no parent). For a linear history
 * that is "the newest commit that changed f"; at a merge it follows the side
 * the content came from, as git log's history simplification does: a merge
 * that took f unchanged from one parent did not change it, and a commit on
 * another line that changed f to something else is not the one that made X.
 */
#include "repo/repo_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

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
void
repo_walk_hold(struct walk *w, git_tree *t)
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

void
repo_walk_free(struct walk *w)
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
int
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
int
repo_range_touched(struct repo *r, struct walk *w, const git_oid *tip, const git_oid *prev,
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

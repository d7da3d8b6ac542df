/*
 * Git notes: the outcome of each plan, written on the commit that brought it.
 *
 * A sync applies every changed note on top of the current notes commit and
 * records them as one notes commit (the per-note commits libgit2 makes on the
 * way are left unreferenced). For a URL with push, the base is the remote's
 * notes commit, fetched into a temporary ref, so notes other writers added
 * survive; the push is never forced, and a push refused because the remote
 * moved meanwhile starts over from a fresh fetch, a bounded number of times.
 */
#include "repo/repo_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

#define REPO_NOTES_ATTEMPTS 5
#define REPO_NOTES_NAME "taskslaps"
#define REPO_NOTES_EMAIL "taskslaps@localhost"

static int
notes_check_ref(const char *notes_ref, char *err, size_t errlen)
{
	int valid = 0;

	if (!notes_ref || strncmp(notes_ref, "refs/notes/", 11) ||
	    git_reference_name_is_valid(&valid, notes_ref) < 0 || !valid)
		return repo_seterr(err, errlen, "invalid notes ref '%s' (want refs/notes/...)",
				   notes_ref ? notes_ref : "(null)");
	return 0;
}

/*
 * Writes notes on top of the notes commit base (NULL: none yet) as one new
 * notes commit in *out. Returns 1 when something changed, 0 when every note
 * already says its text (*out untouched), -1 with err.
 */
static int
notes_apply(git_repository *git, const git_oid *base, const struct repo_note *notes, size_t n,
	    git_oid *out, char *err, size_t errlen)
{
	git_signature *sig = NULL;
	git_commit *basec = NULL, *cur = NULL;
	git_tree *tree = NULL;
	size_t changed = 0;
	char *msg = NULL;
	int rc = -1;

	if (git_signature_now(&sig, REPO_NOTES_NAME, REPO_NOTES_EMAIL) < 0)
		goto giterr;
	if (base &&
	    (git_commit_lookup(&basec, git, base) < 0 || git_commit_lookup(&cur, git, base) < 0))
		goto giterr;
	for (size_t i = 0; i < n; i++) {
		const char *text = notes[i].text;
		git_note *note = NULL;
		git_oid target, next, blob;
		bool same;
		int r = GIT_ENOTFOUND;

		if (!notes[i].commit || strlen(notes[i].commit) != GIT_OID_HEXSZ ||
		    git_oid_fromstr(&target, notes[i].commit) < 0) {
			repo_seterr(err, errlen, "invalid commit id '%s' for a note",
				    notes[i].commit ? notes[i].commit : "(null)");
			goto out;
		}
		if (cur && (r = git_note_commit_read(&note, git, cur, &target)) < 0 &&
		    r != GIT_ENOTFOUND)
			goto giterr;
		same = text ? (r == 0 && !strcmp(git_note_message(note), text)) : r != 0;
		git_note_free(note);
		if (same)
			continue;
		if (text)
			r = git_note_commit_create(&next, &blob, git, cur, sig, sig, &target, text,
						   1);
		else
			r = git_note_commit_remove(&next, git, cur, sig, sig, &target);
		if (r < 0)
			goto giterr;
		git_commit_free(cur);
		cur = NULL;
		if (git_commit_lookup(&cur, git, &next) < 0)
			goto giterr;
		changed++;
	}
	if (!changed) {
		rc = 0;
		goto out;
	}
	msg = changed == 1 ? xstrdup("Notes updated by taskslaps\n")
			   : xasprintf("Notes updated by taskslaps (%zu notes)\n", changed);
	if (git_commit_tree(&tree, cur) < 0 ||
	    git_commit_create(out, git, NULL, sig, sig, NULL, msg, tree, basec ? 1 : 0,
			      (const git_commit **)&basec) < 0)
		goto giterr;
	rc = 1;
	goto out;
giterr:
	repo_seterr(err, errlen, "cannot write notes: %s", repo_giterr());
out:
	free(msg);
	git_tree_free(tree);
	git_commit_free(cur);
	git_commit_free(basec);
	git_signature_free(sig);
	return rc;
}

/*
 * The target of ref into *out: 1 a commit, 0 absent, 2 something else (a
 * blob, a tree, a tag: its type in *type), -1 error. The type comes from the
 * object's header: a ref pushed at a huge blob is not read.
 */
static int
notes_ref_id(git_repository *git, const char *ref, git_oid *out, git_object_t *type)
{
	git_odb *odb = NULL;
	size_t len;
	int rc = git_reference_name_to_id(out, git, ref);

	if (rc == GIT_ENOTFOUND)
		return 0;
	if (rc < 0 || git_repository_odb(&odb, git) < 0)
		return -1;
	rc = git_odb_read_header(&len, type, odb, out);
	git_odb_free(odb);
	if (rc < 0)
		return -1;
	return *type == GIT_OBJECT_COMMIT ? 1 : 2;
}

int
repo_notes_id(struct repo *r, const char *notes_ref, char out[41])
{
	git_oid id;
	int rc = git_reference_name_to_id(&id, r->git, notes_ref);

	out[0] = '\0';
	if (rc == GIT_ENOTFOUND)
		return 0;
	if (rc < 0)
		return -1;
	git_oid_tostr(out, 41, &id);
	return 0;
}

/* What replaced says of a notes ref that was not a notes commit. */
static void
notes_say_replaced(char *what, size_t whatlen, const char *ref, const git_oid *id,
		   git_object_t type)
{
	char hex[GIT_OID_HEXSZ + 1];

	git_oid_tostr(hex, sizeof(hex), id);
	repo_seterr(what, whatlen,
		    "%s pointed at a %s (%.12s), not a notes commit: replaced by notes written "
		    "anew from the database",
		    ref, git_object_type2string(type), hex);
}

/*
 * Writes notes into the repository itself; retries when a local writer races
 * us. A ref that is not a commit is replaced (1, what says so). With expect
 * (hex, "" for no ref), a ref found anywhere else is left alone and
 * REPO_NOTES_MOVED returned: the caller chose its notes for that state. With
 * written, the id the ref is left at ("" for none) when this returns 0 or 1.
 */
static int
notes_sync_local(struct repo *r, const char *notes_ref, const struct repo_note *notes, size_t n,
		 const char *expect, char *written, char *what, size_t whatlen, char *err,
		 size_t errlen)
{
	bool replaced = false;

	for (int attempt = 0; attempt < REPO_NOTES_ATTEMPTS; attempt++) {
		git_reference *ref = NULL;
		git_object_t type = GIT_OBJECT_INVALID;
		git_oid old, new;
		char hex[GIT_OID_HEXSZ + 1] = "";
		int have, rc;

		if ((have = notes_ref_id(r->git, notes_ref, &old, &type)) < 0)
			return repo_seterr(err, errlen, "cannot read %s: %s", notes_ref,
					   repo_giterr());
		if (have)
			git_oid_tostr(hex, sizeof(hex), &old);
		/* (a writer that moves it between here and the swap below fails the swap) */
		if (expect && strcmp(hex, expect) != 0)
			return REPO_NOTES_MOVED;
		if (have == 2) {
			/* the notes are the database's projection: nothing in there to keep */
			notes_say_replaced(what, whatlen, notes_ref, &old, type);
			replaced = true;
		}
		rc = notes_apply(r->git, have == 1 ? &old : NULL, notes, n, &new, err, errlen);
		if (rc < 0)
			return rc;
		if (rc == 0 && have == 2) {
			/* no note to write: the ref goes, as if there had been none */
			if (git_reference_lookup(&ref, r->git, notes_ref) < 0 ||
			    git_reference_delete(ref) < 0) {
				git_reference_free(ref);
				return repo_seterr(err, errlen, "cannot delete %s: %s", notes_ref,
						   repo_giterr());
			}
			git_reference_free(ref);
			if (written)
				written[0] = '\0';
			return 1;
		}
		if (rc == 0) {
			if (written)
				snprintf(written, GIT_OID_HEXSZ + 1, "%s", hex);
			return replaced ? 1 : 0;
		}
		if (have)
			rc = git_reference_create_matching(&ref, r->git, notes_ref, &new, 1, &old,
							   "taskslaps: notes");
		else
			rc = git_reference_create(&ref, r->git, notes_ref, &new, 0,
						  "taskslaps: notes");
		git_reference_free(ref);
		if (rc == 0) {
			if (written)
				git_oid_tostr(written, GIT_OID_HEXSZ + 1, &new);
			return replaced ? 1 : 0;
		}
		if (rc != GIT_EMODIFIED && rc != GIT_EEXISTS)
			return repo_seterr(err, errlen, "cannot update %s: %s", notes_ref,
					   repo_giterr());
	}
	return repo_seterr(err, errlen, "cannot update %s: it kept moving under us", notes_ref);
}

static int
notes_push_cb(const char *refname, const char *status, void *data)
{
	struct repo_cred *c = data;

	if (status) {
		c->rejected = true;
		(void)snprintf(c->reject_msg, sizeof(c->reject_msg), "%s: %s", refname, status);
	}
	return 0;
}

/* Fetches the remote's notes_ref into tmp (deleted first). 0, or -1 with err. */
static int
notes_fetch(struct repo *r, git_remote *remote, const char *notes_ref, const char *tmp, char *err,
	    size_t errlen)
{
	char *spec = xasprintf("+%s:%s", notes_ref, tmp);
	git_strarray specs = { &spec, 1 };
	git_fetch_options opts;
	struct repo_cred cred;
	git_reference *old = NULL;
	int rc = 0;

	if (git_reference_lookup(&old, r->git, tmp) == 0) {
		rc = git_reference_delete(old);
		git_reference_free(old);
	}
	repo_fetch_options_init(&opts, &cred);
	if (rc < 0 || git_remote_fetch(remote, &specs, &opts, "taskslaps: fetch notes") < 0) {
		rc = repo_seterr(err, errlen, "cannot fetch %s from %s: %s", notes_ref, r->display,
				 repo_giterr());
		repo_scrub_err(r, err);
	}
	free(spec);
	return rc;
}

/*
 * One round of fetch, rewrite, push. Returns 0 done, 1 refused because the
 * remote moved (try again; why says how), -1 with err. Our notes ref, when
 * it is not a commit, is replaced (*replaced, what says so); the remote's is
 * an error.
 */
static int
notes_push_round(struct repo *r, git_remote *remote, const char *notes_ref, const char *tmp,
		 const struct repo_note *notes, size_t n, bool *replaced, char *what,
		 size_t whatlen, char *why, size_t whylen, char *err, size_t errlen)
{
	git_oid remote_id, local_id, new_id;
	const git_oid *base = NULL;
	git_reference *ref = NULL;
	git_push_options opts;
	struct repo_cred cred;
	char *spec;
	git_strarray specs = { &spec, 1 };
	git_object_t rtype = GIT_OBJECT_INVALID, ltype = GIT_OBJECT_INVALID;
	int have_remote, have_local, rc;

	if (notes_fetch(r, remote, notes_ref, tmp, err, errlen) < 0)
		return -1;
	if ((have_remote = notes_ref_id(r->git, tmp, &remote_id, &rtype)) < 0 ||
	    (have_local = notes_ref_id(r->git, notes_ref, &local_id, &ltype)) < 0)
		return repo_seterr(err, errlen, "cannot read notes refs: %s", repo_giterr());
	if (have_remote == 2) {
		char hex[GIT_OID_HEXSZ + 1];

		git_oid_tostr(hex, sizeof(hex), &remote_id);
		repo_seterr(
		    err, errlen,
		    "%s on %s points at a %s (%.12s), not a notes commit; it would take a "
		    "forced push to replace it, which taskslaps never does: delete it there "
		    "and the next pass writes the notes anew",
		    notes_ref, r->display, git_object_type2string(rtype), hex);
		repo_scrub_err(r, err);
		return -1;
	}
	if (have_local == 2) {
		/* ours, in the mirror: the database's projection, replaced */
		notes_say_replaced(what, whatlen, notes_ref, &local_id, ltype);
		*replaced = true;
		have_local = 0;
	}
	/* Our notes commit serves as base only when it already contains the remote's. */
	if (have_local && (!have_remote || git_oid_equal(&local_id, &remote_id) ||
			   git_graph_descendant_of(r->git, &local_id, &remote_id) == 1))
		base = &local_id;
	else if (have_remote)
		base = &remote_id;
	rc = notes_apply(r->git, base, notes, n, &new_id, err, errlen);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		if (!base && *replaced) {
			if (git_reference_lookup(&ref, r->git, notes_ref) == 0 &&
			    git_reference_delete(ref) < 0) {
				git_reference_free(ref);
				return repo_seterr(err, errlen, "cannot delete %s: %s", notes_ref,
						   repo_giterr());
			}
			git_reference_free(ref);
		}
		if (!base)
			return 0;
		git_oid_cpy(&new_id, base);
	}
	if (git_reference_create(&ref, r->git, notes_ref, &new_id, 1, "taskslaps: notes") < 0)
		return repo_seterr(err, errlen, "cannot update %s: %s", notes_ref, repo_giterr());
	git_reference_free(ref);
	if (have_remote && git_oid_equal(&new_id, &remote_id))
		return 0;
	if (r->before_push)
		r->before_push(r->before_push_arg);
	/* No '+': the remote refuses anything but a fast-forward. */
	spec = xasprintf("%s:%s", notes_ref, notes_ref);
	(void)git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
	repo_callbacks_init(&opts.callbacks, &cred);
	opts.callbacks.push_update_reference = notes_push_cb;
	opts.proxy_opts.type = GIT_PROXY_AUTO;
	rc = git_remote_push(remote, &specs, &opts);
	free(spec);
	if (rc == GIT_ENONFASTFORWARD || (rc == 0 && cred.rejected)) {
		repo_seterr(why, whylen, "%s", cred.rejected ? cred.reject_msg : repo_giterr());
		return 1;
	}
	if (rc < 0) {
		repo_seterr(err, errlen, "cannot push %s to %s: %s", notes_ref, r->display,
			    repo_giterr());
		repo_scrub_err(r, err);
		return -1;
	}
	return 0;
}

static int
notes_sync_push(struct repo *r, const char *notes_ref, const struct repo_note *notes, size_t n,
		char *what, size_t whatlen, char *err, size_t errlen)
{
	bool replaced = false;
	char *tmp = xasprintf("refs/taskslaps/fetch/%s", notes_ref + 5);
	char why[256] = "";
	git_remote *remote = NULL;
	git_reference *ref = NULL;
	int rc = -1, attempt;

	if (repo_remote_new(r, &remote, err, errlen) < 0)
		goto out;
	for (attempt = 0; attempt < REPO_NOTES_ATTEMPTS; attempt++) {
		rc = notes_push_round(r, remote, notes_ref, tmp, notes, n, &replaced, what, whatlen,
				      why, sizeof(why), err, errlen);
		if (rc <= 0)
			break;
	}
	if (rc > 0)
		rc = repo_seterr(err, errlen, "cannot push %s to %s: refused %d times (%s)",
				 notes_ref, r->display, REPO_NOTES_ATTEMPTS, why);
out:
	if (git_reference_lookup(&ref, r->git, tmp) == 0) {
		(void)git_reference_delete(ref);
		git_reference_free(ref);
	}
	git_remote_free(remote);
	free(tmp);
	return rc == 0 && replaced ? 1 : rc;
}

int
repo_notes_sync(struct repo *r, const char *notes_ref, const struct repo_note *notes, size_t n,
		bool push, char *err, size_t errlen)
{
	char what[512] = "";
	int rc;

	if (notes_check_ref(notes_ref, err, errlen) < 0)
		return -1;
	if (push && r->url)
		rc = notes_sync_push(r, notes_ref, notes, n, what, sizeof(what), err, errlen);
	else
		rc = notes_sync_local(r, notes_ref, notes, n, NULL, NULL, what, sizeof(what), err,
				      errlen);
	if (rc == 1)
		repo_seterr(err, errlen, "%s", what);
	return rc;
}

int
repo_notes_sync_at(struct repo *r, const char *notes_ref, const struct repo_note *notes, size_t n,
		   const char *expect, char written[41], char *err, size_t errlen)
{
	char what[512] = "";
	int rc;

	written[0] = '\0';
	if (notes_check_ref(notes_ref, err, errlen) < 0)
		return -1;
	rc = notes_sync_local(r, notes_ref, notes, n, expect, written, what, sizeof(what), err,
			      errlen);
	if (rc == 1)
		repo_seterr(err, errlen, "%s", what);
	return rc;
}

char *
repo_note_read(struct repo *r, const char *notes_ref, const char *commit)
{
	git_note *note = NULL;
	git_oid id;
	char *text;

	if (!commit || strlen(commit) != GIT_OID_HEXSZ || git_oid_fromstr(&id, commit) < 0 ||
	    git_note_read(&note, r->git, notes_ref, &id) < 0)
		return NULL;
	text = xstrdup(git_note_message(note));
	git_note_free(note);
	return text;
}

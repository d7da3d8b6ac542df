/* Private to src/repo: the repository handle and helpers shared by its files. */
#ifndef TS_REPO_INT_H
#define TS_REPO_INT_H

#include <git2.h>
#include <stdbool.h>
#include <stddef.h>

#include "repo/repo.h"

struct repo {
	git_repository *git;
	char *location;	 /* as given to repo_open */
	char *url;	 /* the remote's URL, or NULL for a local path */
	char *fetchspec; /* for a URL: +refs/heads/<branch>:refs/heads/<branch> */
	char *display;	 /* location for messages: a URL without its password */
	char *branch;
	char *gitdir; /* without a trailing slash */
	char **watch; /* NULL-terminated; just { NULL } for a URL */
	/*
	 * Test seam (tests/unit/repo only; NULL otherwise): called in each
	 * notes push round between the fetch and the push, so a test can move
	 * the remote's notes at the worst moment.
	 */
	void (*before_push)(void *arg);
	void *before_push_arg;
};

/* State of one network operation: credential attempts (bounded), push rejections. */
struct repo_cred {
	unsigned attempts;
	bool rejected; /* the remote refused a pushed ref */
	char reject_msg[256];
};

/* snprintf into err (when err and errlen), cleaned by repo_text_clean_inplace; returns -1. */
int repo_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * s with every byte that is not well-formed UTF-8, and every control
 * character, replaced by '?' in place: for messages that may quote git's
 * bytes (repo_seterr applies it to every error).
 */
void repo_text_clean_inplace(char *s);

/* The message of libgit2's last error on this thread, or "unknown error" (borrowed). */
const char *repo_giterr(void);

/* Replaces the password of r's URL with "***" wherever it appears in err. */
void repo_scrub_err(const struct repo *r, char *err);

/* Remote callbacks for fetch and push: credentials from the URL, ssh-agent or ~/.ssh keys. */
void repo_callbacks_init(git_remote_callbacks *cb, struct repo_cred *cred);

/*
 * The notes every fetch brings along. Not forced: a notes ref of ours that
 * the remote lacks (push_notes off, or a push still to succeed) is kept
 * rather than reset to the remote's at every poll; repo_notes_sync with push
 * works from a fresh fetch of the remote's notes anyway.
 */
#define REPO_NOTES_FETCHSPEC "refs/notes/taskslaps/*:refs/notes/taskslaps/*"

/*
 * What repo_fetch actually fetches the notes with: forced, into a staging
 * namespace, from which each notes ref moves only when it is a commit that
 * fast-forwards ours (REPO_NOTES_FETCHSPEC's meaning, checked by us). libgit2
 * 1.5 leaks on every fetch whose non-forced refspec meets a remote ref that
 * is not a commit (a blob pushed over the notes), which a hostile pusher
 * could make happen on every poll.
 */
#define REPO_NOTES_STAGE "refs/taskslaps/notes-fetched/"
#define REPO_NOTES_STAGESPEC "+refs/notes/taskslaps/*:" REPO_NOTES_STAGE "*"

/*
 * An in-memory remote for r->url (no configured refspecs: pass them to each
 * fetch or push). -1 with err. Free with git_remote_free.
 */
int repo_remote_new(struct repo *r, git_remote **out, char *err, size_t errlen);

/* The shared fetch options: proxy from the environment, no tags, no FETCH_HEAD. */
void repo_fetch_options_init(git_fetch_options *o, struct repo_cred *cred);

/*
 * The history walk of a snapshot (repo_walk.c): the migrations directory of
 * each commit looked up once, and a few directory trees held.
 */
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

/* A tree the walk holds already (its own reference), found again without a read. */
void repo_walk_hold(struct walk *w, git_tree *t);
void repo_walk_free(struct walk *w);
/*
 * Attributes each of the n files (names[i]: the name of files[i] in the
 * directory) to the commit that brought its content. 0, or -1 with err.
 */
int repo_attribute(struct repo *r, struct walk *w, const git_oid *tip,
		   struct repo_plan_file **files, const char *const *names, size_t n, char *err,
		   size_t errlen);
/*
 * Marks touched[i] for each of the n names some commit between prev
 * (excluded) and tip (included) brought. 0, or -1 (libgit2's error).
 */
int repo_range_touched(struct repo *r, struct walk *w, const git_oid *tip, const git_oid *prev,
		       const char *const *names, size_t n, bool *touched);

#endif

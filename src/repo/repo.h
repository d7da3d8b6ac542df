/*
 * The git side (libgit2): the migrations repository the daemon follows, the
 * plan files at a branch tip with the commit that last changed each, and the
 * git notes that carry each plan's outcome back to the repository.
 *
 * A repository is a local path (bare or not; the typical case is a bare
 * repository that developers push to over ssh) or a URL (file://, https://,
 * ssh://) that is mirrored into the state directory and fetched.
 */
#ifndef TS_REPO_H
#define TS_REPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan/doc.h"

struct repo;

/* One plan file at the tip of the followed branch. */
/* A plan file larger than this is not read: its content stays NULL (too_large). */
#define REPO_PLAN_MAX_BYTES DOC_MAX_BYTES

/* Texts from git in here (path, author) are cleaned as by repo_text_clean. */
struct repo_plan_file {
	char *path;	   /* path in the repository, e.g. "migrations/0001-x.yaml" */
	char *content;	   /* the blob's bytes (NUL-terminated for convenience); NULL
			      when too_large */
	char *git_path;	   /* the path's bytes as git has them (path may differ: cleaned) */
	size_t len;	   /* the blob's size, read or not */
	bool too_large;	   /* over REPO_PLAN_MAX_BYTES: refused without being read */
	char blob[41];	   /* blob id, hex */
	char commit[41];   /* newest commit reachable from the tip that changed this path */
	char *author_name; /* of that commit */
	char *author_email;
	int64_t commit_time; /* seconds since the epoch */
	bool by_tip;	     /* commit is the snapshot's tip, and the tip brought the content */
	/*
	 * The index in the snapshot this one was made from (prev_serial) of the
	 * file with the same path and blob, or REPO_NONE.
	 */
	size_t prev;
};

#define REPO_NONE ((size_t)-1)

struct repo_snapshot {
	char tip[41];		      /* the branch tip, hex */
	struct repo_plan_file *files; /* plan files (*.yaml *.yml *.json) directly under
					 migrations_dir, sorted by file name in byte order */
	size_t n;
	size_t reused; /* how many entries repo_snapshot_since copied from the previous one */
	char *dir;     /* migrations_dir as read ("" for the root) */
	/*
	 * Its tree at the tip (libgit2's git_tree, a reference of the
	 * snapshot's own, freed with it): the next snapshot's walk needs it.
	 */
	struct git_tree *dir_tree;
	/*
	 * Never the same for two snapshots; prev_serial: the serial of the one
	 * this was made from, whose indexes the files' prev are (0: none).
	 */
	unsigned long long serial, prev_serial;
};

/*
 * Text from git (a name, an e-mail, a path, a message: any bytes) as one
 * line of valid UTF-8: each byte that is not part of well-formed UTF-8, and
 * each control character (newline included), becomes the four characters
 * \xNN. Valid text without control characters comes back unchanged. Never
 * NULL; caller frees.
 */
char *repo_text_clean(const char *s, size_t len);

/*
 * Opens location (a local path, or a URL mirrored into state_dir/mirror.git)
 * following branch. For a URL the first fetch happens here, and a failed
 * fetch fails the open (the caller retries). Returns 0, or -1 with a message
 * in err. repo_free(NULL) is a no-op.
 */
int repo_open(struct repo **out, const char *location, const char *state_dir, const char *branch,
	      char *err, size_t errlen);
void repo_free(struct repo *r);

/*
 * For a program that uses repositories from more than one thread (the
 * daemon): keeps libgit2 initialised from repo_global_init, at the start of
 * main, to repo_global_shutdown, at the end of main after the other threads
 * have ended, so that libgit2's last shutdown happens on the main thread.
 * libgit2 frees a thread's error state at that thread's exit, or at the last
 * shutdown but only for the thread that calls it; the main thread never
 * "exits", so its state leaked whenever a worker thread happened to free the
 * last repository. It also lets libgit2's object cache keep trees of up to
 * 8 MB (a large migrations directory is read in every pass). Returns 0 or -1.
 */
int repo_global_init(void);
void repo_global_shutdown(void);

/* Whether location is a URL (fetched and pushed to) rather than a local path. */
bool repo_is_remote(const struct repo *r);

/*
 * Whether a configured location is a URL: it contains "://", or it is git's
 * scp-like form [user@]host:path (a colon before any slash). Anything else is
 * a local path.
 */
bool repo_location_is_url(const char *location);

/*
 * url with the password of its user-info replaced by "***"
 * ("https://u:secret@h/r" gives "https://u:***@h/r"); anything else is copied.
 * Caller frees. For logging a configured repository.
 */
char *repo_url_redact(const char *url);

/* The location for messages: a URL redacted as by repo_url_redact (borrowed). */
const char *repo_display(const struct repo *r);

/*
 * For a URL, fetches the followed branch (forced: a rewritten branch is taken
 * as the remote has it; one deleted upstream is deleted in the mirror) and
 * the notes under refs/notes/taskslaps/ (fast-forward only, so notes of ours
 * the remote has not got are kept). A no-op for a local path. Errors name
 * the URL without its password.
 */
int repo_fetch(struct repo *r, char *err, size_t errlen);

/*
 * Reads the plans under migrations_dir at the branch tip. A missing branch or
 * directory is an error with a clear message. Returns 0 and *out (free with
 * repo_snapshot_free), or -1 with err.
 *
 * migrations_dir may be spelled "migrations", "./migrations/" or "" / "."
 * for the root. Regular files only (no symlinks, submodules or
 * subdirectories). A file's commit is the newest one (topological, then time
 * order from the tip) that has the file's current content while none of its
 * parents has (a root commit always qualifies): for a straight history, the
 * last commit that changed it; through a merge, the commit on the side the
 * content came from, as `git log -1 -- path` finds it.
 */
int repo_snapshot(struct repo *r, const char *migrations_dir, struct repo_snapshot **out, char *err,
		  size_t errlen);

/*
 * The same snapshot, computed from prev (an earlier snapshot of the same
 * repository and migrations_dir; may be NULL) for what did not change: when
 * prev's tip is the tip or one of its ancestors, only the commits between
 * the two are walked, each compared with its parents, and a file none of
 * them touched keeps prev's entry (copied: prev stays the caller's), while a
 * touched or new one is read and attributed as repo_snapshot does. When
 * prev's tip is not an ancestor (a rewritten branch) or prev is NULL, this is
 * repo_snapshot. The result is the one repo_snapshot gives (unit.repo.since),
 * but for one tie: two unrelated commits behind prev's tip that each brought
 * a file's current bytes, which the walk from either tip orders by time but
 * could in principle take in another order from the newer one.
 */
int repo_snapshot_since(struct repo *r, const char *migrations_dir,
			const struct repo_snapshot *prev, struct repo_snapshot **out, char *err,
			size_t errlen);
/*
 * repo_snapshot_since for a caller that frees prev right after: the entries
 * reused take prev's content and author strings instead of copying them
 * (prev's become NULL; prev must then only be freed, on failure too).
 */
int repo_snapshot_since_move(struct repo *r, const char *migrations_dir, struct repo_snapshot *prev,
			     struct repo_snapshot **out, char *err, size_t errlen);
void repo_snapshot_free(struct repo_snapshot *s);

/*
 * The branch tip's commit id (hex) into out, without reading its tree: what
 * an idle pass compares with the tip it last settled. 0, or -1 with err.
 */
int repo_tip(struct repo *r, char out[41], char *err, size_t errlen);

/*
 * Paths to watch with inotify for a change of the branch (a push to a local
 * repository): the directory holding the branch's loose ref, and the git
 * directory (for packed-refs). NULL-terminated, borrowed. Empty for a URL.
 *
 * In order: <gitdir>/refs/heads, then for a branch with slashes each
 * directory down to its ref's ("team/db/x": refs/heads/team, then
 * refs/heads/team/db), then <gitdir> last. The deeper ones may not exist yet
 * (watch their parent to see them appear). For a linked worktree, gitdir is
 * the common directory, where refs live.
 */
const char *const *repo_watch_paths(const struct repo *r);

/* The git directory, without a trailing slash; for a URL, the mirror (borrowed). */
const char *repo_gitdir(const struct repo *r);

struct repo_note {
	const char *commit; /* hex */
	const char *text;   /* the note's exact bytes; NULL removes the note */
};

/*
 * Makes the notes under notes_ref (e.g. "refs/notes/taskslaps/prod") say
 * exactly text for each given commit (notes of other commits are left as
 * they are); writes a notes commit only when something changed. With push
 * (and a URL), fetches the remote notes ref, rewrites on top of it, and
 * pushes without force, retrying a bounded number of times when the remote
 * moved meanwhile. Returns 0, 1 (done, after a repair: see below), or -1
 * with err.
 *
 * All the changes of one call go into a single notes commit, by
 * "taskslaps <taskslaps@localhost>". A local repository gets its notes
 * directly (push is ignored); so does a URL's mirror without push. With push,
 * our notes commit is the base when it already contains the remote's, else
 * the remote's is, so the notes other writers added survive; the push is
 * never forced (5 attempts). Pushing over file:// needs a bare remote
 * (libgit2's local transport).
 *
 * The notes are a projection of the database, so a notes ref of ours that
 * points at something other than a commit (a blob force-pushed there, say)
 * is replaced, and 1 returned with err saying what it was. Not on the
 * remote: replacing it there would take a forced push, so a remote notes ref
 * that is not a commit is an error (-1) that says so.
 */
int repo_notes_sync(struct repo *r, const char *notes_ref, const struct repo_note *notes, size_t n,
		    bool push, char *err, size_t errlen);

/*
 * repo_notes_sync into the repository itself (no push), for a writer that
 * chose which notes to write from the state it left the ref in: expect is
 * that id (hex, "" for no ref; NULL: any state). A ref found elsewhere (a
 * push to it, a repair made by hand) is left untouched and REPO_NOTES_MOVED
 * returned, so the caller can write every note on what is there now; the
 * check and the write are one compare-and-swap of the ref. Otherwise as
 * repo_notes_sync, and written gets the id the ref is left at ("" for none),
 * which another writer may move the moment after but cannot make ours.
 */
#define REPO_NOTES_MOVED 2
int repo_notes_sync_at(struct repo *r, const char *notes_ref, const struct repo_note *notes,
		       size_t n, const char *expect, char written[41], char *err, size_t errlen);

/*
 * The object notes_ref points at (hex) into out, "" when there is no such
 * ref: what a writer of notes compares with the id it left there, to know
 * whether another hand moved it. 0, or -1 when it could not be read.
 */
int repo_notes_id(struct repo *r, const char *notes_ref, char out[41]);

/* The note on commit under notes_ref, or NULL (caller frees). */
char *repo_note_read(struct repo *r, const char *notes_ref, const char *commit);

/*
 * The commit that brought f's content onto the branch whose tip is tip (f
 * from a snapshot at that tip): the newest commit on the first-parent line
 * from the tip that has the file's blob at its path while its first parent
 * has not (or that has no parent). For a plan committed on the branch that
 * is f->commit itself; for one merged from a side branch, the merge — the
 * approval, where f->commit is the authorship. Returns 0 with the id (hex)
 * in out (at least 41 bytes), or -1 with err.
 */
int repo_landed_commit(struct repo *r, const char *tip, const struct repo_plan_file *f, char *out,
		       size_t outlen, char *err, size_t errlen);

/*
 * The key that signed commit, when it carries an SSH signature that holds
 * for the data with the key the signature names (`ssh-keygen -Y
 * check-novalidate`, namespace "git"): whose key it is, nobody vouches, but
 * the signature cannot be borrowed from another commit. Returns 1 with the
 * key's fingerprint ("SHA256:...") in out, 0 when the commit is unsigned, not
 * SSH-signed, the signature does not hold, or the commit is not in the
 * repository (why in err), -1 when it could not be told (err). Runs ssh-keygen as
 * repo_verify_commit does.
 */
int repo_commit_signer(struct repo *r, const char *commit, char *out, size_t outlen, char *err,
		       size_t errlen);

/*
 * Verifies commit's SSH signature against an allowed_signers file (the format
 * of ssh-keygen(1) ALLOWED SIGNERS), for the commit author's e-mail as
 * principal, the way git verifies SSH-signed commits (namespace "git").
 * Returns 1 valid, 0 unsigned or invalid (why in err), -1 on error.
 *
 * Runs `ssh-keygen -Y verify` (openssh-client) as a child process and waits
 * for it, with the signature in a temporary file under $TMPDIR (or /tmp)
 * removed afterwards: the caller must not reap children behind its back
 * (SIGCHLD ignored, or a catch-all waitpid). A missing or unreadable
 * allowed_signers is an error (-1), not an invalid signature. On 1, err
 * holds ssh-keygen's "Good ..." line.
 */
int repo_verify_commit(struct repo *r, const char *commit, const char *allowed_signers, char *err,
		       size_t errlen);

#endif

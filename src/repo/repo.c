/*
 * Opening the migrations repository: a local path opened in place, or a URL
 * mirrored into state_dir/mirror.git and fetched; the paths to watch for a push.
 */
#include "repo/repo_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/strbuf.h"

#define REPO_MAX_CRED_ATTEMPTS 5

int
repo_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return -1;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	/* a path or an ssh-keygen line may carry any bytes; errors reach JSON and SQL */
	repo_text_clean_inplace(err);
	return -1;
}

const char *
repo_giterr(void)
{
	const git_error *e = git_error_last();

	return e && e->message ? e->message : "unknown error";
}

bool
repo_location_is_url(const char *location)
{
	const char *colon, *slash;

	if (strstr(location, "://"))
		return true;
	/* git's rule for scp-like syntax ([user@]host:path): a colon before any slash. */
	colon = strchr(location, ':');
	slash = strchr(location, '/');
	return colon && colon != location && (!slash || colon < slash);
}

char *
repo_url_redact(const char *url)
{
	const char *scheme = strstr(url, "://");
	const char *host, *end, *at = NULL, *colon = NULL;

	if (!scheme)
		return xstrdup(url);
	host = scheme + 3;
	end = host + strcspn(host, "/?#");
	for (const char *p = host; p < end; p++)
		if (*p == '@')
			at = p;
	if (!at)
		return xstrdup(url);
	for (const char *p = host; p < at; p++)
		if (*p == ':') {
			colon = p;
			break;
		}
	if (!colon)
		return xstrdup(url);
	return xasprintf("%.*s:***%s", (int)(colon - url), url, at);
}

void
repo_scrub_err(const struct repo *r, char *err)
{
	const char *scheme, *host, *end, *at = NULL, *colon = NULL;
	size_t plen;
	char *hit;

	if (!err || !r->url || !(scheme = strstr(r->url, "://")))
		return;
	host = scheme + 3;
	end = host + strcspn(host, "/?#");
	for (const char *p = host; p < end; p++)
		if (*p == '@')
			at = p;
	for (const char *p = host; at && p < at && !colon; p++)
		if (*p == ':')
			colon = p;
	if (!colon || (plen = (size_t)(at - colon - 1)) < 3)
		return;
	/* libgit2's own message might quote the URL: never let the password through. */
	while ((hit = memmem(err, strlen(err), colon + 1, plen))) {
		memset(hit, '*', 3);
		memmove(hit + 3, hit + plen, strlen(hit + plen) + 1);
	}
}

static int
repo_cred_cb(git_credential **out, const char *url, const char *username_from_url,
	     unsigned int allowed, void *payload)
{
	static const char *const keys[] = { "id_ed25519", "id_ecdsa", "id_rsa" };
	struct repo_cred *c = payload;
	const char *user = username_from_url && *username_from_url ? username_from_url : "git";
	const char *home = getenv("HOME");
	unsigned attempt;

	(void)url;
	if (c->attempts >= REPO_MAX_CRED_ATTEMPTS)
		return GIT_PASSTHROUGH;
	attempt = c->attempts++;
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user);
	if (!(allowed & GIT_CREDENTIAL_SSH_KEY))
		return GIT_PASSTHROUGH; /* https: credentials in the URL, handled by libgit2 */
	/* First the agent (when there is one), then the usual key files in turn. */
	if (getenv("SSH_AUTH_SOCK")) {
		if (attempt == 0)
			return git_credential_ssh_key_from_agent(out, user);
		attempt--;
	}
	for (size_t i = 0; home && i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *priv = xasprintf("%s/.ssh/%s", home, keys[i]);
		char *pub = xasprintf("%s.pub", priv);
		int rc = GIT_PASSTHROUGH;

		if (access(priv, R_OK) == 0 && attempt-- == 0)
			rc = git_credential_ssh_key_new(
			    out, user, access(pub, R_OK) == 0 ? pub : NULL, priv, NULL);
		free(priv);
		free(pub);
		if (rc != GIT_PASSTHROUGH)
			return rc;
	}
	return GIT_PASSTHROUGH;
}

void
repo_callbacks_init(git_remote_callbacks *cb, struct repo_cred *cred)
{
	(void)git_remote_init_callbacks(cb, GIT_REMOTE_CALLBACKS_VERSION);
	memset(cred, 0, sizeof(*cred));
	cb->credentials = repo_cred_cb;
	cb->payload = cred;
}

void
repo_fetch_options_init(git_fetch_options *o, struct repo_cred *cred)
{
	(void)git_fetch_options_init(o, GIT_FETCH_OPTIONS_VERSION);
	repo_callbacks_init(&o->callbacks, cred);
	o->download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	o->update_fetchhead = 0;
	o->proxy_opts.type = GIT_PROXY_AUTO;
}

int
repo_remote_new(struct repo *r, git_remote **out, char *err, size_t errlen)
{
	git_remote_create_options o;

	/*
	 * An in-memory remote for the URL, refspecs given per operation. No
	 * url.*.insteadOf rewriting: the configured URL is meant as written,
	 * and in libgit2 1.5 that glob over the config leaks on every call.
	 */
	(void)git_remote_create_options_init(&o, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	o.repository = r->git;
	o.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	if (git_remote_create_with_opts(out, r->url, &o) < 0) {
		repo_seterr(err, errlen, "invalid remote %s: %s", r->display, repo_giterr());
		repo_scrub_err(r, err);
		return -1;
	}
	return 0;
}

struct specs {
	char *v[2];
	size_t n;
	bool more;
};

static int
repo_collect_spec(const git_config_entry *e, void *payload)
{
	struct specs *s = payload;

	if (s->n == 2)
		s->more = true;
	else
		s->v[s->n++] = xstrdup(e->value);
	return 0;
}

/* Whether the mirror's config says origin is r->url and fetches exactly r's refspecs. */
static int
repo_origin_is_current(struct repo *r, git_config *cfg, bool *url_ok, bool *specs_ok)
{
	git_buf url = GIT_BUF_INIT;
	struct specs have = { { NULL, NULL }, 0, false };
	int rc;

	rc = git_config_get_string_buf(&url, cfg, "remote.origin.url");
	if (rc < 0 && rc != GIT_ENOTFOUND)
		return -1;
	*url_ok = rc == 0 && !strcmp(url.ptr, r->url);
	git_buf_dispose(&url);
	/* No value pattern: libgit2 1.5 leaks a PCRE match block per value a pattern misses. */
	rc = git_config_get_multivar_foreach(cfg, "remote.origin.fetch", NULL, repo_collect_spec,
					     &have);
	if (rc < 0 && rc != GIT_ENOTFOUND)
		return -1;
	*specs_ok = !have.more && have.n == 2 && !strcmp(have.v[0], r->fetchspec) &&
		    !strcmp(have.v[1], REPO_NOTES_FETCHSPEC);
	free(have.v[0]);
	free(have.v[1]);
	return 0;
}

/* Appends v to sb as a quoted git config value; -1 when v holds a control character. */
static int
repo_config_quote(struct strbuf *sb, const char *v)
{
	sb_putc(sb, '"');
	for (; *v; v++) {
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return -1;
		if (*v == '"' || *v == '\\')
			sb_putc(sb, '\\');
		sb_putc(sb, *v);
	}
	sb_putc(sb, '"');
	return 0;
}

/* Appends a [remote "origin"] section with r's URL and refspecs to the config file at path. */
static int
repo_config_append_origin(struct repo *r, const char *path, char *err, size_t errlen)
{
	struct strbuf sb = STRBUF_INIT;
	FILE *f = NULL;
	int rc = -1, last = '\n';

	sb_puts(&sb, "[remote \"origin\"]\n\turl = ");
	if (repo_config_quote(&sb, r->url) < 0) {
		repo_seterr(err, errlen, "invalid repository URL %s: control character",
			    r->display);
		goto out;
	}
	sb_puts(&sb, "\n\tfetch = ");
	(void)repo_config_quote(&sb, r->fetchspec);
	sb_puts(&sb, "\n\tfetch = ");
	(void)repo_config_quote(&sb, REPO_NOTES_FETCHSPEC);
	sb_putc(&sb, '\n');
	if (!(f = fopen(path, "a+")))
		goto syserr;
	if (fseek(f, -1, SEEK_END) == 0)
		last = fgetc(f);
	if ((last != '\n' && fputc('\n', f) == EOF) || fwrite(sb.buf, 1, sb.len, f) != sb.len)
		goto syserr;
	rc = fclose(f);
	f = NULL;
	if (rc == 0)
		goto out;
syserr:
	rc = repo_seterr(err, errlen, "cannot write %s: %s", path, strerror(errno));
out:
	if (f)
		(void)fclose(f);
	sb_free(&sb);
	return rc;
}

/*
 * Makes remote "origin" in the mirror's config say r's URL and refspecs,
 * for people looking at the mirror with git (taskslaps itself fetches with
 * an in-memory remote). Rewritten only when it differs: the old entries are
 * deleted and a fresh section appended as text, then the mirror reopened.
 * Not git_config_set_multivar: in libgit2 1.5 every existing value its
 * pattern misses leaks a PCRE2 match block (libgit2 PR #6382, fixed in 1.6).
 */
static int
repo_mirror_setup_origin(struct repo *r, char *err, size_t errlen)
{
	git_config *cfg = NULL;
	char *path = NULL;
	bool url_ok, specs_ok;
	int rc = -1, drc;

	if (git_repository_config(&cfg, r->git) < 0 ||
	    repo_origin_is_current(r, cfg, &url_ok, &specs_ok) < 0)
		goto giterr;
	if (url_ok && specs_ok) {
		rc = 0;
		goto out;
	}
	/* ".*" matches every value, so this deletion leaks nothing. */
	if (((drc = git_config_delete_entry(cfg, "remote.origin.url")) < 0 &&
	     drc != GIT_ENOTFOUND) ||
	    ((drc = git_config_delete_multivar(cfg, "remote.origin.fetch", ".*")) < 0 &&
	     drc != GIT_ENOTFOUND))
		goto giterr;
	git_config_free(cfg);
	cfg = NULL;
	path = xasprintf("%s/config", r->gitdir);
	if (repo_config_append_origin(r, path, err, errlen) < 0)
		goto out;
	git_repository_free(r->git);
	r->git = NULL;
	if (git_repository_open_bare(&r->git, r->gitdir) < 0)
		goto giterr;
	rc = 0;
	goto out;
giterr:
	rc = repo_seterr(err, errlen, "cannot set up the mirror %s: %s", r->gitdir, repo_giterr());
out:
	free(path);
	git_config_free(cfg);
	return rc;
}

static int
repo_open_mirror(struct repo *r, const char *state_dir, char *err, size_t errlen)
{
	int rc;

	if (!state_dir || !*state_dir)
		return repo_seterr(err, errlen, "repository %s is a URL and needs a state_dir",
				   r->display);
	r->gitdir = xasprintf("%s/mirror.git", state_dir);
	if (access(r->gitdir, F_OK) == 0)
		rc = git_repository_open_bare(&r->git, r->gitdir);
	else
		rc = git_repository_init(&r->git, r->gitdir, 1);
	if (rc < 0)
		return repo_seterr(err, errlen, "cannot open the mirror %s: %s", r->gitdir,
				   repo_giterr());
	return repo_mirror_setup_origin(r, err, errlen);
}

/* gitdir with its trailing slash removed (fresh string). */
static char *
repo_strip_slash(const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return xstrndup(dir, n);
}

static void
repo_build_watch(struct repo *r)
{
	char *common;
	const char *slash;
	size_t n = 0, cap = 4;

	r->watch = xcalloc(cap, sizeof(char *));
	if (r->url)
		return;
	/* Refs live in the common directory (the main one, for a linked worktree). */
	common = repo_strip_slash(git_repository_commondir(r->git));
	for (const char *p = r->branch; (p = strchr(p, '/')); p++)
		cap++;
	r->watch = xrealloc(r->watch, cap * sizeof(char *));
	r->watch[n++] = xasprintf("%s/refs/heads", common);
	for (slash = strchr(r->branch, '/'); slash; slash = strchr(slash + 1, '/'))
		r->watch[n++] =
		    xasprintf("%s/refs/heads/%.*s", common, (int)(slash - r->branch), r->branch);
	r->watch[n++] = common;
	r->watch[n] = NULL;
}

int
repo_open(struct repo **out, const char *location, const char *state_dir, const char *branch,
	  char *err, size_t errlen)
{
	struct repo *r;
	char *ref;
	int valid = 0;

	if (!location || !*location)
		return repo_seterr(err, errlen, "no repository given");
	if (!branch || !*branch)
		return repo_seterr(err, errlen, "no branch given");
	if (git_libgit2_init() < 0)
		return repo_seterr(err, errlen, "cannot initialise libgit2");
	ref = xasprintf("refs/heads/%s", branch);
	if (git_reference_name_is_valid(&valid, ref) < 0 || !valid) {
		free(ref);
		git_libgit2_shutdown();
		return repo_seterr(err, errlen, "invalid branch name '%s'", branch);
	}
	free(ref);
	r = xcalloc(1, sizeof(*r));
	r->location = xstrdup(location);
	r->branch = xstrdup(branch);
	if (repo_location_is_url(location)) {
		r->url = xstrdup(location);
		r->fetchspec = xasprintf("+refs/heads/%s:refs/heads/%s", branch, branch);
		r->display = repo_url_redact(location);
		if (repo_open_mirror(r, state_dir, err, errlen) < 0)
			goto fail;
	} else {
		r->display = xstrdup(location);
		if (git_repository_open_ext(&r->git, location, GIT_REPOSITORY_OPEN_NO_SEARCH,
					    NULL) < 0) {
			repo_seterr(err, errlen, "cannot open repository %s: %s", location,
				    repo_giterr());
			goto fail;
		}
	}
	free(r->gitdir);
	r->gitdir = repo_strip_slash(git_repository_path(r->git));
	repo_build_watch(r);
	if (r->url && repo_fetch(r, err, errlen) < 0)
		goto fail;
	*out = r;
	return 0;
fail:
	repo_free(r);
	return -1;
}

void
repo_free(struct repo *r)
{
	if (!r)
		return;
	git_repository_free(r->git);
	for (size_t i = 0; r->watch && r->watch[i]; i++)
		free(r->watch[i]);
	free(r->watch);
	free(r->location);
	free(r->url);
	free(r->fetchspec);
	free(r->display);
	free(r->branch);
	free(r->gitdir);
	free(r);
	git_libgit2_shutdown();
}

int
repo_global_init(void)
{
	if (git_libgit2_init() < 0)
		return -1;
	/*
	 * A long-lived reader of one directory of plans: its tree (a 10,000-plan
	 * directory is about 500 KB) is read in every pass and by several
	 * questions of one pass. libgit2 caches no tree over 4 KB by default, so
	 * each would be inflated and parsed again; keep trees up to 8 MB.
	 */
	(void)git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE, (size_t)8 << 20);
	/*
	 * And the cache as a whole bounded at 8 MB of objects, not libgit2's
	 * 256 MB: each new tip brings a new tree of the directory, and the
	 * cache kept them all (a parsed tree takes about twice its size: at
	 * 10,000 plans the daemon grew by 0.8 MB a push). What a pass reads
	 * again is the tip's tree and its parent's.
	 */
	(void)git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)8 << 20);
	return 0;
}

void
repo_global_shutdown(void)
{
	git_libgit2_shutdown();
}

bool
repo_is_remote(const struct repo *r)
{
	return r->url != NULL;
}

const char *
repo_gitdir(const struct repo *r)
{
	return r->gitdir;
}

const char *
repo_display(const struct repo *r)
{
	return r->display;
}

const char *const *
repo_watch_paths(const struct repo *r)
{
	return (const char *const *)r->watch;
}

/*
 * After a fetch: when the remote no longer has the branch, neither has the
 * mirror (so a snapshot says so). Only the branch: notes of ours are kept.
 */
static int
repo_prune_branch(struct repo *r, git_remote *remote, char *err, size_t errlen)
{
	const git_remote_head **heads;
	git_reference *ref = NULL;
	char *name = xasprintf("refs/heads/%s", r->branch);
	size_t n;
	int rc = 0;

	if (git_remote_ls(&heads, &n, remote) < 0) {
		rc = repo_seterr(err, errlen, "cannot list the refs of %s: %s", r->display,
				 repo_giterr());
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(heads[i]->name, name))
			goto out;
	if (git_reference_lookup(&ref, r->git, name) == 0 && git_reference_delete(ref) < 0)
		rc = repo_seterr(err, errlen, "cannot delete %s in the mirror: %s", name,
				 repo_giterr());
out:
	git_reference_free(ref);
	free(name);
	return rc;
}

/*
 * Moves each staged notes ref to refs/notes/taskslaps/ when it is a commit
 * that fast-forwards ours (or we have none), and deletes the staged refs. A
 * remote notes ref that is not a commit is left for repo_notes_sync to
 * report. 0, or -1 with err (when err).
 */
static int
repo_notes_unstage(struct repo *r, char *err, size_t errlen)
{
	git_reference_iterator *it = NULL;
	git_reference *staged;
	int rc = 0;

	if (git_reference_iterator_glob_new(&it, r->git, REPO_NOTES_STAGE "*") < 0)
		return repo_seterr(err, errlen, "cannot list the fetched notes: %s", repo_giterr());
	while (git_reference_next(&staged, it) == 0) {
		const git_oid *id = git_reference_target(staged);
		char *name = xasprintf("refs/notes/taskslaps/%s",
				       git_reference_name(staged) + strlen(REPO_NOTES_STAGE));
		git_reference *ref = NULL;
		git_odb *odb = NULL;
		git_object_t type = GIT_OBJECT_INVALID;
		size_t len;
		git_oid ours;
		int have = git_reference_name_to_id(&ours, r->git, name);

		/* the type from the object's header: a huge blob pushed there is not read */
		if (id && git_repository_odb(&odb, r->git) == 0 &&
		    git_odb_read_header(&len, &type, odb, id) == 0 && type == GIT_OBJECT_COMMIT &&
		    (have == GIT_ENOTFOUND || (have == 0 && !git_oid_equal(&ours, id) &&
					       git_graph_descendant_of(r->git, id, &ours) == 1))) {
			if (git_reference_create(&ref, r->git, name, id, 1,
						 "taskslaps: fetch notes") < 0)
				rc = repo_seterr(err, errlen, "cannot update %s: %s", name,
						 repo_giterr());
			git_reference_free(ref);
		}
		git_error_clear();
		git_odb_free(odb);
		free(name);
		if (git_reference_delete(staged) < 0)
			rc = repo_seterr(err, errlen, "cannot delete %s: %s",
					 git_reference_name(staged), repo_giterr());
		git_reference_free(staged);
	}
	git_reference_iterator_free(it);
	return rc;
}

int
repo_fetch(struct repo *r, char *err, size_t errlen)
{
	char *specv[] = { r->fetchspec, REPO_NOTES_STAGESPEC };
	git_strarray specs = { specv, 2 };
	git_remote *remote = NULL;
	git_fetch_options opts;
	struct repo_cred cred;
	int rc;

	if (!r->url)
		return 0;
	if (repo_remote_new(r, &remote, err, errlen) < 0)
		return -1;
	repo_fetch_options_init(&opts, &cred);
	opts.prune = GIT_FETCH_NO_PRUNE;
	rc = git_remote_fetch(remote, &specs, &opts, "taskslaps: fetch");
	if (rc < 0) {
		repo_seterr(err, errlen, "cannot fetch %s: %s", r->display, repo_giterr());
		repo_scrub_err(r, err);
	} else {
		rc = repo_prune_branch(r, remote, err, errlen);
	}
	if (repo_notes_unstage(r, rc < 0 ? NULL : err, errlen) < 0)
		rc = -1;
	git_remote_free(remote);
	return rc < 0 ? -1 : 0;
}

/*
 * SSH commit signatures, verified as git does: the commit's "gpgsig" header
 * and the commit without it go to `ssh-keygen -Y verify` with namespace
 * "git", the author's e-mail as principal and an allowed_signers file.
 */
#include "repo/repo_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/strbuf.h"

#define SSH_SIG_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define VERIFY_OUTPUT_MAX 8192

/* Writes all of buf to fd. 0, or -errno. */
static int
write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* A temporary file holding buf, open read/write at offset 0; *path to unlink (caller frees). */
static int
temp_with(const char *buf, size_t len, char **path)
{
	const char *dir = getenv("TMPDIR");
	int fd, rc;

	*path = xasprintf("%s/taskslaps-verify-XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkostemp(*path, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		free(*path);
		*path = NULL;
		return rc;
	}
	if ((rc = write_all(fd, buf, len)) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		rc = rc < 0 ? rc : -errno;
		(void)close(fd);
		(void)unlink(*path);
		free(*path);
		*path = NULL;
		return rc;
	}
	return fd;
}

/* s on one line: its non-empty lines joined with "; " (caller frees). */
static char *
one_line(const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	while (*s) {
		size_t n = strcspn(s, "\r\n");

		while (n && s[n - 1] == ' ')
			n--;
		if (n) {
			if (sb.len)
				sb_puts(&sb, "; ");
			sb_add(&sb, s, n);
		}
		s += n;
		s += strspn(s, " \r\n");
	}
	return sb_detach(&sb);
}

/*
 * Runs argv with stdin from in_fd and stdout+stderr captured into out.
 * Returns the exit status (0-255), 256+signal for a signal, or -errno.
 */
static int
run_capture(char *const argv[], int in_fd, struct strbuf *out)
{
	int pfd[2], status, rc;
	pid_t pid;
	char buf[1024];

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		(void)close(pfd[0]);
		(void)close(pfd[1]);
		return rc;
	}
	if (pid == 0) {
		if (dup2(in_fd, 0) < 0 || dup2(pfd[1], 1) < 0 || dup2(pfd[1], 2) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(errno == ENOENT ? 127 : 126);
	}
	(void)close(pfd[1]);
	for (;;) {
		ssize_t got = read(pfd[0], buf, sizeof(buf));

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		if (out->len < VERIFY_OUTPUT_MAX)
			sb_add(out, buf, (size_t)got);
	}
	(void)close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 256 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/*
 * Runs ssh-keygen on a signature and the signed data: `-Y verify` against
 * allowed_signers for principal, or, with allowed_signers NULL, `-Y
 * check-novalidate` (the signature is checked against the key it carries,
 * which is trusted for nothing). Returns ssh-keygen's exit status (0-255),
 * 256+signal, or -1 with err when it could not run; its output in out.
 */
static int
keygen_check(const char *sig, size_t siglen, const char *data, size_t datalen,
	     const char *principal, const char *allowed_signers, struct strbuf *out, char *err,
	     size_t errlen)
{
	char *sigpath = NULL, *datapath = NULL;
	int sigfd, datafd = -1, rc;

	sigfd = temp_with(sig, siglen, &sigpath);
	if (sigfd < 0)
		return repo_seterr(err, errlen, "cannot write a temporary file: %s",
				   strerror(-sigfd));
	datafd = temp_with(data, datalen, &datapath);
	if (datafd < 0) {
		rc = repo_seterr(err, errlen, "cannot write a temporary file: %s",
				 strerror(-datafd));
		goto out;
	}
	if (allowed_signers) {
		char *argv[] = { "ssh-keygen",
				 "-Y",
				 "verify",
				 "-f",
				 (char *)allowed_signers,
				 "-I",
				 (char *)principal,
				 "-n",
				 "git",
				 "-s",
				 sigpath,
				 NULL };

		rc = run_capture(argv, datafd, out);
	} else {
		char *argv[] = { "ssh-keygen", "-Y", "check-novalidate", "-n", "git", "-s",
				 sigpath,      NULL };

		rc = run_capture(argv, datafd, out);
	}
	if (rc < 0)
		rc = repo_seterr(err, errlen, "cannot run ssh-keygen: %s", strerror(-rc));
	else if (rc == 127)
		rc = repo_seterr(err, errlen, "cannot run ssh-keygen: not found (openssh-client)");
	else if (rc == 126 || rc > 255)
		rc = repo_seterr(err, errlen, "ssh-keygen failed (%s %d)",
				 rc > 255 ? "signal" : "status", rc > 255 ? rc - 256 : rc);
out:
	if (datafd >= 0)
		(void)close(datafd);
	(void)close(sigfd);
	if (datapath)
		(void)unlink(datapath);
	(void)unlink(sigpath);
	free(datapath);
	free(sigpath);
	return rc;
}

/* Runs ssh-keygen -Y verify; 1 good, 0 bad (message in err), -1 error. */
static int
verify_ssh(const char *sig, size_t siglen, const char *data, size_t datalen, const char *principal,
	   const char *allowed_signers, char *err, size_t errlen)
{
	struct strbuf out = STRBUF_INIT;
	int rc =
	    keygen_check(sig, siglen, data, datalen, principal, allowed_signers, &out, err, errlen);

	if (rc >= 0) {
		char *msg = one_line(sb_str(&out));

		if (rc == 0)
			repo_seterr(err, errlen, "%s", *msg ? msg : "good signature");
		else
			repo_seterr(err, errlen, "bad signature: %s",
				    *msg ? msg : "refused by ssh-keygen");
		free(msg);
		rc = rc == 0;
	}
	sb_free(&out);
	return rc;
}

/*
 * The signature of commit and the signed bytes, when it has an SSH one.
 * Returns 1 (caller disposes of both), 0 unsigned or not SSH (why in err),
 * -1 with err.
 */
static int
commit_ssh_signature(struct repo *r, const char *commit, git_buf *sig, git_buf *data, char *err,
		     size_t errlen)
{
	git_commit *c = NULL;
	git_oid id;
	int rc;

	if (!commit || strlen(commit) != GIT_OID_HEXSZ || git_oid_fromstr(&id, commit) < 0)
		return repo_seterr(err, errlen, "invalid commit id '%s'",
				   commit ? commit : "(null)");
	/* extract_signature says ENOTFOUND for a missing commit as for an unsigned one */
	rc = git_commit_lookup(&c, r->git, &id);
	git_commit_free(c);
	if (rc == GIT_ENOTFOUND) {
		repo_seterr(err, errlen, "commit %.12s is not in the repository", commit);
		return 0;
	}
	if (rc < 0)
		return repo_seterr(err, errlen, "cannot read commit %s: %s", commit, repo_giterr());
	rc = git_commit_extract_signature(sig, data, r->git, &id, NULL);
	if (rc == GIT_ENOTFOUND) {
		repo_seterr(err, errlen, "commit %.12s is not signed", commit);
		return 0;
	}
	if (rc < 0)
		return repo_seterr(err, errlen, "cannot read the signature of %s: %s", commit,
				   repo_giterr());
	if (sig->size < sizeof(SSH_SIG_BEGIN) - 1 ||
	    memcmp(sig->ptr, SSH_SIG_BEGIN, sizeof(SSH_SIG_BEGIN) - 1)) {
		repo_seterr(err, errlen, "commit %.12s is not signed with an SSH key", commit);
		git_buf_dispose(sig);
		git_buf_dispose(data);
		return 0;
	}
	return 1;
}

int
repo_commit_signer(struct repo *r, const char *commit, char *out, size_t outlen, char *err,
		   size_t errlen)
{
	git_buf sig = GIT_BUF_INIT, data = GIT_BUF_INIT;
	struct strbuf said = STRBUF_INIT;
	const char *key;
	size_t n;
	int rc;

	rc = commit_ssh_signature(r, commit, &sig, &data, err, errlen);
	if (rc <= 0) {
		git_buf_dispose(&sig);
		git_buf_dispose(&data);
		return rc;
	}
	rc = keygen_check(sig.ptr, sig.size, data.ptr, data.size, NULL, NULL, &said, err, errlen);
	if (rc > 0) {
		char *msg = one_line(sb_str(&said));

		repo_seterr(err, errlen, "commit %.12s: bad signature: %s", commit, msg);
		free(msg);
		rc = 0;
	} else if (rc == 0) {
		/* "Good "git" signature with ED25519 key SHA256:..." */
		key = strstr(sb_str(&said), " key SHA256:");
		n = key ? strcspn(key + 5, " \t\r\n") : 0;
		if (!key || n + 1 > outlen) {
			rc = repo_seterr(err, errlen,
					 "commit %.12s: no key fingerprint in ssh-keygen's answer",
					 commit);
		} else {
			memcpy(out, key + 5, n);
			out[n] = '\0';
			rc = 1;
		}
	}
	sb_free(&said);
	git_buf_dispose(&sig);
	git_buf_dispose(&data);
	return rc;
}

int
repo_verify_commit(struct repo *r, const char *commit, const char *allowed_signers, char *err,
		   size_t errlen)
{
	git_buf sig = GIT_BUF_INIT, data = GIT_BUF_INIT;
	git_commit *c = NULL;
	const git_signature *author;
	char *principal = NULL;
	git_oid id;
	int rc;

	if (!commit || strlen(commit) != GIT_OID_HEXSZ || git_oid_fromstr(&id, commit) < 0)
		return repo_seterr(err, errlen, "invalid commit id '%s'",
				   commit ? commit : "(null)");
	if (!allowed_signers || access(allowed_signers, R_OK) < 0)
		return repo_seterr(err, errlen, "cannot read allowed_signers %s: %s",
				   allowed_signers ? allowed_signers : "(none)",
				   allowed_signers ? strerror(errno) : "not configured");
	if (git_commit_lookup(&c, r->git, &id) < 0)
		return repo_seterr(err, errlen, "cannot read commit %s: %s", commit, repo_giterr());
	author = git_commit_author(c);
	principal = xstrdup(author && author->email ? author->email : "");
	git_commit_free(c);
	rc = commit_ssh_signature(r, commit, &sig, &data, err, errlen);
	if (rc <= 0)
		goto out;
	if (!*principal) {
		repo_seterr(err, errlen, "commit %.12s has no author e-mail to verify", commit);
		rc = 0;
		goto out;
	}
	rc = verify_ssh(sig.ptr, sig.size, data.ptr, data.size, principal, allowed_signers, err,
			errlen);
out:
	git_buf_dispose(&sig);
	git_buf_dispose(&data);
	free(principal);
	return rc;
}

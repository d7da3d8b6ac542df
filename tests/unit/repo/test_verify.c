/* SSH-signed commits checked against an allowed_signers file, as git does. */
#include "repo_test.h"

static char *home;
static bool have_keygen;

static int
group_setup(void **state)
{
	(void)state;
	home = rt_env();
	have_keygen = system("command -v ssh-keygen >/dev/null 2>&1") == 0;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	rt_rm_rf(home);
	return 0;
}

struct keys {
	char *dir;	       /* keys and allowed_signers live here */
	char *allowed;	       /* allowed_signers: alice's key only */
	char *alice, *mallory; /* private key paths */
};

static void
keys_make(struct keys *k)
{
	char *pub;

	k->dir = rt_tmpdir();
	k->alice = xasprintf("%s/alice", k->dir);
	k->mallory = xasprintf("%s/mallory", k->dir);
	k->allowed = xasprintf("%s/allowed_signers", k->dir);
	rt_sh("ssh-keygen -q -t ed25519 -N '' -C alice -f '%s'", k->alice);
	rt_sh("ssh-keygen -q -t ed25519 -N '' -C mallory -f '%s'", k->mallory);
	pub = rt_out("cat '%s.pub'", k->alice);
	rt_sh("printf '%%s\\n' 'alice@example.com namespaces=\"git\" %s' > '%s'", pub, k->allowed);
	free(pub);
}

static void
keys_free(struct keys *k)
{
	free(k->alice);
	free(k->mallory);
	free(k->allowed);
	rt_rm_rf(k->dir);
}

/* A commit by alice@example.com, signed with key (NULL: unsigned); returns its id. */
static char *
commit_signed(const char *dir, const char *key, const char *msg)
{
	char *git = rt_who("alice");

	if (key)
		rt_sh("cd '%s' && %s -c gpg.format=ssh -c user.signingkey='%s' commit -q -S "
		      "--allow-empty -m '%s'",
		      dir, git, key, msg);
	else
		rt_sh("cd '%s' && %s commit -q --allow-empty -m '%s'", dir, git, msg);
	free(git);
	return rt_rev(dir, "HEAD");
}

static void
test_repo_verify__signatures(void **state)
{
	struct keys k;
	char *d, *good, *unsigned_c, *bad, *out;
	struct repo *r;
	char err[512] = "";

	(void)state;
	if (!have_keygen)
		skip();
	keys_make(&k);
	d = rt_init();
	good = commit_signed(d, k.alice, "signed by alice");
	unsigned_c = commit_signed(d, NULL, "not signed");
	bad = commit_signed(d, k.mallory, "signed by mallory as alice");
	/* git itself agrees with the fixture. */
	out = rt_out("git -C '%s' -c gpg.ssh.allowedSignersFile='%s' verify-commit '%s' 2>&1", d,
		     k.allowed, good);
	assert_non_null(strstr(out, "Good \"git\" signature"));
	free(out);

	r = rt_open(d, NULL, "main");
	assert_int_equal(repo_verify_commit(r, good, k.allowed, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "Good \"git\" signature for alice@example.com"));
	assert_int_equal(repo_verify_commit(r, unsigned_c, k.allowed, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "is not signed"));
	assert_int_equal(repo_verify_commit(r, bad, k.allowed, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "bad signature"));
	/* A configuration problem is an error, not a bad signature. */
	assert_int_equal(
	    repo_verify_commit(r, good, "/nonexistent/allowed_signers", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "allowed_signers"));
	assert_int_equal(repo_verify_commit(r, "1234", k.allowed, err, sizeof(err)), -1);
	repo_free(r);
	free(good), free(unsigned_c), free(bad);
	rt_rm_rf(d);
	keys_free(&k);
}

static void
test_repo_verify__principal_is_the_author(void **state)
{
	struct keys k;
	char *d, *c, *git;
	struct repo *r;
	char err[512] = "";

	(void)state;
	if (!have_keygen)
		skip();
	keys_make(&k);
	d = rt_init();
	/* Alice's key, but the commit claims bob as author: bob has no allowed key. */
	git = rt_who("bob");
	rt_sh("cd '%s' && %s -c gpg.format=ssh -c user.signingkey='%s' commit -q -S --allow-empty "
	      "-m 'bob by alice'",
	      d, git, k.alice);
	free(git);
	c = rt_rev(d, "HEAD");
	r = rt_open(d, NULL, "main");
	assert_int_equal(repo_verify_commit(r, c, k.allowed, err, sizeof(err)), 0);
	repo_free(r);
	free(c);
	rt_rm_rf(d);
	keys_free(&k);
}

/* The fingerprint of a private key's public half, as ssh-keygen -l prints it (caller frees). */
static char *
fingerprint(const char *key)
{
	return rt_out("ssh-keygen -lf '%s.pub' | cut -d' ' -f2", key);
}

/*
 * The signing key of a commit, for the rate limit: the fingerprint when the
 * signature holds (whoever the key belongs to), none when unsigned, missing,
 * or when the signature was moved from another commit.
 */
static void
test_repo_verify__commit_signer(void **state)
{
	struct keys k;
	char *d, *by_alice, *by_mallory, *plain, *fa, *fm, *forged, *raw;
	struct repo *r;
	char err[512] = "", fp[128] = "";

	(void)state;
	if (!have_keygen)
		skip();
	keys_make(&k);
	d = rt_init();
	by_alice = commit_signed(d, k.alice, "one");
	by_mallory = commit_signed(d, k.mallory, "two");
	plain = commit_signed(d, NULL, "three");
	/* alice's signature under another message: it cannot hold */
	raw = rt_out("git -C '%s' cat-file commit '%s' | sed 's/^one$/one, edited/' | "
		     "git -C '%s' hash-object -t commit -w --stdin",
		     d, by_alice, d);
	forged = raw;
	fa = fingerprint(k.alice);
	fm = fingerprint(k.mallory);
	r = rt_open(d, NULL, "main");
	assert_int_equal(repo_commit_signer(r, by_alice, fp, sizeof(fp), err, sizeof(err)), 1);
	assert_string_equal(fp, fa);
	assert_int_equal(repo_commit_signer(r, by_mallory, fp, sizeof(fp), err, sizeof(err)), 1);
	assert_string_equal(fp, fm);
	assert_int_equal(repo_commit_signer(r, plain, fp, sizeof(fp), err, sizeof(err)), 0);
	assert_non_null(strstr(err, "not signed"));
	assert_int_equal(repo_commit_signer(r, forged, fp, sizeof(fp), err, sizeof(err)), 0);
	assert_non_null(strstr(err, "bad signature"));
	assert_int_equal(repo_commit_signer(r, "0123456789012345678901234567890123456789", fp,
					    sizeof(fp), err, sizeof(err)),
			 0);
	assert_non_null(strstr(err, "not in the repository"));
	repo_free(r);
	free(by_alice), free(by_mallory), free(plain), free(forged), free(fa), free(fm);
	rt_rm_rf(d);
	keys_free(&k);
}

/*
 * The commit that brought a plan onto the branch: the plan's own commit on
 * a straight line, the merge for a plan from a side branch (whose own
 * commit stays the side's), and the side's commit again after a
 * fast-forward.
 */
static void
test_repo_verify__landed_commit(void **state)
{
	char *d = rt_init(), *base, *side, *merge, *lin, *git;
	struct repo *r;
	struct repo_snapshot *s;
	char err[512] = "", out[41];

	(void)state;
	rt_write(d, "migrations/README", "plans\n");
	base = rt_commit(d, "alice", "base");
	rt_sh("git -C '%s' checkout -q -b side", d);
	rt_write(d, "migrations/0001-a.yaml", "title: a\n");
	side = rt_commit(d, "alice", "a, on the side");
	rt_sh("git -C '%s' checkout -q main", d);
	rt_write(d, "migrations/0002-b.yaml", "title: b\n");
	lin = rt_commit(d, "bob", "b, on main");
	git = rt_who("mallory");
	rt_sh("cd '%s' && %s merge -q --no-ff -m merge side", d, git);
	free(git);
	merge = rt_rev(d, "HEAD");

	r = rt_open(d, NULL, "main");
	s = rt_snap(r, "migrations");
	assert_string_equal(rt_file(s, "migrations/0001-a.yaml")->commit, side);
	assert_int_equal(repo_landed_commit(r, s->tip, rt_file(s, "migrations/0001-a.yaml"), out,
					    sizeof(out), err, sizeof(err)),
			 0);
	assert_string_equal(out, merge);
	assert_int_equal(repo_landed_commit(r, s->tip, rt_file(s, "migrations/0002-b.yaml"), out,
					    sizeof(out), err, sizeof(err)),
			 0);
	assert_string_equal(out, lin);
	repo_snapshot_free(s);
	repo_free(r);

	/* a fast-forward leaves no commit of its own: the side's commit brought it */
	rt_sh("git -C '%s' branch -q -f ff '%s' && git -C '%s' checkout -q ff", d, side, d);
	r = rt_open(d, NULL, "ff");
	s = rt_snap(r, "migrations");
	assert_int_equal(repo_landed_commit(r, s->tip, rt_file(s, "migrations/0001-a.yaml"), out,
					    sizeof(out), err, sizeof(err)),
			 0);
	assert_string_equal(out, side);
	repo_snapshot_free(s);
	repo_free(r);
	free(base), free(side), free(merge), free(lin);
	rt_rm_rf(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repo_verify__signatures),
		cmocka_unit_test(test_repo_verify__principal_is_the_author),
		cmocka_unit_test(test_repo_verify__commit_signer),
		cmocka_unit_test(test_repo_verify__landed_commit),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

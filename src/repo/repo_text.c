/*
 * Text that comes from git — author and committer names and e-mails,
 * messages, paths — is whatever bytes somebody committed. Before it reaches
 * JSON (the control protocol refuses what is not UTF-8), SQL (the server
 * refuses it in a UTF-8 database) or a note (a newline would forge a
 * trailer), it is made into one line of valid UTF-8 here.
 */
#include "repo/repo_int.h"

#include <string.h>

#include "util/strbuf.h"
#include "util/utf8.h"

/* Length of the well-formed UTF-8 sequence at s (at most left bytes), or 0. */
static size_t
seq_len(const unsigned char *s, size_t left)
{
	size_t n = *s < 0x80		 ? 1
		   : (*s & 0xe0) == 0xc0 ? 2
		   : (*s & 0xf0) == 0xe0 ? 3
		   : (*s & 0xf8) == 0xf0 ? 4
					 : 0;

	if (!n || n > left || utf8_check((const char *)s, n) != n)
		return 0;
	return n;
}

static bool
is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

char *
repo_text_clean(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < len;) {
		size_t n = seq_len(u + i, len - i);

		if (n == 0 || (n == 1 && is_control(u[i]))) {
			sb_printf(&sb, "\\x%02x", u[i]);
			i++;
			continue;
		}
		sb_add(&sb, s + i, n);
		i += n;
	}
	return sb_detach(&sb);
}

void
repo_text_clean_inplace(char *s)
{
	unsigned char *u = (unsigned char *)s;
	size_t len = strlen(s);

	for (size_t i = 0; i < len;) {
		size_t n = seq_len(u + i, len - i);

		if (n == 0 || (n == 1 && is_control(u[i]))) {
			u[i++] = '?';
			continue;
		}
		i += n;
	}
}

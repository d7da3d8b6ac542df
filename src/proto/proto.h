/*
 * The control protocol's lines (include/taskslaps/proto.h describes their
 * shape): encoding and decoding, shared by taskslapsd and taskslapsctl, and a
 * reader that cuts a byte stream into lines.
 *
 * Every encoder returns one line of compact JSON ending in "\n", allocated
 * with malloc (caller frees with free()); none returns NULL (they abort on
 * out-of-memory, like util/alloc.h). Every line an encoder returns is at most
 * TS_PROTO_MAX_LINE bytes, so the peer's reader accepts it.
 */
#ifndef TS_PROTO_PROTO_H
#define TS_PROTO_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "taskslaps/proto.h"

/*
 * Ids are JSON integers in 0 .. 2^53-1 (exact in a double); the encoders
 * write them digit for digit, and send an id outside that range as 0.
 */
#define PROTO_ID_MAX 9007199254740991LL

/* ---- requests ------------------------------------------------------------ */

struct proto_request {
	int v;	      /* always TS_PROTO_VERSION after a successful decode */
	long long id; /* 0 .. PROTO_ID_MAX */
	char *cmd;    /* owned; non-empty */
	cJSON *args;  /* owned; an object, or NULL when the request had none (or null) */
};

/*
 * Decodes one request line (len bytes, a trailing "\n" or "\r\n" allowed; the
 * line need not be NUL-terminated). Checks, in this order: length (at most
 * TS_PROTO_MAX_LINE), no NUL byte, valid UTF-8, JSON, an object, "v" an
 * integer equal to TS_PROTO_VERSION, "id" an integer in 0..PROTO_ID_MAX,
 * "cmd" a non-empty string, "args" absent, null or an object, and no key
 * twice in any object (after the version check, so the code of a request
 * from another version stays unsupported_version). Unknown keys are
 * ignored (a later version may add some).
 *
 * Returns 0 and fills *out (release with proto_request_free). Returns -1 with
 * *code set to a TS_PROTO_E_* string (static) and a one-line message in msg
 * (msg may be NULL when msglen is 0); then out->id holds the request's id if
 * one could be read (else 0) so the error reply can echo it, and nothing in
 * *out needs freeing.
 */
int proto_request_decode(const char *line, size_t len, struct proto_request *out, const char **code,
			 char *msg, size_t msglen);
/* Frees what a successful decode put in rq and zeroes it; NULL and repeats are fine. */
void proto_request_free(struct proto_request *rq);
/*
 * {"v":1,"id":ID,"cmd":CMD,"args":ARGS}\n. args (consumed; NULL for none)
 * should be an object. Caller frees the line.
 */
char *proto_request_encode(long long id, const char *cmd, cJSON *args);

/* ---- replies ------------------------------------------------------------- */

/*
 * {"v":1,"id":ID,"result":RESULT}\n. result is consumed; NULL sends {}.
 * A result too big for one line becomes an "unavailable" error reply.
 */
char *proto_reply_result(long long id, cJSON *result);
/* {"v":1,"id":ID,"error":{"code":CODE,"message":MESSAGE}}\n; messages past 4 KiB are cut. */
char *proto_reply_error(long long id, const char *code, const char *message);
/* {"v":1,"id":ID,"event":EVENT}\n. event is consumed; NULL sends {}; too big, as for results. */
char *proto_reply_event(long long id, cJSON *event);
/* {"v":1,"id":ID,"end":true}\n: the end of a stream. */
char *proto_reply_end(long long id);

enum proto_reply_kind { PROTO_RESULT, PROTO_ERROR, PROTO_EVENT, PROTO_END };

struct proto_reply {
	enum proto_reply_kind kind;
	long long id;
	cJSON *payload; /* owned: the result (any JSON value) or the event (an object); else NULL */
	char *code;	/* owned, for PROTO_ERROR: error.code; else NULL */
	char *message;	/* owned, for PROTO_ERROR: error.message ("" when absent); else NULL */
};

/*
 * Decodes one reply line (same framing rules as requests): an object with
 * "v" = TS_PROTO_VERSION, an integer "id", and exactly one of "result",
 * "error" (an object with a string "code"), "event" (an object) or "end"
 * (true). Returns 0 and fills *out (release with proto_reply_free); -1 with
 * a one-line reason in msg (may be NULL when msglen is 0), *out untouched.
 */
int proto_reply_decode(const char *line, size_t len, struct proto_reply *out, char *msg,
		       size_t msglen);
/* Frees what a successful decode put in r and zeroes it; NULL and repeats are fine. */
void proto_reply_free(struct proto_reply *r);

/* The name of a reply kind: "result", "error", "event", "end". */
const char *proto_reply_kind_name(enum proto_reply_kind k);

/* ---- access -------------------------------------------------------------- */

/*
 * Who may ask for a command. The zero value is PROTO_ADMIN: a command whose
 * entry says nothing is for admins, and only an explicit PROTO_READ opens it
 * to every local user who can connect to the socket.
 */
enum proto_access {
	PROTO_ADMIN = 0, /* root, the daemon's own user, members of admin_group */
	PROTO_READ,	 /* anyone who can open the socket */
};

/* "admin" or "read" (the names the commands listing uses). */
const char *proto_access_name(enum proto_access a);

/*
 * The message of a forbidden reply to cmd, which needs admin access, in msg
 * (cut to msglen): who may ask for it, naming admin_group (NULL when none is
 * configured) and whether that group exists on this system.
 */
void proto_forbidden_message(char *msg, size_t msglen, const char *cmd, const char *admin_group,
			     bool group_exists);

/* ---- line reader --------------------------------------------------------- */

/*
 * Cuts a byte stream into lines, whatever the sizes of the reads. A line
 * longer than the reader's maximum is reported once and dropped up to its
 * newline, so a peer cannot make the reader hold more than max plus one
 * read's worth of bytes (when fed through proto_reader_read).
 */
struct proto_reader {
	char *buf;
	size_t start; /* the unread bytes are buf[start .. len) */
	size_t len, cap;
	size_t scanned; /* bytes after start already searched for '\n' */
	size_t max;	/* longest line accepted, without its '\n' */
	bool skipping;	/* dropping the rest of an oversized line */
};

#define PROTO_LINE 1	    /* proto_reader_next: a line */
#define PROTO_NEED_MORE 0   /* proto_reader_next: no complete line buffered */
#define PROTO_TOO_LONG (-1) /* proto_reader_next: a line past max was dropped */

/* max 0 means TS_PROTO_MAX_LINE. */
void proto_reader_init(struct proto_reader *r, size_t max);
void proto_reader_free(struct proto_reader *r);
/* Appends n bytes (of any content) to the stream. */
void proto_reader_feed(struct proto_reader *r, const void *data, size_t n);
/* One read(2) of fd (at most 64 KiB) into the stream: bytes read, 0 at EOF, or -errno. */
ssize_t proto_reader_read(struct proto_reader *r, int fd);
/*
 * The next complete line: PROTO_LINE with *line (NUL-terminated, without its
 * "\n"; borrowed until the next feed, read or free) and *len; PROTO_NEED_MORE;
 * or PROTO_TOO_LONG once for each line longer than max (its bytes are
 * dropped, the lines after it are still read).
 */
int proto_reader_next(struct proto_reader *r, const char **line, size_t *len);
/* Bytes buffered of a line whose "\n" has not come yet (at EOF: a truncated line). */
size_t proto_reader_pending(const struct proto_reader *r);

#endif

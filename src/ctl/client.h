/*
 * taskslapsctl's side of the control socket: finding the daemon, one
 * connection, requests and their replies, and the small helpers the daemon
 * verbs share to read and show what the daemon sends.
 */
#ifndef TS_CTL_CLIENT_H
#define TS_CTL_CLIENT_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "ctl/ctl.h"
#include "proto/proto.h"

/*
 * The socket to talk to (docs/contract.md §9): --socket PATH, else --target NAME
 * (RUNDIR/NAME.sock), else $TASKSLAPS_SOCKET, else the only *.sock socket in
 * rundir (NULL: TS_PROTO_RUNDIR). Returns CTL_OK with *out (caller frees);
 * else prints why to stderr and returns CTL_USAGE (a bad --target, several
 * sockets to choose from) or CTL_UNREACHABLE (no socket at all).
 */
int ctl_socket_find(const struct ctl_global *g, const char *rundir, char **out);

struct ctl_client {
	int fd;
	char *path;	  /* owned */
	const char *verb; /* for messages: "taskslapsctl VERB: ..." */
	long long next_id;
	struct proto_reader rd;
	bool eof;      /* the daemon closed its end */
	int error;     /* errno of a broken connection, else 0 */
	char why[256]; /* what was wrong with a line the daemon sent */
};

/*
 * Finds the socket and connects. CTL_OK, or a CTL_ status after printing
 * "taskslapsctl: cannot reach the daemon at PATH: <why>" (CTL_UNREACHABLE)
 * or what ctl_socket_find says. On failure *c needs no close.
 */
int ctl_client_open(struct ctl_client *c, const struct ctl_global *g, const char *verb);
/* Connects to path (as ctl_client_open does after finding it). */
int ctl_client_connect(struct ctl_client *c, const char *path, const char *verb);
void ctl_client_close(struct ctl_client *c);

/* Sends a request (args consumed, may be NULL); *id is its id. 0, or -errno. */
int ctl_client_send(struct ctl_client *c, const char *cmd, cJSON *args, long long *id);

enum ctl_recv {
	CTL_RECV_OK,	  /* *rep filled (release with proto_reply_free) */
	CTL_RECV_TIMEOUT, /* nothing within the time given */
	CTL_RECV_INTR,	  /* a signal came */
	CTL_RECV_GONE,	  /* the daemon closed the connection (or it broke) */
	CTL_RECV_BAD,	  /* the daemon sent a line that is not the protocol */
};

/*
 * The next reply line, waiting at most timeout_ms (< 0: no limit). Prints
 * nothing; for GONE and BAD, ctl_client_recv_error says what happened.
 */
enum ctl_recv ctl_client_recv(struct ctl_client *c, struct proto_reply *rep, int timeout_ms);
/*
 * Prints why a receive failed ("the daemon at PATH closed the connection");
 * CTL_UNREACHABLE. For a connection that broke, a refusal the daemon wrote
 * before closing it (too many clients) is read and shown instead.
 */
int ctl_client_recv_error(struct ctl_client *c, enum ctl_recv what);

/*
 * The CTL_ exit status for an error reply, after printing
 * "taskslapsctl VERB: MESSAGE" to stderr: bad_request → CTL_USAGE; unavailable
 * with id 0 (the connection turned away: too many clients) → CTL_UNREACHABLE;
 * every other code (forbidden, not_found, conflict, unavailable, ...) →
 * CTL_FINDINGS.
 */
int ctl_client_error_status(const struct ctl_client *c, const struct proto_reply *rep);

/*
 * One request, one reply: sends cmd and waits for the reply to it
 * (timeout_ms < 0: no limit; a note goes to stderr on a terminal if it takes
 * more than a few seconds). Returns CTL_OK with *result (caller deletes), or
 * the status of the failure after printing it: CTL_UNREACHABLE for a daemon
 * that does not answer or goes away, else as ctl_client_error_status.
 */
int ctl_client_call(struct ctl_client *c, const char *cmd, cJSON *args, int timeout_ms,
		    cJSON **result);

/* ---- reading the documents --------------------------------------------- */

/* o[key] as a string, or NULL (missing, null, not a string). */
const char *ctl_json_str(const cJSON *o, const char *key);
/* o[key] as a number, or dflt. */
double ctl_json_num(const cJSON *o, const char *key, double dflt);
/* o[key] is true. */
bool ctl_json_true(const cJSON *o, const char *key);
/* "H0".."H3" → its hazard; else -1. */
int ctl_hazard_parse(const char *s);
/* The first 12 characters of a sha (or "-"), in buf. */
const char *ctl_short_sha(const char *sha, char *buf, size_t n);
/* "2024-05-01T12:00:01.123Z" → "2024-05-01 12:00:01" in buf (other text as it is). */
const char *ctl_time(const char *iso, char *buf, size_t n);
/* Writes s on one line: runs of white space become one space; cut past max bytes ("..."). */
void ctl_put_oneline(FILE *o, const char *s, size_t max);
/* Writes a bar of width cells, done of total filled ("[####----]"), to out. */
void ctl_bar(FILE *out, const struct render *r, double done, double total, int width);

/*
 * One event (a daemon's event object) as one line, like --db events prints
 * one: id, time, type (red when bad, on a terminal), plan/wave step, message.
 */
void ctl_print_event(const struct render *r, const cJSON *ev);

/* ---- status --------------------------------------------------------------- */

/* The exit status a status document means: 0 healthy or progressing, 1 otherwise. */
int ctl_status_exit(const cJSON *doc);
/* The human view of a status document (tolerates missing keys). */
void ctl_status_render(const struct render *r, const cJSON *doc);
/* The plans of a status document as a table (history without --db). */
void ctl_status_plans_table(const struct render *r, const cJSON *doc);

#endif

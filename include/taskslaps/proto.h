/*
 * The control protocol between taskslapsd and taskslapsctl: versioned JSON
 * lines over a UNIX socket.
 *
 *   request  {"v":1,"id":7,"cmd":"status","args":{...}}
 *   reply    {"v":1,"id":7,"result":{...}}
 *   error    {"v":1,"id":7,"error":{"code":"forbidden","message":"..."}}
 *   stream   {"v":1,"id":7,"event":{...}} ... then {"v":1,"id":7,"end":true}
 *
 * Commands: status, reconcile, abort, resume {plan}, accept-drift {plan},
 * events {plan?, follow?} (a stream), commands (the list, with the access
 * each needs). Only status, events and commands are open to whoever can
 * connect; every other command (reconcile, abort, resume, accept-drift, and
 * any not marked otherwise in the daemon's table) is allowed to root, the
 * daemon's own user and the configured admin group (src/daemon/control.c).
 */
#ifndef TASKSLAPS_PROTO_H
#define TASKSLAPS_PROTO_H

#define TS_PROTO_VERSION 1
/* A line longer than this is refused (a request is small; a status fits easily). */
#define TS_PROTO_MAX_LINE (4 * 1024 * 1024)
/* Where taskslapsctl looks for sockets by default: RUNDIR/<target>.sock */
#define TS_PROTO_RUNDIR "/run/taskslaps"

/* Error codes of error.code. */
#define TS_PROTO_E_BAD_REQUEST "bad_request"
#define TS_PROTO_E_VERSION "unsupported_version"
#define TS_PROTO_E_UNKNOWN_CMD "unknown_command"
#define TS_PROTO_E_FORBIDDEN "forbidden"
#define TS_PROTO_E_NOT_FOUND "not_found"
#define TS_PROTO_E_CONFLICT "conflict"
#define TS_PROTO_E_UNAVAILABLE "unavailable"

#endif

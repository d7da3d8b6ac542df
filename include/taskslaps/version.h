/* Version of taskslaps, shared by the daemon and taskslapsctl. */
#ifndef TASKSLAPS_VERSION_H
#define TASKSLAPS_VERSION_H

#define TS_VERSION "0.1.0"

#endif

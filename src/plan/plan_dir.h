/* A migrations directory: its plan files in order, and ids unique across them. */
#ifndef TS_PLAN_DIR_H
#define TS_PLAN_DIR_H

#include <stdbool.h>
#include <stddef.h>

#include "util/diag.h"

struct plan_dir {
	char **paths; /* dir/name, sorted by name in byte order */
	size_t n;
};

/* Whether a file name is a plan by its extension (.yaml, .yml, .json). */
bool plan_dir_is_plan_name(const char *name);
/* Lists dir's plan files (not recursive; hidden files skipped). Returns 0, or -1 with a diagnostic.
 */
int plan_dir_list(struct plan_dir *out, const char *dir, struct diags *d);
void plan_dir_free(struct plan_dir *pd);
/*
 * Opens path to read it as a plan: a regular file, or a symbolic link that
 * leads to one inside the directory holding the link. Anything else (a
 * link out of the directory or to nothing, a FIFO, a device, a directory)
 * is refused by name, without reading a byte of it and without blocking.
 * Returns the descriptor (the caller closes it), or -1 with a diagnostic.
 */
int plan_dir_open(const char *path, struct diags *d);

/* A set of plan ids with where each was first seen, to refuse duplicates. */
struct plan_idset;

struct plan_idset *plan_idset_new(void);
void plan_idset_free(struct plan_idset *s);
/* Adds id; if it is already there returns false and *first_file the file that has it (borrowed). */
bool plan_idset_add(struct plan_idset *s, const char *id, const char *file,
		    const char **first_file);
/* The file (value) stored with id, or NULL when id is not in the set (borrowed). */
const char *plan_idset_find(const struct plan_idset *s, const char *id);

#endif

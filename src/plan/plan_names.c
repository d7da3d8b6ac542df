/*
 * Names of the planner's values (ops, waves, hazards, locks, undo,
 * on_failure), and the forms of identifiers and type names.
 */
#include <ctype.h>
#include <string.h>

#include "plan/plan.h"
#include "plan/plan_int.h"

static const char *const wave_names[WAVE__COUNT] = { "expand", "backfill", "validate", "contract" };

static const char *const lock_names[] = {
	[LOCK_NONE] = "none",
	[LOCK_ACCESS_SHARE] = "AccessShareLock",
	[LOCK_ROW_SHARE] = "RowShareLock",
	[LOCK_ROW_EXCLUSIVE] = "RowExclusiveLock",
	[LOCK_SHARE_UPDATE_EXCLUSIVE] = "ShareUpdateExclusiveLock",
	[LOCK_SHARE] = "ShareLock",
	[LOCK_SHARE_ROW_EXCLUSIVE] = "ShareRowExclusiveLock",
	[LOCK_EXCLUSIVE] = "ExclusiveLock",
	[LOCK_ACCESS_EXCLUSIVE] = "AccessExclusiveLock",
};

/* The same modes as SQL's LOCK TABLE spells them. */
static const char *const lock_sql_names[] = {
	[LOCK_NONE] = "NONE",
	[LOCK_ACCESS_SHARE] = "ACCESS SHARE",
	[LOCK_ROW_SHARE] = "ROW SHARE",
	[LOCK_ROW_EXCLUSIVE] = "ROW EXCLUSIVE",
	[LOCK_SHARE_UPDATE_EXCLUSIVE] = "SHARE UPDATE EXCLUSIVE",
	[LOCK_SHARE] = "SHARE",
	[LOCK_SHARE_ROW_EXCLUSIVE] = "SHARE ROW EXCLUSIVE",
	[LOCK_EXCLUSIVE] = "EXCLUSIVE",
	[LOCK_ACCESS_EXCLUSIVE] = "ACCESS EXCLUSIVE",
};
const char *
plan_op_name(enum plan_op op)
{
	if (op < OP__ALL && plan_optable[op].name)
		return plan_optable[op].name;
	return "?";
}

int
plan_op_from_name(const char *name)
{
	for (int i = 0; i < OP__COUNT; i++)
		if (plan_optable[i].plannable && strcmp(plan_optable[i].name, name) == 0)
			return i;
	return -1;
}

enum plan_wave
plan_op_wave(enum plan_op op)
{
	return plan_optable[op].wave;
}

const char *
plan_wave_name(enum plan_wave w)
{
	return w < WAVE__COUNT ? wave_names[w] : "?";
}

int
plan_wave_from_name(const char *name)
{
	for (int i = 0; i < WAVE__COUNT; i++)
		if (strcmp(wave_names[i], name) == 0)
			return i;
	return -1;
}

const char *
plan_hazard_name(enum plan_hazard h)
{
	static const char *const n[] = { "H0", "H1", "H2", "H3" };
	return h <= H3 ? n[h] : "H?";
}

const char *
plan_undo_name(enum plan_undo u)
{
	static const char *const n[] = { "?", "inverse", "nothing", "irreversible" };
	return u <= UNDO_IRREVERSIBLE ? n[u] : "?";
}

const char *
plan_on_failure_name(enum plan_on_failure f)
{
	static const char *const n[] = { "stop", "rollback_wave", "rollback_plan" };
	return f <= ON_FAILURE_ROLLBACK_PLAN ? n[f] : "?";
}

const char *
plan_hazard_label(enum plan_hazard h)
{
	static const char *const n[] = { "metadata only", "additive", "touches data",
					 "blocking or destructive" };
	return h <= H3 ? n[h] : "?";
}

const char *
pg_lock_name(enum pg_lock l)
{
	return l <= LOCK_ACCESS_EXCLUSIVE ? lock_names[l] : "?";
}

int
pg_lock_from_name(const char *name)
{
	for (int i = LOCK_ACCESS_SHARE; i <= LOCK_ACCESS_EXCLUSIVE; i++) {
		const char *sqln = lock_sql_names[i];
		size_t k = 0, j = 0;

		if (strcmp(lock_names[i], name) == 0)
			return i;
		/* "ACCESS EXCLUSIVE", "access exclusive", "access_exclusive" */
		for (; name[j] && sqln[k]; j++, k++) {
			char c = name[j] == '_' ? ' ' : (char)toupper((unsigned char)name[j]);
			if (c != sqln[k])
				break;
		}
		if (!name[j] && !sqln[k])
			return i;
	}
	return -1;
}

static bool
word_ok(const char *s, size_t n)
{
	if (n == 0 || n > 63)
		return false;
	if (!(isalpha((unsigned char)s[0]) || s[0] == '_') || (unsigned char)s[0] >= 0x80)
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_') || (unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* name or schema.name, within s[0..n) */
static bool
qualified_ok(const char *s, size_t n, bool allow_schema)
{
	const char *dot = memchr(s, '.', n);

	if (!dot)
		return word_ok(s, n);
	if (!allow_schema)
		return false;
	return word_ok(s, (size_t)(dot - s)) && word_ok(dot + 1, n - (size_t)(dot - s) - 1);
}

bool
plan_ident_ok(const char *s, bool allow_schema)
{
	return qualified_ok(s, strlen(s), allow_schema);
}

bool
plan_type_ok(const char *s)
{
	const char *p = s;
	int words = 0;

	/* words: [A-Za-z_][A-Za-z0-9_]* (optionally schema.word), separated by single spaces */
	for (;;) {
		const char *w = p;
		while (isalnum((unsigned char)*p) || *p == '_' || *p == '.')
			p++;
		if (!qualified_ok(w, (size_t)(p - w), true))
			return false;
		words++;
		if (*p == ' ' && (isalpha((unsigned char)p[1]) || p[1] == '_'))
			p++;
		else
			break;
	}
	if (*p == '(') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
		if (*p == ',') {
			p++;
			if (*p == ' ')
				p++;
			if (!isdigit((unsigned char)*p))
				return false;
			while (isdigit((unsigned char)*p))
				p++;
		}
		if (*p++ != ')')
			return false;
	}
	if (p[0] == '[' && p[1] == ']')
		p += 2;
	return *p == '\0' && words > 0 && (size_t)(p - s) <= 128;
}

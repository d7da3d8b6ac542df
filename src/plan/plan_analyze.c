/*
 * What an `sql` step's statement does, derived from its parse tree: the
 * strongest lock it takes on a relation that existed before it (PostgreSQL
 * 15's lock levels, as its own AlterTableGetLockLevel and the documentation's
 * "Explicit Locking" table give them), whether it gives a table a new
 * relfilenode (a rewrite), whether it scans a table under its lock, whether
 * it must run outside a transaction block, its hazard and the findings of
 * the rules a reviewer would raise (docs in taskslaps-plan(5), RULES).
 *
 * The derivation errs upwards: where PostgreSQL's lock depends on what only
 * the database knows (the column's current type, an option's kind), the
 * stronger lock or the rewrite is assumed. A statement this file does not
 * know stays H3 under AccessExclusiveLock. The executor proves the result at
 * run time like any step's promise.
 */
#include "sql/sql_pg.h"

#include <string.h>
#include <strings.h>

#include "plan/plan.h"
#include "plan/plan_int.h"
#include "util/alloc.h"

static const struct plan_rule rules[PLAN_RULE__COUNT] = {
	[RULE_INDEX_NOT_CONCURRENT] = { "S001", "index-not-concurrent",
					"CREATE INDEX without CONCURRENTLY blocks writes for the "
					"whole build",
					"build it with CREATE INDEX CONCURRENTLY "
					"(add_index_concurrently)" },
	[RULE_CONSTRAINT_NOT_VALID] = { "S002", "constraint-without-not-valid",
					"a CHECK or FOREIGN KEY added without NOT VALID scans the "
					"table under its lock",
					"add it NOT VALID, then VALIDATE CONSTRAINT in a later wave" },
	[RULE_SET_NOT_NULL] = { "S003", "set-not-null-scan",
				"SET NOT NULL scans the table under ACCESS EXCLUSIVE unless a valid "
				"CHECK (col IS NOT NULL) proves it",
				"add CHECK (col IS NOT NULL) NOT VALID, validate it, then SET NOT "
				"NULL" },
	[RULE_VOLATILE_DEFAULT] = { "S004", "volatile-default",
				    "a column added with a volatile default rewrites the table "
				    "under ACCESS EXCLUSIVE",
				    "add the column without a default (or a constant one) and "
				    "fill it with backfill_sql" },
	[RULE_COLUMN_TYPE] = { "S005", "column-type-change",
			       "ALTER COLUMN TYPE rewrites the table and its indexes under ACCESS "
			       "EXCLUSIVE unless the types are binary-coercible",
			       "add a new column, backfill it, and switch readers over" },
	[RULE_RENAME] = { "S006", "rename",
			  "renaming a table or column breaks every reader and writer of the old "
			  "name",
			  "add the new name beside the old one (a view or a column) and move "
			  "clients first" },
	[RULE_DROP] = { "S007", "drop", "dropping a table or column destroys its data",
			"stop every reader first; drop in a contract wave" },
	[RULE_TRUNCATE] = { "S008", "truncate", "TRUNCATE empties the table under ACCESS EXCLUSIVE",
			    "delete in batches with backfill_sql, or make sure it is meant" },
	[RULE_SERIAL_COLUMN] = { "S009", "serial-or-identity-column",
				 "a serial or identity column added to an existing table "
				 "rewrites it under ACCESS EXCLUSIVE",
				 "add a nullable column, backfill it, then attach the sequence "
				 "as its default" },
	[RULE_UNIQUE_WITHOUT_INDEX] = { "S010", "unique-without-index",
					"a UNIQUE or PRIMARY KEY constraint builds its index under "
					"ACCESS EXCLUSIVE",
					"CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT "
					"... USING INDEX" },
	[RULE_DML_IN_SQL] = { "S011", "dml-in-sql-step",
			      "a plain UPDATE or DELETE changes every matching row in one "
			      "transaction, without batches or pacing",
			      "use backfill_sql, which runs in throttled batches" },
	[RULE_TABLE_REWRITE] = { "S012", "table-rewrite",
				 "the statement rewrites the table under ACCESS EXCLUSIVE "
				 "(CLUSTER, VACUUM FULL, SET LOGGED/UNLOGGED, SET TABLESPACE, "
				 "REFRESH MATERIALIZED VIEW)",
				 "run it in a maintenance window, or use a tool that rebuilds "
				 "online" },
};

const struct plan_rule *
plan_rule(enum plan_rule_id id)
{
	return id < PLAN_RULE__COUNT ? &rules[id] : NULL;
}

const char *
plan_step_allowed(const struct plan_step *s, enum plan_rule_id rule)
{
	for (size_t k = 0; k < s->nallows; k++)
		if (s->allows[k].rule == rule)
			return s->allows[k].reason;
	return NULL;
}

int
plan_rule_find(const char *s)
{
	for (int i = 0; i < PLAN_RULE__COUNT; i++)
		if (strcasecmp(s, rules[i].id) == 0 || strcmp(s, rules[i].name) == 0)
			return i;
	return -1;
}

/* The effect being derived. */
struct fx {
	struct plan_sql_effect *e;
	struct arena *a;
};

static void
lock(struct fx *f, enum pg_lock l)
{
	if (l > f->e->lock)
		f->e->lock = l;
}

/* Raises the hazard to h with its reason; the first reason of the highest hazard stays. */
static void
haz(struct fx *f, enum plan_hazard h, const char *why)
{
	if (h > f->e->hazard || !f->e->reason) {
		f->e->hazard = h > f->e->hazard ? h : f->e->hazard;
		f->e->reason = why;
	}
}

static void
rule(struct fx *f, enum plan_rule_id r)
{
	f->e->rules |= 1u << r;
}

/* Whether a list of DefElem options holds name (as PostgreSQL lower-cases it). */
static bool
has_option(const List *v, const char *name)
{
	for (int i = 0; i < list_length(v); i++) {
		const Node *o = list_nth(v, i);
		if (IsA(o, DefElem) && ((const DefElem *)o)->defname &&
		    !strcmp(((const DefElem *)o)->defname, name))
			return true;
	}
	return false;
}

/* Storage parameters whose change PostgreSQL takes under ShareUpdateExclusiveLock. */
static bool
reloptions_light(const List *v)
{
	static const char *const light[] = {
		"fillfactor",
		"parallel_workers",
		"vacuum_truncate",
		"vacuum_index_cleanup",
		"log_autovacuum_min_duration",
		"toast_tuple_target",
		"user_catalog_table",
	};

	for (int i = 0; i < list_length(v); i++) {
		const DefElem *d = list_nth(v, i);
		const char *name;
		bool ok = false;

		if (!IsA(d, DefElem))
			return false;
		name = d->defname;
		if (!name)
			return false;
		if (!strncmp(name, "autovacuum_", 11))
			ok = true;
		for (size_t k = 0; !ok && k < sizeof(light) / sizeof(*light); k++)
			ok = !strcmp(name, light[k]);
		if (!sql_str_empty(d->defnamespace) && strcmp(d->defnamespace, "toast") != 0)
			ok = false;
		if (!ok)
			return false;
	}
	return true;
}

static bool
is_serial_type(const TypeName *t)
{
	static const char *const serials[] = { "serial",  "bigserial", "smallserial",
					       "serial2", "serial4",   "serial8" };
	const char *last;

	if (!t || list_length(t->names) != 1 || !(last = sql_node_str(linitial(t->names))))
		return false;
	for (size_t i = 0; i < sizeof(serials) / sizeof(*serials); i++)
		if (!strcasecmp(last, serials[i]))
			return true;
	return false;
}

/* A constraint added with a table or a column: its lock, scan and findings. */
static void
constraint(struct fx *f, const Constraint *k, bool on_new_table)
{
	switch (k->contype) {
	case CONSTR_FOREIGN:
		lock(f, LOCK_SHARE_ROW_EXCLUSIVE); /* both tables: it adds triggers to each */
		if (!on_new_table && !k->skip_validation) {
			f->e->scans = true;
			rule(f, RULE_CONSTRAINT_NOT_VALID);
			haz(f, H3,
			    "adds a foreign key without NOT VALID: every row is checked "
			    "under the lock");
		} else {
			haz(f, H1, "adds a foreign key NOT VALID: nothing is scanned");
		}
		break;
	case CONSTR_CHECK:
		lock(f, LOCK_ACCESS_EXCLUSIVE);
		if (!on_new_table && !k->skip_validation) {
			f->e->scans = true;
			rule(f, RULE_CONSTRAINT_NOT_VALID);
			haz(f, H3,
			    "adds a CHECK without NOT VALID: the table is scanned under "
			    "ACCESS EXCLUSIVE");
		} else {
			haz(f, H1, "adds a CHECK NOT VALID: nothing is scanned");
		}
		break;
	case CONSTR_PRIMARY:
	case CONSTR_UNIQUE:
	case CONSTR_EXCLUSION:
		lock(f, LOCK_ACCESS_EXCLUSIVE);
		if (!on_new_table && sql_str_empty(k->indexname)) {
			f->e->scans = true;
			rule(f, RULE_UNIQUE_WITHOUT_INDEX);
			haz(f, H3, "builds a unique index under ACCESS EXCLUSIVE");
		} else {
			haz(f, H1, "attaches an existing unique index as a constraint");
		}
		break;
	case CONSTR_NOTNULL:
		lock(f, LOCK_ACCESS_EXCLUSIVE);
		if (!on_new_table) {
			f->e->scans = true;
			haz(f, H3, "NOT NULL is checked by a scan under ACCESS EXCLUSIVE");
		}
		break;
	case CONSTR_IDENTITY:
		lock(f, LOCK_ACCESS_EXCLUSIVE);
		if (!on_new_table) {
			f->e->rewrites = true;
			rule(f, RULE_SERIAL_COLUMN);
			haz(f, H3,
			    "an identity column is filled for every row: the table is "
			    "rewritten");
		}
		break;
	case CONSTR_GENERATED:
		lock(f, LOCK_ACCESS_EXCLUSIVE);
		if (!on_new_table) {
			f->e->rewrites = true;
			haz(f, H3,
			    "a stored generated column is computed for every row: the "
			    "table is rewritten");
		}
		break;
	case CONSTR_DEFAULT:
		if (!on_new_table && k->raw_expr) {
			if (sql_volatility(k->raw_expr, NULL, NULL) != SQL_IMMUTABLE_OR_STABLE) {
				f->e->rewrites = true;
				rule(f, RULE_VOLATILE_DEFAULT);
				haz(f, H3,
				    "the default calls a volatile or unknown function: "
				    "every row gets its own value, the table is rewritten");
			}
		}
		break;
	default: lock(f, LOCK_ACCESS_EXCLUSIVE); break;
	}
}

static void
add_column(struct fx *f, const ColumnDef *c)
{
	lock(f, LOCK_ACCESS_EXCLUSIVE);
	haz(f, H1, "adds a column: ACCESS EXCLUSIVE for an instant, no rewrite");
	if (is_serial_type(c->typeName)) {
		f->e->rewrites = true;
		rule(f, RULE_SERIAL_COLUMN);
		haz(f, H3,
		    "a serial column's default (nextval) is volatile: the table is "
		    "rewritten under ACCESS EXCLUSIVE");
	}
	if (c->raw_default) {
		if (sql_volatility(c->raw_default, NULL, NULL) != SQL_IMMUTABLE_OR_STABLE) {
			f->e->rewrites = true;
			rule(f, RULE_VOLATILE_DEFAULT);
			haz(f, H3,
			    "the default calls a volatile or unknown function: the "
			    "table is rewritten");
		}
	}
	for (int i = 0; i < list_length(c->constraints); i++)
		if (IsA(list_nth(c->constraints, i), Constraint))
			constraint(f, list_nth(c->constraints, i), false);
}

static void
alter_cmd(struct fx *f, const AlterTableCmd *c)
{
	switch (c->subtype) {
	case AT_AddColumn:
	case AT_AddColumnRecurse:
		if (c->def && IsA(c->def, ColumnDef))
			add_column(f, (const ColumnDef *)c->def);
		else
			lock(f, LOCK_ACCESS_EXCLUSIVE);
		break;
	case AT_AddConstraint:
	case AT_AddConstraintRecurse:
		if (c->def && IsA(c->def, Constraint))
			constraint(f, (const Constraint *)c->def, false);
		else
			lock(f, LOCK_ACCESS_EXCLUSIVE);
		break;
	case AT_ValidateConstraint:
	case AT_ValidateConstraintRecurse:
		lock(f, LOCK_SHARE_UPDATE_EXCLUSIVE);
		f->e->scans = true;
		haz(f, H3, "scans the whole table to validate");
		break;
	case AT_SetNotNull:
		lock(f, LOCK_ACCESS_EXCLUSIVE);
		f->e->scans = true;
		rule(f, RULE_SET_NOT_NULL);
		haz(f, H3,
		    "ACCESS EXCLUSIVE while the table is scanned (unless a valid CHECK "
		    "(col IS NOT NULL) proves it)");
		break;
	case AT_DropColumn:
	case AT_DropColumnRecurse:
		lock(f, LOCK_ACCESS_EXCLUSIVE);
		f->e->destructive = true;
		rule(f, RULE_DROP);
		haz(f, H3, "destroys data; readers of the column break");
		break;
	case AT_AlterColumnType:
		lock(f, LOCK_ACCESS_EXCLUSIVE);
		f->e->rewrites = true;
		rule(f, RULE_COLUMN_TYPE);
		haz(f, H3,
		    "changes a column's type: the table and its indexes may be rewritten "
		    "under ACCESS EXCLUSIVE");
		break;
	case AT_SetLogged:
	case AT_SetUnLogged:
	case AT_SetTableSpace:
	case AT_SetAccessMethod:
		lock(f, LOCK_ACCESS_EXCLUSIVE);
		f->e->rewrites = true;
		rule(f, RULE_TABLE_REWRITE);
		haz(f, H3, "rewrites the table under ACCESS EXCLUSIVE");
		break;
	case AT_SetStatistics:
	case AT_ClusterOn:
	case AT_DropCluster:
	case AT_SetOptions:
	case AT_ResetOptions:
	case AT_AttachPartition:
	case AT_DetachPartitionFinalize:
		lock(f, LOCK_SHARE_UPDATE_EXCLUSIVE);
		haz(f, H1, "changes a planner or maintenance setting");
		if (c->subtype == AT_AttachPartition) {
			/* the partition itself is locked harder, and checked by a scan */
			lock(f, LOCK_ACCESS_EXCLUSIVE);
			f->e->scans = true;
			haz(f, H3, "attaches a partition: its rows are checked under its lock");
		}
		break;
	case AT_SetRelOptions:
	case AT_ResetRelOptions:
		if (c->def && IsA(c->def, List) && reloptions_light((const List *)c->def)) {
			lock(f, LOCK_SHARE_UPDATE_EXCLUSIVE);
			haz(f, H1, "changes a storage parameter");
		} else {
			lock(f, LOCK_ACCESS_EXCLUSIVE);
			haz(f, H1, "changes a storage parameter under ACCESS EXCLUSIVE");
		}
		break;
	case AT_EnableTrig:
	case AT_EnableAlwaysTrig:
	case AT_EnableReplicaTrig:
	case AT_DisableTrig:
	case AT_EnableTrigAll:
	case AT_DisableTrigAll:
	case AT_EnableTrigUser:
	case AT_DisableTrigUser:
		lock(f, LOCK_SHARE_ROW_EXCLUSIVE);
		haz(f, H2, "enables or disables triggers: what writes do changes");
		break;
	case AT_DetachPartition:
		/*
		 * CONCURRENTLY spares the parent (ShareUpdateExclusiveLock) but not
		 * the partition, which is locked ACCESS EXCLUSIVE either way
		 */
		lock(f, LOCK_ACCESS_EXCLUSIVE);
		if (c->def && IsA(c->def, PartitionCmd) &&
		    ((const PartitionCmd *)c->def)->concurrent)
			f->e->nontx = true;
		haz(f, H3, "detaches a partition: its rows leave the table");
		break;
	case AT_DropConstraint:
	case AT_DropConstraintRecurse:
		lock(f, LOCK_ACCESS_EXCLUSIVE);
		haz(f, H1, "drops a constraint: ACCESS EXCLUSIVE for an instant");
		break;
	case AT_ColumnDefault:
	case AT_DropNotNull:
	case AT_ReplicaIdentity:
	case AT_EnableRowSecurity:
	case AT_DisableRowSecurity:
	case AT_ForceRowSecurity:
	case AT_NoForceRowSecurity:
	case AT_ChangeOwner:
	case AT_SetStorage:
	case AT_SetCompression:
	case AT_AlterConstraint:
	case AT_DropIdentity:
	case AT_SetIdentity:
	case AT_DropExpression:
		lock(f, LOCK_ACCESS_EXCLUSIVE);
		haz(f, H1, "changes the table's definition: ACCESS EXCLUSIVE for an instant");
		break;
	case AT_AddIdentity:
		lock(f, LOCK_ACCESS_EXCLUSIVE);
		haz(f, H1,
		    "makes an existing column an identity: ACCESS EXCLUSIVE for an "
		    "instant");
		break;
	default:
		/* PostgreSQL takes ACCESS EXCLUSIVE for every other subcommand */
		lock(f, LOCK_ACCESS_EXCLUSIVE);
		haz(f, H3, "changes the table under ACCESS EXCLUSIVE");
		break;
	}
}

static void
unknown(struct fx *f, const char *what)
{
	f->e->known = false;
	f->e->lock = LOCK_ACCESS_EXCLUSIVE;
	f->e->rewrites = true;
	f->e->hazard = H3;
	f->e->reason = arena_printf(f->a, "the planner does not know what %s does", what);
}

static bool
drop_table_like(ObjectType t)
{
	return t == OBJECT_TABLE || t == OBJECT_VIEW || t == OBJECT_MATVIEW ||
	       t == OBJECT_SEQUENCE || t == OBJECT_FOREIGN_TABLE;
}

void
plan_sql_analyze(struct arena *a, const Node *n, struct plan_sql_effect *e)
{
	struct fx f = { e, a };

	memset(e, 0, sizeof(*e));
	e->known = true;
	e->hazard = H0;
	switch (nodeTag(n)) {
	case T_AlterTableStmt: {
		const AlterTableStmt *s = (const AlterTableStmt *)n;
		for (int i = 0; i < list_length(s->cmds); i++)
			if (IsA(list_nth(s->cmds, i), AlterTableCmd))
				alter_cmd(&f, list_nth(s->cmds, i));
		if (!s->cmds)
			unknown(&f, "an empty ALTER TABLE");
		break;
	}
	case T_IndexStmt:
		if (((const IndexStmt *)n)->concurrent) {
			lock(&f, LOCK_SHARE_UPDATE_EXCLUSIVE);
			e->nontx = true;
			haz(&f, H1, "builds the index concurrently: writes go on");
		} else {
			lock(&f, LOCK_SHARE);
			e->scans = true;
			rule(&f, RULE_INDEX_NOT_CONCURRENT);
			haz(&f, H3,
			    "builds an index without CONCURRENTLY: writes wait for the "
			    "whole build");
		}
		break;
	case T_ReindexStmt: {
		const ReindexStmt *r = (const ReindexStmt *)n;
		/* either way the index gets a new relfilenode */
		e->rewrites = true;
		if (has_option(r->params, "concurrently")) {
			lock(&f, LOCK_SHARE_UPDATE_EXCLUSIVE);
			e->nontx = true;
			haz(&f, H1, "rebuilds concurrently: writes go on");
		} else {
			lock(&f, LOCK_ACCESS_EXCLUSIVE); /* on the index; SHARE on its table */
			e->scans = true;
			rule(&f, RULE_INDEX_NOT_CONCURRENT);
			haz(&f, H3,
			    "rebuilds without CONCURRENTLY: the index is locked ACCESS "
			    "EXCLUSIVE and writes wait");
		}
		if (r->kind != REINDEX_OBJECT_INDEX && r->kind != REINDEX_OBJECT_TABLE)
			e->nontx = true; /* SCHEMA, SYSTEM, DATABASE */
		break;
	}
	case T_DropStmt: {
		const DropStmt *d = (const DropStmt *)n;
		if (d->removeType == OBJECT_INDEX) {
			if (d->concurrent) {
				lock(&f, LOCK_SHARE_UPDATE_EXCLUSIVE);
				e->nontx = true;
			} else {
				lock(&f, LOCK_ACCESS_EXCLUSIVE);
			}
			haz(&f, H3, "queries that use the index slow down or change plans");
		} else if (drop_table_like(d->removeType) || d->behavior == DROP_CASCADE ||
			   d->removeType == OBJECT_SCHEMA) {
			lock(&f, LOCK_ACCESS_EXCLUSIVE);
			e->destructive = true;
			if (d->removeType == OBJECT_TABLE)
				rule(&f, RULE_DROP);
			haz(&f, H3, "destroys a relation and its data");
		} else if (d->removeType == OBJECT_TRIGGER || d->removeType == OBJECT_POLICY ||
			   d->removeType == OBJECT_RULE) {
			lock(&f, LOCK_ACCESS_EXCLUSIVE);
			haz(&f, H3, "drops what writes or reads of a table depend on");
		} else {
			/* functions, types, domains, sequences' kin: no table is locked */
			haz(&f, H3, "drops an object that others may depend on");
		}
		break;
	}
	case T_RenameStmt: {
		const RenameStmt *r = (const RenameStmt *)n;
		if (r->renameType == OBJECT_INDEX)
			lock(&f, LOCK_SHARE_UPDATE_EXCLUSIVE);
		else if (r->relation)
			lock(&f, LOCK_ACCESS_EXCLUSIVE);
		if (r->renameType == OBJECT_TABLE || r->renameType == OBJECT_COLUMN)
			rule(&f, RULE_RENAME);
		haz(&f, H3, "readers and writers of the old name break");
		break;
	}
	case T_AlterObjectSchemaStmt:
		if (((const AlterObjectSchemaStmt *)n)->relation)
			lock(&f, LOCK_ACCESS_EXCLUSIVE);
		haz(&f, H3, "moves an object to another schema: readers of the old name break");
		break;
	case T_CommentStmt:
		lock(&f, LOCK_SHARE_UPDATE_EXCLUSIVE);
		haz(&f, H0, "a comment: metadata only");
		break;
	case T_CreateTrigStmt:
		lock(&f, LOCK_SHARE_ROW_EXCLUSIVE);
		haz(&f, H2, "adds a trigger: every later write runs it");
		break;
	case T_ViewStmt:
		lock(&f,
		     ((const ViewStmt *)n)->replace ? LOCK_ACCESS_EXCLUSIVE : LOCK_ACCESS_SHARE);
		haz(&f, ((const ViewStmt *)n)->replace ? H1 : H0,
		    ((const ViewStmt *)n)->replace
			? "replaces a view: its readers wait for an instant"
			: "creates a view: metadata only");
		break;
	case T_CreateTableAsStmt:
		lock(&f, LOCK_ACCESS_SHARE);
		haz(&f, H1, "creates a table or materialized view from a query: reads its sources");
		break;
	case T_RefreshMatViewStmt:
		if (((const RefreshMatViewStmt *)n)->concurrent) {
			lock(&f, LOCK_EXCLUSIVE);
			haz(&f, H2,
			    "refreshes concurrently: readers go on, writes of the view wait");
		} else {
			lock(&f, LOCK_ACCESS_EXCLUSIVE);
			e->rewrites = true;
			rule(&f, RULE_TABLE_REWRITE);
			haz(&f, H3, "refreshes under ACCESS EXCLUSIVE: readers wait");
		}
		break;
	case T_CreateStmt: {
		const CreateStmt *c = (const CreateStmt *)n;
		bool fk = false;
		for (int i = 0; i < list_length(c->tableElts); i++) {
			const Node *el = list_nth(c->tableElts, i);
			if (IsA(el, Constraint) &&
			    ((const Constraint *)el)->contype == CONSTR_FOREIGN)
				fk = true;
			if (IsA(el, ColumnDef))
				for (int k = 0;
				     k < list_length(((const ColumnDef *)el)->constraints); k++) {
					const Node *cn =
					    list_nth(((const ColumnDef *)el)->constraints, k);
					if (IsA(cn, Constraint) &&
					    ((const Constraint *)cn)->contype == CONSTR_FOREIGN)
						fk = true;
				}
		}
		if (c->partbound || c->inhRelations) {
			lock(&f, LOCK_ACCESS_EXCLUSIVE);
			haz(&f, H3, "creates a partition or child: the parent is locked");
		} else {
			lock(&f, fk ? LOCK_SHARE_ROW_EXCLUSIVE : LOCK_ACCESS_SHARE);
			haz(&f, H1, "creates a new table: nothing existing is locked for long");
		}
		break;
	}
	case T_ClusterStmt:
		lock(&f, LOCK_ACCESS_EXCLUSIVE);
		e->rewrites = true;
		/* CLUSTER of every clustered table refuses a transaction block */
		e->nontx = !((const ClusterStmt *)n)->relation;
		rule(&f, RULE_TABLE_REWRITE);
		haz(&f, H3, "CLUSTER rewrites the table under ACCESS EXCLUSIVE");
		break;
	case T_VacuumStmt: {
		const VacuumStmt *v = (const VacuumStmt *)n;
		if (v->is_vacuumcmd && has_option(v->options, "full")) {
			lock(&f, LOCK_ACCESS_EXCLUSIVE);
			e->rewrites = true;
			e->nontx = true;
			rule(&f, RULE_TABLE_REWRITE);
			haz(&f, H3, "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE");
		} else {
			lock(&f, LOCK_SHARE_UPDATE_EXCLUSIVE);
			e->nontx = v->is_vacuumcmd;
			haz(&f, H1,
			    v->is_vacuumcmd ? "VACUUM: reads and writes go on"
					    : "ANALYZE: reads and writes go on");
		}
		break;
	}
	case T_TruncateStmt:
		lock(&f, LOCK_ACCESS_EXCLUSIVE);
		e->rewrites = true;
		e->destructive = true;
		rule(&f, RULE_TRUNCATE);
		haz(&f, H3, "TRUNCATE destroys every row under ACCESS EXCLUSIVE");
		break;
	case T_LockStmt: {
		int m = ((const LockStmt *)n)->mode;
		enum pg_lock l = m >= LOCK_ACCESS_SHARE && m <= LOCK_ACCESS_EXCLUSIVE
				     ? (enum pg_lock)m
				     : LOCK_ACCESS_EXCLUSIVE;
		lock(&f, l);
		haz(&f, l >= LOCK_SHARE ? H3 : H1,
		    l >= LOCK_SHARE ? "LOCK TABLE holds a lock that blocks writes until the step "
				      "ends"
				    : "LOCK TABLE in a mode that lets writes go on");
		break;
	}
	case T_GrantStmt: haz(&f, H1, "changes privileges: who may read or write changes"); break;
	case T_CreateEnumStmt:
	case T_DefineStmt:
	case T_CompositeTypeStmt:
	case T_CreateRangeStmt:
	case T_CreateDomainStmt:
	case T_CreateSchemaStmt:
	case T_CreateSeqStmt: haz(&f, H0, "creates a new object: metadata only"); break;
	case T_CreateFunctionStmt:
		haz(&f, ((const CreateFunctionStmt *)n)->replace ? H1 : H0,
		    ((const CreateFunctionStmt *)n)->replace
			? "replaces a function: its callers get the new body"
			: "creates a function: metadata only");
		break;
	case T_AlterFunctionStmt: haz(&f, H1, "changes a function's properties"); break;
	case T_AlterEnumStmt:
		if (!sql_str_empty(((const AlterEnumStmt *)n)->oldVal)) {
			haz(&f, H3,
			    "renames an enum value: readers and writers of the old value break");
		} else {
			/* a value added in a transaction cannot be used before it commits */
			e->nontx = true;
			haz(&f, H1, "adds an enum value: metadata only");
		}
		break;
	case T_AlterSeqStmt:
		lock(&f, LOCK_ACCESS_EXCLUSIVE); /* on the sequence */
		e->rewrites = true;		 /* RESTART and others give it a new relfilenode */
		haz(&f, H1, "changes a sequence");
		break;
	case T_CreatePolicyStmt:
	case T_AlterPolicyStmt:
		lock(&f, LOCK_ACCESS_EXCLUSIVE);
		haz(&f, H2, "changes row-level security: which rows roles see changes");
		break;
	case T_CreateStatsStmt:
		lock(&f, LOCK_SHARE_UPDATE_EXCLUSIVE);
		haz(&f, H0, "creates extended statistics: metadata only");
		break;
	case T_InsertStmt:
		lock(&f, LOCK_ROW_EXCLUSIVE);
		haz(&f, H2, "inserts rows");
		break;
	case T_UpdateStmt:
	case T_DeleteStmt:
	case T_MergeStmt:
		lock(&f, LOCK_ROW_EXCLUSIVE);
		rule(&f, RULE_DML_IN_SQL);
		haz(&f, H2, "changes rows in one transaction, without batches");
		break;
	case T_SelectStmt:
		lock(&f,
		     ((const SelectStmt *)n)->lockingClause ? LOCK_ROW_SHARE : LOCK_ACCESS_SHARE);
		haz(&f, H0, "a query: reads only");
		break;
	case T_DoStmt: unknown(&f, "a DO block"); break;
	case T_CreateExtensionStmt: unknown(&f, "CREATE EXTENSION"); break;
	default: unknown(&f, arena_printf(a, "this statement (%s)", sql_stmt_name(n))); break;
	}
	/* a data-modifying function call anywhere is a side effect the tree does not show */
	if (e->known && IsA(n, SelectStmt) &&
	    sql_volatility(n, NULL, NULL) != SQL_IMMUTABLE_OR_STABLE)
		unknown(&f, "a query that calls a volatile or unknown function");
	if (!e->reason)
		e->reason = "metadata only";
}

#!/usr/bin/env python3
# Generates taskslaps-plan.schema.json (beside this file) from the op table
# below, which mirrors the op table of src/plan/plan_ops.c (plan_optable: fields
# and waves). When an op or a field changes there, change it here and run
#   python3 examples/schema/gen.py > examples/schema/taskslaps-plan.schema.json
# tests/integration/test_schema_json.sh fails when the two differ.
#
# The patterns avoid inline regex flags so JavaScript validators (editors)
# accept them: case-insensitive words are spelt [Uu][Pp]... .
import json, collections

def ci(word):
    out = []
    for ch in word:
        if ch.isalpha():
            out.append('[%s%s]' % (ch.upper(), ch.lower()))
        elif ch == ' ':
            out.append('[ _]')
        else:
            out.append(ch)
    return ''.join(out)

IDENT = '[A-Za-z_][A-Za-z0-9_]{0,62}'
QIDENT = IDENT + '(?:\\.' + IDENT + ')?'
SKIP = '(?:\\s|--[^\\n]*(?:\\n|$)|/\\*[\\s\\S]*?\\*/)'

defs = collections.OrderedDict()

def D(name, d):
    defs[name] = d

D('ident', {
    'description': 'A plain SQL identifier: [A-Za-z_][A-Za-z0-9_]*, at most 63 bytes. '
                   'It reaches SQL double-quoted, so it is case-sensitive.',
    'type': 'string', 'pattern': '^' + IDENT + '$'})
D('qident', {
    'description': 'A plain SQL identifier, optionally schema-qualified (schema.name); '
                   'each part [A-Za-z_][A-Za-z0-9_]*, at most 63 bytes.',
    'type': 'string', 'pattern': '^' + QIDENT + '$'})
D('idents', {
    'description': 'A non-empty list of distinct column names.',
    'type': 'array', 'minItems': 1, 'uniqueItems': True,
    'items': {'$ref': '#/definitions/ident'}})
D('type', {
    'description': 'A plain type name: words (each optionally schema.word) separated by single '
                   'spaces, then optionally (n) or (n,m), then optionally []. No quotes, '
                   'semicolons or comments. At most 128 characters. Examples: text, '
                   'numeric(5,2), double precision, character varying(20), int[].',
    'type': 'string', 'maxLength': 128,
    'pattern': '^' + QIDENT + '(?: ' + QIDENT + ')*(?:\\([0-9]+(?:, ?[0-9]+)?\\))?(?:\\[\\])?$'})
D('expr', {
    'description': 'An SQL boolean expression: one expression, no semicolon outside quotes, '
                   'balanced parentheses, closed quotes and comments.',
    'type': 'string', 'pattern': '\\S'})
D('checks', {
    'description': 'SQL boolean expressions, each run as SELECT (expr)::boolean; added after '
                   'the computed checks.',
    'type': 'array', 'items': {'$ref': '#/definitions/expr'}})
D('const', {
    'description': 'A constant: a string, number, boolean or null (so adding the column does '
                   'not rewrite the table).',
    'type': ['string', 'number', 'boolean', 'null']})
D('limits', {
    'description': 'Limits for a wave or a step; a step\'s override its wave\'s, which override '
                   'the mode\'s defaults.',
    'type': 'object', 'additionalProperties': False,
    'properties': collections.OrderedDict([
        ('max_lock_ms', {'description': 'lock_timeout of the step, in ms (1 .. 86400000).',
                         'type': 'integer', 'minimum': 1, 'maximum': 86400000}),
        ('max_stmt_ms', {'description': 'statement_timeout, in ms; 0 means none (0 .. 86400000).',
                         'type': 'integer', 'minimum': 0, 'maximum': 86400000}),
        ('rows_per_second', {'description': 'backfill pace; 0 means unthrottled (0 .. 1000000000).',
                             'type': 'integer', 'minimum': 0, 'maximum': 1000000000}),
        ('batch_size', {'description': 'rows per backfill batch (1 .. 1000000).',
                        'type': 'integer', 'minimum': 1, 'maximum': 1000000}),
    ])})
locks_pg = ['AccessShareLock', 'RowShareLock', 'RowExclusiveLock', 'ShareUpdateExclusiveLock',
            'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock']
locks_sql = ['ACCESS SHARE', 'ROW SHARE', 'ROW EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE', 'SHARE',
             'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE']
D('lock', {
    'description': 'A PostgreSQL table lock mode, as pg_locks names it (AccessShareLock ... '
                   'AccessExclusiveLock) or as LOCK TABLE spells it (ACCESS SHARE ... ACCESS '
                   'EXCLUSIVE, any case, _ for a space).',
    'type': 'string',
    'pattern': '^(?:' + '|'.join(locks_pg + [ci(x) for x in locks_sql]) + ')$'})
acts = ['NO ACTION', 'RESTRICT', 'CASCADE', 'SET NULL', 'SET DEFAULT']
D('on_delete', {
    'description': 'ON DELETE action (any case): NO ACTION (the default), RESTRICT, CASCADE, '
                   'SET NULL or SET DEFAULT.',
    'type': 'string',
    'pattern': '^(?:' + '|'.join(ci(a).replace('[ _]', ' ') for a in acts) + ')$'})
D('wave_name', {'type': 'string', 'enum': ['expand', 'backfill', 'validate', 'contract']})
D('column', {
    'description': 'A column of create_table.',
    'type': 'object', 'required': ['name', 'type'], 'additionalProperties': False,
    'properties': collections.OrderedDict([
        ('name', {'$ref': '#/definitions/ident'}),
        ('type', {'$ref': '#/definitions/type'}),
        ('nullable', {'description': 'default true', 'type': 'boolean'}),
        ('default', {'$ref': '#/definitions/const'}),
        ('default_sql', {'description': 'an SQL expression for the default (excludes default); '
                         'a volatile or unknown function makes the step H3',
                         '$ref': '#/definitions/expr'}),
    ])})

tx_words = ['BEGIN', 'COMMIT', 'ROLLBACK', 'START', 'END', 'SAVEPOINT', 'RELEASE', 'ABORT',
            'PREPARE TRANSACTION', 'ALTER SYSTEM', 'SET', 'RESET', 'DISCARD', 'CREATE DATABASE', 'DROP DATABASE',
            'CREATE TABLESPACE', 'DROP TABLESPACE']

def ci_words(w):
    return ci(w).replace('[ _]', SKIP + '+')

query_re = '^' + SKIP + '*(?:' + '|'.join(ci(w) for w in ['SELECT', 'WITH', 'VALUES', 'TABLE']) + ')(?![A-Za-z0-9_])'
update_re = ('^' + SKIP + '*' + ci('UPDATE') + SKIP + '+' + QIDENT + SKIP + '+' + ci('SET') +
             '(?![A-Za-z0-9_"])')
stmt_not = ('^' + SKIP + '*(?:' + '|'.join(ci_words(w) for w in tx_words) + ')(?![A-Za-z0-9_])')

common = collections.OrderedDict([
    ('prechecks', {'$ref': '#/definitions/checks'}),
    ('postchecks', {'$ref': '#/definitions/checks'}),
    ('limits', {'$ref': '#/definitions/limits'}),
    ('allow', {'description': 'Findings of the SQL analysis silenced on this step, each with '
                              'its reason (shown by lint as a note, never hidden).',
               'type': 'array', 'minItems': 1,
               'items': {'type': 'object', 'additionalProperties': False,
                         'required': ['rule', 'reason'],
                         'properties': {
                             'rule': {'description': 'A rule id (S001 ...) or name '
                                                     '(index-not-concurrent ...)',
                                      'type': 'string', 'pattern': '\\S'},
                             'reason': {'type': 'string', 'minLength': 1}}}}),
])

OPS = collections.OrderedDict()
def op(name, wave, hazard, desc, fields, required):
    OPS[name] = (wave, hazard, desc, fields, required)

op('create_view', 'expand', 'H0', 'CREATE VIEW name AS sql. H0, expand wave.',
   [('name', {'$ref': '#/definitions/qident'}),
    ('sql', {'description': 'The view\'s query: SELECT, WITH, VALUES or TABLE.',
             'type': 'string', 'pattern': query_re})], ['name', 'sql'])
op('create_table', 'expand', 'H1', 'CREATE TABLE table (columns..., PRIMARY KEY (primary_key)). H1, expand wave.',
   [('table', {'$ref': '#/definitions/qident'}),
    ('columns', {'type': 'array', 'minItems': 1, 'items': {'$ref': '#/definitions/column'}}),
    ('primary_key', {'$ref': '#/definitions/idents'})], ['table', 'columns'])
op('add_column', 'expand', 'H1', 'ALTER TABLE table ADD COLUMN name type [NOT NULL] [DEFAULT default]. '
   'H1; H2 when nullable is false; H3 for a serial type. Expand wave.',
   [('table', {'$ref': '#/definitions/qident'}),
    ('name', {'$ref': '#/definitions/ident'}),
    ('type', {'$ref': '#/definitions/type'}),
    ('nullable', {'description': 'default true', 'type': 'boolean'}),
    ('default', {'$ref': '#/definitions/const'}),
    ('default_sql', {'description': 'an SQL expression for the default (excludes default); '
                     'a volatile or unknown function makes the step H3',
                     '$ref': '#/definitions/expr'})], ['table', 'name', 'type'])
op('add_index_concurrently', 'expand', 'H1', 'CREATE [UNIQUE] INDEX CONCURRENTLY name ON table (columns) [WHERE (where)], '
   'outside a transaction. H1, expand wave.',
   [('table', {'$ref': '#/definitions/qident'}),
    ('name', {'$ref': '#/definitions/ident'}),
    ('columns', {'$ref': '#/definitions/idents'}),
    ('unique', {'description': 'default false', 'type': 'boolean'}),
    ('where', {'$ref': '#/definitions/expr'})], ['table', 'name', 'columns'])
op('add_foreign_key_not_valid', 'expand', 'H1', 'ALTER TABLE table ADD CONSTRAINT name FOREIGN KEY (columns) '
   'REFERENCES ref_table (ref_columns) [ON DELETE on_delete] NOT VALID. H1, expand wave.',
   [('table', {'$ref': '#/definitions/qident'}),
    ('name', {'$ref': '#/definitions/ident'}),
    ('columns', {'$ref': '#/definitions/idents'}),
    ('ref_table', {'$ref': '#/definitions/qident'}),
    ('ref_columns', {'$ref': '#/definitions/idents'}),
    ('on_delete', {'$ref': '#/definitions/on_delete'})],
   ['table', 'name', 'columns', 'ref_table', 'ref_columns'])
op('add_check_not_valid', 'expand', 'H1', 'ALTER TABLE table ADD CONSTRAINT name CHECK (check) NOT VALID. H1, expand wave.',
   [('table', {'$ref': '#/definitions/qident'}),
    ('name', {'$ref': '#/definitions/ident'}),
    ('check', {'$ref': '#/definitions/expr'})], ['table', 'name', 'check'])
op('backfill_sql', 'backfill', 'H2', 'One UPDATE table SET ... [WHERE ...], run in keyset batches over the '
   'primary key, paced. No FROM, no RETURNING, no alias. H2, backfill wave.',
   [('sql', {'description': 'UPDATE table SET ... [WHERE ...]', 'type': 'string',
             'pattern': update_re}),
    ('revert_sql', {'description': 'The step\'s inverse: an UPDATE of the same form, run in '
                                   'batches like sql. Without it the data the backfill wrote '
                                   'stays when the plan is undone.',
                    'type': 'string', 'pattern': update_re})], ['sql'])
op('validate_constraint', 'validate', 'H3', 'ALTER TABLE table VALIDATE CONSTRAINT name. H3, validate wave.',
   [('table', {'$ref': '#/definitions/qident'}),
    ('name', {'$ref': '#/definitions/ident'})], ['table', 'name'])
op('set_not_null', 'validate', 'H3', 'ALTER TABLE table ALTER COLUMN column SET NOT NULL. H3, validate wave.',
   [('table', {'$ref': '#/definitions/qident'}),
    ('column', {'$ref': '#/definitions/ident'})], ['table', 'column'])
op('drop_column', 'contract', 'H3', 'ALTER TABLE table DROP COLUMN name. H3, contract wave.',
   [('table', {'$ref': '#/definitions/qident'}),
    ('name', {'$ref': '#/definitions/ident'})], ['table', 'name'])
op('drop_index_concurrently', 'contract', 'H3', 'DROP INDEX CONCURRENTLY name, outside a transaction. H3, contract wave.',
   [('name', {'$ref': '#/definitions/qident'})], ['name'])
op('drop_table', 'contract', 'H3', 'DROP TABLE table. H3, contract wave.',
   [('table', {'$ref': '#/definitions/qident'})], ['table'])
op('rename_column', 'contract', 'H3', 'ALTER TABLE table RENAME COLUMN from TO to. H3, contract wave.',
   [('table', {'$ref': '#/definitions/qident'}),
    ('from', {'$ref': '#/definitions/ident'}),
    ('to', {'$ref': '#/definitions/ident'})], ['table', 'from', 'to'])
op('rename_table', 'contract', 'H3', 'ALTER TABLE from RENAME TO to (to stays in from\'s schema). H3, contract wave.',
   [('from', {'$ref': '#/definitions/qident'}),
    ('to', {'$ref': '#/definitions/ident'})], ['from', 'to'])
op('sql', None, 'H3', 'One SQL statement, read by PostgreSQL\'s parser: its lock, rewrite, '
   'transaction mode and hazard are derived from the parse tree (a statement the planner '
   'does not know is H3 under AccessExclusiveLock). '
   'In a flat steps: list it goes to its wave: field, else contract.',
   [('sql', {'description': 'One statement; no transaction control, SET/RESET/DISCARD, '
                            'CREATE/DROP DATABASE or TABLESPACE, or ALTER SYSTEM. '
                            'CONCURRENTLY and VACUUM run outside a transaction.',
             'type': 'string', 'pattern': '\\S', 'not': {'pattern': stmt_not}}),
    ('lock_class_max', {'$ref': '#/definitions/lock'}),
    ('may_rewrite', {'description': 'A promise: false refuses a statement that may rewrite a '
                                    'table (default: what the parse tree says)',
                     'type': 'boolean'}),
    ('wave', {'description': 'The wave of the step in a flat steps: list (default contract); '
                             'inside waves: it must name the enclosing wave.',
              '$ref': '#/definitions/wave_name'}),
    ('revert_sql', {'description': 'The step\'s inverse: one statement that undoes it, read '
                                   'and analysed like sql. Without it the step is '
                                   'irreversible.',
                    'type': 'string', 'pattern': '\\S', 'not': {'pattern': stmt_not}})], ['sql'])

for name, (wave, hazard, desc, fields, required) in OPS.items():
    props = collections.OrderedDict([('op', {'const': name})])
    for k, v in fields:
        props[k] = v
    props.update(common)
    D('op_' + name, collections.OrderedDict([
        ('description', desc),
        ('type', 'object'),
        ('required', ['op'] + required),
        ('additionalProperties', False),
        ('properties', props)]))

D('step', collections.OrderedDict([
    ('description', 'One step: an op and its fields, plus optional prechecks, postchecks and limits.'),
    ('type', 'object'),
    ('required', ['op']),
    ('properties', {'op': {'description': 'What the step does.', 'type': 'string',
                           'enum': list(OPS.keys())}}),
    ('allOf', [{'if': {'properties': {'op': {'const': n}}, 'required': ['op']},
                'then': {'$ref': '#/definitions/op_' + n}} for n in OPS])]))

wave_checks = []
for w in ['expand', 'backfill', 'validate', 'contract']:
    ops = [n for n, v in OPS.items() if v[0] == w] + ['sql']
    wave_checks.append({
        'if': {'properties': {'name': {'const': w}}, 'required': ['name']},
        'then': {'properties': {'steps': {'items': {
            'properties': {'op': {'enum': ops}, 'wave': {'const': w}}}}}}})
D('wave', collections.OrderedDict([
    ('description', 'A wave: its name, optional limits, and its steps. Waves run in the order '
                    'expand, backfill, validate, contract; each at most once, in that order '
                    '(checked by taskslapsctl lint, not by this schema).'),
    ('type', 'object'),
    ('required', ['name', 'steps']),
    ('additionalProperties', False),
    ('properties', collections.OrderedDict([
        ('name', {'$ref': '#/definitions/wave_name'}),
        ('limits', {'$ref': '#/definitions/limits'}),
        ('steps', {'type': 'array', 'minItems': 1, 'items': {'$ref': '#/definitions/step'}})])),
    ('allOf', wave_checks)]))

schema = collections.OrderedDict([
    ('$schema', 'http://json-schema.org/draft-07/schema#'),
    ('$id', 'https://taskslaps.invalid/schema/taskslaps-plan.schema.json'),
    ('title', 'taskslaps migration plan'),
    ('description', 'A taskslaps plan (taskslaps-plan(5)), YAML or JSON. The schema checks '
                    'shapes, names and limits; taskslapsctl lint checks the rest (wave order, '
                    'duplicates, SQL fragments, primary_key columns, ref_columns count).'),
    ('type', 'object'),
    ('required', ['title', 'reason']),
    ('additionalProperties', False),
    ('properties', collections.OrderedDict([
        ('id', {'description': 'Plan id (default: the file name without its extension): letters, '
                               'digits, ".", "_" or "-", starting with a letter or digit, at most 128.',
                'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'}),
        ('title', {'description': 'What the change is.', 'type': 'string', 'minLength': 1}),
        ('reason', {'description': 'Why the change exists, for the audit. Visible to every '
                                   'LISTENer of the database: no secrets.',
                    'type': 'string', 'minLength': 1}),
        ('on_failure', {'description': 'What happens when a step fails: stop (the default), '
                                       'rollback_wave (undo the failing wave\'s completed steps) '
                                       'or rollback_plan (undo every completed step). lint '
                                       'refuses a rollback that may meet an irreversible step.',
                        'enum': ['stop', 'rollback_wave', 'rollback_plan']}),
        ('waves', {'description': 'The plan as waves (or use a flat steps: list).',
                   'type': 'array', 'minItems': 1, 'maxItems': 4,
                   'items': {'$ref': '#/definitions/wave'}}),
        ('steps', {'description': 'The plan as a flat list; each step goes to its op\'s wave, '
                                  'in the written order.',
                   'type': 'array', 'minItems': 1, 'items': {'$ref': '#/definitions/step'}}),
        ('revert', {'description': 'A revert plan: the id of the plan it undoes (an earlier '
                                   'file of the directory, kept unchanged). Its steps are that '
                                   'plan\'s inverses, last first; it has no waves, steps or '
                                   'on_failure, and is H3.',
                    'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'}),
        ('to_wave', {'description': 'In a revert plan: keep the waves up to and including this '
                                    'one, undo the later ones (default: undo the whole plan).',
                     '$ref': '#/definitions/wave_name'}),
    ])),
    ('oneOf', [{'required': ['waves']}, {'required': ['steps']}, {'required': ['revert']}]),
    ('dependencies', {'to_wave': ['revert']}),
    ('if', {'required': ['revert']}),
    ('then', {'not': {'required': ['on_failure']}}),
    ('definitions', defs),
])
print(json.dumps(schema, indent=2))

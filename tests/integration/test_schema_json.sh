#!/usr/bin/env bash
# The JSON Schema of the plan DSL (examples/schema/taskslaps-plan.schema.json)
# against the examples: every plan in examples/plans/ is valid, and the broken
# plans whose faults the schema can see (an unknown op, a bad identifier, a
# missing reason, a type with SQL in it, a string for a boolean, ...) are not.
# Also checks that the schema is itself a valid draft-07 schema, and a few
# hand-written cases (both forms, ops in the wrong wave, limits out of range).
#
# YAML is read as YAML 1.2 core, as taskslaps reads it (only true/false are
# booleans, no timestamps, decimal integers), with python3-yaml; validation
# uses python3-jsonschema (Debian packages; scripts/deps.sh installs them).
#
#   bash tests/integration/test_schema_json.sh      (TS_VERBOSE=1 prints passes)

set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${TS_SRC_DIR:-$(cd "$here/../.." && pwd)}
schema=$src/examples/schema/taskslaps-plan.schema.json

# Debian's modules live with Debian's interpreter; prefer it over others on PATH.
py=
for cand in /usr/bin/python3 python3; do
    if command -v "$cand" >/dev/null 2>&1 &&
        "$cand" -c 'import yaml, jsonschema' >/dev/null 2>&1; then
        py=$cand
        break
    fi
done
if [ -z "$py" ]; then
    echo "test_schema_json: needs python3 with the yaml and jsonschema modules" \
        "(apt-get install python3-yaml python3-jsonschema)" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# validate.py SCHEMA FILE...: one line per file, "valid FILE", "invalid FILE: why"
# or "unreadable FILE: why" (the YAML or JSON does not parse).
cat >"$tmp/validate.py" <<'EOF'
import json, re, sys
import yaml, jsonschema

class Loader(yaml.SafeLoader):
    """YAML 1.2 core schema for plain scalars, as src/plan/doc_yaml.c reads them."""

Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v
        if tag not in ('tag:yaml.org,2002:bool', 'tag:yaml.org,2002:int',
                       'tag:yaml.org,2002:float', 'tag:yaml.org,2002:null',
                       'tag:yaml.org,2002:timestamp')]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Loader.add_implicit_resolver('tag:yaml.org,2002:null',
    re.compile(r'^(?:~|null|Null|NULL|)$'), list('~nN') + [''])
Loader.add_implicit_resolver('tag:yaml.org,2002:bool',
    re.compile(r'^(?:true|True|TRUE|false|False|FALSE)$'), list('tTfF'))
Loader.add_implicit_resolver('tag:yaml.org,2002:int',
    re.compile(r'^[-+]?[0-9]+$'), list('-+0123456789'))
Loader.add_implicit_resolver('tag:yaml.org,2002:float',
    re.compile(r'^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$'),
    list('-+.0123456789'))
Loader.add_constructor('tag:yaml.org,2002:int',
    lambda loader, node: int(loader.construct_scalar(node), 10))
Loader.add_constructor('tag:yaml.org,2002:float',
    lambda loader, node: float(loader.construct_scalar(node)))
Loader.add_constructor('tag:yaml.org,2002:bool',
    lambda loader, node: loader.construct_scalar(node) in ('true', 'True', 'TRUE'))

schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
for path in sys.argv[2:]:
    try:
        with open(path, encoding='utf-8') as f:
            doc = json.load(f) if path.endswith('.json') else yaml.load(f, Loader=Loader)
    except Exception as e:
        print('unreadable %s: %s' % (path, str(e).replace('\n', ' ')))
        continue
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = '/'.join(str(p) for p in e.absolute_path) or '(root)'
        print('invalid %s: %s: %s' % (path, where, e.message[:300].replace('\n', ' ')))
    else:
        print('valid %s' % path)
EOF

passed=0
failed=0
pass() {
    passed=$((passed + 1))
    [ -z "${TS_VERBOSE:-}" ] || printf 'ok   %s\n' "$1"
}
fail() {
    failed=$((failed + 1))
    printf 'FAIL %s\n' "$1"
    [ $# -lt 2 ] || printf '     %s\n' "${@:2}"
}

# result FILE: the validator's verdict line for one file.
result() {
    "$py" "$tmp/validate.py" "$schema" "$1" 2>&1
}

# --- the schema itself ----------------------------------------------------
if out=$("$py" "$tmp/validate.py" "$schema" 2>&1); then
    pass "the schema is a valid draft-07 JSON Schema"
else
    fail "the schema is a valid draft-07 JSON Schema" "$out"
fi

# --- the schema against the code ------------------------------------------
# gen.py makes the schema; the file must be what it makes.
if "$py" "$src/examples/schema/gen.py" | cmp -s - "$schema"; then
    pass "taskslaps-plan.schema.json is what examples/schema/gen.py generates"
else
    fail "taskslaps-plan.schema.json is what examples/schema/gen.py generates" \
        "run: python3 examples/schema/gen.py > examples/schema/taskslaps-plan.schema.json"
fi
# Every op a plan may name in the op table (plan_optable, src/plan/plan_ops.c),
# with exactly the fields (and required fields) of its entry.
cat >"$tmp/ops.py" <<'EOF'
import json, re, sys
src, schema = sys.argv[1], json.load(open(sys.argv[2]))
ops_c = open(src + '/src/plan/plan_ops.c').read()
block = ops_c[ops_c.index('plan_optable[OP__ALL] = {'):]
block = block[:block.index('\n};')]
names, specs = [], {}
for op, body in re.findall(r'\[(OP_[A-Z_]+)\] = \{(.*?)\n\t\},', block, re.S):
    if '.plannable = true' not in body:
        continue
    name = re.search(r'\.name = "([a-z_]+)"', body).group(1)
    names.append(name)
    specs[name] = [(f, 'true' if k == 'REQ' else 'false')
                   for k, f in re.findall(r'\b(REQ|OPT)\("([a-z_]+)"', body)]
    specs[name] += [('revert_sql', 'false')] * body.count('REVERT(')
enum = schema['definitions']['step']['properties']['op']['enum']
bad = 0
if sorted(enum) != sorted(names):
    print('op enum %s != plan_optable %s' % (sorted(enum), sorted(names))); bad = 1
for op, fields in specs.items():
    d = schema['definitions'].get('op_' + op)
    if d is None:
        print('no definition op_%s' % op); bad = 1; continue
    props = set(d['properties']) - {'op', 'prechecks', 'postchecks', 'limits', 'allow'}
    if props != {f for f, _ in fields}:
        print('%s: schema fields %s, plan_optable %s' % (op, sorted(props), sorted(f for f, _ in fields))); bad = 1
    req = set(d['required']) - {'op'}
    if req != {f for f, r in fields if r == 'true'}:
        print('%s: schema requires %s, plan_optable %s' % (op, sorted(req),
              sorted(f for f, r in fields if r == 'true'))); bad = 1
plan_h = open(src + '/src/plan/plan.h').read()
plan_h = plan_h[plan_h.index('enum plan_op {'):plan_h.index('OP__COUNT')]
nops = len(re.findall(r'\bOP_[A-Z_]+,', plan_h))
if len(names) != nops or len(set(names)) != len(names):
    print('plan_optable: %d plannable ops read, enum plan_op has %d' % (len(names), nops)); bad = 1
sys.exit(bad)
EOF
if out=$("$py" "$tmp/ops.py" "$src" "$schema" 2>&1); then
    pass "the schema has every op of plan_optable with its fields"
else
    fail "the schema has every op of plan_optable with its fields" "$out"
fi

# --- every example plan is valid -------------------------------------------
n=0
for f in "$src"/examples/plans/*.yaml "$src"/examples/plans/*.yml "$src"/examples/plans/*.json; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    line=$(result "$f")
    case "$line" in
    "valid "*) pass "valid: ${f#"$src"/}" ;;
    *) fail "valid: ${f#"$src"/}" "$line" ;;
    esac
done
if [ "$n" -gt 0 ]; then pass "examples/plans has plans ($n)"; else fail "examples/plans has plans"; fi

# --- broken plans ----------------------------------------------------------
# Faults the schema can see; the others (wave order, a FROM in a backfill, two
# statements) only the planner finds, so those files may pass the schema.
schema_visible=(0020-typo-in-op.yaml 0023-no-reason.yaml)
rejected=0
for f in "$src"/examples/plans-broken/*; do
    [ -f "$f" ] || continue
    base=${f##*/}
    line=$(result "$f")
    visible=0
    for v in "${schema_visible[@]}"; do [ "$v" = "$base" ] && visible=1; done
    case "$line" in
    "invalid "* | "unreadable "*) rejected=$((rejected + 1)) ;;
    esac
    if [ "$visible" = 1 ]; then
        case "$line" in
        "invalid "*) pass "rejected: plans-broken/$base" ;;
        *) fail "rejected: plans-broken/$base" "$line" ;;
        esac
    else
        [ -z "${TS_VERBOSE:-}" ] || printf 'info %s\n' "$line"
    fi
done
if [ "$rejected" -gt 0 ]; then
    pass "at least one broken plan is rejected ($rejected)"
else
    fail "at least one broken plan is rejected"
fi

# --- hand-written cases ----------------------------------------------------
# The schema and the planner must agree on each: when taskslapsctl is there
# (ctest sets TASKSLAPSCTL), `plan` must accept the valid ones (exit 0) and
# refuse the invalid ones (exit 2).
ctl=${TASKSLAPSCTL:-$src/build/release/taskslapsctl}
[ -x "$ctl" ] || ctl=

# case_ NAME EXPECT(valid|invalid) CONTENT: writes NAME into tmp and checks.
case_() {
    local name=$1 expect=$2 content=$3 line rc
    printf '%s\n' "$content" >"$tmp/$name"
    line=$(result "$tmp/$name")
    case "$line" in
    "$expect "*) pass "$expect: $name" ;;
    *) fail "$expect: $name" "$line" ;;
    esac
    [ -n "$ctl" ] || return 0
    "$ctl" plan "$tmp/$name" >/dev/null 2>&1
    rc=$?
    if { [ "$expect" = valid ] && [ "$rc" -eq 0 ]; } ||
        { [ "$expect" = invalid ] && [ "$rc" -eq 2 ]; }; then
        pass "the planner agrees: $name"
    else
        fail "the planner agrees: $name" "taskslapsctl plan exited $rc"
    fi
}
head='title: t
reason: r'
case_ flat.yaml valid "$head
steps:
  - { op: add_column, table: s.t, name: c, type: character varying(20), nullable: false, default: x }
  - { op: sql, sql: 'SELECT 1', wave: expand, lock_class_max: access_share }
  - { op: rename_table, from: a.t, to: u }"
case_ waves.json valid '{"title":"t","reason":"r","waves":[
  {"name":"expand","steps":[{"op":"create_table","table":"k","columns":[{"name":"id","type":"bigint","nullable":false}],"primary_key":["id"]}]},
  {"name":"backfill","limits":{"rows_per_second":0,"batch_size":10},
   "steps":[{"op":"backfill_sql","sql":"UPDATE k SET id = id WHERE id > 0"}]}]}'
case_ both.yaml invalid "$head
steps: [{ op: drop_table, table: t }]
waves: [{ name: contract, steps: [{ op: drop_table, table: t }] }]"
case_ neither.yaml invalid "$head"
case_ revert-with-steps.yaml invalid "$head
revert: p1
steps: [{ op: drop_table, table: t }]"
case_ revert-on-failure.yaml invalid "$head
revert: p1
on_failure: rollback_plan"
case_ to-wave-alone.yaml invalid "$head
to_wave: expand
steps: [{ op: drop_table, table: t }]"
case_ revert-bad-wave.yaml invalid "$head
revert: p1
to_wave: middle"
case_ wrong-wave.yaml invalid "$head
waves: [{ name: expand, steps: [{ op: drop_table, table: t }] }]"
case_ sql-wave-mismatch.yaml invalid "$head
waves: [{ name: expand, steps: [{ op: sql, sql: 'SELECT 1', wave: contract }] }]"
case_ unknown-field.yaml invalid "$head
steps: [{ op: drop_table, table: t, cascade: true }]"
case_ missing-field.yaml invalid "$head
steps: [{ op: add_column, table: t, name: c }]"
case_ limits-range.yaml invalid "$head
steps: [{ op: drop_table, table: t, limits: { max_lock_ms: 0 } }]"
case_ yaml11-bool.yaml invalid "$head
steps: [{ op: add_column, table: t, name: c, type: int, nullable: yes }]"
case_ long-ident.yaml invalid "$head
steps: [{ op: drop_table, table: a234567890123456789012345678901234567890123456789012345678901234 }]"
case_ tx-control.yaml invalid "$head
steps: [{ op: sql, sql: 'COMMIT' }]"
case_ concurrently.yaml valid "$head
steps: [{ op: sql, sql: 'REINDEX INDEX CONCURRENTLY i' }]"
case_ allow.yaml valid "$head
steps: [{ op: sql, sql: 'TRUNCATE t', allow: [{ rule: S008, reason: refilled nightly }] }]"
case_ allow-no-reason.yaml invalid "$head
steps: [{ op: sql, sql: 'TRUNCATE t', allow: [{ rule: S008 }] }]"
case_ view-not-query.yaml invalid "$head
steps: [{ op: create_view, name: v, sql: 'DELETE FROM t' }]"
case_ backfill-alias.yaml invalid "$head
steps: [{ op: backfill_sql, sql: 'UPDATE t AS x SET a = 1' }]"
case_ on-delete.yaml valid "$head
steps: [{ op: add_foreign_key_not_valid, table: t, name: f, columns: [a], ref_table: u, ref_columns: [b], on_delete: set null }]"
case_ bad-id.yaml invalid "id: -x
$head
steps: [{ op: drop_table, table: t }]"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Integration test: an operator's verb (resume, accept-drift) writes the
# plan's row and the event that names it in one transaction. When the event
# cannot be written (here a trigger refuses it, as a role that may write the
# row but not the event would), the verb fails and the row is as it was:
# a kept view that reads again only the plans events name (the daemon's)
# can never miss the change.
#
#   bash tests/integration/test_apply_verbs.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

# refuse MESSAGE-PATTERN: events whose message matches cannot be inserted.
refuse() {
	q "SET client_min_messages = warning;
	   CREATE OR REPLACE FUNCTION public.refuse_event() RETURNS trigger LANGUAGE plpgsql AS \$\$
	   BEGIN RAISE EXCEPTION 'test: this event is refused'; END \$\$;
	   DROP TRIGGER IF EXISTS refuse_event ON taskslaps.events;
	   CREATE TRIGGER refuse_event BEFORE INSERT ON taskslaps.events FOR EACH ROW
	     WHEN (NEW.message LIKE '$1') EXECUTE FUNCTION public.refuse_event();" >/dev/null
}
allow() { q "DROP TRIGGER refuse_event ON taskslaps.events" >/dev/null; }

###########################################################################
section "resume: the row and its event, or neither"
newdb resume
q "CREATE TABLE t (id int PRIMARY KEY)" >/dev/null
plan "$W/resume/0001-a.yaml" <<'EOF'
id: 0001-a
title: A column
reason: integration test
steps:
  - { op: add_column, table: t, name: a, type: int }
EOF
run_ctl apply "$W/resume"
assert_rc "apply exits 0" 0 "$RC" "$ERR"
# as an operator's abort of a running plan leaves it
q "UPDATE taskslaps.plans SET status = 'aborted' WHERE plan_id = '0001-a'" >/dev/null
refuse 'resumed by an operator'
run_ctl resume 0001-a
assert_ne "resume whose event is refused fails" 0 "$RC"
assert_contains "it says why" "this event is refused" "$ERR"
assert_sql "the row is as it was, no event" "aborted|0" \
    "SELECT (SELECT status FROM taskslaps.plans WHERE plan_id = '0001-a'),
            (SELECT count(*) FROM taskslaps.events WHERE message = 'resumed by an operator')"
allow
run_ctl resume 0001-a
assert_rc "resume exits 0 once the event may be written" 0 "$RC" "$ERR"
assert_sql "row and event together" "pending|1" \
    "SELECT (SELECT status FROM taskslaps.plans WHERE plan_id = '0001-a'),
            (SELECT count(*) FROM taskslaps.events WHERE message = 'resumed by an operator'
                AND type = 'plan.start' AND plan_id = '0001-a')"

###########################################################################
section "accept-drift: the row and its event, or neither"
newdb drift
q "CREATE TABLE t (id int PRIMARY KEY)" >/dev/null
plan "$W/drift/0001-b.yaml" <<'EOF'
id: 0001-b
title: A column
reason: integration test
steps:
  - { op: add_column, table: t, name: b, type: int }
EOF
run_ctl apply "$W/drift"
assert_rc "apply exits 0" 0 "$RC" "$ERR"
checksum1=$(q "SELECT checksum FROM taskslaps.plans WHERE plan_id = '0001-b'")
sed -i 's/name: b, type: int/name: b, type: bigint/' "$W/drift/0001-b.yaml"
run_ctl apply "$W/drift"
assert_rc "the edited plan is drift (exit 1)" 1 "$RC" "$ERR"
refuse 'drift accepted by an operator%'
run_ctl accept-drift 0001-b "$W/drift/0001-b.yaml"
assert_ne "accept-drift whose event is refused fails" 0 "$RC"
assert_contains "it says why" "this event is refused" "$ERR"
assert_sql "status and checksum as they were, ledger untouched, no event" "drift|$checksum1|1|0" \
    "SELECT (SELECT status FROM taskslaps.plans WHERE plan_id = '0001-b'),
            (SELECT checksum FROM taskslaps.plans WHERE plan_id = '0001-b'),
            (SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0001-b'),
            (SELECT count(*) FROM taskslaps.events WHERE message LIKE 'drift accepted%')"
allow
run_ctl accept-drift 0001-b "$W/drift/0001-b.yaml"
assert_rc "accept-drift exits 0 once the event may be written" 0 "$RC" "$ERR"
assert_sql "row and event together" "applied|t|1" \
    "SELECT (SELECT status FROM taskslaps.plans WHERE plan_id = '0001-b'),
            (SELECT checksum <> '$checksum1' FROM taskslaps.plans WHERE plan_id = '0001-b'),
            (SELECT count(*) FROM taskslaps.events WHERE message LIKE 'drift accepted%'
                AND type = 'plan.ok' AND plan_id = '0001-b')"

env_finish

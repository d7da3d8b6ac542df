#!/usr/bin/env bash
# Install and packaging: `cmake --install` into a staging root puts every file
# where the Filesystem Hierarchy expects it, the installed unit passes
# `systemd-analyze verify`, and `cpack -G DEB` builds a package whose contents
# and control data are right (checked with dpkg-deb, without installing it).
set -uo pipefail
. "$(dirname "$0")/../lib/assert.sh"

build=${TS_BUILD_DIR:?TS_BUILD_DIR is set by ctest}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

section "cmake --install"
DESTDIR=$stage/root cmake --install "$build" --prefix /usr >"$stage/install.log" 2>&1
assert_rc "cmake --install succeeds" 0 $?
for f in usr/bin/taskslapsctl usr/sbin/taskslapsd \
	usr/lib/systemd/system/taskslaps@.service usr/lib/sysusers.d/taskslaps.conf \
	usr/lib/tmpfiles.d/taskslaps.conf usr/share/man/man1/taskslapsctl.1 \
	usr/share/man/man5/taskslaps.yaml.5 usr/share/man/man5/taskslaps-plan.5 \
	usr/share/man/man8/taskslapsd.8 usr/share/taskslaps/sql/001_schema.sql \
	usr/share/taskslaps/examples/prod.yaml usr/share/taskslaps/hooks/post-receive \
	usr/libexec/taskslaps/taskslapsctl-full; do
	if [ -e "$stage/root/$f" ]; then pass "installed $f"; else fail "missing $f"; fi
done
"$stage/root/usr/bin/taskslapsctl" --version | grep -q '^taskslapsctl ' && pass "installed ctl runs" ||
	fail "installed ctl does not run"
# the verbs that need libpq are taskslapsctl-full's, found from the installed taskslapsctl
out=$("$stage/root/usr/bin/taskslapsctl" install-schema --help 2>&1)
assert_contains "installed ctl runs taskslapsctl-full" "usage: taskslapsctl install-schema" "$out"
ldd "$stage/root/usr/bin/taskslapsctl" | grep -q libpq && fail "installed ctl links libpq" ||
	pass "installed ctl does not link libpq"
"$stage/root/usr/sbin/taskslapsd" --version | grep -q '^taskslapsd ' && pass "installed daemon runs" ||
	fail "installed daemon does not run"

section "systemd-analyze verify"
if command -v systemd-analyze >/dev/null; then
	unit=$stage/taskslaps@ci.service
	sed "s|/usr/sbin/taskslapsd|$stage/root/usr/sbin/taskslapsd|" \
		"$stage/root/usr/lib/systemd/system/taskslaps@.service" > "$unit"
	out=$(systemd-analyze verify --man=no "$unit" 2>&1)
	assert_rc "the installed unit verifies" 0 $?
	assert_eq "verify prints no warnings" "" "$out"
	level=$(systemd-analyze security --offline=yes "$unit" 2>/dev/null |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	assert_ne "security gives an exposure level" "" "$level"
	awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' && pass "exposure level $level <= 2.0" ||
		fail "exposure level $level > 2.0"
else
	echo "systemd-analyze not found: unit checks skipped"
fi

section "cpack -G DEB"
(cd "$build" && cpack -G DEB -B "$stage/pkg" >"$stage/cpack.log" 2>&1)
assert_rc "cpack builds a .deb" 0 $?
deb=$(ls "$stage"/pkg/taskslaps_*.deb 2>/dev/null | head -1)
assert_ne "the .deb exists" "" "$deb"
if [ -n "$deb" ]; then
	files=$(dpkg-deb -c "$deb")
	for f in ./usr/bin/taskslapsctl ./usr/sbin/taskslapsd ./usr/lib/systemd/system/taskslaps@.service \
		./usr/lib/sysusers.d/taskslaps.conf ./usr/share/man/man8/taskslapsd.8 \
		./usr/libexec/taskslaps/taskslapsctl-full; do
		assert_contains "package holds $f" "$f" "$files"
	done
	info=$(dpkg-deb -I "$deb")
	assert_contains "control: package name" "Package: taskslaps" "$info"
	assert_contains "control: depends on libpq5" "libpq5" "$info"
	assert_contains "control: has a postinst (users, directories)" "postinst" "$info"
fi
assert_finish

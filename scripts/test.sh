#!/usr/bin/env bash
# The whole test suite, as CI runs it (the README's test command):
#   1. installs missing Debian packages,
#   2. checks the C sources' format (clang-format --dry-run -Werror on src/
#      and tests/, with the repository's .clang-format),
#      builds with -Werror and runs every test (unit + integration) with ctest,
#      the SQL audit on (every SQL text the program sent, read back last by
#      PostgreSQL's parser: integration.sql_audit),
#   3. builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs
#      the suite again, plus a short fuzzing smoke run when clang is there.
# Options: --quick (skip the sanitizer pass), -R REGEX (only matching tests).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
quick=0
filter=()
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	-R) filter=(-R "$2"); shift ;;
	-h|--help) sed -n '2,10p' "$0"; exit 0 ;;
	*) echo "test.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

bash scripts/deps.sh
jobs=$(nproc)
# The whole suite records every SQL text the program sends (-DTS_SQL_AUDIT=ON)
# and reads it back last (integration.sql_audit): with no -R, that it
# recorded nothing is a failure too.
[ ${#filter[@]} -eq 0 ] && export TS_SQL_AUDIT_REQUIRE=1

echo "== format (clang-format --dry-run -Werror) =="
find src tests -name '*.[ch]' -print0 | sort -z | xargs -0 clang-format --dry-run -Werror

echo "== build (-Werror) =="
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_WERROR=ON -DTS_SQL_AUDIT=ON >/dev/null
cmake --build build/release -j"$jobs"
echo "== tests =="
ctest --test-dir build/release --output-on-failure -j"$jobs" "${filter[@]}"

[ "$quick" = 1 ] && exit 0

echo "== build (ASan + UBSan) =="
fuzz=OFF
command -v clang >/dev/null && fuzz=ON
CC=clang cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DTS_WERROR=ON -DTS_SANITIZE=ON \
	-DTS_SQL_AUDIT=ON -DTS_FUZZ=$fuzz >/dev/null
cmake --build build/asan -j"$jobs"
echo "== tests under sanitizers =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir build/asan --output-on-failure -j"$jobs" "${filter[@]}"

#!/bin/sh
# test.sh: the whole test suite from a fresh clone: install, build twice (plain and sanitized), start the servers, run every test, count.
#
# Installs the Debian packages (contrib/install-deps.sh) and builds:
#   - the normal build, in the source tree, warnings as errors;
#   - the sanitizer build in _san/ (clang, ASan + UBSan + LeakSanitizer,
#     the libFuzzer targets, warnings as errors), out of tree, from a copy of
#     the distributed sources in _dist/ ('make distdir': the source tree is
#     configured in place, so it cannot host a VPATH build itself).
# Then starts a real Kafka broker and Redis once (tests/servers.sh) and runs
# against them, one after the other: 'make check' of the normal build (with
# tests/valgrind.sh), 'make check' of the sanitizer build (every Check and
# shell test under the sanitizers, and tests/fuzz.sh), and 'make distcheck'.
# Ends with one line, "N passed, N failed", counting every test case of both
# builds plus one failure for each build, distcheck or server start that
# failed.  Exit status 0 only when nothing failed.  Each phase's time goes to
# stderr.  ORDERD_FUZZ_SECONDS (default 60) bounds the fuzzing.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)
phase_at=$start

# "== what" on stderr; the time of the phase before it, when there was one.
step() {
	now=$(date +%s)
	[ -z "${phase:-}" ] || echo "== $phase: $((now - phase_at)) s" >&2
	phase=$1 phase_at=$now
	[ -z "$1" ] || echo "== $1" >&2
}
give_up() { step ""; echo "0 passed, 1 failed"; exit 1; }

step "installing dependencies"
contrib/install-deps.sh || give_up
step "fetching the Kafka broker's jars"
# 3.9.1 too: tests/kafka_security.sh's SCRAM broker (ORDERD_TEST_KAFKA3).
contrib/kafka.sh fetch && KAFKA_VERSION=${ORDERD_TEST_KAFKA3:-3.9.1} contrib/kafka.sh fetch ||
	give_up

step "building (in the source tree, -Werror)"
flags="--enable-werror"
if [ ! -f Makefile ] || [ "$(cat .configured-flags 2>/dev/null)" != "$flags" ]; then
	{ [ -x configure ] || ./autogen.sh >/dev/null; } &&
		./configure -q $flags && echo "$flags" >.configured-flags || give_up
fi
# The test programs too, so no compiler runs while the servers are up.
{ make -s -j"$jobs" && make -s -j"$jobs" check TESTS=; } >/dev/null || give_up

extra=0
step "building with sanitizers and fuzzers (clang, out of tree in _san/)"
sflags="--enable-sanitizers --enable-fuzzing --enable-werror"
san_ok=0
mkdir -p _san &&
	make -s distdir distdir=_dist >/dev/null &&
	{ [ -f _san/Makefile ] && [ "$(cat _san/.configured-flags 2>/dev/null)" = "$sflags" ] ||
		{ (cd _san && CC=clang ../_dist/configure -q $sflags) &&
			echo "$sflags" >_san/.configured-flags; }; } &&
	{ make -s -C _san -j"$jobs" && make -s -C _san -j"$jobs" check TESTS=; } >/dev/null &&
	san_ok=1
[ "$san_ok" = 1 ] || { echo "test.sh: the sanitizer build failed" >&2; extra=$((extra + 1)); }

step "running the tests against a real broker and Redis"
rm -f tests/*.trs tests/*.log _san/tests/*.trs _san/tests/*.log .check-status \
	.san-check-status .distcheck-status
tests/servers.sh env jobs="$jobs" san_ok="$san_ok" sh -c '
	t=$(date +%s)
	echo "== make check" >&2
	make -s -j"$jobs" check >/dev/null 2>&1
	echo "$?" >.check-status
	echo "== make check: $(($(date +%s) - t)) s" >&2
	if [ "$san_ok" = 1 ]; then
		t=$(date +%s)
		echo "== make check in _san/ (ASan + UBSan, fuzzing)" >&2
		make -s -C _san -j"$jobs" check >/dev/null 2>&1
		echo "$?" >.san-check-status
		echo "== make check in _san/: $(($(date +%s) - t)) s" >&2
	fi
	t=$(date +%s)
	echo "== make distcheck" >&2
	if make -s distcheck >distcheck.log 2>&1; then
		echo 0 >.distcheck-status
	else
		tail -n 40 distcheck.log >&2
		# Which tests failed, and their logs: distcheck leaves its tree.
		grep -E "^(FAIL|ERROR):" distcheck.log >&2
		for trs in orderd-*/_build/sub/tests/*.trs; do
			[ -e "$trs" ] || continue
			grep -qE "^:test-result: (FAIL|ERROR|SKIP)" "$trs" || continue
			echo "---- distcheck: ${trs%.trs}.log" >&2
			tail -n 60 "${trs%.trs}.log" >&2
		done
		echo 1 >.distcheck-status
	fi
	echo "== make distcheck: $(($(date +%s) - t)) s" >&2
	# Non-zero when anything failed, so that servers.sh keeps the scratch.
	cat .check-status .san-check-status .distcheck-status 2>/dev/null | grep -qv "^0$" && exit 1
	exit 0
'
servers=$?
step ""
for log in tests/*.log _san/tests/*.log; do
	[ -e "$log" ] || continue
	trs=${log%.log}.trs
	if grep -qE '^:test-result: (FAIL|ERROR|SKIP)' "$trs" 2>/dev/null; then
		echo "---- $log" >&2
		tail -n 60 "$log" >&2
	fi
done
[ "$servers" = 0 ] || [ -s .check-status ] || extra=$((extra + 1))	# the servers never came up
[ "$(cat .distcheck-status 2>/dev/null)" = 0 ] || extra=$((extra + 1))
rm -f .check-status .san-check-status .distcheck-status
echo "== total: $(($(date +%s) - start)) s" >&2
tests/summary.sh . _san "$extra"

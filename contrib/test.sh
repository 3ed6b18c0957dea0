#!/bin/sh
# test.sh: the whole test suite from a fresh clone: install, build with -Werror, start the servers, run every test, count.
#
# Installs the Debian packages (contrib/install-deps.sh), builds in the
# source tree with warnings as errors, starts a real Kafka broker and Redis
# (tests/servers.sh), runs 'make check' and 'make distcheck' against them,
# and ends with one line: "N passed, N failed".  Exit status 0 only when
# nothing failed.  Set ORDERD_SANITIZE=1 to build with ASan + UBSan.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
jobs=$(nproc 2>/dev/null || echo 2)

step() { echo "== $*" >&2; }

step "installing dependencies"
contrib/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
step "fetching the Kafka broker's jars"
contrib/kafka.sh fetch || { echo "0 passed, 1 failed"; exit 1; }

step "building"
flags="--enable-werror"
[ "${ORDERD_SANITIZE:-0}" = 1 ] && flags="$flags --enable-sanitizers"
if [ ! -f Makefile ] || [ "$(cat .configured-flags 2>/dev/null)" != "$flags" ]; then
	{ [ -x configure ] || ./autogen.sh >/dev/null; } &&
		./configure -q $flags && echo "$flags" >.configured-flags ||
		{ echo "0 passed, 1 failed"; exit 1; }
fi
make -s -j"$jobs" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }

step "running the tests against a real broker and Redis"
rm -f tests/*.trs tests/*.log .check-status .distcheck-status
tests/servers.sh sh -c '
	make -s -j'"$jobs"' check >/dev/null 2>&1
	echo "$?" >.check-status
	echo "== make distcheck" >&2
	if make -s distcheck >distcheck.log 2>&1; then
		echo 0 >.distcheck-status
	else
		tail -n 40 distcheck.log >&2
		echo 1 >.distcheck-status
	fi
'
servers=$?
for log in tests/*.log; do
	[ -e "$log" ] || continue
	trs=${log%.log}.trs
	if grep -qE '^:test-result: (FAIL|ERROR|SKIP)' "$trs" 2>/dev/null; then
		echo "---- $log" >&2
		tail -n 60 "$log" >&2
	fi
done
extra=0
[ "$servers" = 0 ] || [ -s .check-status ] || extra=1	# the servers never came up
[ "$(cat .distcheck-status 2>/dev/null)" = 0 ] || extra=$((extra + 1))
rm -f .check-status .distcheck-status
tests/summary.sh . "$extra"

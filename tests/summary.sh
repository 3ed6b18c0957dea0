#!/bin/sh
# summary.sh: count every test case of the last 'make check' and print "N passed, N failed".
#
# A Check program counts each of its test cases (its "Checks: X, Failures:
# F, Errors: E" line); any other test counts by its :test-result: lines; a
# Check program that died before its summary counts as one failure.
#   tests/summary.sh [BUILDDIR] [EXTRA_FAILED]
set -u
dir=${1:-.}
extra=${2:-0}
passed=0
failed=$extra
for trs in "$dir"/tests/*.trs; do
	[ -e "$trs" ] || continue
	log=${trs%.trs}.log
	line=$(grep -E '^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" 2>/dev/null | tail -n 1)
	if [ -n "$line" ]; then
		set -- $(echo "$line" | sed -E 's/.*Checks: ([0-9]+), Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2 \3/')
		passed=$((passed + $1 - $2 - $3))
		failed=$((failed + $2 + $3))
		if grep -q '^:test-result: FAIL' "$trs" && [ "$2" = 0 ] && [ "$3" = 0 ]; then
			failed=$((failed + 1))	# passed its checks but failed overall (e.g. a leak)
		fi
		continue
	fi
	p=$(grep -cE '^:test-result: (PASS|XFAIL)' "$trs")
	f=$(grep -cE '^:test-result: (FAIL|XPASS|ERROR|SKIP)' "$trs")
	passed=$((passed + p))
	failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

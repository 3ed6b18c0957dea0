#!/bin/sh
# summary.sh: count every test case of the last 'make check' of one or more build directories and print "N passed, N failed".
#
# A Check program counts each of its test cases (its "Checks: X, Failures:
# F, Errors: E" line); any other test counts by its :test-result: lines; a
# Check program that died before its summary counts as one failure.
#   tests/summary.sh [BUILDDIR...] [EXTRA_FAILED]
# BUILDDIR defaults to '.'; a number that is not a directory is EXTRA_FAILED,
# failures counted elsewhere (a build that broke, servers that never came
# up).  With several directories each one's count goes to stderr as well.
set -u
dirs=""
extra=0
for a in "$@"; do
	case $a in
	*[!0-9]*|'') dirs="$dirs $a" ;;
	*) if [ -d "$a" ]; then dirs="$dirs $a"; else extra=$((extra + a)); fi ;;
	esac
done
[ -n "$dirs" ] || dirs=.
set -f
ndirs=$(echo $dirs | wc -w)
passed=0
failed=$extra
for dir in $dirs; do
	p_dir=0 f_dir=0
	set +f
	for trs in "$dir"/tests/*.trs; do
		[ -e "$trs" ] || continue
		log=${trs%.trs}.log
		line=$(grep -E '^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" 2>/dev/null | tail -n 1)
		if [ -n "$line" ]; then
			set -- $(echo "$line" | sed -E 's/.*Checks: ([0-9]+), Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2 \3/')
			p_dir=$((p_dir + $1 - $2 - $3))
			f_dir=$((f_dir + $2 + $3))
			if grep -q '^:test-result: FAIL' "$trs" && [ "$2" = 0 ] && [ "$3" = 0 ]; then
				f_dir=$((f_dir + 1))	# passed its checks but failed overall (e.g. a leak)
			fi
			continue
		fi
		p=$(grep -cE '^:test-result: (PASS|XFAIL)' "$trs")
		# Nothing here may skip: a skipped result counts as a failure.
		f=$(grep -cE '^:test-result: (FAIL|XPASS|ERROR|SKI[P])' "$trs")
		p_dir=$((p_dir + p))
		f_dir=$((f_dir + f))
	done
	set -f
	[ "$ndirs" -gt 1 ] && echo "summary: $dir: $p_dir passed, $f_dir failed" >&2
	passed=$((passed + p_dir))
	failed=$((failed + f_dir))
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

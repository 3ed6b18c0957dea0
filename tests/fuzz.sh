#!/bin/sh
# fuzz.sh: runs the libFuzzer target of the event decoder (tests/fuzz_event) over its seed corpus for a bounded time.
#
# Built only by './configure --enable-fuzzing' (CC=clang).  Replays every seed
# of tests/fuzz/corpus once, then fuzzes a copy of the corpus for
# ORDERD_FUZZ_SECONDS (default 60) under ASan + UBSan + LeakSanitizer.  Any
# crash, leak, sanitizer report, timeout or broken invariant fails; the input
# that caused it is kept in the scratch directory, whose path is printed.
# To reproduce one: tests/fuzz_event CRASH-FILE
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
fuzzer=${ORDERD_FUZZ_EVENT:-${ORDERD_BIN:+$ORDERD_BIN/../tests/fuzz_event}}
fuzzer=${fuzzer:-./tests/fuzz_event}
seconds=${ORDERD_FUZZ_SECONDS:-60}
seeds=$top/tests/fuzz/corpus
dir=$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX")
n=0 fails=0
check() {
	n=$((n + 1))
	if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fails=$((fails + 1)); fi
}
# A sanitizer or libFuzzer report in a log.
reported() {
	grep -qE '^==[0-9]+==ERROR|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer|^==[0-9]+== ERROR: libFuzzer|invariant .* broken' "$1"
}
# The sanitizers must stop at the first report, whatever the caller's options.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=1:halt_on_error=1
UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS UBSAN_OPTIONS

check "the fuzz target is built ($fuzzer)" '[ -x "$fuzzer" ]'
[ -x "$fuzzer" ] || { echo "1..$n"; exit 1; }
nseeds=$(ls "$seeds" | wc -l)
check "the seed corpus has a dozen or more inputs ($nseeds)" '[ "$nseeds" -ge 12 ]'

# Every seed once: a regression test that needs no luck.
"$fuzzer" -rss_limit_mb=2048 -timeout=10 "$seeds"/* >"$dir/replay.log" 2>&1
st=$?
check "every seed replays without a report (exit $st)" '[ "$st" = 0 ] && ! reported "$dir/replay.log"'

# Then fuzz a copy of the corpus (libFuzzer adds the inputs it finds to it).
mkdir "$dir/corpus" "$dir/artifacts"
cp "$seeds"/* "$dir/corpus/"
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
	-artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/fuzz.log" 2>&1
st=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz.log" | tail -n 1)
check "fuzzed $seconds s: no crash, leak, timeout or broken invariant (exit $st)" \
	'[ "$st" = 0 ] && ! reported "$dir/fuzz.log"'
check "no crash, leak or timeout input left by libFuzzer" '[ -z "$(ls "$dir/artifacts")" ]'
check "the fuzzer really ran (${runs:-0} inputs executed)" '[ "${runs:-0}" -gt 1000 ]'
echo "1..$n"
grep -E '^(stat::|#[0-9]+ +DONE)' "$dir/fuzz.log" | sed 's/^/# /'
if [ "$fails" = 0 ]; then
	rm -rf "$dir"
else
	tail -n 60 "$dir/replay.log" "$dir/fuzz.log" >&2
	ls -l "$dir/artifacts" >&2
	echo "fuzz: scratch (and any crashing input) kept in $dir" >&2
fi
[ "$fails" = 0 ]

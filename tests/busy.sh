#!/bin/sh
# busy.sh: a journal another process holds locked stops orderd (exit 1, one line saying so), whichever module meets the lock, and nothing is lost once it starts again.
#
# The policy (README, "The journal"): every writer on orderd's loop (the
# engine, the relay, retention) waits 5 s for the write lock, then orderd
# stops with exit 1; what it had not committed was not acknowledged, so
# the restart replays it.  Here a sqlite3 shell holds BEGIN IMMEDIATE:
# 1. while orderd is idle, SIGHUP starts a retention pass: retention stops it;
# 2. while orders arrive, the engine's batch stops it;
# then the shell lets go, orderd starts again and every order is answered
# (loadgen --verify), stock moved for the confirmed ones; and orderctl
# reconcile runs beside a held lock (it writes TEMP tables only).  TAP
# output.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
: "${ORDERD_TEST_BOOTSTRAP:?run through tests/servers.sh}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/busy.XXXXXX")
name=busy$$-$(date +%s)
n=0
fails=0
pids=
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
cleanup() { for p in $pids; do kill -9 "$p" 2>/dev/null; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM
bail() {
	echo "Bail out! $*"
	for f in "$dir"/*.log; do
		[ -f "$f" ] && { echo "# --- $f"; tail -n 15 "$f" | sed 's/^/# /'; }
	done
	exit 1
}
. "$top/tests/conf.sh"
test_conf "$dir/orderd.conf" "$name" "$dir"
ctl() { "$bin/orderctl" -c "$dir/orderd.conf" "$@"; }
db=$dir/journal.db

# Waits up to $3 tenths of a second for the pattern $2 in file $1.
wait_for() {
	i=0
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -lt "$3" ] || return 1
		sleep 0.1
	done
}
# orderd, logging to $1; its pid in $opid.
start_orderd() {
	"$bin/orderd" -c "$dir/orderd.conf" 2>"$1" &
	opid=$!
	pids="$pids $opid"
	wait_for "$1" "engine: assigned partitions" 600 || bail "orderd never took its partitions"
}
# A sqlite3 shell that holds the journal's write lock for $1 s; its pid in $lock.
hold_lock() {
	(echo "BEGIN IMMEDIATE;"; echo "SELECT 'locked';"; sleep "$1"; echo "ROLLBACK;") |
		sqlite3 "$db" >"$dir/lock.out" 2>&1 &
	lock=$!
	pids="$pids $lock"
	wait_for "$dir/lock.out" locked 100 || bail "the sqlite3 shell never took the lock"
}
# Waits up to $2 s for process $1 to exit; its status in $st (or "running").
wait_exit() {
	i=0
	while kill -0 "$1" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -lt $(($2 * 10)) ] || { st=running; return 1; }
		sleep 0.1
	done
	wait "$1"
	st=$?
}

ctl topics create --partitions 2 >/dev/null 2>"$dir/ctl.log" || bail "topics create failed"
ctl stock add sku-0 1000 >/dev/null 2>>"$dir/ctl.log" || bail "stock add failed"
ctl stock add sku-1 1000 >/dev/null 2>>"$dir/ctl.log" || bail "stock add failed"

# 1. Idle, the lock held, a retention pass (SIGHUP starts one at once).
start_orderd "$dir/orderd-1.log"
hold_lock 20
t0=$(date +%s)
kill -HUP "$opid"
wait_exit "$opid" 15
t1=$(date +%s)
check "retention met the lock: orderd exited 1 (status $st)" '[ "$st" = 1 ]'
check "after the busy timeout, not at once ($((t1 - t0)) s)" '[ $((t1 - t0)) -ge 4 ]'
check "the line names retention, the lock and what to do" \
	'grep -q "ERROR retention: journal: deleting old rows: another process held the journal.s write lock for more than 5000 ms.*nothing is lost, start orderd again" "$dir/orderd-1.log"'
kill "$lock" 2>/dev/null; wait "$lock" 2>/dev/null

# 2. Orders arriving while the lock is held: the engine's batch meets it.
start_orderd "$dir/orderd-2.log"
"$bin/orderd-paysim" -c "$dir/orderd.conf" --group "$name-paysim" 2>"$dir/paysim.log" &
ppid=$!
pids="$pids $ppid"
hold_lock 30
"$bin/orderd-loadgen" -c "$dir/orderd.conf" --orders 200 --rate 100 --skus 2 \
	--lines-max 2 --sku-prefix sku- --id-prefix "$name-" --verify --timeout-s 120 \
	>"$dir/figures" 2>"$dir/loadgen.log" &
lpid=$!
pids="$pids $lpid"
wait_exit "$opid" 20
check "the engine met the lock: orderd exited 1 (status $st)" '[ "$st" = 1 ]'
check "the line names the engine and the lock" \
	'grep -q "ERROR engine: journal: begin: another process held the journal.s write lock" "$dir/orderd-2.log"'
check "no order was journaled while the lock was held" \
	'[ "$(sqlite3 "$db" "SELECT count(*) FROM orders")" = 0 ]'
kill "$lock" 2>/dev/null; wait "$lock" 2>/dev/null

# 3. The shell let go: orderd starts again and answers every order.
start_orderd "$dir/orderd-3.log"
wait "$lpid"; lg=$?
kill -TERM "$opid"; wait_exit "$opid" 60
check "orderd stopped cleanly after the restart (status $st)" '[ "$st" = 0 ]'
kill -TERM "$ppid"; wait "$ppid" 2>/dev/null
fig() { awk -v k="$1" '$1 == k { print $2 }' "$dir/figures"; }
check "loadgen saw every order answered (exit $lg)" '[ "$lg" = 0 ] && [ "$(fig missing)" = 0 ]'
check "200 orders in the journal, each terminal" \
	'[ "$(sqlite3 "$db" "SELECT count(*) FROM orders WHERE state IN (\"CONFIRMED\", \"REJECTED\", \"CANCELLED\")")" = 200 ]'
confirmed=$(sqlite3 "$db" "SELECT count(*) FROM orders WHERE state = 'CONFIRMED'")
check "orders confirmed ($confirmed)" '[ "$confirmed" -gt 0 ] && [ "$(fig confirmed)" = "$confirmed" ]'
units=$(sqlite3 "$db" "SELECT coalesce(sum(qty), 0) FROM saga_steps WHERE kind = 'commit' AND result = 'COMMITTED'")
sold=$(ctl stock show sku-0 sku-1 --json 2>>"$dir/ctl.log" |
	python3 -c 'import json, sys; print(sum(s["sold"] for s in json.load(sys.stdin)["skus"]))')
check "stock moved: Redis sold $sold units, the journal committed $units" \
	'[ "$sold" -gt 0 ] && [ "$sold" = "$units" ]'
check "nothing sent to the DLQ" '[ "$(sqlite3 "$db" "SELECT count(*) FROM dlq")" = 0 ]'

# 4. orderctl reconcile copies Redis into TEMP tables: it needs no write
# lock, so it neither waits for a shell's nor (were orderd running) holds
# one long enough to stop orderd.
hold_lock 20
t0=$(date +%s)
ctl reconcile --json >"$dir/reconcile.json" 2>"$dir/reconcile.log"; rst=$?
t1=$(date +%s)
kill "$lock" 2>/dev/null; wait "$lock" 2>/dev/null
check "reconcile ran beside a held write lock (exit $rst, $((t1 - t0)) s) and found no drift" \
	'[ "$rst" = 0 ] && [ $((t1 - t0)) -lt 5 ] && grep -q "\"ok\":true" "$dir/reconcile.json"'

trap - EXIT
cleanup
echo "1..$n"
if [ "$fails" -eq 0 ]; then rm -rf "$dir"; exit 0; fi
echo "busy: scratch kept in $dir" >&2
exit 1

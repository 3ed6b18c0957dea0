#!/bin/sh
# cli.sh: the command-line contract of cli.md: --help, --version, exit codes, one-line errors, and every --json output parses.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
dir=$(mktemp -d "${TMPDIR:-/tmp}/cli.XXXXXX")
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; sed 's/^/# /' "$dir/err" 2>/dev/null | head -5; fi; }
# Runs a command; its status in st, its stdout in $dir/out, stderr in $dir/err.
run() { "$@" >"$dir/out" 2>"$dir/err"; st=$?; }
one_line() { [ "$(wc -l <"$dir/err")" -le 1 ] && grep -q "$1" "$dir/err"; }
json_ok() { python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$dir/out" 2>/dev/null &&
	[ -s "$dir/out" ]; }

for p in orderd orderctl orderd-paysim orderd-loadgen; do
	# What each needs besides the configuration to get as far as reading it.
	case $p in orderctl) more=outbox ;; orderd-loadgen) more="--orders 1" ;; *) more= ;; esac
	run "$bin/$p" --help
	check "$p --help exits 0 and prints usage" '[ "$st" = 0 ] && grep -qi usage "$dir/out"'
	run "$bin/$p" --version
	check "$p --version exits 0 and names the version" '[ "$st" = 0 ] && grep -q "[0-9]\.[0-9]" "$dir/out"'
	run "$bin/$p" --no-such-option
	check "$p rejects an unknown option with exit 2" '[ "$st" = 2 ]'
	run "$bin/$p" -c "$dir/missing.conf" -s log.level=info $more
	check "$p: a missing -c file is exit 2, naming it" \
		'[ "$st" = 2 ] && one_line missing.conf'
	run "$bin/$p" -s redis.hots=1 $more
	check "$p: -s of an unknown key is exit 2, naming it" '[ "$st" = 2 ] && one_line redis.hots'
done

printf '[redis]\nport = 6379\n[nonsense]\nx = 1\n' >"$dir/bad-section.conf"
printf '[redis]\nhots = 127.0.0.1\n' >"$dir/bad-key.conf"
printf '[redis]\nport = 99999\n' >"$dir/bad-value.conf"
printf '[kafka]\nno.such.property = 1\n' >"$dir/bad-kafka.conf"
run "$bin/orderd" -c "$dir/bad-key.conf" --check-config
check "orderd --check-config rejects an unknown key with exit 2, naming it" \
	'[ "$st" = 2 ] && one_line "redis.hots"'
run "$bin/orderd" -c "$dir/bad-section.conf" --check-config
check "orderd --check-config rejects an unknown section with exit 2, naming it" \
	'[ "$st" = 2 ] && one_line "nonsense"'
run "$bin/orderd" -c "$dir/bad-value.conf" --check-config
check "orderd --check-config rejects a value out of range with exit 2, naming the key" \
	'[ "$st" = 2 ] && one_line "redis.port"'
run "$bin/orderd" -c "$dir/bad-kafka.conf" --check-config
check "orderd --check-config lets librdkafka reject an unknown [kafka] key (exit 2)" \
	'[ "$st" = 2 ] && one_line "no.such.property"'
# [kafka] keys orderd cannot honour: refused at load, before anything starts.
printf '[kafka]\npartition.assignment.strategy = cooperative-sticky\n' >"$dir/coop.conf"
run "$bin/orderd" -c "$dir/coop.conf" --check-config
check "orderd --check-config refuses partition.assignment.strategy = cooperative-sticky (exit 2, one line: the key, eager)" \
	'[ "$st" = 2 ] && one_line "coop.conf:2: kafka.partition.assignment.strategy: .cooperative-sticky. cannot be used: orderd.s rebalance is eager"'
run "$bin/orderd" -c "$dir/coop.conf"
check "... and so does orderd itself, at once" \
	'[ "$st" = 2 ] && one_line "kafka.partition.assignment.strategy"'
run "$bin/orderd" --check-config -s kafka.partition.assignment.strategy=roundrobin
check "orderd --check-config refuses -s kafka.partition.assignment.strategy=roundrobin (range only)" \
	'[ "$st" = 2 ] && one_line "kafka.partition.assignment.strategy: .roundrobin. cannot be used.*range only"'
run "$bin/orderd" --check-config -s kafka.partition.assignment.strategy=range
check "... and accepts range" '[ "$st" = 0 ] && grep -q "^partition.assignment.strategy = range" "$dir/out"'
for kv in group.protocol=consumer enable.auto.offset.store=true enable.auto.commit=false \
	group.id=mine transactional.id=t1; do
	run "$bin/orderd" --check-config -s "kafka.$kv"
	check "orderd --check-config refuses -s kafka.$kv (exit 2, one line naming it)" \
		'[ "$st" = 2 ] && one_line "kafka.${kv%%=*}: .*orderd"'
done
run "$bin/orderd-paysim" -c "$dir/coop.conf"
check "orderd-paysim refuses it too (its rebalance is eager as well)" \
	'[ "$st" = 2 ] && one_line "kafka.partition.assignment.strategy"'
run "$bin/orderd" -c "$top/contrib/orderd.conf" --check-config
check "orderd --check-config accepts the sample configuration" '[ "$st" = 0 ]'
run "$bin/orderd" --check-config -s journal.synchronous=normal
check "orderd --check-config prints the configuration with the override" \
	'[ "$st" = 0 ] && grep -q "^synchronous = normal" "$dir/out"'
run "$bin/orderd" unexpected-argument
check "orderd rejects a stray argument with exit 2" '[ "$st" = 2 ]'
run "$bin/orderctl" frobnicate
check "orderctl rejects an unknown command with exit 2" '[ "$st" = 2 ]'
run "$bin/orderctl" stock add
check "orderctl stock add without arguments is exit 2" '[ "$st" = 2 ]'
run "$bin/orderd-loadgen"
check "orderd-loadgen without --orders is exit 2" '[ "$st" = 2 ]'
run "$bin/orderd-paysim" --fail-ratio 1.5
check "orderd-paysim --fail-ratio 1.5 is exit 2, naming the option" \
	'[ "$st" = 2 ] && one_line "fail-ratio"'

# Every --json output parses, against a real Redis and a small journal.
: "${ORDERD_TEST_REDIS_PORT:?run through tests/servers.sh}"
: "${ORDERD_TEST_BOOTSTRAP:?run through tests/servers.sh}"
name=cli$$
. "$top/tests/conf.sh"
test_conf "$dir/c.conf" "$name" "$dir"
C="$bin/orderctl -c $dir/c.conf"
run $C stock add sku-1 10 --json
check "stock add --json parses" '[ "$st" = 0 ] && json_ok'
run $C stock show --json
check "stock show --json parses and lists sku-1" '[ "$st" = 0 ] && json_ok && grep -q "sku-1" "$dir/out"'
run $C stock show sku-1 --json
check "stock show SKU --json parses" '[ "$st" = 0 ] && json_ok'
run $C outbox --json
check "outbox --json parses" '[ "$st" = 0 ] && json_ok && grep -q oldest_pending_age_ms "$dir/out"'
run $C dlq list --json
check "dlq list --json parses" '[ "$st" = 0 ] && json_ok && grep -q messages "$dir/out"'
run $C reconcile --json
check "reconcile --json parses and is ok" '[ "$st" = 0 ] && json_ok && grep -q "\"ok\":true" "$dir/out"'
run $C order show no-such-order --json
check "order show of an unknown order is exit 1" '[ "$st" = 1 ]'
"$bin/orderctl" -c "$dir/c.conf" topics create --partitions 2 >/dev/null 2>&1
"$bin/orderd" -c "$dir/c.conf" 2>"$dir/orderd.log" &
opid=$!
"$bin/orderd-paysim" -c "$dir/c.conf" --group "$name-ps" 2>"$dir/paysim.log" &
ppid=$!
# Ready when orderd says it consumes (its start checks the new topics).
i=0
until grep -q 'engine: consuming' "$dir/orderd.log" 2>/dev/null || [ "$i" -ge 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
"$bin/orderd-loadgen" -c "$dir/c.conf" --orders 3 --skus 2 --lines-max 1 --verify \
	--timeout-s 60 >"$dir/figures" 2>"$dir/loadgen.log"
lg=$?
kill -TERM "$ppid" "$opid"
wait "$ppid"
wait "$opid"
od=$?
check "three orders through orderd (loadgen exit $lg, orderd exit $od)" '[ "$lg" = 0 ] && [ "$od" = 0 ]'
oid=$(sqlite3 "$dir/journal.db" "SELECT order_id FROM orders LIMIT 1")
run $C order show "$oid" --json
check "order show --json parses, with steps" '[ "$st" = 0 ] && json_ok && grep -q "\"steps\"" "$dir/out"'
run $C order show "$oid"
check "order show prints its state" '[ "$st" = 0 ] && grep -q "^state" "$dir/out"'
run $C recover --rebuild-redis --only-instance --json
check "recover --rebuild-redis --json into a non-empty Redis is refused (exit 1)" '[ "$st" = 1 ]'

echo "1..$n"
[ "$fails" = 0 ] && rm -rf "$dir"
[ "$fails" = 0 ]

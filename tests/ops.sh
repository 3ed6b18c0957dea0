#!/bin/sh
# ops.sh: the Prometheus rules and the Grafana dashboard against a live orderd: promtool accepts them, and every metric they name is in a real scrape.
#
# Runs orderd (with /metrics on a free loopback port), orderd-paysim and
# orderd-loadgen --verify for a few hundred orders on topics of their own,
# then scrapes /metrics and checks: promtool check metrics finds nothing to
# say; every orderd_* and process_* name in contrib/prometheus/orderd-rules.yml
# and contrib/grafana/orderd-dashboard.json is a sample or a family of the
# scrape (so neither can drift from what orderd exports); every family of the
# scrape is named in README.md.  Also promtool check rules and promtool test
# rules (contrib/prometheus/orderd-rules.test.yml).  Needs the servers of
# tests/servers.sh, promtool (Debian: prometheus) and curl.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
rules=$top/contrib/prometheus/orderd-rules.yml
rule_tests=$top/contrib/prometheus/orderd-rules.test.yml
dash=$top/contrib/grafana/orderd-dashboard.json
orders=${ORDERD_OPS_ORDERS:-300}
dir=$(mktemp -d "${TMPDIR:-/tmp}/ops.XXXXXX")
n=0 fails=0
check() {
	n=$((n + 1))
	if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fails=$((fails + 1)); fi
}
bail() { echo "Bail out! $*"; echo "ops: scratch kept in $dir" >&2; exit 1; }
: "${ORDERD_TEST_BOOTSTRAP:?run through tests/servers.sh}"
: "${ORDERD_TEST_REDIS_PORT:?run through tests/servers.sh}"
command -v promtool >/dev/null || bail "promtool is not installed (contrib/install-deps.sh: prometheus)"
command -v curl >/dev/null || bail "curl is not installed (contrib/install-deps.sh)"

check "promtool check rules accepts orderd-rules.yml" \
	'promtool check rules "$rules" >"$dir/rules.out" 2>&1 || { cat "$dir/rules.out" >&2; false; }'
check "promtool test rules: each alert fires when it should and not before" \
	'promtool test rules "$rule_tests" >"$dir/rule-tests.out" 2>&1 || { cat "$dir/rule-tests.out" >&2; false; }'
check "the dashboard is a Grafana JSON model whose panels all have queries" \
	'python3 -c "import json, sys
d = json.load(open(sys.argv[1]))
ps = [p for p in d[\"panels\"] if p[\"type\"] != \"row\"]
assert d[\"uid\"] and ps and all(t[\"expr\"] for p in ps for t in p[\"targets\"])" "$dash"'

port=$(python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
name=ops$$-$(date +%s)
. "$top/tests/conf.sh"
test_conf "$dir/orderd.conf" "$name" "$dir" normal "127.0.0.1:$port"
conf="-c $dir/orderd.conf"
"$bin/orderctl" $conf topics create --partitions 3 >/dev/null 2>"$dir/topics.err" ||
	bail "orderctl topics create failed: $(cat "$dir/topics.err")"
i=0
while [ "$i" -lt 10 ]; do
	"$bin/orderctl" $conf stock add "sku-$i" 100000 >/dev/null || bail "stock add sku-$i failed"
	i=$((i + 1))
done

"$bin/orderd" $conf 2>"$dir/orderd.log" &
opid=$!
"$bin/orderd-paysim" $conf --fail-ratio 0.1 --duplicate-ratio 0.05 --group "$name-paysim" \
	2>"$dir/paysim.log" &
ppid=$!
trap 'kill -9 "$opid" "$ppid" 2>/dev/null' EXIT
i=0
until [ "$(curl -s -m 2 "$url/healthz" 2>/dev/null)" = ok ]; do
	kill -0 "$opid" 2>/dev/null || { tail -n 20 "$dir/orderd.log" >&2; bail "orderd died at start"; }
	i=$((i + 1)); [ "$i" -lt 300 ] || bail "/healthz not ok 30 s after the start"
	sleep 0.1
done
"$bin/orderd-loadgen" $conf --orders "$orders" --skus 10 --lines-max 3 --sku-prefix sku- \
	--verify --timeout-s 120 >"$dir/figures" 2>"$dir/loadgen.log"
lg=$?
check "loadgen --verify: $orders orders answered (exit $lg)" '[ "$lg" = 0 ]'
# One message that is not JSON, for a dead letter in the scrape.
printf 'not json\n' | kcat -b "$ORDERD_TEST_BOOTSTRAP" -P -t "$name.orders" -k junk 2>/dev/null
sleep 1

curl -s -D "$dir/headers" -o "$dir/scrape" "$url/metrics"
check "GET /metrics: 200, Prometheus text 0.0.4" \
	'grep -q "^HTTP/1.1 200" "$dir/headers" && grep -qi "^Content-Type: text/plain; version=0.0.4" "$dir/headers"'
check "promtool check metrics on the live scrape: exit 0, no lint remark" \
	'promtool check metrics <"$dir/scrape" >"$dir/lint" 2>&1 && [ ! -s "$dir/lint" ] || { cat "$dir/lint" >&2; false; }'
check "GET /healthz: ok" '[ "$(curl -s "$url/healthz")" = ok ]'
check "GET /nope: 404; POST /metrics: 405" \
	'[ "$(curl -s -o /dev/null -w "%{http_code}" "$url/nope")" = 404 ] &&
	 [ "$(curl -s -o /dev/null -w "%{http_code}" -X POST "$url/metrics")" = 405 ]'
check "the scrape has consumer lag for every orders partition" \
	'[ "$(grep -c "^orderd_consumer_lag{topic=\"$name.orders\"" "$dir/scrape")" = 3 ]'
check "the dead letter is counted" 'grep -q "^orderd_dead_letters_total [1-9]" "$dir/scrape"'

# A name is in the scrape as a sample ("name 1", "name{...} 1") or as a
# family ("# TYPE name histogram" for a histogram's base name).
in_scrape() {
	grep -q "^$1[ {]" "$dir/scrape" || grep -q "^# TYPE $1 " "$dir/scrape"
}
used=$(grep -oh '\b\(orderd\|process\)_[a-z0-9_]*' "$rules" "$dash" | sort -u)
check "the rules and the dashboard name some metrics" '[ -n "$used" ]'
for m in $used; do
	check "$m (rules or dashboard) is in the scrape" 'in_scrape "$m"'
done
for m in $(awk '$1 == "#" && $2 == "TYPE" { print $3 }' "$dir/scrape"); do
	check "$m (scrape) is documented in README.md" 'grep -q "\`$m\`" "$top/README.md"'
done

kill -TERM "$ppid" 2>/dev/null; wait "$ppid"
kill -TERM "$opid" 2>/dev/null; wait "$opid"
od=$?
trap - EXIT
check "orderd exits 0 on SIGTERM (exit $od)" '[ "$od" = 0 ]'
echo "1..$n"
if [ "$fails" = 0 ]; then
	rm -rf "$dir"
else
	tail -n 20 "$dir/orderd.log" "$dir/loadgen.log" >&2
	echo "ops: scratch kept in $dir" >&2
fi
[ "$fails" = 0 ]

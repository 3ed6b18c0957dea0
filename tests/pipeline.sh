#!/bin/sh
# pipeline.sh: runs orderd + orderd-paysim + orderd-loadgen --verify on topics of their own, then reconciles.
#
#   tests/pipeline.sh DIR ORDERS SKUS STOCK_PER_SKU [FAIL_RATIO] [DUP_RATIO] [LINES_MAX] [PARTITIONS]
#
# Needs ORDERD_TEST_BOOTSTRAP and ORDERD_TEST_REDIS_PORT (tests/servers.sh
# sets them); ORDERD_TEST_REDIS_NODES runs it on that Redis Cluster instead,
# ORDERD_LOADGEN_RATE paces loadgen (orders per second).  Writes
# DIR/orderd.conf, DIR/*.log, DIR/figures (loadgen's lines) and
# DIR/reconcile.json.  Exit 0 only when loadgen found every
# order answered once, reconcile is clean and orderd stopped cleanly.
set -u
dir=$1 orders=$2 skus=$3 stock=$4
fail=${5:-0.1} dup=${6:-0.05} lines=${7:-3} parts=${8:-3}
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
: "${ORDERD_TEST_BOOTSTRAP:?run through tests/servers.sh}"
: "${ORDERD_TEST_REDIS_PORT:?run through tests/servers.sh}"
mkdir -p "$dir"
name=p$$-$(date +%s)
. "$top/tests/conf.sh"
test_conf "$dir/orderd.conf" "$name" "$dir" "${ORDERD_SYNCHRONOUS:-full}"
conf="-c $dir/orderd.conf"
fail_now() { echo "pipeline: $*" >&2; exit 1; }

"$bin/orderctl" $conf topics create --partitions "$parts" >/dev/null || fail_now "topics create failed"
i=0
while [ "$i" -lt "$skus" ]; do
	"$bin/orderctl" $conf stock add "sku-$i" "$stock" >/dev/null || fail_now "stock add sku-$i failed"
	i=$((i + 1))
done

"$bin/orderd" $conf 2>"$dir/orderd.log" &
opid=$!
"$bin/orderd-paysim" $conf --fail-ratio "$fail" --duplicate-ratio "$dup" --group "$name-paysim" \
	2>"$dir/paysim.log" &
ppid=$!
cleanup() { kill -9 "$opid" "$ppid" 2>/dev/null; }
trap cleanup EXIT
# Ready when orderd says it consumes (or dead).
n=0
until grep -q 'engine: consuming' "$dir/orderd.log" 2>/dev/null; do
	kill -0 "$opid" 2>/dev/null || { tail -n 20 "$dir/orderd.log" >&2; fail_now "orderd died at start"; }
	n=$((n + 1)); [ "$n" -lt 300 ] || fail_now "orderd not ready after 30 s"
	sleep 0.1
done

"$bin/orderd-loadgen" $conf --orders "$orders" --skus "$skus" --lines-max "$lines" \
	${ORDERD_LOADGEN_RATE:+--rate "$ORDERD_LOADGEN_RATE"} \
	--sku-prefix sku- --verify --timeout-s "${ORDERD_VERIFY_TIMEOUT:-180}" \
	>"$dir/figures" 2>"$dir/loadgen.log"
lg=$?
kill -TERM "$ppid"; wait "$ppid"
kill -TERM "$opid"; wait "$opid"; od=$?
trap - EXIT
"$bin/orderctl" $conf reconcile --json >"$dir/reconcile.json"
rc=$?
cat "$dir/figures"
echo "orderd_exit $od"
echo "reconcile $(cat "$dir/reconcile.json")"
[ "$lg" = 0 ] || fail_now "loadgen exit $lg"
[ "$od" = 0 ] || fail_now "orderd exit $od on SIGTERM"
[ "$rc" = 0 ] || fail_now "reconcile found drift"
exit 0

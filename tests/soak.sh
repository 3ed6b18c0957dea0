#!/bin/sh
# soak.sh: 20,000 orders over 200 skus with stock for about 80% of them, 10% failed and 5% duplicated payments.
#
# Passes when loadgen sees every order answered (missing 0) with one
# terminal outcome each, orderctl reconcile is clean (which checks every
# sku's invariant and that no terminal order holds stock) and the journal
# agrees: every order terminal, one terminal output per order.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/soak.XXXXXX")
fails=0
check() {
	if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fails=$((fails + 1)); fi
}
# 20,000 orders of 1..3 lines of 1..3 units: about 80,000 units asked of
# 200 skus, 400 each; 320 each in stock covers about 80% of them.
"$top/tests/pipeline.sh" "$dir" 20000 200 320 0.1 0.05 3 6 >"$dir/out" 2>"$dir/err"
st=$?
cat "$dir/out"
[ "$st" = 0 ] || { tail -n 30 "$dir/err" "$dir/orderd.log" >&2; }
fig() { awk -v k="$1" '$1 == k { print $2 }' "$dir/out"; }
q() { sqlite3 "$dir/journal.db" "$1"; }
check "pipeline ran clean (exit $st)" '[ "$st" = 0 ]'
check "20000 orders produced" '[ "$(fig orders)" = 20000 ]'
check "missing 0" '[ "$(fig missing)" = 0 ]'
check "no order with two different outcomes" '[ "$(fig conflicts)" = 0 ]'
check "some orders of each outcome" '[ "$(fig confirmed)" -gt 0 ] && [ "$(fig rejected)" -gt 0 ] && [ "$(fig cancelled)" -gt 0 ]'
check "reconcile clean" 'grep -q "\"ok\":true" "$dir/reconcile.json"'
check "every order terminal in the journal" '[ "$(q "SELECT count(*) FROM orders WHERE state NOT IN (\"CONFIRMED\",\"REJECTED\",\"CANCELLED\")")" = 0 ]'
check "20000 orders in the journal" '[ "$(q "SELECT count(*) FROM orders")" = 20000 ]'
check "one terminal output per order" '[ "$(q "SELECT count(*) FROM (SELECT order_id FROM outbox WHERE type IN (\"OrderConfirmed\",\"OrderRejected\",\"OrderCancelled\") GROUP BY order_id HAVING count(*) != 1)")" = 0 ]'
check "no step left in flight" '[ "$(q "SELECT count(*) FROM saga_steps WHERE result IS NULL")" = 0 ]'
check "the outbox is fully published" '[ "$(q "SELECT count(*) FROM outbox WHERE published_at IS NULL")" = 0 ]'
check "no stock held by a terminal order" '[ "$(q "SELECT count(*) FROM orders WHERE state IN (\"REJECTED\",\"CANCELLED\") AND order_id IN (SELECT order_id FROM saga_steps s WHERE result = \"RESERVED\" AND id = (SELECT max(id) FROM saga_steps t WHERE t.order_id = s.order_id AND t.sku = s.sku))")" = 0 ]'
echo "1..12"
if [ "$fails" = 0 ]; then rm -rf "$dir"; else echo "soak: scratch kept in $dir" >&2; fi
[ "$fails" = 0 ]

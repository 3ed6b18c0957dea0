#!/bin/sh
# demo.sh: on a fresh Debian 12 machine: install, build, start Kafka and Redis, run 10,000 orders through orderd, reconcile, stop.
#
# Everything it starts listens on 127.0.0.1 only and is stopped at the end;
# the journal of the run stays in tmp/demo/journal.db for a look.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
run=${ORDERD_DEMO_DIR:-$top/tmp/demo}
orders=${ORDERD_DEMO_ORDERS:-10000}

say() { echo "demo: $*" >&2; }

say "installing dependencies (apt) and the Kafka jars (Maven Central)"
contrib/install-deps.sh || exit 1
contrib/kafka.sh fetch || exit 1
say "building"
{ [ -f Makefile ] || { { [ -x configure ] || ./autogen.sh >/dev/null; } && ./configure -q; }; } &&
	make -s -j"$(nproc)" >/dev/null || exit 1

rm -rf "$run"
mkdir -p "$run"
say "starting Kafka (KRaft, one node) and Redis on 127.0.0.1, then orderd, orderd-paysim"
say "(10% failed, 5% duplicated payments) and orderd-loadgen with $orders orders over 100 skus"
tests/servers.sh tests/pipeline.sh "$run" "$orders" 100 300 0.1 0.05 3 3
st=$?
echo
if [ "$st" = 0 ]; then
	say "every order answered once, reconcile clean"
else
	say "the run FAILED (exit $st); logs in $run"
fi
cat <<MSG
The journal of this run (WAL SQLite; the servers are stopped):
  sqlite3 $run/journal.db .schema
  sqlite3 -box $run/journal.db "SELECT state, count(*) FROM orders GROUP BY state"
  sqlite3 -box -cmd '.read sql/audit.sql' $run/journal.db "SELECT * FROM stuck_sagas"
  src/orderctl -c $run/orderd.conf order show \$(sqlite3 $run/journal.db "SELECT order_id FROM orders LIMIT 1")
MSG
exit "$st"

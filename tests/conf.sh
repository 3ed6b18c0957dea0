# conf.sh: sourced by the shell tests: writes an orderd configuration of one run's own.
#
#   test_conf FILE NAME DIR [SYNCHRONOUS] [HTTP_LISTEN]
#
# Topics, consumer group and Redis key prefix are named after NAME, the
# journal is DIR/journal.db; the broker and Redis are the ones of
# tests/servers.sh (or the cluster of ORDERD_TEST_REDIS_NODES, when set).
# A caller that needs more keys appends sections to FILE.
test_conf() {
	cat >"$1" <<CONF
; written for one test run ($2)
[kafka]
bootstrap.servers = $ORDERD_TEST_BOOTSTRAP
[redis]
port = $ORDERD_TEST_REDIS_PORT
prefix = $2:
[journal]
path = $3/journal.db
synchronous = ${4:-full}
[topics]
orders = $2.orders
payments = $2.payments
payment_requests = $2.payment-requests
order_events = $2.order-events
dlq = $2.dlq
state = $2.state
[consumer]
group = $2
[http]
listen = ${5:-}
CONF
	# tests/cluster.sh: the same run on a Redis Cluster.
	if [ -n "${ORDERD_TEST_REDIS_NODES:-}" ]; then
		printf '[redis]\ncluster = yes\nnodes = %s\n' "$ORDERD_TEST_REDIS_NODES" >>"$1"
	fi
}

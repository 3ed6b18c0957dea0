#!/bin/sh
# kafka_security.sh: orderd, paysim, loadgen and orderctl through real secured Kafka brokers (PLAIN over TLS and mutual TLS on 4.1, SCRAM-SHA-256 on 3.9), each principal with least-privilege ACLs only.
#
# Starts its own secured brokers with contrib/kafka.sh start-secure (the
# PKI of tests/pki.sh, random passwords per run); a broker that cannot
# start fails the test with its log tail.  Redis is tests/servers.sh's
# (ORDERD_TEST_REDIS_PORT).  Each program has a configuration file of its
# own (mode 0600: it holds its password) whose [kafka] keys go to
# librdkafka as they are.  The 3.x broker is Kafka ORDERD_TEST_KAFKA3
# (default 3.9.1): librdkafka before 2.6.1 (Debian 12 has 2.0.2) fails
# SCRAM against 4.x brokers (confluentinc/librdkafka#4895), not against 3.9.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
kafka=$top/contrib/kafka.sh
: "${ORDERD_TEST_REDIS_PORT:?run through tests/servers.sh}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/kafka_security.XXXXXX")
k4=$dir/kafka-4
k3=$dir/kafka-3
v3=${ORDERD_TEST_KAFKA3:-3.9.1}
orders=${ORDERD_SECURITY_ORDERS:-300}
skus=10
stock=100
name=ks$$
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
# check DESCRIPTION EXPR [FILE [LINES]]: FILE's tail (15 lines) is shown
# when EXPR fails.
check() {
	if eval "$2"; then ok "$1"; else
		not_ok "$1"
		[ -z "${3:-}" ] || tail -n "${4:-15}" "$3" 2>/dev/null | sed 's/^/# /'
	fi
}
finish() {
	echo "1..$n"
	# Keep the scratch (logs, broker logs, PKI) of a failed run for a look.
	if [ "$fails" = 0 ] && [ -z "${ORDERD_KEEP_RUN:-}" ]; then
		rm -rf "$dir"
	else
		echo "# scratch kept in $dir"
	fi
	exit $((fails > 0))
}

pids=
cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	"$kafka" stop "$k4" >/dev/null 2>&1
	"$kafka" stop "$k3" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the brokers: both start at once, each fails the test on its own ----
# The 4.x broker is kafka.sh's default version, whatever the caller set.
(unset KAFKA_VERSION; exec "$kafka" start-secure "$k4") >"$dir/k4.start" 2>"$dir/k4.err" &
s4=$!
KAFKA_VERSION=$v3 "$kafka" start-secure "$k3" >"$dir/k3.start" 2>"$dir/k3.err" &
s3=$!
wait "$s4"
r4=$?
wait "$s3"
r3=$?
v4=$(cat "$k4/version" 2>/dev/null)
check "a secured Kafka $v4 broker starts (SASL_SSL and SSL listeners)" \
	'[ "$r4" = 0 ] && [ -s "$k4/sasl_ssl" ] && [ -s "$k4/ssl" ]' "$dir/k4.err" 100
check "a secured Kafka $v3 broker starts" \
	'[ "$r3" = 0 ] && [ -s "$k3/sasl_ssl" ] && [ -s "$k3/ssl" ]' "$dir/k3.err" 100
[ "$r4" = 0 ] && [ "$r3" = 0 ] || finish

# ---- least privilege: what each program does, and nothing more ----------
# orderd consumes orders and payments in group orderd; its restore reads
# the changelog with group.id orderd-restore, assigned, never joined nor
# committed, which librdkafka still looks up (FindCoordinator: DESCRIBE on
# the group).  It produces idempotently: InitProducerId without a
# transactional id needs IdempotentWrite on the cluster OR Write on any
# topic (KIP-679; KafkaApis of 3.9 and 4.1), so Write on its own topics is
# enough, and Produce checks only Write on each topic.
# paysim consumes payment-requests in group orderd-paysim and produces
# payments.  loadgen produces orders and reads order-events by assign(),
# as group orderd-loadgen-ID_PREFIX (never joined: DESCRIBE is enough).
# orderctl creates the topics and reads the changelog (reconcile
# --changelog, assigned, as group orderctl-reconcile-PID).  Without
# DESCRIBE on those assign-only groups orderd and loadgen log
# "FindCoordinator response error: Group authorization failed" and go on,
# but orderctl reconcile --changelog fails on it.  READ and WRITE each
# imply DESCRIBE: the DESCRIBEs beside them only spell it out.
grant() {
	"$kafka" acl "$1" - >"$1.acl.log" 2>&1 <<'ACLS'
--add --allow-principal User:orderd --operation Read --operation Describe --topic orders --topic payments
--add --allow-principal User:orderd --operation Write --operation Describe --topic payment-requests --topic order-events --topic orders.dlq
--add --allow-principal User:orderd --operation Read --operation Write --operation Describe --topic orderd.state
--add --allow-principal User:orderd --operation Read --group orderd
--add --allow-principal User:orderd --operation Describe --group orderd-restore
--add --allow-principal User:paysim --operation Read --operation Describe --topic payment-requests
--add --allow-principal User:paysim --operation Write --operation Describe --topic payments
--add --allow-principal User:paysim --operation Read --group orderd-paysim
--add --allow-principal User:loadgen --operation Write --operation Describe --topic orders
--add --allow-principal User:loadgen --operation Read --operation Describe --topic order-events
--add --allow-principal User:loadgen --operation Describe --resource-pattern-type prefixed --group orderd-loadgen-
--add --allow-principal User:orderctl --operation Create --topic orders --topic payments --topic payment-requests --topic order-events --topic orders.dlq --topic orderd.state
--add --allow-principal User:orderctl --operation Read --operation Describe --topic orderd.state
--add --allow-principal User:orderctl --operation Describe --resource-pattern-type prefixed --group orderctl-reconcile-
ACLS
}
grant "$k4" &
g4=$!
grant "$k3" &
g3=$!
wait "$g4"
r4=$?
wait "$g3"
r3=$?
check "least-privilege ACLs added on Kafka $v4" '[ "$r4" = 0 ]' "$k4.acl.log"
check "least-privilege ACLs added on Kafka $v3" '[ "$r3" = 0 ]' "$k3.acl.log"
[ "$r4" = 0 ] && [ "$r3" = 0 ] || finish

# ---- configurations -----------------------------------------------------
# kafka_keys PRINCIPAL HOW BROKER_DIR [inline]: the librdkafka keys of
# PRINCIPAL (inline: every password in the keys, for kcat).
# HOW is plain (SASL PLAIN over TLS), scram (SCRAM-SHA-256 over TLS) or
# mtls (the SSL listener, the principal's client certificate).
kafka_keys() {
	case $2 in
	plain | scram)
		echo "bootstrap.servers = $(cat "$3/sasl_ssl")"
		echo "security.protocol = SASL_SSL"
		if [ "$2" = plain ]; then echo "sasl.mechanism = PLAIN"; else
			echo "sasl.mechanism = SCRAM-SHA-256"; fi
		echo "sasl.username = $1"
		# orderd reads its password from a file (as the README says to),
		# the others have it inline: both forms are tested.
		if [ "$1" = orderd ] && [ "${4:-}" != inline ]; then
			echo "sasl.password_file = $3/secrets/$1.password"
		else
			echo "sasl.password = $(cat "$3/secrets/$1.password")"
		fi
		;;
	mtls)
		echo "bootstrap.servers = $(cat "$3/ssl")"
		echo "security.protocol = SSL"
		echo "ssl.certificate.location = $3/pki/$1.crt"
		echo "ssl.key.location = $3/pki/$1.key"
		;;
	esac
	echo "ssl.ca.location = $3/pki/ca.crt"
}

# conf FILE PRINCIPAL HOW BROKER_DIR PREFIX JOURNAL: a program's whole
# configuration; topics and groups are the defaults the ACLs name.
conf() {
	(
		umask 077
		{
			echo "; $2 over $3 (tests/kafka_security.sh): holds its password"
			echo "[kafka]"
			kafka_keys "$2" "$3" "$4"
			echo "[redis]"
			echo "port = $ORDERD_TEST_REDIS_PORT"
			echo "prefix = $5"
			echo "[journal]"
			echo "path = $6"
			echo "[http]"
			echo "listen ="
		} >"$1"
	)
}

# kcat_conf FILE PRINCIPAL HOW BROKER_DIR: the same keys for kcat -F.
kcat_conf() { (umask 077; kafka_keys "$2" "$3" "$4" inline | sed 's/ = /=/' >"$1"); }

# Sum of one stock field over every sku of this run's prefix.
stock_sum() {
	"$bin/orderctl" -c "$1" stock show --json 2>/dev/null | python3 -c '
import json, sys
print(sum(s[sys.argv[1]] for s in json.load(sys.stdin)["skus"]))' "$2"
}
figure() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

# saga LABEL HOW BROKER_DIR PREFIX JOURNAL: topics (idempotent), stock,
# orderd + paysim + loadgen --verify for $orders orders with order ids
# LABEL-N, then every check of the run.
saga() {
	label=$1 how=$2 k=$3 prefix=$4 journal=$5
	r=$dir/$label
	mkdir -p "$r"
	for p in orderd paysim loadgen orderctl; do
		conf "$r/$p.conf" "$p" "$how" "$k" "$prefix" "$journal"
	done
	ctl="$bin/orderctl -c $r/orderctl.conf"
	$ctl topics create --partitions 3 >"$r/topics.out" 2>&1
	st=$?
	check "$label: orderctl creates the topics as User:orderctl" '[ "$st" = 0 ]' "$r/topics.out"
	i=0
	while [ "$i" -lt "$skus" ]; do
		$ctl stock add "sku-$i" "$stock" >/dev/null 2>>"$r/stock.err" || break
		i=$((i + 1))
	done
	check "$label: $skus skus get $stock more units" '[ "$i" = "$skus" ]' "$r/stock.err"
	sold0=$(stock_sum "$r/orderctl.conf" sold)

	"$bin/orderd" -c "$r/orderd.conf" 2>"$r/orderd.log" &
	opid=$!
	"$bin/orderd-paysim" -c "$r/paysim.conf" --fail-ratio 0.1 --duplicate-ratio 0.05 \
		2>"$r/paysim.log" &
	ppid=$!
	pids="$pids $opid $ppid"
	# Ready when orderd consumes (its start describes the topics); a
	# denied or failed authentication shows in its log, and it gives up.
	w=0
	until grep -q 'engine: consuming' "$r/orderd.log" 2>/dev/null; do
		kill -0 "$opid" 2>/dev/null || break
		w=$((w + 1))
		[ "$w" -lt 600 ] || break
		sleep 0.1
	done
	if ! grep -q 'engine: consuming' "$r/orderd.log" 2>/dev/null; then
		# Nothing after this could pass: fail it, do not wait on loadgen.
		not_ok "$label: orderd authenticates and consumes"
		tail -n 15 "$r/orderd.log" | sed 's/^/# /'
		kill -9 "$opid" "$ppid" 2>/dev/null
		wait "$opid" "$ppid" 2>/dev/null
		return
	fi
	ok "$label: orderd authenticates and consumes"
	"$bin/orderd-loadgen" -c "$r/loadgen.conf" --orders "$orders" --skus "$skus" \
		--id-prefix "$label-" --verify --timeout-s 240 >"$r/figures" 2>"$r/loadgen.log"
	lg=$?
	# A SIGHUP after the secret file changed: reported, never shown.
	if [ "$how" != mtls ]; then
		hup=$(grep -c 'config: reloaded' "$r/orderd.log")
		cp -p "$k/secrets/orderd.password" "$r/orderd.password.was"
		(umask 077; echo "$rotated" >"$k/secrets/orderd.password")
		kill -HUP "$opid" 2>/dev/null
		w=0
		while [ "$(grep -c 'config: reloaded' "$r/orderd.log")" = "$hup" ] && [ "$w" -lt 300 ]; do
			sleep 0.1
			w=$((w + 1))
		done
		mv "$r/orderd.password.was" "$k/secrets/orderd.password"
		check "$label: a SIGHUP with a new password in sasl.password_file says so, restart to apply" \
			'grep -q "kafka.sasl.password_file: $k/secrets/orderd.password holds a new secret; restart to apply" "$r/orderd.log"' \
			"$r/orderd.log"
	fi
	kill -TERM "$ppid" 2>/dev/null
	wait "$ppid"
	kill -TERM "$opid" 2>/dev/null
	wait "$opid"
	od=$?
	check "$label: loadgen saw every order answered (missing 0, no conflicts)" \
		'[ "$lg" = 0 ] && [ "$(figure "$r/figures" missing)" = 0 ] &&
		 [ "$(figure "$r/figures" conflicts)" = 0 ]' "$r/loadgen.log"
	sed 's/^/# /' "$r/figures"
	conf_n=$(figure "$r/figures" confirmed)
	rej_n=$(figure "$r/figures" rejected)
	can_n=$(figure "$r/figures" cancelled)
	check "$label: orders were confirmed ($conf_n), and all $orders answered" \
		'[ "${conf_n:-0}" -gt 0 ] && [ $((conf_n + rej_n + can_n)) = "$orders" ]'
	check "$label: orderd stopped cleanly on SIGTERM (exit $od)" '[ "$od" = 0 ]' "$r/orderd.log"
	q() { sqlite3 "$journal" "$1" 2>/dev/null; }
	jc=$(q "SELECT count(*) FROM orders WHERE order_id LIKE '$label-%' AND state = 'CONFIRMED'")
	jr=$(q "SELECT count(*) FROM orders WHERE order_id LIKE '$label-%' AND state = 'REJECTED'")
	jx=$(q "SELECT count(*) FROM orders WHERE order_id LIKE '$label-%' AND state = 'CANCELLED'")
	check "$label: the journal agrees with loadgen ($jc confirmed, $jr rejected, $jx cancelled)" \
		'[ "$jc" = "$conf_n" ] && [ "$jr" = "$rej_n" ] && [ "$jx" = "$can_n" ]'
	# The units committed in Redis are the units of the confirmed orders.
	sold1=$(stock_sum "$r/orderctl.conf" sold)
	units=$(q "SELECT coalesce(sum(qty), 0) FROM saga_steps WHERE kind = 'commit'
		AND result = 'COMMITTED' AND order_id LIKE '$label-%'")
	check "$label: stock moved: $((sold1 - sold0)) units sold in Redis, $units committed" \
		'[ "$((sold1 - sold0))" -gt 0 ] && [ "$((sold1 - sold0))" = "$units" ] &&
		 [ "$(stock_sum "$r/orderctl.conf" reserved)" = 0 ]'
	$ctl reconcile --json >"$r/reconcile.json" 2>"$r/reconcile.err"
	st=$?
	check "$label: orderctl reconcile is clean" \
		'[ "$st" = 0 ] && grep -q "\"ok\":true" "$r/reconcile.json"' "$r/reconcile.err"
	$ctl reconcile --changelog --json >"$r/changelog.json" 2>"$r/changelog.err"
	st=$?
	check "$label: orderctl reconcile --changelog reads the state topic as User:orderctl, clean" \
		'[ "$st" = 0 ] && grep -q "\"ok\":true" "$r/changelog.json"' "$r/changelog.err"
}

rotated=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
saga plain plain "$k4" "$name-4:" "$dir/journal-4.db"
saga mtls mtls "$k4" "$name-4:" "$dir/journal-4.db"
saga scram scram "$k3" "$name-3:" "$dir/journal-3.db"

# Least privilege was enough: the authorizer (kafka.authorizer.logger)
# logged no denial while the programs ran.
grep -h "is Denied operation" "$k4/kafka.log" "$k3/kafka.log" >"$dir/denied" 2>/dev/null
check "the runs needed no operation their ACLs do not grant (no denial logged)" \
	'[ ! -s "$dir/denied" ]' "$dir/denied"

# ---- what must be refused (the 4.x broker) ----------------------------
# Each try is kcat with the keys the programs use (kcat -F), all at once:
# a refused connection is retried until -m runs out, so each waits 5 s.
neg=$dir/refused
mkdir -p "$neg"
# try NAME ARGS...: kcat -F $neg/NAME ARGS in the background, never
# hanging; status in $neg/NAME.st, stderr in $neg/NAME.err.
tries=
try() {
	t=$1
	shift
	(timeout 60 kcat -F "$neg/$t" "$@" >"$neg/$t.out" 2>"$neg/$t.err" </dev/null
		echo $? >"$neg/$t.st") &
	tries="$tries $!"
}
# refused NAME PATTERN: the try failed, saying so.
refused() { [ "$(cat "$neg/$1.st")" != 0 ] && grep -q "$2" "$neg/$1.err"; }

kcat_conf "$neg/paysim" paysim plain "$k4"
try paysim -C -t orders -o beginning -e -c 1
kcat_conf "$neg/loadgen" loadgen mtls "$k4"
echo '{"forged":true}' >"$neg/forged"
try loadgen -P -t payments -k forged "$neg/forged"
kcat_conf "$neg/badpw" orderd plain "$k4"
sed -i 's/^sasl.password=.*/sasl.password=not-the-password/' "$neg/badpw"
try badpw -L -m 5
kcat_conf "$neg/impostor" orderd mtls "$k4"
sed -i -e "s|/pki/orderd.crt|/pki/untrusted/orderd.crt|" \
	-e "s|/pki/orderd.key|/pki/untrusted/orderd.key|" "$neg/impostor"
try impostor -L -m 5
kcat_conf "$neg/nocert" orderd mtls "$k4"
sed -i '/^ssl\.\(certificate\|key\)\.location/d' "$neg/nocert"
try nocert -L -m 5
# A server with the untrusted CA's broker-ish certificate (right names,
# wrong issuer): the clients' ssl.ca.location must refuse it.
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl s_server -quiet -accept "127.0.0.1:$rport" -cert "$k4/pki/untrusted/broker.crt" \
	-key "$k4/pki/untrusted/broker.key" </dev/null >"$neg/s_server.log" 2>&1 &
spid=$!
pids="$pids $spid"
kcat_conf "$neg/rogue" orderd mtls "$k4"
sed -i "s|^bootstrap.servers=.*|bootstrap.servers=127.0.0.1:$rport|" "$neg/rogue"
try rogue -L -m 5
for p in $tries; do wait "$p"; done
kill "$spid" 2>/dev/null

check "paysim may not read orders (Topic authorization failed)" \
	'refused paysim "Topic authorization failed"' "$neg/paysim.err"
check "loadgen may not produce to payments, over mutual TLS either" \
	'refused loadgen "Topic authorization failed"' "$neg/loadgen.err"
check "a wrong PLAIN password is refused" \
	'refused badpw "Invalid username or password"' "$neg/badpw.err"
check "a client certificate CN=orderd of an untrusted CA is refused on SSL" \
	'refused impostor "alert certificate unknown"' "$neg/impostor.err"
check "no client certificate is refused on SSL" \
	'refused nocert "alert bad certificate\|alert certificate required"' "$neg/nocert.err"
check "a broker certificate of an untrusted CA is refused by the clients" \
	'refused rogue "certificate verify failed"' "$neg/rogue.err"

# ---- what orderd and the tools say when refused ---------------------------
# Each stops, exit 1, with one line naming the cause, at once: a refusal is
# not retried for the 30 s that a broker that does not answer gets.
said=$dir/said
mkdir -p "$said"
# stops WHAT CONF PATTERN PROGRAM ARGS...: PROGRAM exits 1 and its stderr
# has exactly one line matching PATTERN.
stops() {
	t=$1 c=$2 want=$3
	shift 3
	p=$1
	shift
	f=$said/$(echo "$t-$p-$*" | tr -c 'A-Za-z0-9\n' '_')
	timeout 60 "$bin/$p" -c "$c" "$@" >"$f.out" 2>"$f.err" </dev/null
	st=$?
	check "$t: $p $* exits 1 with one line: $want" \
		'[ "$st" = 1 ] && [ "$(grep -c -- "$want" "$f.err")" = 1 ]' "$f.err"
}
conf "$said/badpw.conf" orderd plain "$k4" "$name-n:" "$dir/journal-n.db"
(umask 077; echo not-the-password >"$said/badpw")
sed -i "s|^sasl.password_file = .*|sasl.password_file = $said/badpw|" "$said/badpw.conf"
auth="kafka: authentication failed: the broker refused the credentials .*Invalid username or password"
stops "a wrong password" "$said/badpw.conf" "cannot start: $auth" orderd
stops "a wrong password" "$said/badpw.conf" "$auth" orderd-paysim
stops "a wrong password" "$said/badpw.conf" "$auth" orderd-loadgen --orders 1
stops "a wrong password" "$said/badpw.conf" "$auth" orderctl topics create
stops "a wrong password" "$said/badpw.conf" "$auth" orderctl reconcile --changelog
conf "$said/ca.conf" orderd plain "$k4" "$name-n:" "$dir/journal-n.db"
sed -i "s|^ssl.ca.location = .*|ssl.ca.location = $k4/pki/untrusted/ca.crt|" "$said/ca.conf"
stops "a broker certificate the CA does not sign" "$said/ca.conf" \
	"cannot start: kafka: TLS certificate: the broker's certificate is not trusted .*certificate verify failed.*check kafka.ssl.ca.location" orderd
conf "$said/impostor.conf" orderd mtls "$k4" "$name-n:" "$dir/journal-n.db"
sed -i -e "s|/pki/orderd.crt|/pki/untrusted/orderd.crt|" \
	-e "s|/pki/orderd.key|/pki/untrusted/orderd.key|" "$said/impostor.conf"
stops "a client certificate of an untrusted CA" "$said/impostor.conf" \
	"cannot start: kafka: TLS certificate: the broker refused our client certificate" orderd
# SCRAM against Kafka 4 with librdkafka < 2.6.1: said in the same line.
conf "$said/scram4.conf" orderd scram "$k4" "$name-n:" "$dir/journal-n.db"
rdk=$(pkg-config --modversion rdkafka 2>/dev/null || echo 0)
if [ "$(printf '%s\n2.6.1\n' "$rdk" | sort -V | head -n 1)" != 2.6.1 ]; then
	stops "SCRAM against Kafka $v4 with librdkafka $rdk" "$said/scram4.conf" \
		"librdkafka $rdk has a SCRAM bug that Kafka 4 brokers refuse (fixed in 2.6.1, confluentinc/librdkafka#4895): use sasl.mechanism = PLAIN over SASL_SSL, or mutual TLS" orderd
else
	timeout 60 "$bin/orderctl" -c "$said/scram4.conf" topics create >"$said/scram4.out" 2>&1
	st=$?
	check "SCRAM against Kafka $v4 works with librdkafka $rdk" '[ "$st" = 0 ]' "$said/scram4.out"
fi

# A principal with one right missing at a time: User:limited, by a client
# certificate of the test CA, on topics and a group of its own.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$said/limited.key" 2>/dev/null
chmod 600 "$said/limited.key"
openssl req -new -key "$said/limited.key" -subj "/O=orderd tests/CN=limited" 2>/dev/null |
	openssl x509 -req -CA "$k4/pki/ca.crt" -CAkey "$k4/pki/ca.key" -days 1 \
		-set_serial "0x$(openssl rand -hex 8)" -out "$said/limited.crt" 2>/dev/null
lt=$name-lim
conf "$said/limited.conf" orderd mtls "$k4" "$lt:" "$said/limited.db"
sed -i -e "s|^ssl.certificate.location = .*|ssl.certificate.location = $said/limited.crt|" \
	-e "s|^ssl.key.location = .*|ssl.key.location = $said/limited.key|" "$said/limited.conf"
printf '[topics]\norders = %s.orders\npayments = %s.payments\npayment_requests = %s.payment-requests\norder_events = %s.order-events\ndlq = %s.dlq\nstate = %s.state\n[consumer]\ngroup = %s\n' \
	"$lt" "$lt" "$lt" "$lt" "$lt" "$lt" "$lt" >>"$said/limited.conf"
"$kafka" topics "$k4" "$lt.orders:1" "$lt.payments:1" "$lt.payment-requests:1" \
	"$lt.order-events:1" "$lt.dlq:1" "$lt.state:1" >"$said/topics.log" 2>&1
st=$?
printf '%s\n' \
	"--add --allow-principal User:limited --operation Read --topic $lt.orders" \
	"--add --allow-principal User:limited --operation Write --topic $lt.order-events --topic $lt.dlq" \
	"--add --allow-principal User:limited --operation Describe --topic $lt.payment-requests" \
	"--add --allow-principal User:limited --operation Read --operation Write --topic $lt.state" \
	"--add --allow-principal User:limited --operation Describe --group orderd-restore" |
	"$kafka" acl "$k4" - >"$said/acl.log" 2>&1
ast=$?
check "User:limited's topics and ACLs are set up" '[ "$st" = 0 ] && [ "$ast" = 0 ]' "$said/acl.log"
stops "no READ on the payments topic" "$said/limited.conf" \
	"cannot start: kafka: not authorized to describe topic '$lt.payments': this principal needs READ" orderd
"$kafka" acl "$k4" --add --allow-principal User:limited --operation Read --topic "$lt.payments" \
	>>"$said/acl.log" 2>&1
stops "no READ on the consumer group" "$said/limited.conf" \
	"cannot go on, stopping (exit 1): kafka: not authorized to use its consumer group .*READ on group '$lt'" orderd
"$kafka" acl "$k4" --add --allow-principal User:limited --operation Read --group "$lt" \
	>>"$said/acl.log" 2>&1
# An order whose PaymentRequested it may not write (admin produces it).
conf "$said/admin.conf" admin plain "$k4" "$lt:" "$said/admin.db"
printf '[topics]\norders = %s.orders\norder_events = %s.order-events\n' "$lt" "$lt" >>"$said/admin.conf"
"$bin/orderctl" -c "$said/admin.conf" stock add sku-0 5 >/dev/null 2>>"$said/admin.log"
(timeout 60 "$bin/orderd" -c "$said/limited.conf" >"$said/nowrite.out" 2>"$said/nowrite.err"
	echo $? >"$said/nowrite.st") &
wpid=$!
w=0
until grep -q 'engine: assigned partitions' "$said/nowrite.err" 2>/dev/null || [ "$w" -ge 300 ]; do
	sleep 0.1
	w=$((w + 1))
done
"$bin/orderd-loadgen" -c "$said/admin.conf" --orders 1 --skus 1 --lines-max 1 \
	--sku-prefix sku- >/dev/null 2>>"$said/admin.log"
wait "$wpid"
st=$(cat "$said/nowrite.st")
want="cannot go on, stopping (exit 1): kafka: not authorized to write to topic '$lt.payment-requests' (outbox row [0-9]*): this principal needs WRITE"
check "no WRITE on payment-requests: orderd exits 1 with one line: $want" \
	'[ "$st" = 1 ] && [ "$(grep -c -- "$want" "$said/nowrite.err")" = 1 ]' "$said/nowrite.err"
check "... and its PaymentRequested waits in the outbox for a start with the right granted" \
	'[ "$(sqlite3 "$said/limited.db" "SELECT count(*) FROM outbox WHERE topic = '"'"'$lt.payment-requests'"'"' AND published_at IS NULL")" = 1 ]'

# No secret in anything the programs wrote, --check-config included.
"$bin/orderd" -c "$dir/plain/orderd.conf" -s "kafka.ssl.key.password=$rotated" --check-config \
	>"$said/check-config.out" 2>&1
check "--check-config shows the secrets as [redacted]" \
	'grep -qx "ssl.key.password = \[redacted\]" "$said/check-config.out"' "$said/check-config.out"
leaks=
for f in $(find "$dir" \( -name '*.log' -o -name '*.err' -o -name '*.out' -o -name '*.json' \
	-o -name figures \) ! -path '*/kafka-[34]/*' ! -path "$neg/*"); do
	for pw in "$k4"/secrets/*.password "$k3"/secrets/*.password; do
		grep -qF -- "$(cat "$pw")" "$f" && leaks="$leaks $f"
	done
	grep -qF -- "$rotated" "$f" && leaks="$leaks $f"
done
check "no password in any log or output of orderd, paysim, loadgen and orderctl$leaks" '[ -z "$leaks" ]'
finish


#!/bin/sh
# kafka.sh: run a real throwaway single-node KRaft Kafka broker on loopback for tests, benchmarks and the demo.
#
#   kafka.sh fetch                      resolve the broker jars into the cache
#   kafka.sh start DIR                  start a broker in DIR; prints host:port
#   kafka.sh start-secure DIR           start a secured broker in DIR: SASL_SSL
#                                       and SSL (mutual TLS) listeners, ACLs;
#                                       prints "sasl_ssl HOST:PORT", "ssl HOST:PORT"
#   kafka.sh stop DIR                   stop it (no-op if not running)
#   kafka.sh restart DIR                stop + start, same ports, data and mode
#   kafka.sh topics DIR NAME:PARTS...   create topics (idempotent)
#   kafka.sh acl DIR ARGS...            AclCommand against a secured broker, as admin
#   kafka.sh acl DIR - <LINES           the same once per line of ARGS, one JVM
#   kafka.sh tool DIR CLASS ARGS...     run any Kafka Java class
#
# Env: KAFKA_VERSION (default 4.1.1; e.g. 3.9.1, jars cached apart in
# $ORDERD_CACHE/kafka-VERSION; a DIR keeps the version it was first started
# with), ORDERD_CACHE (default <repo>/.cache), KAFKA_HEAP (default 1g),
# KAFKA_START_TIMEOUT (seconds a start may take, default 180).
#
# The secured broker (start-secure) uses the PKI of DIR/pki (tests/pki.sh
# makes one when there is none: the test CA, the broker's certificate, a
# client certificate per principal of PRINCIPALS below).  Listeners, all on
# 127.0.0.1: SASL_SSL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; the passwords,
# random per DIR, in DIR/secrets/NAME.password, mode 0600), SSL with client
# certificates required (principal User:CN), and the controller on SSL with
# client certificates too.  StandardAuthorizer, nothing allowed without an
# ACL; super users User:admin and User:kafka-broker (the broker's own
# certificate, for its controller and inter-broker connections).  It writes
# DIR/sasl_ssl and DIR/ssl (HOST:PORT), DIR/admin.properties (a Java client
# configuration for admin over SASL_SSL, used by topics, acl and for
# "tool ... --command-config") and DIR/kcat.conf (the same for kcat -F).
set -eu

# bench.sh reads the default from the line below: keep it literal.
env_version=${KAFKA_VERSION:-}
KAFKA_VERSION=4.1.1
[ -z "$env_version" ] || KAFKA_VERSION=$env_version
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${ORDERD_CACHE:-$ROOT/.cache}
POM=$ROOT/contrib/kafka/pom.xml
PRINCIPALS="orderd orderctl paysim loadgen admin"

die() { echo "kafka: $*" >&2; exit 1; }

# Where the jars of KAFKA_VERSION live; the version is also a path part.
set_version() {
	case $KAFKA_VERSION in
	[0-9]*.[0-9]*.[0-9]*) ;;
	*) die "KAFKA_VERSION '$KAFKA_VERSION' is not MAJOR.MINOR.PATCH" ;;
	esac
	case $KAFKA_VERSION in *[!0-9.]*) die "KAFKA_VERSION '$KAFKA_VERSION' is not MAJOR.MINOR.PATCH" ;; esac
	KAFKA_MAJOR=${KAFKA_VERSION%%.*}
	KHOME=$CACHE/kafka-$KAFKA_VERSION
	LIBS=$KHOME/libs
	STAMP=$KHOME/fetched
}
set_version

# A DIR keeps the version of its first start: its data and its tools match
# the broker.  An explicit other KAFKA_VERSION for it is a mistake.
dir_version() {
	[ -s "$1/version" ] || return 0
	v=$(cat "$1/version")
	if [ -n "$env_version" ] && [ "$env_version" != "$v" ]; then
		die "$1 holds a Kafka $v broker, not $env_version"
	fi
	KAFKA_VERSION=$v
	set_version
}

# plain or secure: recorded at the first start, so restart keeps it.
mode_of() { cat "$1/mode" 2>/dev/null || echo plain; }

# kill -0 alone is not enough: a broker that died while we still wait on it
# is our zombie child, and a reused PID may belong to something else.
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	case $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) in Z|X|'') return 1 ;; esac
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q "kafka\.Kafka $2/server.properties"
}

fetch() {
	# The stamp holds the hash of the pom and the version, so editing the
	# pom refetches while an unchanged cache costs neither network nor a
	# Maven start.
	want=$({ cat "$POM"; echo "kafka.version=$KAFKA_VERSION"; } | sha256sum | cut -d' ' -f1)
	[ "$(cat "$STAMP" 2>/dev/null)" = "$want" ] && return 0
	mkdir -p "$KHOME"
	# Parallel test jobs may all call start on a cold cache.
	exec 9>"$KHOME/.lock"
	flock 9
	if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
		rm -rf "$LIBS"
		out=$KHOME/fetch.log
		if ! mvn -q -B -f "$POM" dependency:copy-dependencies \
			-Dkafka.version="$KAFKA_VERSION" -DoutputDirectory="$LIBS" >"$out" 2>&1; then
			tail -n 40 "$out" >&2
			die "fetching jars with Maven failed"
		fi
		ls "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null 2>&1 || die "no Kafka $KAFKA_VERSION jar in $LIBS"
		echo "$want" >"$STAMP"
	fi
	exec 9>&-
}

# The first InitProducerId after a broker start only triggers allocation of
# a producer-id block and fails with COORDINATOR_LOAD_IN_PROGRESS, which
# librdkafka logs as a warning and retries 500 ms later.  Sending one here
# (InitProducerId v0, no transactional id) makes the broker really ready for
# idempotent producers.  Exit 0 once the broker hands out a producer id.
# init_pid PORT [CA CERT KEY]: with the three files, over mutual TLS (the
# secured broker's SSL listener, as a principal allowed to ask).
init_pid() {
	python3 -c 'import socket,ssl,struct,sys
c=b"kafka.sh"
b=struct.pack(">hhih",22,0,1,len(c))+c+struct.pack(">hi",-1,60000)
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),5)
if len(sys.argv)>2:
    t=ssl.create_default_context(cafile=sys.argv[2])
    t.load_cert_chain(sys.argv[3],sys.argv[4])
    s=t.wrap_socket(s,server_hostname="127.0.0.1")
s.sendall(struct.pack(">i",len(b))+b)
r=b""
while len(r)<14:
    d=s.recv(64)
    if not d: sys.exit(1)
    r+=d
sys.exit(struct.unpack(">h",r[12:14])[0]!=0)' "$@" 2>/dev/null
}

# Two ports held open at once so they differ; the tiny race until the broker
# binds them is acceptable for a test helper.
free_ports() {
	python3 -c 'import socket,sys
s=[socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1",0))
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
}

absdir() { mkdir -p "$1" && (cd "$1" && pwd); }

# What both modes share: one node, one replica of everything, no topic
# created by accident.
common_config() {
	cat <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
controller.listener.names=CONTROLLER
log.dirs=$D/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# After a kill -9 the new incarnation cannot register until the old one's
# session expires (default 9 s); crash-restart tests want that short.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
EOF
	# Share groups (and their state topic) came with 4.0; 3.x would only
	# warn about an unknown key.
	if [ "$KAFKA_MAJOR" -ge 4 ]; then
		echo "share.coordinator.state.topic.replication.factor=1"
	fi
}

write_config() {
	{
		echo "# Written by contrib/kafka.sh: single-node KRaft, broker and controller in one."
		echo "listeners=PLAINTEXT://127.0.0.1:$BPORT,CONTROLLER://127.0.0.1:$CPORT"
		echo "advertised.listeners=PLAINTEXT://127.0.0.1:$BPORT"
		echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
		echo "inter.broker.listener.name=PLAINTEXT"
		common_config
	} >"$D/server.properties"
	write_broker_log
}

write_broker_log() {
	cat >"$D/log4j2.properties" <<EOF
# Broker log goes to a file only, so the caller's terminal stays quiet.
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $D/kafka.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
# Per-request logging would drown everything else.
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
	write_tools_log
}

# Client tools must not append to the broker's log: warnings to stderr.
write_tools_log() {
	cat >"$D/tools-log4j2.properties" <<EOF
status = warn
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
EOF
}

# The secrets of a secured DIR, made once: a random password per principal
# (PLAIN and SCRAM alike) and the broker keystore's.  Kept across restarts,
# since the SCRAM credentials live in the metadata log.
make_secrets() {
	(
		umask 077
		mkdir -p "$D/secrets"
		for u in $PRINCIPALS keystore; do
			[ -s "$D/secrets/$u.password" ] ||
				openssl rand -hex 24 >"$D/secrets/$u.password"
		done
	)
	"$ROOT/tests/pki.sh" "$D/pki" $PRINCIPALS || die "making the PKI in $D/pki failed"
	if [ ! -s "$D/secrets/broker.p12" ]; then
		# Java 17 reads PKCS#12 as OpenSSL 3 makes it (AES, PBKDF2).
		( umask 077; openssl pkcs12 -export -name kafka-broker \
			-in "$D/pki/broker.crt" -inkey "$D/pki/broker.key" \
			-out "$D/secrets/broker.p12" \
			-passout "file:$D/secrets/keystore.password" ) ||
			die "making the broker keystore failed"
	fi
}

password() { cat "$D/secrets/$1.password"; }

write_secure_config() {
	jaas="org.apache.kafka.common.security.plain.PlainLoginModule required"
	for u in $PRINCIPALS; do jaas="$jaas user_$u=\"$(password "$u")\""; done
	# It holds every password (the PLAIN users are in its JAAS line).
	(umask 077; : >"$D/server.properties"); chmod 600 "$D/server.properties"
	cat >"$D/server.properties" <<EOF
# Written by contrib/kafka.sh start-secure: single-node KRaft, broker and
# controller in one, every listener on loopback and encrypted.
listeners=SASL_SSL://127.0.0.1:$SPORT,SSL://127.0.0.1:$TPORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=SASL_SSL://127.0.0.1:$SPORT,SSL://127.0.0.1:$TPORT
listener.security.protocol.map=SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:SSL
# Replication (none with one node) and the broker's own connections to the
# controller authenticate with the broker's certificate.
inter.broker.listener.name=SSL
ssl.keystore.type=PKCS12
ssl.keystore.location=$D/secrets/broker.p12
ssl.keystore.password=$(password keystore)
ssl.truststore.type=PEM
ssl.truststore.location=$D/pki/ca.crt
# Clients of SASL_SSL authenticate with SASL; SSL and the controller
# demand a certificate of the test CA.
listener.name.ssl.ssl.client.auth=required
listener.name.controller.ssl.client.auth=required
# "CN=orderd,O=orderd tests" is User:orderd.
ssl.principal.mapping.rules=RULE:^CN=([A-Za-z0-9._-]+)(,.*)?\$/\$1/,DEFAULT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=$jaas;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:kafka-broker
EOF
	common_config >>"$D/server.properties"
	(
		umask 077
		cat >"$D/admin.properties" <<EOF
# Written by contrib/kafka.sh: the admin over SASL_SSL, for Kafka's tools.
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$(password admin)";
ssl.truststore.type=PEM
ssl.truststore.location=$D/pki/ca.crt
EOF
		cat >"$D/kcat.conf" <<EOF
# Written by contrib/kafka.sh: the admin over SASL_SSL, for kcat -F.
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.username=admin
sasl.password=$(password admin)
ssl.ca.location=$D/pki/ca.crt
EOF
	)
	write_broker_log
}

# Is the broker of $D ready?  Plaintext: metadata and a producer id on its
# one listener.  Secured: metadata as admin through SASL_SSL
# (PLAIN over TLS: the JAAS users work), and a producer id as admin through
# the SSL listener (mutual TLS and the CN mapping work: admin is a super
# user only if its certificate maps to User:admin).
ready() {
	if [ "$MODE" = secure ]; then
		kcat -F "$D/kcat.conf" -b "127.0.0.1:$SPORT" -L -t __nonexistent -m 5 >/dev/null 2>&1 &&
			init_pid "$TPORT" "$D/pki/ca.crt" "$D/pki/admin.crt" "$D/pki/admin.key"
	else
		kcat -b "127.0.0.1:$BPORT" -L -t __nonexistent -m 5 >/dev/null 2>&1 &&
			init_pid "$BPORT"
	fi
}

# start DIR MODE
start() {
	D=$(absdir "$1")
	MODE=$2
	if [ -f "$D/kafka.pid" ]; then
		pid=$(cat "$D/kafka.pid")
		alive "$pid" "$D" && die "already running in $D (pid $pid)"
		rm -f "$D/kafka.pid"
	fi
	was=$(mode_of "$D")
	if [ -f "$D/data/meta.properties" ] && [ "$was" != "$MODE" ]; then
		die "$D holds a $was broker: start it with kafka.sh restart"
	fi
	dir_version "$D"
	fetch
	echo "$MODE" >"$D/mode"
	echo "$KAFKA_VERSION" >"$D/version"
	# Reusing the ports keeps the address stable across restarts, which is
	# what clients under a broker-restart test expect.
	if [ "$MODE" = secure ]; then
		if [ -s "$D/ports" ]; then
			read -r SPORT TPORT CPORT <"$D/ports"
		else
			set -- $(free_ports 3)
			SPORT=$1 TPORT=$2 CPORT=$3
			echo "$SPORT $TPORT $CPORT" >"$D/ports"
		fi
		make_secrets
		write_secure_config
	else
		if [ -s "$D/ports" ]; then
			read -r BPORT CPORT <"$D/ports"
		else
			ports=$(free_ports 2)
			BPORT=${ports% *} CPORT=${ports#* }
			echo "$BPORT $CPORT" >"$D/ports"
		fi
		write_config
	fi
	if [ ! -f "$D/data/meta.properties" ]; then
		# Same encoding as Kafka's Uuid.randomUuid(), which also avoids a
		# leading '-' that a command line would take for an option.
		cid=$(python3 -c 'import base64,uuid
while True:
    s=base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    if s[0]!="-": print(s); break')
		# SCRAM credentials go into the metadata log before the first
		# start (KRaft's way; the broker knows them from its first second).
		set --
		if [ "$MODE" = secure ]; then
			for u in $PRINCIPALS; do
				for m in SCRAM-SHA-256 SCRAM-SHA-512; do
					set -- "$@" --add-scram "$m=[name=$u,password=$(password "$u")]"
				done
			done
		fi
		if ! java -Dlog4j2.configurationFile="$D/tools-log4j2.properties" \
			-cp "$LIBS/*" kafka.tools.StorageTool format \
			--cluster-id "$cid" --config "$D/server.properties" "$@" \
			>"$D/format.out" 2>&1; then
			cat "$D/format.out" >&2
			die "storage format failed"
		fi
	fi
	# Readiness is judged only on what this run appends to the log.
	off=$(stat -c %s "$D/kafka.log" 2>/dev/null || echo 0)
	# cwd = DIR so that anything else the JVM writes (hs_err_pid*.log) lands there.
	cd "$D"
	setsid nohup java -Xmx"${KAFKA_HEAP:-1g}" -Xms256m \
		-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$D/log4j2.properties" \
		-cp "$LIBS/*" kafka.Kafka "$D/server.properties" \
		</dev/null >>"$D/kafka.out" 2>&1 &
	pid=$!
	echo "$pid" >"$D/kafka.pid"
	# A JVM on 2 busy cores (a sanitizer suite beside it) may take more
	# than a minute; KAFKA_START_TIMEOUT for slower machines still.
	deadline=$(($(date +%s) + ${KAFKA_START_TIMEOUT:-180}))
	started=
	while :; do
		if ! alive "$pid" "$D"; then break; fi
		if [ -z "$started" ] &&
			tail -c +$((off + 1)) "$D/kafka.log" 2>/dev/null | grep -q 'Kafka Server started'; then
			started=1
		fi
		if [ -n "$started" ] && ready; then
			if [ "$MODE" = secure ]; then
				echo "127.0.0.1:$SPORT" >"$D/sasl_ssl"
				echo "127.0.0.1:$TPORT" >"$D/ssl"
				echo "sasl_ssl 127.0.0.1:$SPORT"
				echo "ssl 127.0.0.1:$TPORT"
			else
				echo "127.0.0.1:$BPORT" >"$D/bootstrap"
				echo "127.0.0.1:$BPORT"
			fi
			return 0
		fi
		[ "$(date +%s)" -lt "$deadline" ] || break
		sleep 0.2
	done
	{
		echo "kafka: broker failed to start"
		# The cause (e.g. a port in use) is usually far above the shutdown
		# noise that fills the tail.
		echo "--- first errors this run"
		tail -c +$((off + 1)) "$D/kafka.log" 2>/dev/null |
			grep -A1 -E '^\[[^]]*\] (ERROR|FATAL)' | head -n 12 || true
		echo "--- $D/kafka.log (tail)"
		tail -n 40 "$D/kafka.log" 2>/dev/null || true
		echo "--- $D/kafka.out (tail)"
		tail -n 40 "$D/kafka.out" 2>/dev/null || true
	} >&2
	stop_pid "$pid" "$D"
	exit 1
}

stop_pid() {
	alive "$1" "$2" || { rm -f "$2/kafka.pid"; return 0; }
	kill -TERM "$1" 2>/dev/null || true
	i=0
	while alive "$1" "$2" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	if alive "$1" "$2"; then
		echo "kafka: pid $1 ignored SIGTERM for 30 s, killing" >&2
		kill -KILL "$1" 2>/dev/null || true
		while alive "$1" "$2"; do sleep 0.1; done
	fi
	rm -f "$2/kafka.pid"
}

stop() {
	[ -d "$1" ] || return 0
	D=$(absdir "$1")
	[ -f "$D/kafka.pid" ] || return 0
	stop_pid "$(cat "$D/kafka.pid")" "$D"
}

# The address tools use: the plaintext listener, or the secured broker's
# SASL_SSL one (with admin.properties).
bootstrap_of() {
	if [ "$(mode_of "$1")" = secure ]; then
		[ -s "$1/sasl_ssl" ] || die "no secured broker started in $1"
		cat "$1/sasl_ssl"
	else
		[ -s "$1/bootstrap" ] || die "no broker started in $1"
		cat "$1/bootstrap"
	fi
}

tool() {
	D=$(absdir "$1")
	shift
	dir_version "$D"
	fetch
	[ -f "$D/tools-log4j2.properties" ] || write_tools_log
	exec java -Dlog4j2.configurationFile="$D/tools-log4j2.properties" \
		-cp "$LIBS/*" "$@"
}

topics() {
	D=$(absdir "$1")
	shift
	bs=$(bootstrap_of "$D")
	# The admin's client configuration, when secured.
	cfg=
	[ "$(mode_of "$D")" != secure ] || cfg=$D/admin.properties
	dir_version "$D"
	fetch
	# TopicCommand creates one topic per run and its main() calls exit, so
	# this is one short-lived JVM per topic (~0.7 s each with these flags,
	# ~1 s without).
	for t in "$@"; do
		name=${t%%:*}
		parts=${t#*:}
		[ -n "$name" ] && [ "$parts" != "$t" ] || die "topic '$t' is not NAME:PARTITIONS"
		java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
			-Dlog4j2.configurationFile="$D/tools-log4j2.properties" \
			-cp "$LIBS/*" org.apache.kafka.tools.TopicCommand \
			--bootstrap-server "$bs" ${cfg:+--command-config "$cfg"} --create --if-not-exists \
			--topic "$name" --partitions "$parts" --replication-factor 1 \
			>/dev/null || die "creating topic $name failed"
	done
}

# AclCommand moved from core (Scala) to the tools in 4.0.  With "-" as the
# only argument, one AclCommand per line of stdin, all in one JVM
# (contrib/kafka/EachLine.java).
acl() {
	D=$(absdir "$1")
	shift
	[ "$(mode_of "$D")" = secure ] || die "$D holds no secured broker (kafka.sh start-secure)"
	bs=$(bootstrap_of "$D")
	dir_version "$D"
	fetch
	if [ "$KAFKA_MAJOR" -ge 4 ]; then cls=org.apache.kafka.tools.AclCommand; else cls=kafka.admin.AclCommand; fi
	if [ "$*" = - ]; then
		set -- "$ROOT/contrib/kafka/EachLine.java" "$cls"
	else
		set -- "$cls" "$@"
	fi
	exec java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
		-Dlog4j2.configurationFile="$D/tools-log4j2.properties" \
		-cp "$LIBS/*" "$@" --bootstrap-server "$bs" \
		--command-config "$D/admin.properties"
}

usage() {
	sed -n '4,14s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
fetch) fetch ;;
start) [ $# -eq 1 ] || usage; start "$1" plain ;;
start-secure) [ $# -eq 1 ] || usage; start "$1" secure ;;
stop) [ $# -eq 1 ] || usage; stop "$1" ;;
restart) [ $# -eq 1 ] || usage; stop "$1"; start "$1" "$(mode_of "$1")" ;;
topics) [ $# -ge 2 ] || usage; topics "$@" ;;
acl) [ $# -ge 2 ] || usage; acl "$@" ;;
tool) [ $# -ge 2 ] || usage; tool "$@" ;;
*) usage ;;
esac

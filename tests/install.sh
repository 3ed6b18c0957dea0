#!/bin/sh
# install.sh: 'make install DESTDIR=...' from the build tree, then the installed programs take one order through a real broker and Redis.
#
# Checks what lands where (programs, lua/, sql/, the sample configuration,
# 0640 where the operator edits it, the systemd unit, which systemd-analyze
# verifies and rates no worse than the exposure it was brought down to,
# the man pages, which must render without a warning),
# runs the INSTALLED orderd, orderd-paysim, orderd-loadgen and orderctl
# with the installed configuration (ORDERD_DATADIR points at the installed
# data: DESTDIR keeps the compiled-in paths) and -s overrides for the test
# servers, takes one order to CONFIRMED, and checks sd_notify when built
# --with-systemd.  Then a reinstall keeps an edited configuration and
# uninstall removes everything but it.  Needs tests/servers.sh; TAP output.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${ORDERD_BUILDDIR:-$(pwd)}
: "${ORDERD_TEST_BOOTSTRAP:?run through tests/servers.sh}"
: "${ORDERD_TEST_REDIS_PORT:?run through tests/servers.sh}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/install.XXXXXX")
root=$tmp/root
n=0
fails=0
opid=
ppid=
npid=
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
note() { echo "# $*"; }
cleanup() { for p in $opid $ppid $npid; do kill -9 "$p" 2>/dev/null; done; }
trap cleanup EXIT
# The build's installation directories, as make expands them.
dirs() {
	printf 'print-install-dirs:\n\t@echo "$(bindir)|$(pkgdatadir)|$(sysconfdir)|$(mandir)|$(systemdunitdir)|$(SYSTEMD_SERVICE_TYPE)"\n' |
		make -s --no-print-directory -C "$build" -f Makefile -f - print-install-dirs
}
t0=$(date +%s)

IFS='|' read -r bindir pkgdatadir sysconfdir mandir unitdir type <<EOF
$(dirs)
EOF
note "build $build: bindir $bindir, pkgdatadir $pkgdatadir, sysconfdir $sysconfdir, unit Type=$type"
make -C "$build" install DESTDIR="$root" >"$tmp/install.log" 2>&1
check "make install DESTDIR=... succeeds" '[ $? = 0 ]' || true
[ "$fails" = 0 ] || { sed 's/^/# /' "$tmp/install.log" | tail -n 20; }

# 1. What lands where.
for p in orderd orderctl orderd-paysim orderd-loadgen; do
	check "program $bindir/$p" '[ -x "$root$bindir/$p" ]'
done
check "lua/: reserve, commit, release, stock_add" \
	'(for s in reserve commit release stock_add; do [ -s "$root$pkgdatadir/lua/$s.lua" ] || exit 1; done)'
check "sql/: schema, queries, reports, audit" \
	'(for s in schema queries reports audit; do [ -s "$root$pkgdatadir/sql/$s.sql" ] || exit 1; done)'
conf=$root$sysconfdir/orderd/orderd.conf
check "the sample configuration as $sysconfdir/orderd/orderd.conf and $pkgdatadir/orderd.conf" \
	'cmp -s "$top/contrib/orderd.conf" "$conf" && cmp -s "$top/contrib/orderd.conf" "$root$pkgdatadir/orderd.conf"'
# The operator's copy may hold secrets; the reference sample is public.
check "$sysconfdir/orderd/orderd.conf is mode 0640, $pkgdatadir/orderd.conf 0644" \
	'[ "$(stat -c %a "$conf")" = 640 ] && [ "$(stat -c %a "$root$pkgdatadir/orderd.conf")" = 644 ]' ||
	note "modes: $(stat -c '%a %n' "$conf" "$root$pkgdatadir/orderd.conf" | tr '\n' ' ')"
unit=$root$unitdir/orderd.service
check "the unit $unitdir/orderd.service: Type=$type, the installed paths, user orderd, state in /var/lib/orderd" \
	'grep -qx "Type=$type" "$unit" &&
	 grep -qx "ExecStart=$bindir/orderd -c $sysconfdir/orderd/orderd.conf" "$unit" &&
	 grep -qx "User=orderd" "$unit" && grep -qx "StateDirectory=orderd" "$unit" &&
	 grep -qx "Restart=on-failure" "$unit" && grep -qx "KillSignal=SIGTERM" "$unit" &&
	 grep -qxF "ExecReload=/bin/kill -HUP \$MAINPID" "$unit" &&
	 grep -qx "NoNewPrivileges=yes" "$unit" && grep -qx "ProtectSystem=strict" "$unit" &&
	 ! grep -q "@[a-zA-Z_]*@" "$unit"'
if command -v systemd-analyze >/dev/null 2>&1; then
	# verify wants ExecStart to exist: point it into DESTDIR.
	sed "s|^ExecStart=$bindir/|ExecStart=$root$bindir/|" "$unit" >"$tmp/orderd.service"
	systemd-analyze verify --man=no "$tmp/orderd.service" >"$tmp/verify.out" 2>&1
	check "systemd-analyze verify finds nothing to say about the unit" \
		'[ $? = 0 ] && [ ! -s "$tmp/verify.out" ]' || sed 's/^/# /' "$tmp/verify.out"
	# The exposure contrib/orderd.service.in was brought down to (its
	# comment says what remains open and why): a change that loosens the
	# sandbox fails here.
	max_exposure=1.1
	SYSTEMD_COLORS=0 systemd-analyze security --offline=yes --no-pager "$tmp/orderd.service" \
		>"$tmp/security.out" 2>&1
	exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p' "$tmp/security.out")
	note "systemd-analyze security --offline=yes: exposure ${exposure:-unknown} (at most $max_exposure); open:"
	grep '✗' "$tmp/security.out" | sed 's/^✗ *\([^ ]*\).* \([0-9.]*\)$/#   \1 \2/'
	check "systemd-analyze security: exposure ${exposure:-unknown} <= $max_exposure" \
		'[ -n "$exposure" ] && awk -v e="$exposure" -v m="$max_exposure" "BEGIN { exit !(e <= m) }"' ||
		sed 's/^/# /' "$tmp/security.out" | tail -n 5
else
	not_ok "systemd-analyze is installed (contrib/install-deps.sh) to verify the unit"
fi
for m in man8/orderd.8 man8/orderctl.8 man5/orderd.conf.5; do
	page=$root$mandir/$m
	if [ -s "$page" ]; then
		groff -man -Tutf8 -ww -z "$page" >"$tmp/groff.out" 2>&1
		check "$mandir/$m renders without a warning (groff -man -ww)" \
			'[ $? = 0 ] && [ ! -s "$tmp/groff.out" ]' || sed 's/^/# /' "$tmp/groff.out"
		mandoc -Tlint "$page" >"$tmp/mandoc.out" 2>&1
		check "$mandir/$m passes mandoc -Tlint" \
			'[ $? = 0 ] && [ ! -s "$tmp/mandoc.out" ]' || sed 's/^/# /' "$tmp/mandoc.out"
	else
		not_ok "$mandir/$m installed"
	fi
done
check "orderd.conf(5) documents every key of the sample" \
	'(for k in $(sed -n "s/^\([a-z_.]*\) *=.*/\1/p" "$conf"); do
	   groff -man -Tutf8 "$root$mandir/man5/orderd.conf.5" 2>/dev/null | sed "s/\x1b\[[0-9;]*m//g; s/.\x08//g" |
	     grep -qE "^ {7}$k( |\$)" || { echo "# orderd.conf.5 lacks $k"; exit 1; }; done)'

# 2. The installed programs, with the installed configuration.
ORDERD_DATADIR=$root$pkgdatadir
export ORDERD_DATADIR
ibin=$root$bindir
name=inst$$-$(date +%s)
# Word-split on purpose ($O unquoted): check's eval sees it, which "$@" in
# a function would not; the scratch paths have no blanks (mktemp).
O="-c $conf -s kafka.bootstrap.servers=$ORDERD_TEST_BOOTSTRAP
 -s redis.port=$ORDERD_TEST_REDIS_PORT -s redis.prefix=$name:
 -s journal.path=$tmp/journal.db -s topics.orders=$name.orders
 -s topics.payments=$name.payments -s topics.payment_requests=$name.payment-requests
 -s topics.order_events=$name.order-events -s topics.dlq=$name.dlq
 -s topics.state=$name.state
 -s consumer.group=$name -s http.listen="
check "installed orderd --check-config reads the installed configuration" \
	'"$ibin/orderd" $O --check-config >"$tmp/check.out" 2>"$tmp/check.err" &&
	 grep -q "configuration OK ($conf)" "$tmp/check.err"'
check "installed orderd --version, orderctl --version" \
	'"$ibin/orderd" --version >/dev/null && "$ibin/orderctl" --version >/dev/null'
check "installed orderctl topics create" '"$ibin/orderctl" $O topics create --partitions 2 >/dev/null 2>"$tmp/topics.err"'
check "installed orderctl stock add sku-0 5" '"$ibin/orderctl" $O stock add sku-0 5 >/dev/null 2>"$tmp/stock.err"'

sock=$tmp/notify.sock
python3 - "$sock" "$tmp/notify.out" <<'PY' &
# Plays systemd's side of sd_notify: one line per datagram.
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        f.write(s.recv(4096).decode().replace("\n", " ") + "\n")
PY
npid=$!
i=0
while [ ! -S "$sock" ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
: >"$tmp/notify.out"
NOTIFY_SOCKET=$sock "$ibin/orderd" $O 2>"$tmp/orderd.log" &
opid=$!
"$ibin/orderd-paysim" $O --fail-ratio 0 --group "$name-paysim" 2>"$tmp/paysim.log" &
ppid=$!
i=0
until grep -q 'engine: consuming' "$tmp/orderd.log" 2>/dev/null; do
	if ! kill -0 "$opid" 2>/dev/null || [ "$i" -ge 300 ]; then
		sed 's/^/# /' "$tmp/orderd.log" | tail -n 20
		echo "Bail out! the installed orderd did not start"
		exit 1
	fi
	sleep 0.1; i=$((i + 1))
done
ok "the installed orderd starts with the installed lua/ and sql/"
"$ibin/orderd-loadgen" $O --orders 1 --skus 1 --lines-max 1 --qty-max 2 --id-prefix "$name-o" \
	--verify --timeout-s 60 >"$tmp/figures" 2>"$tmp/loadgen.log"
check "installed orderd-loadgen --verify: 1 order, confirmed, none missing" \
	'[ $? = 0 ] && grep -qx "confirmed 1" "$tmp/figures" && grep -qx "missing 0" "$tmp/figures"' ||
	sed 's/^/# /' "$tmp/figures" "$tmp/loadgen.log"
"$ibin/orderctl" $O order show "${name}-o0" --json >"$tmp/order.json" 2>"$tmp/order.err"
check "installed orderctl order show --json: CONFIRMED" \
	'grep -q "\"state\": *\"CONFIRMED\"" "$tmp/order.json"' || sed 's/^/# /' "$tmp/order.json" "$tmp/order.err"
if [ "$type" = notify ]; then
	kill -HUP "$opid"
	i=0
	until grep -q '^RELOADING=1' "$tmp/notify.out" && [ "$(grep -c '^READY=1' "$tmp/notify.out")" -ge 2 ]; do
		[ "$i" -ge 50 ] && break
		sleep 0.1; i=$((i + 1))
	done
fi
kill -TERM "$ppid"; wait "$ppid"; ppid=
kill -TERM "$opid"; wait "$opid"; st=$?; opid=
check "the installed orderd stops on SIGTERM with status 0, every handle closed" \
	'[ "$st" = 0 ] && ! grep -q "handles left open" "$tmp/orderd.log"' || tail -n 5 "$tmp/orderd.log" | sed 's/^/# /'
"$ibin/orderctl" $O reconcile --json >"$tmp/reconcile.json" 2>&1
check "installed orderctl reconcile: clean" '[ $? = 0 ] && grep -q "\"ok\": *true" "$tmp/reconcile.json"'
sleep 0.2
kill "$npid" 2>/dev/null; wait "$npid" 2>/dev/null; npid=
sed 's/^/# notify: /' "$tmp/notify.out"
if [ "$type" = notify ]; then
	check "--with-systemd: READY=1, RELOADING=1 and READY=1 on SIGHUP, STOPPING=1, in that order" \
		'[ "$(cut -d" " -f1 "$tmp/notify.out" | tr "\n" " ")" = "READY=1 RELOADING=1 READY=1 STOPPING=1 " ]'
else
	check "without --with-systemd orderd sends systemd nothing" '[ ! -s "$tmp/notify.out" ]'
fi

# 3. A reinstall keeps an edited configuration; uninstall leaves only it.
echo "; edited by the operator" >>"$conf"
make -C "$build" install DESTDIR="$root" >"$tmp/install2.log" 2>&1
check "a second make install keeps the edited $sysconfdir/orderd/orderd.conf" \
	'[ $? = 0 ] && tail -n 1 "$conf" | grep -q "edited by the operator" && grep -q "keeping " "$tmp/install2.log"'
make -C "$build" uninstall DESTDIR="$root" >"$tmp/uninstall.log" 2>&1
check "make uninstall removes every file but the edited configuration" \
	'[ $? = 0 ] && [ "$(cd "$root" && find . -type f)" = ".$sysconfdir/orderd/orderd.conf" ]' ||
	(cd "$root" && find . -type f | sed 's/^/# left: /')
make -C "$build" install DESTDIR="$root" >/dev/null 2>&1 && cp "$top/contrib/orderd.conf" "$conf" &&
	make -C "$build" uninstall DESTDIR="$root" >/dev/null 2>&1
check "make uninstall removes an unchanged configuration and leaves no file" \
	'[ $? = 0 ] && [ -z "$(find "$root" -type f)" ] && [ ! -d "$root$sysconfdir/orderd" ]'

note "install test took $(($(date +%s) - t0)) s"
echo "1..$n"
if [ "$fails" = 0 ]; then rm -rf "$tmp"; else echo "# install: scratch kept in $tmp"; fi
[ "$fails" = 0 ]

#!/bin/sh
# pki.sh: makes a throwaway test PKI with openssl: a CA, a broker certificate for 127.0.0.1/localhost, client certificates per principal, and an untrusted CA for negative tests.
#
#   tests/pki.sh DIR [PRINCIPAL...]
#
# PRINCIPALs default to "orderd orderctl paysim loadgen admin".  Writes, all
# PEM, keys mode 0600:
#   DIR/ca.crt DIR/ca.key                 the test CA, the one to trust
#   DIR/broker.crt DIR/broker.key         CN=kafka-broker, subjectAltName
#                                         IP:127.0.0.1,DNS:localhost; server
#                                         and client use (the broker also
#                                         connects to its own controller)
#   DIR/NAME.crt DIR/NAME.key             a client certificate, CN=NAME
#   DIR/untrusted/ca.crt, ca.key          a second CA nobody trusts
#   DIR/untrusted/orderd.crt, orderd.key  CN=orderd, signed by it: an impostor
#   DIR/untrusted/broker.crt, broker.key  a broker-ish server certificate
#                                         (same names as the real one)
# A DIR that already holds a complete PKI is kept as it is (restarts reuse
# it); a half-made one is made again.
set -eu
[ $# -ge 1 ] || { echo "usage: tests/pki.sh DIR [PRINCIPAL...]" >&2; exit 2; }
dir=$1
shift
[ $# -gt 0 ] || set -- orderd orderctl paysim loadgen admin
[ -f "$dir/.complete" ] && exit 0
# Nothing here is for anyone but the test that runs it.
umask 077
rm -rf "$dir/untrusted"
mkdir -p "$dir/untrusted"
cd "$dir"

# P-256 keys: generated in milliseconds, and both Java 17 and librdkafka's
# OpenSSL speak ECDSA.
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# ca KEY CRT CN
ca() {
	key "$1"
	openssl req -x509 -new -key "$1" -out "$2" -days 30 -subj "/O=orderd tests/CN=$3" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# leaf CA_KEY CA_CRT KEY CRT CN EXTENDED_KEY_USAGE [SUBJECT_ALT_NAME]
# Random serials: two runs' certificates never look alike to a client cache.
leaf() {
	key "$3"
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature"
		echo "extendedKeyUsage=$6"
		[ -z "${7:-}" ] || echo "subjectAltName=$7"
	} >"$4.ext"
	openssl req -new -key "$3" -subj "/O=orderd tests/CN=$5" 2>/dev/null |
		openssl x509 -req -CA "$2" -CAkey "$1" -set_serial "0x$(openssl rand -hex 8)" \
			-days 30 -extfile "$4.ext" -out "$4" 2>/dev/null
	rm -f "$4.ext"
}

san="IP:127.0.0.1,DNS:localhost"
ca ca.key ca.crt "orderd test CA"
leaf ca.key ca.crt broker.key broker.crt kafka-broker serverAuth,clientAuth "$san"
for p in "$@"; do
	leaf ca.key ca.crt "$p.key" "$p.crt" "$p" clientAuth
done
ca untrusted/ca.key untrusted/ca.crt "untrusted CA"
leaf untrusted/ca.key untrusted/ca.crt untrusted/orderd.key untrusted/orderd.crt orderd clientAuth
leaf untrusted/ca.key untrusted/ca.crt untrusted/broker.key untrusted/broker.crt kafka-broker \
	serverAuth,clientAuth "$san"
# Certificates are public; only the keys stay 0600.
chmod 644 ./*.crt untrusted/*.crt
# Each certificate must verify against its own CA and not against the other.
for c in broker "$@"; do
	openssl verify -CAfile ca.crt "$c.crt" >/dev/null
done
openssl verify -CAfile untrusted/ca.crt untrusted/orderd.crt untrusted/broker.crt >/dev/null
if openssl verify -CAfile ca.crt untrusted/orderd.crt >/dev/null 2>&1; then
	echo "pki: the untrusted CA's certificate verifies against the test CA" >&2
	exit 1
fi
: >.complete

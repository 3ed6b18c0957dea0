#!/bin/sh
# hardening.sh: every program make install installs is built hardened (PIE, RELRO, BIND_NOW, stack protector, fortify), as readelf sees it.
#
# For each of ORDERD_PROGRAMS (the build's bin_PROGRAMS) in ORDERD_BIN:
#   pie      ELF type DYN and an executable (FLAGS_1 PIE or an INTERP segment),
#            so ASLR moves the program too, not only its libraries;
#   relro    a GNU_RELRO segment: the GOT and friends are read-only after
#            relocation;
#   now      BIND_NOW (FLAGS BIND_NOW, a BIND_NOW entry, or FLAGS_1 NOW):
#            every symbol resolved at start, so all of RELRO can be;
#   ssp      __stack_chk_fail imported: -fstack-protector-strong put canaries;
#   fortify  some __*_chk imported: _FORTIFY_SOURCE checked a copy or a
#            format whose size the compiler knew.
# Which apply depends on the build, which make check says through
# ORDERD_SANITIZERS and ORDERD_OPTIMIZED (AM_TESTS_ENVIRONMENT): an ASan
# build is never fortified (ASan's interceptors would not see the __*_chk
# calls), so there the test checks that nothing is; an -O0 build cannot
# be (_FORTIFY_SOURCE needs the optimiser).  Everything else applies to
# every build, and fails one configured --disable-hardening.  Needs no
# servers; readelf is binutils'.  TAP output.  By hand, from a build tree:
#   make check TESTS=tests/hardening.sh
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
: "${ORDERD_SANITIZERS:?run through make check (AM_TESTS_ENVIRONMENT tells which build this is)}"
: "${ORDERD_OPTIMIZED:?run through make check (AM_TESTS_ENVIRONMENT tells which build this is)}"
programs=${ORDERD_PROGRAMS:-src/orderd src/orderctl src/orderd-paysim src/orderd-loadgen}
dir=$(mktemp -d "${TMPDIR:-/tmp}/hardening.XXXXXX")
trap 'rm -rf "$dir"' EXIT
n=0 fails=0
check() {
	n=$((n + 1))
	if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fails=$((fails + 1)); fi
}
note() { echo "# $*"; }
command -v readelf >/dev/null || { echo "Bail out! readelf is not installed (binutils, contrib/install-deps.sh)"; exit 1; }

checks="pie relro now ssp fortify"
if [ "$ORDERD_SANITIZERS" = yes ]; then
	checks="pie relro now ssp unfortified"
	note "sanitizer build: pie, relro, now and ssp apply; fortify does not (ASan and"
	note "_FORTIFY_SOURCE do not mix: configure leaves it out and -U's it), so the"
	note "programs must import no __*_chk instead"
elif [ "$ORDERD_OPTIMIZED" != yes ]; then
	checks="pie relro now ssp"
	note "unoptimised build (-O0): pie, relro, now and ssp apply; fortify does not"
	note "(_FORTIFY_SOURCE needs the optimiser)"
else
	note "pie, relro, now, ssp and fortify apply to this build"
fi
# shellcheck disable=SC2086 # word-split on purpose: configure's blanks go
added=$(echo ${ORDERD_HARDENING:-})
note "configure added: ${added:-nothing}"

for p in $programs; do
	f=$bin/${p##*/}
	name=${p##*/}
	if ! readelf -h "$f" >"$dir/h" 2>&1; then
		check "$name is an ELF file ($f)" false
		continue
	fi
	readelf -lW "$f" >"$dir/l" 2>&1
	readelf -dW "$f" >"$dir/d" 2>&1
	# Imported symbols only: an ASan runtime, linked in, defines
	# __*_chk interceptors of its own.
	readelf --dyn-syms -W "$f" 2>/dev/null |
		awk '$7 == "UND" { sub(/@.*/, "", $8); print $8 }' | sort -u >"$dir/und"
	chk=$(grep -E '^__.+_chk$' "$dir/und" | paste -sd ' ' -)
	note "$name: built by $(readelf -p .comment "$f" 2>/dev/null | sed -n 's/^ *\[ *[0-9a-f]*\] *//p' | sort -u | paste -sd ';' -)"
	for c in $checks; do
		case $c in
		pie) check "$name: PIE (ELF type DYN, and an executable: FLAGS_1 PIE or INTERP)" \
			'grep -q "Type: *DYN" "$dir/h" &&
			 { grep -q "(FLAGS_1).*PIE" "$dir/d" || grep -q "^ *INTERP " "$dir/l"; }' ;;
		relro) check "$name: RELRO (a GNU_RELRO segment)" 'grep -q "^ *GNU_RELRO " "$dir/l"' ;;
		now) check "$name: BIND_NOW (FLAGS BIND_NOW or FLAGS_1 NOW)" \
			'grep -qE "\((FLAGS|BIND_NOW)\).*BIND_NOW|\(BIND_NOW\)|\(FLAGS_1\).* NOW( |$)" "$dir/d"' ;;
		ssp) check "$name: stack protector (__stack_chk_fail imported)" \
			'grep -qx "__stack_chk_fail" "$dir/und"' ;;
		fortify) check "$name: fortified (__*_chk imported: ${chk:-none})" '[ -n "$chk" ]' ;;
		unfortified) check "$name: not fortified under ASan (no __*_chk imported: ${chk:-none})" \
			'[ -z "$chk" ]' ;;
		esac
	done
done
echo "1..$n"
[ "$fails" = 0 ]

#!/bin/bash
# make-image.sh OUT SIZE [RATIO]
#
# Writes a guest memory image of SIZE bytes (4G, 512M, 1GiB, 4096k or plain
# bytes; a multiple of 4 KiB).  RATIO (default 0.9) of its 4 KiB pages are
# filled with the corpus (shared/corpus/mixed-200m.bin, its pages repeated in
# order across the filled pages), the rest are zero, spread evenly and
# deterministically: page i is filled when ceil((i+1)*RATIO) > ceil(i*RATIO),
# so with 0.9 each run of 10 pages is 9 filled then 1 zero.
#
# Environment:
#   CORPUS_ZST   compressed corpus (default /work/shared/corpus/mixed-200m.bin.zst)
#   CACHE_DIR    where the decompressed corpus and the compiled helper are kept
#                (default /var/tmp/livemig-bench)
#   FORCE_PYTHON=1  use the python fallback instead of the C helper
set -euo pipefail

die() { echo "make-image.sh: $*" >&2; exit 1; }
{ [ $# -ge 2 ] && [ $# -le 3 ]; } || die "usage: make-image.sh OUT SIZE [RATIO]"
OUT=$1 SIZE_ARG=$2 RATIO=${3:-0.9}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CORPUS_ZST=${CORPUS_ZST:-/work/shared/corpus/mixed-200m.bin.zst}
CORPUS_SHA=6f493e86c0363f7084e3738c0bffef822e00049c5711551ad843b3e7b673ca9b
CACHE_DIR=${CACHE_DIR:-/var/tmp/livemig-bench}

need_pkg() { # command package
	command -v "$1" >/dev/null 2>&1 && return 0
	[ "$(id -u)" = 0 ] || die "$1 is missing (apt-get install $2)"
	echo "make-image.sh: installing $2" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >&2 ||
		{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >&2; } ||
		die "cannot install $2"
}

# SIZE -> bytes
size_bytes() {
	local s=${1^^} n u
	[[ $s =~ ^([0-9]+)([KMGT]?)(I?B)?$ ]] || die "bad SIZE '$1'"
	n=${BASH_REMATCH[1]} u=${BASH_REMATCH[2]}
	case $u in
	K) n=$((n << 10)) ;; M) n=$((n << 20)) ;; G) n=$((n << 30)) ;; T) n=$((n << 40)) ;;
	esac
	echo "$n"
}
SIZE=$(size_bytes "$SIZE_ARG")
{ [ $((SIZE % 4096)) -eq 0 ] && [ "$SIZE" -gt 0 ]; } || die "SIZE must be a positive multiple of 4096"
[[ $RATIO =~ ^(0(\.[0-9]+)?|1(\.0*)?|\.[0-9]+)$ ]] || die "RATIO must be a number in [0,1]"

mkdir -p "$CACHE_DIR"
CORPUS=$CACHE_DIR/mixed-200m.bin
# Decompress the corpus once (checked against its published SHA-256).
if [ ! -s "$CORPUS" ]; then
	need_pkg zstd zstd
	[ -r "$CORPUS_ZST" ] || die "corpus $CORPUS_ZST not found"
	echo "make-image.sh: decompressing $CORPUS_ZST -> $CORPUS" >&2
	zstd -q -d -f "$CORPUS_ZST" -o "$CORPUS.tmp.$$"
	sum=$(sha256sum "$CORPUS.tmp.$$" | cut -d' ' -f1)
	if [ "$sum" != "$CORPUS_SHA" ] && [ "$CORPUS_ZST" = /work/shared/corpus/mixed-200m.bin.zst ]; then
		rm -f "$CORPUS.tmp.$$"
		die "corpus SHA-256 mismatch ($sum)"
	fi
	mv -f "$CORPUS.tmp.$$" "$CORPUS"
fi

mkdir -p "$(dirname "$OUT")"
TMP=$OUT.tmp.$$
trap 'rm -f "$TMP"' EXIT
start=$(date +%s.%N)

CC=${CC:-$(command -v cc || command -v gcc || true)}
if [ -z "${FORCE_PYTHON:-}" ] && [ -n "$CC" ]; then
	tag=$(sha256sum "$HERE/make-image.c" | cut -c1-16)
	HELPER=$CACHE_DIR/make-image-$tag
	if [ ! -x "$HELPER" ]; then
		"$CC" -O2 -Wall -o "$HELPER.$$" "$HERE/make-image.c" -lm && mv -f "$HELPER.$$" "$HELPER"
	fi
	counts=$("$HELPER" "$CORPUS" "$TMP" "$SIZE" "$RATIO")
else
	need_pkg python3 python3
	counts=$(python3 - "$CORPUS" "$TMP" "$SIZE" "$RATIO" <<'PY'
import sys
from fractions import Fraction
corpus, out, size, ratio = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
PG = 4096
num = round(Fraction(ratio) * 10**6); den = 10**6
def ceil_frac(a): return -((-a * num) // den)
data = open(corpus, 'rb').read()
cpages = len(data) // PG
zpage = bytes(PG)
czero = [data[k*PG:(k+1)*PG] == zpage for k in range(cpages)]
pages = size // PG
filled = zero = corpus_zero = k = 0
CH = 4096
with open(out, 'wb') as f:
    for i in range(0, pages, CH):
        parts = []
        for p in range(i, min(pages, i + CH)):
            if ceil_frac(p + 1) > ceil_frac(p):
                parts.append(data[k*PG:(k+1)*PG]); corpus_zero += czero[k]; filled += 1
                k = (k + 1) % cpages
            else:
                parts.append(zpage); zero += 1
        f.write(b''.join(parts))
print(f"pages={pages} filled={filled} zero={zero} corpus_zero={corpus_zero}")
PY
)
fi
mv -f "$TMP" "$OUT"
trap - EXIT
end=$(date +%s.%N)
pages='' filled='' zero='' corpus_zero=''
for kv in $counts; do
	case $kv in
	pages=*) pages=${kv#*=} ;; filled=*) filled=${kv#*=} ;;
	zero=*) zero=${kv#*=} ;; corpus_zero=*) corpus_zero=${kv#*=} ;;
	esac
done
echo "image:  $OUT ($SIZE bytes, $pages pages of 4 KiB, ratio $RATIO)"
echo "filled: $filled pages (corpus data; $corpus_zero of them are all-zero corpus pages)"
echo "zero:   $zero pages"
echo "all-zero pages in total: $((zero + corpus_zero))"
awk -v a="$start" -v b="$end" 'BEGIN { printf "time:   %.1f s\n", b - a }'

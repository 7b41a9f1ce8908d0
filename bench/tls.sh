#!/bin/bash
# tls.sh: what TLS costs - livemig with and without TLS-PSK, and QEMU 7.2's
# multifd with TLS-PSK, on the same memory image, back to back.
#
# usage: tls.sh [-c CHANNELS] [-m "METHODS"] [-r REPS] [-w SEC] [-l RATE] [-Q] [-o DIR] [IMAGE]
#   IMAGE   guest memory image (default /var/tmp/lm-img-1g.bin; made with
#           make-image.sh IMAGE 1G when missing)
#   -c      multifd-channels (default 2)
#   -m      methods, among none and zstd (default "none zstd")
#   -r      repetitions (default 3): each runs every variant once, round-robin
#   -w SEC  before each run wait up to SEC s for the shared machine to be
#           idle (other processes using < 0.15 CPU); 0 = don't (default 300)
#   -l RATE every run in its own network namespace whose loopback is shaped
#           with tc tbf to RATE (e.g. 1gbit): a link of that rate between the
#           two sides, one direction at a time (root; default: loopback as is)
#   -Q      without QEMU (QEMU needs root and qemu-system-x86_64)
#   -o DIR  the per-run JSON files (default /var/tmp/livemig-bench/tls-DATE)
# The PSK credentials (DIR/keys.psk, identity qemu) are made with psktool
# (gnutls-bin).  Prints, per method and variant, the medians of total time
# and of each side's CPU seconds, and each TLS run against its plain one.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LIVEMIG=${LIVEMIG:-$ROOT/build/livemig}
CHANNELS=2 METHODS="none zstd" REPS=3 WAIT=300 QEMU=1 OUTDIR='' LINK=''
die() { echo "tls.sh: $*" >&2; exit 2; }

while getopts "c:m:r:w:l:Qo:h" opt; do
	case $opt in
	c) CHANNELS=$OPTARG ;;
	m) METHODS=$OPTARG ;;
	r) REPS=$OPTARG ;;
	w) WAIT=$OPTARG ;;
	l) LINK=$OPTARG ;;
	Q) QEMU=0 ;;
	o) OUTDIR=$OPTARG ;;
	h) sed -n '2,21p' "$0"; exit 0 ;;
	*) die "bad option (see -h)" ;;
	esac
done
shift $((OPTIND - 1))
IMAGE=${1:-/var/tmp/lm-img-1g.bin}

[ -x "$LIVEMIG" ] || die "no livemig at $LIVEMIG (ninja -C build, or LIVEMIG=)"
command -v psktool >/dev/null || die "psktool is needed (apt-get install gnutls-bin)"
if [ "$QEMU" = 1 ] && { [ "$(id -u)" != 0 ] || ! command -v qemu-system-x86_64 >/dev/null; }; then
	echo "tls.sh: no QEMU runs (they need root and qemu-system-x86_64)" >&2
	QEMU=0
fi
[ -f "$IMAGE" ] || "$HERE/make-image.sh" "$IMAGE" 1G || die "cannot make $IMAGE"
if [ -n "$LINK" ]; then
	[ "$(id -u)" = 0 ] || die "-l needs root (network namespaces and tc)"
	unshare -n tc qdisc add dev lo root tbf rate "$LINK" burst 512kb latency 50ms ||
		die "cannot shape a loopback to $LINK with tc tbf"
fi
OUTDIR=${OUTDIR:-/var/tmp/livemig-bench/tls-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUTDIR/psk" || die "cannot create $OUTDIR"
rm -f "$OUTDIR/psk/keys.psk"
psktool -u qemu -p "$OUTDIR/psk/keys.psk" >/dev/null || die "psktool failed"

wait_quiet() { # until other processes use < 0.15 CPU for 2 s, at most $WAIT s
	[ "$WAIT" -gt 0 ] 2>/dev/null || return 0
	python3 - "$WAIT" <<'PY'
import sys, time
def busy():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / 100.0
t0 = time.time()
while time.time() - t0 < float(sys.argv[1]):
    b = busy(); time.sleep(2)
    if (busy() - b) / 2 < 0.15:
        break
PY
}

# Runs "$@" on the link: as it is, or in a new network namespace whose
# loopback is shaped to $LINK.
on_link() {
	[ -z "$LINK" ] && { "$@"; return; }
	unshare -n bash -c 'ip link set lo up && tc qdisc add dev lo root tbf rate "$0" \
		burst 512kb latency 50ms && exec "$@"' "$LINK" "$@"
}

# One run: VARIANT (lm, lm-tls, qemu-tls) METHOD REP -> OUTDIR/VARIANT-METHOD-REP.json
run() {
	local variant=$1 method=$2 rep=$3 out="$OUTDIR/$1-$2-$3.json"
	wait_quiet
	case $variant in
	lm | lm-tls)
		local tls=()
		[ "$variant" = lm-tls ] && tls=(--set "tls-creds=psk:$OUTDIR/psk")
		on_link "$LIVEMIG" bench --fill "file:$IMAGE" --set "multifd-channels=$CHANNELS" \
			--set "multifd-compression=$method" "${tls[@]}" --json "$out" >/dev/null ;;
	qemu-tls)
		local netns=()
		[ -n "$LINK" ] && netns=(--no-netns) # on_link made one
		on_link python3 "$HERE/qemu-migrate.py" "${netns[@]}" --image "$IMAGE" --channels "$CHANNELS" \
			--compression "$method" --tls-psk "$OUTDIR/psk" --json "$out" >/dev/null ;;
	esac || echo "tls.sh: $variant $method run $rep failed" >&2
}

variants="lm lm-tls"
[ "$QEMU" = 1 ] && variants="$variants qemu-tls"
for rep in $(seq 1 "$REPS"); do
	for method in $METHODS; do
		for v in $variants; do
			run "$v" "$method" "$rep"
		done
	done
done

python3 - "$OUTDIR" "$METHODS" "$variants" "$IMAGE" "$CHANNELS" "${LINK:-loopback}" <<'PY'
import glob, json, statistics, sys
out, methods, variants, image, channels, link = sys.argv[1:]
names = {"lm": "livemig", "lm-tls": "livemig TLS-PSK", "qemu-tls": "QEMU 7.2 TLS-PSK"}
print("image %s, %s channels, link: %s; medians of each variant's runs" % (image, channels,
      link if link == "loopback" else "loopback shaped with tbf to " + link))
print("%-6s %-17s %5s %10s %8s %8s %9s %7s  %s" % ("method", "variant", "runs", "total(ms)",
      "src-cpu", "dst-cpu", "vs plain", "verify", "tls"))
for m in methods.split():
    plain = None
    for v in variants.split():
        runs = []
        for f in sorted(glob.glob("%s/%s-%s-*.json" % (out, v, m))):
            try:
                runs.append(json.load(open(f)))
            except ValueError:
                pass
        if not runs:
            print("%-6s %-17s %5d" % (m, names[v], 0))
            continue
        med = lambda f: statistics.median(f(r) for r in runs)
        t = med(lambda r: r["total-time"])
        if v == "lm":
            plain = t
        tls = runs[0].get("tls") or {}
        print("%-6s %-17s %5d %10.0f %8.2f %8.2f %9s %7s  %s" % (
            m, names[v], len(runs), t, med(lambda r: r["cpu"]["source-seconds"]),
            med(lambda r: r["cpu"]["destination-seconds"]),
            "%.2fx" % (t / plain) if plain and v != "lm" else "",
            all(r.get("verify", {}).get("match") for r in runs),
            " ".join(str(tls.get(k, "")) for k in ("protocol", "cipher", "key-exchange"))
            if v != "qemu-tls" else "cipher: QEMU's NORMAL order"))
print("per-run JSON: %s" % out)
PY

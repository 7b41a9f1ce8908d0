#!/bin/bash
# compare.sh: livemig vs QEMU 7.2 multifd migration of the same memory image.
#
# usage: compare.sh [-m METHOD] [-c CHANNELS] [-l LEVEL] [-r REPS] [-o DIR] [-Q] [IMAGE]
#   IMAGE     guest memory image from make-image.sh (default /var/tmp/lm-img-4g.bin)
#   -m        none | zlib | zstd (default none)
#   -c        multifd-channels (default 2)
#   -l        zlib/zstd level (default: each tool's default, 1)
#   -r        repetitions (default 3); each one runs livemig then QEMU back to back
#   -o        where the per-run JSON files go (default /var/tmp/livemig-bench/compare-DATE)
#   -Q        QEMU only (when build/livemig does not exist yet)
#   -x ARGS   extra arguments for qemu-migrate.py (e.g. "--dest-mem shm")
#   -w SEC    before each run wait up to SEC s for the shared machine to be idle
#             (other processes using < 0.15 CPU); recommended, e.g. -w 600
# Environment: LIVEMIG (default <repo>/build/livemig), LIVEMIG_NETNS=1 runs
# livemig in a private network namespace (unshare -n, lo up) like qemu-migrate.py.
#
# Prints the medians of each tool and the livemig/QEMU ratios.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LIVEMIG=${LIVEMIG:-$ROOT/build/livemig}
METHOD=none CHANNELS=2 LEVEL='' REPS=3 OUTDIR='' QEMU_ONLY=0 EXTRA='' WAIT=0
die() { echo "compare.sh: $*" >&2; exit 2; }

while getopts "m:c:l:r:o:Qx:w:h" opt; do
	case $opt in
	m) METHOD=$OPTARG ;;
	c) CHANNELS=$OPTARG ;;
	l) LEVEL=$OPTARG ;;
	r) REPS=$OPTARG ;;
	o) OUTDIR=$OPTARG ;;
	Q) QEMU_ONLY=1 ;;
	x) EXTRA=$OPTARG ;;
	w) WAIT=$OPTARG ;;
	h) sed -n '2,19p' "$0"; exit 0 ;;
	*) die "bad option (see -h)" ;;
	esac
done
shift $((OPTIND - 1))
IMAGE=${1:-/var/tmp/lm-img-4g.bin}

case $METHOD in none | zlib | zstd) ;; *) die "method must be none, zlib or zstd" ;; esac
[[ $CHANNELS =~ ^[0-9]+$ ]] || die "bad channel count '$CHANNELS'"
{ [[ $REPS =~ ^[0-9]+$ ]] && [ "$REPS" -ge 1 ]; } || die "bad repetition count '$REPS'"
[ -z "$LEVEL" ] || [[ $LEVEL =~ ^-?[0-9]+$ ]] || die "bad level '$LEVEL'"
[ -f "$IMAGE" ] || die "image $IMAGE not found; make it with: $HERE/make-image.sh $IMAGE 4G"
command -v python3 >/dev/null || die "python3 is needed (apt-get install python3)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is needed (apt-get install qemu-system-x86)"

if [ "$QEMU_ONLY" = 0 ] && [ ! -x "$LIVEMIG" ]; then
	cat >&2 <<EOF
compare.sh: livemig binary not found at $LIVEMIG
  Build it first (meson setup build && ninja -C build), point LIVEMIG= at it,
  or run QEMU alone with -Q.
EOF
	exit 2
fi

OUTDIR=${OUTDIR:-/var/tmp/livemig-bench/compare-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"

# Arguments for each tool.
lm_args=(bench --fill "file:$IMAGE" --set "multifd-channels=$CHANNELS" --set "multifd-compression=$METHOD")
qm_args=(--image "$IMAGE" --channels "$CHANNELS" --compression "$METHOD")
if [ -n "$LEVEL" ] && [ "$METHOD" != none ]; then
	lm_args+=(--set "multifd-$METHOD-level=$LEVEL")
	qm_args+=("--$METHOD-level" "$LEVEL")
fi
# shellcheck disable=SC2206
[ -n "$EXTRA" ] && qm_args+=($EXTRA)
[ "$WAIT" -gt 0 ] 2>/dev/null && qm_args+=(--wait-quiet "$WAIT")

wait_quiet() { # for livemig (qemu-migrate.py waits itself, after QEMU has started)
	[ "$WAIT" -gt 0 ] 2>/dev/null || return 0
	python3 - "$WAIT" <<'PY'
import os, sys, time
def busy():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")
t0 = time.monotonic()
while True:
    b = busy(); time.sleep(2); load = (busy() - b) / 2
    if load < 0.15:
        break
    if time.monotonic() - t0 > int(sys.argv[1]):
        print("compare.sh: machine still busy (%.2f CPUs); running anyway" % load, file=sys.stderr)
        break
PY
}

run_livemig() { # json log
	if [ "${LIVEMIG_NETNS:-0}" = 1 ]; then
		unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh "$LIVEMIG" "${lm_args[@]}" --json "$1" >"$2" 2>&1
	else
		"$LIVEMIG" "${lm_args[@]}" --json "$1" >"$2" 2>&1
	fi
}

trap 'echo "compare.sh: interrupted" >&2; exit 130' INT TERM
echo "image $IMAGE, method $METHOD${LEVEL:+ level $LEVEL}, $CHANNELS channels, $REPS repetitions; results in $OUTDIR" >&2
for ((i = 1; i <= REPS; i++)); do
	if [ "$QEMU_ONLY" = 0 ]; then
		wait_quiet
		echo "[$i/$REPS] livemig ${lm_args[*]}" >&2
		if ! run_livemig "$OUTDIR/livemig-$i.json" "$OUTDIR/livemig-$i.log"; then
			echo "  livemig failed, see $OUTDIR/livemig-$i.log:" >&2
			tail -5 "$OUTDIR/livemig-$i.log" >&2
			rm -f "$OUTDIR/livemig-$i.json"
		fi
	fi
	echo "[$i/$REPS] qemu-migrate.py ${qm_args[*]}" >&2
	if ! python3 "$HERE/qemu-migrate.py" "${qm_args[@]}" --json "$OUTDIR/qemu-$i.json" \
		>"$OUTDIR/qemu-$i.log" 2>&1; then
		echo "  qemu-migrate.py failed, see $OUTDIR/qemu-$i.log:" >&2
		tail -5 "$OUTDIR/qemu-$i.log" >&2
		[ -s "$OUTDIR/qemu-$i.json" ] && mv "$OUTDIR/qemu-$i.json" "$OUTDIR/qemu-$i.failed.json"
	fi
done

python3 - "$OUTDIR" "$IMAGE" <<'PY'
import glob, json, os, statistics, sys

outdir, image = sys.argv[1], sys.argv[2]
size = os.path.getsize(image)

def load(tool):
    runs = []
    for path in sorted(glob.glob(os.path.join(outdir, tool + "-*.json"))):
        if path.endswith(".failed.json"):
            continue
        try:
            with open(path) as f:
                runs.append(json.load(f))
        except (OSError, ValueError) as e:
            print("cannot read %s: %s" % (path, e), file=sys.stderr)
    return runs

def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d

def num(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None

def metrics(r):
    tt = num(get(r, "total-time"))           # ms, as in query-migrate
    cs, cd = num(get(r, "cpu", "source-seconds")), num(get(r, "cpu", "destination-seconds"))
    total = num(get(r, "ram", "total")) or size
    wire = num(get(r, "derived", "wire-bytes"))  # qemu-migrate.py in a netns
    if wire is None and get(r, "tool") != "qemu":
        wire = num(get(r, "ram", "transferred"))  # livemig counts bytes sent
    return {
        "total-time s": tt / 1000 if tt is not None else None,
        "downtime ms": num(get(r, "downtime")),
        "setup-time ms": num(get(r, "setup-time")),
        "CPU source s": cs,
        "CPU dest s": cd,
        "CPU total s": cs + cd if cs is not None and cd is not None else None,
        "CPU src %": 100 * cs / (tt / 1000) if cs is not None and tt else None,
        "CPU dst %": 100 * cd / (tt / 1000) if cd is not None and tt else None,
        "mbps (reported)": num(get(r, "ram", "mbps")),
        "RAM GB/s": total / (tt / 1000) / 1e9 if tt else None,
        "wire GB/s": wire / (tt / 1000) / 1e9 if wire is not None and tt else None,
        "pages/s": num(get(r, "ram", "pages-per-second")),
    }

def med(runs, key):
    v = [m[key] for m in runs if m[key] is not None]
    return (statistics.median(v), len(v)) if v else (None, 0)

lm, qm = load("livemig"), load("qemu")
lmm, qmm = [metrics(r) for r in lm], [metrics(r) for r in qm]

def verified(runs):
    ok = sum(1 for r in runs if get(r, "verify", "match") is True)
    return "%d/%d" % (ok, len(runs))

def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.3g" % v

print()
print("medians; image %s (%d bytes); runs: livemig %d (verified %s), qemu %d (verified %s)"
      % (image, size, len(lm), verified(lm), len(qm), verified(qm)))
hdr = "%-16s %12s %12s %14s" % ("metric", "livemig", "qemu", "livemig/qemu")
print(hdr)
print("-" * len(hdr))
for key in lmm[0].keys() if lmm else qmm[0].keys() if qmm else []:
    a, na = med(lmm, key)
    b, nb = med(qmm, key)
    ratio = a / b if a is not None and b else None
    print("%-16s %12s %12s %14s" % (key, fmt(a), fmt(b), ("%.2f" % ratio) if ratio is not None else "-"))
noise = [num(get(r, "cpu", "other-seconds")) for r in qm]
noise = [x for x in noise if x is not None]
if noise:
    print("\nQEMU runs: CPU used by other processes during each migration (noise): %s s"
          % ", ".join("%.1f" % x for x in noise))
print("notes: QEMU 7.2's ram.transferred/mbps count uncompressed page bytes even with compression;"
      " 'wire GB/s' is measured on a private loopback (qemu) or livemig's ram.transferred.")
PY

#!/bin/bash
# methods.sh: every compression method (and auto) on the same image over a
# rate-limited link, livemig only, round-robin so that machine noise hits
# every method alike.
#
# usage: methods.sh [-b RATE] [-r REPS] [-c CHANNELS] [-m "METHODS"] [IMAGE]
#   IMAGE  guest memory image (default /var/tmp/lm-img-1g.bin; make-image.sh
#          builds it: bench/make-image.sh /var/tmp/lm-img-1g.bin 1G)
#   -b     max-bandwidth (default 125M: a 1 Gbit/s link)
#   -r     repetitions (default 3)
#   -c     multifd-channels (default 2)
#   -m     methods (default "none lz4 zlib zstd qpl qatzip uadk auto")
#
# Prints, per method, the medians of total time, CPU seconds (source +
# destination, both on this machine), wire ratio, and for auto its choices.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIVEMIG=${LIVEMIG:-$HERE/../build/livemig}
BW=125M REPS=3 CHANNELS=2 METHODS="none lz4 zlib zstd qpl qatzip uadk auto"
while getopts "b:r:c:m:h" opt; do
	case $opt in
	b) BW=$OPTARG ;;
	r) REPS=$OPTARG ;;
	c) CHANNELS=$OPTARG ;;
	m) METHODS=$OPTARG ;;
	h) sed -n '2,15p' "$0"; exit 0 ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
IMAGE=${1:-/var/tmp/lm-img-1g.bin}
[ -r "$IMAGE" ] || { echo "methods.sh: no image $IMAGE (see -h)" >&2; exit 2; }
OUT=$(mktemp -d /var/tmp/lm-methods.XXXXXX)

for r in $(seq "$REPS"); do
	for m in $METHODS; do
		"$LIVEMIG" bench --fill "file:$IMAGE" --set "max-bandwidth=$BW" \
			--set "multifd-channels=$CHANNELS" --set "multifd-compression=$m" \
			--json "$OUT/$m.$r.json" >/dev/null 2>"$OUT/$m.$r.err" ||
			{ echo "methods.sh: $m run $r failed:" >&2; cat "$OUT/$m.$r.err" >&2; }
	done
done

python3 - "$OUT" "$REPS" "$BW" $METHODS <<'EOF'
import json, statistics, sys
out, reps, bw, methods = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
print("max-bandwidth=%s, medians of %d runs (JSON in %s)" % (bw, reps, out))
print("%-7s %9s %9s %9s %7s  %s" % ("method", "time(ms)", "cpu(s)", "src-cpu", "ratio", "auto"))
for m in methods:
    runs = []
    for r in range(1, reps + 1):
        try:
            runs.append(json.load(open("%s/%s.%d.json" % (out, m, r))))
        except (OSError, ValueError):
            pass
    runs = [j for j in runs if j["verify"]["match"] is True]
    if not runs:
        print("%-7s failed" % m)
        continue
    med = lambda f: statistics.median(f(j) for j in runs)
    a = runs[-1]["compression"]["auto"]
    print("%-7s %9.0f %9.2f %9.2f %7.2f  %s" % (
        m, med(lambda j: j["total-time"]),
        med(lambda j: j["cpu"]["source-seconds"] + j["cpu"]["destination-seconds"]),
        med(lambda j: j["cpu"]["source-seconds"]),
        med(lambda j: j["compression"]["ratio"]),
        a if m == "auto" else ""))
EOF

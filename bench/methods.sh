#!/bin/bash
# methods.sh: every compression method (and auto) on the same image over a
# rate-limited link, livemig only, round-robin so that machine noise hits
# every method alike.
#
# usage: methods.sh [-b RATE | -s TBF_RATE] [-r REPS] [-c CHANNELS] [-m "METHODS"] [IMAGE]
#   IMAGE  guest memory image (default /var/tmp/lm-img-1g.bin; make-image.sh
#          builds it: bench/make-image.sh /var/tmp/lm-img-1g.bin 1G)
#   -b     max-bandwidth (default 125M: a 1 Gbit/s link), livemig bench on loopback
#   -s     instead, a shaped link: source and destination in two network
#          namespaces joined by a veth pair, the source side shaped by
#          `tc tbf rate TBF_RATE` (e.g. 1gbit); no max-bandwidth (needs root)
#   -r     repetitions (default 3)
#   -c     multifd-channels (default 2)
#   -m     methods (default "none lz4 zlib zstd qpl qatzip uadk auto")
#
# Prints, per method, the medians of total time, CPU seconds (source +
# destination, both on this machine), wire ratio, and for auto its choices.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIVEMIG=${LIVEMIG:-$HERE/../build/livemig}
BW=125M REPS=3 CHANNELS=2 METHODS="none lz4 zlib zstd qpl qatzip uadk auto" SHAPE=''
while getopts "b:s:r:c:m:h" opt; do
	case $opt in
	b) BW=$OPTARG ;;
	s) SHAPE=$OPTARG ;;
	r) REPS=$OPTARG ;;
	c) CHANNELS=$OPTARG ;;
	m) METHODS=$OPTARG ;;
	h) sed -n '2,18p' "$0"; exit 0 ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
IMAGE=${1:-/var/tmp/lm-img-1g.bin}
[ -r "$IMAGE" ] || { echo "methods.sh: no image $IMAGE (see -h)" >&2; exit 2; }
OUT=$(mktemp -d /var/tmp/lm-methods.XXXXXX)

if [ -n "$SHAPE" ]; then
	NA=lm-bench-src NB=lm-bench-dst
	cleanup() { ip netns del $NA 2>/dev/null; ip netns del $NB 2>/dev/null; }
	trap cleanup EXIT
	cleanup
	ip netns add $NA && ip netns add $NB &&
		ip link add lmbsrc netns $NA type veth peer name lmbdst netns $NB &&
		ip -n $NA addr add 10.77.0.1/24 dev lmbsrc && ip -n $NB addr add 10.77.0.2/24 dev lmbdst &&
		ip -n $NA link set lmbsrc up && ip -n $NB link set lmbdst up &&
		ip -n $NA link set lo up && ip -n $NB link set lo up &&
		ip netns exec $NA tc qdisc add dev lmbsrc root tbf rate "$SHAPE" burst 256kb latency 50ms ||
		{ echo "methods.sh: cannot set up the shaped link (root? iproute2?)" >&2; exit 2; }
	BW="tc tbf $SHAPE"
fi

run() { # METHOD REP
	local m=$1 r=$2 sets=(--set "multifd-channels=$CHANNELS" --set "multifd-compression=$m")
	if [ -z "$SHAPE" ]; then
		"$LIVEMIG" bench --fill "file:$IMAGE" --set "max-bandwidth=$BW" "${sets[@]}" \
			--json "$OUT/$m.$r.json" >/dev/null 2>"$OUT/$m.$r.err"
		return
	fi
	local port=$((20000 + RANDOM % 20000))
	ip netns exec $NB "$LIVEMIG" dest --listen "tcp:10.77.0.2:$port" "${sets[@]}" \
		--json "$OUT/$m.$r.dst.json" >/dev/null 2>"$OUT/$m.$r.dst.err" &
	local dpid=$!
	sleep 0.5
	ip netns exec $NA "$LIVEMIG" source --connect "tcp:10.77.0.2:$port" --fill "file:$IMAGE" \
		"${sets[@]}" --json "$OUT/$m.$r.json" >/dev/null 2>"$OUT/$m.$r.err"
	local rc=$?
	wait $dpid
	return $rc
}

for r in $(seq "$REPS"); do
	for m in $METHODS; do
		run "$m" "$r" ||
			{ echo "methods.sh: $m run $r failed:" >&2; cat "$OUT/$m.$r.err" >&2; }
	done
done

python3 - "$OUT" "$REPS" "$BW" $METHODS <<'EOF'
import json, statistics, sys
out, reps, bw, methods = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
print("link: %s, medians of %d runs (JSON in %s)" % (bw, reps, out))
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

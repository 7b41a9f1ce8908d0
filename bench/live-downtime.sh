#!/bin/bash
# live-downtime.sh: downtime of a running guest, repeated.
#
# usage: live-downtime.sh [RUNS] [extra livemig bench options...]
# Default: 20 runs of a 2 GiB guest whose 256 MiB hot set is written at
# 200 MB/s, 2 channels, loopback, downtime-limit 300 ms (issue 3's
# benchmark).  Prints each run and the count within the limit.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIVEMIG=${LIVEMIG:-$HERE/../build/livemig}
RUNS=${1:-20}
shift || true
LIMIT=300
out=$(mktemp -d)
within=0
for i in $(seq 1 "$RUNS"); do
	"$LIVEMIG" bench --mem 2G --dirty-rate 200M --dirty-hot 256M \
		--set multifd-channels=2 --set downtime-limit=$LIMIT --timeout 120 \
		--json "$out/$i.json" "$@" >/dev/null 2>"$out/$i.err" || {
		echo "run $i failed: $(tail -1 "$out/$i.err")"; continue; }
	read -r dt tt passes tr <<<"$(python3 -c "
import json; d = json.load(open('$out/$i.json'))
print(d['downtime'], d['total-time'], d['dirty-sync-count'], d['dirty-tracker'])")"
	[ "$dt" -le $LIMIT ] && within=$((within + 1))
	printf 'run %2d: downtime %4d ms, total %6d ms, %2d passes, tracker %s\n' "$i" "$dt" "$tt" "$passes" "$tr"
done
echo "downtime <= $LIMIT ms in $within of $RUNS runs"
rm -rf "$out"

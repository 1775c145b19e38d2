#!/usr/bin/env bash
# bench-lesson.sh: the /learn page's comparison at scale, behind `make
# bench-lesson`. For N = 100 and 1,000 clients of each mode (short polling
# every 2 s, long polling, the textbook's /get_msg/) it starts a fresh
# server (memory store) on a loopback port, runs parley-load -lesson, reads
# the server's CPU time from /proc, and stops it with SIGTERM. It prints one
# Markdown table and exits 1 if any client missed or repeated a message.
#
# One sender posts MESSAGES messages at RATE per second into lobby (the
# textbook's endpoints know no other room). The rate is not a multiple of
# short polling's interval, so that sends do not fall in step with polls.
set -euo pipefail

# shellcheck source=bench-common.sh
source "$(dirname "$0")/bench-common.sh"
MESSAGES=${MESSAGES:-8}
RATE=${RATE:-0.3}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(go version | cut -d' ' -f3-)"
echo
echo "| mode | clients | messages × clients @ rate | delivered | requests / delivered | bytes / delivered | empty answers | delay p50 / p99 | wall s | result | server CPU s | server CPU µs / delivered |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"

failed=0
for n in 100 1000; do
	for mode in short long textbook; do
		log="$work/server-$RANDOM.log"
		start_server memory "$log"
		s0=$(ticks "$server_pid")
		if ! row=$("$work/parley-load" -url "$server_url" -lesson "$mode" -pollers "$n" \
			-messages "$MESSAGES" -rate "$RATE" -interval 2s -drain 30s 2>"$work/load.err"); then
			failed=1
			cat "$work/load.err" >&2
		fi
		s1=$(ticks "$server_pid")
		if ! stop_server; then
			echo "bench-lesson.sh: parley did not exit 0 after SIGTERM ($mode, $n):" >&2
			cat "$log" >&2
			failed=1
		fi
		delivered=$(awk -F'|' '{gsub(/ /, "", $5); print $5}' <<<"$row")
		cpu=$(awk -v t=$((s1 - s0)) -v hz="$hz" -v d="$delivered" 'BEGIN {printf "%.2f | %.0f", t / hz, (d > 0 ? t / hz / d * 1e6 : 0)}')
		echo "$row $cpu |"
	done
done
exit "$failed"

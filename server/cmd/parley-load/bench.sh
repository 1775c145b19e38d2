#!/usr/bin/env bash
# bench.sh: the whole-system benchmark behind `make bench`. It builds parley
# and parley-load, and for each configuration below starts a fresh server on
# a free loopback port (bolt on a temp file, or memory), drives it with
# parley-load, reads the server's CPU time and peak memory from /proc, stops
# it with SIGTERM and checks that it exits 0. It prints one Markdown table,
# and exits 1 if any run lost or duplicated a message or failed otherwise.
#
# Client and server share the machine: on a small one the load generator's
# own CPU is a large part of the total, so read the figures as "this much on
# this machine, both sides included" (the server's CPU column is its share).
set -euo pipefail

# shellcheck source=bench-common.sh
source "$(dirname "$0")/bench-common.sh"

# label | store | parley-load flags. The server allows each session 5 sends/s
# (after a burst of 20), so the offered rate is senders × 5/s: 400 senders
# stay below what two cores can commit, 2000 ask for more than that.
configs=(
	"1 room × 1000 pollers|bolt|-rooms 1 -pollers 1000 -senders 20 -messages 50"
	"10 rooms × 100 pollers|bolt|-rooms 10 -pollers 100 -senders 100 -messages 25"
	"10 rooms × 100 pollers|memory|-rooms 10 -pollers 100 -senders 100 -messages 25"
	"400 senders|bolt|-rooms 1 -pollers 10 -senders 400 -messages 25"
	"400 senders|memory|-rooms 1 -pollers 10 -senders 400 -messages 25"
	"saturate: 2000 senders|bolt|-rooms 1 -pollers 10 -senders 2000 -messages 15"
	"saturate: 2000 senders|memory|-rooms 1 -pollers 10 -senders 2000 -messages 15"
)

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(go version | cut -d' ' -f3-), ulimit -n $(ulimit -n)"
echo
echo "| run | store | rooms × pollers | senders × msgs @ rate | committed | msg/s | send p50 / p95 / p99 | delivery p50 / p95 / p99 | receipts/s | polls held max | result | CPU s: server / load / other / wall | server peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"

failed=0
for c in "${configs[@]}"; do
	IFS='|' read -r label store flags <<<"$c"
	log="$work/server-$store-$RANDOM.log"
	start_server "$store" "$log"
	s0=$(ticks "$server_pid") c0=$(child_ticks $$) b0=$(busy_ticks) w0=$(date +%s.%N)
	# shellcheck disable=SC2086 # flags is a list of words
	if ! row=$("$work/parley-load" -url "$server_url" -row -label "$label" $flags 2>"$work/load.err"); then
		failed=1
		cat "$work/load.err" >&2
	fi
	s1=$(ticks "$server_pid") c1=$(child_ticks $$) b1=$(busy_ticks) w1=$(date +%s.%N)
	rss=$(awk '/^VmHWM:/ {printf "%.0f", $2 / 1024}' "/proc/$server_pid/status")
	cpu="$(secs $((s1 - s0))) / $(secs $((c1 - c0))) / $(secs $((b1 - b0 - (s1 - s0) - (c1 - c0)))) / $(awk -v a="$w0" -v b="$w1" 'BEGIN {printf "%.1f", b - a}')"
	if ! stop_server; then
		echo "bench.sh: parley did not exit 0 after SIGTERM ($label, $store):" >&2
		cat "$log" >&2
		failed=1
	fi
	# parley-load's row starts with "| label |"; put the store after it.
	echo "${row/"| $label |"/"| $label | $store |"} $cpu | $rss |"
done
exit "$failed"

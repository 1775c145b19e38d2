#!/usr/bin/env bash
# bench-cluster.sh: the cluster half of `make bench`. For one, two and three
# instances it starts server/cmd/parley/run-cluster.sh (redis-server with AOF and
# appendfsync always, the instances, nginx round robin in front) on free
# ports, drives nginx with parley-load, and stops everything with SIGINT. It
# prints one Markdown table and exits 1 if any run lost or duplicated a
# message or failed otherwise. Pollers and senders reach the instances in
# turn, so with two or three instances most deliveries cross instances:
# the delivery latency is that of a message sent through one instance
# reaching a poll held on another, through Redis.
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/parley-bench-cluster.XXXXXX")
cluster_pid=""
cleanup() {
	if [[ -n "$cluster_pid" ]]; then
		kill -INT -- "-$cluster_pid" 2>/dev/null || true
		wait "$cluster_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cd "$root"
go build -o "$work/parley" ./server/cmd/parley
go build -o "$work/parley-load" ./server/cmd/parley-load

# free_port: a loopback port nobody listens on now, below Linux's ephemeral
# range (where thousands of client sockets would collide with a listener),
# and not handed out before in this run.
taken=" "
free_port() {
	local p
	while :; do
		p=$((10000 + RANDOM % 20000))
		[[ $taken == *" $p "* ]] && continue
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		taken+="$p "
		echo "$p"
		return
	done
}

# label | parley-load flags
configs=(
	"10 rooms × 100 pollers|-rooms 10 -pollers 100 -senders 100 -messages 25"
	"400 senders|-rooms 1 -pollers 10 -senders 400 -messages 25"
)

echo "machine: $(nproc) CPUs, $(go version | cut -d' ' -f3-)"
echo
echo "| run | instances | rooms × pollers | senders × msgs @ rate | committed | msg/s | send p50 / p95 / p99 | delivery p50 / p95 / p99 | receipts/s | polls held max | result |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
failed=0
for n in 1 2 3; do
	for c in "${configs[@]}"; do
		IFS='|' read -r label flags <<<"$c"
		port=$(free_port)
		ports=""
		for _ in $(seq "$n"); do ports+="$(free_port) "; done
		PORT=$port REDIS_PORT=$(free_port) PARLEY_PORTS=$ports BIN="$work/parley" WEB="$work" \
			ARGS="-max-polls 30000 -max-polls-per-addr -1 -max-conns-per-addr -1" setsid bash server/cmd/parley/run-cluster.sh >"$work/cluster.log" 2>&1 &
		cluster_pid=$!
		for _ in $(seq 100); do
			curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
			sleep 0.1
		done
		# shellcheck disable=SC2086 # flags is a list of words
		if ! row=$("$work/parley-load" -url "http://127.0.0.1:$port" -row -label "$label" $flags 2>"$work/load.err"); then
			failed=1
			cat "$work/load.err" "$work/cluster.log" >&2
		fi
		kill -INT -- "-$cluster_pid" 2>/dev/null || true
		wait "$cluster_pid" 2>/dev/null || true
		cluster_pid=""
		echo "${row/"| $label |"/"| $label | $n |"}"
	done
done
exit "$failed"

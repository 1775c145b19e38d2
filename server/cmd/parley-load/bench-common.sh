# bench-common.sh: what bench.sh and bench-lesson.sh share, sourced by
# both: a work directory removed on exit (with any server left running),
# the file-descriptor limit, the two binaries, CPU-time readers, and
# starting and stopping a server on a free loopback port.

me=$(basename "$0")
root=$(cd "$(dirname "$0")/../../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/parley-bench.XXXXXX")
server_pid=""

cleanup() {
	if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# A thousand pollers are a thousand sockets on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < 4096)); then
	echo "$me: ulimit -n is $(ulimit -n); the 1000-poller runs need more than 2100" >&2
	exit 1
fi

cd "$root"
go build -o "$work/parley" ./server/cmd/parley
go build -o "$work/parley-load" ./server/cmd/parley-load

# ticks reads a process's user+system CPU time in clock ticks; child_ticks
# that of its waited-for children (here: parley-load and a few tools);
# busy_ticks that of the whole machine, so that CPU taken by anything else
# running meanwhile shows in the table instead of silently skewing it.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
child_ticks() { awk '{print $16 + $17}' "/proc/$1/stat"; }
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
hz=$(getconf CLK_TCK)
secs() { awk -v t="$1" -v hz="$hz" 'BEGIN {printf "%.1f", (t > 0 ? t : 0) / hz}'; }

# start_server STORE LOG: runs parley on 127.0.0.1:0 and sets server_pid and
# server_url from the address it logs.
start_server() {
	local store=$1 log=$2 addr i
	"$work/parley" -store "$store" -data "$work/data-$RANDOM/parley.db" -addr 127.0.0.1:0 \
		-web "$work" -max-polls 30000 -max-polls-per-addr -1 -max-conns-per-addr -1 2>"$log" &
	server_pid=$!
	for i in $(seq 1 200); do
		addr=$(sed -n 's/.*msg="parley listening" addr=\([^ ]*\).*/\1/p' "$log")
		if [[ -n "$addr" ]] && curl -fsS "http://$addr/healthz" >/dev/null 2>&1; then
			server_url="http://$addr"
			return 0
		fi
		if ! kill -0 "$server_pid" 2>/dev/null; then
			echo "$me: parley exited at start:" >&2
			cat "$log" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "$me: parley did not start within 10s" >&2
	return 1
}

stop_server() {
	local status=0
	kill -TERM "$server_pid"
	wait "$server_pid" || status=$?
	server_pid=""
	return "$status"
}


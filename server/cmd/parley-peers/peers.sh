#!/usr/bin/env bash
# peers.sh: `make bench-peers`. It makes sure nginx and its Nchan module are
# installed (with apt-get when run as root), raises the open-files limit for
# ten thousand clients, builds parley and parley-peers, and runs
# parley-peers, which starts a fresh parley and a fresh nginx for each run on
# free loopback ports, prints issue 7's table and writes the raw figures to
# bin/bench-peers.json. Extra arguments go to parley-peers (see its -h).
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
module=/usr/lib/nginx/modules/ngx_nchan_module.so

if ! command -v nginx >/dev/null 2>&1 || [[ ! -e $module ]]; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		echo "installing nginx and libnginx-mod-nchan with apt-get"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx libnginx-mod-nchan ||
			{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx libnginx-mod-nchan; }
	else
		echo "bench-peers measures Parley next to Nchan, which is missing. Install it with: sudo apt-get install nginx libnginx-mod-nchan" >&2
		exit 1
	fi
fi

# Ten thousand clients are ten thousand sockets in parley-peers, and as many
# in the server under test.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < 10300)); then
	echo "peers.sh: ulimit -n is $(ulimit -n); the 10,000-client runs need at least 10300" >&2
	exit 1
fi

cd "$root"
mkdir -p bin
go build -o bin/parley ./server/cmd/parley
go build -o bin/parley-peers ./server/cmd/parley-peers
exec bin/parley-peers -parley bin/parley -json bin/bench-peers.json "$@"

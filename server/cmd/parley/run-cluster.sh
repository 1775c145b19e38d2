#!/usr/bin/env bash
# run-cluster: Parley as operators run it on several machines, on this one:
# a redis-server (AOF on, appendfsync always), three parley instances with
# -store redis, and nginx in front of them as a plain round-robin load
# balancer (no stickiness). Everything lives in a temp dir; Ctrl-C (or the
# end of any one process) stops them all.
#
# Ports, all on 127.0.0.1: PORT (nginx, default 8080), REDIS_PORT (6390),
# and PARLEY_PORTS (8081 8082 8083). BIN is the parley binary (bin/parley),
# WEB the app's assets (web). Extra parley flags go in ARGS.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin" # nginx lives in sbin

PORT=${PORT:-8080}
REDIS_PORT=${REDIS_PORT:-6390}
PARLEY_PORTS=${PARLEY_PORTS:-8081 8082 8083}
BIN=${BIN:-bin/parley}
WEB=${WEB:-web}
ARGS=${ARGS:-}

for cmd in redis-server nginx "$BIN"; do
	command -v "$cmd" >/dev/null 2>&1 || { echo "run-cluster: $cmd not found" >&2; exit 1; }
done

dir=$(mktemp -d -t parley-cluster-XXXXXX)
pids=()
stop() {
	trap - INT TERM EXIT
	echo "run-cluster: stopping"
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "run-cluster: stopped; logs and data are in $dir"
}
trap stop INT TERM EXIT

# wait_port PORT: until something listens on 127.0.0.1:PORT (10 s at most).
wait_port() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "run-cluster: nothing listens on port $1; see the logs in $dir" >&2
	return 1
}

# Redis: every acknowledged message survives a crash of Redis or of the
# machine (docs/redis.md, "What survives a Redis crash").
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$dir" \
	--appendonly yes --appendfsync always --save '' \
	--maxmemory-policy noeviction >"$dir/redis.log" 2>&1 &
pids+=($!)
wait_port "$REDIS_PORT"

upstreams=""
i=0
for p in $PARLEY_PORTS; do
	i=$((i + 1))
	# shellcheck disable=SC2086 # ARGS is a list of flags
	"$BIN" -store redis -redis "redis://127.0.0.1:$REDIS_PORT/0" -addr "127.0.0.1:$p" \
		-web "$WEB" -trusted-proxies 127.0.0.1/32 $ARGS >"$dir/parley-$i.log" 2>&1 &
	pids+=($!)
	upstreams+="        server 127.0.0.1:$p max_fails=0;"$'\n'
done
for p in $PARLEY_PORTS; do wait_port "$p"; done

mkdir -p "$dir/nginx"
cat >"$dir/nginx.conf" <<CONF
# Written by server/cmd/parley/run-cluster.sh. The settings that matter for any load
# balancer in front of Parley are marked "Parley:".
$( [ "$(id -u)" = 0 ] && echo "user root;" )
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/nginx/body;
    proxy_temp_path $dir/nginx/proxy;
    fastcgi_temp_path $dir/nginx/fastcgi;
    uwsgi_temp_path $dir/nginx/uwsgi;
    scgi_temp_path $dir/nginx/scgi;

    upstream parley {
        # Parley: round robin, no stickiness; any instance answers any
        # request. max_fails=0 keeps every instance in the rotation: one
        # that is down fails fast and the request goes to the next.
$upstreams        keepalive 64;
    }
    server {
        listen 127.0.0.1:$PORT;
        location / {
            proxy_pass http://parley;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            # Parley: the client's address, for the per-address session
            # limit (parley -trusted-proxies names this proxy).
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            # Parley: a held poll's answer goes out the moment it comes.
            proxy_buffering off;
            # Parley: longer than the longest poll (wait=60 s), or the
            # proxy cuts held polls and clients see errors instead of
            # empty answers.
            proxy_read_timeout 90s;
            proxy_send_timeout 90s;
            # Parley: a poll refused by a draining or unready instance
            # (503) is tried on the next one; sends (POST) never are.
            proxy_next_upstream error timeout http_502 http_503;
        }
    }
}
CONF
nginx -p "$dir/nginx" -c "$dir/nginx.conf" -g 'daemon off;' &
pids+=($!)
wait_port "$PORT"

echo "run-cluster: http://127.0.0.1:$PORT/ -> parley on $PARLEY_PORTS, redis on $REDIS_PORT; files in $dir; Ctrl-C stops"
# Stop everything as soon as any one process ends.
wait -n "${pids[@]}" || true

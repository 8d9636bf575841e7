#!/bin/sh
# cluster.sh up|down|status|start NAME - the production topology of docs/OPERATIONS.md
# as plain processes on loopback: a Redis primary with two replicas, three
# Sentinels watching it, and three tracesvc nodes that find the primary
# through the Sentinels. docker/compose.yaml describes the same topology
# with the same settings (tests/cluster_flags.sh compares them).
#
#   CLUSTER_DIR   where state, logs, passwords and PID files live
#                 (default: ${TMPDIR:-/tmp}/tracecode-cluster)
#   CLUSTER_PORT  first of 40 consecutive loopback ports (default 17300):
#                 Redis +0..2, Sentinels +10..12, gRPC +20..22, HTTP +30..32
#   SENTINEL_DOWN_MS  Sentinel's down-after-milliseconds (default 5000)
#   TC_BUILD      the build directory with bin/ (default: build)
#
# Passwords are made at 'up' (CLUSTER_DIR/secrets, mode 600) and reach the
# processes through config files and the environment, never the command
# line. Every process is stopped by the PID it was started with.
set -eu
cd "$(dirname "$0")/.."

dir=${CLUSTER_DIR:-${TMPDIR:-/tmp}/tracecode-cluster}
base=${CLUSTER_PORT:-17300}
down_ms=${SENTINEL_DOWN_MS:-5000}
build=${TC_BUILD:-$PWD/build}
bin=$build/bin
master=tracecode

redis_port() { echo $((base + $1)); }
sentinel_port() { echo $((base + 10 + $1)); }
grpc_port() { echo $((base + 20 + $1)); }
http_port() { echo $((base + 30 + $1)); }
admin_port() { echo $((base + 35 + $1)); }

# The settings both this script and docker/compose.yaml use (compared by
# tests/cluster_flags.sh): durability survives a promotion because every
# Redis, the replicas too, refuses writes without a replica behind it, and
# every write waits for one replica (--redis-replicas 1).
REDIS_SETTINGS="appendonly yes
appendfsync always
min-replicas-to-write 1
min-replicas-max-lag 10
replica-serve-stale-data yes
protected-mode yes"
SENTINEL_SETTINGS="sentinel down-after-milliseconds $master $down_ms
sentinel failover-timeout $master 20000
sentinel parallel-syncs $master 1"
TRACESVC_FLAGS="--redis-replicas 1 --redis-replicas-wait 2000 --ready-staleness 600 --max-staleness 5"

started() { # name pid
    echo "$2" > "$dir/pids/$1.pid"
}

# A process that has exited but was not reaped yet (its parent, the shell
# that started it, is gone) still answers kill -0: count it as stopped.
running() { # pid
    kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]
}

alive() { # name
    [ -f "$dir/pids/$1.pid" ] && running "$(cat "$dir/pids/$1.pid")"
}

wait_for() { # seconds command...
    t=$1
    shift
    i=0
    while [ "$i" -lt $((t * 10)) ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

rcli() { # port args...
    p=$1
    shift
    REDISCLI_AUTH=$(cat "$dir/secrets/redis") redis-cli --no-auth-warning -h 127.0.0.1 -p "$p" "$@"
}

scli() { # index args...
    p=$(sentinel_port "$1")
    shift
    REDISCLI_AUTH=$(cat "$dir/secrets/sentinel") redis-cli --no-auth-warning -h 127.0.0.1 -p "$p" "$@"
}

up_redis() { # index
    i=$1
    port=$(redis_port "$i")
    mkdir -p "$dir/redis$i"
    {
        echo "port $port"
        echo "bind 127.0.0.1"
        echo "dir $dir/redis$i"
        echo "requirepass $(cat "$dir/secrets/redis")"
        echo "masterauth $(cat "$dir/secrets/redis")"
        echo "replica-announce-ip 127.0.0.1"
        echo "save \"\""
        echo "$REDIS_SETTINGS"
        [ "$i" -eq 0 ] || echo "replicaof 127.0.0.1 $(redis_port 0)"
    } > "$dir/redis$i/redis.conf"
    chmod 600 "$dir/redis$i/redis.conf"
    redis-server "$dir/redis$i/redis.conf" > "$dir/redis$i.log" 2>&1 &
    started "redis$i" $!
}

up_sentinel() { # index
    i=$1
    mkdir -p "$dir/sentinel$i"
    {
        echo "port $(sentinel_port "$i")"
        echo "bind 127.0.0.1"
        echo "dir $dir/sentinel$i"
        echo "requirepass $(cat "$dir/secrets/sentinel")"
        echo "sentinel sentinel-pass $(cat "$dir/secrets/sentinel")"
        echo "sentinel announce-ip 127.0.0.1"
        echo "sentinel monitor $master 127.0.0.1 $(redis_port 0) 2"
        echo "sentinel auth-pass $master $(cat "$dir/secrets/redis")"
        echo "$SENTINEL_SETTINGS"
    } > "$dir/sentinel$i/sentinel.conf" # Sentinel rewrites it: writable
    chmod 600 "$dir/sentinel$i/sentinel.conf"
    redis-sentinel "$dir/sentinel$i/sentinel.conf" > "$dir/sentinel$i.log" 2>&1 &
    started "sentinel$i" $!
}

sentinel_url() {
    echo "redis-sentinel://127.0.0.1:$(sentinel_port 0),127.0.0.1:$(sentinel_port 1),127.0.0.1:$(sentinel_port 2)/$master"
}

up_node() { # index
    i=$1
    # shellcheck disable=SC2086
    TRACESVC_REDIS_PASSWORD=$(cat "$dir/secrets/redis") \
        TRACESVC_SENTINEL_PASSWORD=$(cat "$dir/secrets/sentinel") \
        "$bin/tracesvc" --redis "$(sentinel_url)" --keys "$dir/node$i/keys" --insecure \
        --grpc "127.0.0.1:$(grpc_port "$i")" --http "127.0.0.1:$(http_port "$i")" \
        --admin "127.0.0.1:$(admin_port "$i")" \
        --node-id "node$i" --base-url https://tc.example.com $TRACESVC_FLAGS \
        >> "$dir/node$i.log" 2>&1 &
    started "node$i" $!
}

ready() { # index [query]
    curl -sf "http://127.0.0.1:$(admin_port "$1")/readyz$2"
}

cmd_up() {
    command -v redis-sentinel >/dev/null || { echo "cluster.sh: needs redis-sentinel (scripts/deps.sh)" >&2; exit 1; }
    [ -x "$bin/tracesvc" ] || { echo "cluster.sh: no $bin/tracesvc: build first (scripts/build.sh build)" >&2; exit 1; }
    if alive redis0 || alive node0; then
        echo "cluster.sh: already up in $dir (cluster.sh down first)" >&2
        exit 1
    fi
    mkdir -p "$dir/pids" "$dir/secrets"
    chmod 700 "$dir" "$dir/secrets"
    for s in redis sentinel; do
        [ -s "$dir/secrets/$s" ] || (umask 077 && openssl rand -hex 24 > "$dir/secrets/$s")
    done
    # One keyring, copied to each node as each machine would hold its own
    # (a rolling rotation copies a staged key to every node: OPERATIONS.md).
    [ -d "$dir/keys" ] || "$bin/tracekeys" init --dir "$dir/keys" >/dev/null
    for i in 0 1 2; do
        [ -d "$dir/node$i/keys" ] || { mkdir -p "$dir/node$i" && cp -rp "$dir/keys" "$dir/node$i/keys"; }
    done
    for i in 0 1 2; do up_redis "$i"; done
    for i in 0 1 2; do
        wait_for 10 sh -c "[ \"\$(REDISCLI_AUTH=$(cat "$dir/secrets/redis") redis-cli --no-auth-warning -p $(redis_port "$i") ping)\" = PONG ]" ||
            { echo "cluster.sh: redis$i did not start (see $dir/redis$i.log)" >&2; exit 1; }
    done
    wait_for 20 sh -c "REDISCLI_AUTH=$(cat "$dir/secrets/redis") redis-cli --no-auth-warning -p $(redis_port 0) info replication | grep -q connected_slaves:2" ||
        { echo "cluster.sh: the replicas did not connect" >&2; exit 1; }
    for i in 0 1 2; do up_sentinel "$i"; done
    for i in 0 1 2; do
        wait_for 10 sh -c "REDISCLI_AUTH=$(cat "$dir/secrets/sentinel") redis-cli --no-auth-warning -p $(sentinel_port "$i") sentinel get-master-addr-by-name $master | grep -q 127.0.0.1" ||
            { echo "cluster.sh: sentinel$i did not start (see $dir/sentinel$i.log)" >&2; exit 1; }
    done
    for i in 0 1 2; do up_node "$i"; done
    for i in 0 1 2; do
        wait_for 30 ready "$i" "?writes=1" ||
            { echo "cluster.sh: node$i is not ready (see $dir/node$i.log)" >&2; exit 1; }
    done
    cmd_status
    cat <<EOF

Keyrings: $dir/node0/keys, node1/keys, node2/keys (copies of $dir/keys)
Reach any node with tracectl (insecure gRPC on loopback):
  TRACECTL_ADDR=127.0.0.1:$(grpc_port 0) TRACECTL_INSECURE=1 $bin/tracectl --role regulator --subject SAMR manufacturer list
Nodes: gRPC 127.0.0.1:$(grpc_port 0) :$(grpc_port 1) :$(grpc_port 2); scan pages (/C/{code}) 127.0.0.1:$(http_port 0) :$(http_port 1) :$(http_port 2);
       admin (/readyz, /metrics) 127.0.0.1:$(admin_port 0) :$(admin_port 1) :$(admin_port 2)
Redis (password in $dir/secrets/redis): 127.0.0.1:$(redis_port 0) :$(redis_port 1) :$(redis_port 2)
Sentinels (password in $dir/secrets/sentinel): $(sentinel_url)
Stop: scripts/cluster.sh down   (CLUSTER_DIR=$dir CLUSTER_PORT=$base)
EOF
}

stop_one() { # name
    f=$dir/pids/$1.pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    if kill -TERM "$pid" 2>/dev/null; then
        i=0
        while running "$pid" && [ "$i" -lt 100 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

cmd_down() {
    [ -d "$dir/pids" ] || { echo "cluster.sh: nothing up in $dir"; return 0; }
    for n in node0 node1 node2 sentinel0 sentinel1 sentinel2 redis0 redis1 redis2; do
        stop_one "$n"
    done
    echo "cluster.sh: stopped (state and logs stay in $dir; remove it to start afresh)"
}

cmd_status() {
    [ -d "$dir/pids" ] || { echo "cluster.sh: nothing up in $dir"; return 0; }
    for i in 0 1 2; do
        if alive "redis$i"; then
            printf 'redis%d     127.0.0.1:%s  %s\n' "$i" "$(redis_port "$i")" "$(rcli "$(redis_port "$i")" role 2>/dev/null | head -n 1)"
        else
            printf 'redis%d     127.0.0.1:%s  down\n' "$i" "$(redis_port "$i")"
        fi
    done
    for i in 0 1 2; do
        if alive "sentinel$i"; then
            printf 'sentinel%d  127.0.0.1:%s  primary %s\n' "$i" "$(sentinel_port "$i")" \
                "$(scli "$i" sentinel get-master-addr-by-name $master 2>/dev/null | tr '\n' ':' | sed 's/:$//')"
        else
            printf 'sentinel%d  127.0.0.1:%s  down\n' "$i" "$(sentinel_port "$i")"
        fi
    done
    for i in 0 1 2; do
        if alive "node$i"; then
            printf 'node%d      grpc 127.0.0.1:%s http :%s admin :%s  %s\n' "$i" "$(grpc_port "$i")" \
                "$(http_port "$i")" "$(admin_port "$i")" \
                "$(curl -s "http://127.0.0.1:$(admin_port "$i")/readyz" || echo unreachable)"
        else
            printf 'node%d      down\n' "$i"
        fi
    done
}

# Start one process again (after a crash or a kill): redisN, sentinelN,
# nodeN. A Redis that was the primary comes back as it was configured and
# the Sentinels turn it into a replica of the current primary.
cmd_start() {
    alive "$1" && { echo "cluster.sh: $1 is running" >&2; exit 1; }
    i=${1#"${1%?}"}
    case "$1" in
    redis[0-2])
        redis-server "$dir/redis$i/redis.conf" >> "$dir/redis$i.log" 2>&1 &
        started "redis$i" $!
        ;;
    sentinel[0-2])
        redis-sentinel "$dir/sentinel$i/sentinel.conf" >> "$dir/sentinel$i.log" 2>&1 &
        started "sentinel$i" $!
        ;;
    node[0-2]) up_node "$i" ;;
    *)
        echo "cluster.sh: start redis0..2, sentinel0..2 or node0..2" >&2
        exit 2
        ;;
    esac
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
start) cmd_start "${2:-}" ;;
*)
    echo "usage: scripts/cluster.sh up|down|status|start NAME" >&2
    exit 2
    ;;
esac

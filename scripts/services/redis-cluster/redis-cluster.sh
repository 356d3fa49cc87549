#!/usr/bin/env bash
# A local Redis Cluster from the machine's redis-server: 3 masters + 1 replica each by default,
# on 127.0.0.1:7000..7005, cluster-enabled, AOF on (appendfsync everysec).
#
#   redis-cluster.sh start    start every node that is down; create the cluster on first run
#                             (redis-cli --cluster create --cluster-yes); wait until it is ok
#   redis-cluster.sh wait     block until every node says cluster_state:ok, all 16384 slots are
#                             served, and every replica is in sync (REDIS_CLUSTER_WAIT_TIMEOUT, 60s)
#   redis-cluster.sh stop     SHUTDOWN NOSAVE each node (SIGKILL after REDIS_CLUSTER_STOP_TIMEOUT)
#   redis-cluster.sh status   exit 0 when every node runs and the cluster is ok; prints the roles
#   redis-cluster.sh nodes    print host:port,host:port,... (the value of REDIS_CLUSTER_NODES)
#   redis-cluster.sh clean    delete the data dir (only while stopped)
#
# A node killed by a test (its replica took over) comes back as a replica with `start`: its
# nodes.conf and AOF are kept. Data, config and logs live under
# $POLYQUEUE_CACHE/redis-cluster/<port>/, never in the repo.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SERVICE=redis-cluster # used by lib.sh
# shellcheck source=lib.sh source-path=SCRIPTDIR/..
source "$HERE/../lib.sh"

HOST=127.0.0.1
BASE_PORT="${REDIS_CLUSTER_PORT:-7000}"
MASTERS="${REDIS_CLUSTER_MASTERS:-3}"
REPLICAS="${REDIS_CLUSTER_REPLICAS:-1}"
NODE_TIMEOUT_MS="${REDIS_CLUSTER_NODE_TIMEOUT_MS:-2000}"
WAIT_TIMEOUT="${REDIS_CLUSTER_WAIT_TIMEOUT:-60}"
STOP_TIMEOUT="${REDIS_CLUSTER_STOP_TIMEOUT:-10}"
DATA="${REDIS_CLUSTER_DATA_DIR:-$POLYQUEUE_CACHE/redis-cluster}"
COUNT=$((MASTERS * (1 + REPLICAS)))

ports() { seq "$BASE_PORT" $((BASE_PORT + COUNT - 1)); }
cli() { local port=$1; shift; timeout 5 redis-cli -h "$HOST" -p "$port" "$@"; }
answers() { [[ "$(cli "$1" ping 2>/dev/null)" == PONG ]]; }
info_field() { # port field (from CLUSTER INFO)
  cli "$1" cluster info 2>/dev/null | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'
}

start_node() {
  local port=$1 dir="$DATA/$1"
  mkdir -p "$dir"
  # Run from the node's dir: nodes.conf, the AOF and the log stay there.
  redis-server --daemonize yes --bind "$HOST" --port "$port" \
    --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-node-timeout "$NODE_TIMEOUT_MS" --cluster-replica-validity-factor 0 \
    --appendonly yes --appendfsync everysec --save "" \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
}

cmd_start() {
  need redis-server
  need redis-cli
  local port started=()
  for port in $(ports); do
    if answers "$port"; then continue; fi
    start_node "$port"
    started+=("$port")
  done
  for port in $(ports); do
    wait_until 10 0.1 answers "$port" || { tail_log "$DATA/$port/redis.log" 20; die "node $HOST:$port did not start"; }
  done
  ((${#started[@]} == 0)) || log "started nodes ${started[*]}"
  # A fresh set of nodes (no slot assigned anywhere): create the cluster. Nodes that knew each
  # other before (nodes.conf) find each other again on their own.
  if [[ "$(info_field "$BASE_PORT" cluster_slots_assigned)" == 0 ]]; then
    local assigned=0
    for port in $(ports); do
      assigned=$((assigned + $(info_field "$port" cluster_slots_assigned)))
    done
    if ((assigned == 0)); then
      local addresses=()
      for port in $(ports); do addresses+=("$HOST:$port"); done
      log "creating the cluster: $MASTERS masters, $REPLICAS replica(s) each ..."
      redis-cli --cluster create "${addresses[@]}" --cluster-replicas "$REPLICAS" --cluster-yes \
        >"$DATA/create.log" 2>&1 || { cat "$DATA/create.log" >&2; die "redis-cli --cluster create failed"; }
    fi
  fi
  cmd_wait
}

# ok PORT: the node sees a healthy cluster with every slot served.
node_ok() {
  [[ "$(info_field "$1" cluster_state)" == ok && "$(info_field "$1" cluster_slots_ok)" == 16384 ]]
}

# in_sync PORT: a master, or a replica whose link to its master is up.
in_sync() {
  local replication
  replication=$(cli "$1" info replication 2>/dev/null | tr -d '\r') || return 1
  grep -q '^role:master' <<<"$replication" && return 0
  grep -q '^master_link_status:up' <<<"$replication"
}

# cluster_ok: every node sees a healthy cluster and every replica is in sync; sets port to the
# first node that does not.
cluster_ok() {
  for port in $(ports); do
    node_ok "$port" && in_sync "$port" || return 1
  done
}

cmd_wait() {
  local port
  if wait_until "$WAIT_TIMEOUT" 0.25 cluster_ok; then
    log "ready: REDIS_CLUSTER_NODES=$(cmd_nodes)"
    return 0
  fi
  cli "$BASE_PORT" cluster nodes >&2 || true
  die "cluster not ok within ${WAIT_TIMEOUT}s (node $port: state $(info_field "$port" cluster_state))"
}

cmd_stop() {
  local port pid
  for port in $(ports); do
    pid=$(cat "$DATA/$port/redis.pid" 2>/dev/null || true)
    answers "$port" || continue
    cli "$port" shutdown nosave >/dev/null 2>&1 || true
    if ! wait_port_closed "$HOST" "$port" "$STOP_TIMEOUT" && [[ -n "$pid" ]] && pid_alive "$pid" redis-server; then
      log "node $port still up after ${STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  log "stopped"
}

cmd_status() {
  local port down=0
  for port in $(ports); do
    if answers "$port"; then
      printf '%s:%s %s %s\n' "$HOST" "$port" \
        "$(cli "$port" info replication | tr -d '\r' | awk -F: '$1 == "role" { print $2 }')" \
        "$(info_field "$port" cluster_state)"
    else
      printf '%s:%s down\n' "$HOST" "$port"
      down=1
    fi
  done
  ((down == 0)) && node_ok "$BASE_PORT"
}

cmd_nodes() {
  local port out=()
  for port in $(ports); do out+=("$HOST:$port"); done
  (IFS=,; printf '%s\n' "${out[*]}")
}

cmd_clean() {
  local port
  for port in $(ports); do
    answers "$port" && die "node $port is running; stop the cluster first"
  done
  log "deleting $DATA"
  rm -rf "$DATA"
}

dispatch "start|wait|stop|status|nodes|clean" "$@"

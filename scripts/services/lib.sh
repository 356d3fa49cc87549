# shellcheck shell=bash
# Helpers shared by scripts/services/*/*.sh. Sourced, never executed.
# The sourcing script sets SERVICE (a label for messages) before using these.

POLYQUEUE_CACHE="${POLYQUEUE_CACHE:-$HOME/.cache/polyqueue}"

log() { printf '[%s] %s\n' "$SERVICE" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$SERVICE" "$*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not on PATH"; }

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
  # shellcheck disable=SC2016 # expanded by the inner shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# pid_alive PID MARKER: true when PID is a live (non-zombie) process whose
# command line contains MARKER (guards against a stale pid file + pid reuse).
pid_alive() {
  local pid=$1 marker=$2 state
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ "$state" != Z ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"
}

# running_pid PIDFILE MARKER: print the pid and succeed if it is alive.
running_pid() {
  local pid
  [[ -f "$1" ]] || return 1
  pid=$(<"$1")
  pid_alive "$pid" "$2" || return 1
  printf '%s\n' "$pid"
}

# resolve_jars POM LIBDIR [mvn -D args...]: copy the POM's dependencies into
# LIBDIR once. A .complete marker makes later calls a no-op; resolution goes to a
# temp dir first so an interrupted download never looks complete.
resolve_jars() {
  local pom=$1 lib=$2; shift 2
  if [[ -f "$lib/.complete" ]]; then
    return 0
  fi
  need mvn
  log "resolving jars from Maven Central into $lib (first run only) ..."
  local tmp="$lib.tmp.$$" started=$SECONDS
  rm -rf "$tmp"
  mkdir -p "$(dirname "$lib")"
  if ! mvn -q -B -Dstyle.color=never -f "$pom" "$@" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime >"$tmp.log" 2>&1; then
    cat "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    die "maven could not resolve the jars (output above)"
  fi
  rm -f "$tmp.log"
  rm -rf "$lib"
  mv "$tmp" "$lib"
  touch "$lib/.complete"
  log "resolved $(find "$lib" -name '*.jar' | wc -l) jars in $((SECONDS - started))s"
}

# launch PIDFILE LOGFILE CMD...: start CMD detached (own session, survives the
# caller's terminal/process group), stdout+stderr appended to LOGFILE.
launch() {
  local pidfile=$1 logfile=$2; shift 2
  printf '\n===== %s: starting %s =====\n' "$(date -Is)" "$SERVICE" >>"$logfile"
  rm -f "$pidfile"
  # The inner shell writes its own pid, then exec's java, so the pid is java's.
  # shellcheck disable=SC2016 # expanded by the inner shell
  nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
    </dev/null >>"$logfile" 2>&1 &
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s "$pidfile" ]] && break
    sleep 0.1
  done
  [[ -s "$pidfile" ]] || die "process did not start; see $logfile"
}

# stop_pid PIDFILE MARKER TIMEOUT_S: SIGTERM, wait up to TIMEOUT_S, then SIGKILL.
# Returns only once the process is gone.
stop_pid() {
  local pidfile=$1 marker=$2 timeout_s=$3 pid i
  if ! pid=$(running_pid "$pidfile" "$marker"); then
    rm -f "$pidfile"
    return 1
  fi
  log "stopping (pid $pid, SIGTERM) ..."
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout_s * 5; i++)); do
    pid_alive "$pid" "$marker" || break
    sleep 0.2
  done
  if pid_alive "$pid" "$marker"; then
    log "still running after ${timeout_s}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      pid_alive "$pid" "$marker" || break
      sleep 0.2
    done
    pid_alive "$pid" "$marker" && die "pid $pid survived SIGKILL"
  fi
  rm -f "$pidfile"
  log "stopped"
}

# wait_port_closed HOST PORT TIMEOUT_S
wait_port_closed() {
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    port_open "$1" "$2" || return 0
    sleep 0.2
  done
  return 1
}

tail_log() {
  if [[ -f "$1" ]]; then
    printf '[%s] ----- last %s lines of %s -----\n' "$SERVICE" "${2:-40}" "$1" >&2
    tail -n "${2:-40}" "$1" >&2
    printf '[%s] -----\n' "$SERVICE" >&2
  fi
}

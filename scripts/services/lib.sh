# shellcheck shell=bash
# Helpers shared by scripts/services/*/*.sh. Sourced, never executed.
# The sourcing script sets SERVICE (a label for messages) before using these; a script that runs
# one process of its own also sets PIDFILE, MARKER (a string on that process's command line) and
# LOGFILE for the one_* helpers.

POLYQUEUE_CACHE="${POLYQUEUE_CACHE:-$HOME/.cache/polyqueue}"

log() { printf '[%s] %s\n' "$SERVICE" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$SERVICE" "$*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not on PATH"; }

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
  # shellcheck disable=SC2016 # expanded by the inner shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# wait_until TIMEOUT_S INTERVAL_S CMD...: run CMD every INTERVAL_S until it succeeds (true) or
# TIMEOUT_S seconds have passed (false). CMD runs in this shell: it may set variables, or die.
wait_until() {
  local deadline=$((SECONDS + $1)) interval=$2
  shift 2
  while ((SECONDS < deadline)); do
    "$@" && return 0
    sleep "$interval"
  done
  return 1
}

port_closed() { ! port_open "$1" "$2"; }

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
  wait_until 5 0.1 test -s "$pidfile" || die "process did not start; see $logfile"
}

pid_gone() { ! pid_alive "$1" "$2"; }

# stop_pid PIDFILE MARKER TIMEOUT_S: SIGTERM, wait up to TIMEOUT_S, then SIGKILL.
# Returns only once the process is gone.
stop_pid() {
  local pidfile=$1 marker=$2 timeout_s=$3 pid
  if ! pid=$(running_pid "$pidfile" "$marker"); then
    rm -f "$pidfile"
    return 1
  fi
  log "stopping (pid $pid, SIGTERM) ..."
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until "$timeout_s" 0.2 pid_gone "$pid" "$marker"; then
    log "still running after ${timeout_s}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until 10 0.2 pid_gone "$pid" "$marker" || die "pid $pid survived SIGKILL"
  fi
  rm -f "$pidfile"
  log "stopped"
}

# wait_port_closed HOST PORT TIMEOUT_S
wait_port_closed() { wait_until "$3" 0.2 port_closed "$1" "$2"; }

# one_files NAME CONFIG: the files of a one-process service under $POLYQUEUE_CACHE/NAME-run: sets
# RUN, PIDFILE (NAME.pid), LOGFILE (server.log) and MARKER, the generated config file RUN/CONFIG,
# which is on the process's command line and so identifies our process.
one_files() {
  RUN="$POLYQUEUE_CACHE/$1-run"
  PIDFILE="$RUN/$1.pid"
  LOGFILE="$RUN/server.log"
  MARKER="$RUN/$2"
}

# one_whose HOST PORT: sets whose to "ours" (and pid) when our process runs, to "theirs" when
# something else answers on HOST:PORT, else to "none".
one_whose() {
  whose=none
  if pid=$(running_pid "$PIDFILE" "$MARKER"); then
    whose=ours
  elif port_open "$1" "$2"; then
    whose=theirs
  fi
}

# one_up ADDRESS HOST PORT: true, saying so, when our process runs or something else answers on
# HOST:PORT (a start is then a no-op).
one_up() {
  local whose pid
  one_whose "$2" "$3"
  case $whose in
    ours) log "already running (pid $pid) on $1 — nothing to do" ;;
    theirs) log "$1 is already answering (not started by this script) — nothing to do" ;;
    *) return 1 ;;
  esac
}

# one_ready TIMEOUT_S INTERVAL_S CHECK...: wait until CHECK succeeds (true) or TIMEOUT_S pass
# (false, after printing the log's tail); dies at once when our process exits meanwhile.
one_ready() {
  local timeout_s=$1 interval=$2
  shift 2
  wait_until "$timeout_s" "$interval" one_alive_and "$@" && return 0
  tail_log "$LOGFILE" 60
  return 1
}
one_alive_and() {
  if [[ -f "$PIDFILE" ]] && ! running_pid "$PIDFILE" "$MARKER" >/dev/null; then
    tail_log "$LOGFILE" 60
    die "the process exited while starting"
  fi
  "$@"
}

# one_stop ADDRESS HOST PORT TIMEOUT_S: stop our process and wait for its port to close; refuse
# to stop a server on HOST:PORT that this script did not start.
one_stop() {
  if ! stop_pid "$PIDFILE" "$MARKER" "$4"; then
    if port_open "$2" "$3"; then
      die "not started by this script, but $1 is answering — stop it yourself"
    fi
    log "not running"
    return 0
  fi
  wait_port_closed "$2" "$3" 10 || die "$1 still open after stop"
}

# one_status ADDRESS HOST PORT [DETAIL]: false when nothing runs there.
one_status() {
  local whose pid
  one_whose "$2" "$3"
  case $whose in
    ours) log "running (pid $pid) on $1; ${4:+$4; }log: $LOGFILE" ;;
    theirs) log "$1 is answering, but not started by this script" ;;
    *) log "not running" && return 1 ;;
  esac
}

# one_clean DIR: delete our data dir, only while our process is stopped.
one_clean() {
  running_pid "$PIDFILE" "$MARKER" >/dev/null && die "running; stop it first"
  log "deleting $1"
  rm -rf "$1"
}

# dispatch USAGE [COMMAND ARGS...]: run cmd_<COMMAND> (dashes as underscores) with ARGS, or print
# the usage and exit 2 when the script has no such command.
dispatch() {
  local usage=$1 command=${2:-}
  shift $(($# < 2 ? $# : 2))
  if [[ -z "$command" ]] || ! declare -F "cmd_${command//-/_}" >/dev/null; then
    echo "usage: $0 $usage" >&2
    exit 2
  fi
  "cmd_${command//-/_}" "$@"
}

tail_log() {
  if [[ -f "$1" ]]; then
    printf '[%s] ----- last %s lines of %s -----\n' "$SERVICE" "${2:-40}" "$1" >&2
    tail -n "${2:-40}" "$1" >&2
    printf '[%s] -----\n' "$SERVICE" >&2
  fi
}

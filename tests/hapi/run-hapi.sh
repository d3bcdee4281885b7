#!/usr/bin/env bash
# Start/stop the local HAPI FHIR JPA test server (R4, in-memory H2) on 127.0.0.1.
#
#   tests/hapi/run-hapi.sh start    build if needed, start in the background, wait until healthy,
#                                   print the base URL (http://127.0.0.1:PORT/fhir) as the last line
#   tests/hapi/run-hapi.sh stop     stop the server this script started
#   tests/hapi/run-hapi.sh status   print "running ..." (exit 0) or "stopped" (exit 1)
#
# Environment:
#   HAPI_PORT            port on 127.0.0.1 (default 8080)
#   HAPI_START_TIMEOUT   seconds to wait for /fhir/metadata to answer 200 (default 300)
#   HAPI_JAVA_OPTS       JVM options (default -Xmx1g)
#   HAPI_VALIDATION      true (default) / false: reject requests whose resources have validation errors
#   HAPI_PROFILE         none (default) / oracle / epic: the vendor rules the plain /fhir path follows
#                        (/oracle/fhir and /epic/fhir always follow theirs; see README.md)
#   HAPI_FILES_PORT      the vendor profiles' export-file port (default HAPI_PORT + 1000)
#   JAVA, MVN            java / mvn executables (default: from PATH)
# Only the base URL goes to stdout; progress and errors go to stderr.
set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${HAPI_PORT:-8080}"
FILES_PORT="${HAPI_FILES_PORT:-$((PORT + 1000))}"
PROFILE="${HAPI_PROFILE:-none}"
TIMEOUT="${HAPI_START_TIMEOUT:-300}"
JAVA_OPTS="${HAPI_JAVA_OPTS:--Xmx1g}"
JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"
JAR="$DIR/target/hapi-test-server.jar"
LOG="$DIR/hapi.log"
PIDFILE="$DIR/hapi.pid"

log() { echo "run-hapi: $*" >&2; }

# pid from the pid file if that process is still our server (a java process running our jar)
our_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' < "$PIDFILE")"
  [[ -n "$pid" ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  local cmd
  cmd="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *java* && "$cmd" == *"$JAR"* ]] || return 1
  echo "$pid"
}

# port the running server was started with (from its command line)
port_of() {
  tr '\0' '\n' < "/proc/$1/cmdline" | sed -n 's/^-Dhapi\.port=//p' | head -n 1
}

http_code() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$1" 2>/dev/null || true
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

needs_build() {
  [[ ! -f "$JAR" ]] && return 0
  [[ -n "$(find "$DIR/pom.xml" "$DIR/src" -newer "$JAR" -print -quit)" ]]
}

build() {
  log "building $JAR (mvn package; first build downloads ~350 MB into ~/.m2)"
  if ! "$MVN" -B -q -Dstyle.color=never -f "$DIR/pom.xml" package -DskipTests >&2; then
    log "build failed"
    exit 1
  fi
}

wait_healthy() {
  local pid="$1" port="$2" deadline=$((SECONDS + TIMEOUT))
  local url="http://127.0.0.1:$port/fhir/metadata"
  while true; do
    if [[ "$(http_code "$url")" == "200" ]]; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "server process $pid died; last 50 log lines of $LOG:"
      tail -n 50 "$LOG" >&2 || true
      rm -f "$PIDFILE"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "server not healthy after ${TIMEOUT}s; last 50 log lines of $LOG:"
      tail -n 50 "$LOG" >&2 || true
      # a JVM still inside Spring startup ignores TERM until startup ends: short grace
      stop_pid "$pid" 5
      return 1
    fi
    sleep 1
  done
}

# stop_pid PID [GRACE_SECONDS]: TERM, wait up to GRACE (default 30 s), then KILL
stop_pid() {
  local pid="$1" grace="${2:-30}"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((grace * 2))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid still alive after ${grace}s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "$PIDFILE"
}

cmd_start() {
  command -v curl >/dev/null || { log "curl is required"; exit 1; }
  local pid
  if pid="$(our_pid)"; then
    local running_port
    running_port="$(port_of "$pid")"
    if [[ "$running_port" != "$PORT" ]]; then
      log "our server (pid $pid) already runs on port $running_port, not $PORT; stop it first"
      exit 1
    fi
    log "server already running (pid $pid)"
    wait_healthy "$pid" "$PORT" || exit 1
    echo "http://127.0.0.1:$PORT/fhir"
    return 0
  fi
  rm -f "$PIDFILE"
  for p in "$PORT" "$FILES_PORT"; do
    if port_in_use "$p"; then
      log "port $p on 127.0.0.1 is already in use by another process"
      exit 1
    fi
  done
  case "$PROFILE" in
    none|oracle|epic) ;;
    *) log "HAPI_PROFILE must be none, oracle or epic, not '$PROFILE'"; exit 2 ;;
  esac
  if needs_build; then build; fi

  log "starting HAPI FHIR on 127.0.0.1:$PORT, /fhir profile $PROFILE, files port $FILES_PORT (log: $LOG)"
  cd "$DIR"
  # shellcheck disable=SC2086
  nohup "$JAVA" $JAVA_OPTS -Dhapi.port="$PORT" -Dhapi.files.port="$FILES_PORT" -Dhapi.profile="$PROFILE" \
    -jar "$JAR" > "$LOG" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$PIDFILE"
  local t0=$SECONDS
  wait_healthy "$pid" "$PORT" || exit 1
  log "healthy after $((SECONDS - t0))s (pid $pid)"
  echo "http://127.0.0.1:$PORT/fhir"
}

cmd_stop() {
  local pid
  if pid="$(our_pid)"; then
    log "stopping pid $pid"
    stop_pid "$pid"
    echo "stopped"
  else
    [[ -f "$PIDFILE" ]] && log "removing stale pid file"
    rm -f "$PIDFILE"
    echo "stopped"
  fi
}

cmd_status() {
  local pid
  if pid="$(our_pid)"; then
    local port
    port="$(port_of "$pid")"
    echo "running pid=$pid url=http://127.0.0.1:$port/fhir"
    return 0
  fi
  echo "stopped"
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

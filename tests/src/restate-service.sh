#!/bin/sh
# restate-service start|stop|restart|status: runs restate-server on a lab host, which has no systemd.
# The inventory's `command` service manager calls it. Status exits 0 only while the server runs.
set -u
conf=${RESTATE_CONFIG:-/etc/restate/restate.toml}
state=/var/lib/restate
pidfile=$state/restate-server.pid
log=$state/restate-server.log

running() {
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q restate-server "/proc/$pid/cmdline" 2>/dev/null
}

start() {
  running && return 0
  [ -f "$conf" ] || { echo "restate-service: $conf does not exist" >&2; return 1; }
  cd "$state" || return 1
  # setsid: the server must outlive the SSH session that started it.
  setsid /usr/local/bin/restate-server --config-file "$conf" </dev/null >>"$log" 2>&1 &
  echo $! >"$pidfile"
}

stop() {
  if ! running; then rm -f "$pidfile"; return 0; fi
  kill -TERM "$pid" 2>/dev/null
  i=0
  while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  rm -f "$pidfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop && start ;;
  status) running ;;
  *) echo "usage: restate-service start|stop|restart|status" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Runs the system pcscd by hand, for `tessera serve` and real PC/SC tools:
#   scripts/pcscd.sh start|stop|status
# It uses Debian's vpcd config (/etc/reader.conf.d/vpcd): pcscd listens on TCP 35963
# and 35964 for cards, readers "Virtual PCD 00 00" and "Virtual PCD 00 01".
# No --auto-exit: that quits 60 s after the last client and drops the card.
set -euo pipefail

pidfile=${TESSERA_PCSCD_PIDFILE:-/tmp/tessera-pcscd.pid}
logfile=${TESSERA_PCSCD_LOG:-/tmp/tessera-pcscd.log}
socket=/run/pcscd/pcscd.comm

our_pid() {
  local pid
  [[ -f "${pidfile}" ]] || return 1
  pid=$(<"${pidfile}")
  [[ "${pid}" =~ ^[0-9]+$ ]] && kill -0 "${pid}" 2>/dev/null || return 1
  echo "${pid}"
}

ready() {
  [[ -S "${socket}" ]] || return 1
  if command -v opensc-tool >/dev/null 2>&1; then
    opensc-tool -l 2>/dev/null | grep -q "Virtual PCD"
  fi
}

start() {
  local pid other
  if pid=$(our_pid); then
    echo "pcscd already running (pid ${pid})"
    return 0
  fi
  if other=$(pgrep -x pcscd); then
    echo "another pcscd is running (pid ${other//$'\n'/ }), not started by this script; stop it first" >&2
    return 1
  fi
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "pcscd needs root (it owns /run/pcscd)" >&2
    return 1
  fi
  # setsid: not killed by Ctrl-C in the shell that started it.
  setsid pcscd --foreground </dev/null >"${logfile}" 2>&1 &
  pid=$!
  echo "${pid}" >"${pidfile}"
  for _ in $(seq 100); do
    if ! kill -0 "${pid}" 2>/dev/null; then
      rm -f "${pidfile}"
      echo "pcscd exited during startup; log ${logfile}:" >&2
      cat "${logfile}" >&2
      return 1
    fi
    if ready; then
      echo "pcscd started (pid ${pid}, log ${logfile}); cards connect to 127.0.0.1:35963 and :35964"
      return 0
    fi
    sleep 0.1
  done
  echo "pcscd (pid ${pid}) not ready after 10 s; log ${logfile}" >&2
  return 1
}

stop() {
  local pid
  if ! pid=$(our_pid); then
    rm -f "${pidfile}"
    echo "pcscd not running (from this script)"
    return 0
  fi
  kill -TERM "${pid}"
  for _ in $(seq 50); do
    if ! kill -0 "${pid}" 2>/dev/null; then
      rm -f "${pidfile}"
      echo "pcscd stopped (pid ${pid})"
      return 0
    fi
    sleep 0.1
  done
  echo "pcscd (pid ${pid}) ignored SIGTERM for 5 s; killing it" >&2
  kill -KILL "${pid}" 2>/dev/null || true
  rm -f "${pidfile}"
}

status() {
  local pid
  if pid=$(our_pid); then
    echo "pcscd running (pid ${pid}, log ${logfile})"
    if command -v opensc-tool >/dev/null 2>&1; then
      opensc-tool -l || true
    fi
    return 0
  fi
  echo "pcscd not running (from this script)"
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac

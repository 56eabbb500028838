#!/usr/bin/env bash
# Runs pcscd by hand, for `tessera serve` and real PC/SC tools:
#   scripts/pcscd.sh start [--slots N] | stop | status
# Without --slots it uses Debian's vpcd config (/etc/reader.conf.d/vpcd): pcscd listens on TCP 35963 and
# 35964 for cards, readers "Virtual PCD 00 00" and "Virtual PCD 00 01".
# With --slots N (1..64) it writes its own reader config for N vpcd slots on ports 35963.. (consecutive,
# so `tessera serve --vpcd 127.0.0.1:35963 card1 … cardN` plugs card i into port 35963+i):
# - vpcd gives 2 slots per config entry, and one loaded driver file serves one entry, so every entry after
#   the first loads a copy of libifdvpcd.so;
# - one pcscd holds 16 readers (PCSCLITE_MAX_READERS_CONTEXTS; a 17th is silently dropped), so slots past
#   16 go to further pcscd daemons, each in a mount namespace of its own (unshare, root) with a private
#   /run/pcscd. Clients of daemon k >= 1 set PCSCLITE_CSOCK_NAME to its socket (`status` prints them).
# No --auto-exit: that quits 60 s after the last client and drops the card.
set -euo pipefail

state=${TESSERA_PCSCD_DIR:-/tmp/tessera-pcscd-by-hand}
logfile=${TESSERA_PCSCD_LOG:-/tmp/tessera-pcscd.log}
driver=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
first_port=35963
per_daemon=16

daemon_pids() {
  local file pid
  for file in "${state}"/pid.*; do
    [[ -f "${file}" ]] || continue
    pid=$(<"${file}")
    [[ "${pid}" =~ ^[0-9]+$ ]] && kill -0 "${pid}" 2>/dev/null && echo "${pid}"
  done
  return 0
}

# Reader-config entry e: "Virtual PCD", "Virtual PCD B", … (the names the test guard uses).
entry_name() {
  local e=$1 letters=ABCDEFGHIJKLMNOPQRSTUVWXYZ
  if ((e == 0)); then echo "Virtual PCD"
  elif ((e <= 25)); then echo "Virtual PCD ${letters:e:1}"
  else echo "Virtual PCD Z${e}"
  fi
}

write_config() {
  local daemon=$1 slots=$2 first last e port lib dir
  dir="${state}/daemon-${daemon}"
  mkdir -p "${dir}/conf" "${dir}/run"
  : >"${dir}/conf/vpcd"
  first=$((daemon * per_daemon)); last=$((slots < first + per_daemon ? slots : first + per_daemon))
  for ((e = first / 2; e <= (last - 1) / 2; e++)); do
    port=$((first_port + 2 * e))
    lib=${driver}
    if ((e != first / 2)); then lib="${dir}/libifdvpcd-${e}.so"; cp "${driver}" "${lib}"; fi
    printf 'FRIENDLYNAME "%s"\nDEVICENAME /dev/null:%d\nLIBPATH %s\nCHANNELID %d\n\n' \
      "$(entry_name "${e}")" "${port}" "${lib}" "${port}" >>"${dir}/conf/vpcd"
  done
}

ready() {
  local socket=$1
  [[ -S "${socket}" ]] || return 1
  if command -v opensc-tool >/dev/null 2>&1; then
    PCSCLITE_CSOCK_NAME=${socket} opensc-tool -l 2>/dev/null | grep -q "Virtual PCD"
  fi
}

start_daemon() {
  local daemon=$1 config=$2 socket pid
  if ((daemon == 0)); then
    socket=/run/pcscd/pcscd.comm
    # setsid: not killed by Ctrl-C in the shell that started it.
    if [[ -n "${config}" ]]; then
      setsid pcscd --foreground --config "${config}" </dev/null >>"${logfile}" 2>&1 &
    else
      setsid pcscd --foreground </dev/null >>"${logfile}" 2>&1 &
    fi
  else
    socket="${state}/daemon-${daemon}/run/pcscd.comm"
    mkdir -p /run/pcscd
    setsid unshare --mount --propagation private -- sh -c \
      'mount --bind "$0" /run/pcscd && exec pcscd --foreground --config "$1"' \
      "${state}/daemon-${daemon}/run" "${config}" </dev/null >>"${logfile}" 2>&1 &
  fi
  pid=$!
  echo "${pid}" >"${state}/pid.${daemon}"
  for _ in $(seq 100); do
    if ! kill -0 "${pid}" 2>/dev/null; then
      echo "pcscd ${daemon} exited during startup; log ${logfile}:" >&2
      cat "${logfile}" >&2
      return 1
    fi
    if ready "${socket}"; then
      echo "pcscd ${daemon} started (pid ${pid}, socket ${socket})"
      return 0
    fi
    sleep 0.1
  done
  echo "pcscd ${daemon} (pid ${pid}) not ready after 10 s; log ${logfile}" >&2
  return 1
}

start() {
  local slots=0 other daemons d
  if [[ "${1:-}" == "--slots" ]]; then
    slots=${2:-}
    if ! [[ "${slots}" =~ ^[0-9]+$ ]] || ((slots < 1 || slots > 64)); then
      echo "--slots takes a number from 1 to 64" >&2
      return 2
    fi
  elif [[ -n "${1:-}" ]]; then
    echo "usage: $0 start [--slots N]" >&2
    return 2
  fi
  if [[ -n "$(daemon_pids)" ]]; then
    echo "pcscd already running (pids $(daemon_pids | tr '\n' ' ')); stop it first"
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
  rm -rf "${state}"; mkdir -p "${state}"; : >"${logfile}"
  if ((slots == 0)); then
    start_daemon 0 ""
    echo "cards connect to 127.0.0.1:35963 and :35964 (Debian's vpcd config)"
    return 0
  fi
  daemons=$(((slots + per_daemon - 1) / per_daemon))
  for ((d = 0; d < daemons; d++)); do
    write_config "${d}" "${slots}"
    start_daemon "${d}" "${state}/daemon-${d}/conf" || { stop; return 1; }
  done
  echo "${slots} vpcd slots on ports ${first_port}..$((first_port + slots - 1)) over ${daemons} pcscd:" \
    "tessera serve --vpcd 127.0.0.1:${first_port} CARD…"
}

stop() {
  local pid
  if [[ -z "$(daemon_pids)" ]]; then
    rm -rf "${state}"
    echo "pcscd not running (from this script)"
    return 0
  fi
  for pid in $(daemon_pids | sort -rn); do
    kill -TERM "${pid}"
    for _ in $(seq 50); do
      kill -0 "${pid}" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "${pid}" 2>/dev/null; then
      echo "pcscd (pid ${pid}) ignored SIGTERM for 5 s; killing it" >&2
      kill -KILL "${pid}" 2>/dev/null || true
    fi
    echo "pcscd stopped (pid ${pid})"
  done
  rm -rf "${state}"
}

status() {
  local file d socket
  if [[ -z "$(daemon_pids)" ]]; then
    echo "pcscd not running (from this script)"
    return 3
  fi
  for file in "${state}"/pid.*; do
    d=${file##*.}
    if ((d == 0)); then socket=/run/pcscd/pcscd.comm; else socket="${state}/daemon-${d}/run/pcscd.comm"; fi
    echo "pcscd ${d}: pid $(<"${file}"), clients use PCSCLITE_CSOCK_NAME=${socket}"
    if command -v opensc-tool >/dev/null 2>&1; then
      PCSCLITE_CSOCK_NAME=${socket} opensc-tool -l || true
    fi
  done
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start [--slots N]|stop|status" >&2
    exit 2
    ;;
esac

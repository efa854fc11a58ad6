#!/usr/bin/env bash
# netemu.sh - an emulated home network of boards on one machine (needs root).
#
# Each board is a network namespace with one interface, sp0, whose address is
# in 198.18.0.0/24 (the range reserved for benchmarking, RFC 2544), and a
# cgroup v1 CPU quota. The interfaces are TAP devices of a userspace switch
# (switch.c, built here with cc) that gives every board's link its rate,
# one-way delay, jitter and loss - the kernel has no sch_netem. The switch
# has no port outside the namespaces this script creates, so nothing is ever
# sent to any other address. One more namespace, "ctl" (198.18.0.254, an
# unshaped port), runs mpiexec; MPI ranks are started inside the boards by
# hydra's rsh launcher through launch.sh.
#
#   netemu.sh up SPEC          bring the network up (takes down a previous one of the same name)
#   netemu.sh down             take it down; safe to repeat
#   netemu.sh status           boards, addresses, links, switch counters
#   netemu.sh exec BOARD CMD.. run CMD inside BOARD's namespace and CPU cgroup (host name BOARD)
#   netemu.sh mount BOARD SRC DST
#                              give BOARD a private view of the one filesystem the boards share:
#                              every later exec/mpiexec process on BOARD runs in a mount namespace of
#                              its own where SRC is bind-mounted on DST (an empty folder on DST hides
#                              it, a folder per board on a common DST gives each board its own HOME)
#   netemu.sh stats            the switch's per-port frame and byte counters so far
#   netemu.sh mpiexec ARGS..   mpiexec across the boards (hosts = boards in SPEC order unless -hosts given)
#   netemu.sh run SPEC -- CMD  up, CMD, down (also on failure and Ctrl-C)
#
# SPEC: one board a line, '#' comments; columns
#   name  address  rate  delay  jitter  loss  cpu
#   pi5-a 198.18.0.1 1gbit 0.1ms 0.01ms 0% 100
# rate: N[kbit|mbit|gbit] (bit/s), or 0 = unlimited; delay/jitter: N[us|ms|s];
# loss: percent; cpu: percent of one core (100 = a full core, 0 = no limit).
# A board's delay is its link to the switch: the one-way latency between two
# boards is the sum of their delays, the bandwidth the smaller rate.
#
# Environment: NETEMU_NAME (default netemu) names the instance: namespaces
# NAME-BOARD, cgroups /sys/fs/cgroup/cpu/shardpipe-NAME/BOARD, state in
# /run/shardpipe-NAME. NETEMU_SEED seeds loss and jitter (default 1).
# NETEMU_MTU sets the interfaces' MTU (default 9000, see below).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NAME=${NETEMU_NAME:-netemu}
STATE=/run/shardpipe-$NAME
CG=/sys/fs/cgroup/cpu/shardpipe-$NAME
SWITCH_BIN=${NETEMU_SWITCH:-$HERE/../out/netemu-switch}
IFACE=sp0
# Jumbo frames by default: the switch's cost is per frame, and with 1500-byte
# frames a busy 2-core machine cannot move 1 Gbit/s through it (TCP got 847
# Mbit/s there, 955 with 9000). The rate model counts bytes either way.
MTU=${NETEMU_MTU:-9000}
CTL_ADDR=198.18.0.254

die() { echo "netemu: $*" >&2; exit 1; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    die "needs root (network namespaces, TAP devices and cgroups); run as root, e.g. sudo $0 $*"
  fi
  [ -c /dev/net/tun ] || die "no /dev/net/tun: the kernel needs TUN/TAP support"
  command -v ip >/dev/null || die "no 'ip' command: install iproute2"
}

build_switch() {
  local src=$HERE/switch.c
  if [ ! -x "$SWITCH_BIN" ] || [ "$src" -nt "$SWITCH_BIN" ]; then
    mkdir -p "$(dirname "$SWITCH_BIN")"
    cc -O2 -Wall -Wextra -o "$SWITCH_BIN.tmp" "$src" && mv "$SWITCH_BIN.tmp" "$SWITCH_BIN"
  fi
}

# unit conversions for the switch: bit/s, microseconds, percent
to_bps() {
  local v=${1,,}
  case $v in
    *gbit) awk -v x="${v%gbit}" 'BEGIN{printf "%.0f", x*1e9}' ;;
    *mbit) awk -v x="${v%mbit}" 'BEGIN{printf "%.0f", x*1e6}' ;;
    *kbit) awk -v x="${v%kbit}" 'BEGIN{printf "%.0f", x*1e3}' ;;
    *bit) echo "${v%bit}" ;;
    *) echo "$v" ;;
  esac
}
to_us() {
  local v=${1,,}
  case $v in
    *us) echo "${v%us}" ;;
    *ms) awk -v x="${v%ms}" 'BEGIN{printf "%g", x*1000}' ;;
    *s) awk -v x="${v%s}" 'BEGIN{printf "%g", x*1e6}' ;;
    *) echo "$v" ;;
  esac
}

# reads SPEC into the arrays B_NAME B_ADDR B_RATE B_DELAY B_JITTER B_LOSS B_CPU
read_spec() {
  local spec=$1 line n=0
  [ -r "$spec" ] || die "cannot read spec $spec"
  B_NAME=() B_ADDR=() B_RATE=() B_DELAY=() B_JITTER=() B_LOSS=() B_CPU=()
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    line=${line%%#*}
    [ -z "${line// /}" ] && continue
    # shellcheck disable=SC2086
    set -- $line
    [ $# -eq 7 ] || die "$spec:$n: expected 7 columns (name address rate delay jitter loss cpu), got $#"
    [[ $1 =~ ^[a-z0-9][a-z0-9-]{0,14}$ ]] || die "$spec:$n: board name '$1' must be 1-15 of a-z, 0-9, '-'"
    [[ $2 =~ ^198\.18\.0\.([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] && [ "${BASH_REMATCH[1]}" -le 253 ] ||
      die "$spec:$n: address '$2' must be 198.18.0.1 to 198.18.0.253 (198.18.0.254 is the control namespace)"
    [[ $7 =~ ^[0-9]+$ ]] || die "$spec:$n: cpu '$7' must be a whole percent of one core (0 = no limit)"
    B_NAME+=("$1") B_ADDR+=("$2") B_RATE+=("$(to_bps "$3")") B_DELAY+=("$(to_us "$4")")
    B_JITTER+=("$(to_us "$5")") B_LOSS+=("${6%\%}") B_CPU+=("$7")
  done <"$spec"
  [ ${#B_NAME[@]} -ge 1 ] || die "$spec: no boards"
}

# ---- down ----

cmd_down() {
  need_root down
  local pid ns b
  # the switch: only the process this instance started
  if [ -r "$STATE/switch.pid" ]; then
    pid=$(cat "$STATE/switch.pid")
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--ready $STATE/ready"; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.05; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # processes still inside this instance's board cgroups were started by exec/launch here
  if [ -d "$CG" ]; then
    for b in "$CG"/*/; do
      [ -r "$b/cgroup.procs" ] || continue
      for pid in $(cat "$b/cgroup.procs"); do kill -TERM "$pid" 2>/dev/null || true; done
    done
    sleep 0.2
    for b in "$CG"/*/; do
      [ -r "$b/cgroup.procs" ] || continue
      for pid in $(cat "$b/cgroup.procs"); do kill -KILL "$pid" 2>/dev/null || true; done
      rmdir "$b" 2>/dev/null || true
    done
    rmdir "$CG" 2>/dev/null || true
  fi
  # the namespaces this instance created (listed by up before each was made;
  # a name pattern would also catch other instances, e.g. netemu-test-a)
  if [ -r "$STATE/namespaces" ]; then
    for ns in $(cat "$STATE/namespaces"); do
      [ -e "/var/run/netns/$ns" ] || continue
      ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
      ip netns del "$ns" 2>/dev/null || true
    done
  fi
  rm -rf "$STATE"
}

# ---- up ----

cmd_up() {
  local spec=${1:?usage: netemu.sh up SPEC}
  need_root up
  read_spec "$spec"
  build_switch
  cmd_down
  mkdir -p "$STATE"
  cp "$spec" "$STATE/spec"
  # half-way failures and Ctrl-C leave nothing behind
  trap 'echo "netemu: up failed or interrupted; taking down" >&2; cmd_down' EXIT
  trap 'exit 130' INT TERM

  local i ports=() hosts=()
  echo "$NAME-ctl" >>"$STATE/namespaces"
  ip netns add "$NAME-ctl"
  ports+=(--port "netns=$NAME-ctl,dev=$IFACE")
  for i in "${!B_NAME[@]}"; do
    echo "$NAME-${B_NAME[$i]}" >>"$STATE/namespaces"
    ip netns add "$NAME-${B_NAME[$i]}"
    ports+=(--port "netns=$NAME-${B_NAME[$i]},dev=$IFACE,rate=${B_RATE[$i]},delay=${B_DELAY[$i]},jitter=${B_JITTER[$i]},loss=${B_LOSS[$i]}")
    hosts+=("${B_NAME[$i]}")
  done
  rm -f "$STATE/ready"
  setsid "$SWITCH_BIN" --seed "${NETEMU_SEED:-1}" --ready "$STATE/ready" --stats "$STATE/switch.stats" "${ports[@]}" \
    </dev/null >"$STATE/switch.log" 2>&1 &
  echo $! >"$STATE/switch.pid"
  for _ in $(seq 100); do [ -s "$STATE/ready" ] && break; sleep 0.05; done
  [ -s "$STATE/ready" ] || { cat "$STATE/switch.log" >&2; die "the switch did not start"; }
  # the switch gets priority over the boards: its timing is the emulation
  renice -n -10 -p "$(cat "$STATE/switch.pid")" >/dev/null 2>&1 || true

  configure_ns "$NAME-ctl" "$CTL_ADDR"
  mkdir -p "$CG"
  for i in "${!B_NAME[@]}"; do
    configure_ns "$NAME-${B_NAME[$i]}" "${B_ADDR[$i]}"
    local cg=$CG/${B_NAME[$i]}
    mkdir -p "$cg"
    echo 10000 >"$cg/cpu.cfs_period_us"
    if [ "${B_CPU[$i]}" -gt 0 ]; then echo $((B_CPU[i] * 100)) >"$cg/cpu.cfs_quota_us"; else echo -1 >"$cg/cpu.cfs_quota_us"; fi
    echo "${B_NAME[$i]} ${B_ADDR[$i]}" >>"$STATE/hosts"
  done
  # every board answers ARP through the switch (one UDP datagram to the
  # discard port of each board makes the control namespace resolve it)
  for i in "${!B_NAME[@]}"; do
    local ok=
    for _ in $(seq 40); do
      ip netns exec "$NAME-ctl" bash -c "echo x >/dev/udp/${B_ADDR[$i]}/9" 2>/dev/null || true
      if ip netns exec "$NAME-ctl" ip neigh show "${B_ADDR[$i]}" | grep -qE 'REACHABLE|STALE|DELAY'; then ok=1; break; fi
      sleep 0.05
    done
    [ -n "$ok" ] || die "board ${B_NAME[$i]} (${B_ADDR[$i]}) does not answer through the switch"
  done
  trap - EXIT INT TERM
  echo "netemu: $NAME up: ${hosts[*]} (switch pid $(cat "$STATE/switch.pid"))" >&2
}

configure_ns() {
  local ns=$1 addr=$2
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip addr add "$addr/24" dev "$IFACE"
  ip netns exec "$ns" ip link set "$IFACE" mtu "$MTU" up
}

# ---- exec, mpiexec, status, run ----

board_ok() {
  [ -r "$STATE/hosts" ] || die "$NAME is not up; run: netemu.sh up SPEC"
  grep -q "^$1 " "$STATE/hosts" || die "no board '$1' in $NAME (boards: $(awk '{printf "%s ", $1}' "$STATE/hosts"))"
}

cmd_exec() {
  local b=${1:?usage: netemu.sh exec BOARD CMD...}
  shift
  board_ok "$b"
  echo $$ >"$CG/$b/cgroup.procs"
  # the board's own host name, as launch.sh gives its MPI ranks
  exec unshare --uts -- sh -c 'hostname "$1" && shift && exec "$@"' sh "$b" \
    ip netns exec "$NAME-$b" "$HERE/launch.sh" --inside "$b" --argv "$@"
}

# A board's view: "BOARD SRC DST" lines in $STATE/mounts, applied by
# launch.sh --inside. Paths are absolute and plain (they pass through sh).
cmd_mount() {
  [ $# -eq 3 ] || die "usage: netemu.sh mount BOARD SRC DST"
  board_ok "$1"
  local p
  for p in "$2" "$3"; do
    [[ $p =~ ^/[A-Za-z0-9._/+-]*$ ]] || die "mount: '$p' must be an absolute path of letters, digits and ._/+-"
    [ -e "$p" ] || die "mount: $p does not exist"
  done
  echo "$1 $2 $3" >>"$STATE/mounts"
}

cmd_stats() {
  [ -r "$STATE/switch.pid" ] || die "$NAME is not up; run: netemu.sh up SPEC"
  local pid before
  pid=$(cat "$STATE/switch.pid")
  before=$(stat -c %Y.%y "$STATE/switch.stats" 2>/dev/null || echo none)
  # the switch writes them at its next wake-up (tmp + rename); ask again if a wake-up is slow to come
  for _ in $(seq 100); do
    kill -USR1 "$pid" 2>/dev/null || die "the switch (pid $pid) is not running"
    sleep 0.02
    [ "$(stat -c %Y.%y "$STATE/switch.stats" 2>/dev/null || echo none)" != "$before" ] && break
  done
  cat "$STATE/switch.stats"
}

cmd_mpiexec() {
  [ -r "$STATE/hosts" ] || die "$NAME is not up; run: netemu.sh up SPEC"
  # the boards in spec order, unless the caller names the hosts
  local hosts=(-hosts "$(awk '{printf "%s%s", (NR > 1 ? "," : ""), $1}' "$STATE/hosts")") a
  for a in "$@"; do
    if [ "$a" = -hosts ] || [ "$a" = -f ]; then hosts=(); fi
  done
  export NETEMU_NAME=$NAME
  # nsenter, not `ip netns exec`: that remounts /sys, which would hide the
  # cgroups launch.sh puts the ranks in
  exec nsenter --net="/var/run/netns/$NAME-ctl" mpiexec -launcher rsh -launcher-exec "$HERE/launch.sh" -iface "$IFACE" \
    "${hosts[@]}" -genv UCX_TLS tcp,self -genv UCX_NET_DEVICES "$IFACE" -genv MPIR_CVAR_NOLOCAL 1 "$@"
}

cmd_status() {
  [ -r "$STATE/hosts" ] || { echo "netemu: $NAME is down"; return 0; }
  echo "netemu: $NAME up, switch pid $(cat "$STATE/switch.pid")"
  grep -v '^\s*#' "$STATE/spec" | grep -v '^\s*$'
  local pid
  pid=$(cat "$STATE/switch.pid")
  kill -0 "$pid" 2>/dev/null || echo "netemu: the switch is not running"
}

cmd_run() {
  local spec=${1:?usage: netemu.sh run SPEC -- CMD...}
  shift
  [ "${1:-}" = -- ] && shift
  [ $# -gt 0 ] || die "usage: netemu.sh run SPEC -- CMD..."
  cmd_up "$spec"
  local child=
  trap 'cmd_down' EXIT
  # bash runs a trap only after a foreground command ends, so CMD runs in
  # the background and the signal stops it at once
  trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; exit 130' INT TERM
  "$@" &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=
  return "$rc"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  up) cmd_up "$@" ;;
  down) cmd_down ;;
  exec) need_root exec; cmd_exec "$@" ;;
  mount) need_root mount; cmd_mount "$@" ;;
  stats) need_root stats; cmd_stats ;;
  mpiexec) need_root mpiexec; cmd_mpiexec "$@" ;;
  status) cmd_status ;;
  run) cmd_run "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# launch.sh - hydra's "rsh" for the emulated network: mpiexec (run by
# `netemu.sh mpiexec` in the control namespace) calls it as
#   launch.sh BOARD COMMAND...
# like `rsh BOARD COMMAND...`; it runs COMMAND (a hydra proxy, which then
# starts the MPI rank) inside BOARD's network namespace and CPU cgroup,
# with BOARD as its host name. As
# rsh/ssh do, the words of COMMAND are joined and run by a shell.
#
# Boards share one filesystem. When `netemu.sh mount` gave BOARD a view of
# its own, COMMAND runs in a private mount namespace (unshare -m) with those
# bind mounts made first: the second stage, `launch.sh --inside BOARD
# (--shell WORDS... | --argv CMD ARGS...)`, runs inside the board's network
# namespace, makes the mounts, then runs the command. Mounts made there are
# seen by that process tree only and vanish with it.
set -eu
NAME=${NETEMU_NAME:-netemu}
STATE=/run/shardpipe-$NAME
if [ "${1:-}" = --inside ]; then
  board=$2 mode=$3
  shift 3
  if grep -q "^$board " "$STATE/mounts" 2>/dev/null && [ -z "${NETEMU_PRIVATE:-}" ]; then
    # once more, in a mount namespace of our own
    NETEMU_PRIVATE=1 exec unshare -m --propagation private "$0" --inside "$board" "$mode" "$@"
  fi
  if [ -n "${NETEMU_PRIVATE:-}" ]; then
    unset NETEMU_PRIVATE
    while read -r b src dst; do
      [ "$b" = "$board" ] && mount --bind "$src" "$dst"
    done <"$STATE/mounts"
  fi
  if [ "$mode" = --shell ]; then exec sh -c "$*"; else exec "$@"; fi
fi
board=${1:?usage: launch.sh BOARD COMMAND...}
shift
grep -q "^$board " "$STATE/hosts" 2>/dev/null || {
  echo "netemu launch: '$board' is not a board of $NAME (see $STATE/hosts)" >&2
  exit 1
}
echo $$ >"/sys/fs/cgroup/cpu/shardpipe-$NAME/$board/cgroup.procs"
# its own UTS namespace: the board's host name is its name, as on a real
# network (MPI_Get_processor_name, the start-up host check and
# `profile --all` tell the boards apart by it)
exec unshare --uts -- sh -c 'hostname "$1" && shift && exec "$@"' sh "$board" \
  ip netns exec "$NAME-$board" "$0" --inside "$board" --shell "$@"

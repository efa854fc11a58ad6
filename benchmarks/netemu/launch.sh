#!/usr/bin/env bash
# launch.sh - hydra's "rsh" for the emulated network: mpiexec (run by
# `netemu.sh mpiexec` in the control namespace) calls it as
#   launch.sh BOARD COMMAND...
# like `rsh BOARD COMMAND...`; it runs COMMAND (a hydra proxy, which then
# starts the MPI rank) inside BOARD's network namespace and CPU cgroup,
# with BOARD as its host name. As
# rsh/ssh do, the words of COMMAND are joined and run by a shell.
set -eu
NAME=${NETEMU_NAME:-netemu}
board=${1:?usage: launch.sh BOARD COMMAND...}
shift
grep -q "^$board " "/run/shardpipe-$NAME/hosts" 2>/dev/null || {
  echo "netemu launch: '$board' is not a board of $NAME (see /run/shardpipe-$NAME/hosts)" >&2
  exit 1
}
echo $$ >"/sys/fs/cgroup/cpu/shardpipe-$NAME/$board/cgroup.procs"
# its own UTS namespace: the board's host name is its name, as on a real
# network (MPI_Get_processor_name, the start-up host check and
# `profile --all` tell the boards apart by it)
exec unshare --uts -- sh -c 'hostname "$1" && shift && exec ip netns exec "$@"' sh "$board" "$NAME-$board" sh -c "$*"

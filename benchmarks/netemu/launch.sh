#!/usr/bin/env bash
# launch.sh - hydra's "rsh" for the emulated network: mpiexec (run by
# `netemu.sh mpiexec` in the control namespace) calls it as
#   launch.sh BOARD COMMAND...
# like `rsh BOARD COMMAND...`; it runs COMMAND (a hydra proxy, which then
# starts the MPI rank) inside BOARD's network namespace and CPU cgroup. As
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
exec ip netns exec "$NAME-$board" sh -c "$*"

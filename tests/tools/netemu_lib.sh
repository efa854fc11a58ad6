# netemu_lib.sh - for the shell tests on the emulated network of
# benchmarks/netemu (sourced after lib.sh).
# netemu_can_run TOOL...: whether this machine can bring the network up and
# the named tools are there; if not, prints the SKIP line saying why and
# returns 1 (the test then exits 0).
netemu_can_run() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: needs root (network namespaces, TAP devices, cgroups) - run ctest as root to test on the emulated network"
        return 1
    fi
    local tool
    for tool in ip cc nsenter unshare "$@"; do
        if ! command -v "$tool" >/dev/null; then
            echo "SKIP: netemu needs '$tool', which is not installed"
            return 1
        fi
    done
    if [ ! -c /dev/net/tun ]; then
        echo "SKIP: netemu needs /dev/net/tun (TUN/TAP support in the kernel)"
        return 1
    fi
}

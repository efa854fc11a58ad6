#!/usr/bin/env python3
"""tcpstream.py - plain TCP throughput across an emulated link: what the
link gives a stream with no MPI on top and no process spinning on a core
(both ends sleep in the kernel), so a loaded machine lowers it less than an
MPI ping-pong, whose ranks poll.

    tcpstream.py recv PORT MIB          (on the receiving board; prints JSON)
    tcpstream.py send ADDRESS PORT MIB  (on the sending board)

The receiver times from the first byte to the last and prints
{"bytes": N, "seconds": S, "mbit_s": M} (payload bits per second)."""
import json
import socket
import sys
import time


def recv(port, mib):
    want = mib << 20
    with socket.create_server(("0.0.0.0", port)) as srv:
        conn, _ = srv.accept()
        with conn:
            buf = bytearray(4 << 20)
            view = memoryview(buf)
            got, t0 = 0, None
            while got < want:
                n = conn.recv_into(view)
                if n == 0:
                    break
                if t0 is None:
                    t0 = time.perf_counter()
                got += n
            dt = time.perf_counter() - t0
            conn.sendall(b"k")
    print(json.dumps({"bytes": got, "seconds": round(dt, 4), "mbit_s": round(got * 8 / dt / 1e6, 1)}))


def send(addr, port, mib):
    data = memoryview(bytes(4 << 20))
    for _ in range(100):  # the receiver may not listen yet
        try:
            conn = socket.create_connection((addr, port))
            break
        except OSError:
            time.sleep(0.05)
    else:
        sys.exit(f"tcpstream: cannot connect to {addr}:{port}")
    with conn:
        left = mib << 20
        while left > 0:
            n = min(left, len(data))
            conn.sendall(data[:n])
            left -= n
        conn.recv(1)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "recv":
        recv(int(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)

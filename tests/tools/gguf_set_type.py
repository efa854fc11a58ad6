#!/usr/bin/env python3
"""gguf_set_type.py IN OUT TENSOR TYPE: copy a GGUF file with one tensor's
ggml type number changed (data untouched), to test how shardpipe names a
type it cannot run. Reads only the header; GGUF v2/v3, little-endian."""
import struct
import sys

src, dst, name, new_type = sys.argv[1], sys.argv[2], sys.argv[3].encode(), int(sys.argv[4])
buf = bytearray(open(src, "rb").read())
pos = 0


def take(fmt):
    global pos
    v = struct.unpack_from("<" + fmt, buf, pos)
    pos += struct.calcsize("<" + fmt)
    return v[0]


def string():
    global pos
    n = take("Q")
    s = bytes(buf[pos:pos + n])
    pos += n
    return s


SIZES = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "B", 10: "Q", 11: "q", 12: "d"}


def value(t):
    if t == 8:
        string()
    elif t == 9:
        et, n = take("I"), take("Q")
        for _ in range(n):
            value(et)
    else:
        take(SIZES[t])


assert bytes(buf[:4]) == b"GGUF"
pos = 4
take("I")
n_tensors, n_kv = take("Q"), take("Q")
for _ in range(n_kv):
    string()
    value(take("I"))
for _ in range(n_tensors):
    tname = string()
    nd = take("I")
    pos += 8 * nd
    if tname == name:
        struct.pack_into("<I", buf, pos, new_type)
        open(dst, "wb").write(buf)
        sys.exit(0)
    pos += 4 + 8
sys.exit("no tensor %s in %s" % (name.decode(), src))

"""Drives a memcached with raw sockets: the text protocol and the binary protocol over TCP, the
text protocol over UDP (8-byte frame header). Checks every reply it gets (exits non-zero when
one is not what memcached answers) and prints what it saw, one JSON object per line."""
import json
import socket
import struct
import sys

host, port, uport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def out(**kw):
    print(json.dumps(kw), flush=True)


class Text:
    def __init__(self):
        self.s = socket.create_connection((host, port))
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            assert d, "connection closed"
            self.buf += d
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l.decode()

    def data(self, n):
        while len(self.buf) < n + 2:
            d = self.s.recv(65536)
            assert d, "connection closed"
            self.buf += d
        v, self.buf = self.buf[:n], self.buf[n + 2:]
        return v

    def cmd(self, c, expect):
        self.s.sendall(c.encode() + b"\r\n")
        r = self.line()
        assert r.startswith(expect), (c, r)
        return r

    def store(self, verb, key, value, expect="STORED", extra=""):
        self.s.sendall(f"{verb} {key} 0 0 {len(value)}{extra}\r\n".encode() + value + b"\r\n")
        r = self.line()
        assert r == expect, (verb, key, r)

    def get(self, keys, verb="get"):
        self.s.sendall(f"{verb} {' '.join(keys)}\r\n".encode())
        vals = {}
        while True:
            l = self.line()
            if l == "END":
                return vals
            parts = l.split(" ")
            vals[parts[1]] = self.data(int(parts[3]))


t = Text()
t.store("set", "k1", b"hello")
assert t.get(["k1"]) == {"k1": b"hello"}
t.cmd("incr k1 1", "CLIENT_ERROR")
big = b"x" * 200000
t.store("set", "big", big)
assert t.get(["big"])["big"] == big
t.store("set", "ubig", b"u" * 5000)
# A pipelined burst: 50 sets in one write, then their 50 replies.
t.s.sendall(b"".join(f"set p{i} 0 0 {len(str(i))}\r\n{i}\r\n".encode() for i in range(50)))
for i in range(50):
    assert t.line() == "STORED"
assert t.get(["p1", "p2", "nokey", "p3"]) == {"p1": b"1", "p2": b"2", "p3": b"3"}
t.cmd("delete p0", "DELETED")
t.cmd("delete p0", "NOT_FOUND")
t.cmd("touch p1 100", "TOUCHED")
t.store("set", "n", b"5")
t.cmd("incr n 3", "8")
t.cmd("decr n 2", "6")
t.store("add", "n", b"1", expect="NOT_STORED")
t.store("replace", "n", b"7")
t.store("append", "n", b"0")
t.store("prepend", "n", b"1")
t.s.sendall(b"gets n\r\n")
cas = int(t.line().split(" ")[4])
assert t.data(3) == b"170" and t.line() == "END"
t.s.sendall(f"cas n 0 0 1 {cas}\r\n9\r\n".encode())
assert t.line() == "STORED"
t.cmd("version", "VERSION")
t.cmd("verbosity 1", "OK")
t.s.sendall(b"stats\r\n")
nstats = 0
while t.line() != "END":
    nstats += 1
t.s.sendall(b"quit\r\n")
t.s.close()
out(proto="text", stats=nstats, cas=cas)

# The binary protocol.
b = socket.create_connection((host, port))
bbuf = b""


def breq(op, opaque, key=b"", extras=b"", value=b""):
    return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0,
                       len(extras) + len(key) + len(value), opaque, 0) + extras + key + value


def bresp():
    global bbuf
    while True:
        if len(bbuf) >= 24:
            total = struct.unpack(">I", bbuf[8:12])[0]
            if len(bbuf) >= 24 + total:
                m, bbuf = bbuf[:24 + total], bbuf[24 + total:]
                _, op, klen, elen, _, status, _, opaque, _ = struct.unpack(">BBHBBHIIQ", m[:24])
                return op, status, opaque, m[24 + elen:24 + elen + klen], m[24 + elen + klen:]
        d = b.recv(65536)
        assert d
        bbuf += d


b.sendall(breq(0x01, 1, b"bk", struct.pack(">II", 3, 0), b"value"))
assert bresp()[1] == 0
b.sendall(breq(0x0C, 2, b"bk"))
op, status, opaque, key, value = bresp()
assert (status, opaque, key, value) == (0, 2, b"bk", b"value"), (status, value)
b.sendall(breq(0x05, 3, b"bk", struct.pack(">QQI", 1, 0, 0)))
op, status, opaque, _, _ = bresp()
assert status == 6, status
# Quiet gets closed by a noop: only the hit is answered.
b.sendall(breq(0x0D, 4, b"bk") + breq(0x0D, 5, b"bmissing") + breq(0x0A, 6))
assert bresp()[2] == 4
assert bresp()[2] == 6
b.sendall(breq(0x0B, 7))
assert bresp()[1] == 0
b.sendall(breq(0x07, 8))
assert bresp()[2] == 8
b.close()
out(proto="binary")

# The text protocol over UDP: a value too large for one datagram.
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
u.sendto(struct.pack(">HHHH", 42, 0, 1, 0) + b"get ubig\r\n", (host, uport))
parts = {}
total = None
while total is None or len(parts) < total:
    d, _ = u.recvfrom(65536)
    rid, seq, total, _ = struct.unpack(">HHHH", d[:8])
    assert rid == 42
    parts[seq] = d[8:]
reply = b"".join(parts[i] for i in range(total))
assert reply.startswith(b"VALUE ubig 0 5000\r\n") and reply.endswith(b"END\r\n"), reply[:40]
u.sendto(struct.pack(">HHHH", 43, 0, 1, 0) + b"incr k1 1\r\n", (host, uport))
d, _ = u.recvfrom(65536)
assert d[8:].startswith(b"CLIENT_ERROR"), d
out(proto="udp", datagrams=total)

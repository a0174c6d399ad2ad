#!/usr/bin/env python3
"""Writes hostile pcap files for packetbeat-rs (see README.md next to this file).

Standard library only. Every byte is a function of --seed and --scale: no clock, no
os.urandom, no hash-ordered iteration. Classic libpcap files (magic 0xa1b2c3d4 written
little-endian, version 2.4, snaplen 65535, link type 1 = Ethernet); the bitflip copies keep
the global header of their original.

    python3 tests/adversarial/make_captures.py --out /tmp/adv [--scale 1] [--seed 1]

Addresses are all in 198.18.0.0/15 (RFC 2544 benchmark range). IPv4 header checksums
and TCP/UDP checksums are computed (UDP checksum 0 = "none" for fragments that never
complete). Timestamps start at 1700000000 s and advance a few microseconds per packet.
"""

import argparse
import random
import struct
import sys
import time
from pathlib import Path

# --------------------------------------------------------------------------------------
# pcap writing and packet building
# --------------------------------------------------------------------------------------

T0 = 1_700_000_000
SNAPLEN = 65535
M32 = 0xFFFFFFFF
NET = 0xC6120000  # 198.18.0.0
NET_SIZE = 1 << 17  # /15

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

MAC_C = bytes.fromhex("02000000c001")
MAC_S = bytes.fromhex("020000005e01")
ETH_C2S = MAC_S + MAC_C + b"\x08\x00"
ETH_S2C = MAC_C + MAC_S + b"\x08\x00"

_rec = struct.Struct("<IIII").pack
_ip_pack = struct.Struct("!BBHHHBBHII").pack
_tcp_pack = struct.Struct("!HHIIBBHHH").pack
_udp_pack = struct.Struct("!HHHH").pack


def addr(n):
    """The n-th address of 198.18.0.0/15 (wrapping)."""
    return NET + (n % NET_SIZE)


def server_addr(case, host=1):
    """198.19.<case>.<host>: one server subnet per case."""
    return NET + 0x10000 + ((case & 0xFF) << 8) + (host & 0xFF)


class PcapWriter:
    def __init__(self, path, linktype=1, header=None):
        self.path = Path(path)
        self.f = open(self.path, "wb", buffering=1 << 20)
        if header is None:
            header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, linktype)
        self.f.write(header)
        self.t = 0  # microseconds since T0
        self.n = 0

    def add(self, frame, gap=3):
        self.t += gap
        t = self.t
        n = len(frame)
        if n > SNAPLEN:
            raise ValueError("frame of %d bytes exceeds the snaplen" % n)
        w = self.f.write
        w(_rec(T0 + t // 1_000_000, t % 1_000_000, n, n))
        w(frame)
        self.n += 1

    def add_all(self, frames, gap=3):
        for fr in frames:
            self.add(fr, gap)

    def close(self):
        self.f.close()
        return self.n, self.path.stat().st_size


def ipv4(src, dst, proto, payload, ident, frag=0x4000, ttl=64):
    """IPv4 header (with a correct checksum) + payload. frag = flags<<13 | offset/8."""
    tot = 20 + len(payload)
    if tot > 0xFFFF:
        raise ValueError("IPv4 datagram too long")
    s = (0x4500 + tot + ident + frag + ((ttl << 8) | proto)
         + (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return _ip_pack(0x45, 0, tot, ident, frag, ttl, proto, ~s & 0xFFFF, src, dst) + payload


def _sum16(data):
    """Sum of the big-endian 16-bit words of data (zero-padded), modulo 0xFFFF.
    (65536 == 1 mod 65535, so the big integer's value mod 65535 is the word sum's.)"""
    if not data:
        return 0
    v = int.from_bytes(data, "big")
    if len(data) & 1:
        v <<= 8
    return v % 0xFFFF


def _fold_csum(s):
    # s: sum mod 0xFFFF of non-zero data (the pseudo header is never all zero):
    # the ones' complement sum is s, or 0xFFFF when s == 0.
    r = s % 0xFFFF
    return 0xFFFF - r if r else 0


def tcp_frame(eth, src, dst, sport, dport, seq, ack, flags, payload=b"", ident=0, win=65535):
    seq &= M32
    ack &= M32
    tl = 20 + len(payload)
    s = (sport + dport + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
         + (0x5000 | flags) + win
         + (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + 6 + tl)
    if payload:
        s += _sum16(payload)
    seg = _tcp_pack(sport, dport, seq, ack, 0x50, flags, win, _fold_csum(s), 0)
    return eth + ipv4(src, dst, 6, seg + payload, ident)


def udp_datagram(src, dst, sport, dport, payload, checksum=True):
    ul = 8 + len(payload)
    c = 0
    if checksum:
        s = (sport + dport + ul + ul + 17
             + (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + _sum16(payload))
        c = _fold_csum(s) or 0xFFFF
    return _udp_pack(sport, dport, ul & 0xFFFF, c) + payload


def udp_frame(eth, src, dst, sport, dport, payload, ident):
    return eth + ipv4(src, dst, 17, udp_datagram(src, dst, sport, dport, payload), ident)


class Conn:
    """One TCP connection; methods return Ethernet frames (bytes)."""

    def __init__(self, rng, cip, sip, cport, sport):
        self.cip, self.sip, self.cport, self.sport = cip, sip, cport, sport
        self.c_isn = rng.getrandbits(32)
        self.s_isn = rng.getrandbits(32)
        self.cnxt = (self.c_isn + 1) & M32
        self.snxt = (self.s_isn + 1) & M32
        self.cid = rng.getrandbits(16)
        self.sid = rng.getrandbits(16)

    def c(self, payload=b"", flags=PSH | ACK, seq=None, ack=None):
        """Client -> server. seq=None: the next sequence number (and advance)."""
        if seq is None:
            seq = self.cnxt
            self.cnxt = (seq + len(payload) + (1 if flags & (SYN | FIN) else 0)) & M32
        if ack is None:
            ack = self.snxt if flags & ACK else 0
        self.cid = (self.cid + 1) & 0xFFFF
        return tcp_frame(ETH_C2S, self.cip, self.sip, self.cport, self.sport,
                         seq, ack, flags, payload, self.cid)

    def s(self, payload=b"", flags=PSH | ACK, seq=None, ack=None):
        """Server -> client."""
        if seq is None:
            seq = self.snxt
            self.snxt = (seq + len(payload) + (1 if flags & (SYN | FIN) else 0)) & M32
        if ack is None:
            ack = self.cnxt if flags & ACK else 0
        self.sid = (self.sid + 1) & 0xFFFF
        return tcp_frame(ETH_S2C, self.sip, self.cip, self.sport, self.cport,
                         seq, ack, flags, payload, self.sid)

    def handshake(self):
        return [
            self.c(flags=SYN, seq=self.c_isn, ack=0),
            self.s(flags=SYN | ACK, seq=self.s_isn, ack=(self.c_isn + 1) & M32),
            self.c(flags=ACK, seq=self.cnxt, ack=self.snxt),
        ]

    def send_c(self, data, mss=1400, ack_every=0):
        out = []
        for i in range(0, len(data), mss):
            out.append(self.c(data[i:i + mss]))
            if ack_every and (i // mss) % ack_every == ack_every - 1:
                out.append(self.s(flags=ACK))
        return out

    def send_s(self, data, mss=1400, ack_every=0):
        out = []
        for i in range(0, len(data), mss):
            out.append(self.s(data[i:i + mss]))
            if ack_every and (i // mss) % ack_every == ack_every - 1:
                out.append(self.c(flags=ACK))
        return out

    def close(self):
        return [self.c(flags=FIN | ACK), self.s(flags=FIN | ACK), self.c(flags=ACK)]

    def reset_c(self):
        return [self.c(flags=RST | ACK)]


def case_rng(seed, name):
    return random.Random("%d/%s" % (seed, name))


def sc(n, scale, minimum=1):
    return max(minimum, int(round(n * scale)))


class Segmenter:
    """Cuts a stream given in pieces into fixed-size segments."""

    def __init__(self, mss):
        self.mss = mss
        self.buf = bytearray()

    def feed(self, piece):
        self.buf += piece
        out = []
        mss = self.mss
        if len(self.buf) >= mss:
            n = len(self.buf) // mss * mss
            b = bytes(self.buf[:n])
            del self.buf[:n]
            out = [b[i:i + mss] for i in range(0, n, mss)]
        return out

    def rest(self):
        b = bytes(self.buf)
        self.buf.clear()
        return [b] if b else []


# --------------------------------------------------------------------------------------
# 1. SYN flood
# --------------------------------------------------------------------------------------

def case_syn_flood(w, rng, scale):
    n = sc(1_000_000, scale)
    dst = addr(1)  # 198.18.0.1
    getrandbits = rng.getrandbits
    add = w.add
    # (src ip, src port) pairs are distinct: i -> (perm(i mod 2^17), port depending on
    # i // 2^17 and the ip); distinct while n < 2^17 * 64512.
    for i in range(n):
        blk, low = divmod(i, NET_SIZE)
        ipn = (low * 40503 + 7) % NET_SIZE  # odd multiplier: a permutation of the /15
        port = 1024 + (blk + ((ipn * 2654435761) >> 11)) % 64512
        src = NET + ipn
        add(tcp_frame(ETH_C2S, src, dst, port, 80, getrandbits(32), 0, SYN, b"", i & 0xFFFF),
            gap=2)


# --------------------------------------------------------------------------------------
# 2. Out of order: a hole that never fills
# --------------------------------------------------------------------------------------

OOO_SEGMENTS = 100
OOO_SKIP = 100


def _pipelined_http(n=400):
    parts = []
    for i in range(n):
        parts.append(("GET /ooo/%d HTTP/1.1\r\nHost: ooo.test\r\nUser-Agent: adv\r\n"
                      "Accept: */*\r\n\r\n" % i).encode())
    return b"".join(parts)


def case_out_of_order(w, rng, scale):
    n = sc(2000, scale)
    server = server_addr(2)
    text = _pipelined_http()
    text = text * (1 + (OOO_SEGMENTS * 8200) // len(text))
    garbage_blk = rng.randbytes(1 << 16)

    def conn_gen(i):
        # Most connections carry small segments (the held-segment count cap is what they
        # stress, 128-byte segments); 1 in 16 carries 1,400-byte segments and a few carry
        # 8,000-byte ones
        # (held-bytes cap). Payload is pipelined HTTP text, so a parser resynchronising
        # after a gap has work to do.
        if i % 250 == 1:
            seglen = 8000
        elif i % 16 == 0:
            seglen = 1400
        else:
            seglen = 128
        c = Conn(rng, addr(0x100 + i), server, 1024 + (i * 7) % 60000, 80)
        for f in c.handshake():
            yield f
        base = c.c_isn + 1 + OOO_SKIP
        for k in range(OOO_SEGMENTS):
            off = OOO_SKIP + k * seglen
            yield c.c(text[off:off + seglen], seq=base + k * seglen)
            if k % 10 == 9:
                # a conflicting copy of earlier held data: exactly one earlier segment, or
                # straddling two of them
                j = rng.randrange(0, k)
                shift = 0 if (k // 10) % 2 else seglen // 2
                g = rng.randrange(0, len(garbage_blk) - seglen)
                yield c.c(garbage_blk[g:g + seglen], seq=base + j * seglen + shift)
            if k % 25 == 24:
                # the server's duplicate ACK of the hole (does not acknowledge past it)
                yield c.s(flags=ACK, ack=c.c_isn + 1)

    active = [conn_gen(i) for i in range(n)]
    add = w.add
    while active:
        nxt = []
        for g in active:
            f = next(g, None)
            if f is not None:
                add(f)
                nxt.append(g)
        active = nxt


# --------------------------------------------------------------------------------------
# 3. Overlapping segments with conflicting bytes
# --------------------------------------------------------------------------------------

def case_overlap_conflict(w, rng, scale):
    n = sc(500, scale)
    server = server_addr(3)
    for i in range(n):
        c = Conn(rng, addr(0x300 + i), server, 20000 + i % 40000, 80)
        w.add_all(c.handshake())
        req = ("GET /overlap/%d HTTP/1.1\r\nHost: overlap.test\r\nUser-Agent: adv/%d\r\n"
               "Accept: */*\r\n\r\n" % (i, i)).encode()
        L = len(req)
        if i % 2:
            bad = bytes(rng.randrange(256) for _ in range(L))
        else:  # plausible but different HTTP of the same length
            alt = ("DELETE /evil/%d HTTP/1.1\r\nHost: evil.test\r\nX: " % i).encode()
            bad = (alt + b"z" * L)[:L - 4] + b"\r\n\r\n"
        s0 = c.cnxt
        mode = i % 6
        frames = []
        if mode == 0:  # garbage first, then the valid copy (a "retransmission")
            frames += [c.c(bad, seq=s0), c.c(req, seq=s0)]
        elif mode == 1:  # valid first, garbage retransmitted after
            frames += [c.c(req, seq=s0), c.c(bad, seq=s0)]
        elif mode == 2:  # valid head, then overlapping tails alternating garbage/valid
            a, b = L // 3, 2 * L // 3
            frames += [c.c(req[:b], seq=s0),
                       c.c(bad[a:], seq=s0 + a),
                       c.c(req[a:], seq=s0 + a),
                       c.c(bad[a // 2:b + 3], seq=s0 + a // 2)]
        elif mode == 3:  # tail first (held), garbage covering the hole and the tail, then head
            a = L // 2
            frames += [c.c(req[a:], seq=s0 + a),
                       c.c(bad[:a + 10], seq=s0),
                       c.c(req[:a], seq=s0)]
        elif mode == 4:  # 1-byte segments of both copies, interleaved
            for k in range(L):
                frames.append(c.c(req[k:k + 1] if k % 2 else bad[k:k + 1], seq=s0 + k))
                frames.append(c.c(bad[k:k + 1] if k % 2 else req[k:k + 1], seq=s0 + k))
        else:  # garbage held ahead of a hole, valid copy fills everything
            a = 10
            frames += [c.c(bad[a:], seq=s0 + a),
                       c.c(req[a:a + 20], seq=s0 + a),
                       c.c(req, seq=s0)]
        c.cnxt = (s0 + L) & M32
        frames.append(c.s(flags=ACK))
        body = ("hello %d " % i).encode() * (1 + i % 40)
        resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                % len(body)) + body
        if i % 3 == 0:  # the response also gets a conflicting overlap
            r0 = c.snxt
            frames.append(c.s(resp, seq=r0))
            frames.append(c.s(bytes(len(resp) - 5), seq=r0 + 5))
            c.snxt = (r0 + len(resp)) & M32
        else:
            frames += c.send_s(resp)
        frames.append(c.c(flags=ACK))
        frames += c.close()
        w.add_all(frames)


# --------------------------------------------------------------------------------------
# 4. IPv4 fragments
# --------------------------------------------------------------------------------------

def dns_name(name):
    out = b""
    for label in name.split("."):
        lb = label.encode()
        out += bytes([len(lb)]) + lb
    return out + b"\x00"


def dns_query(qid, name, qtype=1):
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + dns_name(name) + struct.pack("!HH", qtype, 1)


def frag_frame(src, dst, ident, offset, mf, data, proto=17):
    assert offset % 8 == 0 and offset <= 8191 * 8
    return ETH_C2S + ipv4(src, dst, proto, data, ident, frag=((0x2000 if mf else 0) | (offset >> 3)))


def case_fragments(w, rng, scale):
    dst = server_addr(4, 53)
    add = w.add
    # (a) first fragments only, never completed
    n = sc(200_000, scale)
    tail = rng.randbytes(16)
    for i in range(n):
        src = addr(0x1000 + i * 3)
        ident = (i * 7919) & 0xFFFF
        # UDP header claiming a 1,032-byte datagram + the start of a DNS header
        udp = _udp_pack(1024 + i % 60000, 53, 1032, 0) + struct.pack("!H", i & 0xFFFF) + tail[:14]
        add(frag_frame(src, dst, ident, 0, True, udp), gap=2)

    # (b) overlapping fragments with conflicting data
    n = sc(10_000, scale)
    for i in range(n):
        src = addr(0x8000 + i)
        ident = (i * 31 + 5) & 0xFFFF
        q = dns_query(i & 0xFFFF, "frag-overlap-%06d.example.test" % i)
        dg = udp_datagram(src, dst, 30000 + i % 30000, 53, q, checksum=False)
        D = len(dg)
        garb = bytes(rng.randrange(256) for _ in range(64))
        garb = (garb * (1 + D // 64))[:D + 64]
        mode = i % 5
        fr = []
        if mode == 0:  # middle fragment overlapping both neighbours with garbage
            fr = [(0, True, dg[:32]), (16, True, garb[16:48]), (32, False, dg[32:])]
        elif mode == 1:  # a complete garbage copy of the head first, then the valid set
            fr = [(0, True, garb[:48]), (0, True, dg[:24]), (24, False, dg[24:])]
        elif mode == 2:  # reversed order, conflicting middle
            fr = [(40, False, dg[40:]), (8, True, garb[8:48]), (0, True, dg[:40])]
        elif mode == 3:  # two different "last" fragments (conflicting total lengths)
            fr = [(0, True, dg[:40]), (40, False, dg[40:]), (16, False, garb[16:32]),
                  (40, False, garb[40:D + 24])]
        else:  # the same offset three times, three contents; then the rest
            fr = [(8, True, dg[8:24]), (8, True, garb[8:24]), (8, True, garb[9:25]),
                  (0, True, dg[:8]), (24, False, dg[24:])]
        for off, mf, data in fr:
            add(frag_frame(src, dst, ident, off, mf, data))

    # (c) offsets + lengths past 65,535
    big = rng.randbytes(1480)
    n = sc(500, scale)
    for i in range(n):
        src = addr(0x10000 + i)
        ident = (i * 13 + 1) & 0xFFFF
        head = _udp_pack(40000 + i % 20000, 53, 0xFFFF, 0) + big[8:]
        mode = i % 4
        if mode == 0:  # head + a last fragment at the largest offset (ends at 67,008)
            fr = [(0, True, head), (8191 * 8, False, big)]
        elif mode == 1:  # a middle fragment beyond the limit, then the head
            fr = [(8190 * 8, True, big[:1472]), (0, True, head)]
        elif mode == 2:  # total length exactly 65,536
            fr = [(0, True, head[:1480]), (8191 * 8, False, big[:8])]
        else:  # a last fragment at the limit with no head at all
            fr = [(8191 * 8, False, big)]
        for off, mf, data in fr:
            add(frag_frame(src, dst, ident, off, mf, data))
    # ... and complete, contiguous runs of 45 x 1,480 bytes (66,600 bytes: "ping of death")
    n = sc(20, scale)
    for i in range(n):
        src = addr(0x11000 + i)
        ident = (0x7000 + i) & 0xFFFF
        head = _udp_pack(50000 + i, 53, 0xFFFF, 0) + big[8:]
        for k in range(45):
            add(frag_frame(src, dst, ident, k * 1480, k != 44, head if k == 0 else big))


# --------------------------------------------------------------------------------------
# 5. HTTP: huge headers, endless chunks, absurd Content-Length, deep pipelining
# --------------------------------------------------------------------------------------

def case_http_huge(w, rng, scale):
    server = server_addr(5, 80)
    cli = [0x500]

    def new_conn():
        cli[0] += 1
        return Conn(rng, addr(cli[0]), server, 10000 + cli[0], 80)

    # (a) 5 MB of header block: one header line repeated; then one single 5 MB line
    size = sc(5 * 1024 * 1024, scale)
    line = b"X-Repeat: " + b"a" * 88 + b"\r\n"  # 100 bytes
    c = new_conn()
    w.add_all(c.handshake())
    req = b"GET /huge-headers HTTP/1.1\r\nHost: huge.test\r\n" + line * (size // len(line)) + b"\r\n"
    w.add_all(c.send_c(req, ack_every=20))
    w.add_all(c.send_s(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n"))
    w.add_all(c.close())
    c = new_conn()
    w.add_all(c.handshake())
    req = (b"GET /huge-line HTTP/1.1\r\nHost: huge.test\r\nX-Long: " + b"b" * size + b"\r\n\r\n")
    w.add_all(c.send_c(req, ack_every=20))
    w.add_all(c.close())

    # (b) a chunked response that never ends: 50 MB of chunks, no terminating chunk, no FIN
    total = sc(50 * 1024 * 1024, scale)
    blk = rng.randbytes(1 << 16)
    c = new_conn()
    w.add_all(c.handshake())
    w.add_all(c.send_c(b"GET /endless HTTP/1.1\r\nHost: huge.test\r\n\r\n"))
    seg = Segmenter(1400)
    sent = 0
    nseg = 0
    pieces = [b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n"]
    while sent < total:
        size = rng.choice((1, 7, 100, 1000, 4096, 8000, 16384, 65000))
        off = rng.randrange(0, len(blk) - size)
        pieces.append(b"%x\r\n" % size)
        pieces.append(blk[off:off + size])
        pieces.append(b"\r\n")
        sent += size
        for p in pieces:
            for s in seg.feed(p):
                w.add(c.s(s))
                nseg += 1
                if nseg % 16 == 0:
                    w.add(c.c(flags=ACK))
        pieces = []
    for s in seg.rest():
        w.add(c.s(s))

    # ... and chunk-size lines that cannot be numbers
    for bad in (b"ffffffffffffffff", b"10000000000000000", b"-1", b"0x10", b"+5",
                b"99999999999999999999999999", b"5;" + b"e" * 100000, b""):
        c = new_conn()
        w.add_all(c.handshake())
        w.add_all(c.send_c(b"GET /badchunk HTTP/1.1\r\nHost: huge.test\r\n\r\n"))
        w.add_all(c.send_s(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"3\r\nabc\r\n" + bad + b"\r\n" + blk[:3000] + b"\r\n0\r\n\r\n"))
        w.add_all(c.close())

    # (c) absurd Content-Length values, in requests and in responses
    values = [b"99999999999999999999", b"18446744073709551615", b"-1",
              b"18446744073709551616", b"9223372036854775807", b"9223372036854775808",
              b"4294967296", b"1e3", b"0x10", b" +5", b"5, 6", b"", b"\xff\xfe"]
    body = blk[:3000]
    for v in values:
        for rounds in range(sc(4, scale)):
            c = new_conn()
            w.add_all(c.handshake())
            w.add_all(c.send_c(b"POST /cl HTTP/1.1\r\nHost: huge.test\r\nContent-Length: " + v
                               + b"\r\n\r\n" + body[:2000]))
            w.add_all(c.send_s(b"HTTP/1.1 200 OK\r\nContent-Length: " + v + b"\r\n\r\n" + body))
            w.add_all(c.send_c(b"GET /after HTTP/1.1\r\nHost: huge.test\r\n\r\n"))
            w.add_all(c.send_s(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
            w.add_all(c.close())
            c = new_conn()
            w.add_all(c.handshake())
            w.add_all(c.send_c(b"GET /cl-resp HTTP/1.1\r\nHost: huge.test\r\n\r\n"))
            w.add_all(c.send_s(b"HTTP/1.1 200 OK\r\nContent-Length: " + v + b"\r\n"
                               b"Content-Length: 10\r\n\r\n" + body))
            w.add_all(c.close() if rounds % 2 else c.reset_c())

    # (d) pipelined requests on one connection, never answered, never closed
    n = sc(10_000, scale)
    c = new_conn()
    w.add_all(c.handshake())
    reqs = b"".join(b"GET /pipe/%d HTTP/1.1\r\nHost: huge.test\r\n\r\n" % i for i in range(n))
    w.add_all(c.send_c(reqs, ack_every=10))


# --------------------------------------------------------------------------------------
# 6. DNS bombs
# --------------------------------------------------------------------------------------

def dns_messages(rng):
    """(name, bytes) with id 0 and QR=0; a response copy sets QR and the id."""
    H = lambda qd, an=0, ns=0, ar=0, flags=0x0100: struct.pack("!HHHHHH", 0, flags, qd, an, ns, ar)
    QT = struct.pack("!HH", 1, 1)
    msgs = []
    msgs.append(("self_pointer", H(1) + b"\xc0\x0c" + QT))
    msgs.append(("mutual_pointers", H(1) + b"\xc0\x0e\xc0\x0c" + QT))
    msgs.append(("label_then_pointer_back", H(1) + b"\x03abc\xc0\x0c" + QT))
    msgs.append(("pointer_past_end", H(1) + b"\xc3\xff" + QT))
    msgs.append(("forward_pointer_chain", H(1) + b"\xc0\x0e\xc0\x10\xc0\x12\xc0\x0c" + QT))
    # label bomb: the question name is one 63-byte label; answer k's owner name is a
    # 63-byte label + a pointer to answer k-1's name (answer 0 points at the question), so
    # answer 125's name has 127 labels of 63 bytes (8 KB); then 100 more answers whose
    # names are a pointer to that one. All pointers point backwards.
    qname = bytes([63]) + b"q" * 63 + b"\x00"
    msg = bytearray(H(1, 226, flags=0x0100))
    prev = len(msg)
    msg += qname + QT
    for k in range(126):
        here = len(msg)
        msg += bytes([63]) + bytes([0x61 + k % 26]) * 63 + struct.pack("!H", 0xC000 | prev)
        msg += struct.pack("!HHIH", 1, 1, 60, 4) + bytes([198, 18, k, 1])
        prev = here
    top = struct.pack("!H", 0xC000 | prev)
    for k in range(100):
        msg += top + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([198, 19, k, 1])
    msgs.append(("label_bomb", bytes(msg)))
    # 200 inline labels of 63 bytes (12.8 KB name, no pointers)
    msgs.append(("inline_long_name", H(1) + (bytes([63]) + b"x" * 63) * 200 + b"\x00" + QT))
    # rdlength past the end
    q = dns_name("rdlen.example.test") + QT
    msgs.append(("rdlength_past_end", H(1, 1) + q + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 0xFFFF)
                 + b"\xc6\x12\x00\x01"))
    msgs.append(("txt_rdlength_past_end", H(1, 1) + q + b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, 0xFFF0)
                 + b"\xff" + b"t" * 10))
    msgs.append(("opt_rdlength_past_end", H(1, 0, 0, 1) + q + b"\x00" + struct.pack("!HHIH", 41, 4096, 0, 0xFFFF)
                 + b"\x00\x0a\xff\xff"))
    # counts of 65535 with no records
    msgs.append(("counts_65535", H(65535, 65535, 65535, 65535)))
    msgs.append(("qdcount_65535_one_question", H(65535) + q))
    msgs.append(("ancount_65535_one_answer", H(1, 65535) + q + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4)
                 + b"\xc6\x12\x00\x02"))
    # reserved label types (0b01, 0b10)
    msgs.append(("reserved_label_types", H(1) + b"\x41abc\x81def\x00" + QT))
    msgs.append(("truncated_header", H(1)[:5]))
    msgs.append(("empty", b""))
    msgs.append(("random_after_header", H(3, 3, 3, 3) + rng.randbytes(200)))
    return msgs


def _with_id(m, qid, response):
    if len(m) < 4:
        return m
    flags = struct.unpack("!H", m[2:4])[0]
    if response:
        flags |= 0x8080
    return struct.pack("!HH", qid, flags) + m[4:]


def case_dns_bombs(w, rng, scale):
    server = server_addr(6, 53)
    msgs = dns_messages(rng)
    rounds = sc(50, scale)
    k = 0
    for r in range(rounds):
        for name, m in msgs:
            k += 1
            qid = (r * 977 + k) & 0xFFFF
            cip = addr(0x600 + k)
            cport = 1024 + (k * 11) % 60000
            w.add(udp_frame(ETH_C2S, cip, server, cport, 53, _with_id(m, qid, False), k & 0xFFFF))
            w.add(udp_frame(ETH_S2C, server, cip, 53, cport, _with_id(m, qid, True), (k + 1) & 0xFFFF))
    # TCP: correct prefix, 65535, 0
    rounds = sc(10, scale)
    for r in range(rounds):
        for name, m in msgs:
            for prefix in (None, 0xFFFF, 0):
                k += 1
                qid = (r * 977 + k) & 0xFFFF
                c = Conn(rng, addr(0x600 + k), server, 1024 + (k * 11) % 60000, 53)
                w.add_all(c.handshake())
                q = _with_id(m, qid, False)
                a = _with_id(m, qid, True)
                lq = len(q) if prefix is None else prefix
                la = len(a) if prefix is None else prefix
                w.add_all(c.send_c(struct.pack("!H", lq) + q))
                w.add_all(c.send_s(struct.pack("!H", la) + a))
                w.add_all(c.close() if k % 2 else c.reset_c())
    # a few connections whose 65535-byte prefix is then followed by more than 65,535 bytes
    filler = rng.randbytes(70000)
    for i in range(sc(4, scale)):
        k += 1
        c = Conn(rng, addr(0x600 + k), server, 1024 + (k * 11) % 60000, 53)
        w.add_all(c.handshake())
        w.add_all(c.send_c(struct.pack("!H", 0xFFFF) + msgs[i % len(msgs)][1] + filler, ack_every=10))
        w.add_all(c.send_s(struct.pack("!H", 0xFFFF) + filler, ack_every=10))
        w.add_all(c.close())


# --------------------------------------------------------------------------------------
# 7. TLS absurdities
# --------------------------------------------------------------------------------------

def tls_record(ctype, body, length=None, version=0x0303):
    return struct.pack("!BHH", ctype, version, len(body) if length is None else length) + body


def tls_hs(mtype, body, length=None):
    return bytes([mtype]) + (len(body) if length is None else length).to_bytes(3, "big") + body


def _ext(etype, data, length=None):
    return struct.pack("!HH", etype, len(data) if length is None else length) + data


def client_hello(rng, exts=None, ext_len=None, cipher_len=None, sid_len=None):
    host = b"adversarial.test"
    if exts is None:
        sni = struct.pack("!H", len(host) + 3) + b"\x00" + struct.pack("!H", len(host)) + host
        exts = (_ext(0, sni) + _ext(0x2B, b"\x04\x03\x04\x03\x03")
                + _ext(0x10, b"\x00\x03\x02h2"))
    ciphers = b"\x13\x01\x13\x02\xc0\x2f\xc0\x30"
    body = (b"\x03\x03" + rng.randbytes(32)
            + (b"\x00" if sid_len is None else bytes([sid_len]))
            + struct.pack("!H", len(ciphers) if cipher_len is None else cipher_len) + ciphers
            + b"\x01\x00"
            + struct.pack("!H", len(exts) if ext_len is None else ext_len) + exts)
    return tls_hs(1, body)


def server_hello(rng):
    return tls_hs(2, b"\x03\x03" + rng.randbytes(32) + b"\x00" + b"\xc0\x2f" + b"\x00" + b"\x00\x00")


def case_tls_absurd(w, rng, scale):
    server = server_addr(7, 443)
    cli = [0x700]

    def new_conn():
        cli[0] += 1
        return Conn(rng, addr(cli[0]), server, 1024 + (cli[0] * 13) % 60000, 443)

    host = b"adversarial.test"
    sni_ok = struct.pack("!H", len(host) + 3) + b"\x00" + struct.pack("!H", len(host)) + host

    def variants():
        big = rng.randbytes(65535)
        ch = client_hello(rng)
        sh = tls_record(22, server_hello(rng))
        v = []
        # records with length 0xFFFF
        v.append(("record_ffff_short", tls_record(22, big[:100], 0xFFFF, 0x0301), None))
        v.append(("record_ffff_full", tls_record(23, big, 0xFFFF), tls_record(21, big, 0xFFFF)))
        v.append(("unknown_type_ffff_then_hello", tls_record(0xFF, big[:200], 0xFFFF) + tls_record(22, ch), sh))
        v.append(("empty_handshake_records", tls_record(22, b"") * 1000 + tls_record(22, ch),
                  tls_record(22, b"") * 1000 + sh))
        # handshake messages with 24-bit length 0xFFFFFF
        v.append(("hs_len_ffffff", tls_record(22, tls_hs(1, big[:50], 0xFFFFFF)),
                  tls_record(22, tls_hs(2, big[:50], 0xFFFFFF))))
        v.append(("hs_len_ffffff_after_hello", tls_record(22, ch + tls_hs(1, b"", 0xFFFFFF)),
                  tls_record(22, server_hello(rng) + tls_hs(11, big[:10], 0xFFFFFF))))
        # ClientHello with lengths past the end
        v.append(("ext_total_len_ffff", tls_record(22, client_hello(rng, ext_len=0xFFFF)), sh))
        v.append(("sni_ext_len_fff0", tls_record(22, client_hello(rng, exts=_ext(0, sni_ok, 0xFFF0))), sh))
        v.append(("sni_list_len_ffff", tls_record(22, client_hello(
            rng, exts=_ext(0, struct.pack("!H", 0xFFFF) + sni_ok[2:]))), sh))
        v.append(("sni_name_len_ffff", tls_record(22, client_hello(
            rng, exts=_ext(0, struct.pack("!HBH", len(host) + 3, 0, 0xFFFF) + host))), sh))
        v.append(("alpn_lengths", tls_record(22, client_hello(
            rng, exts=_ext(0x10, b"\xff\xff\xffh2x"))), sh))
        v.append(("supported_versions_odd", tls_record(22, client_hello(
            rng, exts=_ext(0x2B, b"\xff\x03\x04"))), sh))
        v.append(("cipher_len_ffff", tls_record(22, client_hello(rng, cipher_len=0xFFFF)), sh))
        v.append(("session_id_len_ff", tls_record(22, client_hello(rng, sid_len=0xFF)), sh))
        v.append(("ten_thousand_extensions", tls_record(22, client_hello(
            rng, exts=_ext(0xFAFA, b"") * 10000)), sh))
        v.append(("hello_len_mismatch", tls_record(22, tls_hs(1, ch[4:], len(ch) + 100)), sh))
        # certificate list longer than the record
        cert = b"\x30\x82\x01\x00" + big[:256]
        v.append(("cert_list_ffffff", tls_record(22, ch),
                  tls_record(22, server_hello(rng) + tls_hs(11, b"\xff\xff\xff" + b"\x00\x01\x04" + cert))))
        v.append(("cert_list_plus_1000", tls_record(22, ch),
                  tls_record(22, server_hello(rng) + tls_hs(
                      11, (len(cert) + 3 + 1000).to_bytes(3, "big") + (len(cert)).to_bytes(3, "big") + cert))))
        v.append(("cert_len_ffffff", tls_record(22, ch),
                  tls_record(22, server_hello(rng) + tls_hs(
                      11, (len(cert) + 3).to_bytes(3, "big") + b"\xff\xff\xff" + cert))))
        v.append(("five_thousand_empty_certs", tls_record(22, ch),
                  tls_record(22, server_hello(rng) + tls_hs(
                      11, (3 * 5000).to_bytes(3, "big") + b"\x00\x00\x00" * 5000))))
        der_bad = b"\x30\x84\xff\xff\xff\xff\x30\x84\x7f\xff\xff\xff" + big[:100]
        v.append(("cert_der_lengths", tls_record(22, ch),
                  tls_record(22, server_hello(rng) + tls_hs(
                      11, (len(der_bad) + 3).to_bytes(3, "big") + len(der_bad).to_bytes(3, "big") + der_bad))))
        return v

    rounds = sc(20, scale)
    for r in range(rounds):
        for name, cmsg, smsg in variants():
            c = new_conn()
            w.add_all(c.handshake())
            w.add_all(c.send_c(cmsg, ack_every=10))
            if smsg is not None:
                w.add_all(c.send_s(smsg, ack_every=10))
            w.add_all(c.close() if r % 2 == 0 else c.reset_c())

    # a 0xFFFFFF handshake message actually continued over 100 records of 16 KB
    blk = rng.randbytes(16384)
    for i in range(sc(2, scale)):
        c = new_conn()
        w.add_all(c.handshake())
        stream = tls_record(22, tls_hs(1, blk[:1000], 0xFFFFFF)) + tls_record(22, blk) * 100
        w.add_all(c.send_c(stream, ack_every=10))
        w.add_all(c.close())

    # 100,000 tiny records on one connection: a ClientHello one byte per record, then
    # 1-byte application data / heartbeat / alert records
    n = sc(100_000, scale)
    c = new_conn()
    w.add_all(c.handshake())
    ch = client_hello(rng)
    parts = [tls_record(22, ch[i:i + 1]) for i in range(len(ch))]
    kinds = (b"\x17\x03\x03\x00\x01", b"\x18\x03\x03\x00\x01", b"\x15\x03\x03\x00\x01", b"\x17\x03\x03\x00\x00")
    for i in range(n - len(parts)):
        kd = kinds[i % 4]
        parts.append(kd + (b"" if kd[4] == 0 else bytes([i & 0xFF])))
    w.add_all(c.send_c(b"".join(parts), ack_every=10))
    w.add_all(c.send_s(tls_record(22, server_hello(rng))))
    # the server answers with as many tiny records
    w.add_all(c.send_s(b"".join(kinds[i % 3] + bytes([i & 0xFF]) for i in range(n // 2)), ack_every=10))
    w.add_all(c.close())


# --------------------------------------------------------------------------------------
# 8. Binary protocols: absurd lengths
# --------------------------------------------------------------------------------------

def binary_variants(rng):
    """port -> list of (client message, server reply)."""
    p = struct.pack
    junk = rng.randbytes(600)
    v = {}
    v[6379] = [
        (b"*2\r\n$3\r\nGET\r\n$999999999999\r\nfoo\r\n", b"$999999999999\r\nabc\r\n"),
        (b"*999999999999\r\n$3\r\nGET\r\n", b"*999999999999\r\n$1\r\na\r\n"),
        (b"*2\r\n$-5\r\nGET\r\n$99999999999999999999999\r\n", b"$-99999999999999999999\r\n"),
        (b"*-1\r\n*0\r\n$0\r\n\r\n" + b"*1\r\n$18446744073709551616\r\n" + junk, b":99999999999999999999999\r\n"),
    ]
    v[3306] = [
        (b"\xff\xff\xff\x00\x03select 1" + junk, b"\xff\xff\xff\x01\xff\x10\x04#28000denied" + junk),
        (b"\x00\x00\x00\x00" * 50 + b"\x05\x00\x00\x00\x03sel", b"\x00\x00\x00\x01"),
        (b"\x21\x00\x00\x00\x03select 1 from dual where 1=1" + b"\xff\xff\xff\x01" + junk,
         b"\x01\x00\x00\x01\xfe" + b"\xff\xff\xff\x02" + junk),
        # a result set header announcing 2^64-1 columns
        (b"\x09\x00\x00\x00\x03select 1", b"\x09\x00\x00\x01\xfe\xff\xff\xff\xff\xff\xff\xff\xff" + junk[:40]),
    ]
    v[5432] = [
        (b"Q" + p("!i", 0x7FFFFFFF) + b"select 1\x00" + junk, b"T" + p("!i", 0x7FFFFFFF) + junk[:50]),
        (b"Q" + p("!i", 0) + b"Q" + p("!i", 0), b"E" + p("!i", 0) + b"Z" + p("!i", 0)),
        (p("!i", 0x7FFFFFFF) + p("!i", 196608) + b"user\x00x\x00\x00", b"R" + p("!i", 0x7FFFFFFF) + junk[:20]),
        (b"Q" + p("!i", -1) + b"select 1\x00", b"D" + p("!ihi", 0x7FFFFFFF, 0x7FFF, 0x7FFFFFFF) + junk[:30]),
        (b"P" + p("!i", 3) + b"B" + p("!i", 4), b"T" + p("!ih", 26, 0x7FFF) + junk[:22]),
    ]
    v[11211] = [
        (p("!BBHBBHIIQ", 0x80, 0x00, 0xFFFF, 0xFF, 0, 0, 0xFFFFFFFF, 1, 0) + b"key" + junk[:100],
         p("!BBHBBHIIQ", 0x81, 0x00, 0xFFFF, 0xFF, 0, 0, 0xFFFFFFFF, 1, 0) + junk[:100]),
        (p("!BBHBBHIIQ", 0x80, 0x01, 3, 8, 0, 0, 2, 2, 0) + b"k",  # body shorter than key+extras
         p("!BBHBBHIIQ", 0x81, 0x01, 0, 0, 0, 0, 0x7FFFFFFF, 2, 0)),
        (b"set k 0 0 4294967295\r\n" + junk[:100] + b"\r\n", b"VALUE k 0 99999999999999999999\r\n" + junk[:50]),
        (b"get " + b"k" * 70000 + b"\r\n", b"VALUE k 0 -1\r\nEND\r\n"),
    ]
    v[27017] = [
        (p("<iiii", 0x7FFFFFFF, 1, 0, 2013) + b"\x00\x00\x00\x00\x00" + p("<i", 0x7FFFFFFF) + junk[:100],
         p("<iiii", 0x7FFFFFFF, 2, 1, 1) + junk[:100]),
        (p("<iiii", -1, 3, 0, 2004) + junk[:50], p("<iiii", -2147483648, 4, 3, 1) + junk[:50]),
        (p("<iiii", 0, 5, 0, 2013) + p("<iiii", 4, 6, 0, 2004), p("<iiii", 16, 7, 5, 1)),
        # a well-formed header around a BSON document claiming 2 GB
        (p("<iiii", 16 + 4 + 5 + 20, 8, 0, 2013) + p("<I", 0) + b"\x00" + p("<i", 0x7FFFFFFF) + junk[:16],
         p("<iiii", 16 + 20 + 4 + 8, 9, 8, 1) + p("<iqii", 0, 0, 0, 1) + p("<i", -5) + junk[:4]),
    ]
    v[9042] = [
        (p("!BBhBI", 0x04, 0, 1, 0x07, 0xFFFFFFFF) + junk[:100],
         p("!BBhBI", 0x84, 0, 1, 0x08, 0xFFFFFFFF) + junk[:100]),
        (p("!BBhBI", 0x04, 0, 2, 0x07, 0x7FFFFFFF) + p("!i", 0x7FFFFFFF) + b"select",
         p("!BBhBI", 0x84, 0, 2, 0x00, 0x7FFFFFFF) + junk[:40]),
        # compressed flag on, absurd inner lengths
        (p("!BBhBI", 0x04, 0x01, 3, 0x07, 8) + p("!ii", 0x7FFFFFFF, -1),
         p("!BBhBI", 0x84, 0x01, 3, 0x08, 4) + b"\xff\xff\xff\xff"),
        (p("!BBhBI", 0x04, 0, 4, 0x05, 0) * 100, p("!BBhBI", 0x84, 0, 4, 0x06, 4) + p("!i", 0x7FFFFFFF)),
    ]
    amqp_hdr = b"AMQP\x00\x00\x09\x01"
    v[5672] = [
        (amqp_hdr + p("!BHI", 1, 0, 0xFFFFFFFF) + p("!HH", 10, 11) + junk[:100],
         p("!BHI", 1, 0, 0xFFFFFFFF) + p("!HH", 10, 10) + junk[:100]),
        (amqp_hdr + p("!BHI", 1, 0, 0x7FFFFFFF) + junk[:50] + b"\xce",
         p("!BHI", 1, 0, 4 + 2 + 4) + p("!HHBB", 10, 10, 0, 9) + p("!I", 0xFFFFFFFF) + b"\xce"),
        # connection.start with a server-properties table of 4 GB
        (amqp_hdr, p("!BHI", 1, 0, 14) + p("!HHBBI", 10, 10, 0, 9, 0xFFFFFFFF) + b"\x00\x00" + b"\xce"),
        (amqp_hdr + p("!BHI", 2, 1, 14) + p("!HHQ", 60, 0, 0xFFFFFFFFFFFFFFFF) + b"\xff\xff\xce",
         p("!BHI", 3, 1, 0xFFFFFFFF) + junk[:30]),
    ]
    v[9090] = [
        (p("!Ii", 0x80010001, 0x7FFFFFFF) + b"ping" + junk[:40],
         p("!Ii", 0x80010002, 4) + b"ping" + p("!i", 0) + p("!Bhi", 11, 0, 0x7FFFFFFF) + junk[:40]),
        (p("!Ii", 0x80010001, 4) + b"ping" + p("!i", 1) + p("!Bhi", 11, 1, -1) + b"\x00",
         p("!Ii", 0x80010002, 4) + b"ping" + p("!i", 1) + p("!BhBBi", 13, 0, 11, 11, 0x7FFFFFFF)),
        # framed transport with an absurd frame length
        (p("!I", 0x7FFFFFFF) + p("!Ii", 0x80010001, 4) + b"ping" + p("!i", 2) + b"\x00",
         p("!I", 0xFFFFFFFF) + junk[:40]),
        # list of 2^31-1 elements; non-strict message with a huge name length
        (p("!Ii", 0x80010001, 4) + b"ping" + p("!i", 3) + p("!BhBi", 15, 1, 8, 0x7FFFFFFF) + junk[:60],
         p("!i", 0x7FFFFFF0) + b"ping" + junk[:20]),
    ]

    def rpc_call(xid, marker, fh_len=None):
        body = p("!IIIIIIIIII", xid, 0, 2, 100003, 3, 1, 0, 0, 0, 0)
        body += p("!I", 32 if fh_len is None else fh_len) + junk[:32]
        return p("!I", marker) + body

    v[2049] = [
        (rpc_call(1, 0xFFFFFFFF), p("!IIIIIII", 0xFFFFFFFF, 1, 1, 0, 0, 0, 0) + junk[:60]),
        (rpc_call(2, 0x7FFFFFFF) + junk[:200], p("!IIIIIII", 0x7FFFFFFF, 2, 1, 0, 0, 0, 0)),
        (rpc_call(3, 0x80000000) * 20, p("!I", 0x80000000) * 20),
        (rpc_call(4, 0x80000000 | 52, fh_len=0x7FFFFFFF),
         p("!IIIIIIII", 0x80000000 | 28, 4, 1, 0, 0, 0, 0, 0xFFFFFFFF)),
    ]
    return v


def case_binary_lengths(w, rng, scale):
    v = binary_variants(rng)
    n = sc(100, scale)
    k = 0
    for port in (6379, 3306, 5432, 11211, 27017, 9042, 5672, 9090, 2049):
        server = server_addr(8, port & 0xFF)
        for i in range(n):
            k += 1
            cmsg, smsg = v[port][i % len(v[port])]
            c = Conn(rng, addr(0x800 + k), server, 1024 + (k * 17) % 60000, port)
            w.add_all(c.handshake())
            w.add_all(c.send_c(cmsg, ack_every=8))
            w.add_all([c.s(flags=ACK)])
            w.add_all(c.send_s(smsg, ack_every=8))
            if i % 5 == 4:  # and then more garbage after the bad message
                w.add_all(c.send_c(rng.randbytes(rng.randrange(1, 3000))))
            end = i % 3
            if end == 0:
                w.add_all(c.close())
            elif end == 1:
                w.add_all(c.reset_c())
            # end == 2: left open


# --------------------------------------------------------------------------------------
# 9. Random bytes on every analyzer port
# --------------------------------------------------------------------------------------

TCP_PORTS = (80, 443, 53, 6379, 3306, 5432, 11211, 27017, 9042, 5672, 9090, 2049, 5060)
UDP_PORTS = (53, 11211, 5060, 2049)


def case_random_ports(w, rng, scale):
    n = sc(200, scale)
    k = 0
    randbytes = rng.randbytes
    randrange = rng.randrange
    for port in TCP_PORTS:
        server = server_addr(9, port & 0xFF)
        for i in range(n):
            k += 1
            c = Conn(rng, addr(0x900 + k), server, 1024 + (k * 19) % 60000, port)
            frames = c.handshake()
            for s in range(20):
                data = randbytes(randrange(1, 1461))
                frames.append(c.c(data) if randrange(2) else c.s(data))
            end = randrange(3)
            if end == 0:
                frames += c.close()
            elif end == 1:
                frames += c.reset_c()
            w.add_all(frames)
    for port in UDP_PORTS:
        server = server_addr(9, 0x80 | (port & 0x7F))
        for i in range(n):
            k += 1
            cip = addr(0x900 + k)
            cport = 1024 + (k * 19) % 60000
            for s in range(20):
                data = randbytes(randrange(1, 1461))
                if randrange(2):
                    w.add(udp_frame(ETH_C2S, cip, server, cport, port, data, (k + s) & 0xFFFF))
                else:
                    w.add(udp_frame(ETH_S2C, server, cip, port, cport, data, (k + s) & 0xFFFF))


# --------------------------------------------------------------------------------------
# 10. Bit flips in the shared captures
# --------------------------------------------------------------------------------------

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",   # microseconds
    b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">",   # nanoseconds
}


def bitflip_file(src, dst, rng, every=200):
    """Copies a classic pcap file with random bit flips inside packet data only
    (about one per `every` bytes); the global and record headers are kept.
    Returns (packets, bytes) or None when src is not a classic pcap file."""
    data = src.read_bytes()
    if len(data) < 24 or data[:4] not in PCAP_MAGICS:
        return None
    endian = PCAP_MAGICS[data[:4]]
    rec = struct.Struct(endian + "IIII")
    out = bytearray(data)
    pos = 24
    n = 0
    nxt = int(rng.expovariate(1.0 / every))  # position (in packet-data bytes) of the next flip
    seen = 0
    while pos + 16 <= len(data):
        caplen = rec.unpack_from(data, pos)[2]
        start = pos + 16
        end = min(start + caplen, len(data))
        L = end - start
        while nxt < seen + L:
            out[start + nxt - seen] ^= 1 << rng.randrange(8)
            nxt += 1 + int(rng.expovariate(1.0 / every))
        seen += L
        n += 1
        pos = end
    dst.write_bytes(bytes(out))
    return n, len(out)


def case_bitflips(outdir, shared, seed, scale):
    results = []
    bdir = outdir / "bitflips"
    bdir.mkdir(parents=True, exist_ok=True)
    if shared is None or not shared.is_dir():
        print("# bitflips: shared capture directory %s not found, skipped" % shared, file=sys.stderr)
        return results
    files = sorted(p for p in shared.rglob("*.pcap") if p.is_file())
    copies = max(1, int(scale))
    for p in files:
        rel = p.relative_to(shared)
        flat = "__".join(rel.parts)
        for copy in range(copies):
            name = "bitflip_" + flat if copy == 0 else "bitflip%d_%s" % (copy, flat)
            rng = case_rng(seed, "bitflip/%d/%s" % (copy, rel.as_posix()))
            r = bitflip_file(p, bdir / name, rng)
            if r is None:
                print("# bitflips: %s is not a classic pcap file (pcapng?), skipped" % rel, file=sys.stderr)
                break
            results.append(("bitflips/" + name, r[0], r[1]))
    return results


# --------------------------------------------------------------------------------------

CASES = [
    ("syn_flood", case_syn_flood),
    ("out_of_order", case_out_of_order),
    ("overlap_conflict", case_overlap_conflict),
    ("fragments", case_fragments),
    ("http_huge", case_http_huge),
    ("dns_bombs", case_dns_bombs),
    ("tls_absurd", case_tls_absurd),
    ("binary_lengths", case_binary_lengths),
    ("random_ports", case_random_ports),
]


def main():
    here = Path(__file__).resolve().parent
    repo = here.parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=here / "out", help="output directory")
    ap.add_argument("--scale", type=float, default=1.0, help="size multiplier (default 1)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shared", type=Path, default=repo.parent / "shared" / "pcaps",
                    help="captures to bit-flip (default ../shared/pcaps from the repo root)")
    ap.add_argument("--only", default="",
                    help="comma-separated case names to write (default all; 'bitflips' included)")
    args = ap.parse_args()
    if args.scale <= 0:
        ap.error("--scale must be positive")
    only = [s for s in args.only.split(",") if s]
    names = [n for n, _ in CASES] + ["bitflips"]
    for s in only:
        if s not in names:
            ap.error("unknown case %r (known: %s)" % (s, ", ".join(names)))
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    total = 0
    for name, fn in CASES:
        if only and name not in only:
            continue
        w = PcapWriter(args.out / (name + ".pcap"))
        fn(w, case_rng(args.seed, name), args.scale)
        n, size = w.close()
        total += size
        print("%s.pcap %d %d" % (name, n, size), flush=True)
    if not only or "bitflips" in only:
        for name, n, size in case_bitflips(args.out, args.shared, args.seed, args.scale):
            total += size
            print("%s %d %d" % (name, n, size), flush=True)
    print("# total %d bytes in %.1f s" % (total, time.monotonic() - t0), file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Seeds each fuzz target's corpus (fuzz/corpus/<target>/) from packet captures.

    python3 fuzz/seed_corpus.py [PCAP_DIR]     # default ../shared/pcaps from the repo root

Every capture is read with the standard library only (classic libpcap, the format of
Packetbeat's test captures) and turned into inputs in each target's own format (see the doc
comment of each target in fuzz_targets/): the application bytes of each connection, one
direction at a time and both together, for the parser targets; the frames themselves for
flows_packet; the TCP segments as segment records for tcp_reassembly; the IPv4 fragments as
fragment records for ipv4_defrag. Seeds are named seed-<capture>-<n>, so running this again
rewrites them rather than adding copies. libFuzzer starts from these and mutates from there,
which reaches far deeper into the parsers than starting from nothing.
"""
import os
import struct
import sys

MAX_SEED = 16 * 1024

# Capture file name prefix -> (target, leading option bytes, how payloads are cut).
#   "stream": one seed per connection direction (and one with both directions in order);
#   "datagram": one seed per UDP datagram.
TARGETS = [
    ("amqp", "amqp_parser", b"\x00", "stream"),
    ("cassandra", "cassandra_parser", b"\x00", "stream"),
    ("dhcp", "dhcpv4_parser", b"", "datagram"),
    ("dns", "dns_parser", b"", "datagram"),
    ("http2-16-ssl", "tls_parser", b"\x00", "stream"),
    ("tls", "tls_parser", b"\x00", "stream"),
    ("http", "http_parser", b"\x10", "stream"),
    ("hide_secret", "http_parser", b"\x10", "stream"),
    ("wsgi", "http_parser", b"\x10", "stream"),
    ("memcache", "memcache_parser", b"\x00", "stream"),
    ("mongo", "mongodb_parser", b"", "stream"),
    ("mysql", "mysql_parser", b"\x00", "stream"),
    ("nfs", "nfs_parser", b"", "stream"),
    ("pgsql", "pgsql_parser", b"\x00", "stream"),
    ("redis", "redis_parser", b"", "stream"),
    ("sip", "sip_parser", b"\x00", "datagram"),
    ("thrift", "thrift_parser", b"\x00", "stream"),
    ("ipv6_thrift", "thrift_parser", b"\x00", "stream"),
]

LINKS = {1: 0, 113: 1, 0: 2, 101: 3}  # DLT -> flows_packet's link selector


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return None, []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return None, []
    link = struct.unpack(e + "I", data[20:24])[0] & 0xFFFF
    frames, at = [], 24
    while at + 16 <= len(data):
        caplen = struct.unpack(e + "I", data[at + 8:at + 12])[0]
        frames.append(data[at + 16:at + 16 + caplen])
        at += 16 + caplen
    return link, frames


def ip_of(link, frame):
    """The IP packet inside a frame, or None."""
    if link == 1:  # Ethernet, with any number of VLAN tags
        at, etype = 12, None
        while at + 2 <= len(frame):
            etype = struct.unpack(">H", frame[at:at + 2])[0]
            at += 2
            if etype in (0x8100, 0x88A8, 0x9100):
                at += 2
                continue
            break
        return frame[at:] if etype in (0x0800, 0x86DD) else None
    if link == 113:
        return frame[16:]
    if link == 0:
        return frame[4:]
    if link == 101:
        return frame
    return None


def transport(ip):
    """(proto, src, dst, ip header info, l4 bytes) of an IP packet, or None."""
    if len(ip) < 20:
        return None
    v = ip[0] >> 4
    if v == 4:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        frag = struct.unpack(">H", ip[6:8])[0]
        info = {"id": struct.unpack(">H", ip[4:6])[0], "more": bool(frag & 0x2000),
                "offset": frag & 0x1FFF}
        return ip[9], ip[12:16], ip[16:20], info, ip[ihl:max(ihl, min(total, len(ip)))]
    if v == 6 and len(ip) >= 40:
        return ip[6], ip[8:24], ip[24:40], {"offset": 0, "more": False}, ip[40:]
    return None


def connections(link, frames):
    """TCP segments per connection and UDP datagrams, in capture order."""
    conns, order, datagrams, fragments = {}, [], [], []
    for frame in frames:
        ip = ip_of(link, frame)
        t = ip and transport(ip)
        if not t:
            continue
        proto, src, dst, info, l4 = t
        if info["more"] or info["offset"]:
            fragments.append((info, l4))
            continue
        if proto == 6 and len(l4) >= 20:
            sport, dport, seq = struct.unpack(">HHI", l4[:8])
            flags = l4[13]
            payload = l4[(l4[12] >> 4) * 4:]
            key = (src, sport, dst, dport)
            rev = (dst, dport, src, sport)
            if rev in conns:
                conns[rev].append((1, flags, seq, payload))
            else:
                if key not in conns:
                    conns[key] = []
                    order.append(key)
                conns[key].append((0, flags, seq, payload))
        elif proto == 17 and len(l4) >= 8:
            datagrams.append(l4[8:])
    return [conns[k] for k in order], datagrams, fragments


def write(corpus, target, name, n, data):
    if not data:
        return 0
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"seed-{name}-{n}"), "wb") as f:
        f.write(data[:MAX_SEED])
    return 1


def tcp_records(conn, index):
    """A connection as tcp_reassembly's segment records (connection `index`)."""
    out, nxt = bytearray(), [None, None]
    for d, flags, seq, payload in conn:
        chunks = [payload[i:i + 255] for i in range(0, len(payload), 255)] or [b""]
        for i, chunk in enumerate(chunks):
            s = (seq + 255 * i) & 0xFFFFFFFF
            off = 0 if nxt[d] is None else ((s - nxt[d] + 2**31) % 2**32) - 2**31
            off = max(-32768, min(32767, off))
            f = flags if i == len(chunks) - 1 else flags & ~0x03
            out += bytes([f, index | (0x10 if d else 0)]) + struct.pack(">hB", off, len(chunk))
            out += chunk
            if off >= 0:
                nxt[d] = (s + len(chunk) + (1 if f & 0x03 else 0)) & 0xFFFFFFFF
    return bytes(out)


def main():
    root = os.path.dirname(os.path.abspath(__file__))
    pcaps = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "..", "shared", "pcaps")
    corpus = os.path.join(root, "corpus")
    if not os.path.isdir(pcaps):
        sys.exit(f"seed_corpus: {pcaps} is not a directory")
    seeds = 0
    for dirpath, _, files in sorted(os.walk(pcaps)):
        for fname in sorted(files):
            if not fname.endswith(".pcap"):
                continue
            link, frames = read_pcap(os.path.join(dirpath, fname))
            if link is None:
                continue
            name = fname[:-5]
            conns, datagrams, fragments = connections(link, frames)
            # Every capture's frames into the flow path (frames cut to the one-byte length).
            if link in LINKS:
                data = bytes([0xF0 | LINKS[link]])
                for fr in frames:
                    fr = fr[:255]
                    data += bytes([len(fr)]) + fr
                seeds += write(corpus, "flows_packet", name, 0, data)
            for i, c in enumerate(conns[:16]):
                # Even connections go to the target's HTTP port, odd ones to Redis.
                idx = 1 if name.startswith("redis") else (i * 2) & 0x0F
                seeds += write(corpus, "tcp_reassembly", name, i, b"\x08" + tcp_records(c, idx))
            if fragments:
                data = b""
                for info, payload in fragments:
                    for j in range(0, max(len(payload), 1), 248):
                        chunk = payload[j:j + 248]
                        more = info["more"] or j + 248 < len(payload)
                        data += bytes([(info["id"] & 0x7F) | (0x80 if more else 0)])
                        data += struct.pack(">HBB", info["offset"] + j // 8, len(chunk), 1) + chunk
                seeds += write(corpus, "ipv4_defrag", name, 0, data)
            if name.startswith("icmp") or name.startswith("802.1q"):
                for n, fr in enumerate(frames):
                    ip = ip_of(link, fr)
                    t = ip and transport(ip)
                    if t and t[0] in (1, 58) and len(t[4]) >= 4:
                        sel = b"\x00" if t[0] == 1 else b"\x01"
                        seeds += write(corpus, "icmp_parser", name, n, sel + t[4][:2] + t[4][4:])
            for prefix, target, opts, cut in TARGETS:
                if not name.startswith(prefix):
                    continue
                n = 0
                if cut == "datagram":
                    for dg in datagrams:
                        n += write(corpus, target, name, n, opts + dg)
                for c in conns:
                    both = b"".join(p for _, _, _, p in c)
                    for d in (0, 1):
                        n += write(corpus, target, name, n, opts + b"".join(p for dd, _, _, p in c if dd == d))
                    n += write(corpus, target, name, n, opts + both)
                seeds += n
                break
    print(f"seed_corpus: {seeds} seeds from {pcaps}")


if __name__ == "__main__":
    main()

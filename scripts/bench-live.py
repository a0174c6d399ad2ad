"""The body of scripts/bench-live: see that script for what is measured and how to run it."""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NS = f"pbbench{os.getpid()}"
TX, RX = "pbbtx", "pbbrx"
PROTOCOLS = """packetbeat.protocols:
  - {type: http, ports: [80, 8080]}
  - {type: tls, ports: [443]}
  - {type: dns, ports: [53]}
  - {type: mysql, ports: [3306]}
  - {type: pgsql, ports: [5432]}
  - {type: redis, ports: [6379]}
  - {type: memcache, ports: [11211]}
"""


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def setup():
    sh("ip", "netns", "add", NS)
    sh("ip", "-n", NS, "link", "add", TX, "type", "veth", "peer", "name", RX)
    # No IPv6: the kernel's own neighbour discovery would add frames.
    sh("ip", "netns", "exec", NS, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
    for d in (TX, RX, "lo"):
        sh("ip", "-n", NS, "link", "set", d, "up")


def teardown():
    sh("ip", "netns", "del", NS, check=False)


def count_events(out_dir):
    n = 0
    for f in Path(out_dir).glob("*"):
        with open(f, "rb") as fh:
            for line in fh:
                if b'"type":"flow"' not in line:
                    n += 1
    return n


def expected_events(binary, corpus, tmp, tag="file"):
    """The transactions a binary reports for the corpus read as a file (`-I -t`)."""
    cfg = Path(tmp) / f"{tag}.yml"
    out = Path(tmp) / f"{tag}-out"
    # As scripts/compat.py runs the reference: without them it exits with events still queued.
    cfg.write_text(f"{PROTOCOLS}output.file: {{path: {out}, filename: pb}}\npath.data: {tmp}/data-{tag}\n"
                   "packetbeat.shutdown_timeout: 1s\nqueue.mem.flush.timeout: 0s\n")
    sh(binary, "-t", "-I", corpus, "-c", str(cfg), "--strict.perms=false")
    return count_events(out)


def run_one(binary, kind, workers, rate, corpus, tmp, reference=False):
    """One replay at `rate` (Mbit/s or 'topspeed'); returns (events, kernel drops or None,
    tcpreplay's achieved pps and Mbps)."""
    tag = f"{'ref' if reference else 'ours'}-{kind}-{workers}-{rate}"
    out = Path(tmp) / tag
    cfg = Path(tmp) / f"{tag}.yml"
    iface = f"packetbeat.interfaces:\n  device: {RX}\n  type: {kind}\n"
    if not reference:
        iface += f"  workers: {workers}\n"
    cfg.write_text(
        iface + PROTOCOLS
        + f"output.file: {{path: {out}, filename: pb}}\npath.data: {tmp}/data-{tag}\n"
        + "packetbeat.shutdown_timeout: 2s\nqueue.mem.flush.timeout: 0s\n"
    )
    log = open(Path(tmp) / f"{tag}.log", "w+")
    p = subprocess.Popen(
        ["ip", "netns", "exec", NS, binary, "-e", "-c", str(cfg), "--strict.perms=false"],
        stdout=subprocess.DEVNULL, stderr=log,
    )
    time.sleep(2.5)  # both binaries open the device well within this
    args = ["ip", "netns", "exec", NS, "tcpreplay", "--preload-pcap", f"--intf1={TX}"]
    args += ["--topspeed"] if rate == "topspeed" else [f"--mbps={rate}"]
    r = sh(*args, corpus, check=False)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
    log.seek(0)
    text = log.read()
    drops = None
    m = re.search(r"(\d+) dropped by the kernel", text)
    if m and not reference:
        drops = int(m.group(1))
    m = re.search(r"Rated: [\d.]+ Bps, ([\d.]+) Mbps, ([\d.]+) pps", r.stdout)
    mbps, pps = (float(m.group(1)), float(m.group(2))) if m else (0.0, 0.0)
    return count_events(out) if out.exists() else 0, drops, pps, mbps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--reference")
    ap.add_argument("--rates", default="10 25 50 100 200 400 800 1600 topspeed")
    ap.add_argument("--only", choices=["ours", "reference"], help="run one side only")
    a = ap.parse_args()
    rates = a.rates.split()
    binary = str(Path(a.bin).resolve())
    teardown()
    setup()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            want = expected_events(binary, a.corpus, tmp)
            print(f"corpus {a.corpus}: {want} transactions from packetbeat-rs -I -t", flush=True)
            configs = []
            if a.only != "reference":
                configs += [(binary, k, w, False) for k in ("pcap", "af_packet") for w in (1, 2)]
            ref_want = None
            if a.reference and a.only != "ours":
                ref_want = expected_events(a.reference, a.corpus, tmp, "ref-file")
                print(f"corpus {a.corpus}: {ref_want} transactions from the reference -I -t", flush=True)
                configs += [(a.reference, k, 0, True) for k in ("pcap", "af_packet")]
            for b, kind, workers, ref in configs:
                name = f"{'reference Packetbeat' if ref else 'packetbeat-rs'} {kind}" + (
                    "" if ref else f" {workers} worker(s)")
                best, limited = None, True
                # Each binary against its own file replay (the reference does not report
                # transactions still open at the end of a file as ours does).
                bar = ref_want if ref else want
                for rate in rates:
                    events, drops, pps, mbps = run_one(b, kind, workers, rate, a.corpus, tmp, ref)
                    ok = events >= bar and (drops in (None, 0))
                    print(f"  {name:42} {rate:>9} Mbit/s asked: {mbps:8.1f} Mbit/s {pps:10.0f} pps sent, "
                          f"{events}/{bar} events, kernel drops {drops if drops is not None else '-'}"
                          f" {'ok' if ok else 'LOSS'}", flush=True)
                    if not ok:
                        limited = False
                        break
                    best = (mbps, pps)
                rows.append((name, best, limited))
    finally:
        teardown()
    print("\nhighest replay rate without loss:")
    for name, best, limited in rows:
        line = f"{best[0]:8.1f} Mbit/s {best[1]:10.0f} pps" if best else "none of the rates"
        if best and limited:
            line += "  (no loss at any rate: the sender's ceiling, not the sniffer's)"
        print(f"  {name:42} {line}")


if __name__ == "__main__":
    sys.exit(main())

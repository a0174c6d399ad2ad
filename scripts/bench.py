#!/usr/bin/env python3
"""Runs the benchmark described in scripts/bench and ../shared/bench/README.md.

Every figure is reported next to the libpcap read floor measured in the same run."""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "bench"
OUT = ROOT / "bench-out"
OURS = ROOT / "target" / "release" / "packetbeat"
# `--stages`: the same build with the stage-cycles feature (scripts/bench builds it).
OURS_STAGES = ROOT / "target" / "stage-cycles" / "release" / "packetbeat"

# The analyzers both implementations run, on Packetbeat's default ports, and flows (Packetbeat's
# stock settings).
PROTOCOLS = """
packetbeat.interfaces.internal_networks: [private]
packetbeat.flows:
  timeout: 30s
  period: 10s
packetbeat.protocols:
  - type: icmp
    enabled: true
  - type: dhcpv4
    ports: [67, 68]
  - type: dns
    ports: [53]
  - type: http
    ports: [80, 8080, 8000, 5000, 8002]
  - type: tls
    ports: [443, 993, 995, 5223, 8443, 8883, 9243]
  - type: mysql
    ports: [3306]
  - type: pgsql
    ports: [5432]
  - type: redis
    ports: [6379]
  - type: memcache
    ports: [11211]
"""
# `--processors`: global processor chains measured against none (1 worker, output.discard).
# The stock chain is packetbeat.yml's, with its metadata endpoints on a closed loopback port
# and a missing socket, so nothing leaves the machine and the enrichment from them is empty.
PROCESSOR_CHAINS = {
    "no processors": "",
    "stock chain": """processors:
  - if.contains.tags: forwarded
    then:
      - drop_fields:
          fields: [host]
    else:
      - add_host_metadata: ~
  - add_cloud_metadata: {host: "127.0.0.1:9", timeout: 1s}
  - add_docker_metadata: {host: "unix:///nonexistent/docker.sock"}
  - detect_mime_type: {field: http.request.body.content, target: http.request.mime_type}
  - detect_mime_type: {field: http.response.body.content, target: http.response.mime_type}
""",
    # The first base64 character of the Community ID is uniform over 64: A-Z and a-f are half.
    "drop_event (half)": """processors:
  - drop_event.when.regexp.network.community_id: "^1:[A-Za-f]"
""",
}

TYPES = ["http", "dns", "tls", "mysql", "pgsql", "redis", "memcache", "icmp", "dhcpv4"]


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def timed(cmd, env=None):
    """Runs cmd under GNU time: (wall s, cpu s, peak RSS MB). Dirty pages of earlier runs are
    written back first, so one run's output does not slow the next one down."""
    os.sync()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        start = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-o", t.name, "-f", "%U %S %M"] + cmd, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        wall = time.perf_counter() - start
        u, s, m = t.read().split()[-3:]
        return wall, float(u) + float(s), int(m) / 1024


def make_corpus(name, args):
    pcap = OUT / f"{name}.pcap"
    summary = Path(str(pcap) + ".summary.json")
    if not (pcap.exists() and summary.exists()):
        print(f"making {pcap.name} ...", file=sys.stderr)
        sh([str(SHARED / "make-corpus"), "-o", str(pcap)] + args, stdout=subprocess.DEVNULL)
    return pcap, json.loads(summary.read_text())


def count_types(out_dir):
    counts = {t: 0 for t in TYPES}
    pat = re.compile(r'"type":\s*"(' + "|".join(TYPES) + r')"')
    for f in Path(out_dir).glob("*.ndjson"):
        with open(f, "rb") as fh:
            for line in fh:
                m = pat.findall(line.decode("utf-8", "replace"))
                # An event's own type is the only top-level "type" with a protocol name.
                if m:
                    counts[m[-1] if len(set(m)) == 1 else m[0]] += 1
    return counts


def run_ours(pcap, workers, output, tmp, extra=""):
    out = Path(tmp) / f"ours-{workers}-{output}"
    cfg = Path(tmp) / f"ours-{workers}-{output}.yml"
    body = PROTOCOLS + extra + f"packetbeat.interfaces.workers: {workers}\n"
    if output == "file":
        body += f"output.file:\n  path: {out}\n  rotate_every_kb: 100000000\n  number_of_files: 1024\n"
    else:
        body += "output.discard:\n  enabled: true\n"
    cfg.write_text(body)
    r = timed([str(OURS), "-t", "-I", str(pcap), "-c", str(cfg), "--strict.perms=false",
               "--path.data", str(Path(tmp) / "data")])
    counts = count_types(out) if output == "file" else None
    shutil.rmtree(out, ignore_errors=True)
    return r, counts


SINK_CPU = {}


def lumber_sink():
    """tests/lumber-sink (Elastic's go-lumber server), built as the Logstash tests build it."""
    out = ROOT / "target" / "lumber-sink" / "lumber-sink"
    go = "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else "go"
    sh([go, "build", "-o", str(out), "."], cwd=ROOT / "tests" / "lumber-sink")
    return out


def run_logstash(pcap, workers, tmp, extra=""):
    """`--logstash`: ours with output.logstash to the go-lumber sink on loopback, which writes
    every event it receives (before ACKing it) as a JSON line; the events are counted there."""
    out = Path(tmp) / f"lumber-{workers}"
    out.mkdir(exist_ok=True)
    received = open(out / "events.ndjson", "wb")
    sink = subprocess.Popen([str(lumber_sink()), "-addr", "127.0.0.1:0"], stdout=received,
                            stderr=subprocess.PIPE, text=True)
    try:
        addr = None
        for line in sink.stderr:
            if line.startswith("LISTENING "):
                addr = line.split()[1]
                break
        if not addr:
            raise SystemExit("lumber-sink did not start")
        cfg = Path(tmp) / f"lumber-{workers}.yml"
        cfg.write_text(PROTOCOLS + extra + f"packetbeat.interfaces.workers: {workers}\n"
                       f"output.logstash:\n  hosts: [\"{addr}\"]\n")
        r = timed([str(OURS), "-t", "-I", str(pcap), "-c", str(cfg), "--strict.perms=false",
                   "--path.data", str(Path(tmp) / "data")])
        # The sink's own CPU time: it decodes and writes every event on the same cores.
        stat = (Path("/proc") / str(sink.pid) / "stat").read_text().rsplit(")", 1)[1].split()
        SINK_CPU[workers] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    finally:
        sink.terminate()
        sink.wait()
        received.close()
    counts = count_types(out)
    shutil.rmtree(out, ignore_errors=True)
    return r, counts


def run_reference(ref, pcap, tmp):
    out = Path(tmp) / "reference"
    home = Path(tmp) / "ref-home"
    home.mkdir(exist_ok=True)
    cfg = home / "packetbeat.yml"
    cfg.write_text(PROTOCOLS + "packetbeat.shutdown_timeout: 1s\nqueue.mem.flush.timeout: 0s\n"
                   f"output.file:\n  path: {out}\n  rotate_every_kb: 100000000\n  number_of_files: 1024\n")
    os.chmod(cfg, 0o600)
    r = timed([ref, "-t", "-I", str(pcap), "-c", str(cfg), "--path.home", str(home),
               "--path.data", str(home / "data"), "--path.logs", str(home / "logs"), "--strict.perms=false"])
    counts = count_types(out)
    shutil.rmtree(out, ignore_errors=True)
    return r, counts


def instructions(cmd, out_file):
    """Instructions the whole process executes (all threads), counted by callgrind: the same on
    every run of the same build on the same input, so two builds compare without timing noise."""
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}"] + cmd,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    total = 0
    for f in Path(out_file).parent.glob(Path(out_file).name + "*"):
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith("summary:") or line.startswith("totals:"):
                total += int(line.split()[1])
                break
    return total


def callgrind_run(pcap, packets, floor, tmp):
    """`--callgrind`: instructions of the read floor and of 1 worker -> file, per packet."""
    cfg = Path(tmp) / "callgrind.yml"
    out = Path(tmp) / "callgrind-out"
    cfg.write_text(PROTOCOLS + "packetbeat.interfaces.workers: 1\n"
                   f"output.file:\n  path: {out}\n  rotate_every_kb: 100000000\n")
    floor_ir = instructions([str(floor), str(pcap)], Path(tmp) / "cg.floor")
    ours_ir = instructions([str(OURS), "-t", "-I", str(pcap), "-c", str(cfg), "--strict.perms=false",
                            "--path.data", str(Path(tmp) / "data")], Path(tmp) / "cg.ours")
    print(f"\ncallgrind (instructions, all threads): read floor {floor_ir:,} ({floor_ir / packets:.0f}/packet); "
          f"packetbeat-rs 1 worker -> file {ours_ir:,} ({ours_ir / packets:.0f}/packet, {ours_ir / floor_ir:.2f}x the floor)")


def stages_run(pcap, workers, tmp):
    """`--stages`: cycles per stage (the stage-cycles build), `workers` -> file, as a table."""
    cfg = Path(tmp) / "stages.yml"
    out = Path(tmp) / "stages-out"
    cfg.write_text(PROTOCOLS + f"packetbeat.interfaces.workers: {workers}\n"
                   f"output.file:\n  path: {out}\n  rotate_every_kb: 100000000\n  number_of_files: 1024\n")
    r = subprocess.run([str(OURS_STAGES), "-e", "-t", "-I", str(pcap), "-c", str(cfg), "--strict.perms=false",
                        "--path.data", str(Path(tmp) / "data")], capture_output=True, text=True, check=True)
    shutil.rmtree(out, ignore_errors=True)
    print(f"\ncycles per stage ({workers} worker(s) -> file, TSC; p50/p99 per sample, mean per captured frame):")
    print(f"  {'stage':10} {'p50':>8} {'p99':>8} {'mean/frame':>11} {'share':>7}")
    for line in r.stderr.splitlines():
        try:
            msg = json.loads(line).get("message", "")
        except ValueError:
            continue
        m = re.match(r"stage (\w+): p50 (\d+) p99 (\d+) .*mean ([\d.]+) cycles per frame, ([\d.]+) %", msg)
        if m:
            print(f"  {m[1]:10} {m[2]:>8} {m[3]:>8} {m[4]:>11} {m[5]:>6}%")
        elif msg.startswith("stage cycles:"):
            total = re.search(r"([\d.]+) cycles per frame in all", msg)
            print(f"  {'all':10} {'':>8} {'':>8} {total[1] if total else '?':>11} {'100.0':>6}%")


def median_of(n, fn):
    runs = [fn() for _ in range(n)]
    runs.sort(key=lambda r: r[0][0])
    return runs[len(runs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1G")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--processors", action="store_true",
                    help="also run 1 worker -> file with no processors, the stock chain and a drop_event dropping half")
    ap.add_argument("--logstash", action="store_true",
                    help="also run 1 worker and all cores with output.logstash to the go-lumber sink")
    ap.add_argument("--no-stage", action="store_true", help="skip benches/stage.rs")
    ap.add_argument("--callgrind", action="store_true",
                    help="also count instructions with valgrind's callgrind (use with --size 50M)")
    ap.add_argument("--stages", action="store_true",
                    help="also the cycles per stage of 1 and all workers -> file (stage-cycles build)")
    a = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    floor = OUT / "pcapread"
    if not floor.exists():
        sh(["gcc", "-O2", "-o", str(floor), str(SHARED / "tools" / "pcapread.c"), "-lpcap"])
    ref = None
    if not a.no_reference:
        ref = subprocess.run([str(ROOT / "scripts" / "reference-packetbeat")], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
    size_args = [] if a.size.upper() in ("1G", "1GIB") else ["--size", a.size]
    corpora = [("corpus" + ("" if not size_args else "-" + a.size), size_args)]
    if a.small:
        corpora.append(("small" + ("" if not size_args else "-" + a.size), ["--small-packets"] + size_args))
    cores = os.cpu_count() or 1
    for name, args in corpora:
        pcap, summary = make_corpus(name, args)
        packets, wire = summary["packets"], summary["wire_bytes"]
        sh(["cat", str(pcap)], stdout=subprocess.DEVNULL)  # warm the page cache
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(("libpcap read floor", median_of(a.runs, lambda: (timed([str(floor), str(pcap)]), None))))
            for w in sorted({1, cores}):
                for o in ("file", "discard"):
                    rows.append((f"packetbeat-rs {w} worker(s) -> {o}",
                                 median_of(a.runs, lambda: run_ours(pcap, w, o, tmp))))
            if a.processors:
                for label, chain in PROCESSOR_CHAINS.items():
                    rows.append((f"1 worker -> file, {label}",
                                 median_of(a.runs, lambda: run_ours(pcap, 1, "file", tmp, chain))))
            if a.logstash:
                for w in sorted({1, cores}):
                    rows.append((f"packetbeat-rs {w} worker(s) -> logstash",
                                 median_of(a.runs, lambda: run_logstash(pcap, w, tmp))))
            if ref:
                rows.append(("reference Packetbeat -> file", median_of(1, lambda: run_reference(ref, pcap, tmp))))
            if a.callgrind:
                callgrind_run(pcap, packets, floor, tmp)
            if a.stages:
                for w in sorted({1, cores}):
                    stages_run(pcap, w, tmp)
        floor_wall = rows[0][1][0][0]
        print(f"\n== {pcap.name}: {packets:,} packets, {wire / 1e9:.3f} GB on the wire ==")
        print(f"{'run':38} {'wall s':>7} {'x floor':>8} {'Mpps':>7} {'Gbit/s':>7} {'events/s':>10} {'CPU s':>7} {'RSS MB':>7}")
        events_by_run = {}
        for label, ((wall, cpu, rss), counts) in rows:
            ev = sum(counts.values()) if counts else None
            events_by_run[label] = counts
            print(f"{label:38} {wall:7.2f} {wall / floor_wall:8.2f} {packets / wall / 1e6:7.2f} "
                  f"{wire * 8 / wall / 1e9:7.2f} {(f'{ev / wall:,.0f}' if ev else '-'):>10} {cpu:7.2f} {rss:7.0f}")
        walls = {label: r[0][0] for label, r in rows}
        one = walls.get("packetbeat-rs 1 worker(s) -> file")
        allc = walls.get(f"packetbeat-rs {cores} worker(s) -> file")
        print("\nratios:")
        if one and allc:
            print(f"  all cores ({cores}) vs 1 worker (file): {one / allc:.2f}x faster")
            print(f"  ours / read floor: 1 worker {one / floor_wall:.2f}x, all cores {allc / floor_wall:.2f}x")
        if a.logstash:
            for w in sorted({1, cores}):
                ls, fl = walls.get(f"packetbeat-rs {w} worker(s) -> logstash"), walls.get(f"packetbeat-rs {w} worker(s) -> file")
                if ls and fl:
                    print(f"  {w} worker(s) -> logstash (go-lumber sink on the same cores): {ls / floor_wall:.2f}x read floor, "
                          f"{ls / fl:.2f}x the file run; the sink used {SINK_CPU.get(w, 0):.2f} CPU s of the cores")
        if a.processors:
            cpus = {label: r[0][1] for label, r in rows}
            none = walls.get("1 worker -> file, no processors")
            none_cpu = cpus.get("1 worker -> file, no processors")
            for label in PROCESSOR_CHAINS:
                w = walls.get(f"1 worker -> file, {label}")
                c = cpus.get(f"1 worker -> file, {label}")
                if w and none:
                    print(f"  {label}: {w / floor_wall:.2f}x read floor, {w / none:.2f}x no processors"
                          f" (CPU s: {c / none_cpu:.2f}x)")
        refw = walls.get("reference Packetbeat -> file")
        if refw and allc:
            print(f"  ours vs reference Packetbeat (packets/s): 1 worker {refw / one:.1f}x, all cores {refw / allc:.1f}x")
        print("\nevents per protocol (file runs) vs the corpus's expected transactions:")
        expected = {k: v.get("expected_transactions") for k, v in summary.get("per_protocol", {}).items()}
        print(f"  {'run':38} " + " ".join(f"{t:>9}" for t in TYPES))
        print(f"  {'expected (corpus summary)':38} " + " ".join(f"{(expected.get(t) or 0):>9}" for t in TYPES))
        for label, counts in events_by_run.items():
            if counts:
                print(f"  {label:38} " + " ".join(f"{counts[t]:>9}" for t in TYPES))
        # The worker stage alone (benches/stage.rs): capture and output threads left out.
        if a.no_stage:
            continue
        print()
        stage = subprocess.run(["cargo", "bench", "--quiet", "--bench", "stage", "--", str(pcap), "512"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout
        print(stage.strip())


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Measure peerpack across real processes on loopback.

Starts N `peerpack node` processes (default 5) in a temporary directory, joins them in a
chain (each node also dials node 0), then:

  1. propagation: publishes R fresh packages from node 0 and, from the same instant, runs
     `peerpack search` on the last node in a loop until the package appears; reports the
     time from the start of `publish` until `search` finds it;
  2. search wall time: runs `peerpack search template` S times on the last node.

Usage: scripts/measure_cli.py [--bin target/release/peerpack] [--nodes 5] [--rounds 10]
                              [--searches 50] [--json FILE]
Only 127.0.0.1 is used.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wait_file(path, timeout=30):
    t = time.time()
    while not path.exists():
        if time.time() - t > timeout:
            sys.exit(f"{path} never appeared")
        time.sleep(0.02)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target/release/peerpack"))
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--searches", type=int, default=50)
    ap.add_argument("--json")
    a = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEERPACK_")}
    tmp = Path(tempfile.mkdtemp(prefix="peerpack-measure-"))
    procs = []
    try:
        dirs = [tmp / f"n{i}" for i in range(a.nodes)]
        for d in dirs:
            procs.append(subprocess.Popen(
                [a.bin, "--data-dir", str(d), "node", "--listen", "/ip4/127.0.0.1/tcp/0"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        for d in dirs:
            wait_file(d / "node.json")
        addr = lambda i: json.loads((dirs[i] / "node.json").read_text())["listen_addrs"][0]
        for i in range(1, a.nodes):
            targets = [addr(i - 1)] + ([addr(0)] if i > 1 else [])
            subprocess.run([a.bin, "--data-dir", str(dirs[i]), "bootstrap", *targets],
                           check=True, capture_output=True, env=env)
        time.sleep(1.0)  # let Identify, Kademlia and gossip subscriptions settle

        def cli(i, *args):
            return subprocess.run([a.bin, "--data-dir", str(dirs[i]), *args],
                                  capture_output=True, text=True, env=env)

        src = ROOT / "examples/packs/rust-cli"
        propagation = []
        for r in range(a.rounds):
            name = f"measure-pack-{r}"
            pkg = tmp / name
            shutil.copytree(src, pkg)
            manifest = (pkg / "peerpack.toml").read_text().replace('name = "rust-cli"', f'name = "{name}"', 1)
            (pkg / "peerpack.toml").write_text(manifest)
            t0 = time.perf_counter()
            pub = threading.Thread(target=lambda: cli(0, "publish", str(pkg)))
            pub.start()
            while True:
                out = cli(a.nodes - 1, "search", name, "--json", "--limit", "1")
                if out.returncode == 0 and json.loads(out.stdout or "[]") and json.loads(out.stdout)[0]["name"] == name:
                    break
                if time.perf_counter() - t0 > 30:
                    sys.exit(f"{name} never became searchable")
            propagation.append((time.perf_counter() - t0) * 1e3)
            pub.join()

        searches = []
        for _ in range(a.searches):
            t0 = time.perf_counter()
            out = cli(a.nodes - 1, "search", "template")
            searches.append((time.perf_counter() - t0) * 1e3)
            assert out.returncode == 0, out.stderr

        def summary(xs):
            xs = sorted(xs)
            return {"n": len(xs), "min_ms": round(xs[0], 1), "median_ms": round(statistics.median(xs), 1),
                    "p90_ms": round(xs[int(0.9 * (len(xs) - 1))], 1), "max_ms": round(xs[-1], 1)}

        result = {"nodes": a.nodes, "publish_to_searchable": summary(propagation),
                  "search_cli_wall": summary(searches)}
        print(json.dumps(result, indent=2))
        if a.json:
            Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

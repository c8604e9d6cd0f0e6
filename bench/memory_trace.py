"""Where does `distillwatch detect` hold its memory? Samples the RSS of the CLI
process and of its whole tree (feature workers included) while it runs, and
prints the trace next to the run's own stage timings.

    python bench/memory_trace.py EVENTS ACCOUNTS [--out DIR] [--every 0.3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("events")
    ap.add_argument("accounts")
    ap.add_argument("--out", default=None)
    ap.add_argument("--every", type=float, default=0.3)
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="dw-mem-"))
    cmd = [sys.executable, "-m", "distillwatch.cli", "detect", args.events]
    cmd += ["--accounts", args.accounts, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = psutil.Process(proc.pid)
    t0 = time.time()
    trace: list[tuple[float, float, float]] = []
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
            tree = sum(p.memory_info().rss for p in procs if p.is_running())
            trace.append((time.time() - t0, root.memory_info().rss / 2**30, tree / 2**30))
        except psutil.Error:
            pass
        time.sleep(args.every)
    stages = json.loads((out / "summary.json").read_text())["seconds"]
    print("stages (s):", stages)
    step = max(len(trace) // 20, 1)
    for t, main_gib, tree_gib in trace[::step]:
        print(f"{t:7.1f} s   main {main_gib:5.2f} GiB   tree {tree_gib:5.2f} GiB")
    print(f"peak main {max(x[1] for x in trace):.2f} GiB, tree {max(x[2] for x in trace):.2f} GiB")


if __name__ == "__main__":
    main()

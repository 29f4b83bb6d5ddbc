"""Throughput of the bulk job (``ppocr-torch recognize --list ... --out ...``) by workers x threads per worker.

    python benchmarks/bulk.py --lines 2000 --configs 1x2,2x1,1x1

Each configuration runs the CLI in a fresh process over the same ``--lines`` rendered lines (tests/data/lines,
repeated, one file each, from a list file), measured by a launcher: wall time (model loading and worker start
included), lines/s, lines/s per core used, and the peak RSS of the largest process (``ru_maxrss`` of the job's
process tree: the parent or one worker). The outputs of all configurations must be byte-identical (checked).
Writes ``benchmarks/results/bulk-<date>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LINES = ROOT / "tests" / "data" / "lines"

_LAUNCHER = r"""
import json, resource, subprocess, sys, time
t = time.time()
rc = subprocess.run(sys.argv[1:]).returncode
print(json.dumps({"rc": rc, "seconds": time.time() - t,
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def make_lines(folder: Path, n: int) -> Path:
    """``n`` line images under ``folder`` (the rendered lines repeated) and the list file naming them."""
    sources = sorted(LINES.glob("*.png"))
    listing = folder / "lines.txt"
    with open(listing, "w", encoding="utf-8") as fh:
        for i in range(n):
            rel = Path(f"{i // len(sources):03d}") / sources[i % len(sources)].name
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(sources[i % len(sources)], folder / rel)
            fh.write(f"{rel}\n")
    return listing


def run_config(listing: Path, out: Path, workers: int, threads: int, args) -> dict:
    cmd = [sys.executable, "-m", "ppocr_torch", "recognize", "--list", str(listing), "--out", str(out), "-q",
           "--workers", str(workers), "--threads", str(threads), "--mode", args.mode, "--model", args.model,
           "--chunk-size", str(args.chunk_size), "--batch-size", str(args.batch_size)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PPOCR_TORCH_THREADS", None)
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"launcher failed: {proc.stderr[-2000:]}")
    stats = json.loads(proc.stdout.splitlines()[-1])
    if stats["rc"] not in (0, 1):
        raise SystemExit(f"the job failed (exit {stats['rc']}): {proc.stderr[-2000:]}")
    return stats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2000, help="lines to read (default 2000)")
    parser.add_argument("--configs", default=None,
                        help="workers x threads, comma-separated (default: 1xC, 2x(C/2), 1x1 for C cores)")
    parser.add_argument("--model", default="PP-OCRv6_small_rec")
    parser.add_argument("--mode", default="per_image", choices=("per_image", "throughput", "paddle"))
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out-dir", default=str(HERE / "results"))
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from ppocr_torch.bulk.job import cpu_cores

    cores = cpu_cores()
    if args.configs:
        configs = [tuple(int(v) for v in c.lower().split("x")) for c in args.configs.split(",")]
    else:
        configs = [(1, cores), (2, max(1, cores // 2)), (1, 1)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ppocr-bulk-") as tmp:
        listing = make_lines(Path(tmp), args.lines)
        reference = None
        for workers, threads in configs:
            out = Path(tmp) / f"out-{workers}x{threads}.jsonl"
            stats = run_config(listing, out, workers, threads, args)
            data = out.read_bytes()
            reference = data if reference is None else reference
            rows.append({"workers": workers, "threads": threads, "seconds": round(stats["seconds"], 2),
                         "lines_per_s": round(args.lines / stats["seconds"], 2),
                         "lines_per_s_per_core": round(args.lines / stats["seconds"] / (workers * threads), 2),
                         "peak_rss_mb": round(stats["peak_mb"]), "same_output": data == reference})
            print(json.dumps(rows[-1]), flush=True)
    stamp = time.strftime("%Y%m%d-%H%M")
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "lines": args.lines, "model": args.model, "mode": args.mode,
            "chunk_size": args.chunk_size, "batch_size": args.batch_size, "cores": cores,
            "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
            "load_average": [round(v, 1) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "command": "python benchmarks/bulk.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"bulk-{stamp}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [f"# Bulk job throughput ({meta['date']})", "",
             f"{args.lines} rendered lines, {args.model}, mode {args.mode}, chunk {args.chunk_size}, batch "
             f"{args.batch_size}; {cores} cores; load average at the end {meta['load_average']}. Wall time of the "
             f"whole CLI run (model load and worker start included). `{meta['command']}` reproduces it.", "",
             "| workers | threads each | seconds | lines/s | lines/s per core | peak RSS (MB, largest process) "
             "| same output |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['workers']} | {r['threads']} | {r['seconds']} | {r['lines_per_s']} | "
                     f"{r['lines_per_s_per_core']} | {r['peak_rss_mb']} | {'yes' if r['same_output'] else 'NO'} |")
    (out_dir / f"bulk-{stamp}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out_dir / f'bulk-{stamp}.md'}")
    return 0 if all(r["same_output"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""CPU speed of every engine side by side, in one run: ppocr_torch, the official model under ONNX Runtime and
Paddle Inference (plain and oneDNN), the Hugging Face transformers port and RapidOCR's torch engine.

    pip install -r benchmarks/requirements.txt      # the peers (transformers, rapidocr) and the chart
    python benchmarks/run.py --threads 2             # -> benchmarks/results/cpu-<date>.{json,md,png}, README table

Measures, per model and engine (see benchmarks/engines.py for what each engine runs):

* batch-1 latency at 48x320 and 48x1200: rounds in a shuffled engine order, so that machine drift hits every
  engine alike; the median over rounds and the median of the per-round ratios to ONNX Runtime;
* throughput in lines/s over 256 rendered lines of mixed widths, batched by width (PaddleOCR's batching), at the
  best batch size of each engine;
* cold start (process start to first result) and peak RSS of a process recognising 1,000 lines, with the RSS
  after a second pass (growth) -- each in a fresh process;
* with ``--busy``: our batch-1 latency while another process keeps one core busy, against the quiet figure.

Preprocessing is done once, identically for all; the engines are compared on the network alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
START, END = "<!-- speed:start -->", "<!-- speed:end -->"
DEFAULT_MODELS = ("PP-OCRv6_small_rec", "PP-OCRv5_mobile_rec", "PP-OCRv6_tiny_rec")


def line_images(n=256):
    """``n`` rendered line images (the test set's 250, repeated from the start), uint8 BGR."""
    import cv2

    files = sorted((ROOT / "tests" / "data" / "lines").glob("*.png"))
    return [cv2.imread(str(files[i % len(files)]), cv2.IMREAD_COLOR) for i in range(n)]


def width_batches(images, height, batch_size, scheme="paddle"):
    """``scheme`` "paddle": PaddleOCR's batching, sorted by aspect ratio, each batch padded to its widest line;
    "throughput": ppocr_torch's throughput mode, each line padded to its own width's bucket, batches of one bucket."""
    from ppocr_torch.preprocess import bucket_width, prepare_batch, sort_for_batching

    order = sort_for_batching(images, height)
    if scheme == "paddle":
        return [prepare_batch([images[i] for i in order[s:s + batch_size]], height, mode="paddle")
                for s in range(0, len(order), batch_size)]
    buckets = {}
    for i in order:
        h, w = images[i].shape[:2]
        own = int(height * max(320 / height, w / h))
        buckets.setdefault(bucket_width(own), []).append(i)
    return [group[1] for b in sorted(buckets) for s in range(0, len(buckets[b]), batch_size)
            for group in prepare_batch([images[i] for i in buckets[b][s:s + batch_size]], height, mode="throughput")]


def build_all(model, engines, threads):
    from engines import BUILDERS, Unavailable

    built, skipped = {}, {}
    for e in engines:
        try:
            built[e] = BUILDERS[e](model, threads)
        except Unavailable as exc:
            skipped[e] = str(exc)
    return built, skipped


def latency(built, x, rounds, reps=3):
    """{engine: [per-round ms]}: each round runs the engines in a new random order, ``reps`` calls each (min)."""
    for run in built.values():  # warm-up
        run(x)
        run(x)
    out = {e: [] for e in built}
    rng = random.Random(0)
    for _ in range(rounds):
        order = list(built)
        rng.shuffle(order)
        for e in order:
            best = float("inf")
            for _ in range(reps):
                t = time.perf_counter()
                built[e](x)
                best = min(best, time.perf_counter() - t)
            out[e].append(best * 1e3)
    return out


def throughput(built, images, height, batch_sizes, schemes=("paddle", "throughput")):
    """{engine: (best lines/s, its batch size, its batching scheme)} over ``images``: every engine runs every
    batch size under both batchings (PaddleOCR's, and width buckets), once each, in a shuffled order."""
    best = {e: (0.0, None, None) for e in built}
    for scheme in schemes:
        for bs in batch_sizes:
            batches = width_batches(images, height, bs, scheme)
            order = list(built)
            random.Random(bs).shuffle(order)
            for e in order:
                built[e](batches[0])  # warm-up at this batch shape
                t = time.perf_counter()
                for b in batches:
                    built[e](b)
                rate = len(images) / (time.perf_counter() - t)
                if rate > best[e][0]:
                    best[e] = (rate, bs, scheme)
    return best


def peak_rss_mb():
    """This process's peak resident set (``VmHWM``). Not ``ru_maxrss``: Linux carries that high-water mark over
    from the parent across fork and exec, so a child of a big process would report the parent's peak."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(engine, model, threads, lines):
    """In a fresh process: time to the first result since process start, peak RSS after ``lines`` lines, twice."""
    from engines import BUILDERS
    from ppocr_torch import registry

    height = registry.get_entry(model).spec.input_height
    images = line_images(lines)
    run = BUILDERS[engine](model, threads)
    batches = width_batches(images, height, 8)
    run(batches[0][:1])
    first = time.time()
    rss = []
    for _ in range(2):
        for b in batches:
            run(b)
        rss.append(peak_rss_mb())
    print(json.dumps({"first_result_at": first, "peak_rss_mb": rss[0], "peak_rss_mb_after_repeat": rss[1]}))


def cold_and_memory(engine, model, threads, lines):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    start = time.time()
    proc = subprocess.run([sys.executable, __file__, "--child", engine, model, "--threads", str(threads),
                           "--lines", str(lines)], capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"cold_start_s": d["first_result_at"] - start, "peak_rss_mb": d["peak_rss_mb"],
            "peak_rss_mb_after_repeat": d["peak_rss_mb_after_repeat"]}


def torch_import_s(repeats=3):
    """Median wall time of a fresh ``python -c "import torch"`` process (interpreter start included)."""
    times = []
    for _ in range(repeats):
        start = time.time()
        subprocess.run([sys.executable, "-c", "import torch"], check=True, timeout=600)
        times.append(time.time() - start)
    return statistics.median(times)


def busy_latency(model, threads, x, rounds):
    """Our batch-1 latency with the default thread policy, quiet and with one core kept busy."""
    from engines import build_ours

    run = build_ours(model, threads)
    quiet = statistics.median(latency({"ours": run}, x, rounds)["ours"])
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 600: pass"])
    try:
        loaded = statistics.median(latency({"ours": run}, x, rounds)["ours"])
    finally:
        spinner.kill()
    return {"quiet_ms": quiet, "busy_ms": loaded, "ratio": loaded / quiet}


def versions():
    out = {"python": platform.python_version(), "machine": platform.machine(), "processor": platform.processor(),
           "cpus": os.cpu_count()}
    for mod in ("torch", "onnxruntime", "paddle", "transformers", "rapidocr", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 -- not installed
            out[mod] = None
    return out


def _scheme(tp):
    return ", buckets" if tp.get("batching") == "throughput" else ""


def summarize(results):
    """Markdown: one row per model and engine, ratios to ONNX Runtime (lower is faster for latency)."""
    rows = ["| model | engine | 48x320 ms | / ORT | 48x1200 ms | / ORT | lines/s (batch) | / ORT | cold start s | "
            "peak RSS MB |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for model, r in results["models"].items():
        for e in r["engines"]:
            lat = [r["latency"][w][e] for w in ("320", "1200")]
            tp = r["throughput"].get(e)
            mem = r.get("process", {}).get(e, {})
            rows.append(f"| {model} | {e} | " + " | ".join(f"{v['median_ms']:.1f} | {v['ratio_to_ort']:.2f}x" for v in lat)
                        + (f" | {tp['lines_per_s']:.0f} ({tp['batch_size']}{_scheme(tp)}) | {tp['ratio_to_ort']:.2f}x" if tp else " | - | -")
                        + (f" | {mem['cold_start_s']:.2f} | {mem['peak_rss_mb']:.0f} |" if "cold_start_s" in mem
                           else " | - | - |"))
    return "\n".join(rows)


def chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results["models"])
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.4), squeeze=False)
    for ax, model in zip(axes[0], models):
        r = results["models"][model]
        engines = r["engines"]
        ratios = [r["latency"]["320"][e]["ratio_to_ort"] for e in engines]
        ax.bar(engines, ratios, color=["tab:green" if e == "ours" else "tab:gray" for e in engines])
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_title(f"{model}\nbatch 1, 48x320", fontsize=9)
        ax.set_ylabel("time / ONNX Runtime (lower is faster)")
        ax.tick_params(axis="x", rotation=45, labelsize=8)
    fig.suptitle(f"{results['threads']} threads, {results['machine']['processor'] or results['machine']['machine']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_readme(results, md_name, png_name):
    text = README.read_text(encoding="utf-8")
    if START not in text:
        return
    lines = [f"CPU, {results['threads']} threads, one run ({results['date']}): time of batch-1 48x320 and mixed-width "
             "throughput relative to ONNX Runtime on the official export (lower / higher is better); full table "
             f"and chart in `benchmarks/results/{md_name}`, `{png_name}`.", "",
             "| model | ours 48x320 / ORT | ours lines/s / ORT | peers 48x320 / ORT |", "| --- | --- | --- | --- |"]
    for model, r in results["models"].items():
        lat, tp = r["latency"]["320"], r["throughput"]
        peers = ", ".join(f"{e} {lat[e]['ratio_to_ort']:.2f}x" for e in r["engines"] if e not in ("ours", "ort"))
        lines.append(f"| {model} | {lat['ours']['ratio_to_ort']:.2f}x | "
                     f"{tp['ours']['ratio_to_ort']:.2f}x | {peers} |")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n" + "\n".join(lines) + f"\n{END}{tail}", encoding="utf-8")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    p.add_argument("--engines", nargs="+", default=None, help="default: all of benchmarks/engines.ENGINES")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--lines", type=int, default=1000, help="lines recognised by the RSS / cold-start process")
    p.add_argument("--no-process", action="store_true", help="skip cold start and peak RSS")
    p.add_argument("--busy", action="store_true", help="also measure our latency next to a busy process")
    p.add_argument("--no-readme", action="store_true")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--process-only", metavar="RESULTS_JSON",
                   help="measure cold start and peak RSS again into an earlier run's results (rewrites its outputs)")
    p.add_argument("--child", nargs=2, metavar=("ENGINE", "MODEL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args.child[0], args.child[1], args.threads, args.lines)

    import numpy as np

    from engines import ENGINES
    from ppocr_torch import registry

    engines = args.engines or list(ENGINES)
    if args.process_only:
        results = json.loads(Path(args.process_only).read_text(encoding="utf-8"))
        for model, r in results["models"].items():
            r["process"] = {e: cold_and_memory(e, model, args.threads, args.lines) for e in r["engines"]
                            if e in engines}
        return write_outputs(results, Path(args.process_only).with_suffix(""), args)
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "threads": args.threads, "machine": versions(),
               "rounds": args.rounds, "models": {}}
    if not args.no_process:
        results["torch_import_s"] = torch_import_s()
    for model in args.models:
        height = registry.get_entry(model).spec.input_height
        built, skipped = build_all(model, engines, args.threads)
        r = {"engines": list(built), "skipped": skipped, "latency": {}, "throughput": {}}
        for width in (320, 1200):
            x = np.random.default_rng(0).uniform(-1, 1, (1, 3, height, width)).astype(np.float32)
            ms = latency(built, x, args.rounds)
            ref = ms.get("ort")
            r["latency"][str(width)] = {
                e: {"median_ms": statistics.median(v), "rounds_ms": v,
                    "ratio_to_ort": statistics.median(a / b for a, b in zip(v, ref)) if ref else None}
                for e, v in ms.items()}
            print(f"{model} 48x{width}: " + ", ".join(f"{e} {statistics.median(v):.1f} ms" for e, v in ms.items()),
                  file=sys.stderr)
        tp = throughput(built, line_images(256), height, args.batch_sizes)
        ref = tp.get("ort", (None,))[0]
        r["throughput"] = {e: {"lines_per_s": v, "batch_size": bs, "batching": scheme,
                               "ratio_to_ort": v / ref if ref else None}
                           for e, (v, bs, scheme) in tp.items()}
        print(f"{model} throughput: " + ", ".join(f"{e} {v:.0f}/s (b{bs} {sc})" for e, (v, bs, sc) in tp.items()),
              file=sys.stderr)
        if args.busy:
            x = np.random.default_rng(0).uniform(-1, 1, (1, 3, height, 320)).astype(np.float32)
            r["busy"] = busy_latency(model, args.threads, x, args.rounds)
        del built
        if not args.no_process:
            r["process"] = {e: cold_and_memory(e, model, args.threads, args.lines) for e in r["engines"]}
        results["models"][model] = r
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return write_outputs(results, out / ("cpu-" + time.strftime("%Y%m%d-%H%M")), args)


def _extras(results):
    """Cold-start target and busy-host lines under the table."""
    lines = []
    imp = results.get("torch_import_s")
    for model, r in results["models"].items():
        proc = r.get("process", {})
        ours, ort = proc.get("ours", {}), proc.get("ort", {})
        if imp and "cold_start_s" in ours and "cold_start_s" in ort:
            target = 1.5 * ort["cold_start_s"] + imp
            lines.append(f"- {model}: cold start {ours['cold_start_s']:.2f} s; target 1.5 x ORT's "
                         f"{ort['cold_start_s']:.2f} s + torch import {imp:.2f} s = {target:.2f} s "
                         f"({'met' if ours['cold_start_s'] <= target else 'missed'}); peak RSS after a repeat "
                         f"{ours.get('peak_rss_mb_after_repeat', 0):.0f} MB vs ORT {ort.get('peak_rss_mb_after_repeat', 0):.0f} MB")
        if "busy" in r:
            b = r["busy"]
            lines.append(f"- {model}: batch-1 latency next to one busy process {b['busy_ms']:.1f} ms vs quiet "
                         f"{b['quiet_ms']:.1f} ms ({b['ratio']:.2f}x)")
    return ("\n\n" + "\n".join(lines)) if lines else ""


def write_outputs(results, base, args):
    """``base``.json/.md/.png and the README table."""
    out, stem = base.parent, base.name
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    table = summarize(results) + _extras(results)
    (out / f"{stem}.md").write_text(f"# CPU benchmark {results['date']}\n\n{json.dumps(results['machine'])}\n\n"
                                    f"{table}\n", encoding="utf-8")
    try:
        chart(results, out / f"{stem}.png")
    except ImportError:
        print("matplotlib is not installed: no chart", file=sys.stderr)
    if not args.no_readme:
        write_readme(results, f"{stem}.md", f"{stem}.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Speed and parity cost of ppocr_torch's inference modes, side by side in one run (CPU).

    python benchmarks/modes.py --models PP-OCRv6_small_rec PP-OCRv5_mobile_rec --threads 2

Modes: ``plain`` (eager nn.Conv2d/nn.Linear, the deploy form without oneDNN packing), ``default`` (the deploy
form as loaded: oneDNN fused, packed weights), ``int8`` (int8 classifier), ``compile`` (torch.compile, inductor
with freezing), ``compile+int8``. For each: batch-1 latency at 48x320 in interleaved rounds with the paired
ratio to ONNX Runtime on the official export, and, on the rendered test lines (each line alone, PaddleOCR's
preprocessing), the text agreement with ONNX Runtime and the largest |score difference|.
Writes ``benchmarks/results/modes-<date>.{json,md}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from run import latency, line_images, versions  # noqa: E402

MODES = ("plain", "default", "int8", "compile", "compile+int8")


def build_mode(base, mode):
    import torch

    from ppocr_torch.models.onednn import to_plain
    from ppocr_torch.models.optimize import apply_optimizations, parse_optimize

    model = copy.deepcopy(base)
    if mode == "plain":
        fwd = to_plain(model)
    elif mode == "default":
        fwd = model
    else:
        fwd = apply_optimizations(model, parse_optimize(mode.replace("+", ",")))

    def run(x):
        with torch.inference_mode():
            return fwd(torch.from_numpy(x)).numpy()

    return run


def parity(runs, ref_run, images, spec, charset):
    """{mode: (texts equal to ORT's, lines, max |Δscore|, seconds)} over ``images``, each line alone."""
    from ppocr_torch.decode import ctc_greedy_decode
    from ppocr_torch.preprocess import prepare_batch

    inputs = [prepare_batch([img], spec.input_height, mode="per_image", base_width=spec.base_width)[0][1]
              for img in images]
    ref = [ctc_greedy_decode(ref_run(x), charset)[0] for x in inputs]
    out = {}
    for mode, run in runs.items():
        t = time.perf_counter()
        res = [ctc_greedy_decode(run(x), charset)[0] for x in inputs]
        dt = time.perf_counter() - t
        same = sum(a.text == b.text for a, b in zip(ref, res))
        out[mode] = {"text_agree": same, "lines": len(res), "seconds": dt,
                     "max_abs_dscore": max(abs(a.score - b.score) for a, b in zip(ref, res))}
    return out


def main(argv=None):
    import numpy as np
    import torch

    from engines import build_ort
    from ppocr_torch import load_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["PP-OCRv6_small_rec", "PP-OCRv5_mobile_rec"])
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "threads": args.threads, "machine": versions(), "models": {}}
    images = line_images(250)
    for name in args.models:
        base = load_model(name)
        runs = {}
        for mode in args.modes:
            t = time.perf_counter()
            runs[mode] = build_mode(base, mode)
            x = np.zeros((1, 3, base.spec.input_height, 320), np.float32)
            runs[mode](x)  # compile happens here
            print(f"{name} {mode}: ready in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        ort = build_ort(name, args.threads)
        x = np.random.default_rng(0).uniform(-1, 1, (1, 3, base.spec.input_height, 320)).astype(np.float32)
        ms = latency(dict(runs, ort=ort), x, args.rounds)
        lat = {m: {"median_ms": statistics.median(v),
                   "ratio_to_ort": statistics.median(a / b for a, b in zip(v, ms["ort"]))} for m, v in ms.items()}
        par = parity(runs, ort, images, base.spec, base.charset)
        results["models"][name] = {"latency_48x320": lat, "parity_vs_ort": par}
        print(f"{name}: " + ", ".join(f"{m} {v['median_ms']:.1f} ms ({v['ratio_to_ort']:.2f}x)" for m, v in lat.items()),
              file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base_name = out / ("modes-" + time.strftime("%Y%m%d-%H%M"))
    base_name.with_suffix(".json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    rows = [f"# Inference modes, {results['date']}, {args.threads} threads", "",
            json.dumps(results["machine"]), "",
            "| model | mode | 48x320 ms | / ORT | text = ORT (per line) | max abs Δscore | 250 lines s |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results["models"].items():
        for m, v in r["latency_48x320"].items():
            pv = r["parity_vs_ort"].get(m)
            rows.append(f"| {name} | {m} | {v['median_ms']:.1f} | {v['ratio_to_ort']:.2f}x | "
                        + (f"{pv['text_agree']}/{pv['lines']} | {pv['max_abs_dscore']:.1e} | {pv['seconds']:.1f} |"
                           if pv else "reference | - | - |"))
    base_name.with_suffix(".md").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

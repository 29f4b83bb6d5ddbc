"""GPU check: parity of the converted models on CUDA against the official runtime, and fp32/fp16/bf16 throughput.

    python benchmarks/gpu_check.py --model PP-OCRv6_small_rec --onnx PP-OCRv6_rec_small.onnx \
        --model PP-OCRv4_mobile_rec --onnx ch_PP-OCRv4_rec_infer.onnx --out results/

Each ``--model`` (registry name, converted from its ``--onnx`` with the conversion tool's own functions; the
embedded default needs no conversion) is run on the rendered lines (tests/data/lines) and two random tensors:

* parity: CUDA fp32 (TF32 off) against ONNX Runtime on the official export (CPU) and against our CPU model:
  max / median |Δp| and text agreement; CUDA fp16 and bf16 (autocast) against ONNX Runtime: text agreement
  and max |Δp|;
* throughput: lines per second for a [batch, 3, 48, 320] input (PaddleOCR's batch width for lines up to
  320/48) in fp32 (TF32 off and on), fp16 and bf16 autocast, timed with CUDA events after warm-up.

Writes ``gpu_check.json`` into ``--out``. Needs a CUDA device (``--device cpu`` runs the parity part only, as a
dry run), torch, onnx and onnxruntime.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load(name, onnx_path):
    from conversion import convert as cv
    from ppocr_torch import load_model, registry

    entry = registry.get_entry(name)
    if onnx_path is None:
        return load_model(entry.name), None
    model, _, _, _ = cv.convert_registry_model(entry.name, source_path=onnx_path)
    return model, Path(onnx_path)


def probs(model, x, device, dtype=None):
    with torch.inference_mode():
        t = torch.from_numpy(x).to(device)
        if dtype is None:
            return model(t).float().cpu().numpy()
        with torch.autocast(device_type=device.type, dtype=dtype):
            return model(t).float().cpu().numpy()


def parity(model, onnx_path, device, limit):
    from conversion.convert import parity_inputs
    from conversion.parity import OnnxRunner
    from ppocr_torch.decode import ctc_greedy_decode

    cpu_model = model
    gpu_model = __import__("copy").deepcopy(model).to(device).eval()
    runner = OnnxRunner(onnx_path) if onnx_path else None
    charset = model.charset
    rows = {"fp32_vs_official": [], "fp32_vs_torch_cpu": [], "fp16_vs_official": [], "bf16_vs_official": []}
    text = {k: 0 for k in rows}
    inputs = parity_inputs(model.spec, limit=limit)
    for _, x in inputs:
        ours_cpu = probs(cpu_model, x, torch.device("cpu"))
        ref = next(iter(runner.run(x).values())) if runner else ours_cpu
        outs = {"fp32": probs(gpu_model, x, device)}
        if device.type == "cuda":
            outs["fp16"] = probs(gpu_model, x, device, torch.float16)
            outs["bf16"] = probs(gpu_model, x, device, torch.bfloat16)
        ref_text = ctc_greedy_decode(ref, charset)[0].text
        for key, other in (("fp32_vs_official", ref), ("fp32_vs_torch_cpu", ours_cpu)):
            rows[key].append(float(np.abs(outs["fp32"].astype(np.float64) - other).max()))
            text[key] += ctc_greedy_decode(outs["fp32"], charset)[0].text == ctc_greedy_decode(other, charset)[0].text
        for half in ("fp16", "bf16"):
            if half in outs:
                rows[f"{half}_vs_official"].append(float(np.abs(outs[half].astype(np.float64) - ref).max()))
                text[f"{half}_vs_official"] += ctc_greedy_decode(outs[half], charset)[0].text == ref_text
    n = len(inputs)
    return {k: {"inputs": len(v), "max_abs_prob": max(v), "median_abs_prob": float(np.median(v)),
                "text_agreement": text[k] / n} for k, v in rows.items() if v}


def throughput(model, device, batch, iters=30):
    gpu_model = __import__("copy").deepcopy(model).to(device).eval()
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (batch, 3, model.spec.input_height, 320))
                         .astype(np.float32)).to(device)
    torch.backends.cudnn.benchmark = True
    out = {}
    for label, dtype, tf32 in (("fp32", None, False), ("fp32_tf32", None, True), ("fp16", torch.float16, True),
                               ("bf16", torch.bfloat16, True)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        with torch.inference_mode(), torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            for _ in range(5):
                gpu_model(x)
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                gpu_model(x)
            end.record()
            torch.cuda.synchronize()
        ms = start.elapsed_time(end) / iters
        out[label] = {"batch": batch, "ms_per_batch": round(ms, 3), "lines_per_s": round(batch * 1000 / ms, 1)}
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", required=True, help="registry model name (repeatable)")
    p.add_argument("--onnx", action="append", default=[], help="its official ONNX export (same order; 'none')")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--limit", type=int, default=None, help="only the first N rendered lines")
    p.add_argument("--out", default=".")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 parity: no TF32
    result = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
              "models": {}}
    onnx = args.onnx + ["none"] * (len(args.model) - len(args.onnx))
    for name, onnx_path in zip(args.model, onnx):
        t0 = time.time()
        model, path = load(name, None if onnx_path == "none" else onnx_path)
        r = {"parity": parity(model, path, device, args.limit)}
        if device.type == "cuda":
            r["throughput"] = throughput(model, device, args.batch)
        r["seconds"] = round(time.time() - t0, 1)
        result["models"][name] = r
        print(json.dumps({name: r}, indent=1), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Parity of a converted model against the official runtime, overall and layer by layer.

Layer by layer: every paired parametric op's output in the official graph (ONNX Runtime, with the
intermediate tensors exposed as extra graph outputs; or Paddle's executor on a Paddle inference export, see
``paddle_runtime``) is compared with the same torch module's output on
the same input. Overall: probabilities, decoded text and score on fixed random tensors and real lines.
"""

import numpy as np
import torch

from ppocr_torch.decode import ctc_greedy_decode

from .match import trace_slots

DEFAULT_TOLERANCE = 1e-5


def _stage_of(name):
    if name.startswith("backbone."):
        return "backbone"
    if name.startswith(("neck.", "head.ctc_encoder.")):
        return "neck"
    return "head"


class OnnxRunner:
    """ONNX Runtime session over a model file, optionally exposing intermediate tensors."""

    def __init__(self, path, extra_outputs=(), optimize=True):
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(path))
        have = {o.name for o in model.graph.output}
        for name in extra_outputs:
            if name not in have:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
                have.add(name)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if not optimize:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self.session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, x):
        outs = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})
        return dict(zip(self.output_names, outs))


def runtime_name(path):
    """The official runtime that a source file is checked against: ONNX Runtime for ONNX exports, Paddle
    Inference for Paddle inference exports."""
    from .convert import source_format

    return "paddle_inference" if source_format(path) == "paddle_inference" else "onnxruntime"


def make_runner(path, extra_outputs=(), optimize=True):
    """The official runtime's runner for ``path`` (``run(x) -> {name: array}``, final output first).

    ``optimize=False`` is the same runtime without its graph optimisations (ONNX Runtime: ORT_DISABLE_ALL;
    Paddle Inference: IR passes and oneDNN off, plain CPU kernels): the pair measures the runtime's own
    fp32 spread."""
    if runtime_name(path) == "paddle_inference":
        from .paddle_runtime import PaddleRunner

        return PaddleRunner(path, extra_outputs, optimize=optimize)
    return OnnxRunner(path, extra_outputs, optimize=optimize)


def layer_parity(model, pairs, onnx_path, x):
    """Per-op max/mean |diff| between torch modules and their paired source ops for input ``x``."""
    runner = make_runner(onnx_path, [op.output for _, op in pairs if op.output])
    ref = runner.run(x)
    _, outs = trace_slots(model, torch.from_numpy(x))
    rows = []
    for i, (slot, op) in enumerate(pairs):
        key = (slot.name, slot.layer)
        if op.output not in ref or key not in outs:
            continue  # e.g. the first layer of a multi-layer LSTM has no torch-side tensor
        r = ref[op.output]
        t = outs[key].detach().numpy()
        if slot.kind == "lstm" and r.ndim == 4:  # ONNX Y [T, dirs, B, H] -> [B, T, dirs*H]
            r = r.transpose(2, 0, 1, 3).reshape(r.shape[2], r.shape[0], -1)
        elif slot.kind == "lstm" and r.ndim == 3:  # Paddle rnn output, time-major [T, B, dirs*H]
            r = r.transpose(1, 0, 2)
        if r.shape != t.shape:
            rows.append({"op": i, "module": slot.name, "kind": slot.kind, "error": f"shape {r.shape} vs {t.shape}"})
            continue
        d = np.abs(r.astype(np.float64) - t)
        scale = float(np.abs(r).max()) or 1.0
        rows.append({"op": i, "module": slot.name, "kind": slot.kind, "stage": _stage_of(slot.name),
                     "max_abs": float(d.max()), "mean_abs": float(d.mean()), "rel": float(d.max()) / scale})
    return rows


def output_parity(model, onnx_path, inputs, charset, tolerance=DEFAULT_TOLERANCE, spread_factor=10.0,
                  accuracy_cap=1e-3):
    """Compare final probabilities, text and score on ``inputs`` ([(label, array[1,3,H,W])...]).

    fp32 rounding differs between any two implementations, and a network amplifies it on some inputs
    (near-ties between classes). Each input passes when its max |diff| of probabilities (and of the score) is

    1. <= ``tolerance`` (1e-5), or
    2. <= ``spread_factor`` x the official runtime's disagreement with itself on that input (ONNX Runtime or
       Paddle Inference with and without graph optimizations: same graph and weights, other kernels), or
    3. where the official runtime itself is off: our fp32 output is no farther from an exact float64
       evaluation of the same weights than twice the official runtime's fp32 output is (plus ``tolerance``),
       and the official runtime is within ``accuracy_cap`` of that float64 evaluation (so a wrong
       conversion cannot hide behind a large "runtime error").

    The text must agree on every input, the median |diff| must stay <= ``tolerance``, and the layer-by-layer
    report (``layer_parity``) locates any real divergence.
    """
    runner, plain = make_runner(onnx_path), make_runner(onnx_path, optimize=False)
    items, model64 = [], None
    for label, x in inputs:
        ref = next(iter(runner.run(x).values()))
        ref2 = next(iter(plain.run(x).values()))
        with torch.inference_mode():
            out = model(torch.from_numpy(x)).numpy()
        d = float(np.abs(ref.astype(np.float64) - out).max())
        spread = float(np.abs(ref.astype(np.float64) - ref2).max())
        r_dec, t_dec = ctc_greedy_decode(ref, charset), ctc_greedy_decode(out, charset)
        same = all(a.text == b.text for a, b in zip(r_dec, t_dec))
        sdiff = max(abs(a.score - b.score) for a, b in zip(r_dec, t_dec))
        bar = max(tolerance, spread_factor * spread)
        item = {"input": label, "max_abs": d, "runtime_spread": spread, "bar": bar,
                "within": d <= bar and sdiff <= bar, "text_equal": same, "score_diff": sdiff,
                "official_text": r_dec[0].text, "torch_text": t_dec[0].text}
        if not item["within"]:
            if model64 is None:
                import copy

                model64 = copy.deepcopy(model).double().eval()
            with torch.inference_mode():
                exact = model64(torch.from_numpy(x).double()).numpy()
            ours_err = float(np.abs(out - exact).max())
            official_err = float(np.abs(ref - exact).max())
            item.update(ours_vs_float64=ours_err, official_vs_float64=official_err,
                        within=official_err <= accuracy_cap and ours_err <= 2 * official_err + tolerance)
        items.append(item)
    diffs = np.array([i["max_abs"] for i in items]) if items else np.zeros(1)
    spreads = np.array([i["runtime_spread"] for i in items]) if items else np.zeros(1)
    text_ok = sum(i["text_equal"] for i in items)
    score = max((i["score_diff"] for i in items), default=0.0)
    median = float(np.median(diffs))
    return {
        "inputs": len(items), "max_abs_prob": float(diffs.max()), "median_abs_prob": median,
        "p99_abs_prob": float(np.percentile(diffs, 99)), "inputs_over_tolerance": int((diffs > tolerance).sum()),
        "runtime_self_spread_max": float(spreads.max()), "max_abs_score": score,
        "inputs_judged_by_float64": sum("ours_vs_float64" in i for i in items),
        "text_agreement": text_ok / max(len(items), 1), "tolerance": tolerance, "spread_factor": spread_factor,
        "passed": text_ok == len(items) and median <= tolerance and all(i["within"] for i in items),
        "items": items,
    }


def paddle_output_parity(model, export, inputs, charset, tolerance=DEFAULT_TOLERANCE, spread_factor=10.0):
    """``output_parity`` against Paddle Inference (``export``: a folder, inference.json or .pdmodel)."""
    return output_parity(model, export, inputs, charset, tolerance, spread_factor)


def summarize_layers(rows):
    """Worst op per stage, and the first op whose relative error jumps (where divergence starts)."""
    stages = {}
    for r in rows:
        if "error" in r:
            continue
        s = stages.setdefault(r["stage"], {"ops": 0, "max_abs": 0.0, "worst_module": None})
        s["ops"] += 1
        if r["max_abs"] >= s["max_abs"]:
            s["max_abs"], s["worst_module"] = r["max_abs"], r["module"]
    first_bad = next((r for r in rows if "error" in r or r["rel"] > 1e-3), None)
    return {"stages": stages, "first_divergent_op": first_bad}

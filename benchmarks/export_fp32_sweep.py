"""Where ONNX Runtime and torch differ on an exported model: every fp32 evaluation against float64 (docs/export.md).

    python benchmarks/export_fp32_sweep.py [MODEL] [--every 12] [--width 1500] [--threads 1]

Exports MODEL (default PP-OCRv6_small_rec) to ONNX twice, probabilities and logits, and compares on the packaged
sample line stretched to 160/320/777/1500 and on every ``--every``-th line of tests/data/lines tiled to ``--width``:
torch's oneDNN deploy form, torch's plain modules, ONNX Runtime at three graph optimisation levels, and the plain
model in float64 (the exact function of the same weights). Prints one JSON object per input, then per comparison the
max, the median and the number of inputs above 1e-5.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_ALL")


def _logits_model(model):
    """A copy whose CTC heads return logits in eval mode too."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if type(module).__name__ == "CTCHead":
            module.forward = module.logits
    return model


def _inputs(every: int, width: int) -> dict:
    from helpers import read_labels
    from ppocr_torch.export import _sample_bgr, _stretched
    from ppocr_torch.preprocess import _resize_norm_into

    inputs = {f"sample_{w}": _stretched(_sample_bgr(), 48, w)[None] for w in (160, 320, 777, 1500)}
    for path, _ in read_labels()[::every]:
        img = cv2.imread(str(path))
        line = np.zeros((3, 48, -(-48 * img.shape[1] // img.shape[0])), np.float32)
        _resize_norm_into(img, line)
        inputs[path.name] = np.ascontiguousarray(np.tile(line, (1, 1, -(-width // line.shape[2])))[None, :, :, :width])
    return inputs


def main(argv=None) -> int:
    import onnxruntime as ort

    import ppocr_torch
    from ppocr_torch.export import export_model
    from ppocr_torch.models.onednn import to_plain

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default="PP-OCRv6_small_rec")
    ap.add_argument("--every", type=int, default=12)
    ap.add_argument("--width", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = ppocr_torch.load_model(args.model)
    plain = to_plain(copy.deepcopy(model)).eval()
    exact = copy.deepcopy(plain).double()
    plain_logits, exact_logits = _logits_model(plain).eval(), _logits_model(exact).eval()
    folder = Path(tempfile.mkdtemp())
    export_model(model, folder / "probs.onnx", "onnx", verify=False)
    with torch.no_grad():
        torch.onnx.export(_logits_model(plain).eval(), (torch.zeros(2, 3, 48, 320),), str(folder / "logits.onnx"),
                          dynamo=False, opset_version=17, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "b", 3: "w"}, "y": {0: "b", 1: "t"}})
    sessions = {}
    for level in LEVELS:
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        options.intra_op_num_threads = args.threads
        for kind in ("probs", "logits"):
            sessions[kind, level] = ort.InferenceSession(str(folder / f"{kind}.onnx"), options,
                                                         providers=["CPUExecutionProvider"])

    def diff(a, b):
        return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())

    rows = []
    with torch.no_grad():
        for name, x in _inputs(args.every, args.width).items():
            t = torch.from_numpy(x)
            p_onednn, p_plain, p_exact = model(t).numpy(), plain(t).numpy(), exact(t.double()).numpy()
            l_plain, l_exact = plain_logits(t).numpy(), exact_logits(t.double()).numpy()
            row = {"input": name, "onednn-f64": diff(p_onednn, p_exact), "plain-f64": diff(p_plain, p_exact),
                   "onednn-plain": diff(p_onednn, p_plain), "logits plain-f64": diff(l_plain, l_exact)}
            for level in LEVELS:
                p_ort = sessions["probs", level].run(None, {"x": x})[0]
                l_ort = sessions["logits", level].run(None, {"x": x})[0]
                tag = level[4:]
                row.update({f"{tag} ort-f64": diff(p_ort, p_exact), f"{tag} ort-onednn": diff(p_ort, p_onednn),
                            f"{tag} ort-plain": diff(p_ort, p_plain), f"{tag} logits ort-f64": diff(l_ort, l_exact)})
            rows.append(row)
            print(json.dumps({k: (float(f"{v:.3g}") if isinstance(v, float) else v) for k, v in row.items()}),
                  flush=True)
    print(f"\n{len(rows)} inputs; per comparison: max, median, inputs above 1e-5")
    for key in rows[0]:
        if key != "input":
            values = [r[key] for r in rows]
            print(f"{key:28s} {max(values):.3g}  {np.median(values):.3g}  {sum(v > 1e-5 for v in values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

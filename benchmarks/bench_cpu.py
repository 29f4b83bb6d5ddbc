"""CPU speed, side by side in one run: ppocr_torch (deploy form) vs ONNX Runtime on the official ONNX export.

    python benchmarks/bench_cpu.py [--threads 2] [--repeat 10] [--models PP-OCRv6_small_rec ch_PP-OCRv2_rec]

Prints milliseconds per batch (median of --repeat runs after a warm-up) and the ratio torch / ORT
(< 1 means ppocr_torch is faster). Both run the same input tensors with the same thread count.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _time(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--models", nargs="+", default=["PP-OCRv6_small_rec", "ch_PP-OCRv2_rec"])
    p.add_argument("--shapes", nargs="+", default=["1x320", "8x320", "8x960"], help="BATCHxWIDTH")
    args = p.parse_args(argv)

    import numpy as np
    import onnxruntime as ort
    import torch

    from conversion.official import fetch_source
    from ppocr_torch import load_model, registry

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} threads")
    print(f"{'model':22s} {'batch x width':>13s} {'torch ms':>9s} {'ORT ms':>9s} {'torch/ORT':>9s}")
    for name in args.models:
        entry = registry.get_entry(name)
        onnx_path, _ = fetch_source(entry.official["sources"][0])
        try:
            model = load_model(name, download=False)
        except FileNotFoundError:  # not embedded nor cached: convert it from the official file into the cache
            from conversion import convert as cv
            from ppocr_torch.download import cache_dir

            converted, _, _, meta = cv.convert_registry_model(name)
            cv.write_checkpoint(converted, cache_dir(), meta)
            model = load_model(name, download=False)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0].name
        for shape in args.shapes:
            b, w = (int(v) for v in shape.split("x"))
            x = np.random.default_rng(0).uniform(-1, 1, (b, 3, entry.spec.input_height, w)).astype(np.float32)
            xt = torch.from_numpy(x)

            def run_torch():
                with torch.inference_mode():
                    model(xt)

            t_ms = _time(run_torch, args.repeat)
            o_ms = _time(lambda: sess.run(None, {inp: x}), args.repeat)
            print(f"{name:22s} {shape:>13s} {t_ms:9.1f} {o_ms:9.1f} {t_ms / o_ms:9.2f}")


if __name__ == "__main__":
    main()

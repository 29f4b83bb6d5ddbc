"""Whole-page OCR, ours against RapidOCR 3.10 with the same official models, on the page photos of
tests/data/pages (SOURCES.md): time per page and end-to-end accuracy against the hand-made ground truth.

    pip install -r benchmarks/requirements.txt             # rapidocr (the peer)
    python benchmarks/pages.py --threads 2                  # -> benchmarks/results/pages-<date>.{json,md}
    python benchmarks/pages.py --pages gym_sign.jpg --rounds 1 --no-save    # a quick check on one page

Both sides get the same detector settings (the detector's own, PaddleOCR's DetResizeForTest default 736/"min" and
its inference.yml thresholds), no line classifier, text_score 0.5, and RapidOCR's own resizing and padding before
detection switched off, so that they compute the same thing: ours runs the converted torch detector and
recogniser, RapidOCR the official ONNX files under ONNX Runtime. Ours is timed in its default recognition batching
(PaddleOCR's, "paddle", 6 lines a batch, what RapidOCR does) and in "throughput" (each line at its width bucket). Each page is read ``--rounds``
times per engine, in alternating order, after one warm-up; the median is reported.

Wall time and CPU time (the process's, all threads) are both recorded: on a shared machine the CPU time is the
steadier comparison.

Accuracy (:func:`accuracy`): each ground-truth line is paired with the nearest unused output line; "read" counts
the exact ones (spaces removed), character accuracy is 1 - edit distance / ground-truth characters.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
PAGES = ROOT / "tests" / "data" / "pages"
RESULTS = ROOT / "benchmarks" / "results"


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def accuracy(texts: list[str], truth: list[str]) -> tuple[int, float]:
    """(ground-truth lines read exactly, character accuracy) of output ``texts`` against ``truth``, spaces removed.

    Each ground-truth line is paired with the unused output line nearest to it in edit distance (a line with no
    output left counts all its characters as errors); character accuracy = 1 - errors / ground-truth characters.
    Extra output lines (pictograms, background text) are not counted; the order of the lines does not matter."""
    squash = lambda s: "".join(s.split())  # noqa: E731
    left = [squash(t) for t in texts]
    read = errors = 0
    for line in map(squash, truth):
        if not left:
            errors += len(line)
            continue
        best = min(range(len(left)), key=lambda i: edit_distance(line, left[i]))
        errors += edit_distance(line, left[best])
        read += left[best] == line
        left.pop(best)
    return read, max(0.0, 1 - errors / max(1, sum(len(squash(t)) for t in truth)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="PP-OCRv6_small", choices=("PP-OCRv6_small",))
    parser.add_argument("--pages", nargs="*", default=None, help="page file names (default: all)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of both engines (default: all)")
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args(argv)

    import torch

    from page_reference import rapidocr_pipeline
    from ppocr_torch.page.pipeline import OCR

    if args.threads:
        torch.set_num_threads(args.threads)
    truth = json.loads((PAGES / "ground_truth.json").read_text(encoding="utf-8"))
    names = args.pages or sorted(truth)
    ours = {"default": OCR.from_preset(args.pipeline, num_threads=args.threads)}  # PaddleOCR's batching, 6 a batch
    ours["throughput"] = OCR(det=ours["default"].det, rec=ours["default"].recognizer.model, rec_mode="throughput")
    ref = rapidocr_pipeline(args.pipeline, ours["default"].det_settings, threads=args.threads)
    import cv2

    engines = {"ours": lambda img: [line.text for line in ours["default"](img)],
               "ours_throughput": lambda img: [line.text for line in ours["throughput"](img)],
               "rapidocr": lambda img: list(ref(img).txts or ())}
    rows = []
    for name in names:
        img = cv2.imread(str(PAGES / name))
        times = {k: [] for k in engines}
        cpu = {k: [] for k in engines}
        texts = {k: fn(img) for k, fn in engines.items()}  # warm-up, and the texts
        for r in range(args.rounds):
            for k in (list(engines) if r % 2 == 0 else list(engines)[::-1]):
                t, c = time.perf_counter(), time.process_time()
                engines[k](img)
                times[k].append(time.perf_counter() - t)
                cpu[k].append(time.process_time() - c)
        row = {"page": name, "size": list(img.shape[:2]), "truth_lines": len(truth[name])}
        for k in engines:
            read, char_acc = accuracy(texts[k], truth[name])
            row[k] = {"ms": 1000 * statistics.median(times[k]), "cpu_ms": 1000 * statistics.median(cpu[k]),
                      "lines": len(texts[k]), "read": read, "char_acc": char_acc, "texts": texts[k]}
        rows.append(row)
        print(f"{name:24s} " + "  ".join(f"{k} {row[k]['ms']:7.1f} ms (cpu {row[k]['cpu_ms']:.0f}) "
                                         f"{row[k]['read']}/{len(truth[name])} "
                                         f"{row[k]['char_acc']:.3f}" for k in engines), flush=True)
    total = {k: {"ms": sum(r[k]["ms"] for r in rows), "read": sum(r[k]["read"] for r in rows),
                 "char_acc": statistics.mean(r[k]["char_acc"] for r in rows)} for k in engines}
    n_truth = sum(r["truth_lines"] for r in rows)
    lines = ["| page | ours ms | ours (throughput batching) ms | RapidOCR ms | ours read | RapidOCR read |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['page']} | {r['ours']['ms']:.0f} | {r['ours_throughput']['ms']:.0f} | "
                     f"{r['rapidocr']['ms']:.0f} | {r['ours']['read']}/{r['truth_lines']} "
                     f"({r['ours']['char_acc']:.3f}) | {r['rapidocr']['read']}/{r['truth_lines']} "
                     f"({r['rapidocr']['char_acc']:.3f}) |")
    lines.append(f"| all ({len(rows)} pages) | {total['ours']['ms']:.0f} | {total['ours_throughput']['ms']:.0f} | "
                 f"{total['rapidocr']['ms']:.0f} | {total['ours']['read']}/{n_truth} "
                 f"({total['ours']['char_acc']:.3f}) | {total['rapidocr']['read']}/{n_truth} "
                 f"({total['rapidocr']['char_acc']:.3f}) |")
    print("\n".join(lines))
    if not args.no_save:
        stamp = time.strftime("%Y%m%d-%H%M")
        RESULTS.mkdir(parents=True, exist_ok=True)
        meta = {"pipeline": args.pipeline, "threads": args.threads or torch.get_num_threads(), "rounds": args.rounds,
                "torch": torch.__version__}
        (RESULTS / f"pages-{stamp}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1,
                                                                ensure_ascii=False), encoding="utf-8")
        (RESULTS / f"pages-{stamp}.md").write_text(
            f"# Page OCR, {args.pipeline}, {meta['threads']} threads, median of {args.rounds} rounds "
            f"({time.strftime('%Y-%m-%d %H:%M')})\n\nread: ground-truth lines read exactly / all (character "
            f"accuracy)\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Lines/s of ``ppocr_torch.ray.recognize_dataset`` on a local Ray instance, per actor (1 CPU, 1 thread each), next
to the same lines read in this process by one ``Recognizer`` with one thread (Ray's own cost).

    python benchmarks/ray_throughput.py [--repeat 2] [--actors 1 2] [--modes per_image throughput]

The 250 rendered test lines (tests/data/lines, 1-68 characters), ``--repeat`` times, as a ``path``
column. Each Ray figure is one execution, from the first batch handed to the pool to the last row back, actor
start and model load included (printed apart: the time to the first row). The in-process figure also gives lines per
CPU-second of its one thread (less sensitive to a busy host than lines/s). Prints one JSON object per figure and
the load average before and after (the host is shared: state it with the numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _lines(repeat: int) -> list[str]:
    folder = ROOT / "tests" / "data" / "lines"
    return sorted(str(p) for p in folder.glob("*.png")) * repeat


def _in_process(paths: list[str], mode: str) -> dict:
    from ppocr_torch import Recognizer

    rec = Recognizer(num_threads=1, mode=mode)
    rec(paths[:8])  # warm: model loaded, first shapes packed
    start, cpu = time.perf_counter(), time.process_time()
    rec(paths)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"engine": "Recognizer in process", "mode": mode, "threads": 1, "lines": len(paths),
            "seconds": round(elapsed, 2), "lines_per_s": round(len(paths) / elapsed, 1),
            "cpu_seconds": round(cpu, 2), "lines_per_cpu_s": round(len(paths) / cpu, 1)}


def _on_ray(ray, paths: list[str], mode: str, actors: int) -> dict:
    from ppocr_torch.ray import recognize_dataset

    ds = ray.data.from_items([{"path": p} for p in paths])
    res = recognize_dataset(ds, column="path", concurrency=actors, num_cpus=1, batch_size=32, mode=mode)
    start = time.perf_counter()
    first = None
    rows = 0
    for batch in res.iter_batches(batch_size=None, batch_format="numpy"):
        first = first or time.perf_counter() - start
        rows += len(batch["text"])
    elapsed = time.perf_counter() - start
    assert rows == len(paths), (rows, len(paths))
    return {"engine": "recognize_dataset", "mode": mode, "actors": actors, "cpus_per_actor": 1, "lines": rows,
            "seconds": round(elapsed, 2), "first_rows_after_s": round(first, 2),
            "lines_per_s": round(rows / elapsed, 1), "lines_per_s_per_actor": round(rows / elapsed / actors, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--modes", nargs="+", default=["per_image", "throughput"])
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    print(json.dumps({"loadavg_before": os.getloadavg(), "cpus": os.cpu_count()}), flush=True)
    paths = _lines(args.repeat)
    for mode in args.modes:
        print(json.dumps(_in_process(paths, mode)), flush=True)
    import ray

    ray.init(num_cpus=max(args.actors) + 1, include_dashboard=False, object_store_memory=200 * 1024 ** 2,
             log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        for mode in args.modes:
            for actors in args.actors:
                print(json.dumps(_on_ray(ray, paths, mode, actors)), flush=True)
    finally:
        ray.shutdown()
    print(json.dumps({"loadavg_after": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()

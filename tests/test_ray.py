"""ppocr_torch.ray: the Ray Data callable class, recognize_dataset and `recognize --ray`, on a local Ray instance
started here (2 CPUs, small object store, no dashboard). Reference: Recognizer on the same inputs in this process.

Scores: the actors batch the lines as the blocks Ray hands them, not as one Recognizer call does; in per_image
mode a line's preprocessing does not depend on its batch, but the kernels that run it can (batch size), so scores
are compared to 1e-6 and texts exactly."""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import read_labels

from ppocr_torch.errors import InvalidImageError, MissingDependencyError

# Ray's own DataContext warns about its deprecated options when a dataset is built
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

N_LINES = 24
SCORE_TOL = 1e-6


def _lines():
    return [str(p) for p, _ in read_labels()[:N_LINES]]


@pytest.fixture(scope="module")
def expected():
    from ppocr_torch import Recognizer

    paths = _lines()
    return {p: (r.text, r.score) for p, r in zip(paths, Recognizer(num_threads=1)(paths))}


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ppocr-torch[ray]')")
    pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'ppocr-torch[ray]')")
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}  # no usage report, no token file
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 ** 2, log_to_driver=False,
             logging_level="ERROR", configure_logging=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    yield ray
    ray.shutdown()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _check_rows(rows, expected, bad=()):
    """Each expected line once, with the Recognizer's text and score; each ``bad`` input once, with an error."""
    by_path = {}
    for row in rows:
        assert row["path"] not in by_path, f"duplicated row {row['path']}"
        by_path[row["path"]] = row
    assert set(by_path) == set(expected) | set(bad)
    for path, (text, score) in expected.items():
        row = by_path[path]
        assert row["error"] is None, row
        assert row["text"] == text, path
        assert abs(row["score"] - score) <= SCORE_TOL, (path, row["score"], score)
    for path in bad:
        row = by_path[path]
        assert row["text"] is None and row["error"], row
        assert row["score"] is None or np.isnan(row["score"])


# -- without Ray: the callable class on its own, and the missing dependency -------------------------------------


def test_missing_ray_is_a_typed_error(monkeypatch):
    from ppocr_torch.ray import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'ppocr-torch\[ray\]'"):
        import_ray()


def test_callable_class_direct(expected, tmp_path):
    """numpy and pyarrow batches, bytes and paths, a bad row each: outside Ray, no actor."""
    pa = pytest.importorskip("pyarrow")
    from ppocr_torch.ray import RecognizeBatch

    paths = _lines()[:6]
    want = {p: expected[p] for p in paths}
    fn = RecognizeBatch(num_threads=1)
    missing = str(tmp_path / "missing.png")
    out = fn({"path": np.array(paths + [missing], dtype=object)})
    assert set(out) == {"path", "text", "score", "error"}
    _check_rows([dict(zip(out, vals)) for vals in zip(*out.values())], want, bad=[missing])
    assert out["error"][-1] == "file not found"
    table = pa.table({"bytes": [open(p, "rb").read() for p in paths] + [b"not an image"], "path": paths + ["junk"]})
    out = fn(table)
    assert out.column_names == ["path", "text", "score", "error"]  # the image bytes are dropped
    _check_rows(out.to_pylist(), want, bad=["junk"])
    with pytest.raises(ValueError, match="already has column"):
        fn({"path": np.array(paths[:1], dtype=object), "text": np.array(["label"], dtype=object)})


def test_an_unexpected_failure_stays_in_its_row(expected):
    """When recognising the batch at once fails with something else than an unusable image, the rows are read one at
    a time, and only the row that fails again gets the error."""
    from ppocr_torch.ray import RecognizeBatch

    paths = _lines()[:3]
    fn = RecognizeBatch(num_threads=1)
    real = fn.recognizer.recognize

    def flaky(images, errors="raise"):
        if isinstance(images, list) or images == paths[1]:
            raise RuntimeError("kernel failure\nsecond line")
        return real(images, errors=errors)

    fn.recognizer.recognize = flaky
    texts, scores, errors = fn.recognize_values(paths)
    assert errors == [None, "RuntimeError: kernel failure", None]
    assert texts[0] == expected[paths[0]][0] and texts[2] == expected[paths[2]][0] and texts[1] is None
    assert np.isnan(scores[1]) and abs(scores[0] - expected[paths[0]][1]) <= SCORE_TOL


def test_driver_checkpoint_is_loaded_and_checked(tmp_path):
    """The actor loads the driver's checkpoint when it sees the file, refuses one of another model, and resolves
    the name itself when the file is not on its node."""
    from ppocr_torch.download import resolve_weights
    from ppocr_torch.errors import SpecMismatchError
    from ppocr_torch.ray import RecognizeBatch, resolve_model
    from ppocr_torch.registry import get_entry

    assert resolve_model("PP-OCRv6_small_rec") == {"model": "PP-OCRv6_small_rec", "checkpoint": None}  # embedded
    own = tmp_path / "copy.pth"
    shutil.copy(resolve_weights(get_entry("PP-OCRv6_small_rec")), own)
    assert resolve_model(str(own)) == {"model": str(own), "checkpoint": None}
    fn = RecognizeBatch("PP-OCRv6_small_rec", checkpoint=str(own), num_threads=1, download=False)
    assert fn.recognizer.spec.name == "PP-OCRv6_small_rec"
    with pytest.raises(SpecMismatchError, match="PP-OCRv5_mobile_rec"):
        RecognizeBatch("PP-OCRv5_mobile_rec", checkpoint=str(own), num_threads=1, download=False)
    fn = RecognizeBatch("PP-OCRv6_small_rec", checkpoint=str(tmp_path / "not-on-this-node.pth"), num_threads=1,
                        download=False)
    assert fn.recognizer.spec.name == "PP-OCRv6_small_rec"


def test_uri_inputs(tmp_path, monkeypatch):
    """A URI column value is read with pyarrow's file systems, within the file size limit; a failure is that row's."""
    pytest.importorskip("pyarrow")
    from ppocr_torch.ray import _as_input, _read_uri

    line = _lines()[0]
    data = open(line, "rb").read()
    assert _as_input(Path(line).as_uri()) == line  # file:// is a local path
    assert _read_uri(Path(line).as_uri()) == data
    err = _as_input("nosuchscheme://bucket/x.png")
    assert isinstance(err, InvalidImageError) and "cannot be read" in str(err)
    assert "not a file" in str(_read_uri(tmp_path.as_uri()))
    monkeypatch.setenv("PPOCR_TORCH_MAX_FILE_BYTES", str(len(data) - 1))
    err = _read_uri(Path(line).as_uri())
    assert isinstance(err, InvalidImageError) and "above the limit" in str(err)


def test_cli_refuses_a_bad_checkpoint_before_the_job(ray_session, tmp_path, capsys):
    from ppocr_torch.cli import main

    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    listing = tmp_path / "list.txt"
    listing.write_text(_lines()[0] + "\n", encoding="utf-8")
    assert main(["recognize", "--ray", "--list", str(listing), "--out", str(tmp_path / "out"),
                 "--model", str(bad)]) == 2
    assert "bad.pth" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# -- on a local Ray instance ------------------------------------------------------------------------------------


# Each Ray run starts an actor (a process that imports torch and loads the model), so the default lane has three:
# numpy with bytes here, pyarrow with paths in test_killed_actor_is_retried, numpy with paths in test_cli_ray (the
# fourth pairing, pyarrow with bytes, runs without Ray in test_callable_class_direct); all four run here under
# -m slow.
@pytest.mark.parametrize("batch_format", ["numpy", pytest.param("pyarrow", marks=pytest.mark.slow)])
def test_dataset_of_bytes(ray_session, expected, tmp_path, batch_format):
    """ray.data.read_binary_files(include_paths=True) -> recognize_dataset: the Recognizer's results."""
    from ppocr_torch.ray import recognize_dataset

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    ds = ray_session.data.read_binary_files(list(expected) + [str(bad)], include_paths=True)
    rows = recognize_dataset(ds, batch_size=8, batch_format=batch_format).take_all()
    assert all("bytes" not in r for r in rows)
    _check_rows(rows, expected, bad=[str(bad)])


@pytest.mark.slow
@pytest.mark.parametrize("batch_format", ["numpy", "pyarrow"])
def test_dataset_of_paths(ray_session, expected, tmp_path, batch_format):
    from ppocr_torch.ray import recognize_dataset

    missing = str(tmp_path / "missing.png")
    ds = ray_session.data.from_items([{"path": p} for p in list(expected) + [missing]])
    rows = recognize_dataset(ds, batch_size=8, batch_format=batch_format).take_all()
    _check_rows(rows, expected, bad=[missing])


# max_restarts/max_task_retries go through map_batches's **ray_remote_args, which Ray 2.60 warns it will drop in
# 2.64 (Ray Data's own defaults are already unbounded restarts and retries; bounded here so that a bug cannot loop).
@pytest.mark.filterwarnings("ignore:`ray_remote_args` is deprecated")
def test_killed_actor_is_retried(ray_session, expected, tmp_path):
    """The actor's process dies (os._exit) in the middle of its third batch; Ray restarts it and runs that batch
    again: the same rows as a clean run (the Recognizer's results), none lost, none twice. Pyarrow batches of
    paths."""
    from ppocr_torch.ray import RecognizeBatch, recognize_dataset

    marker = str(tmp_path / "crashed")
    calls = str(tmp_path / "calls")

    class CrashOnce(RecognizeBatch):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.n = 0

        def __call__(self, batch):
            self.n += 1
            with open(calls, "a") as fh:
                fh.write(f"{batch.num_rows}\n")
            if self.n == 3 and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)
            return super().__call__(batch)

    ds = ray_session.data.from_items([{"path": p} for p in expected])
    rows = recognize_dataset(ds, batch_size=4, batch_format="pyarrow", callable_class=CrashOnce, max_restarts=2,
                             max_task_retries=2).take_all()
    assert os.path.exists(marker), "the actor never crashed"
    assert len(rows) == len(expected)
    _check_rows(rows, expected)
    with open(calls) as fh:
        seen = sum(int(n) for n in fh)
    assert seen >= len(expected) + 1, "no batch was run again"


def test_cli_ray(ray_session, expected, tmp_path, monkeypatch, capsys):
    from ppocr_torch.cli import main

    paths = list(expected)[:8]
    missing = str(tmp_path / "missing.png")
    listing = tmp_path / "list.txt"
    monkeypatch.chdir(tmp_path)
    rel = os.path.relpath(paths[0], tmp_path)  # a relative path: against the current directory
    listing.write_text("\n".join([rel] + paths[1:] + ["", missing]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["recognize", "--ray", "--list", str(listing), "--out", str(out), "--threads", "1"]) == 1
    assert "9 line(s), 1 error(s)" in capsys.readouterr().err
    texts = [file.read_text(encoding="utf-8") for file in sorted(out.glob("*.json"))]
    assert any("请在黄线外排队等候" in t for t in texts)  # non-ASCII text as itself
    rows = [json.loads(line) for t in texts for line in t.splitlines() if line.strip()]
    assert not list(tmp_path.glob(".out.partial-*"))
    _check_rows(rows, {p: expected[p] for p in paths}, bad=[missing])
    # an output folder that holds files is refused before anything runs
    assert main(["recognize", "--ray", "--list", str(listing), "--out", str(out)]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_cli_usage_errors(tmp_path, capsys):
    from ppocr_torch.cli import main

    assert main(["recognize", "--ray", "--list", "x.txt"]) == 2
    assert "--ray needs one --list LIST and --out DIR" in capsys.readouterr().err
    assert main(["recognize", "--ray", "--list", "x.txt", "--out", "d", "--resume"]) == 2
    assert "not --ray" in capsys.readouterr().err
    assert main(["recognize", "--list", str(tmp_path / "x.txt"), "--out", str(tmp_path / "d")]) == 2  # the local job
    assert "x.txt" in capsys.readouterr().err
    pytest.importorskip("ray")
    assert main(["recognize", "--ray", "--list", str(tmp_path / "none.txt"), "--out", str(tmp_path / "o")]) == 2
    assert "cannot read the list" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    assert main(["recognize", "--ray", "--list", str(tmp_path / "empty.txt"), "--out", str(tmp_path / "o")]) == 2
    assert "names no input" in capsys.readouterr().err

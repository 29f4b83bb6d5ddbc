"""Tests of the command-line interface, run as ``python -m ppocr_torch`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = "samples/sample_line.png"
SAMPLE_TEXT = (ROOT / "samples" / "sample_line.txt").read_text(encoding="utf-8").strip("\n")


def _run(*args, tmp_path):
    env = dict(os.environ)
    env.update(PPOCR_TORCH_HOME=str(tmp_path / "cache"), PPOCR_TORCH_OFFLINE="1", LC_ALL="C", LANG="C",
               PYTHONIOENCODING="")
    proc = subprocess.run([sys.executable, "-m", "ppocr_torch", *args], cwd=ROOT, env=env,
                          capture_output=True, timeout=600)
    return proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")


def test_recognize_text(tmp_path):
    rc, out, err = _run("recognize", SAMPLE, tmp_path=tmp_path)
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 1
    path, text, score = lines[0].split("\t")
    assert path == SAMPLE and text == SAMPLE_TEXT
    assert 0.9 < float(score) <= 1.0 and len(score.split(".")[1]) == 4
    assert "Traceback" not in err


def test_threads_option(tmp_path):
    rc, out, err = _run("recognize", "--threads", "1", SAMPLE, tmp_path=tmp_path)
    assert rc == 0 and out.split("\t")[1] == SAMPLE_TEXT, err
    rc, _, err = _run("recognize", "--threads", "0", SAMPLE, tmp_path=tmp_path)
    assert rc == 2 and "Traceback" not in err


def test_recognize_json(tmp_path):
    rc, out, err = _run("recognize", "--json", "--mode", "paddle", "--batch-size", "2", SAMPLE, SAMPLE,
                        tmp_path=tmp_path)
    assert rc == 0, err
    objs = [json.loads(line) for line in out.splitlines()]
    assert len(objs) == 2
    for obj in objs:
        assert obj["path"] == SAMPLE and obj["text"] == SAMPLE_TEXT
        assert 0.9 < obj["score"] <= 1.0
        assert "".join(c[0] for c in obj["chars"]) == SAMPLE_TEXT
    assert SAMPLE_TEXT in out  # ensure_ascii=False: the characters themselves, not \\u escapes


def test_missing_file_exit_1_others_printed(tmp_path):
    missing = str(tmp_path / "nope.png")
    rc, out, err = _run("recognize", missing, SAMPLE, tmp_path=tmp_path)
    assert rc == 1
    assert f"ppocr-torch: error: {missing}: " in err and "not found" in err
    assert "Traceback" not in err
    assert out.splitlines() == [line for line in out.splitlines() if line.startswith(SAMPLE)]
    assert SAMPLE_TEXT in out

    rc, out, err = _run("recognize", "--json", missing, SAMPLE, tmp_path=tmp_path)
    assert rc == 1
    objs = [json.loads(line) for line in out.splitlines()]
    assert objs[0]["path"] == missing and "error" in objs[0]
    assert objs[1]["text"] == SAMPLE_TEXT


def test_unknown_model_exit_2(tmp_path):
    rc, out, err = _run("recognize", "--model", "no-such-model", SAMPLE, tmp_path=tmp_path)
    assert rc == 2
    assert "Traceback" not in err
    assert "no-such-model" in err and len(err.strip().splitlines()) == 1
    assert out == ""


def test_missing_weights_exit_2(tmp_path):
    # ch_PP-OCRv2_rec is either not converted or not in the (empty, offline) cache
    rc, out, err = _run("recognize", "--model", "ch_PP-OCRv2_rec", SAMPLE, tmp_path=tmp_path)
    assert rc == 2
    assert "Traceback" not in err and "ch_PP-OCRv2_rec" in err
    assert out == ""


def test_models_lists_registry(tmp_path):
    rc, out, err = _run("models", tmp_path=tmp_path)
    assert rc == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) >= {"PP-OCRv6_small_rec", "ch_PP-OCRv2_rec"}
    assert rows["PP-OCRv6_small_rec"].split()[-2:] == ["embedded", "verified"]
    assert " 18710 " in rows["PP-OCRv6_small_rec"] and " 48 " in rows["PP-OCRv6_small_rec"]
    assert " 6625 " in rows["ch_PP-OCRv2_rec"] and " 32 " in rows["ch_PP-OCRv2_rec"]


def test_usage_error_exit_2(tmp_path):
    rc, _, err = _run("recognize", tmp_path=tmp_path)
    assert rc == 2 and "usage" in err


def test_main_in_process(capsys):
    from ppocr_torch.cli import main

    assert main(["recognize", "--model", "no-such-model", str(ROOT / SAMPLE)]) == 2
    assert "no-such-model" in capsys.readouterr().err


def test_download_command(tmp_path):
    rc, out, err = _run("download", "PP-OCRv6_small_rec", tmp_path=tmp_path)
    assert rc == 0, err
    name, path = out.strip().split("\t")
    assert name == "PP-OCRv6_small_rec" and Path(path).is_file()
    rc, out, err = _run("download", "ch_PP-OCRv2_rec", tmp_path=tmp_path)
    assert rc == 2 and "ch_PP-OCRv2_rec" in err and "Traceback" not in err


# -- download / cache / models against the local test server (in-process, 127.0.0.1 only) --------------

from test_download import WeightsServer, checkpoint, local_only, use_registry  # noqa: E402,F401


def _cli(capsys, *args):
    from ppocr_torch.cli import main

    rc = main(list(args))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_download_all_then_cache_and_models(checkpoint, tmp_path, monkeypatch, capsys):  # noqa: F811
    import dataclasses

    from ppocr_torch import download

    local_only(monkeypatch)
    home = tmp_path / "cache"
    monkeypatch.setenv("PPOCR_TORCH_HOME", str(home))
    monkeypatch.delenv("PPOCR_TORCH_OFFLINE", raising=False)
    monkeypatch.delenv("PPOCR_TORCH_WEIGHTS_DIR", raising=False)
    a = checkpoint.entry()
    b = checkpoint.entry(name="ch_PP-OCRv2_rec_copy", file=f"ch_PP-OCRv2_rec_copy-{checkpoint.sha256[:8]}.pth")
    c = dataclasses.replace(a, name="Unconverted_rec", aliases=(), weights=None, official={})
    use_registry(monkeypatch, a, b, c)
    with WeightsServer({a.weights.file: checkpoint.data, b.weights.file: checkpoint.data}) as srv:
        monkeypatch.setenv("PPOCR_TORCH_WEIGHTS_URL", srv.url)
        rc, out, err = _cli(capsys, "download", "--all", "-q")
        assert rc == 0, err
        assert out.splitlines() == [f"{a.name}\t{home / a.weights.file}", f"{b.name}\t{home / b.weights.file}"]
        assert "Unconverted_rec" in err and "skipped" in err and "Traceback" not in err
        assert sorted(r["status"] for r in srv.log) == [200, 200]
        rc, out, err = _cli(capsys, "download", "--all", "-q")
        assert rc == 0 and len(srv.log) == 2, "cached files are not downloaded again"

    rc, out, _ = _cli(capsys, "models")
    rows = {line.split()[0]: line.rstrip() for line in out.splitlines()[1:]}
    assert sorted(rows) == sorted([a.name, b.name, "Unconverted_rec"])
    assert rows[a.name].split()[-2:] == ["cached", "unverified"] and rows[b.name].split()[-2] == "cached"
    assert rows["Unconverted_rec"].split()[-2:] == ["unavailable", "unverified"]
    assert out.splitlines()[0].split() == ["NAME", "ARCHITECTURE", "CLASSES", "HEIGHT", "SIZE", "WEIGHTS", "CHECK"]
    rc, out, _ = _cli(capsys, "models", "--available")
    assert [line.split()[0] for line in out.splitlines()[1:]] == [a.name, b.name]

    (home / "resnet18-f37072fd.pth").write_bytes(b"another torch.hub checkpoint")
    rc, out, _ = _cli(capsys, "cache")
    assert rc == 0
    assert out.splitlines()[0] == f"cache directory: {home}"
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:-1]}
    size = f"{len(checkpoint.data) / 1e6:.1f}MB"
    assert rows == {a.weights.file: [a.name, "current", size], b.weights.file: [b.name, "current", size]}
    assert out.splitlines()[-1].endswith(f"({2 * len(checkpoint.data)} bytes)")
    assert "resnet18" not in out

    rc, out, _ = _cli(capsys, "cache", "--clear")
    assert rc == 0 and out.startswith("removed 2 file(s)")
    assert sorted(p.name for p in home.iterdir()) == ["resnet18-f37072fd.pth"], "other files are kept"
    rc, out, _ = _cli(capsys, "cache")
    assert "no ppocr-torch files" in out
    assert download.weights_status(a) == "release"


def test_download_usage_and_offline_errors(checkpoint, tmp_path, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setenv("PPOCR_TORCH_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PPOCR_TORCH_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("PPOCR_TORCH_WEIGHTS_URL", raising=False)
    url = "http://127.0.0.1:9/weights/" + checkpoint.file
    use_registry(monkeypatch, checkpoint.entry(url))
    rc, _, err = _cli(capsys, "download")
    assert rc == 2 and "--all" in err
    rc, _, err = _cli(capsys, "download", "--all", "ch_PP-OCRv2_rec")
    assert rc == 2
    rc, _, err = _cli(capsys, "download", "no-such-model")
    assert rc == 2 and "no-such-model" in err
    monkeypatch.setenv("PPOCR_TORCH_OFFLINE", "1")
    rc, out, err = _cli(capsys, "download", "ch_PP-OCRv2_rec")
    assert rc == 2 and out == ""
    assert url in err and checkpoint.file in err and "ppocr-torch download ch_PP-OCRv2_rec" in err
    assert "Traceback" not in err


def test_unusable_and_undecodable_paths_are_reported_and_the_others_printed(tmp_path, capsys):
    """A NUL character, a lone surrogate and a file name that is not UTF-8 (``os.fsdecode`` gives it lone
    surrogates) neither stop the output nor break its encoding; JSON keeps the exact path."""
    import shutil

    from ppocr_torch.cli import main

    odd = tmp_path / os.fsdecode(b"line\xff.png")
    try:
        shutil.copy(ROOT / SAMPLE, odd)
    except (OSError, UnicodeError):
        pytest.skip("this file system takes only UTF-8 names")
    paths = ["a\x00.png", "b\ud800.png", str(odd), str(ROOT / SAMPLE)]
    assert main(["recognize", "--no-download", *paths]) == 1
    out, err = capsys.readouterr()
    shown = str(tmp_path / "line\\xff.png")
    assert out.splitlines() == [f"{shown}\t{SAMPLE_TEXT}\t{out.splitlines()[0].split(chr(9))[2]}",
                                f"{ROOT / SAMPLE}\t{SAMPLE_TEXT}\t{out.splitlines()[1].split(chr(9))[2]}"]
    assert err.splitlines() == [
        "ppocr-torch: error: a\\x00.png: not a usable file path: it contains a NUL character; check the name",
        "ppocr-torch: error: b\\ud800.png: not a usable file path: it cannot be encoded for the file system "
        "(surrogates not allowed); check the name"]
    assert main(["recognize", "--no-download", "--json", *paths]) == 1
    objs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["path"] for o in objs] == paths
    assert "NUL character" in objs[0]["error"] and "surrogates" in objs[1]["error"]
    assert objs[2]["text"] == objs[3]["text"] == SAMPLE_TEXT

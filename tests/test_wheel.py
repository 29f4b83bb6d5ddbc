"""A wheel built from the repository installs into a fresh virtual environment and recognises the
bundled sample with the network disabled (embedded default model, no download)."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_BLOCK_SOCKETS = (
    "import socket\n"
    "def _no(*a, **k):\n"
    "    raise OSError('network disabled by the test')\n"
    "socket.socket.connect = _no\n"
    "socket.create_connection = _no\n"
    "import sys\n"
    "from ppocr_torch.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _no_network_prefix():
    """`unshare -n` (a new, empty network namespace) where the OS allows it; sockets are blocked anyway."""
    try:
        ok = subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
    except FileNotFoundError:
        ok = False
    return ["unshare", "-n"] if ok else []


def test_wheel_installs_and_recognizes_sample_offline(runtime_venv, tmp_path):
    """The wheel in a fresh virtual environment of its own (no system site packages, so it works the same when
    the tests run from a virtualenv): the runtime dependencies only."""
    py = runtime_venv
    venv = py.parent.parent
    sample = tmp_path / "line.png"
    shutil.copy(ROOT / "samples" / "sample_line.png", sample)
    expected = (ROOT / "samples" / "sample_line.txt").read_text(encoding="utf-8").strip()
    env = {"PATH": "/usr/bin:/bin", "PPOCR_TORCH_HOME": str(tmp_path / "empty_cache"), "HOME": str(tmp_path),
           "PYTHONNOUSERSITE": "1"}
    where = subprocess.run([str(py), "-c", "import ppocr_torch; print(ppocr_torch.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert str(venv) in where
    proc = subprocess.run(_no_network_prefix() + [str(py), "-c", _BLOCK_SOCKETS, "recognize", "--json", str(sample)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout
    console = venv / "bin" / "ppocr-torch"
    proc = subprocess.run(_no_network_prefix() + [str(console), "recognize", str(sample)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout

"""The package's own code runs on the oldest Python that setup.py's python_requires allows: every module
compiles there, and the stdlib-only import chain (registry, torch.hub entrypoints) imports and works."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CODE = """
import sys
from pathlib import Path
for path in sorted(Path("ppocr_torch").rglob("*.py")):
    compile(path.read_text(encoding="utf-8"), str(path), "exec", dont_inherit=True)
import ppocr_torch, ppocr_torch.registry as registry, ppocr_torch.hub as hub
from ppocr_torch.download import weights_status
print(sys.version_info[:2], len(registry.entries()), len(hub.entrypoints()), weights_status(registry.get_entry("PP-OCRv6_small_rec")))
"""


def _oldest():
    text = (ROOT / "setup.py").read_text(encoding="utf-8")
    major, minor = re.search(r'python_requires=">=(\d+)\.(\d+)"', text).groups()
    return int(major), int(minor)


def test_the_oldest_supported_python_imports_the_package(tmp_path):
    major, minor = _oldest()
    found = sorted(Path.home().glob(f".pyenv/versions/{major}.{minor}.*/bin/python{major}.{minor}"))
    which = shutil.which(f"python{major}.{minor}")
    exe = str(found[-1]) if found else (which if which and "shims" not in which else None)
    if exe is None:
        pytest.skip(f"no Python {major}.{minor} interpreter on this machine")
    proc = subprocess.run([exe, "-s", "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [f"({major},", f"{minor})", "66", "66", "embedded"]

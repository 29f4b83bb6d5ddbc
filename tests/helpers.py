"""Plain helpers and constants of the test suite (fixtures live in conftest.py)."""

import csv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINES_DIR = ROOT / "tests" / "data" / "lines"


def read_labels():
    with open(LINES_DIR / "labels.tsv", encoding="utf-8", newline="") as fh:
        return [(LINES_DIR / row["file"], row["text"]) for row in csv.DictReader(fh, delimiter="\t",
                                                                                 quoting=csv.QUOTE_NONE)]


def pack_tar(members):
    """An uncompressed tar of ``{member name: bytes}``, as PaddleOCR packs its ``*_infer.tar`` files."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# The hard inputs of each converted model, from its full-set parity report (`python -m conversion convert NAME
# --report r.json`): the lines its float64 clause had to judge (fp32-ill-conditioned) and the largest |Δp|.
# Every default run includes them; the full set of 252 inputs runs under `-m slow` and in `conversion release`.
HARD_INPUTS = {
    "PP-OCRv4_mobile_rec": ('0024.png', '0166.png'),
    "PP-OCRv5_mobile_rec": ('0009.png', '0128.png', '0248.png'),
    "PP-OCRv6_small_rec": ('0142.png', '0232.png'),
    "PP-OCRv6_tiny_rec": ('0081.png', '0222.png'),
    "ch_PP-OCRv2_rec": ('0115.png', '0212.png'),
    "en_PP-OCRv3_rec": ('0131.png', '0232.png'),
    "japan_PP-OCRv3_rec": ('0096.png', '0128.png'),
}
PARITY_SCOPES = ["subset", pytest.param("full", marks=pytest.mark.slow)]


def parity_select(inputs, name, scope="subset", *, step=10):
    """``inputs`` (``(name, tensor)`` pairs as ``conversion.convert.parity_inputs`` gives them, or
    ``(path, label)`` rows) for a parity test: all of them for ``scope="full"``; otherwise the random
    tensors, every ``step``-th line and ``name``'s hard inputs."""
    if scope == "full":
        return list(inputs)
    hard = set(HARD_INPUTS.get(name, ()))
    key = [Path(str(k)).name for k, _ in inputs]
    lines = [i for i, k in enumerate(key) if not k.startswith("random")]
    keep = {i for i, k in enumerate(key) if k.startswith("random") or k in hard} | set(lines[::step])
    return [inputs[i] for i in sorted(keep)]

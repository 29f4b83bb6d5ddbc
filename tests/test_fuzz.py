"""Fuzzing with hypothesis: every entry point that reads untrusted bytes returns a result or raises one of the
package's typed errors (``ppocr_torch.errors.PPOCRTorchError``); any other exception fails the test.

Fixed seed (``derandomize=True``), a bounded number of examples and no deadline, so the run is reproducible and
its time known (about a minute on 2 cores); the inputs are arbitrary bytes and arrays, and real files with bits
flipped, bytes overwritten or cut: the rendered test lines (PNG) and a JPEG of one, the default checkpoint,
small ``.pdparams``, ``.pdiparams``, program (``.pdmodel``, ``inference.json``) and ONNX files built here.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from ppocr_torch.errors import PPOCRTorchError  # noqa: E402

from helpers import LINES_DIR, ROOT  # noqa: E402
from test_static_v1 import program_desc, record  # noqa: E402  (the independent Paddle 1.x writer)

LINES = sorted(LINES_DIR.glob("*.png"))
MEMORY_LIMIT = 4 << 30  # address space of the child processes loading mutated checkpoints


def fuzz(n: int):
    """Reproducible settings: fixed seed, ``n`` examples, no deadline (a forward pass may take a while)."""
    return settings(derandomize=True, max_examples=n, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@st.composite
def mutated(draw, data: bytes, *, max_edits: int = 6):
    """``data`` with a few edits: bit flips (anywhere, or in the first 64 bytes where headers are), bytes
    overwritten, a range deleted or repeated, or the whole cut short."""
    buf = bytearray(data)
    kind = draw(st.sampled_from(["flip", "flip_head", "overwrite", "delete", "repeat", "truncate"]))
    if kind == "truncate":
        return bytes(buf[:draw(st.integers(0, len(buf) - 1))])
    for _ in range(draw(st.integers(1, max_edits))):
        if not buf:
            break
        top = min(len(buf), 64) if kind == "flip_head" else len(buf)
        pos = draw(st.integers(0, top - 1))
        if kind in ("flip", "flip_head"):
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            new = draw(st.binary(min_size=1, max_size=8))
            buf[pos:pos + len(new)] = new
        elif kind == "delete":
            del buf[pos:pos + draw(st.integers(1, 64))]
        else:
            buf[pos:pos] = buf[pos:pos + draw(st.integers(1, 64))]
    return bytes(buf)


def typed(fn, *args, allowed=(PPOCRTorchError,), **kw):
    """``fn(*args)`` or the typed error it raised; anything else propagates and fails the test."""
    try:
        return fn(*args, **kw)
    except allowed as exc:
        return exc


# ---------------------------------------------------------------- recognition inputs

@pytest.fixture(scope="module")
def rec():
    from ppocr_torch import Recognizer

    return Recognizer()


def _line_bytes():
    return [p.read_bytes() for p in LINES[:8:2]]


def _jpeg_bytes():
    import cv2

    img = cv2.imread(str(LINES[0]))
    return bytes(cv2.imencode(".jpg", img)[1])


IMAGE_FILES = _line_bytes() + [_jpeg_bytes()]


def _check_results(results, n):
    from ppocr_torch.decode import RecResult
    from ppocr_torch.errors import InvalidImageError

    assert len(results) == n
    for r in results:
        assert isinstance(r, (RecResult, InvalidImageError)), r


@fuzz(40)
@given(data=st.binary(max_size=256))
def test_arbitrary_bytes(rec, data):
    result = typed(rec.recognize, data)
    _check_results([result], 1)


@fuzz(60)
@given(data=st.sampled_from(IMAGE_FILES).flatmap(mutated))
def test_mutated_png_and_jpeg_bytes(rec, data):
    _check_results(rec.recognize([data], errors="return"), 1)
    _check_results([typed(rec.recognize, data)], 1)


DTYPES = ["uint8", "int8", "uint16", ">u2", "int16", "int32", "int64", "uint64", "float16", "float32", ">f4",
          "float64", "bool", "complex64"]


@fuzz(60)
@given(arr=hnp.arrays(dtype=st.sampled_from(DTYPES).map(np.dtype),
                      shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=10)),
       channel_order=st.sampled_from(["bgr", "rgb"]), transpose=st.booleans())
def test_arbitrary_small_arrays(rec, arr, channel_order, transpose):
    from ppocr_torch import Recognizer

    if transpose:
        arr = arr.T  # not C-contiguous
    r = rec if channel_order == "bgr" else Recognizer(rec.model, channel_order="rgb")
    result = typed(r.recognize, arr)
    _check_results([result], 1)


@fuzz(15)
@given(items=st.lists(st.one_of(st.sampled_from(IMAGE_FILES).flatmap(mutated), st.binary(max_size=64),
                                st.sampled_from([str(p) for p in LINES[:4]] + ["/nonexistent.png", "", "\0"])),
                      min_size=1, max_size=6),
       errors=st.sampled_from(["raise", "return"]))
def test_one_liner_on_lists(items, errors):
    import ppocr_torch

    got = typed(ppocr_torch.recognize, items, errors=errors)
    if errors == "return":
        _check_results(got, len(items))
    elif not isinstance(got, PPOCRTorchError):
        _check_results(got, len(items))


@fuzz(12)
@given(files=st.lists(st.sampled_from(IMAGE_FILES).flatmap(mutated), min_size=1, max_size=3),
       json_out=st.booleans())
def test_cli_recognize_on_mutated_files(files, json_out):
    from ppocr_torch import cli

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for k, data in enumerate(files):
            p = os.path.join(tmp, f"f{k}.png")
            with open(p, "wb") as fh:
                fh.write(data)
            paths.append(p)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["recognize", *(["--json"] if json_out else []), *paths])
    assert code in (0, 1, 2), (code, err.getvalue())
    assert "Traceback" not in err.getvalue()


# ---------------------------------------------------------------- checkpoints (in a child under a memory limit)

_LOAD_SCRIPT = r"""
import json, resource, sys, traceback
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
from ppocr_torch import load_model
from ppocr_torch.errors import PPOCRTorchError
out = []
for path in sys.argv[2:]:
    try:
        load_model(path)
        out.append("ok")
    except PPOCRTorchError as exc:
        out.append(type(exc).__name__)
    except BaseException:
        out.append("UNTYPED " + traceback.format_exc()[-1500:])
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def checkpoint_bytes():
    from ppocr_torch.download import resolve_weights
    from ppocr_torch.registry import get_entry

    return resolve_weights(get_entry("PP-OCRv6_small_rec"), download=False).read_bytes()


@st.composite
def checkpoint_mutation(draw, size: int):
    """(kind, position, value): a byte of the zip changed (in its head, where data.pkl is, in its tail, where the
    central directory is, or anywhere), or the file cut."""
    kind = draw(st.sampled_from(["head", "tail", "anywhere", "truncate"]))
    if kind == "head":
        pos = draw(st.integers(0, 4095))
    elif kind == "tail":
        pos = draw(st.integers(size - 4096, size - 1))
    else:
        pos = draw(st.integers(0, size - 1))
    return kind, pos, draw(st.integers(1, 255))


@fuzz(4)
@given(data=st.data())
def test_mutated_checkpoints_load_or_raise_typed(checkpoint_bytes, data):
    """One child per example loads 6 mutated copies of the default checkpoint under a 4 GB address-space limit."""
    muts = data.draw(st.lists(checkpoint_mutation(len(checkpoint_bytes)), min_size=6, max_size=6))
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for k, (kind, pos, value) in enumerate(muts):
            if kind == "truncate":
                blob = checkpoint_bytes[:pos]
            else:
                b = bytearray(checkpoint_bytes)
                b[pos] ^= value
                blob = bytes(b)
            p = os.path.join(tmp, f"m{k}.pth")
            with open(p, "wb") as fh:
                fh.write(blob)
            paths.append(p)
        env = dict(os.environ, PPOCR_TORCH_OFFLINE="1", PPOCR_TORCH_HOME=os.path.join(tmp, "home"))
        proc = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, str(MEMORY_LIMIT), *paths], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcomes = json.loads(proc.stdout.strip().splitlines()[-1])
    bad = [(m, o) for m, o in zip(muts, outcomes) if o.startswith("UNTYPED")]
    assert not bad, bad


# ---------------------------------------------------------------- Paddle formats, read without Paddle

def _pdparams_bytes(protocol):
    state = {"conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
             "bn._mean": np.zeros(3, np.float32), "step": np.array([7], np.int64),
             "StructuredToParameterName@@": {"conv.weight": "conv2d_0.w_0"}}
    return pickle.dumps(state, protocol=protocol)


PDPARAMS = [_pdparams_bytes(2), _pdparams_bytes(4)]


@fuzz(80)
@given(data=st.one_of(st.sampled_from(PDPARAMS).flatmap(mutated), st.binary(max_size=128)))
def test_pdparams_reader(data, tmp_path_factory):
    from ppocr_torch.formats.pdparams import read_pdparams

    path = tmp_path_factory.mktemp("pdp") / "m.pdparams"
    path.write_bytes(data)
    typed(read_pdparams, path)


SMALL_WEIGHTS = {"conv1_weights": np.arange(8 * 3 * 3 * 3, dtype=np.float32).reshape(8, 3, 3, 3),
                 "bn_scale": np.ones(8, np.float32), "fc_w": np.zeros((8, 5), np.float32)}
COMBINED = b"".join(record(SMALL_WEIGHTS[n]) for n in sorted(SMALL_WEIGHTS))
ONE_RECORD = record(np.arange(24, dtype=np.float32).reshape(2, 3, 4), lod=[[0, 2]])
PROGRAM = program_desc({n: a.shape for n, a in SMALL_WEIGHTS.items()})


@fuzz(80)
@given(data=st.sampled_from([ONE_RECORD, COMBINED]).flatmap(mutated))
def test_pdiparams_readers(data, tmp_path_factory):
    from ppocr_torch.formats.lod_tensor import read_combined, read_tensor_file

    path = tmp_path_factory.mktemp("pdi") / "inference.pdiparams"
    path.write_bytes(data)
    typed(read_tensor_file, path)
    typed(read_combined, path, list(SMALL_WEIGHTS))


@fuzz(80)
@given(data=st.sampled_from([PROGRAM]).flatmap(mutated))
def test_program_desc_reader(data, tmp_path_factory):
    from ppocr_torch.formats.program_desc import graph_from_program, read_program

    path = tmp_path_factory.mktemp("prog") / "inference.pdmodel"
    path.write_bytes(data)
    program = typed(read_program, path)
    if not isinstance(program, PPOCRTorchError):
        typed(graph_from_program, program, dict(SMALL_WEIGHTS), path)


def _pir_json():
    def tt(shape):
        return {"#": "0.t_dtensor", "D": [{"#": "0.t_f32"}, shape, "NCHW", [], 0]}

    ops = [{"#": "p", "A": [0, 1, 1, "conv1_weights"], "O": {"%": 1, "TT": tt([8, 3, 3, 3])}},
           {"#": "1.data", "A": [{"N": "name", "AT": {"#": "a_str", "D": "x"}}],
            "O": [{"%": 2, "TT": tt([-1, 3, 48, -1])}]},
           {"#": "1.conv2d", "I": [{"%": 2}, {"%": 1}],
            "A": [{"N": "strides", "AT": {"#": "a_array", "D": [{"#": "a_i32", "D": 1}, {"#": "a_i32", "D": 1}]}},
                  {"N": "padding_algorithm", "AT": {"#": "a_str", "D": "EXPLICIT"}}],
            "O": [{"%": 3, "TT": tt([-1, 8, 48, -1])}]},
           {"#": "1.relu", "I": [{"%": 3}], "O": [{"%": 4, "TT": tt([-1, 8, 48, -1])}]},
           {"#": "1.fetch", "I": [{"%": 4}], "O": [{"%": 5}]}]
    return json.dumps({"base_code": {"magic": "pir", "version": 1},
                       "program": {"regions": [{"#": "region_0", "blocks": [{"#": "block_0", "args": [],
                                                                             "ops": ops}]}]}}).encode()


PIR = _pir_json()


@fuzz(80)
@given(data=st.one_of(st.sampled_from([PIR]).flatmap(mutated),
                      st.integers(1, 200_000).map(lambda n: b"[" * n),
                      st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                                   lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=3), c,
                                                                                      max_size=4),
                                   max_leaves=12).map(lambda o: json.dumps(o).encode())))
def test_pir_json_reader(data, tmp_path_factory):
    from ppocr_torch.formats.pir_json import graph_from_pir_json

    path = tmp_path_factory.mktemp("pir") / "inference.json"
    path.write_bytes(data)
    typed(graph_from_pir_json, path, dict(SMALL_WEIGHTS))


# ---------------------------------------------------------------- ONNX reading of the conversion tool

@functools.lru_cache(maxsize=None)
def _onnx_bytes():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.linspace(-1, 1, 8 * 3 * 3 * 3, dtype=np.float32).reshape(8, 3, 3, 3), "w")
    b = numpy_helper.from_array(np.zeros(8, np.float32), "b")
    fc = numpy_helper.from_array(np.ones((8, 5), np.float32), "fc")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("MatMul", ["f", "fc"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], [w, b, fc])
    return onnx.helper.make_model(graph).SerializeToString()


@fuzz(80)
@given(data=st.data())
def test_onnx_reader(data, tmp_path_factory):
    from conversion.readers.onnx_reader import read_onnx_ops

    blob = data.draw(mutated(_onnx_bytes()))
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    path.write_bytes(blob)
    typed(read_onnx_ops, path)



# ---------------------------------------------------------------- regressions found by the fuzzing above

def test_program_field_of_another_wire_type_is_a_source_format_error(tmp_path):
    """Found by test_program_desc_reader: a length-delimited field where the schema has a number (block idx)
    raised TypeError."""
    from ppocr_torch.errors import SourceFormatError
    from ppocr_torch.formats.program_desc import read_program
    from test_static_v1 import ld

    path = tmp_path / "inference.pdmodel"
    path.write_bytes(ld(1, ld(1, b"x")))
    with pytest.raises(SourceFormatError, match="corrupt ProgramDesc"):
        read_program(path)


@pytest.mark.parametrize("data", [b"[" * 100_000, PIR.replace(b"[8, 3, 3, 3]", b'["a", 3, 3, 3]')])
def test_pir_json_nested_too_deep_or_with_a_text_dimension_is_a_source_format_error(tmp_path, data):
    """Found by test_pir_json_reader: JSON nested deeper than Python's recursion limit raised RecursionError; a
    dimension that is not a number raised ValueError."""
    from ppocr_torch.errors import SourceFormatError
    from ppocr_torch.formats.pir_json import graph_from_pir_json

    assert data != PIR
    path = tmp_path / "inference.json"
    path.write_bytes(data)
    with pytest.raises(SourceFormatError, match="PIR program"):
        graph_from_pir_json(path, dict(SMALL_WEIGHTS))


def test_pdparams_frame_length_overflow_is_a_source_format_error(tmp_path):
    """Found by test_pdparams_reader: a protocol 4 FRAME whose length does not fit raised OverflowError."""
    from ppocr_torch.errors import SourceFormatError
    from ppocr_torch.formats.pdparams import read_pdparams

    path = tmp_path / "m.pdparams"
    path.write_bytes(b"\x80\x04\x95" + b"\xff" * 8 + b".")
    with pytest.raises(SourceFormatError, match="truncated or corrupt"):
        read_pdparams(path)

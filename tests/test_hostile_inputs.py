"""Hostile or broken files cost bounded memory and time, and every failure is a typed error naming the file:
checkpoints whose spec asks for huge or malformed models, empty and cut files, ``verify --against`` references
that are not models, and ``.pdparams`` pickles (protocol 2, object and complex arrays)."""

from __future__ import annotations

import copy
import os
import pickle
import resource
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from helpers import ROOT

SAMPLE = "samples/sample_line.png"
MEMORY_LIMIT = 4 << 30  # address space of the child processes: far below the 20+ GB the crafted spec describes


@pytest.fixture(scope="module")
def default_checkpoint():
    from ppocr_torch.download import resolve_weights
    from ppocr_torch.registry import get_entry

    return resolve_weights(get_entry("PP-OCRv6_small_rec"), download=False)


@pytest.fixture(scope="module")
def payload(default_checkpoint):
    from ppocr_torch.checkpoint import read_checkpoint

    return read_checkpoint(default_checkpoint)


def _save(payload, path, edit=None):
    """``payload`` with ``edit(copy)`` applied, saved by torch.save (as a crafted file would be)."""
    p = dict(payload, spec=copy.deepcopy(payload["spec"]))
    if edit is not None:
        edit(p)
    torch.save(p, path)
    return path


def _huge_neck(p):
    p["spec"]["head"]["neck"]["dims"] = 20000  # the CTC neck of PP-OCRv6_small_rec, 120 in the real model


def _limited():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _run(args, tmp_path, **kw):
    env = dict(os.environ, PPOCR_TORCH_HOME=str(tmp_path / "cache"), PPOCR_TORCH_OFFLINE="1")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, **kw)


# ----- a spec describing a model far larger than the file's tensors -------------------------------------------


def test_the_crafted_spec_describes_more_than_20_gb(payload):
    """The premise of the memory-bomb tests: built for real, the edited spec would need > 20 GB."""
    from ppocr_torch.models import ModelSpec, build_model

    p = dict(payload, spec=copy.deepcopy(payload["spec"]))
    _huge_neck(p)
    with torch.device("meta"):
        model = build_model(ModelSpec.from_dict(p["spec"]), form="deploy")
    nbytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert nbytes > 20e9
    assert all(t.device.type == "meta" for t in model.state_dict().values())
    assert sum(t.numel() * t.element_size() for t in payload["state_dict"].values()) < 30e6


def test_memory_bomb_checkpoint_fails_fast_under_a_memory_limit(payload, tmp_path):
    bad = _save(payload, tmp_path / "bomb.pth", _huge_neck)
    child = (
        "import sys, time\n"
        "from ppocr_torch import load_model\n"
        "from ppocr_torch.errors import CheckpointError\n"
        "t = time.perf_counter()\n"
        "try:\n"
        "    load_model(sys.argv[1])\n"
        "except CheckpointError as exc:\n"
        "    print(f'{time.perf_counter() - t:.3f}'); print(exc); sys.exit(0)\n"
        "print('loaded'); sys.exit(3)\n"
    )
    proc = _run(["-c", child, str(bad)], tmp_path, preexec_fn=_limited)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    seconds, message = proc.stdout.split("\n", 1)
    assert float(seconds) < 30
    assert str(bad) in message
    assert "'head.ctc_encoder.encoder." in message and "[120, " in message and "[20000, " in message


def test_cli_prints_the_checkpoint_error_not_a_device_error(payload, tmp_path):
    bad = _save(payload, tmp_path / "bomb.pth", _huge_neck)
    proc = _run(["-m", "ppocr_torch", "recognize", "--model", str(bad), SAMPLE], tmp_path, preexec_fn=_limited)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"ppocr-torch: error: {bad}: tensor 'head.ctc_encoder.encoder.")
    assert "[20000, " in proc.stderr
    assert "cannot use device" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_spec_of_a_million_layers_is_stopped_while_it_is_built(payload, tmp_path):
    from ppocr_torch import load_model
    from ppocr_torch.errors import CheckpointError

    bad = _save(payload, tmp_path / "deep.pth", lambda p: p["spec"]["head"]["neck"].update(depth=10 ** 6))
    t = time.perf_counter()
    with pytest.raises(CheckpointError) as info:
        load_model(bad)
    assert time.perf_counter() - t < 20
    assert str(bad) in str(info.value) and "the file holds 142 tensors" in str(info.value)


# ----- empty, cut and malformed checkpoints -----------------------------------------------------------------


@pytest.mark.parametrize("make, fragment", [
    (lambda data: b"", "empty file (0 bytes)"),
    (lambda data: data[: len(data) // 2], "unreadable (corrupt or truncated?)"),
    (lambda data: bytes(range(256)) * 64, "unreadable (corrupt or truncated?)"),
])
def test_empty_cut_and_garbage_checkpoints(default_checkpoint, tmp_path, make, fragment):
    from ppocr_torch import load_model
    from ppocr_torch.errors import CheckpointError

    bad = tmp_path / "model.pth"
    bad.write_bytes(make(default_checkpoint.read_bytes()))
    with pytest.raises(CheckpointError) as info:
        load_model(bad)
    assert str(bad) in str(info.value) and fragment in str(info.value)
    assert "weights_only" not in str(info.value), "torch's advice to load without weights_only is not passed on"


def _set(key, value):
    def edit(p):
        p[key] = value
    return edit


def _set_spec(path, value):
    def edit(p):
        node = p["spec"]
        for k in path[:-1]:
            node = node[k]
        if value is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return edit


MALFORMED = {
    "unknown head": (_set_spec(("head", "name"), "AttnHead"), "unknown head 'AttnHead'"),
    "unknown neck": (_set_spec(("head", "neck", "name"), "transformer"), "transformer"),
    "unknown backbone option": (_set_spec(("backbone", "scale"), -1), "scale"),
    "negative size": (_set_spec(("head", "neck", "dims"), -1), "cannot be built"),
    "zero size": (_set_spec(("head", "neck", "mlp_ratio"), 0.0), "needs [0, "),
    "bogus form": (_set("form", "bogus"), "'form' is 'bogus'"),
    "charset not a list": (_set("charset", 12), "'charset' is of type int"),
    "charset of numbers": (lambda p: p.update(charset=list(range(len(p["charset"])))), "not strings"),
    "meta not a dict": (_set("meta", [1, 2]), "'meta' is of type list"),
    "state_dict not a dict": (_set("state_dict", [1, 2]), "'state_dict' is of type list"),
    "tensor not a tensor": (lambda p: p.update(state_dict=dict(p["state_dict"], extra=3)), "'extra' is of type int"),
    "tensor missing": (lambda p: p.update(state_dict=dict(list(p["state_dict"].items())[1:])), "missing from the file"),
    "tensor extra": (lambda p: p.update(state_dict=dict(p["state_dict"], **{"head.x": torch.zeros(2)})),
                     "'head.x' (shape [2])"),
    "complex tensor": (lambda p: p.update(state_dict={k: v.to(torch.complex64) if i == 0 else v for i, (k, v) in
                                                      enumerate(p["state_dict"].items())}), "complex64"),
    "negative classes": (_set_spec(("num_classes",), -1), "'num_classes' must be a positive integer"),
    "zero height": (_set_spec(("input_height",), 0), "'input_height' must be a positive integer"),
    "huge height": (_set_spec(("input_height",), 10 ** 6), "above the limit of 1024"),
    "missing key": (_set_spec(("input_height",), KeyError), "lacks the fields ['input_height']"),
    "spec not a dict": (_set("spec", "PP-OCRv6_small_rec"), "not a str"),
    "tensor in the spec": (_set_spec(("head", "neck", "dims"), torch.tensor(120)), "holds a Tensor"),
    "bool as a size": (_set_spec(("num_classes",), True), "'num_classes' must be a positive integer"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_checkpoint_fields_are_checkpoint_errors(payload, tmp_path, case):
    from ppocr_torch import load_model
    from ppocr_torch.errors import CheckpointError

    edit, fragment = MALFORMED[case]
    bad = _save(payload, tmp_path / "bad.pth", edit)
    with pytest.raises(CheckpointError) as info:
        load_model(bad)
    assert str(info.value).startswith(f"{bad}: ")
    assert fragment in str(info.value)


@pytest.mark.parametrize("case", ["unknown head", "bogus form", "charset not a list", "negative size"])
def test_cli_reports_malformed_checkpoints_with_exit_2(payload, tmp_path, case):
    edit, fragment = MALFORMED[case]
    bad = _save(payload, tmp_path / "bad.pth", edit)
    proc = _run(["-m", "ppocr_torch", "recognize", "--model", str(bad), SAMPLE], tmp_path, preexec_fn=_limited)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"ppocr-torch: error: {bad}: ") and fragment in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "cannot use device" not in proc.stderr and "Traceback" not in proc.stderr


def test_every_registry_architecture_builds_on_the_meta_device_without_memory():
    """The check builds the spec on the meta device: no tensor of any registry architecture, in either form,
    may end up elsewhere (it would be allocated for real, at the size the file's spec names)."""
    from ppocr_torch.models import build_model
    from ppocr_torch.registry import get_entry, list_models

    seen = set()
    for name in list_models():
        spec = get_entry(name).spec
        key = repr((spec.backbone, spec.neck, spec.head))
        if key in seen:
            continue
        seen.add(key)
        for form in ("deploy", "train"):
            with torch.device("meta"):
                model = build_model(spec, form=form)
            tensors = list(model.state_dict().items())
            tensors += [(k, v) for m in model.modules() for k, v in vars(m).items() if isinstance(v, torch.Tensor)]
            on_cpu = [k for k, v in tensors if v.device.type != "meta"]
            assert tensors and not on_cpu, (name, form, on_cpu[:3])
    assert len(seen) >= 10


def test_a_device_that_cannot_be_used_is_a_device_error(default_checkpoint):
    from ppocr_torch import Recognizer, load_model
    from ppocr_torch.errors import DeviceError

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here: moving to it works")
    with pytest.raises(DeviceError) as info:
        load_model(default_checkpoint, device="cuda")
    assert isinstance(info.value, RuntimeError) and "'cuda'" in str(info.value)
    model = load_model(default_checkpoint)
    with pytest.raises(DeviceError):
        Recognizer(model, device="cuda")


# ----- verify --against a reference that is not a model ---------------------------------------------------------


def _verify(default_checkpoint, against, tmp_path):
    return _run(["-m", "conversion", "verify", str(default_checkpoint), "--against", str(against), "--limit", "1"],
                tmp_path)


def test_verify_against_random_bytes_onnx(default_checkpoint, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    proc = _verify(default_checkpoint, bad, tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"conversion: error: {bad}: not a readable ONNX model (Error parsing message with "
                                   "type 'onnx.ModelProto': Wire format was corrupt); give the complete .onnx file "
                                   "of the export")


def test_verify_against_a_cut_official_onnx(default_checkpoint, official_source, tmp_path):
    path, _ = official_source("PP-OCRv6_small_rec")
    data = path.read_bytes()
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(data[: len(data) // 2])
    proc = _verify(default_checkpoint, bad, tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"conversion: error: {bad}: not a readable ONNX model")
    assert "Traceback" not in proc.stderr


def test_verify_against_a_corrupt_paddle_program_does_not_crash(default_checkpoint, tmp_path):
    """Paddle itself dies of SIGSEGV on this program; the export is parsed without Paddle first."""
    folder = tmp_path / "export"
    folder.mkdir()
    rng = np.random.default_rng(1)
    (folder / "inference.pdmodel").write_bytes(b"\x0f" + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    (folder / "inference.pdiparams").write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    proc = _verify(default_checkpoint, folder, tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"conversion: error: {folder / 'inference.pdmodel'}: corrupt protobuf")
    assert "Traceback" not in proc.stderr


def test_cut_and_mismatched_paddle_exports_are_source_format_errors(official_export_folder, tmp_path):
    from conversion.errors import SourceFormatError
    from conversion.readers.paddle_inference import check_export

    for name, program in (("PP-OCRv5_mobile_rec", "inference.json"), ("ch_PP-OCRv3_rec", "inference.pdmodel")):
        real = official_export_folder(name)
        assert check_export(real) == (real / program, real / "inference.pdiparams")
        for cut in (program, "inference.pdiparams"):
            folder = tmp_path / f"{name}-{cut}"
            folder.mkdir()
            for f in (program, "inference.pdiparams"):
                data = (real / f).read_bytes()
                (folder / f).write_bytes(data[: len(data) // 2] if f == cut else data)
            with pytest.raises(SourceFormatError) as info:
                check_export(folder)
            assert str(folder / cut) in str(info.value)


# ----- .pdparams: pickle protocol 2, object and complex arrays -------------------------------------------------


def _paddle_like_state():
    """A state dict as paddle.save stores one: numpy arrays plus the structured-name table."""
    rng = np.random.default_rng(2)
    state = {"backbone.conv1.weight": rng.normal(size=(8, 3, 3, 3)).astype(np.float32),
             "backbone.bn._mean": rng.normal(size=8).astype(np.float32),
             "head.fc.bias": np.arange(5, dtype=np.float64),
             "steps": np.array([7], dtype=np.int64),
             "mask": np.array([True, False]),
             "empty": np.zeros((0, 4), dtype=np.float32)}
    state["StructuredToParameterName@@"] = {k: f"param_{i}" for i, k in enumerate(state)}
    return state


def test_protocol_2_pdparams_load(tmp_path):
    from ppocr_torch.formats.pdparams import read_pdparams

    state = _paddle_like_state()
    path = tmp_path / "p2.pdparams"
    path.write_bytes(pickle.dumps(state, protocol=2))
    assert b"_codecs\nencode" in path.read_bytes() and b"__builtin__\nbytes" in path.read_bytes()
    got = read_pdparams(path)
    assert sorted(got) == sorted(k for k in state if k != "StructuredToParameterName@@")
    for k, v in got.items():
        assert v.dtype == state[k].dtype and v.shape == state[k].shape and np.array_equal(v, state[k]), k


class _Call:
    """Pickles as ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("obj, fragment", [
    (_Call(__import__("codecs").encode, "abc", "utf-8"), "encode(str, 'latin1')"),
    (_Call(__import__("codecs").encode, b"abc", "latin1"), "encode(str, 'latin1')"),
    (_Call(__import__("codecs").encode, "abc", "latin1", "strict"), "encode(str, 'latin1')"),
    (_Call(bytes, 10 ** 12), "bytes() is allowed only without arguments"),
    (_Call(bytes, "abc", "utf-8"), "bytes() is allowed only without arguments"),
])
def test_protocol_2_globals_are_accepted_with_their_exact_arguments_only(tmp_path, obj, fragment):
    from ppocr_torch.errors import SourceFormatError
    from ppocr_torch.formats.pdparams import read_pdparams

    path = tmp_path / "odd.pdparams"
    path.write_bytes(pickle.dumps({"w": obj}, protocol=2))
    with pytest.raises(SourceFormatError) as info:
        read_pdparams(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("arr, dtype", [
    (np.array(["a", None], dtype=object), "object"),
    (np.array([1.0, 2.0], dtype=object), "object"),
    (np.array([1 + 2j], dtype=np.complex64), "complex64"),
    (np.array([1 + 2j], dtype=np.complex128), "complex128"),
    (np.array(["ab"]), "str"),
    (np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]), "void"),
    (np.zeros(2, dtype=np.uint16), "uint16"),
])
def test_non_real_arrays_are_refused_naming_the_tensor(tmp_path, protocol, arr, dtype):
    from ppocr_torch.errors import SourceFormatError
    from ppocr_torch.formats.pdparams import read_pdparams

    path = tmp_path / "odd.pdparams"
    path.write_bytes(pickle.dumps({"ok": np.zeros(3, np.float32), "head.odd": arr}, protocol=protocol))
    with pytest.raises(SourceFormatError) as info:
        read_pdparams(path)
    assert str(path) in str(info.value) and "tensor 'head.odd'" in str(info.value) and dtype in str(info.value)


@pytest.mark.paddle
@pytest.mark.parametrize("protocol", [2, 4])
def test_paddle_saved_pdparams_load_with_any_protocol(tmp_path, protocol):
    paddle = pytest.importorskip("paddle")
    from ppocr_torch.formats.pdparams import read_pdparams

    state = {k: v for k, v in _paddle_like_state().items() if k not in ("StructuredToParameterName@@", "empty")}
    path = tmp_path / f"p{protocol}.pdparams"
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(path), protocol=protocol)
    got = read_pdparams(path)
    assert sorted(got) == sorted(state)
    for k, v in got.items():
        assert v.dtype == state[k].dtype and np.array_equal(v, state[k]), k

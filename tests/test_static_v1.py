"""PaddleOCR 1.x static-graph models (ch_ppocr_mobile_v1.1_rec): the Paddle 1.x tensor/program reader, the
1.x name mapping, the 1.x sequence encoder (``rnn_v1``), and clear errors on broken files.

No official 1.x file is reachable, so the evidence is:

* files written here by an independent writer that follows Paddle's format (lod_tensor.cc
  ``SerializeToStream``, tensor_util.cc ``TensorToStream``, framework.proto), read back exactly;
* files written by Paddle itself (Paddle 3.3, legacy program IR: the ``save``/``save_combine`` ops behind
  ``fluid.io.save_vars``/``save_inference_model``) for a network built like PaddleOCR 1.x with Paddle's legacy
  kernels (conv2d, batch_norm, im2sequence, mul, lstm): read exactly, converted, and the torch model must
  reproduce Paddle's probabilities;
* the record format on a real official file: PP-OCRv5_mobile_rec ``inference.pdiparams`` (same
  ``save_combine`` records), compared with Paddle's own loader;
* the 1.x LSTM against a numpy implementation of the equations documented for Paddle's ``lstm`` operator;
* a real PaddleOCR 1.x training program (``best_accuracy.pdmodel`` of github.com/maomaoyuchengzi/
  paddlepaddle_param_to_pyotrch, commit ec55283) when ``PPOCR_V1_PROGRAM`` points to it.
"""

import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from conversion.errors import ConversionError, SourceFormatError, SpecMismatchError
from conversion.readers.static_v1 import (iter_records, read_combined, read_program, read_static_model,
                                          read_tensor_file)
from conversion.rules_v1 import check_program, convert_static_v1, map_v1_state
from ppocr_torch import registry
from ppocr_torch.models.build import build_model

NAME = "ch_ppocr_mobile_v1.1_rec"

# ------------------------------------------------------------------ an independent writer (the spec)

CODES = {np.dtype("float32"): 5, np.dtype("float64"): 6, np.dtype("float16"): 4, np.dtype("int64"): 3,
         np.dtype("int32"): 2, np.dtype("int16"): 1, np.dtype("bool"): 0, np.dtype("uint8"): 20,
         np.dtype("int8"): 21}


def varint(v):
    v &= (1 << 64) - 1  # proto int64/enum: negative numbers are 10-byte two's complement
    out = b""
    while True:
        if v < 0x80:
            return out + bytes([v])
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7


def key(field, wire):
    return varint(field << 3 | wire)


def ld(field, payload):
    return key(field, 2) + varint(len(payload)) + payload


def tensor_desc(code, dims, packed=False):
    out = key(1, 0) + varint(code)
    if packed:
        return out + ld(2, b"".join(varint(d) for d in dims))
    return out + b"".join(key(2, 0) + varint(d) for d in dims)


def record(arr, lod=(), packed=False, version=0, tversion=0, code=None, desc=None):
    arr = np.asarray(arr)
    desc = tensor_desc(CODES[arr.dtype] if code is None else code, arr.shape, packed) if desc is None else desc
    head = struct.pack("<I", version) + struct.pack("<Q", len(lod))
    for level in lod:
        head += struct.pack("<Q", 8 * len(level)) + struct.pack(f"<{len(level)}Q", *level)
    return head + struct.pack("<I", tversion) + struct.pack("<i", len(desc)) + desc + arr.astype(
        arr.dtype.newbyteorder("<")).tobytes()


def var_desc(name, shape, persistable=True, vtype=7):
    tdesc = tensor_desc(5, shape)
    vt = key(1, 0) + varint(vtype) + (ld(3, ld(1, tdesc)) if vtype == 7 else b"")
    return ld(1, name.encode()) + ld(2, vt) + (key(3, 0) + varint(1) if persistable else b"")


def program_desc(shapes):
    """A minimal ProgramDesc: block 0 with feed/fetch variables, one activation and the parameters."""
    vars_ = [var_desc("feed", [], vtype=9), var_desc("fetch", [], vtype=10),
             var_desc("image", [-1, 3, 32, -1], persistable=False)]
    vars_ += [var_desc(n, s) for n, s in shapes.items()]
    op = ld(3, b"conv2d") + ld(1, ld(1, b"Filter") + ld(2, b"conv1_weights")) + ld(4, ld(1, b"strides") + key(2, 0)
                                                                                + varint(3) + key(6, 0) + varint(2)
                                                                                + key(6, 0) + varint(2))
    block = key(1, 0) + varint(0) + key(2, 0) + varint(-1) + b"".join(ld(3, v) for v in vars_) + ld(4, op)
    return ld(1, block)


# ------------------------------------------------------------------ the 1.x variables (from PaddleOCR 1.x code)

def make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


# rec_mobilenet_v3.py "small": (kernel, expand, out, use_se)
SMALL = [(3, 16, 16, True), (3, 72, 24, False), (3, 88, 24, False), (5, 96, 40, True), (5, 240, 40, True),
         (5, 240, 40, True), (5, 120, 48, True), (5, 144, 48, True), (5, 288, 96, True), (5, 576, 96, True),
         (5, 576, 96, True)]


def v1_shapes(hidden=48, ncls=6625, scale=0.5):
    """{1.x variable: shape} of a PaddleOCR 1.x MobileNetV3-small + rnn + CTC recognizer, from 1.x code."""
    shapes = {}

    def conv_bn(name, cout, cin, k):
        shapes[name + "_weights"] = (cout, cin, k, k)
        for s in ("scale", "offset", "mean", "variance"):
            shapes[f"{name}_bn_{s}"] = (cout,)

    cin = make_divisible(16 * scale)
    conv_bn("conv1", cin, 3, 3)
    for i, (k, exp, c, se) in enumerate(SMALL):
        n, mid, out = f"conv{i + 2}", make_divisible(scale * exp), make_divisible(scale * c)
        conv_bn(n + "_expand", mid, cin, 1)
        conv_bn(n + "_depthwise", mid, 1, k)
        if se:
            shapes.update({n + "_se_1_weights": (mid // 4, mid, 1, 1), n + "_se_1_offset": (mid // 4,),
                           n + "_se_2_weights": (mid, mid // 4, 1, 1), n + "_se_2_offset": (mid,)})
        conv_bn(n + "_linear", out, mid, 1)
        cin = out
    last = make_divisible(scale * 576)
    conv_bn("conv_last", last, cin, 1)
    for d in (1, 2):
        for st in (1, 2):
            shapes[f"lstm_st{st}_fc{d}_w"] = (last if st == 1 else hidden, 4 * hidden)
            shapes[f"lstm_st{st}_fc{d}_b"] = (4 * hidden,)
            shapes[f"lstm_st{st}_out{d}_w"] = (hidden, 4 * hidden)
            shapes[f"lstm_st{st}_out{d}_b"] = (1, 4 * hidden)
    shapes["ctc_fc_w_attr"] = (2 * hidden, ncls)
    shapes["ctc_fc_b_attr"] = (ncls,)
    return shapes


def random_weights(shapes, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for n, s in shapes.items():
        if n.endswith(("_variance", "_bn_scale")):
            a = rng.uniform(0.5, 1.5, s)
        elif n.endswith("_weights"):
            a = rng.normal(0, 1, s) / np.sqrt(np.prod(s[1:]))
        elif n.endswith(("_w", "_w_attr")):
            a = rng.normal(0, 1, s) / np.sqrt(s[0])
        else:
            a = rng.normal(0, 0.3, s)
        out[n] = a.astype(np.float32)
    return out


@pytest.fixture(scope="module")
def spec():
    return registry.get_entry(NAME).spec


@pytest.fixture(scope="module")
def weights(spec):
    return random_weights(v1_shapes(spec.neck["hidden_size"], spec.num_classes))


# ------------------------------------------------------------------ numpy reference of the fluid LSTM

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def fluid_lstm(x_proj, w, b, reverse):
    """Paddle ``lstm`` op, use_peepholes=False, as documented: gate blocks (c, i, f, o); x already projected."""
    hsz = w.shape[0]
    h, c = np.zeros(hsz), np.zeros(hsz)
    out = np.zeros((len(x_proj), hsz))
    for t in (range(len(x_proj) - 1, -1, -1) if reverse else range(len(x_proj))):
        g = x_proj[t] + h @ w + b.reshape(-1)
        cand, i, f, o = g[:hsz], g[hsz:2 * hsz], g[2 * hsz:3 * hsz], g[3 * hsz:]
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(cand)
        h = sigmoid(o) * np.tanh(c)
        out[t] = h
    return out


def v1_encoder_reference(seq, p):
    """PaddleOCR 1.x EncoderWithRNN on one sequence [T, C] (float64), then the concatenation."""
    outs = []
    for d in (1, 2):
        x = seq
        for st in (1, 2):
            proj = x @ p[f"lstm_st{st}_fc{d}_w"].astype(np.float64) + p[f"lstm_st{st}_fc{d}_b"]
            x = fluid_lstm(proj, p[f"lstm_st{st}_out{d}_w"].astype(np.float64),
                           p[f"lstm_st{st}_out{d}_b"].astype(np.float64), reverse=d == 2)
        outs.append(x)
    return np.concatenate(outs, axis=1)


def fluid_to_torch_rows(a, hsz):
    """Gate blocks of a [4H, ...] array from Paddle's (c, i, f, o) to PyTorch's (i, f, g, o), by hand."""
    return np.concatenate([a[hsz:2 * hsz], a[2 * hsz:3 * hsz], a[:hsz], a[3 * hsz:]], axis=0)


# ------------------------------------------------------------------ reader: round trips

@pytest.mark.parametrize("dtype", sorted(CODES, key=str))
@pytest.mark.parametrize("packed", [False, True])
def test_record_roundtrip_every_dtype(tmp_path, dtype, packed):
    rng = np.random.default_rng(1)
    arr = (rng.normal(0, 10, (3, 1, 4)) > 0) if dtype == np.bool_ else rng.normal(0, 50, (3, 1, 4))
    arr = arr.astype(dtype)
    f = tmp_path / "v"
    f.write_bytes(record(arr, lod=[[0, 1, 3]], packed=packed))
    got, lod = read_tensor_file(f, with_lod=True)
    assert got.dtype == arr.dtype and got.shape == arr.shape and np.array_equal(got, arr)
    assert lod == [[0, 1, 3]]


def test_scalar_and_empty_tensors(tmp_path):
    for arr in (np.float32(2.5).reshape(()), np.zeros((0, 7), np.float32)):
        f = tmp_path / "v"
        f.write_bytes(record(arr))
        got = read_tensor_file(f)
        assert got.shape == arr.shape and np.array_equal(got, arr)


def test_full_model_per_variable_and_combined_roundtrip(tmp_path, weights):
    shapes = {n: a.shape for n, a in weights.items()}
    per_var = tmp_path / "per_var"
    per_var.mkdir()
    for n, a in weights.items():
        (per_var / n).write_bytes(record(a))
    (per_var / "__model__").write_bytes(program_desc(shapes))
    export = tmp_path / "export"  # PaddleOCR 1.x inference layout: model + params
    export.mkdir()
    (export / "model").write_bytes(program_desc(shapes))
    (export / "params").write_bytes(b"".join(record(weights[n]) for n in sorted(weights)))

    for folder, layout in ((per_var, "per-variable"), (export, "combined")):
        sm = read_static_model(folder)
        assert sm.layout == layout
        assert set(sm.tensors) == set(weights)  # feed/fetch/activations are not parameters
        for n, a in weights.items():
            assert sm.tensors[n].dtype == np.float32 and np.array_equal(sm.tensors[n], a), n
    prog = read_program(export / "model")
    assert sorted(prog.persistable_names()) == sorted(weights)
    assert prog.global_block.vars["image"].shape == [-1, 3, 32, -1]  # negative dims (10-byte varints)
    conv = prog.global_block.ops[0]
    assert conv.type == "conv2d" and conv.inputs["Filter"] == ["conv1_weights"] and conv.attrs["strides"] == [2, 2]
    # the combined file read with the caller's names, and without a program (folder of files only)
    assert np.array_equal(read_combined(export / "params", list(weights))["ctc_fc_w_attr"], weights["ctc_fc_w_attr"])
    (per_var / "__model__").unlink()
    assert set(read_static_model(per_var).tensors) == set(weights)


# ------------------------------------------------------------------ mapping and the 1.x encoder

def test_mapping_fills_every_torch_tensor_exactly_once(spec, weights):
    model = build_model(spec, form="train")
    state, report = map_v1_state(weights, model)
    target = model.state_dict()
    assert set(state) == set(target)
    floats = [k for k, v in target.items() if v.is_floating_point()]
    assert len(floats) == len(weights) == 229  # one 1.x variable per torch tensor, none left over
    assert report.dropped == {}
    hsz = spec.neck["hidden_size"]
    # spot-check each transform against hand-written expectations
    assert np.array_equal(state["backbone.conv1.conv.weight"].numpy(), weights["conv1_weights"])
    assert np.array_equal(state["backbone.blocks.0.mid_se.conv2.bias"].numpy(), weights["conv2_se_2_offset"])
    assert np.array_equal(state["backbone.blocks.10.bottleneck_conv.bn.running_var"].numpy(),
                          weights["conv12_depthwise_bn_variance"])
    assert np.array_equal(state["backbone.conv2.bn.weight"].numpy(), weights["conv_last_bn_scale"])
    assert np.array_equal(state["neck.encoder.lstm_bw.weight_ih_l1"].numpy(),
                          fluid_to_torch_rows(weights["lstm_st2_fc2_w"].T, hsz))
    assert np.array_equal(state["neck.encoder.lstm_fw.bias_hh_l0"].numpy(),
                          fluid_to_torch_rows(weights["lstm_st1_out1_b"][0], hsz))
    w = weights["ctc_fc_w_attr"].T
    assert np.array_equal(state["head.fc.weight"].numpy()[0], w[-1])  # 1.x blank (last) -> class 0
    assert np.array_equal(state["head.fc.weight"].numpy()[1:], w[:-1])
    # every source value appears in exactly one torch tensor: total element counts agree
    assert sum(state[k].numel() for k in floats) == sum(a.size for a in weights.values())


def test_mapping_errors(spec, weights):
    model = build_model(spec, form="train")
    extra = dict(weights, conv1_weights_moment1_0=np.zeros(1, np.float32), learning_rate_0=np.ones(1, np.float32))
    _, report = map_v1_state(extra, model)
    assert report.dropped == {"optimizer/training state": 2}
    with pytest.raises(ConversionError, match="missing from the source"):
        map_v1_state({k: v for k, v in weights.items() if k != "lstm_st2_out2_w"}, model)
    with pytest.raises(ConversionError, match="'res2a_branch2a_weights' has no place"):
        map_v1_state(dict(weights, res2a_branch2a_weights=np.zeros(1, np.float32)), model)
    bad = dict(weights, ctc_fc_w_attr=weights["ctc_fc_w_attr"][:, :-1], ctc_fc_b_attr=weights["ctc_fc_b_attr"][:-1])
    with pytest.raises(SpecMismatchError, match="6624 classes but the dictionary/config give 6625"):
        map_v1_state(bad, model)


def test_rnn_v1_equals_numpy_fluid_lstm_reference(spec, weights):
    model = build_model(spec, form="train")
    model.load_state_dict(map_v1_state(weights, model)[0])
    neck = model.neck.encoder.eval()
    rng = np.random.default_rng(3)
    seq = rng.normal(0, 1, (2, 40, 288))
    ref = np.stack([v1_encoder_reference(s, weights) for s in seq])
    with torch.no_grad():
        got32 = neck(torch.from_numpy(seq).float()).numpy()
        got64 = neck.double()(torch.from_numpy(seq)).numpy()
    assert got32.shape == (2, 40, 96)
    assert np.abs(got64 - ref).max() < 1e-12  # the mapping and the stack structure are exact
    assert np.abs(got32 - ref).max() < 1e-6
    assert np.abs(ref[:, :, :48] - ref[:, ::-1, 48:][:, ::-1]).max() > 1e-2  # the two stacks differ


# ------------------------------------------------------------------ broken files

def _expect(path, *phrases):
    with pytest.raises(SourceFormatError) as exc:
        read_tensor_file(path)
    msg = str(exc.value)
    assert str(path) in msg
    for p in phrases:
        assert p in msg, msg


def test_truncated_files_fail_clearly(tmp_path):
    good = record(np.arange(24, dtype=np.float32).reshape(2, 3, 4), lod=[[0, 2]])
    for cut, what in ((0, "LoDTensor version"), (3, "LoDTensor version"), (10, "lod_level"),
                      (15, "size of LoD level 0"), (30, "LoD level 0"), (38, "Tensor version"),
                      (42, "TensorDesc size"), (46, "TensorDesc"), (len(good) - 1, "data of shape [2, 3, 4]")):
        f = tmp_path / f"cut{cut}"
        f.write_bytes(good[:cut])
        _expect(f, "truncated or corrupt", what)


def test_corrupt_files_fail_clearly(tmp_path):
    a = np.ones((2, 2), np.float32)
    cases = {
        "version": (record(a, version=7), ["unsupported LoDTensor version 7"]),
        "tversion": (record(a, tversion=3), ["unsupported Tensor version 3"]),
        "size_t": (record(a, code=19), ["unsupported data type SIZE_T (VarType.Type 19)"]),
        "unknown_dtype": (record(a, code=99), ["unsupported data type unknown (VarType.Type 99)"]),
        "no_dtype": (record(a, desc=key(2, 0) + varint(2)), ["required field data_type is missing"]),
        "negative_dim": (record(a, desc=tensor_desc(5, [2, -2])), ["corrupt TensorDesc dims [2, -2]"]),
        "bad_varint": (record(a, desc=key(1, 0) + b"\xff" * 11), ["varint longer than 10 bytes"]),
        "bad_wire": (record(a, desc=key(1, 0) + varint(5) + key(3, 3)), ["unsupported wire type 3"]),
        "trailing": (record(a) + b"\0" * 5, ["5 unexpected bytes after the tensor"]),
        "huge_lod": (struct.pack("<IQ", 0, 10 ** 9), ["corrupt LoDTensor header"]),
        "odd_lod": (struct.pack("<IQQ", 0, 1, 12) + b"\0" * 12, ["not a multiple of 8"]),
        "desc_size": (struct.pack("<IQIi", 0, 0, 0, -4), ["corrupt TensorDesc size -4"]),
        "text": (b"this is not a tensor file at all", ["unsupported LoDTensor version"]),
    }
    for name, (data, phrases) in cases.items():
        f = tmp_path / name
        f.write_bytes(data)
        _expect(f, *phrases)
    with pytest.raises(SourceFormatError, match="no such file"):
        read_tensor_file(tmp_path / "missing")


def test_combined_file_record_count_mismatch(tmp_path, weights):
    names = sorted(weights)[:5]
    f = tmp_path / "params"
    f.write_bytes(b"".join(record(weights[n]) for n in names))
    with pytest.raises(SourceFormatError, match=r"holds 5 tensors but 6 persistable variables are expected"):
        read_combined(f, names + ["zz_extra"])
    with pytest.raises(SourceFormatError, match=r"holds 5 tensors but 4 variable names were given"):
        read_combined(f, names[:4])
    f.write_bytes(f.read_bytes()[:-3])
    with pytest.raises(SourceFormatError, match=r"record 4 \('.*'\): data of shape"):
        read_combined(f, names)
    # a params file that does not belong to the program next to it: shapes are checked
    d = tmp_path / "export"
    d.mkdir()
    (d / "model").write_bytes(program_desc({n: weights[n].shape for n in names}))
    (d / "params").write_bytes(b"".join(record(weights[n].reshape(-1)[:1]) for n in names))
    with pytest.raises(SourceFormatError, match="in the parameter file but .* in the program"):
        read_static_model(d)


# ------------------------------------------------------------------ files written by Paddle itself

PADDLE_V1_NET = textwrap.dedent(r'''
    # A PaddleOCR 1.x ch_ppocr_mobile_v1.1_rec network (rec_mobilenet_v3 small x0.5, small_stride [1,2,2,2];
    # rec_seq_encoder rnn hidden 48; rec_ctc_head), built with Paddle's legacy static program and kernels.
    import os, sys, shutil
    os.environ["FLAGS_enable_pir_api"] = "0"
    import numpy as np
    import paddle
    from paddle import ParamAttr

    out, hidden, ncls = sys.argv[1], 48, int(sys.argv[2])
    paddle.enable_static()
    main, startup = paddle.static.Program(), paddle.static.Program()

    def md(v, d=8):
        n = max(d, int(v + d / 2) // d * d)
        return n + d if n < 0.9 * v else n

    def conv_bn(x, k, n, stride, pad, groups=1, act=None, name=None):
        y = paddle.static.nn.conv2d(x, n, k, stride=stride, padding=pad, groups=groups,
                                    param_attr=ParamAttr(name=name + "_weights"), bias_attr=False)
        y = paddle.static.nn.batch_norm(y, is_test=True, param_attr=ParamAttr(name=name + "_bn_scale"),
                                        bias_attr=ParamAttr(name=name + "_bn_offset"),
                                        moving_mean_name=name + "_bn_mean", moving_variance_name=name + "_bn_variance")
        if act == "relu":
            y = paddle.nn.functional.relu(y)
        elif act == "hard_swish":
            y = paddle.nn.functional.hardswish(y)
        return y

    def se(x, c, name):
        p = paddle.nn.functional.adaptive_avg_pool2d(x, 1)
        y = paddle.static.nn.conv2d(p, c // 4, 1, param_attr=ParamAttr(name=name + "_1_weights"),
                                    bias_attr=ParamAttr(name=name + "_1_offset"), act="relu")
        y = paddle.static.nn.conv2d(y, c, 1, param_attr=ParamAttr(name=name + "_2_weights"),
                                    bias_attr=ParamAttr(name=name + "_2_offset"))
        return x * paddle.nn.functional.hardsigmoid(y, slope=0.2, offset=0.5)

    cfg = [[3, 16, 16, True, "relu", (1, 1)], [3, 72, 24, False, "relu", (2, 1)], [3, 88, 24, False, "relu", 1],
           [5, 96, 40, True, "hard_swish", (2, 1)], [5, 240, 40, True, "hard_swish", 1],
           [5, 240, 40, True, "hard_swish", 1], [5, 120, 48, True, "hard_swish", 1],
           [5, 144, 48, True, "hard_swish", 1], [5, 288, 96, True, "hard_swish", (2, 1)],
           [5, 576, 96, True, "hard_swish", 1], [5, 576, 96, True, "hard_swish", 1]]
    with paddle.static.program_guard(main, startup):
        img = paddle.static.data("image", [-1, 3, 32, -1], "float32")
        x = conv_bn(img, 3, 8, 2, 1, act="hard_swish", name="conv1")
        cin = 8
        for i, (k, e, c, use_se, act, st) in enumerate(cfg):
            name, mid, cout = "conv%d" % (i + 2), md(0.5 * e), md(0.5 * c)
            y = conv_bn(x, 1, mid, 1, 0, act=act, name=name + "_expand")
            y = conv_bn(y, k, mid, st, (k - 1) // 2, groups=mid, act=act, name=name + "_depthwise")
            if use_se:
                y = se(y, mid, name + "_se")
            y = conv_bn(y, 1, cout, 1, 0, name=name + "_linear")
            x = y if (cin != cout or st != 1) else x + y
            cin = cout
        x = conv_bn(x, 1, 288, 1, 0, act="hard_swish", name="conv_last")
        x = paddle.nn.functional.max_pool2d(x, 2, 2, 0)
        blk = main.global_block()

        def var(name, lod=1):
            return blk.create_var(name=name, dtype="float32", lod_level=lod)

        seq = var("sliced_feature")
        blk.append_op(type="im2sequence", inputs={"X": x}, outputs={"Out": seq},
                      attrs={"kernels": [1, 1], "strides": [1, 1], "paddings": [0, 0, 0, 0]})
        outs = []
        for d in (1, 2):
            h = seq
            for st in (1, 2):
                fw = paddle.static.create_parameter([288 if st == 1 else hidden, 4 * hidden], "float32",
                                                    name="lstm_st%d_fc%d_w" % (st, d))
                fb = paddle.static.create_parameter([4 * hidden], "float32", name="lstm_st%d_fc%d_b" % (st, d))
                mul, fc = var("fc_%d_%d.mul" % (st, d)), var("fc_%d_%d.out" % (st, d))
                blk.append_op(type="mul", inputs={"X": h, "Y": fw}, outputs={"Out": mul},
                              attrs={"x_num_col_dims": 1, "y_num_col_dims": 1})
                blk.append_op(type="elementwise_add", inputs={"X": mul, "Y": fb}, outputs={"Out": fc},
                              attrs={"axis": 1})
                lw = paddle.static.create_parameter([hidden, 4 * hidden], "float32", name="lstm_st%d_out%d_w" % (st, d))
                lb = paddle.static.create_parameter([1, 4 * hidden], "float32", name="lstm_st%d_out%d_b" % (st, d))
                h = var("lstm_%d_%d.h" % (st, d))
                blk.append_op(type="lstm", inputs={"Input": fc, "Weight": lw, "Bias": lb},
                              outputs={"Hidden": h, "Cell": var("lstm_%d_%d.c" % (st, d)),
                                       "BatchGate": var("lstm_%d_%d.g" % (st, d), 0),
                                       "BatchCellPreAct": var("lstm_%d_%d.p" % (st, d), 0)},
                              attrs={"use_peepholes": False, "is_reverse": d == 2, "gate_activation": "sigmoid",
                                     "cell_activation": "tanh", "candidate_activation": "tanh"})
            outs.append(h)
        cat = var("concat_0.tmp_0")
        blk.append_op(type="concat", inputs={"X": outs}, outputs={"Out": cat}, attrs={"axis": 1})
        cw = paddle.static.create_parameter([2 * hidden, ncls], "float32", name="ctc_fc_w_attr")
        cb = paddle.static.create_parameter([ncls], "float32", name="ctc_fc_b_attr")
        mul, logits = var("ctc_fc.tmp_0"), var("ctc_fc.tmp_1")
        blk.append_op(type="mul", inputs={"X": cat, "Y": cw}, outputs={"Out": mul},
                      attrs={"x_num_col_dims": 1, "y_num_col_dims": 1})
        blk.append_op(type="elementwise_add", inputs={"X": mul, "Y": cb}, outputs={"Out": logits}, attrs={"axis": 1})
        probs = paddle.nn.functional.softmax(logits)

    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    scope = paddle.static.global_scope()
    rng = np.random.default_rng(7)
    params = {}
    for v in main.list_vars():
        if not v.persistable or v.name in ("feed", "fetch"):
            continue
        shape = tuple(scope.find_var(v.name).get_tensor().shape())
        if v.name.endswith(("_variance", "_bn_scale")):
            a = rng.uniform(0.5, 1.5, shape)
        elif v.name.endswith("_weights"):
            a = rng.normal(0, 1, shape) / np.sqrt(np.prod(shape[1:]))
        elif len(shape) == 2 and v.name.endswith(("_w", "_w_attr")):
            a = rng.normal(0, 1, shape) / np.sqrt(shape[0])
        else:
            a = rng.normal(0, 0.3, shape)
        params[v.name] = a.astype("float32")
        scope.find_var(v.name).get_tensor().set(params[v.name], paddle.CPUPlace())
    image = rng.uniform(-1, 1, (2, 3, 32, 96)).astype("float32")
    res, neck = exe.run(main, feed={"image": image}, fetch_list=[probs, cat], return_numpy=False)
    np.save(os.path.join(out, "neck.npy"), np.array(neck))
    np.savez(os.path.join(out, "params.npz"), **params)
    np.save(os.path.join(out, "image.npy"), image)
    np.save(os.path.join(out, "probs.npy"), np.array(res))
    persist = [v for v in main.list_vars() if v.name in params]
    paddle.static.io.save_vars(exe, os.path.join(out, "per_var"), main, vars=persist)  # `save` op per variable
    paddle.static.io.save_vars(exe, os.path.join(out, "combined"), main, vars=persist, filename="__params__")
    paddle.static.save_inference_model(os.path.join(out, "infer", "inference"), [img], [probs], exe, program=main)
    os.makedirs(os.path.join(out, "v1_export"))
    shutil.copy(os.path.join(out, "infer", "inference.pdmodel"), os.path.join(out, "v1_export", "model"))
    shutil.copy(os.path.join(out, "infer", "inference.pdiparams"), os.path.join(out, "v1_export", "params"))
''')


def _run_paddle(script, *args, timeout=300):
    pytest.importorskip("paddle")
    env = dict(os.environ, PYTHONWARNINGS="ignore", GLOG_minloglevel="2")
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def paddle_written(tmp_path_factory):
    out = tmp_path_factory.mktemp("paddle_v1")
    _run_paddle(PADDLE_V1_NET, out, 6625)
    return out


@pytest.mark.paddle
def test_paddle_written_files_read_exactly(paddle_written):
    ref = dict(np.load(paddle_written / "params.npz"))
    assert len(ref) == 229
    for sub, layout in (("per_var", "per-variable"), ("v1_export", "combined"), ("infer", "combined")):
        sm = read_static_model(paddle_written / sub)
        assert sm.layout == layout and (sm.program is not None) == (sub != "per_var")
        assert set(sm.tensors) == set(ref), sub
        for n, a in ref.items():
            assert sm.tensors[n].dtype == a.dtype and np.array_equal(sm.tensors[n], a), (sub, n)
    combined = read_combined(paddle_written / "combined" / "__params__", list(ref))  # names from the caller
    assert all(np.array_equal(combined[n], a) for n, a in ref.items())
    assert set(ref) == set(v1_shapes())  # Paddle named and shaped them as the 1.x code does
    assert all(ref[n].shape == s for n, s in v1_shapes().items())


@pytest.mark.paddle
def test_paddle_written_model_converts_and_matches_paddle(paddle_written, spec):
    sm = read_static_model(paddle_written / "v1_export")
    model = build_model(spec, form="train")
    assert check_program(sm.program, model) == []
    with pytest.raises(ConversionError, match=r"does not match .*conv2_depthwise_weights: stride \(1, 1\)"):
        convert_static_v1(paddle_written / "v1_export", spec.replace(backbone=dict(spec.backbone,
                                                                                  small_stride=[2, 2, 2, 2])))
    stride_1 = build_model(spec.replace(backbone=dict(spec.backbone, small_stride=[2, 2, 2, 2])), form="train")
    assert check_program(sm.program, stride_1) == [
        "conv2_depthwise_weights: stride (1, 1) in the program, (2, 1) in backbone.blocks.0.bottleneck_conv.conv"]
    model.load_state_dict(map_v1_state(sm.tensors, model)[0])
    model.eval()
    image = torch.from_numpy(np.load(paddle_written / "image.npy"))
    ref = np.load(paddle_written / "probs.npy").reshape(2, 24, -1)  # [B*T, C] LoD rows -> [B, T, C]
    ref = np.concatenate([ref[..., -1:], ref[..., :-1]], axis=-1)  # 1.x blank last -> ours first
    deployed, _ = convert_static_v1(paddle_written / "v1_export", spec)  # the one-call path, deploy form
    with torch.no_grad():
        stages = model(image, return_stages=True)
        deploy_out = deployed(image).numpy()
    assert deployed.form == "deploy"
    neck_ref = np.load(paddle_written / "neck.npy").reshape(2, 24, 96)  # concat of the two 1.x LSTM stacks
    assert np.abs(stages["neck"].numpy() - neck_ref).max() < 1e-5
    for out in (stages["head"].numpy(), deploy_out):
        assert out.shape == ref.shape
        assert np.abs(np.log(out) - np.log(ref)).max() < 1e-4  # relative: 6625 classes make every p small
        assert (out.argmax(-1) == ref.argmax(-1)).all()


# ------------------------------------------------------------------ real files

OFFICIAL_LOADER = textwrap.dedent(r'''
    import sys, numpy as np, paddle
    paddle.enable_static()
    exe = paddle.static.Executor(paddle.CPUPlace())
    scope = paddle.static.Scope()
    with paddle.static.scope_guard(scope):
        paddle.static.load_inference_model(sys.argv[1], exe)
    vals = {}
    for n in scope.local_var_names():
        try:
            vals[n] = np.array(scope.find_var(n).get_tensor())
        except Exception:
            pass
    np.savez(sys.argv[2], **vals)
''')


@pytest.mark.paddle
def test_official_pdiparams_records_equal_paddles_loader(tmp_path, official_source):
    """The same ``save_combine`` records on a real official file: PP-OCRv5_mobile_rec inference.pdiparams."""

    model_path, _ = official_source("PP-OCRv5_mobile_rec", 1)
    prefix = str(model_path)[: -len(".json")]
    _run_paddle(OFFICIAL_LOADER, prefix, tmp_path / "vals.npz")
    vals = dict(np.load(tmp_path / "vals.npz"))
    records = list(iter_records(prefix + ".pdiparams"))
    assert len(records) == len(vals) == 234
    for name, rec in zip(sorted(vals), records):  # records are in sorted-name order
        assert rec.array.dtype == vals[name].dtype and np.array_equal(rec.array, vals[name]), name
        assert rec.lod == []


def test_registry_entry(spec):
    e = registry.get_entry(NAME)
    assert spec.neck == {"name": "rnn_v1", "hidden_size": 48}  # rec_chinese_lite_train_v1.1.yml SeqRNN
    assert spec.backbone == {"name": "MobileNetV3", "model_name": "small", "scale": 0.5, "small_stride": [1, 2, 2, 2]}
    assert spec.use_space_char and spec.num_classes == 6625 and spec.input_height == 32
    assert e.official["urls_verified"] is False and e.official["sources"] == []
    assert json.dumps(e.official).count("ch_ppocr_mobile_v1.1_rec") >= 2


@pytest.mark.paddle
def test_cli_converts_a_1x_export(paddle_written, tmp_path):
    import json
    import subprocess
    import sys

    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "conversion", "convert", "--static-v1", str(paddle_written / "v1_export"),
                           "--out", str(out)], cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    pth, = out.glob("ch_ppocr_mobile_v1.1_rec-*.pth")
    entry = json.loads(pth.with_suffix(".json").read_text(encoding="utf-8"))
    assert entry["parity"]["status"].startswith("not verified") and entry["spec"]["neck"]["name"] == "rnn_v1"
    from ppocr_torch import load_model

    assert load_model(pth).spec.num_classes == 6625

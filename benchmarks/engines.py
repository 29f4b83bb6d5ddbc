"""The engines the speed benchmark compares, each as ``build(model_name, threads) -> run(x) -> probabilities``.

``x`` is a float32 ``[B, 3, H, W]`` batch in [-1, 1], prepared once for every engine alike (PaddleOCR's
preprocessing), so the engines are compared on the network alone.

* ``ours``: ppocr_torch's deploy-form model (``load_model``), under ``torch.inference_mode``;
* ``ort``: the official ONNX export under ONNX Runtime (CPU, all graph optimisations);
* ``paddle`` / ``paddle_onednn``: the official Paddle inference export under Paddle Inference, plain kernels /
  oneDNN with IR passes (only where the registry pins a Paddle export);
* ``hf``: the Hugging Face transformers port of the same architecture, random weights (its default config);
* ``rapidocr``: RapidOCR's torch engine (its PaddleOCR2Pytorch networks), random weights.
"""

from __future__ import annotations

import numpy as np

# registry name -> transformers class name / RapidOCR arch_config key
HF_CLASSES = {"PP-OCRv6_small_rec": "PPOCRV6SmallRecForTextRecognition",
              "PP-OCRv6_tiny_rec": "PPOCRV6TinyRecForTextRecognition",
              "PP-OCRv5_mobile_rec": "PPOCRV5MobileRecForTextRecognition",
              "PP-OCRv5_server_rec": "PPOCRV5ServerRecForTextRecognition"}
RAPIDOCR_ARCHS = {"PP-OCRv6_small_rec": "PP-OCRv6_rec_small", "PP-OCRv6_tiny_rec": "PP-OCRv6_rec_tiny",
                  "PP-OCRv5_mobile_rec": "ch_PP-OCRv5_rec_mobile", "PP-OCRv4_mobile_rec": "ch_PP-OCRv4_rec_mobile"}
ENGINES = ("ours", "ort", "paddle", "paddle_onednn", "hf", "rapidocr")


class Unavailable(Exception):
    """The engine has no build of this model here (no official file of that format, not ported, not installed)."""


def _source(name, fmt):
    from conversion.official import fetch_source
    from ppocr_torch import registry

    for src in registry.get_entry(name).official.get("sources", []):
        if src.get("format") == fmt:
            return fetch_source(src)[0]
    raise Unavailable(f"no pinned {fmt} export of {name}")


def build_ours(name, threads):
    import torch

    from ppocr_torch import load_model

    from ppocr_torch.errors import PPOCRTorchError

    torch.set_num_threads(threads)
    try:
        model = load_model(name)
    except PPOCRTorchError:  # not embedded nor fetchable here: the conversion tool builds it from the pinned source
        from conversion.convert import convert_registry_model

        model = convert_registry_model(name)[0]

    def run(x):
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return run


def build_ort(name, threads):
    import onnxruntime as ort

    path = _source(name, "onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {inp: x})[0]


def _build_paddle(name, threads, onednn):
    from conversion.paddle_runtime import PaddleRunner

    runner = PaddleRunner(_source(name, "paddle_inference").parent, optimize=onednn, threads=threads)
    return lambda x: next(iter(runner.run(x).values()))


def build_paddle(name, threads):
    return _build_paddle(name, threads, False)


def build_paddle_onednn(name, threads):
    return _build_paddle(name, threads, True)


def build_hf(name, threads):
    import torch

    try:
        import transformers
    except ImportError as exc:
        raise Unavailable("transformers is not installed (pip install -r benchmarks/requirements.txt)") from exc
    if name not in HF_CLASSES:
        raise Unavailable(f"transformers has no port of {name}")
    torch.set_num_threads(threads)
    cls = getattr(transformers, HF_CLASSES[name])
    config_cls = getattr(transformers, HF_CLASSES[name].replace("ForTextRecognition", "Config"))
    kwargs = {}
    if name == "PP-OCRv5_mobile_rec":  # the port's default backbone config is not the recogniser's: give it
        from ppocr_torch.models.backbones.lcnet_v3 import NET_CONFIG_rec, STAGES  # PaddleOCR's rec table

        blocks = [[[k, i, o, list(st) if isinstance(st, tuple) else st, se] for k, i, o, st, se in NET_CONFIG_rec[s]]
                  for s in STAGES]
        kwargs["backbone_config"] = {"model_type": "pp_lcnet_v3", "scale": 0.95, "divisor": 16,
                                     "block_configs": blocks, "out_features": ["stage2", "stage3", "stage4", "stage5"],
                                     "out_indices": [2, 3, 4, 5]}
    torch.manual_seed(0)
    model = cls(config_cls(**kwargs)).eval()

    def run(x):
        with torch.inference_mode():
            out = model(pixel_values=torch.from_numpy(x))
        return out.logits.numpy() if hasattr(out, "logits") else np.asarray(out[0])

    return run


def build_rapidocr(name, threads):
    import torch

    try:
        from omegaconf import OmegaConf
        from rapidocr.inference_engine.pytorch.networks.architectures.base_model import BaseModel
        from rapidocr.inference_engine.pytorch.networks.main import ModelLoader
    except ImportError as exc:
        raise Unavailable("rapidocr is not installed (pip install -r benchmarks/requirements.txt)") from exc
    if name not in RAPIDOCR_ARCHS:
        raise Unavailable(f"RapidOCR's torch engine has no network for {name}")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    arch = OmegaConf.load(ModelLoader.DEFAULT_CFG_PATH).get(RAPIDOCR_ARCHS[name])
    model = BaseModel(arch).eval()

    def run(x):
        with torch.no_grad():  # what RapidOCR's TorchInferSession does
            return model(torch.from_numpy(x)).numpy()

    return run


BUILDERS = {"ours": build_ours, "ort": build_ort, "paddle": build_paddle, "paddle_onednn": build_paddle_onednn,
            "hf": build_hf, "rapidocr": build_rapidocr}

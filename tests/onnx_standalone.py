"""Read text lines with an ONNX file exported by ppocr_torch, with ONNX Runtime and numpy only: no torch, no ppocr_torch.

    python tests/onnx_standalone.py rec.onnx line1.png line2.png ...   ->  one "path<TAB>text" line per image

Run by tests/test_export.py in a subprocess to prove that an export is usable without torch: before anything else
is imported, a ``sys.meta_path`` finder makes every ``import torch*`` (and ``import ppocr_torch*``) raise
ImportError, and the script exits with status 3 if either is in ``sys.modules`` at the end. Everything the model
needs comes from the file's metadata: the dictionary (``character``), the input height, base width and
space class (``ppocr_torch.spec``), and the channel order and normalisation (``ppocr_torch.export``). OpenCV reads
and resizes the images, as PaddleOCR does.
"""

import sys

BLOCKED = ("torch", "ppocr_torch")


class _Blocker:
    """A meta-path finder that refuses the blocked packages and their submodules."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: this script must run without it")
        return None


sys.meta_path.insert(0, _Blocker())

import json  # noqa: E402
import math  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

NORMALIZE = "(pixel / 255 - 0.5) / 0.5"


def load(path):
    """(session, input name, height, base width, class list, bgr?) from the file and its metadata."""
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    spec = json.loads(meta["ppocr_torch.spec"])
    info = json.loads(meta["ppocr_torch.export"])
    if info["input"]["normalize"] != NORMALIZE:
        sys.exit(f"unknown normalisation {info['input']['normalize']!r}")
    classes = ["blank", *meta["character"].split("\n")] + ([" "] if spec["use_space_char"] else [])
    if len(classes) != spec["num_classes"]:
        sys.exit(f"the dictionary gives {len(classes)} classes, the spec {spec['num_classes']}")
    return (session, info["input"]["name"], spec["input_height"], spec["base_width"], classes,
            info["input"]["channel_order"] == "bgr")


def preprocess(img_bgr, height, base_width, bgr):
    """PaddleOCR's resize_norm_img for one line: width ``int(height * max(base_width / height, w / h))``, the line
    resized to ``height`` x ``min(width, ceil(height * w / h))``, normalised, right-padded with zeros."""
    h, w = img_bgr.shape[:2]
    width = int(height * max(base_width / height, w / h))
    resized_w = max(1, min(width, math.ceil(height * w / h)))
    img = cv2.resize(img_bgr if bgr else img_bgr[:, :, ::-1], (resized_w, height))
    x = np.zeros((1, 3, height, width), np.float32)
    x[0, :, :, :resized_w] = (img.astype(np.float32).transpose(2, 0, 1) / 255 - 0.5) / 0.5
    return x


def ctc_greedy(probs, classes):
    """Best class per step; drop repeats, then blanks."""
    best = probs.argmax(axis=1)
    keep = (best != 0) & np.r_[True, best[1:] != best[:-1]]
    return "".join(classes[i] for i in best[keep])


def main(argv):
    try:
        __import__("torch")
    except ImportError:
        pass
    else:
        print("import torch succeeded although blocked", file=sys.stderr)
        return 4
    session, input_name, height, base_width, classes, bgr = load(argv[0])
    for path in argv[1:]:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            sys.exit(f"cannot read {path}")
        probs = session.run(None, {input_name: preprocess(img, height, base_width, bgr)})[0][0]
        print(f"{path}\t{ctc_greedy(probs, classes)}")
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    if leaked:
        print(f"imported although blocked: {leaked}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

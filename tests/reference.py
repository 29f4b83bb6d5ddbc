"""Independent reference of PaddleOCR's predict_rec preprocessing and CTC decoding, written from
PaddleOCR's tools/infer/predict_rec.py semantics, used to drive the official runtime in tests.

Kept deliberately plain (no ppocr_torch imports) so parity tests do not check our code against itself.
"""

import math

import cv2
import numpy as np


def resize_norm_img(img, img_h, max_wh_ratio):
    img_w = int(img_h * max_wh_ratio)
    h, w = img.shape[:2]
    ratio = w / float(h)
    resized_w = img_w if math.ceil(img_h * ratio) > img_w else int(math.ceil(img_h * ratio))
    resized = cv2.resize(img, (resized_w, img_h)).astype("float32")
    resized = resized.transpose((2, 0, 1)) / 255
    resized -= 0.5
    resized /= 0.5
    out = np.zeros((3, img_h, img_w), dtype=np.float32)
    out[:, :, 0:resized_w] = resized
    return out


def paddle_batch(images, img_h, base_w=320):
    """PaddleOCR: one batch padded to the widest ratio (at least base_w / img_h)."""
    ratio = max([base_w / img_h] + [im.shape[1] / float(im.shape[0]) for im in images])
    return np.stack([resize_norm_img(im, img_h, ratio) for im in images])


def ctc_decode(probs, charset):
    """[B, T, C] -> [(text, score)], PaddleOCR CTCLabelDecode with duplicate removal."""
    out = []
    for p in probs:
        idx, prob = p.argmax(axis=1), p.max(axis=1)
        keep = np.ones(len(idx), dtype=bool)
        keep[1:] = idx[1:] != idx[:-1]
        keep &= idx != 0
        chars = [charset[i] for i in idx[keep]]
        conf = prob[keep] if keep.any() else np.array([0.0], dtype=np.float32)
        out.append(("".join(chars), float(np.mean(conf))))
    return out


class Official:
    """ONNX Runtime session over an official ONNX export."""

    def __init__(self, path, optimize=True):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if not optimize:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.name = self.sess.get_inputs()[0].name

    def __call__(self, x):
        return self.sess.run(None, {self.name: np.ascontiguousarray(x, np.float32)})[0]

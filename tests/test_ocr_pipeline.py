"""Page OCR: each stage against PaddleOCR's arithmetic as RapidOCR 3.10 implements it (it mirrors PaddleOCR's
text system), on real page photos (tests/data/pages, SOURCES.md), and the whole pipeline against RapidOCR run with
the same official ONNX models: same boxes (IoU), identical texts."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ort_standin import PIPELINE_FILES, official_file, ort_classifier, ort_detector
from page_reference import match_lines, quad_iou, rapidocr_pipeline

import pyclipper  # noqa: F401  (a test requirement: the [ocr] extra)
import rapidocr.ch_ppocr_det.utils as rapid_det  # the reference post-processing (a test requirement)

PAGES = Path(__file__).parent / "data" / "pages"
PAGE_FILES = sorted(PAGES.glob("*.jpg"))
GROUND_TRUTH = json.loads((PAGES / "ground_truth.json").read_text(encoding="utf-8"))


def _page(name):
    return cv2.imread(str(PAGES / name))


@pytest.fixture(scope="module")
def v6_det_session():
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(official_file(*PIPELINE_FILES["PP-OCRv6_small"]["det"])), opts,
                                providers=["CPUExecutionProvider"])


def _prob_map(session, img, limit_side_len, limit_type):
    from ppocr_torch.page.det_input import prepare_det_input

    x = prepare_det_input(img, limit_side_len=limit_side_len, limit_type=limit_type)
    return session.run(None, {session.get_inputs()[0].name: x})[0]


# ----- 1. detector input ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("h,w", [(430, 323), (132, 709), (1024, 692), (54, 1167), (48, 136), (3000, 2000), (737, 961)])
@pytest.mark.parametrize("limit", [("max", 960), ("min", 736), ("max", 64), ("min", 64)])
def test_det_resize_shape_matches_paddleocr(h, w, limit):
    from ppocr_torch.page.det_input import det_resize_shape

    limit_type, side = limit
    ref = rapid_det.DetPreProcess(side, limit_type).resize(np.zeros((h, w, 3), np.uint8))
    ours = det_resize_shape(h, w, side, limit_type)
    if ref is None:  # RapidOCR gives up on a side rounded to 0; PaddleOCR makes it 32
        assert min(ours) == 32, ours
    else:
        assert ours == ref.shape[:2]


def test_det_resize_rules_rapidocr_lacks():
    """resize_long, the 32 px minimum, max_side_limit and the padding of tiny images (PaddleOCR's rules)."""
    from ppocr_torch.page.det_input import det_resize_shape, resize_for_det

    assert det_resize_shape(430, 323, 960, "resize_long") == (960, 736)   # 323*960/430 = 721.1 -> 721 -> 736
    # round(10/32) = 0 -> 32 at least; 400/32 = 12.5 rounds half to even (Python's round) -> 384
    assert det_resize_shape(10, 400, 960, "max") == (32, 384)
    # 6000 > 4000: both sides * 4000/6000, truncated (1999, 3999), then rounded to multiples of 32
    assert det_resize_shape(3000, 6000, 736, "min", max_side_limit=4000) == (1984, 4000)
    resized, ratios = resize_for_det(np.full((10, 20, 3), 255, np.uint8), 960, "max")
    assert resized.shape == (32, 32, 3) and ratios == (1.0, 1.0)         # padded to 32x32 first, then kept
    assert (resized[10:] == 0).all() and (resized[:10, :20] == 255).all()
    with pytest.raises(ValueError, match="limit_type"):
        det_resize_shape(10, 10, 960, "long")


def test_det_resize_long_type_2():
    """DetResizeForTest(resize_long=960) (PP-OCRv5 mobile det's inference.yml): longer side to 960, sides rounded
    up to multiples of 128 -- not limit_type="resize_long"."""
    from ppocr_torch.page.det_input import det_resize_shape, resize_for_det, resize_long_shape

    assert resize_long_shape(430, 323, 960) == (1024, 768)    # 960 x int(721.1): up to 1024 x 768
    assert det_resize_shape(430, 323, 960, "resize_long") == (960, 736)
    assert resize_long_shape(1024, 692, 960) == (1024, 768)   # 960 x 648
    assert resize_long_shape(132, 709, 960) == (256, 1024)    # int(178.7) x 960
    resized, ratios = resize_for_det(np.zeros((132, 709, 3), np.uint8), resize_long=960)
    assert resized.shape == (256, 1024, 3) and ratios == (256 / 132, 1024 / 709)


def test_det_normalisation_matches_paddleocr():
    from ppocr_torch.page.det_input import normalize_for_det

    img = _page("promo_poster.jpg")
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    pre = rapid_det.DetPreProcess(960, "max", mean, std)
    ref = pre.permute(pre.normalize(img)).astype(np.float32)  # float64 arithmetic there, float32 in PaddleOCR
    ours = normalize_for_det(img, mean, std)
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-6)


# ----- 2. DB post-processing ----------------------------------------------------------------------------------

DB_SETTINGS = [
    dict(thresh=0.3, box_thresh=0.6, unclip_ratio=1.5),                                  # PaddleOCR 2.x / 3.x
    dict(thresh=0.2, box_thresh=0.45, unclip_ratio=1.4, max_candidates=3000),             # PP-OCRv6 small det
    dict(thresh=0.3, box_thresh=0.5, unclip_ratio=1.6, use_dilation=True),                # RapidOCR's defaults
    dict(thresh=0.3, box_thresh=0.6, unclip_ratio=2.0, score_mode="slow", max_candidates=5),
]


@pytest.mark.parametrize("name", ["promo_poster.jpg", "louvre_signposts.jpg", "gym_sign.jpg"])
def test_db_postprocess_identical_to_reference(v6_det_session, name):
    from ppocr_torch.page.db_postprocess import DBPostProcess

    img = _page(name)
    prob = _prob_map(v6_det_session, img, 960, "max")
    total = 0
    for kw in DB_SETTINGS:
        boxes, scores = DBPostProcess(**kw)(prob, img.shape[:2])
        ref_boxes, ref_scores = rapid_det.DBPostProcess(**kw)(prob, img.shape[:2])
        ref_boxes = np.asarray(ref_boxes, dtype=np.float32).reshape(-1, 4, 2)
        assert boxes.shape == ref_boxes.shape, kw
        np.testing.assert_array_equal(boxes, ref_boxes)
        assert scores == pytest.approx(ref_scores, rel=0, abs=0)
        total += len(boxes)
    assert total >= 4 * 3  # real text found in every setting


def test_db_postprocess_poly_and_errors(v6_det_session):
    from ppocr_torch.page.db_postprocess import DBPostProcess

    img = _page("yuyuan_road_sign.jpg")
    prob = _prob_map(v6_det_session, img, 960, "max")
    quads, _ = DBPostProcess(thresh=0.3, box_thresh=0.6, unclip_ratio=1.5)(prob, img.shape[:2])
    polys, scores = DBPostProcess(thresh=0.3, box_thresh=0.6, unclip_ratio=1.5, box_type="poly")(prob, img.shape[:2])
    assert len(polys) == len(quads) >= 6 and all(p.shape[0] >= 4 for p in polys)
    for p in polys:  # every polygon lies inside the image and overlaps one of the quads
        assert p[:, 0].max() <= img.shape[1] - 1 and p[:, 1].max() <= img.shape[0] - 1
        assert max(quad_iou(cv2.convexHull(p), q) for q in quads) > 0.5
    empty, empty_scores = DBPostProcess()(np.zeros((1, 1, 64, 64), np.float32), (64, 64))
    assert empty.shape == (0, 4, 2) and empty_scores == []
    for bad in (dict(score_mode="mean"), dict(box_type="rect"), dict(thresh=1.5), dict(unclip_ratio=0)):
        with pytest.raises(ValueError):
            DBPostProcess(**bad)


def test_missing_pyclipper_is_a_typed_error(monkeypatch):
    import sys

    from ppocr_torch.errors import MissingDependencyError
    from ppocr_torch.page.db_postprocess import unclip

    monkeypatch.setitem(sys.modules, "pyclipper", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'ppocr-torch\[ocr\]'"):
        unclip(np.float32([[0, 0], [10, 0], [10, 5], [0, 5]]), 1.5)


# ----- 3. crops, reading order, orientation -------------------------------------------------------------------

def test_crops_identical_to_reference(v6_det_session):
    from rapidocr.utils.process_img import get_rotate_crop_image

    from ppocr_torch.page.crop import crop_quad
    from ppocr_torch.page.db_postprocess import DBPostProcess

    img = _page("louvre_signposts.jpg")
    boxes, _ = DBPostProcess(thresh=0.3, box_thresh=0.6, unclip_ratio=1.5)(
        _prob_map(v6_det_session, img, 960, "max"), img.shape[:2])
    tall = np.float32([[100, 100], [130, 104], [126, 220], [96, 216]])  # a vertical line: turned by 90 degrees
    assert len(boxes) >= 6
    for box in [*boxes, tall]:
        ours = crop_quad(img, box)
        ref = get_rotate_crop_image(img, box.copy())
        np.testing.assert_array_equal(ours, ref)
    assert crop_quad(img, tall).shape[:2] == (30, 116)


def test_reading_order_is_paddleocrs():
    from ppocr_torch.page.reading_order import reading_order

    def quad(x, y):
        return np.float32([[x, y], [x + 40, y], [x + 40, y + 20], [x, y + 20]])

    # one line whose boxes' tops differ by < 10 px reads left to right; then the next line
    assert reading_order([quad(300, 20), quad(10, 25), quad(50, 100), quad(0, 104)]) == [1, 0, 3, 2]
    # PaddleOCR compares neighbours only: tops 0, 8, 16 (x 100, 50, 0) give B, A, C, not right-to-left
    # grouping into one line (RapidOCR 3.10's vectorised variant gives C, B, A here)
    assert reading_order([quad(100, 0), quad(50, 8), quad(0, 16)]) == [1, 0, 2]
    # exactly 10 px apart is another line; ties keep the input order
    assert reading_order([quad(100, 0), quad(0, 10)]) == [0, 1]
    assert reading_order([quad(5, 5), quad(5, 5)]) == [0, 1]
    assert reading_order([]) == []


def test_orientation_input_and_rule():
    from rapidocr.ch_ppocr_cls.main import TextClassifier

    from ppocr_torch.page.orientation import apply_orientation, orientation_batch

    crops = [_page("gym_sign.jpg")[150:200, 170:440], _page("paper_paragraph.jpg")[:40, :300],
             np.full((60, 20, 3), 128, np.uint8)]
    fake = type("Cls", (), {"cls_image_shape": [3, 48, 192]})()
    ref = np.stack([TextClassifier.resize_norm_img(fake, c) for c in crops])
    np.testing.assert_array_equal(orientation_batch(crops), ref)
    probs = np.float32([[0.05, 0.95], [0.91, 0.09], [0.1, 0.9]])  # turned; kept; 0.9 is not above cls_thresh
    out, verdicts = apply_orientation(crops, probs)
    assert [v.rotated for v in verdicts] == [True, False, False]
    assert [v.label for v in verdicts] == ["180", "0", "180"]
    np.testing.assert_array_equal(out[0], crops[0][::-1, ::-1])
    assert out[1] is crops[1]


def test_classifier_turns_an_upside_down_line_back():
    from ppocr_torch.page.orientation import classify

    cls = ort_classifier(official_file(*PIPELINE_FILES["cls"]))
    lines = [_page("paper_paragraph.jpg")[0:36, 0:330], _page("gym_sign.jpg")[150:200, 170:440]]
    turned = [cv2.rotate(line, cv2.ROTATE_180) for line in lines]
    crops, verdicts = classify(cls, lines + turned)
    assert [v.rotated for v in verdicts] == [False, False, True, True], verdicts
    for got, line in zip(crops, lines + lines):
        np.testing.assert_array_equal(got, line)


# ----- 4. the whole pipeline vs RapidOCR with the same official models ------------------------------------------

_converted_dets = {}


def _torch_detector(name):
    """Our detector ``name`` converted from its pinned official file by the conversion tool (once per session),
    or None when the registry has no such detector yet."""
    from ppocr_torch import registry

    try:
        registry.get_page_entry(name, "det")
    except Exception:  # not in the registry (yet)
        return None
    if name not in _converted_dets:
        from conversion.page_convert import convert_page_model

        _converted_dets[name] = convert_page_model(name)[0]
    return _converted_dets[name]


@pytest.fixture(scope="module")
def v6_pipe():
    """PP-OCRv6 small, our converted detector; recognition batched as PaddleOCR does (the default)."""
    from ppocr_torch.page.pipeline import OCR

    det = _torch_detector("PP-OCRv6_small_det")
    assert det is not None
    return OCR(det=det, rec="PP-OCRv6_small_rec", rec_mode="paddle", rec_batch_size=6)


def _pipeline_parity(pipeline, names, det, rec=None, pipe=None, cls=None, **settings):
    """Our OCR (detector module ``det``, recogniser ``rec``, or ``pipe`` itself) vs RapidOCR with the official ONNX
    det/rec files on ``names``: [(name, n_ours, n_ref, min IoU, differing texts)]. Recognition batched as PaddleOCR
    (and RapidOCR) batch it: ``rec_mode="paddle"``, 6 lines a batch."""
    from ppocr_torch.page.pipeline import OCR

    if pipe is None:
        pipe = OCR(det=det, rec=rec, cls=cls, rec_mode="paddle", rec_batch_size=6, **settings)
    ref = rapidocr_pipeline(pipeline, pipe.det_settings, cls=pipe.cls is not None)
    rows = []
    for name in names:
        ours = pipe(str(PAGES / name))
        theirs = ref(str(PAGES / name))
        ref_boxes = [] if theirs.boxes is None else list(theirs.boxes)
        ref_texts = list(theirs.txts or ())
        pairs = match_lines(list(ours), ref_boxes, ref_texts)
        rows.append((name, len(ours), len(ref_texts), min([p[0] for p in pairs], default=1.0),
                     [(a, b) for _, a, b in pairs if a != b]))
    return rows


def _check(rows, least_lines):
    bad = [r for r in rows if not (r[1] == r[2] and r[3] >= 0.99 and r[4] == [])]
    assert sum(r[2] for r in rows) >= least_lines and bad == [], bad


def test_pipeline_parity_v6_small_one_page(v6_pipe):
    """Our converted PP-OCRv6_small_det and the embedded PP-OCRv6_small_rec, the detector's own settings."""
    _check(_pipeline_parity("PP-OCRv6_small", ["yuyuan_road_sign.jpg"], None, pipe=v6_pipe), 8)


@pytest.mark.slow
def test_pipeline_parity_v6_small_all_pages():
    det = _torch_detector("PP-OCRv6_small_det")
    _check(_pipeline_parity("PP-OCRv6_small", [p.name for p in PAGE_FILES], det, "PP-OCRv6_small_rec"), 50)


@pytest.mark.slow
def test_pipeline_parity_v5_mobile_all_pages(convert_official, converted_dir):
    """PP-OCRv5_mobile_rec converted here; the detector ours when the registry has it, else the official ONNX file
    behind the module interface (then only post-processing, crops and recognition are ours). The detector's own
    resize (resize_long 960, multiples of 128) is one RapidOCR lacks: both sides run 960/"max" instead."""
    files = PIPELINE_FILES["PP-OCRv5_mobile"]
    det = _torch_detector(files["det_name"]) or ort_detector(official_file(*files["det"]), files["det_name"])
    rec = convert_official(files["rec_name"], converted_dir)[0]
    _check(_pipeline_parity("PP-OCRv5_mobile", [p.name for p in PAGE_FILES], det, rec, limit_side_len=960,
                            limit_type="max"), 45)


@pytest.mark.slow
def test_pipeline_parity_with_the_line_classifier_all_pages():
    """Our ch_ppocr_mobile_v2.0_cls against the official ONNX file in RapidOCR: the same crops turned, the same
    texts (one upright line of gym_sign.jpg is turned upside down by this classifier, on both sides)."""
    from ppocr_torch.page_models import load_orientation

    det = _torch_detector("PP-OCRv6_small_det")
    try:
        cls = load_orientation("ch_ppocr_mobile_v2.0_cls")
    except Exception:  # no converted weights reachable: the conversion tool's own conversion
        from conversion.page_convert import convert_page_model

        cls = convert_page_model("ch_ppocr_mobile_v2.0_cls")[0]
    rows = _pipeline_parity("PP-OCRv6_small", [p.name for p in PAGE_FILES], det, "PP-OCRv6_small_rec", cls=cls)
    _check(rows, 50)


@pytest.mark.slow
def test_pipeline_parity_with_the_official_detector_all_pages():
    """The official ONNX PP-OCRv6 small detector behind the module interface: isolates our post-processing,
    crops and recognition from the detector's conversion."""
    files = PIPELINE_FILES["PP-OCRv6_small"]
    det = ort_detector(official_file(*files["det"]), files["det_name"], limit_side_len=736, limit_type="min")
    _check(_pipeline_parity("PP-OCRv6_small", [p.name for p in PAGE_FILES], det, "PP-OCRv6_small_rec"), 50)


# ----- 5. the API, --draw and the CLI ---------------------------------------------------------------------------

def test_ocr_result_reads_the_page(v6_pipe):
    from ppocr_torch.page.reading_order import reading_order

    result = v6_pipe(str(PAGES / "yuyuan_road_sign.jpg"))
    texts = [line.text for line in result]
    assert texts == ["西", "愚园路", "东", "315", "309", "W", "Yuyuan Rd.", "E"]  # PaddleOCR's reading order
    assert sorted(texts) == sorted(GROUND_TRUTH["yuyuan_road_sign.jpg"])
    assert reading_order([line.polygon for line in result]) == list(range(len(result)))
    h, w = result.image_size
    for line in result:
        assert line.polygon.shape == (4, 2) and line.score >= 0.5 and line.box_score >= 0.45
        assert (line.polygon[:, 0] < w).all() and (line.polygon[:, 1] < h).all()
        assert "".join(c.char for c in line.chars) == line.text
    assert all(line.score < 0.5 for line in result.dropped)
    d = json.loads(json.dumps(result.to_dict(), ensure_ascii=False))
    assert d["image_size"] == [339, 640] and d["lines"][1]["text"] == "愚园路" and len(d["lines"][1]["polygon"]) == 4


def test_ocr_settings_and_errors(v6_pipe):
    from ppocr_torch.errors import InvalidImageError, UnknownModelError
    from ppocr_torch.page.pipeline import OCR

    s = v6_pipe.det_settings  # the detector's own (inference.yml and DetResizeForTest's defaults)
    assert (s.limit_side_len, s.limit_type, s.thresh, s.box_thresh, s.unclip_ratio) == (736, "min", 0.2, 0.45, 1.4)
    assert s.resize_long is None and s.max_side_limit == 4000
    with pytest.raises(InvalidImageError):
        v6_pipe(b"not an image")
    blank = v6_pipe(np.full((200, 300, 3), 255, np.uint8))
    assert len(blank) == 0 and blank.text == ""
    for bad in (dict(limit_type="long"), dict(box_thresh=2.0), dict(text_score=-1), dict(box_type="poly")):
        with pytest.raises(ValueError):
            OCR(det=v6_pipe.det, rec=v6_pipe.recognizer, **bad)
    with pytest.raises(TypeError, match="unclip"):
        OCR(det=v6_pipe.det, rec=v6_pipe.recognizer, unclip=2.0)
    shapes = []

    class Blank(torch.nn.Module):  # records the detector input; finds nothing
        spec = v6_pipe.det.spec

        def forward(self, x):
            shapes.append(tuple(x.shape))
            return torch.zeros(x.shape[0], 1, *x.shape[2:])

    wide = np.full((300, 5000, 3), 255, np.uint8)
    assert len(OCR(det=Blank(), rec=v6_pipe.recognizer)(wide)) == 0
    assert len(OCR(det=Blank(), rec=v6_pipe.recognizer, max_side_limit=None)(wide)) == 0
    # 736 / 300 scales to 736 x 12266; PaddleOCR 3.x's cap brings the longer side back to 4000
    assert shapes == [(1, 3, 256, 4000), (1, 3, 736, 12256)]  # 240 / 32 = 7.5 rounds to even: 256
    with pytest.raises(UnknownModelError):
        OCR.from_preset("PP-OCRv9")


def test_draw(monkeypatch, tmp_path):
    import sys

    from ppocr_torch.page.draw import draw_result, save_drawing
    from ppocr_torch.page.result import OCRLine, OCRResult

    img = _page("paper_paragraph.jpg")
    result = OCRResult(lines=(OCRLine(np.float32([[7, 3], [287, 3], [287, 31], [7, 31]]), "3 MovieShots Dataset", 0.99),
                              OCRLine(np.float32([[7, 50], [698, 50], [698, 74], [7, 74]]), "To facilitate 愚园路", 0.9)),
                       image_size=img.shape[:2])
    with_pil = draw_result(img, result)
    monkeypatch.setitem(sys.modules, "PIL", None)
    without = draw_result(img, result)
    h, w = img.shape[:2]
    for drawing in (with_pil, without):
        assert drawing.shape == (h, 2 * w, 3)
        x0, y0 = result[0].polygon[0].astype(int)
        assert (drawing[y0, x0 + 5] != img[y0, x0 + 5]).any()          # the outline is drawn on the page
        assert (drawing[:, w:] < 128).any(axis=2).mean() > 0.01          # text on the panel
    assert not np.array_equal(with_pil, without)
    with pytest.raises(ValueError):
        save_drawing(tmp_path / "out.xyz", img, result)
    assert list(tmp_path.iterdir()) == []                                # nothing half-written


def test_cli_ocr(v6_pipe, monkeypatch, tmp_path, capsys):
    from ppocr_torch import cli
    from ppocr_torch.page import pipeline

    built = []
    small = pipeline.OCR(det=v6_pipe.det, rec=v6_pipe.recognizer, limit_type="max", limit_side_len=960)

    def fake_ocr(**kwargs):  # the CLI's pipeline: v6 (models already loaded, no upscaling), the options recorded
        built.append(kwargs)
        return small

    monkeypatch.setattr(pipeline, "OCR", fake_ocr)
    page = str(PAGES / "gym_sign.jpg")
    out = tmp_path / "drawn.png"
    assert cli.main(["ocr", page, "--json", "--draw", str(out)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["path"] == page and d["image_size"] == [285, 500]
    assert {"027-88852022", "027-88859022"} <= {line["text"] for line in d["lines"]}
    assert cv2.imread(str(out)).shape == (285, 1000, 3)
    assert cli.main(["ocr", page, str(tmp_path / "missing.jpg")]) == 1
    captured = capsys.readouterr()
    rows = [r.split("\t") for r in captured.out.splitlines()]
    assert [r[1] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    assert [r[2] for r in rows] == [line["text"] for line in d["lines"]]
    assert len(rows[-1][4].split()) == 4 and "missing.jpg" in captured.err
    assert cli.main(["ocr", page, "--draw", str(out), "--font", str(tmp_path / "no.ttf")]) == 2
    assert cli.main(["ocr", page, "--limit-type", "long"]) == 2
    assert built[0] == dict(det="PP-OCRv6_small_det", rec="PP-OCRv6_small_rec", cls=None, device="cpu",
                            text_score=0.5, download=True, num_threads=None)
    assert cli.main(["ocr", page, "--cls", "--limit-side-len", "960", "--box-thresh", "0.6", "--text-score", "0",
                     "--no-download", "--draw", str(tmp_path / "a.png")]) == 0
    assert built[-1]["cls"] == "ch_ppocr_mobile_v2.0_cls" and built[-1]["limit_side_len"] == 960
    assert built[-1]["box_thresh"] == 0.6 and built[-1]["text_score"] == 0 and built[-1]["download"] is False


@pytest.mark.slow
def test_one_pipeline_serves_threads(v6_pipe):
    from concurrent.futures import ThreadPoolExecutor

    names = ["gym_sign.jpg", "yuyuan_road_sign.jpg", "paper_paragraph.jpg"] * 2
    alone = {n: [(line.text, line.polygon.tolist()) for line in v6_pipe(str(PAGES / n))] for n in set(names)}
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda n: [(line.text, line.polygon.tolist()) for line in v6_pipe(str(PAGES / n))],
                                 names))
    assert together == [alone[n] for n in names]


def test_one_liner_shares_its_pipeline(monkeypatch):
    from ppocr_torch.page import pipeline

    built = []

    class Fake:
        def __init__(self, det, rec, cls, **kwargs):
            built.append((det, rec, cls, kwargs))

        def __call__(self, image):
            return ("read", image)

    monkeypatch.setattr(pipeline, "OCR", Fake)
    monkeypatch.setattr(pipeline, "_pipelines", {})
    assert pipeline.ocr("a.jpg") == ("read", "a.jpg") and pipeline.ocr("b.jpg") == ("read", "b.jpg")
    assert pipeline.ocr("c.jpg", text_score=0.0) == ("read", "c.jpg")
    assert built == [("PP-OCRv6_small_det", "PP-OCRv6_small_rec", None, dict(device="cpu", text_score=0.5)),
                     ("PP-OCRv6_small_det", "PP-OCRv6_small_rec", None, dict(device="cpu", text_score=0.0))]


def test_hub_pipeline_entrypoints(monkeypatch):
    import importlib.util

    from ppocr_torch.page import pipeline
    from ppocr_torch.page.presets import PRESETS, hub_name

    spec = importlib.util.spec_from_file_location("hubconf_pages", Path(__file__).parents[1] / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    built = []
    monkeypatch.setattr(pipeline.OCR, "__init__", lambda self, **kw: built.append(kw))
    for preset, (det, rec) in PRESETS.items():
        fn = getattr(hubconf, hub_name(preset))
        assert isinstance(fn(device="cpu", cls="ch_ppocr_mobile_v2.0_cls"), pipeline.OCR)
        assert built[-1] == dict(det=det, rec=rec, device="cpu", cls="ch_ppocr_mobile_v2.0_cls")
        assert f'"{hub_name(preset)}"' in fn.__doc__ and det in fn.__doc__
    assert hub_name("PP-OCRv6_small") == "pp_ocrv6_small"

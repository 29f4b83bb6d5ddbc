"""``ppocr-torch ocr IMG... [--json] [--draw OUT] [--det M] [--rec M] [--cls [M] | --no-cls]``: whole-page OCR.

Plain output: for each image, one line per text line, ``path<TAB>n<TAB>text<TAB>score<TAB>x0,y0 x1,y1 x2,y2 x3,y3``
(n from 1 in reading order; the polygon clockwise from the top-left). ``--json``: one JSON object per image,
``{"path", "image_size": [h, w], "lines": [{"polygon", "text", "score", "box_score", "chars"}...]}``. ``--draw
OUT``: the page with its boxes next to the text read (:mod:`.draw`); with several images OUT is a folder that gets
``<image stem>.ocr.png`` each. Exit codes as ``recognize``: 1 when some image could not be read.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["add_ocr_parser"]

_DEFAULT_CLS_WHEN_ASKED = "ch_ppocr_mobile_v2.0_cls"


def add_ocr_parser(sub, *, positive_int, fraction, positive_float) -> None:
    """Add the ``ocr`` subcommand to ``sub`` (the argparse types are the CLI's own)."""
    from .pipeline import DEFAULT_DET, TEXT_SCORE

    p = sub.add_parser("ocr", help="read whole pages: detect, (orient,) recognise text lines",
                       description="Read whole pages (photos, scans): detect the text lines, optionally fix "
                                   "upside-down ones, recognise them; lines in reading order.")
    p.add_argument("images", nargs="+", metavar="IMG", help="image files")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.add_argument("--draw", metavar="OUT", default=None,
                   help="write the page with its boxes and the text read (PNG/JPEG by suffix; a folder for several "
                        "images)")
    p.add_argument("--font", default=None, help="font file for --draw's text (default: $PPOCR_TORCH_FONT or a "
                                                "system font with CJK coverage, see docs/ocr.md)")
    p.add_argument("--det", default=DEFAULT_DET, help=f"text detector: registry name or checkpoint "
                                                      f"(default: {DEFAULT_DET})")
    p.add_argument("--rec", default=None, help="recogniser: registry name or checkpoint (default: PP-OCRv6_small_rec)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--cls", nargs="?", const=_DEFAULT_CLS_WHEN_ASKED, default=None, metavar="M",
                       help=f"turn upside-down lines with a line classifier (default M: {_DEFAULT_CLS_WHEN_ASKED})")
    group.add_argument("--no-cls", action="store_true", help="no line classifier (the default)")
    p.add_argument("--text-score", type=fraction, default=TEXT_SCORE,
                   help=f"drop lines recognised with a lower score (default: {TEXT_SCORE}, PaddleOCR's drop_score)")
    p.add_argument("--limit-side-len", type=positive_int, default=None,
                   help="detector resize limit (default: the detector's own)")
    p.add_argument("--limit-type", choices=("max", "min", "resize_long"), default=None,
                   help="detector resize rule (default: the detector's own)")
    p.add_argument("--box-thresh", type=fraction, default=None, help="DB box score threshold (default: detector's)")
    p.add_argument("--unclip-ratio", type=positive_float, default=None, help="DB unclip ratio (default: detector's)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (as recognize)")
    p.add_argument("--no-download", action="store_true", help="never download weights")
    p.set_defaults(func=cmd_ocr)


def _polygon_text(poly) -> str:
    return " ".join(f"{int(x)},{int(y)}" for x, y in poly)


def cmd_ocr(args) -> int:
    from .. import cli as _cli
    from ..errors import InvalidImageError, PPOCRTorchError
    from ..registry import DEFAULT_MODEL
    from .pipeline import OCR

    if not _cli._device_usable(args.device):
        return 2
    overrides = {k: v for k, v in (("limit_side_len", args.limit_side_len), ("limit_type", args.limit_type),
                                   ("box_thresh", args.box_thresh), ("unclip_ratio", args.unclip_ratio))
                 if v is not None}
    try:
        pipe = OCR(det=args.det, rec=args.rec or DEFAULT_MODEL, cls=None if args.no_cls else args.cls,
                   device=args.device, text_score=args.text_score, download=not args.no_download,
                   num_threads=args.threads, **overrides)
        if args.draw is not None:
            from .draw import find_font

            find_font(args.font)  # a --font that does not exist is a usage error, before any work
    except (PPOCRTorchError, OSError, ValueError) as exc:
        return _cli._setup_failed(exc, args.device)
    draw_dir = Path(args.draw) if args.draw is not None and len(args.images) > 1 else None
    failed = 0
    for path in args.images:
        try:
            from ..image_io import load_image

            img = load_image(path, name=f"path {path!r}")
            result = pipe(img)
        except InvalidImageError as exc:
            failed += 1
            _cli._error(f"{_cli._display_path(path)}: {exc}")
            if args.json:
                print(_cli._json_line({"path": path, "error": str(exc)}), flush=True)
            continue
        if args.json:
            print(_cli._json_line({"path": path, **result.to_dict()}), flush=True)
        else:
            shown = _cli._display_path(path)
            for n, line in enumerate(result.lines, 1):
                print(f"{shown}\t{n}\t{line.text}\t{line.score:.4f}\t{_polygon_text(line.polygon)}")
        if args.draw is not None:
            from .draw import save_drawing

            out = draw_dir / f"{Path(path).stem}.ocr.png" if draw_dir is not None else Path(args.draw)
            try:
                save_drawing(out, img, result, font=args.font)
            except (OSError, ValueError) as exc:
                _cli._error(f"cannot write {str(out)!r}: {exc}")
                return 2
    sys.stdout.flush()
    return 1 if failed else 0

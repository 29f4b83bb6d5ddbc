"""``python -m conversion``: convert official or own PaddleOCR recognition models, with a parity report."""

from __future__ import annotations

import argparse
import sys

from ppocr_torch.errors import PPOCRTorchError

from .errors import ConversionError, ParityError


def _commands():
    from . import commands

    return commands


def _dispatch_convert(args):
    """One handler per input form (conversion/commands.py); ``args`` is passed on unchanged."""
    commands = _commands()
    if args.checkpoint:
        if not args.config:
            raise ConversionError("--checkpoint needs --config TRAIN.yml")
        return commands.run_convert_checkpoint(args)
    if args.onnx:
        return commands.run_convert_export(args, args.onnx, "onnx", arch=args.model)
    if args.static_v1:
        return commands.run_convert_static_v1(args)
    if args.inference:  # a local Paddle inference export of a registry architecture, checked against Paddle Inference
        arch = args.model or _inference_model_name(args.inference) or args.name
        if not arch:
            raise ConversionError(f"{args.inference}: no model_name in its inference.yml; pass --model NAME")
        if args.dict or args.config or _has_own_dictionary(args.inference, arch):
            # an own (fine-tuned) export: its own dictionary and class count
            return commands.run_convert_export(args, args.inference, "paddle_inference", arch=arch)
        return commands.run_convert_official(args, arch, source=args.inference)
    if not args.name:
        raise ConversionError("convert needs a registry NAME, --checkpoint FILE --config YML, --inference DIR, "
                              "--onnx FILE or --static-v1 DIR")
    from .page_convert import is_page_model, run_convert_page

    if is_page_model(args.name):  # a text detector or orientation classifier (ppocr_torch/zoo/page/)
        return run_convert_page(args, args.name, source=args.source)
    return commands.run_convert_official(args, args.name, source=args.source)


def _has_own_dictionary(folder, arch):
    """Whether the export's inference.yml lists another dictionary than registry model ``arch``'s."""
    from ppocr_torch import registry
    from ppocr_torch.charset import packaged_charset

    from .readers.paddle_inference import read_inference_dictionary, resolve_files

    chars = read_inference_dictionary(resolve_files(folder)[0])
    if chars is None:
        return False
    chars = list(chars[:-1]) if chars[-1:] == [""] else list(chars)
    ours = packaged_charset(registry.get_entry(arch).spec)[1:]
    return chars not in (ours, ours[:-1])


def _inference_model_name(folder):
    """``Global.model_name`` of the inference.yml of a Paddle inference export, or None."""
    from .readers.paddle_inference import resolve_files

    yml = resolve_files(folder)[0].with_name("inference.yml")
    if not yml.is_file():
        return None
    import yaml

    doc = yaml.safe_load(yml.read_text(encoding="utf-8")) or {}
    return (doc.get("Global") or {}).get("model_name")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m conversion", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="convert a registry model, a training checkpoint or an export")
    c.add_argument("name", nargs="?", help="registry model name (official conversion)")
    c.add_argument("--source", help="official file instead of the registry's pinned source: a local path (.onnx, "
                   "Paddle inference folder or *_infer.tar), a URL (downloaded with a progress bar and cached), or "
                   "'official' for the registry's PaddleOCR download URL (tried at $PPOCR_TORCH_OFFICIAL_MIRROR first)")
    c.add_argument("--source-index", type=int, default=0, help="which registry source to use")
    c.add_argument("--checkpoint", help="own training checkpoint (.pdparams); needs --config")
    c.add_argument("--config", help="PaddleOCR training YAML of --checkpoint / --onnx")
    c.add_argument("--dict", help="character dictionary (default: the config's character_dict_path)")
    c.add_argument("--branch", default="Student", help="distillation branch to take (default Student)")
    c.add_argument("--onnx", help="own paddle2onnx export; needs --config + --dict, or --model NAME")
    c.add_argument("--model", help="registry model whose architecture an --onnx / --inference export has")
    c.add_argument("--inference", metavar="DIR", help="local Paddle inference export (inference.json or .pdmodel + "
                   "inference.pdiparams [+ inference.yml]) of a registry model; checked against Paddle Inference")
    c.add_argument("--use-space-char", dest="use_space_char", action="store_true", default=None,
                   help="the --dict/--charset dictionary is used with the space character")
    c.add_argument("--reverse-text", dest="reverse_text", action=argparse.BooleanOptionalAction, default=None,
                   help="right-to-left display order of an own model's text (default: as PaddleOCR's decoder "
                        "decides for the config: reversed iff its dictionary path contains 'arabic')")
    c.add_argument("--static-v1", dest="static_v1", help="PaddleOCR 1.x saved model folder (model + params, __model__ ...)")
    c.add_argument("--charset", help="replace the CTC classifier by a new one for this dictionary (fine-tuning)")
    c.add_argument("--against", help="reference export (.onnx or Paddle inference folder) for a --checkpoint")
    c.add_argument("--out", default="converted", help="output folder (default: ./converted)")
    c.add_argument("--embed", action="store_true", help="replace older checkpoints of this model in --out")
    c.add_argument("--images", help="folder of real line images for parity (default: tests/data/lines)")
    c.add_argument("--limit", type=int, default=None, help="use only the first N images")
    c.add_argument("--random", type=int, default=2, help=argparse.SUPPRESS)
    c.add_argument("--tolerance", type=float, default=1e-5)
    c.add_argument("--report", help="write the parity report as JSON")
    c.add_argument("--update-registry", action="store_true", help="record weights and parity in ppocr_torch/zoo/")
    c.add_argument("--zoo-dir", help="registry folder that --update-registry rewrites (default: ppocr_torch/zoo)")
    c.set_defaults(func=_dispatch_convert)

    v = sub.add_parser("verify", help="parity report of a converted checkpoint against an official runtime")
    v.add_argument("checkpoint")
    v.add_argument("--against", required=True, help=".onnx export or Paddle inference folder")
    v.add_argument("--images")
    v.add_argument("--limit", type=int, default=None)
    v.add_argument("--tolerance", type=float, default=1e-5)
    v.add_argument("--report", help="write the parity report as JSON")
    v.set_defaults(func=lambda a: _commands().run_verify(a))

    r = sub.add_parser("release", help="rebuild every registry model with a reachable official source")
    r.add_argument("--out", default="release", help="folder ready to upload (default: ./release)")
    r.add_argument("--base-url", help="URL the files will be served from (recorded in the registry)")
    r.add_argument("--models", nargs="*", help="only these models")
    r.add_argument("--images")
    r.add_argument("--limit", type=int, default=None)
    r.add_argument("--zoo-dir", help="registry folder to update (default: ppocr_torch/zoo)")
    r.add_argument("--official-urls", action="store_true",
                   help="also convert the models without a pinned source from PaddleOCR's own download URLs "
                        "(through $PPOCR_TORCH_OFFICIAL_MIRROR first)")
    r.set_defaults(func=lambda a: _commands().run_release(a))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConversionError, ParityError) as exc:
        print(f"conversion: error: {exc}", file=sys.stderr)
        return 1
    except PPOCRTorchError as exc:  # e.g. SpecMismatchError, CheckpointError from the runtime package
        print(f"conversion: error: {exc}", file=sys.stderr)
        return 1

"""``python -m conversion``: convert official or own PaddleOCR recognition models, with a parity report."""

import argparse
import json
import sys
from pathlib import Path

from ppocr_torch.errors import PPOCRTorchError

from .errors import ConversionError, ParityError


def _fmt_report(name, report):
    out = report["output"]
    lines = [f"{name}: {out['inputs']} inputs, |diff| prob max {out['max_abs_prob']:.3g} / p99 "
             f"{out['p99_abs_prob']:.3g} / median {out['median_abs_prob']:.3g} ({out['inputs_over_tolerance']} over "
             f"{out['tolerance']:g}; official runtime's own spread up to {out['runtime_self_spread_max']:.3g}), "
             f"max |diff| score {out['max_abs_score']:.3g}, text agreement {out['text_agreement']:.2%} "
             f"-> {'PASS' if out['passed'] else 'FAIL'}"]
    f64 = out.get("float64")
    if f64:
        judged = [i for i in out["items"] if "ours_vs_float64" in i]
        same = [i["float64_vs_official_float64"] for i in judged if "float64_vs_official_float64" in i]
        lines.append(f"  {len(judged)} input(s) judged with fp32 rounding taken out: "
                     + (f"official graph vs ours, both in float64, max |diff| {max(same):.3g}; " if same else
                        "official graph not evaluable in float64; ")
                     + f"fp32 error vs float64 max {f64['ours_max']:.3g} (official runtime {f64['official_max']:.3g}), "
                     f"median {f64['ours_median']:.3g} ({f64['official_median']:.3g})")
        for i in judged:
            if not i["within"]:
                lines.append(f"    {i['input']}: out of bounds {json.dumps({k: v for k, v in i.items() if 'float64' in k})}")
    for stage, s in report["layers"]["stages"].items():
        lines.append(f"  {stage:8s} {s['ops']:3d} ops, worst max |diff| {s['max_abs']:.3g} at {s['worst_module']}")
    bad = report["layers"]["first_divergent_op"]
    if bad:
        lines.append(f"  first divergent op: #{bad['op']} {bad['module']} ({bad.get('error') or bad['rel']})")
    return "\n".join(lines)


def run_convert(args):
    from ppocr_torch import registry

    from . import convert as cv
    from .parity import layer_parity, output_parity, runtime_name, summarize_layers

    entry = registry.get_entry(args.name)
    if args.charset and (args.update_registry or args.embed):
        raise ConversionError("--charset makes a new model (new classifier): it cannot replace the registry's "
                              f"{entry.name}; drop --update-registry/--embed")
    model, pairs, model_path, meta = cv.convert_registry_model(entry.name, source_index=args.source_index,
                                                               source_path=args.source)
    runtime = runtime_name(model_path)
    spec, charset = entry.spec, model.charset
    inputs = cv.parity_inputs(spec, args.images, limit=args.limit)
    layers = layer_parity(model, pairs, model_path, inputs[0][1])
    if len(inputs) > args.random:
        layers += layer_parity(model, pairs, model_path, inputs[args.random][1])
    report = {"model": entry.name, "source": str(model_path), "runtime": runtime,
              "output": output_parity(model, model_path, inputs, charset, args.tolerance),
              "layers": summarize_layers(layers), "layer_rows": layers}
    print(_fmt_report(entry.name, report), file=sys.stderr)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    if not report["output"]["passed"]:
        raise ParityError(f"{entry.name}: parity failed (max |diff| {report['output']['max_abs_prob']:.3g}, "
                          f"text agreement {report['output']['text_agreement']:.2%}); nothing written")
    out_dir = Path(args.out)
    if args.charset:  # official weights, new classifier: not the official model, so not a registry entry
        from .commands import adapt_charset, write_outputs

        name = f"{entry.name}_{Path(args.charset).stem}"
        note = adapt_charset(model, args.charset, bool(args.use_space_char), name=name)
        path, _ = write_outputs(model, out_dir, dict(meta, name=name), {
            "source": {"format": meta["source_format"], "file": str(model_path), "base_model": entry.name},
            "parity": {"runtime": runtime, "base_model_passed": True, "inputs": report["output"]["inputs"]},
            "notes": [note]})
        print(path)
        return 0
    path, digest = cv.write_checkpoint(model, out_dir, meta)
    if args.embed:
        for old in out_dir.glob(f"{entry.name}-*.pth"):
            if old != path:
                old.unlink()
    print(path)
    if args.update_registry:
        cv.update_registry(entry.name, weights=cv.weights_record(model, path, digest, embedded=args.embed),
                           parity=cv.registry_parity(report["output"], runtime, meta, model_path),
                           verification=cv.registry_verification(runtime), zoo_dir=args.zoo_dir)
    return 0


def _commands():
    from . import commands

    return commands


def _dispatch_convert(args):
    if args.checkpoint:
        if not args.config:
            raise ConversionError("--checkpoint needs --config TRAIN.yml")
        return _commands().run_convert_checkpoint(args)
    if args.onnx:
        return _commands().run_convert_onnx(args)
    if args.static_v1:
        return _commands().run_convert_static_v1(args)
    if args.inference:  # a local Paddle inference export of a registry architecture, checked against Paddle Inference
        arch = args.model or _inference_model_name(args.inference) or args.name
        if not arch:
            raise ConversionError(f"{args.inference}: no model_name in its inference.yml; pass --model NAME")
        if args.dict or args.config or _has_own_dictionary(args.inference, arch):
            args.model = args.model or arch  # an own (fine-tuned) export: its own dictionary and class count
            return _commands().run_convert_export(args, args.inference, "paddle_inference")
        args.source, args.name = args.inference, arch
    if not args.name:
        raise ConversionError("convert needs a registry NAME, --checkpoint FILE --config YML, --inference DIR, "
                              "--onnx FILE or --static-v1 DIR")
    return run_convert(args)


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


def build_parser():
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


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConversionError, ParityError) as exc:
        print(f"conversion: error: {exc}", file=sys.stderr)
        return 1
    except PPOCRTorchError as exc:  # e.g. SpecMismatchError, CheckpointError from the runtime package
        print(f"conversion: error: {exc}", file=sys.stderr)
        return 1

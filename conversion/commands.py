"""The conversion tool's commands beyond ``convert NAME``: own training checkpoints, own ONNX exports,
``verify``, ``release`` and ``--charset`` (a new CTC head for fine-tuning on another character set)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from ppocr_torch.charset import build_charset, read_dict_file
from ppocr_torch.checkpoint import atomic_write
from ppocr_torch.errors import PPOCRTorchError

from . import convert as cv
from .errors import ConversionError, ParityError

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names used in type hints only
    from ppocr_torch.models.rec_model import RecModel
    import os


def reference_kind(path):
    """"onnx" for an .onnx file, "paddle_inference" for an export folder / inference.json / .pdmodel."""
    p = Path(path)
    if p.suffix == ".onnx":
        return "onnx"
    if p.is_dir() or p.suffix in (".json", ".pdmodel"):
        return "paddle_inference"
    raise ConversionError(f"{path}: not a reference model (expected an .onnx file or a Paddle inference folder)")


def parity_against(model: RecModel, reference: str | os.PathLike, *, images: str | None = None,
                   limit: int | None = None, tolerance: float = 1e-5) -> dict:
    """Output parity of ``model`` against the official runtime running ``reference``, plus the per-stage /
    per-layer report where the reference graph can be paired with the model (ONNX)."""
    from .parity import layer_parity, output_parity, summarize_layers

    kind = reference_kind(reference)
    inputs = cv.parity_inputs(model.spec, images, limit=limit)
    if kind == "onnx":
        report = output_parity(model, reference, inputs, model.charset, tolerance)
        report["runtime"] = "onnxruntime"
        try:
            from ppocr_torch.mapping import pair_ops
            from .readers.onnx_reader import read_onnx_ops

            ops, _ = read_onnx_ops(reference)
            pairs = pair_ops(model, ops, torch.from_numpy(inputs[-1][1]))
            report["layers"] = summarize_layers(layer_parity(model, pairs, reference, inputs[-1][1]))
        except ConversionError as exc:  # the reference graph does not pair with this model: say so
            report["layers"] = {"error": str(exc)}
        return report
    try:
        from .parity import paddle_output_parity
    except ImportError as exc:
        raise ConversionError("Paddle Inference references need conversion.parity.paddle_output_parity") from exc
    report = paddle_output_parity(model, reference, inputs, model.charset, tolerance)
    report["runtime"] = "paddle_inference"
    return report


def adapt_charset(model: RecModel, dict_path: str | os.PathLike, use_space_char: bool, *, seed: int = 0,
                  name: str | None = None) -> str:
    """Keep backbone and neck; a new CTC classifier for the new character set (``RecModel.reset_head``: rows of
    characters in both sets copied, the others initialised under ``seed``)."""
    old = set(model.charset)
    torch.manual_seed(seed)
    model.reset_head(dict_path, use_space_char=use_space_char, name=name)
    kept = sum(c in old for c in model.charset)
    return (f"new CTC classifier for {model.spec.num_classes} classes (was {len(old)}), {kept} rows kept from the "
            "old one (characters in both sets); needs fine-tuning")


def write_outputs(model: RecModel, out_dir: str | os.PathLike, meta: dict, entry: dict) -> tuple[Path, str]:
    """``<name>-<sha8>.pth`` plus its registry entry ``<name>-<sha8>.json`` beside it (both atomic)."""
    path, digest = cv.write_checkpoint(model, out_dir, meta)
    entry = dict(entry, name=model.spec.name, spec=model.spec.to_dict(), dictionary=model.spec.dictionary,
                 weights=cv.weights_record(model, path, digest), converter_version=cv.CONVERTER_VERSION)
    text = json.dumps(entry, indent=1, ensure_ascii=False) + "\n"
    atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path, digest


def _parity_entry(report):
    if report is None:
        return {"status": "not verified: no reference given (pass --against an ONNX export or inference folder)"}
    return {k: report[k] for k in ("runtime", "inputs", "max_abs_prob", "median_abs_prob", "max_abs_score",
                                   "text_agreement", "passed") if k in report}


def _check(report, name):
    if report is not None and not report["passed"]:
        bad = [i for i in report["items"] if not i.get("within", True) or not i["text_equal"]][:3]
        raise ParityError(f"{name}: parity failed against {report['runtime']} (max |diff| "
                          f"{report['max_abs_prob']:.3g}, text agreement {report['text_agreement']:.2%}; e.g. "
                          f"{[(i['input'], i['official_text'], i['torch_text']) for i in bad]}); nothing written")


def run_convert_checkpoint(args):
    from .training import convert_checkpoint

    model, notes = convert_checkpoint(args.checkpoint, args.config, name=args.name, dict_path=args.dict,
                                      branch=args.branch, reverse_text=args.reverse_text)
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    report = parity_against(model, args.against, images=args.images, limit=args.limit) if args.against else None
    _check(report, model.spec.name)
    if args.charset:
        notes.append(adapt_charset(model, args.charset, bool(args.use_space_char)))
    meta = cv.source_meta(model.spec.name, "pdparams", args.checkpoint)
    path, _ = write_outputs(model, args.out, meta, {"source": {"format": "pdparams", "file": str(args.checkpoint),
                                                              "config": str(args.config)},
                                                   "parity": _parity_entry(report), "notes": notes})
    print(path)
    return 0


def _export_classes(path, fmt):
    """Output classes of an export's last linear layer (None when it has none)."""
    ops = cv.read_source_ops(path, fmt)
    last = next((op for op in reversed(ops) if op.kind == "linear"), None)
    return None if last is None else int(last.params["weight"].shape[0])


def run_convert_export(args, source, fmt, *, arch=None):
    """An own export (paddle2onnx ``.onnx`` or Paddle inference folder) of a known architecture: ``--config``
    (PaddleOCR training YAML) or ``--model REGISTRY_NAME``, and the model's own dictionary: ``--dict``, or
    for a Paddle inference export the ``character_dict`` of its inference.yml. Whether the space character is
    a class is read from the export's class count unless ``--use-space-char`` says so."""
    from ppocr_torch import registry

    from .config import load_yaml, spec_from_config

    chars, dict_name = None, None
    if args.dict:
        chars, dict_name = read_dict_file(args.dict), Path(args.dict).name
    elif fmt == "paddle_inference":
        from .readers.paddle_inference import read_inference_dictionary, resolve_files

        chars = read_inference_dictionary(resolve_files(source)[0])
        if chars is not None:
            chars = chars[:-1] if chars[-1:] == [""] else list(chars)
            dict_name = "inference.yml"
    default_name = Path(source).stem if fmt == "onnx" else Path(source).resolve().name
    if args.config:
        if chars is None:
            raise ConversionError(f"{source}: needs --dict (the model's character dictionary)")
        spec, notes = spec_from_config(load_yaml(args.config), name=args.name or default_name, dict_chars=chars,
                                       reverse_text=args.reverse_text,
                                       dictionary_file=dict_name)
    elif arch:
        base = registry.get_entry(arch).spec
        notes = [f"architecture of registry model {base.name}"]
        if chars is not None:
            use_space = args.use_space_char
            if use_space is None:
                n = _export_classes(source, fmt)
                use_space = base.use_space_char if n is None else n == len(chars) + 2
            spec = base.replace(name=args.name or default_name, dictionary=dict_name, use_space_char=use_space,
                                num_classes=1 + len(chars) + int(use_space))
        else:
            spec = base.replace(name=args.name or base.name)
    else:
        raise ConversionError(f"{source}: an own export needs --config TRAIN.yml (with --dict) or --model "
                              "REGISTRY_NAME (its architecture)")
    charset = build_charset(chars, spec.use_space_char) if chars is not None else cv.package_charset(spec)
    model, _ = cv.convert_export(source, spec, charset, fmt)
    report = parity_against(model, source, images=args.images, limit=args.limit)
    _check(report, spec.name)
    if args.charset:
        notes.append(adapt_charset(model, args.charset, bool(args.use_space_char)))
    if fmt == "paddle_inference":
        from .readers.paddle_inference import resolve_files

        program, params = resolve_files(source)
        meta = dict(cv.source_meta(spec.name, fmt, program), source_params_sha256=cv.sha256_file(params))
    else:
        meta = cv.source_meta(spec.name, fmt, source)
    path, _ = write_outputs(model, args.out, meta, {"source": {"format": fmt, "file": str(source)},
                                                   "parity": _parity_entry(report), "notes": notes})
    print(path)
    return 0


def run_verify(args):
    from ppocr_torch.checkpoint import load_checkpoint

    model = load_checkpoint(args.checkpoint)
    report = parity_against(model, args.against, images=args.images, limit=args.limit, tolerance=args.tolerance)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"{model.spec.name}: {report['inputs']} inputs vs {report['runtime']}: max |diff| prob "
          f"{report['max_abs_prob']:.3g}, median {report['median_abs_prob']:.3g}, text agreement "
          f"{report['text_agreement']:.2%} -> {'PASS' if report['passed'] else 'FAIL'}", file=sys.stderr)
    layers = report.get("layers", {})
    for stage, st in layers.get("stages", {}).items():
        print(f"  {stage:8s} {st['ops']:3d} ops, worst max |diff| {st['max_abs']:.3g} at {st['worst_module']}",
              file=sys.stderr)
    if layers.get("first_divergent_op"):
        d = layers["first_divergent_op"]
        print(f"  first divergent layer: #{d['op']} {d['module']} (relative error {d.get('rel')})", file=sys.stderr)
    if layers.get("error"):
        print(f"  no layer-by-layer report: {layers['error']}", file=sys.stderr)
    return 0 if report["passed"] else 1


def run_release(args):
    """Rebuild every registry model whose official source is reachable into ``--out`` and record each file's
    URL, sha256 and parity in the registry (``--zoo-dir``, default the package's). A model that fails parity
    writes nothing and makes the exit status non-zero; the others are still released."""
    from ppocr_torch import registry

    from .parity import output_parity, runtime_name

    out = Path(args.out)
    base = args.base_url.rstrip("/") + "/" if args.base_url else None
    done, failed, skipped = [], [], []
    for entry in registry.entries():
        if args.models and entry.name not in args.models:
            continue
        pinned = bool(entry.official.get("sources"))
        if not pinned and not (args.official_urls and entry.official.get("inference_url")):
            skipped.append(entry.name)
            continue
        try:  # the first pinned source (ONNX where the registry has one), else PaddleOCR's own download
            model, _, src, meta = cv.convert_registry_model(entry.name, source_index=0,
                                                            source_path=None if pinned else "official")
            runtime = runtime_name(src)
            report = output_parity(model, src, cv.parity_inputs(model.spec, args.images, limit=args.limit),
                                   model.charset)
            _check(dict(report, runtime=runtime), entry.name)
            path, digest = cv.write_checkpoint(model, out, meta)
            cv.update_registry(entry.name, weights=cv.weights_record(
                model, path, digest, embedded=bool(entry.weights and entry.weights.embedded),
                url=(base + path.name) if base else None),
                parity=cv.registry_parity(report, runtime, meta, src),
                verification=cv.registry_verification(runtime), zoo_dir=args.zoo_dir)
            done.append(path.name)
        except (ConversionError, ParityError, PPOCRTorchError) as exc:  # unreachable source, parity, spec
            failed.append(f"{entry.name}: {exc}")
    print(f"release: {len(done)} converted into {out}, {len(failed)} failed, {len(skipped)} without a reachable "
          f"official source" + ("" if args.official_urls else " (--official-urls tries PaddleOCR's downloads too)"),
          file=sys.stderr)
    for f in done:
        print(f"  {f}", file=sys.stderr)
    for f in failed:
        print(f"  FAILED {f}", file=sys.stderr)
    return 1 if failed else 0


def run_convert_static_v1(args):
    """A PaddleOCR 1.x saved model (program + parameters) of a registry architecture (default: v1.1 mobile).

    No 1.x runtime exists to compare against: the program's layers are checked against the torch model
    (strides, paddings, groups, eps, LSTM settings, shapes) and every tensor is accounted for."""
    from ppocr_torch import registry
    from ppocr_torch.charset import packaged_charset

    from .rules_v1 import convert_static_v1

    spec = registry.get_entry(args.model or "ch_ppocr_mobile_v1.1_rec").spec
    if args.name:
        spec = spec.replace(name=args.name)
    model, report = convert_static_v1(args.static_v1, spec)
    model.charset = packaged_charset(spec)
    notes = list(getattr(report, "notes", []))
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    meta = cv.source_meta(spec.name, "paddle_v1_static", next(p for p in sorted(Path(args.static_v1).iterdir())
                                                              if p.is_file()))
    path, _ = write_outputs(model, args.out, meta, {
        "source": {"format": "paddle_v1_static", "folder": str(args.static_v1)},
        "parity": {"status": "not verified against a runtime (no PaddleOCR 1.x runtime here); program structure "
                             "checked layer by layer and every tensor accounted for"},
        "notes": notes})
    print(path)
    return 0


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


def run_convert_official(args, name, *, source=None):
    """A registry model from its official source (the registry's pinned one, or ``source``: a local export,
    an archive, a URL or "official"), with the full parity report; optionally a new character set."""
    from ppocr_torch import registry

    from .parity import layer_parity, output_parity, runtime_name, summarize_layers

    entry = registry.get_entry(name)
    if args.charset and (args.update_registry or args.embed):
        raise ConversionError("--charset makes a new model (new classifier): it cannot replace the registry's "
                              f"{entry.name}; drop --update-registry/--embed")
    model, pairs, model_path, meta = cv.convert_registry_model(entry.name, source_index=args.source_index,
                                                               source_path=source)
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
        name = f"{entry.name}_{Path(args.charset).stem}"
        note = adapt_charset(model, args.charset, bool(args.use_space_char), name=name)
        path, _ = write_outputs(model, out_dir, dict(meta, name=name), {
            "source": {"format": meta["source_format"], "file": str(model_path), "base_model": entry.name},
            "parity": {"runtime": runtime, "base_model_passed": True, "inputs": report["output"]["inputs"]},
            "notes": [note]})
        print(path)
        return 0
    path, digest = cv.write_checkpoint(model, out_dir, meta, replace_others=args.embed)
    print(path)
    if args.update_registry:
        cv.update_registry(entry.name, weights=cv.weights_record(model, path, digest, embedded=args.embed),
                           parity=cv.registry_parity(report["output"], runtime, meta, model_path),
                           verification=cv.registry_verification(runtime), zoo_dir=args.zoo_dir)
    return 0

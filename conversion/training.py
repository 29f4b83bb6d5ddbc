"""Convert a PaddleOCR training checkpoint (``.pdparams`` + training YAML [+ dictionary]).

    spec from the config (the class count from the dictionary, checked against the checkpoint's classifier)
    -> training-form torch module filled by name rules (conversion/rules.py)
    -> deploy form (BatchNorm and branches folded)
"""

from __future__ import annotations

from pathlib import Path

from ppocr_torch.charset import build_charset, read_dict_file

from .config import load_yaml, spec_from_config
from .errors import ConversionError
from ppocr_torch.formats.pdparams import read_pdparams
from .rules import map_training_state

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names used in type hints only
    from ppocr_torch.models.rec_model import RecModel
    import os


def resolve_dictionary(cfg: dict, dict_path: str | os.PathLike | None = None) -> tuple[list[str], str]:
    """The dictionary lines: ``dict_path`` if given, else the config's character_dict_path when it is a file
    or one of the dictionaries shipped in ppocr_torch/dicts (matched by file name)."""
    if dict_path:
        return read_dict_file(dict_path), Path(dict_path).name
    ref = (cfg.get("Global") or {}).get("character_dict_path")
    if not ref:
        raise ConversionError("the config names no character_dict_path and no --dict was given")
    if Path(ref).is_file():
        return read_dict_file(ref), Path(ref).name
    from importlib import resources

    shipped = resources.files("ppocr_torch").joinpath("dicts").joinpath(Path(ref).name)
    if shipped.is_file():
        with resources.as_file(shipped) as p:
            return read_dict_file(p), Path(ref).name
    raise ConversionError(f"dictionary {ref!r} (from the config) not found: pass --dict PATH")


def convert_checkpoint(pdparams: str | os.PathLike, config: str | os.PathLike | dict, *, name: str | None = None,
                       dict_path: str | os.PathLike | None = None, branch: str = "Student",
                       reverse_text: bool | None = None, form: str = "deploy") -> tuple[RecModel, list[str]]:
    """Return (model, notes): the deploy-form model, or with ``form="train"`` the training-form model with the
    checkpoint's own BatchNorm statistics and branches (the better start for fine-tuning than
    ``RecModel.train_form()`` of a deploy-form model, which has to re-insert them as identities)."""
    if form not in ("train", "deploy"):
        raise ConversionError(f"form must be 'train' or 'deploy', got {form!r}")
    from ppocr_torch.models import build_model, reparameterize_model

    cfg = load_yaml(config) if not isinstance(config, dict) else config
    chars, dict_name = resolve_dictionary(cfg, dict_path)
    name = name or (cfg.get("Global") or {}).get("model_name") or Path(pdparams).stem
    spec, notes = spec_from_config(cfg, name=name, dict_chars=chars, dictionary_file=dict_name, branch=branch,
                                   reverse_text=reverse_text)
    charset = build_charset(chars, spec.use_space_char)
    src = read_pdparams(pdparams)
    model = build_model(spec, form="train", charset=charset)
    state, report = map_training_state(src, model, branch=branch)
    model.load_state_dict(state, strict=True)
    notes += [f"flavour: {report.flavour}" + (f" (branch {report.branch})" if report.branch else "")]
    notes += [f"dropped {n} tensors: {reason}" for reason, n in sorted(report.dropped.items())]
    if form == "deploy":
        reparameterize_model(model)
    return model.eval(), notes

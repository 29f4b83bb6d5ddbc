"""Regenerate the README's model table from the registry.

    python -m conversion.model_table            # print the table
    python -m conversion.model_table --write    # replace it in README.md between the markers

Columns: name (aliases), family, languages, classes, parameters (deploy form), weights, parity status.
"""

import argparse
import sys
from pathlib import Path

START, END = "<!-- models-table:start -->", "<!-- models-table:end -->"
README = Path(__file__).resolve().parent.parent / "README.md"


_BUILT = {}  # architecture (spec without the class count) -> (parameters, classes, classifier inputs)


def _params(spec):
    """Deploy-form parameter count; one model built per architecture, the classifier's share scaled to the
    class count (models that differ only in their dictionary)."""
    from ppocr_torch.models import build_model

    key = spec.replace(name="x", num_classes=2, dictionary="", extra={}).to_dict()
    key = repr(sorted(key.items()))
    if key not in _BUILT:
        model = build_model(spec)
        fc = model.classifier()
        _BUILT[key] = (sum(p.numel() for p in model.parameters()), spec.num_classes, fc.in_features)
    total, classes, inputs = _BUILT[key]
    return total + (spec.num_classes - classes) * (inputs + 1)


def _weights(entry):
    if entry.weights is None:
        return "official download converted on first use; **unverified** (structure-checked)"
    if entry.weights.embedded:
        return "embedded; verified"
    return "release, else official download converted on first use; verified (digest)"


def _parity(entry):
    p = entry.parity
    if p:
        return (f"{p['runtime']}: text {p['text_agreement']:.0%} on {p['inputs']} inputs, "
                f"\\|Δp\\| median {p.get('median_abs_prob', float('nan')):.1g} / max {p['max_abs_prob']:.1g}")
    return entry.verification.split(":")[0] if entry.verification else "unverified"


def render():
    from ppocr_torch import registry

    rows = ["| model | family | languages | classes | params | weights | parity / verification |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for e in sorted(registry.entries(), key=lambda e: (e.spec.family, e.name)):
        name = f"{e.name}" + (f" ({', '.join(e.aliases)})" if e.aliases else "")
        if e.name == registry.DEFAULT_MODEL:
            name += " **default**"
        rows.append(f"| {name} | {e.family} | {', '.join(e.languages)} | {e.spec.num_classes} | "
                    f"{_params(e.spec) / 1e6:.2f} M | {_weights(e)} | {_parity(e)} |")
    return "\n".join(rows)


def replace_in(text, table):
    if START not in text or END not in text:
        raise ValueError(f"README has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help=f"update {README.name} in place")
    args = ap.parse_args(argv)
    table = render()
    if args.write:
        README.write_text(replace_in(README.read_text(encoding="utf-8"), table), encoding="utf-8")
    else:
        sys.stdout.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

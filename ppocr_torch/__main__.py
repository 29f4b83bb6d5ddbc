"""``python -m ppocr_torch``: the command-line interface (see :mod:`ppocr_torch.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())

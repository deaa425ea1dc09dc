"""``python -m ganfit.gan export CKPT OUT [--half]``: write a plain ``generator.pt`` from a TextureGAN checkpoint."""

from __future__ import annotations

import sys

from ganfit.gan.export import main as export_main


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "export":
        raise SystemExit("usage: python -m ganfit.gan export CKPT OUT [--half]")
    export_main(argv[1:])


if __name__ == "__main__":
    main()

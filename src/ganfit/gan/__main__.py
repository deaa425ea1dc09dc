"""``python -m ganfit.gan export CKPT OUT [--half]``: write a plain ``generator.pt`` from a TextureGAN checkpoint.

The checkpoint is read with ``torch.load(weights_only=True)``: a crafted file cannot run code. Exit codes: 0 written,
2 bad usage (no such subcommand, a missing / foreign / code-carrying checkpoint, an output that cannot be written:
one line, no traceback), 130 Ctrl-C.
"""

from __future__ import annotations

import sys

from ganfit.exit_codes import report_usage
from ganfit.gan.export import main as export_main

USAGE = "usage: python -m ganfit.gan export CKPT OUT [--half]"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "export":
        return report_usage(f"{argv[0]!r} is not a command; {USAGE}" if argv else USAGE)
    return export_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())

"""``python -m ganfit.report OUT [--open]``: write ``OUT/index.html`` for the finished fit job in ``OUT``.

Exit codes: 0 written; 2 bad usage (``OUT`` holds no fit job's summary.json: one line); 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import sys
import webbrowser

from ganfit.exit_codes import run_command
from ganfit.report.fit_report import write_fit_report


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return run_command(lambda: _main(argv), (OSError,))


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganfit.report", description=__doc__)
    parser.add_argument("out", help="a fit job's output folder (holds summary.json)")
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = write_fit_report(args.out)
    print(path)
    if args.open:
        webbrowser.open(path.resolve().as_uri())
    return 0


if __name__ == "__main__":
    sys.exit(main())

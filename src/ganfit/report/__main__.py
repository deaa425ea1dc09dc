"""``python -m ganfit.report OUT [--open]``: write ``OUT/index.html`` for the finished fit job in ``OUT``."""

from __future__ import annotations

import argparse
import logging
import sys
import webbrowser

from ganfit.report.fit_report import write_fit_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganfit.report", description=__doc__)
    parser.add_argument("out", help="a fit job's output folder (holds summary.json)")
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = write_fit_report(args.out)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(path)
    if args.open:
        webbrowser.open(path.resolve().as_uri())
    return 0


if __name__ == "__main__":
    sys.exit(main())

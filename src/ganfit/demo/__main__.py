"""``python -m ganfit.demo [--port 7860] [--host 127.0.0.1] [--out outputs/demo] [--threads N] [key=value ...]``

Extra ``key=value`` arguments are Hydra overrides of the fit config for every job (as for ``fit.py``).
Exit codes: 0 stopped with Ctrl-C (the normal way to end it); 2 bad usage (a port in use, a bad override: one line).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ganfit.config.compose import ConfigUsageError
from ganfit.demo.server import DemoServer
from ganfit.exit_codes import run_command


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return run_command(lambda: _main(argv), (ConfigUsageError, OSError))


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganfit.demo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=7860, help="port (0 = any free port)")
    parser.add_argument("--out", default="outputs/demo", help="folder for the jobs' inputs and results")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per fit (0 = torch's default)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the fit config (key=value)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    overrides = [*args.overrides] + ([f"torch_threads={args.threads}"] if args.threads else [])
    server = DemoServer(args.out, args.host, args.port, overrides)
    print(f"ganfit demo: open {server.url} (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

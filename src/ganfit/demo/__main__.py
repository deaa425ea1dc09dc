"""``ganfit demo [port=7860] [host=127.0.0.1] [out=outputs/demo] [threads=N] [key=value ...]`` (= ``python -m
ganfit.demo ...``).

The other ``key=value`` arguments are Hydra overrides of the fit config for every job (as for ``fit.py``).
Exit codes: 0 stopped with Ctrl-C (the normal way to end it); 2 bad usage (a port in use, a bad override: one line).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from ganfit.args import parse_known_args
from ganfit.config.compose import ConfigUsageError, compose_config
from ganfit.demo.server import DemoServer
from ganfit.exit_codes import run_command


@dataclass
class DemoArgs:
    """The demo's own keys (every other ``key=value`` goes to the fit config)."""

    host: str = field(default="127.0.0.1", metadata={"help": "address to listen on (default: loopback only)"})
    port: int = field(default=7860, metadata={"help": "port (0 = any free port)"})
    out: str = field(default="outputs/demo", metadata={"help": "folder for the jobs' inputs and results"})
    threads: int = field(default=0, metadata={"help": "torch threads per fit (0 = torch's default)"})


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return run_command(lambda: _main(argv), (ConfigUsageError, OSError))


def _main(argv: list[str] | None = None) -> int:
    args, fit_overrides = parse_known_args(
        DemoArgs, argv, prog="ganfit demo", doc="The local demo web app. Any other key=value overrides the fit config."
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    overrides = [*fit_overrides] + ([f"torch_threads={args.threads}"] if args.threads else [])
    compose_config("fit", overrides)  # a bad override fails now (exit 2), not in the first job
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

"""The exit codes every ganfit command keeps, and the wrapper that maps a command's outcome onto them.

=====  ==========================================================================================================
code   meaning
=====  ==========================================================================================================
0      all done
1      some inputs failed (the command's summary says which)
2      bad usage or configuration: one line ``error: ...`` naming the key or file and what would fix it, no traceback
130    interrupted (Ctrl-C / SIGINT), after writing the summary of what finished where the command has one
=====  ==========================================================================================================

Each command passes the exception types that are usage errors for it (a missing photo, a bad config value, a
foreign weights file); anything else is a bug and keeps its traceback. :func:`run_command` wraps a :mod:`ganfit.args` or
``compose_config`` command, :func:`hydra_entry` a ``hydra.main`` one (fit.py, train_texture_gan.py).

Bottom layer beside :mod:`ganfit.config` (its only ganfit import), so every entry point can use it without loading
the fit job.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from ganfit.config.compose import CONF_DIR, describe_config_error

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "describe_config_failure",
    "describe_startup_error",
    "exit_code_of",
    "hydra_entry",
    "one_line",
    "report_usage",
    "run_command",
]


class UsageError(ValueError):
    """A command-line mistake found by a command itself (a file that is not what the option needs, ...)."""


def one_line(message: object) -> str:
    """``message`` with its whitespace (newlines of chained errors included) collapsed to single spaces."""
    return " ".join(str(message).split())


def report_usage(message: object) -> int:
    """Print ``error: <message>`` (one line) to stderr; returns :data:`EXIT_USAGE`."""
    sys.stderr.flush()
    print(f"error: {one_line(message)}", file=sys.stderr)
    return EXIT_USAGE


def exit_code_of(exit_: SystemExit) -> int:
    """The status a ``SystemExit`` stands for: ``None`` 0, an int itself, a message (``SystemExit("usage: ...")``,
    printed here) 2."""
    if exit_.code is None:
        return EXIT_OK
    if isinstance(exit_.code, int):
        return exit_.code
    return report_usage(exit_.code)


def run_command(
    main: Callable[[], int | None],
    usage_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Run a command's ``main()`` and return its exit code: its own return value (``None`` = 0); 2 with one line for
    :class:`UsageError` and ``usage_errors``; 130 for Ctrl-C (``interrupted``, with the message of the
    ``KeyboardInterrupt`` when the command gave one); the argument parser's own exits (2 for a bad key) kept."""
    try:
        code = main()
    except KeyboardInterrupt as stop:
        print(f"interrupted: {stop}" if str(stop) else "interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exit_:
        return exit_code_of(exit_)
    except (UsageError, *usage_errors) as error:
        cause = error.__cause__
        if isinstance(cause, (HydraException, OmegaConfBaseException)):  # compose_config's wrapped errors
            return report_usage(describe_config_failure(cause))
        return report_usage(error)
    return EXIT_OK if code is None else int(code)


CONFIG_KEYS_HINT = "the keys are in ganfit/conf/; fit.py and train_texture_gan.py print them with --cfg job"
_CONFIG_ERRORS = (HydraException, OmegaConfBaseException, ValueError)
_HYDRA_HINT = "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace."


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _first_line(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


def describe_config_failure(error: BaseException, keys_hint: str = CONFIG_KEYS_HINT) -> str:
    """One line for a composition error: the key and what is wrong (``fitting.resolution: Value 'abc' of type 'str'
    could not be converted to Integer``), a hint for the override grammar's lexer errors, else Hydra's chained text.
    ``keys_hint`` says where the valid keys are listed (an unknown key's message ends with it)."""
    chain = _chain(error)
    text = describe_config_error(error).replace(_HYDRA_HINT, "").strip()
    if any(marker in text for marker in ("LexerNoViableAltException", "token recognition error", "mismatched input")):
        override = _first_line(chain[0]).replace("LexerNoViableAltException:", "").strip()
        override = override.split(" See https://hydra.cc")[0].strip()
        return (
            f"cannot parse the command line ({override}): Hydra's override grammar needs quotes around values "
            "with spaces, commas, '#', '=', brackets or non-ASCII characters, e.g. image='\"my photos/a#1.jpg\"'; "
            "or name the photos in a list file (image=photos.txt), see docs/fitting.md"
        )
    for link in chain:
        key = getattr(link, "full_key", None)
        if isinstance(link, OmegaConfBaseException) and key:
            line = _first_line(link)
            if "not in" in line and "Key" in line:
                return f"{key}: unknown key ({line}); check the spelling ({keys_hint})"
            if "Missing mandatory value" in line:
                return f"{key} is required: give {key}=..."
            return f"{key}: {line}"
    return text.split(" Config search path:")[0]


def describe_startup_error(error: BaseException) -> str | None:
    """The one-line message for an error Hydra raised before the task started (composing the config, creating the
    run folder under ``out=``), or None when it is not a usage error."""
    if isinstance(error, OSError) and not isinstance(error, _CONFIG_ERRORS):
        where = error.filename or ""
        reason = error.strerror or type(error).__name__
        return f"cannot create the output folder {where}: {reason} (out= must name a folder you can write)"
    if isinstance(error, _CONFIG_ERRORS):
        return describe_config_failure(error)
    return None


def hydra_entry(task: Callable[[DictConfig], int], config_name: str) -> int:
    """Run ``task`` under ``hydra.main`` (multirun, sweeps and output folders as Hydra does them) and turn its
    outcome into an exit code. Errors before the task starts (an unknown key, a value of the wrong type, an output
    folder that cannot be created) are usage: one line, exit 2. Hydra's own report of them (chained tracebacks) is
    bypassed with ``HYDRA_FULL_ERROR=1``, so they reach this function as exceptions."""
    started = {"task": False}

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
    def main(cfg: DictConfig) -> None:
        started["task"] = True
        code = task(cfg)
        if code:
            sys.exit(code)

    previous = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except SystemExit as exit_:
        code = exit_code_of(exit_)
        if code == 1 and not started["task"]:
            return EXIT_USAGE
        return code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:
        message = None if started["task"] else describe_startup_error(error)
        if message is None:
            raise
        return report_usage(message)
    finally:
        if previous is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous
    return EXIT_OK

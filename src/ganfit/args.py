"""The one argument style of every ganfit command: ``key=value`` (Hydra's override grammar), checked against a typed
dataclass per command.

    ganfit assets where dir=/data/ict          # an action word first where a command has several
    ganfit landmarks photos=[a.jpg,b.jpg] backend=dlib json=faces.json
    ganfit report out=outputs/fit open=true

A command declares its keys as a dataclass: a field's type is checked by OmegaConf (``n=abc`` for an ``int``
fails), a field without a default (``omegaconf.MISSING``) is required, ``metadata={"help": ...}`` is its one-line
doc and ``metadata={"choices": (...)}`` the values it accepts. :func:`parse_args` composes the dataclass (registered
in Hydra's ConfigStore) with the overrides exactly as ``fit.py`` composes its config, so quoting, lists
(``photos=[a.jpg,'b c.jpg']``) and the error messages are Hydra's. An unknown key, a wrong type, a value outside the
choices or a missing required key: ``error: <key>: ...`` (one line) on stderr and ``SystemExit(2)``; ``-h`` /
``--help``: the keys with their types, defaults and docs on stdout and ``SystemExit(0)`` — what argparse does, so
:func:`ganfit.exit_codes.run_command` keeps the exit codes.

Commands with sub-actions (``assets where|verify|ensure|fetch``, ``identity compare|embed``) take the action as
the first word (:func:`parse_action`); each action has its own dataclass. Commands with a packaged config
(``conf/eval_photos.yaml``, ...) compose it with :func:`compose_command` (its schema is the registered dataclass).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from hydra import compose, initialize
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from ganfit.config.compose import compose_config
from ganfit.exit_codes import EXIT_OK, EXIT_USAGE, describe_config_failure, report_usage

__all__ = ["HELP_WORDS", "compose_command", "format_help", "parse_action", "parse_args", "parse_known_args"]

T = TypeVar("T")

HELP_WORDS = ("-h", "--help")
KEYS_HINT = "see --help for the keys"


def _fields(schema: type) -> list[dataclasses.Field]:
    if not dataclasses.is_dataclass(schema):
        raise TypeError(f"{schema!r} is not a dataclass")
    return list(dataclasses.fields(schema))


def _default_text(item: dataclasses.Field) -> str:
    if item.default is not dataclasses.MISSING:
        value = item.default
    elif item.default_factory is not dataclasses.MISSING:
        value = item.default_factory()
    else:
        return "(required)"
    if value == MISSING:
        return "(required)"
    return f"= {value}" if isinstance(value, Path) else f"= {value!r}"


def format_help(schema: type, prog: str, doc: str = "") -> str:
    """The ``--help`` text of one command: usage line, ``doc`` and one line per key (type, default, doc)."""
    lines = [f"usage: {prog} [key=value ...]"]
    if doc:
        lines += ["", doc.strip()]
    lines += ["", "keys:"]
    lines += _key_lines(schema)
    return "\n".join(lines) + "\n"


def _key_lines(schema: type) -> list[str]:
    lines = []
    for item in _fields(schema):
        head = (
            f"  {item.name}: {item.type if isinstance(item.type, str) else getattr(item.type, '__name__', item.type)}"
        )
        head += f" {_default_text(item)}"
        help_text = item.metadata.get("help", "")
        if "choices" in item.metadata:
            help_text = f"{help_text} (one of {', '.join(map(str, item.metadata['choices']))})".strip()
        lines.append(f"{head:<44s} {help_text}".rstrip() if help_text else head)
    return lines


def _usage_exit(message: object) -> SystemExit:
    report_usage(message)
    return SystemExit(EXIT_USAGE)


def _root_key(arg: str) -> str:
    return arg.split("=", 1)[0].lstrip("+~").split(".", 1)[0].split("[", 1)[0]


def parse_known_args(
    schema: type[T], argv: Sequence[str] | None = None, *, prog: str, doc: str = ""
) -> tuple[T, list[str]]:
    """Like :func:`parse_args`, but ``key=value`` arguments whose key is not a field of ``schema`` are returned
    (in order) instead of failing: the overrides a command passes on to a config it composes itself (the demo's fit
    config, the embedding tools' ``eval_synthetic``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    names = {item.name for item in _fields(schema)}
    own = [arg for arg in args if arg in HELP_WORDS or "=" not in arg or _root_key(arg) in names]
    rest = [arg for arg in args if arg not in own]
    return parse_args(schema, own, prog=prog, doc=doc), rest


def parse_args(schema: type[T], argv: Sequence[str] | None = None, *, prog: str, doc: str = "") -> T:
    """The ``schema`` instance that the ``key=value`` arguments ``argv`` (default ``sys.argv[1:]``) describe.

    Raises:
        SystemExit: 0 after printing the help (``-h`` / ``--help``); 2 after printing one ``error:`` line naming
            the key (unknown key, wrong type, not one of the choices, missing required value, not ``key=value``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if any(arg in HELP_WORDS for arg in args):
        print(format_help(schema, prog, doc), end="")
        raise SystemExit(EXIT_OK)
    keys = ", ".join(item.name for item in _fields(schema)) or "none"
    for arg in args:
        if "=" not in arg:
            raise _usage_exit(f"{arg!r} is not key=value (the keys of {prog}: {keys}; {KEYS_HINT})")
    node = f"_ganfit_args_{schema.__module__}.{schema.__qualname__}"
    ConfigStore.instance().store(name=node, node=schema)
    try:
        with initialize(version_base="1.3", config_path=None):
            cfg = compose(config_name=node, overrides=args)
        value = OmegaConf.to_object(cfg)
    except MissingMandatoryValue as error:
        key = error.full_key or str(error).rsplit(":", 1)[-1].strip()
        raise _usage_exit(f"{key} is required: give {key}=... ({KEYS_HINT})") from None
    except (HydraException, OmegaConfBaseException) as error:
        raise _usage_exit(describe_config_failure(error, keys_hint=f"the keys of {prog}: {keys}")) from None
    for item in _fields(schema):
        choices = item.metadata.get("choices")
        if choices is not None and getattr(value, item.name) not in choices:
            raise _usage_exit(f"{item.name}={getattr(value, item.name)!r}: not one of {', '.join(map(str, choices))}")
    return value  # type: ignore[return-value]


def parse_action(
    actions: Mapping[str, tuple[type[Any], str]], argv: Sequence[str] | None = None, *, prog: str, doc: str = ""
) -> tuple[str, Any]:
    """The action word (first argument) and its dataclass instance from the rest, for a command with sub-actions.
    ``actions`` maps each word to (its dataclass, one line of doc).

    Raises:
        SystemExit: 0 after the help (``--help``: every action and its keys; ``ACTION --help``: that action's);
            2 after one ``error:`` line (no action, an unknown one, or any error of :func:`parse_args`).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    words = " | ".join(actions)
    if args and args[0] in HELP_WORDS:
        lines = [f"usage: {prog} {{{words}}} [key=value ...]"]
        if doc:
            lines += ["", doc.strip()]
        for word, (schema, line) in actions.items():
            lines += ["", f"{word}: {line}"] + (_key_lines(schema) or ["  (no keys)"])
        print("\n".join(lines))
        raise SystemExit(EXIT_OK)
    if not args:
        raise _usage_exit(f"give an action first: {prog} {{{words}}} [key=value ...] (see --help)")
    word = args[0]
    if word not in actions:
        raise _usage_exit(f"{word!r} is not an action of {prog}; choose one of {words} (see --help)")
    schema, line = actions[word]
    return word, parse_args(schema, args[1:], prog=f"{prog} {word}", doc=line)


def compose_command(name: str, argv: Sequence[str] | None = None, *, prog: str, doc: str = "") -> DictConfig:
    """``conf/<name>.yaml`` composed with the ``key=value`` arguments (:func:`ganfit.config.compose_config`), for a
    command whose keys are a packaged config; ``-h`` / ``--help`` prints the keys with their defaults (the composed
    config as YAML) and raises ``SystemExit(0)``.

    Raises:
        ConfigUsageError: an argument does not fit the schema (the message names the key).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if any(arg in HELP_WORDS for arg in args):
        lines = [f"usage: {prog} [key=value ...]"] + (["", doc.strip()] if doc else [])
        lines += ["", f"keys (ganfit/conf/{name}.yaml, with their defaults):", ""]
        print("\n".join(lines) + OmegaConf.to_yaml(compose_config(name, [])), end="")
        raise SystemExit(EXIT_OK)
    return compose_config(name, args)

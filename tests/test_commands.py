"""One argument style for every command (issue 16): each command of the ``ganfit`` table answers ``--help`` with exit
0 and a misspelt key with exit 2 and one ``error:`` line naming it; ``ganfit`` dispatches to them.

The commands run in-process (``main`` with ``sys.argv`` as the ``ganfit`` launcher sets it): importing them once is
what costs; one subprocess checks the real ``ganfit`` dispatch."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from omegaconf import MISSING

from cli_helpers import environment
from ganfit.args import parse_action, parse_args, parse_known_args
from ganfit.launch import COMMANDS, load_command, main

BAD_KEY = "no_such_kee"


def _run(name: str, argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """``ganfit <name> argv`` in this process: (exit code, stdout, stderr)."""
    command = load_command(name)
    monkeypatch.setattr(sys, "argv", ["ganfit", *argv])
    capsys.readouterr()
    try:
        code = command()
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return 0 if code is None else code, captured.out, captured.err


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_answers_help_and_names_a_misspelt_key(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # Hydra's --help writes nothing, but a wrong turn would land here
    code, out, err = _run(name, ["--help"], capsys, monkeypatch)
    assert code == 0, (code, err[-2000:])
    assert BAD_KEY not in out and len(out.splitlines()) >= 3, out
    first = out.splitlines()[0]
    action = re.search(r"\{(\S+)", first)  # commands with actions: `usage: ganfit assets {where | ...}`
    argv = ([action.group(1)] if action else []) + [f"{BAD_KEY}=1"]
    code, out, err = _run(name, argv, capsys, monkeypatch)
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2, (argv, code, err[-2000:])
    assert "Traceback" not in err and len(lines) == 1, err[-2000:]
    assert f"{BAD_KEY}: unknown key" in lines[0], lines[0]


@dataclass
class _Keys:
    out: Path = field(default=MISSING, metadata={"help": "where to write"})
    n: int = field(default=4, metadata={"help": "how many"})
    mode: str = field(default="a", metadata={"choices": ("a", "b")})
    photos: list[str] = field(default_factory=list)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["out=x", "n=abc"], "error: n: Value 'abc' of type 'str' could not be converted to Integer"),
        (["n=3"], "error: out is required: give out=..."),
        (["out=x", "mode=c"], "error: mode='c': not one of a, b"),
        (["out=x", "nn=3"], "error: nn: unknown key"),
        (["x.jpg"], "error: 'x.jpg' is not key=value"),
    ],
)
def test_parse_args_errors_are_one_line_naming_the_key(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(_Keys, argv, prog="t")
    assert exit_.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(message), err


def test_parse_args_types_values_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    keys = parse_args(_Keys, ["out=a b", "n=7", "photos=[x.jpg,'y z.jpg']"], prog="t")
    assert keys == _Keys(out=Path("a b"), n=7, mode="a", photos=["x.jpg", "y z.jpg"])
    assert isinstance(keys.out, Path)
    with pytest.raises(SystemExit) as exit_:
        parse_args(_Keys, ["-h"], prog="t", doc="Does t.")
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "usage: t [key=value ...]" in text and "Does t." in text
    assert re.search(r"out: Path \(required\) +where to write", text) and re.search(r"n: int = 4 +how many", text)
    assert "(one of a, b)" in text
    own, rest = parse_known_args(_Keys, ["out=o", "fitting=fast", "n=2", "+x.y=1"], prog="t")
    assert (own.out, own.n, rest) == (Path("o"), 2, ["fitting=fast", "+x.y=1"])


def test_parse_action_picks_the_dataclass_of_the_first_word(capsys: pytest.CaptureFixture[str]) -> None:
    @dataclass
    class Other:
        k: int = 0

    actions = {"make": (_Keys, "make things"), "other": (Other, "other things")}
    assert parse_action(actions, ["other", "k=3"], prog="t") == ("other", Other(k=3))
    for argv, message in [([], "give an action first"), (["mak", "out=x"], "'mak' is not an action of t")]:
        with pytest.raises(SystemExit) as exit_:
            parse_action(actions, argv, prog="t")
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_action(actions, ["--help"], prog="t")
    text = capsys.readouterr().out
    assert "usage: t {make | other}" in text and "other: other things" in text and "k: int = 0" in text


def test_ganfit_lists_its_commands_and_refuses_an_unknown_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    listing = capsys.readouterr().out
    assert all(re.search(rf"^  {re.escape(name)} +\S", listing, re.M) for name in COMMANDS), listing
    assert main([]) == 2 and capsys.readouterr().out == listing
    assert main(["fitt"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: 'fitt' is not a ganfit command; `ganfit --help` lists them"]


def test_ganfit_dispatches_to_the_command(tmp_path: Path) -> None:
    """The real launcher in a subprocess: ``ganfit report out=DIR`` reaches the report command (which finds no fit
    job there: its usage error, exit 2), with the thread policy's environment set."""
    script = "import os, sys; from ganfit.launch import main; c = main(); print(os.environ['OMP_WAIT_POLICY']); exit(c)"
    env = environment()
    env.pop("OMP_WAIT_POLICY", None)
    ran = subprocess.run(
        [sys.executable, "-c", script, "report", f"out={tmp_path / 'nope'}"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.startswith("error: ") and "summary.json" in ran.stderr and len(ran.stderr.splitlines()) == 1
    assert ran.stdout.strip() == "PASSIVE"  # set before the command module was imported

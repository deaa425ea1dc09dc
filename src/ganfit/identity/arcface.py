"""Load an insightface ArcFace ONNX export (IResNet backbone) into :class:`ganfit.identity.iresnet.IResNet`.

Only the ``onnx`` package is used to read the file (no onnx2torch, no onnxruntime at load time). Real exports
(``w600k_r50.onnx`` of insightface's ``buffalo_l`` pack, ``glint360k_r100.onnx``, ...) differ from a naive export:

- **auto-generated initializer names** (``"683"``, ``"onnx::Conv_1021"``): names are never used; parameters are found
  by following the graph from its input, node by node, through the IResNet topology (stem conv -> [BN] -> PReLU;
  per block: the block input feeds a BN (main path) and either the Add (identity shortcut) or a 1x1 Conv (projection
  shortcut); the main path is BN -> Conv -> [BN] -> PReLU -> Conv -> [BN] -> Add; then BN -> Flatten/Reshape ->
  Gemm/MatMul(+Add) -> [BN]).
- **BatchNorm folded into convolutions**: a BN that directly follows a conv is usually fused into the conv's weight
  and bias; where the graph has no BN after a conv, the conv keeps its bias and our BN slot becomes ``nn.Identity``.
  BNs that precede a conv (each block's ``bn1``) cannot be folded exactly and stay BatchNormalization nodes.
- **parameters behind small constant subgraphs**: PReLU slopes behind ``Unsqueeze``/``Reshape``, BN statistics behind
  ``Identity``, values in ``Constant`` nodes; these are evaluated.
- **PReLU** slopes of shape ``[C]``, ``[C,1,1]`` or ``[1,C,1,1]``.

Input convention: insightface feeds arcface_torch models ``(rgb - 127.5) / 127.5`` (RGB, 0..255); graphs that
start with their own ``Sub``/``Mul`` normalisation by constants (older MXNet conversions) are handled by moving those
constants into the model's ``pixel_mean``/``pixel_scale`` buffers. Anything else raises :class:`ArcFaceOnnxError`
naming the node where the graph stopped looking like an IResNet.

No real insightface ArcFace file can be obtained in ganfit's build environment (they are downloaded from insightface's
model zoo at run time); the loader is tested on ONNX files exported from our own IResNet (plain, BN-folded, and with
shuffled initializer names) and against onnxruntime.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganfit.identity.dlib_resnet import IdentityWeightsNotFoundError
from ganfit.identity.iresnet import IBasicBlock, IResNet

__all__ = ["ArcFaceOnnxError", "load_arcface_onnx", "read_iresnet_onnx"]

log = logging.getLogger(__name__)

_PASS_THROUGH = {"Identity", "Dropout", "Cast"}


class ArcFaceOnnxError(ValueError):
    """The ONNX file is not an IResNet ArcFace graph this loader understands."""


@dataclass
class ConvParams:
    weight: np.ndarray  # [out, in, kh, kw]
    bias: np.ndarray | None
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass
class BNParams:
    scale: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float


@dataclass
class BlockParams:
    bn1: BNParams | None
    conv1: ConvParams
    bn2: BNParams | None
    prelu: np.ndarray
    conv2: ConvParams
    bn3: BNParams | None
    down_conv: ConvParams | None = None
    down_bn: BNParams | None = None


@dataclass
class IResNetParams:
    """Everything read from the graph, in our module's terms."""

    pixel_mean: float
    pixel_scale: float
    stem_conv: ConvParams
    stem_bn: BNParams | None
    stem_prelu: np.ndarray
    blocks: list[BlockParams] = field(default_factory=list)
    final_bn: BNParams | None = None
    fc_weight: np.ndarray | None = None  # [out, in]
    fc_bias: np.ndarray | None = None
    features_bn: BNParams | None = None
    input_size: tuple[int, int] | None = None


class _Graph:
    """Topology helpers over an ``onnx.GraphProto``: producers, consumers, and constant evaluation."""

    def __init__(self, graph, name: str) -> None:  # noqa: ANN001 - onnx.GraphProto
        from onnx import numpy_helper

        self.name = name
        self.numpy_helper = numpy_helper
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list] = defaultdict(list)
        for node in graph.node:
            for inp in node.input:
                if inp:
                    self.consumers[inp].append(node)
        self.outputs = {o.name for o in graph.output}

    def fail(self, node, what: str) -> ArcFaceOnnxError:  # noqa: ANN001
        where = f"node {node.name or '<unnamed>'} ({node.op_type})" if node is not None else "graph"
        return ArcFaceOnnxError(f"{self.name}: {what} at {where}; not an insightface IResNet ArcFace graph")

    def attr(self, node, key: str, default=None):  # noqa: ANN001, ANN201
        from onnx import helper

        for a in node.attribute:
            if a.name == key:
                return helper.get_attribute_value(a)
        return default

    def const(self, name: str) -> np.ndarray | None:
        """The value of ``name`` if it is computable from initializers/constants alone, else None."""
        if not name:
            return None
        if name in self.consts:
            return self.consts[name]
        node = self.producer.get(name)
        if node is None:
            return None
        value: np.ndarray | None = None
        op = node.op_type
        if op == "Constant":
            t = self.attr(node, "value")
            if t is not None:
                value = self.numpy_helper.to_array(t)
            elif self.attr(node, "value_float") is not None:
                value = np.asarray(self.attr(node, "value_float"), dtype=np.float32)
            elif self.attr(node, "value_floats") is not None:
                value = np.asarray(self.attr(node, "value_floats"), dtype=np.float32)
            elif self.attr(node, "value_ints") is not None:
                value = np.asarray(self.attr(node, "value_ints"), dtype=np.int64)
            elif self.attr(node, "value_int") is not None:
                value = np.asarray(self.attr(node, "value_int"), dtype=np.int64)
        elif op in ("Identity", "Cast"):
            value = self.const(node.input[0])
        elif op in ("Unsqueeze", "Squeeze"):
            x = self.const(node.input[0])
            axes = self.attr(node, "axes")
            if axes is None and len(node.input) > 1:
                a = self.const(node.input[1])
                axes = None if a is None else [int(v) for v in np.ravel(a)]
            if x is not None:
                if op == "Squeeze":
                    value = np.squeeze(x, axis=tuple(axes)) if axes else np.squeeze(x)
                elif axes is not None:
                    out_rank = x.ndim + len(axes)
                    value = x
                    for ax in sorted(a % out_rank for a in axes):
                        value = np.expand_dims(value, ax)
        elif op == "Reshape":
            x, shape = self.const(node.input[0]), self.const(node.input[1])
            if x is not None and shape is not None:
                value = x.reshape([int(s) if s != 0 else x.shape[i] for i, s in enumerate(shape)])
        if value is not None:
            self.consts[name] = value
        return value

    def dynamic_consumers(self, tensor: str) -> list:
        """Nodes that consume ``tensor``'s values, looking through pass-through ops (Identity, Dropout, Cast) and
        ignoring ``Shape`` nodes."""
        out = []
        for node in self.consumers.get(tensor, []):
            if node.op_type == "Shape":  # reads only the shape (e.g. for a Reshape's target): not a data consumer
                continue
            if node.op_type in _PASS_THROUGH:
                out += self.dynamic_consumers(node.output[0])
            else:
                out.append(node)
        return out

    def only_consumer(self, tensor: str, producer=None):  # noqa: ANN001, ANN201
        nodes = self.dynamic_consumers(tensor)
        if len(nodes) != 1:
            raise self.fail(producer, f"expected one consumer of {tensor!r}, found {[n.op_type for n in nodes]}")
        return nodes[0]

    def resolve_output(self, node) -> str:  # noqa: ANN001
        """The tensor name downstream consumers see for ``node`` (its first output)."""
        return node.output[0]

    # -------------------------------------------------------------- op readers
    def conv(self, node) -> ConvParams:  # noqa: ANN001
        if node.op_type != "Conv":
            raise self.fail(node, "expected Conv")
        w = self.const(node.input[1])
        if w is None or w.ndim != 4:
            raise self.fail(node, "conv weight is not a constant 4-D tensor")
        b = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if (self.attr(node, "group", 1) or 1) != 1 or any(d != 1 for d in (self.attr(node, "dilations") or [1, 1])):
            raise self.fail(node, "grouped or dilated convolutions are not part of IResNet")
        strides = tuple(self.attr(node, "strides") or (1, 1))
        pads = list(self.attr(node, "pads") or (0, 0, 0, 0))
        auto_pad = self.attr(node, "auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad not in ("NOTSET", ""):
            raise self.fail(node, f"auto_pad={auto_pad} is not supported")
        if pads[0] != pads[2] or pads[1] != pads[3]:
            raise self.fail(node, f"asymmetric padding {pads}")
        return ConvParams(
            np.asarray(w, np.float32),
            None if b is None else np.asarray(b, np.float32),
            (int(strides[0]), int(strides[1])),
            (int(pads[0]), int(pads[1])),
        )

    def bn(self, node) -> BNParams:  # noqa: ANN001
        values = [self.const(n) for n in node.input[1:5]]
        if any(v is None for v in values):
            raise self.fail(node, "BatchNormalization parameters are not constants")
        scale, bias, mean, var = (np.asarray(v, np.float32).reshape(-1) for v in values)  # type: ignore[arg-type]
        return BNParams(scale, bias, mean, var, float(self.attr(node, "epsilon", 1e-5)))

    def prelu(self, node) -> np.ndarray:  # noqa: ANN001
        if node.op_type != "PRelu":
            raise self.fail(node, "expected PRelu")
        slope = self.const(node.input[1])
        if slope is None:
            raise self.fail(node, "PRelu slope is not a constant")
        return np.asarray(slope, np.float32).reshape(-1)


def _optional_bn(g: _Graph, tensor: str, producer) -> tuple[BNParams | None, str]:  # noqa: ANN001
    """A BN directly consuming ``tensor`` (its only consumer), or None if it was folded away."""
    nodes = g.dynamic_consumers(tensor)
    if len(nodes) == 1 and nodes[0].op_type == "BatchNormalization":
        return g.bn(nodes[0]), nodes[0].output[0]
    return None, tensor


def read_iresnet_onnx(path: str | Path) -> IResNetParams:
    """Parse an IResNet ArcFace ONNX graph by topology into :class:`IResNetParams` (numpy float32 arrays).

    Raises:
        IdentityWeightsNotFoundError: ``path`` does not exist.
        ArcFaceOnnxError: the file is not ONNX, or the graph is not an IResNet.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise IdentityWeightsNotFoundError(
            f"ArcFace ONNX file not found: {path} (set identity.onnx_path to an insightface export such as "
            "w600k_r50.onnx; ganfit does not download it)"
        )
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError/others for non-ONNX bytes
        raise ArcFaceOnnxError(f"{path}: not a readable ONNX file ({exc.__class__.__name__}: {exc})") from exc
    g = _Graph(model.graph, str(path))
    inputs = [i for i in model.graph.input if i.name not in g.consts]
    if len(inputs) != 1:
        raise g.fail(None, f"expected one image input, found {[i.name for i in inputs]}")
    graph_input = inputs[0]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in graph_input.type.tensor_type.shape.dim]
    input_size = (dims[2], dims[3]) if len(dims) == 4 and dims[2] and dims[3] else None

    # optional in-graph normalisation y = a * x + b by scalar constants (MXNet conversions; their input is RGB 0..255)
    t = graph_input.name
    node = g.only_consumer(t)
    a, b = 1.0 / 127.5, -1.0
    if node.op_type in ("Sub", "Mul", "Div", "Add"):
        a, b = 1.0, 0.0
        while node.op_type in ("Sub", "Mul", "Div", "Add"):
            c = g.const(node.input[1])
            if c is None or c.size != 1 or g.const(node.input[0]) is not None:
                raise g.fail(node, "only normalisation of the input by scalar constants is supported")
            c = float(np.ravel(c)[0])
            if node.op_type == "Sub":
                b -= c
            elif node.op_type == "Add":
                b += c
            elif node.op_type == "Mul":
                a, b = a * c, b * c
            else:
                a, b = a / c, b / c
            t = node.output[0]
            node = g.only_consumer(t, node)
    mean, scale = -b / a, a

    stem_conv = g.conv(node)
    t = node.output[0]
    stem_bn, t = _optional_bn(g, t, node)
    node = g.only_consumer(t, node)
    stem_prelu = g.prelu(node)
    t = node.output[0]
    params = IResNetParams(mean, scale, stem_conv, stem_bn, stem_prelu, input_size=input_size)

    while True:
        nodes = g.dynamic_consumers(t)
        bns = [n for n in nodes if n.op_type == "BatchNormalization"]
        others = [n for n in nodes if n.op_type != "BatchNormalization"]
        if len(nodes) == 1 and bns:
            after = g.dynamic_consumers(bns[0].output[0])
            if len(after) == 1 and after[0].op_type in ("Flatten", "Reshape"):
                params.final_bn = g.bn(bns[0])
                t = after[0].output[0]
                break
        if len(nodes) != 2 or len(bns) != 1 or len(others) != 1:
            raise g.fail(
                nodes[0] if nodes else None,
                f"expected a residual block (BN + shortcut) after {t!r}, found {[n.op_type for n in nodes]}",
            )
        bn1 = g.bn(bns[0])
        n = g.only_consumer(bns[0].output[0], bns[0])
        conv1 = g.conv(n)
        bn2, x = _optional_bn(g, n.output[0], n)
        n = g.only_consumer(x, n)
        prelu = g.prelu(n)
        n = g.only_consumer(n.output[0], n)
        conv2 = g.conv(n)
        bn3, x = _optional_bn(g, n.output[0], n)
        add = g.only_consumer(x, n)
        if add.op_type != "Add":
            raise g.fail(add, "expected the residual Add")
        block = BlockParams(bn1, conv1, bn2, prelu, conv2, bn3)
        shortcut = others[0]
        if shortcut.op_type == "Conv":
            block.down_conv = g.conv(shortcut)
            block.down_bn, y = _optional_bn(g, shortcut.output[0], shortcut)
            if g.only_consumer(y, shortcut) is not add:
                raise g.fail(shortcut, "the projection shortcut does not reach the block's Add")
        elif shortcut is not add:
            raise g.fail(shortcut, "expected an identity or 1x1-conv shortcut")
        params.blocks.append(block)
        t = add.output[0]

    n = g.only_consumer(t)
    if n.op_type == "Gemm":
        w = g.const(n.input[1])
        b = g.const(n.input[2]) if len(n.input) > 2 and n.input[2] else None
        if w is None:
            raise g.fail(n, "Gemm weight is not a constant")
        if g.attr(n, "transA", 0):
            raise g.fail(n, "transA=1 is not supported")
        w = np.asarray(w, np.float32) * float(g.attr(n, "alpha", 1.0))
        params.fc_weight = w if g.attr(n, "transB", 0) else w.T
        if b is not None:
            params.fc_bias = np.asarray(b, np.float32).reshape(-1) * float(g.attr(n, "beta", 1.0))
        t = n.output[0]
    elif n.op_type == "MatMul":
        w = g.const(n.input[1])
        if w is None:
            raise g.fail(n, "MatMul weight is not a constant")
        params.fc_weight = np.asarray(w, np.float32).T
        t = n.output[0]
        nxt = g.dynamic_consumers(t)
        if len(nxt) == 1 and nxt[0].op_type == "Add":
            b = g.const(nxt[0].input[1]) if g.const(nxt[0].input[0]) is None else g.const(nxt[0].input[0])
            if b is None:
                raise g.fail(nxt[0], "fc bias is not a constant")
            params.fc_bias = np.asarray(b, np.float32).reshape(-1)
            t = nxt[0].output[0]
    else:
        raise g.fail(n, "expected the fully connected layer (Gemm or MatMul)")
    params.features_bn, t = _optional_bn(g, t, None)
    if t not in g.outputs and g.dynamic_consumers(t):
        raise g.fail(g.dynamic_consumers(t)[0], "unexpected nodes after the embedding")
    return params


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A float32 torch copy of a (possibly read-only) numpy array."""
    return torch.tensor(np.asarray(array, np.float32))


def _set_conv(conv: nn.Conv2d, p: ConvParams, where: str) -> None:
    if tuple(p.weight.shape) != tuple(conv.weight.shape):
        raise ArcFaceOnnxError(f"{where}: conv weight {p.weight.shape} does not fit {tuple(conv.weight.shape)}")
    if p.stride != conv.stride or p.padding != conv.padding:
        raise ArcFaceOnnxError(f"{where}: conv stride/padding {p.stride}/{p.padding} != {conv.stride}/{conv.padding}")
    conv.weight.data.copy_(_tensor(p.weight))
    if p.bias is not None:
        conv.bias = nn.Parameter(_tensor(p.bias))


def _bn_module(p: BNParams | None, channels: int, where: str, one_d: bool = False) -> nn.Module:
    if p is None:
        return nn.Identity()
    if p.scale.shape != (channels,):
        raise ArcFaceOnnxError(f"{where}: BatchNorm of size {p.scale.shape[0]} where {channels} channels are expected")
    bn: nn.BatchNorm1d | nn.BatchNorm2d = (nn.BatchNorm1d if one_d else nn.BatchNorm2d)(channels, eps=p.eps)
    bn.weight.data.copy_(_tensor(p.scale))
    bn.bias.data.copy_(_tensor(p.bias))
    bn.running_mean.copy_(_tensor(p.mean))  # type: ignore[union-attr]
    bn.running_var.copy_(_tensor(p.var))  # type: ignore[union-attr]
    return bn.eval()


def _set_prelu(prelu: nn.PReLU, slope: np.ndarray, where: str) -> None:
    if slope.size == prelu.weight.numel():
        prelu.weight.data.copy_(_tensor(slope))
    elif slope.size == 1:
        prelu.weight.data.fill_(float(slope[0]))
    else:
        raise ArcFaceOnnxError(f"{where}: PReLU with {slope.size} slopes for {prelu.weight.numel()} channels")


def build_iresnet(params: IResNetParams) -> IResNet:
    """An :class:`IResNet` with the architecture implied by ``params`` and its weights."""
    if not params.blocks or params.fc_weight is None:
        raise ArcFaceOnnxError("no residual blocks / fully connected layer found")
    # stages start at each block with a projection shortcut
    starts = [i for i, b in enumerate(params.blocks) if b.down_conv is not None]
    if len(starts) != 4 or starts[0] != 0:
        raise ArcFaceOnnxError(f"expected 4 stages starting with a projection block, found starts at {starts}")
    layers = [b - a for a, b in zip(starts, [*starts[1:], len(params.blocks)], strict=True)]
    widths = [params.blocks[i].conv2.weight.shape[0] for i in starts]
    num_features, fc_in = params.fc_weight.shape
    side = int(round((fc_in / widths[3]) ** 0.5))
    if side * side * widths[3] != fc_in:
        raise ArcFaceOnnxError(f"fc input size {fc_in} is not {widths[3]} x side^2")
    chip_size = side * 16
    if params.input_size is not None and params.input_size != (chip_size, chip_size):
        raise ArcFaceOnnxError(f"graph input {params.input_size} does not match the fc size (chip {chip_size})")
    net = IResNet(layers, widths, num_features=num_features, chip_size=chip_size)
    net.pixel_mean.fill_(params.pixel_mean)
    net.pixel_scale.fill_(params.pixel_scale)
    _set_conv(net.conv1, params.stem_conv, "stem conv")
    net.bn1 = _bn_module(params.stem_bn, widths[0], "stem BN")
    _set_prelu(net.prelu, params.stem_prelu, "stem PReLU")
    for i, (block, p) in enumerate(zip(net.blocks(), params.blocks, strict=True)):
        assert isinstance(block, IBasicBlock)
        where = f"block {i}"
        inplanes = block.conv1.in_channels
        planes = block.conv1.out_channels
        block.bn1 = _bn_module(p.bn1, inplanes, where + " bn1")
        _set_conv(block.conv1, p.conv1, where + " conv1")
        block.bn2 = _bn_module(p.bn2, planes, where + " bn2")
        _set_prelu(block.prelu, p.prelu, where + " prelu")
        _set_conv(block.conv2, p.conv2, where + " conv2")
        block.bn3 = _bn_module(p.bn3, planes, where + " bn3")
        if block.downsample is not None:
            assert p.down_conv is not None
            conv = block.downsample[0]
            assert isinstance(conv, nn.Conv2d)
            _set_conv(conv, p.down_conv, where + " shortcut conv")
            block.downsample[1] = _bn_module(p.down_bn, planes, where + " shortcut BN")
    net.bn2 = _bn_module(params.final_bn, widths[3], "final BN")
    net.fc.weight.data.copy_(_tensor(params.fc_weight))
    if params.fc_bias is not None:
        net.fc.bias.data.copy_(_tensor(params.fc_bias))
    else:
        net.fc.bias = None  # type: ignore[assignment]
    net.features_bn = _bn_module(params.features_bn, num_features, "features BN", one_d=True)
    return net.eval()


def load_arcface_onnx(path: str | Path) -> IResNet:
    """An insightface ArcFace ONNX export (IResNet-18/34/50/100 or any IResNet-shaped graph) as an :class:`IResNet`.

    Args:
        path: the ``.onnx`` file (e.g. ``w600k_r50.onnx``).
    Returns:
        the network in eval mode, float32; ``net(chips [B,3,112,112] RGB in [0,1]) -> [B, 512]``.
    Raises:
        IdentityWeightsNotFoundError: the file does not exist.
        ArcFaceOnnxError: the file is not an IResNet ArcFace graph.
    """
    params = read_iresnet_onnx(path)
    net = build_iresnet(params)
    log.info("loaded IResNet %s (widths %s, %d-d) from %s", net.layers_per_stage, net.widths, net.descriptor_dim, path)
    return net

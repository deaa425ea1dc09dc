"""Rebuild a TF.js graph model (see :mod:`ganfit.identity.tfjs_reader`) as a PyTorch module that runs in NCHW.

The graph is lowered op by op into a list of :class:`Step` records (plain strings, ints and floats, so the list can be
cached with ``torch.save`` and read back with ``weights_only=True``), then local patterns are fused into layers:

- ``Pad`` (zeros, spatial only) followed by a ``VALID`` convolution -> the convolution's explicit padding;
- a convolution followed by a per-channel ``Mul`` and/or ``Add``/``BiasAdd`` (batch norm folded by the converter, or
  not) -> the convolution's weights and bias (folded in float64);
- ``Relu -> Minimum(6) -> Maximum(0)`` (Keras ``relu6`` / clip) -> one clamp;
- PReLU written as ``Maximum(x, 0) + gamma * Minimum(x, 0)`` (MXNet -> TF, mobileface) or as
  ``Relu(x) + c * (x - Abs(x))`` (TF-slim, mobilefacenet, slope ``2c``) -> ``F.prelu``.

Layouts: TensorFlow graphs are NHWC. Every rank-4 activation here is NCHW; constants that broadcast against one are
permuted / reshaped to ``[1, C, 1, 1]``; ``Reshape``, ``Squeeze`` and reductions that leave the channel axis mixed with
others go back to NHWC first so the element order is TensorFlow's. Convolution filters ``[kh, kw, in, out]`` become
``[out, in, kh, kw]``; depthwise filters ``[kh, kw, in, m]`` become ``[in*m, 1, kh, kw]`` with ``groups=in`` (output
channel ``i*m + j`` in both). ``SAME`` padding is TensorFlow's:
``total = max((ceil(n/s) - 1) s + (k - 1) d + 1 - n, 0)``, ``total // 2`` before and the rest after (one more on the
bottom/right for stride 2 on even sizes).

Supported ops: Placeholder, Const, Identity, Conv2D, _FusedConv2D, DepthwiseConv2dNative, FusedDepthwiseConv2dNative
(fused BiasAdd / Relu / Relu6 / Prelu / LeakyRelu), Pad, Add, AddV2, BiasAdd, Sub, Mul, RealDiv, Maximum, Minimum, Relu,
Relu6, Abs, Square, Rsqrt, Sqrt, Sigmoid, Tanh, Softmax, Mean, Sum, Squeeze, Reshape, MatMul, _FusedMatMul,
AvgPool, MaxPool. Anything else raises :class:`TfjsGraphError` naming the node.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganfit.identity.tfjs_reader import TfjsFormatError, TfjsGraph, TfjsNode

__all__ = ["Step", "TfjsGraphError", "TfjsGraphModule", "lower_graph"]

_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}
_BINARY = {
    "Add": "add",
    "AddV2": "add",
    "BiasAdd": "add",
    "Sub": "sub",
    "Mul": "mul",
    "RealDiv": "div",
    "Maximum": "max",
    "Minimum": "min",
}
_UNARY = {
    "Relu": "relu",
    "Relu6": "relu6",
    "Abs": "abs",
    "Square": "square",
    "Rsqrt": "rsqrt",
    "Sqrt": "sqrt",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Identity": "identity",
}


class TfjsGraphError(TfjsFormatError):
    """The graph uses an op or a pattern this module cannot rebuild (the message names the node)."""


@dataclass
class Step:
    """One lowered operation.

    Attributes:
        kind: ``conv``, ``binary``, ``unary``, ``prelu``, ``clip``, ``pad``, ``linear``, ``reduce``, ``squeeze``,
            ``reshape``, ``softmax``, ``pool``.
        out: the TF node name whose value this step produces (the last node of a fused pattern).
        args: value names (graph nodes) this step reads.
        attrs: kind-specific settings (ints, floats, strings, lists); parameter tensors live in the module under
            ``params[<key>]`` where ``attrs["params"]`` maps a role (``weight``, ``bias``, ``alpha``, ``const``) to
            the key.
    """

    kind: str
    out: str
    args: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "out": self.out, "args": list(self.args), "attrs": dict(self.attrs)}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Step:
        return Step(str(d["kind"]), str(d["out"]), [str(a) for a in d["args"]], dict(d["attrs"]))


def _key(name: str) -> str:
    """A TF node name -> a valid ``nn.ParameterDict`` key."""
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def _base(name: str) -> str:
    """``"node:0"`` -> ``"node"`` (all nodes used here have one output)."""
    base, _, index = name.partition(":")
    if index not in ("", "0"):
        raise TfjsGraphError(f"output {index} of node {base!r} is used; only single-output nodes are supported")
    return base


class _Lowering:
    """Builds the step list and the parameter arrays from a graph (the nodes needed for ``outputs`` only)."""

    def __init__(self, graph: TfjsGraph, input_name: str, outputs: list[str]) -> None:
        self.graph = graph
        self.nodes = {n.name: n for n in graph.nodes}
        self.input_name = input_name
        self.params: dict[str, np.ndarray] = {}
        self.steps: list[Step] = []
        self.rank4: set[str] = {input_name}  # values held as NCHW tensors
        self.order = self._topological(outputs)

    def _topological(self, outputs: list[str]) -> list[TfjsNode]:
        order: list[TfjsNode] = []
        state: dict[str, int] = {}
        for out in outputs:
            stack: list[tuple[str, bool]] = [(_base(out), False)]
            while stack:
                name, done = stack.pop()
                if done:
                    state[name] = 2
                    order.append(self.nodes[name])
                    continue
                if state.get(name) == 2:
                    continue
                if state.get(name) == 1:
                    raise TfjsGraphError(f"{self.graph.path.name}: the graph has a cycle through {name!r}")
                if name not in self.nodes:
                    raise TfjsGraphError(f"{self.graph.path.name}: node {name!r} is referenced but not defined")
                state[name] = 1
                stack.append((name, True))
                node = self.nodes[name]
                if node.op not in ("Const", "Placeholder"):
                    stack.extend((_base(i), False) for i in reversed(node.inputs) if state.get(_base(i)) != 2)
        return order

    # ---------------------------------------------------------------- helpers
    def const(self, name: str) -> np.ndarray | None:
        node = self.nodes[_base(name)]
        return self.graph.weights[node.name] if node.op == "Const" else None

    def add_param(self, name: str, value: np.ndarray) -> str:
        key = _key(name)
        while key in self.params:
            key += "_"
        self.params[key] = np.ascontiguousarray(value, dtype=np.float32)
        return key

    def const_operand(self, value: np.ndarray, name: str, against_rank4: bool) -> str:
        """Register a constant operand of an elementwise op, in the layout of the activation it meets."""
        v = np.asarray(value, np.float32)
        if against_rank4:
            if v.ndim == 1:
                v = v.reshape(1, -1, 1, 1)
            elif v.ndim == 4:
                v = v.transpose(0, 3, 1, 2)
            elif v.ndim != 0:
                raise TfjsGraphError(f"node {name!r}: constant of shape {v.shape} against an NHWC activation")
        return self.add_param(name, v)

    # ---------------------------------------------------------------- lowering
    def run(self) -> list[Step]:
        for node in self.order:
            if node.op == "Const":
                continue
            if node.op == "Placeholder":
                if node.name != self.input_name:
                    raise TfjsGraphError(f"the graph needs a second input {node.name!r}")
                continue
            self.lower(node)
        return self.steps

    def lower(self, node: TfjsNode) -> None:
        op, name, ins = node.op, node.name, [_base(i) for i in node.inputs]
        if op in ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):
            self.lower_conv(node, ins)
        elif op in _BINARY:
            self.lower_binary(node, ins)
        elif op in _UNARY:
            self.emit_elementwise(Step("unary", name, [ins[0]], {"fn": _UNARY[op]}), ins[0])
        elif op == "Pad":
            pads = self.const(ins[1])
            if pads is None or ins[0] not in self.rank4 or pads.shape != (4, 2) or pads[0].any() or pads[3].any():
                raise TfjsGraphError(f"node {name!r}: only constant spatial zero-padding of NHWC tensors")
            (top, bottom), (left, right) = pads[1].tolist(), pads[2].tolist()
            self.emit_elementwise(
                Step("pad", name, [ins[0]], {"pads": [int(left), int(right), int(top), int(bottom)]}), ins[0]
            )
        elif op in ("MatMul", "_FusedMatMul"):
            self.lower_matmul(node, ins)
        elif op in ("Mean", "Sum"):
            axes = self.const(ins[1])
            if axes is None:
                raise TfjsGraphError(f"node {name!r}: reduction axes must be constant")
            axes_l = [int(a) for a in np.atleast_1d(axes)]
            self.lower_reduce(
                name, ins[0], "mean" if op == "Mean" else "sum", axes_l, bool(node.attrs.get("keep_dims"))
            )
        elif op == "Squeeze":
            dims = [int(d) for d in node.attrs.get("squeeze_dims", [])]
            self.steps.append(Step("squeeze", name, [ins[0]], {"dims": dims, "nhwc": ins[0] in self.rank4}))
        elif op == "Reshape":
            shape = self.const(ins[1])
            if shape is None or len(shape) == 4:
                raise TfjsGraphError(f"node {name!r}: only constant reshapes to rank != 4 are supported")
            self.steps.append(
                Step("reshape", name, [ins[0]], {"shape": [int(s) for s in shape], "nhwc": ins[0] in self.rank4})
            )
        elif op == "Softmax":
            self.steps.append(Step("softmax", name, [ins[0]], {}))
        elif op in ("AvgPool", "MaxPool"):
            ksize, strides = node.attrs.get("ksize", []), node.attrs.get("strides", [])
            if ins[0] not in self.rank4 or len(ksize) != 4 or ksize[0] != 1 or ksize[3] != 1:
                raise TfjsGraphError(f"node {name!r}: unsupported pooling {ksize}")
            self.emit_elementwise(
                Step(
                    "pool",
                    name,
                    [ins[0]],
                    {
                        "fn": "avg" if op == "AvgPool" else "max",
                        "kernel": [ksize[1], ksize[2]],
                        "stride": [strides[1], strides[2]],
                        "padding": str(node.attrs.get("padding", "VALID")),
                    },
                ),
                ins[0],
            )
        else:
            raise TfjsGraphError(f"{self.graph.path.name}: node {name!r} has op {op!r}, which is not supported")

    def emit_elementwise(self, step: Step, like: str) -> None:
        self.steps.append(step)
        if like in self.rank4:
            self.rank4.add(step.out)

    def lower_conv(self, node: TfjsNode, ins: list[str]) -> None:
        name, op, a = node.name, node.op, node.attrs
        weight = self.const(ins[1])
        if weight is None or weight.ndim != 4 or ins[0] not in self.rank4:
            raise TfjsGraphError(f"node {name!r}: convolution without constant [kh, kw, in, out] filters")
        if a.get("data_format", "NHWC") != "NHWC":
            raise TfjsGraphError(f"node {name!r}: data_format {a.get('data_format')} (only NHWC)")
        strides, dilations = a.get("strides", [1, 1, 1, 1]), a.get("dilations", [1, 1, 1, 1])
        padding = str(a.get("padding", "VALID"))
        if padding not in ("SAME", "VALID"):
            raise TfjsGraphError(f"node {name!r}: padding {padding!r} (only SAME / VALID)")
        kh, kw, cin, cout = weight.shape
        if op.startswith(("Depthwise", "FusedDepthwise")):
            torch_w = weight.transpose(2, 3, 0, 1).reshape(cin * cout, 1, kh, kw)
            groups = cin
        else:
            torch_w = weight.transpose(3, 2, 0, 1)
            groups = 1
        attrs: dict[str, Any] = {
            "stride": [int(strides[1]), int(strides[2])],
            "dilation": [int(dilations[1]), int(dilations[2])],
            "padding": padding,
            "pads": [0, 0, 0, 0],
            "groups": groups,
            "act": None,
            "params": {"weight": self.add_param(name + "/weight", torch_w)},
        }
        fused = list(a.get("fused_ops", [])) if op.startswith(("_Fused", "Fused")) else []
        extra = ins[2:]
        self.apply_fused(name, attrs, fused, extra, a, channels=torch_w.shape[0])
        self.emit_elementwise(Step("conv", name, [ins[0]], attrs), ins[0])

    def apply_fused(
        self, name: str, attrs: dict[str, Any], fused: list[str], extra: list[str], a: dict[str, Any], channels: int
    ) -> None:
        """Handle grappler's fused ops (``BiasAdd`` then an optional activation) of a conv / matmul node."""
        ops = list(fused)
        if ops and ops[0] == "BiasAdd":
            bias = self.const(extra[0]) if extra else None
            if bias is None or bias.shape != (channels,):
                raise TfjsGraphError(f"node {name!r}: fused BiasAdd without a constant [{channels}] bias")
            attrs["params"]["bias"] = self.add_param(name + "/bias", bias)
            ops, extra = ops[1:], extra[1:]
        if ops == ["Relu"]:
            attrs["act"] = "relu"
        elif ops == ["Relu6"]:
            attrs["act"] = "relu6"
        elif ops == ["LeakyRelu"]:
            attrs["act"], attrs["leak"] = "leaky", float(a.get("leakyrelu_alpha", 0.2))
        elif ops == ["Prelu"]:
            alpha = self.const(extra[0]) if extra else None
            if alpha is None:
                raise TfjsGraphError(f"node {name!r}: fused Prelu without a constant slope")
            attrs["act"] = "prelu"
            attrs["params"]["alpha"] = self.add_param(name + "/alpha", np.asarray(alpha).reshape(-1))
        elif ops:
            raise TfjsGraphError(f"node {name!r}: fused ops {fused} are not supported")

    def lower_binary(self, node: TfjsNode, ins: list[str]) -> None:
        name, fn = node.name, _BINARY[node.op]
        consts = [self.const(i) for i in ins]
        rank4 = any(i in self.rank4 for i in ins)
        if consts[0] is not None and consts[1] is not None:
            raise TfjsGraphError(f"node {name!r}: an op on two constants (the converter should have folded it)")
        attrs: dict[str, Any] = {"fn": fn, "params": {}}
        args: list[str] = []
        for slot, (inp, c) in enumerate(zip(ins, consts, strict=True)):
            if c is None:
                args.append(inp)
            else:
                attrs["params"]["const"] = self.const_operand(c, inp, rank4)
                attrs["const_slot"] = slot
                attrs["const_shape"] = list(np.shape(c))
        step = Step("binary", name, args, attrs)
        self.steps.append(step)
        if rank4:
            self.rank4.add(name)

    def lower_matmul(self, node: TfjsNode, ins: list[str]) -> None:
        name, a = node.name, node.attrs
        weight = self.const(ins[1])
        if weight is None or weight.ndim != 2 or a.get("transpose_a") or ins[0] in self.rank4:
            raise TfjsGraphError(f"node {name!r}: only activation @ constant [K, N] matrix products")
        w = weight if a.get("transpose_b") else weight.T  # -> [N, K] for F.linear
        attrs: dict[str, Any] = {"act": None, "params": {"weight": self.add_param(name + "/weight", w)}}
        if node.op == "_FusedMatMul":
            self.apply_fused(name, attrs, list(a.get("fused_ops", [])), ins[2:], a, channels=w.shape[0])
        self.steps.append(Step("linear", name, [ins[0]], attrs))

    def lower_reduce(self, name: str, x: str, fn: str, axes: list[int], keep: bool) -> None:
        if x in self.rank4:
            axes = [a % 4 for a in axes]
            if keep:
                step = Step(
                    "reduce",
                    name,
                    [x],
                    {"fn": fn, "dims": [_NHWC_TO_NCHW_AXIS[a] for a in axes], "keep": True, "nhwc": False},
                )
                self.emit_elementwise(step, x)
                return
            self.steps.append(Step("reduce", name, [x], {"fn": fn, "dims": axes, "keep": False, "nhwc": True}))
        else:
            self.steps.append(Step("reduce", name, [x], {"fn": fn, "dims": axes, "keep": keep, "nhwc": False}))


# ------------------------------------------------------------------------------------------------ fusion
def _consumers(steps: list[Step], outputs: set[str]) -> dict[str, int]:
    count: dict[str, int] = {}
    for s in steps:
        for a in s.args:
            count[a] = count.get(a, 0) + 1
    for o in outputs:
        count[o] = count.get(o, 0) + 1
    return count


def _scalar(params: dict[str, np.ndarray], step: Step) -> float | None:
    """The scalar constant operand of a binary step, if it has one."""
    key = step.attrs.get("params", {}).get("const")
    if key is None or params[key].size != 1:
        return None
    return float(params[key].reshape(()))


def fuse_steps(steps: list[Step], params: dict[str, np.ndarray], keep: set[str]) -> list[Step]:
    """Fuse padding, folded batch norm / biases, relu6 and PReLU patterns (see the module docstring).

    Args:
        steps: lowered steps in execution order (modified and returned).
        params: parameter arrays by key (conv weights/biases are updated in place when folding).
        keep: value names that must stay observable (outputs, feature taps): never fused away.
    Returns:
        the fused step list.
    """
    changed = True
    while changed:
        changed = False
        uses = _consumers(steps, keep)
        producer = {s.out: s for s in steps}
        for i, s in enumerate(steps):
            # Pad -> VALID conv
            if s.kind == "conv" and s.attrs["padding"] == "VALID" and s.args[0] in producer:
                p = producer[s.args[0]]
                if p.kind == "pad" and uses.get(p.out) == 1 and p.out not in keep:
                    s.attrs["pads"] = [a + b for a, b in zip(s.attrs["pads"], p.attrs["pads"], strict=True)]
                    s.args = list(p.args)
                    steps.remove(p)
                    changed = True
                    break
            # conv -> per-channel Mul / Add(const) (before any activation of the conv)
            if s.kind == "binary" and s.attrs["fn"] in ("mul", "add", "sub") and len(s.args) == 1:
                c = producer.get(s.args[0])
                if (
                    c is not None
                    and c.kind == "conv"
                    and c.attrs["act"] is None
                    and uses.get(c.out) == 1
                    and c.out not in keep
                    and not (s.attrs["fn"] == "sub" and s.attrs["const_slot"] == 0)
                ):
                    value = params[s.attrs["params"]["const"]].astype(np.float64).reshape(-1)
                    cout = params[c.attrs["params"]["weight"]].shape[0]
                    if value.size in (1, cout):
                        _fold_into_conv(c, s.attrs["fn"], value, params, cout)
                        c.out = s.out
                        steps.remove(s)
                        changed = True
                        break
            # Relu -> Minimum(6) -> Maximum(0)  ==  clamp(0, 6)
            if s.kind == "unary" and s.attrs["fn"] == "relu" and uses.get(s.out) == 1 and s.out not in keep:
                m = next((t for t in steps[i + 1 :] if s.out in t.args), None)
                if m is not None and m.kind == "binary" and m.attrs["fn"] == "min" and _scalar(params, m) is not None:
                    n = next((t for t in steps if m.out in t.args), None)
                    if (
                        n is not None
                        and uses.get(m.out) == 1
                        and m.out not in keep
                        and n.kind == "binary"
                        and n.attrs["fn"] == "max"
                        and _scalar(params, n) == 0.0
                    ):
                        hi = _scalar(params, m)
                        steps[steps.index(n)] = Step("clip", n.out, list(s.args), {"lo": 0.0, "hi": hi})
                        steps.remove(s)
                        steps.remove(m)
                        changed = True
                        break
            if s.kind == "binary" and s.attrs["fn"] == "add" and len(s.args) == 2:
                fused = _match_prelu(s, producer, uses, params, keep)
                if fused is not None:
                    new_step, dead = fused
                    steps[i] = new_step
                    for d in dead:
                        steps.remove(d)
                    changed = True
                    break
    for key in [k for k in params if not any(k in s.attrs.get("params", {}).values() for s in steps)]:
        del params[key]
    return steps


def _fold_into_conv(conv: Step, fn: str, value: np.ndarray, params: dict[str, np.ndarray], cout: int) -> None:
    wkey = conv.attrs["params"]["weight"]
    bkey = conv.attrs["params"].get("bias")
    bias = params[bkey].astype(np.float64) if bkey else np.zeros(cout)
    value = np.broadcast_to(value, (cout,))
    if fn == "mul":
        params[wkey] = (params[wkey].astype(np.float64) * value[:, None, None, None]).astype(np.float32)
        bias = bias * value
    else:
        bias = bias + value if fn == "add" else bias - value
    if bkey is None:
        bkey = wkey + "_bias"
        conv.attrs["params"]["bias"] = bkey
    params[bkey] = bias.astype(np.float32)


def _match_prelu(
    add: Step, producer: dict[str, Step], uses: dict[str, int], params: dict[str, np.ndarray], keep: set[str]
) -> tuple[Step, list[Step]] | None:
    """``Maximum(x,0) + Mul(g, Minimum(x,0))`` or ``Relu(x) + Mul(Sub(x, Abs(x)), c)`` -> ``prelu(x, g | 2c)``."""
    a, b = (producer.get(n) for n in add.args)
    if a is None or b is None:
        return None
    if b.kind not in ("binary",) or b.attrs["fn"] != "mul":
        a, b = b, a
    if b is None or a is None or b.kind != "binary" or b.attrs["fn"] != "mul" or len(b.args) != 1:
        return None
    slope_key = b.attrs["params"]["const"]
    inner = producer.get(b.args[0])
    if inner is None:
        return None
    if (
        a.kind == "binary"
        and a.attrs["fn"] == "max"
        and _scalar(params, a) == 0.0
        and inner.kind == "binary"
        and inner.attrs["fn"] == "min"
        and _scalar(params, inner) == 0.0
        and inner.args == a.args
    ):
        x, dead, factor = a.args[0], [a, b, inner], 1.0
    elif (
        a.kind == "unary"
        and a.attrs["fn"] == "relu"
        and inner.kind == "binary"
        and inner.attrs["fn"] == "sub"
        and len(inner.args) == 2
        and inner.args[0] == a.args[0]
    ):
        ab = producer.get(inner.args[1])
        if ab is None or ab.kind != "unary" or ab.attrs["fn"] != "abs" or ab.args != a.args:
            return None
        x, dead, factor = a.args[0], [a, b, inner, ab], 2.0
    else:
        return None
    if any(uses.get(d.out) != 1 or d.out in keep for d in dead):
        return None
    slope = params[slope_key].reshape(-1).astype(np.float64) * factor
    params[slope_key] = slope.astype(np.float32)
    return Step("prelu", add.out, [x], {"params": {"alpha": slope_key}}), dead


def lower_graph(
    graph: TfjsGraph, input_name: str, outputs: list[str], fuse: bool = True
) -> tuple[list[Step], dict[str, np.ndarray]]:
    """Lower the part of ``graph`` that computes ``outputs`` from ``input_name``.

    Args:
        graph: a parsed TF.js graph model.
        input_name: the ``Placeholder`` node fed with the NCHW input.
        outputs: node names that must be computed (descriptor and feature taps); they stay observable after fusion.
        fuse: apply :func:`fuse_steps` (``False`` gives the literal op-by-op graph, for testing the fusion).
    Returns:
        ``(steps, params)``: steps in execution order, parameter arrays (float32) by key.
    """
    lowering = _Lowering(graph, input_name, outputs)
    steps = lowering.run()
    params = lowering.params
    if fuse:
        steps = fuse_steps(steps, params, {_base(o) for o in outputs})
    return steps, params


# ------------------------------------------------------------------------------------------------ execution
def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class TfjsGraphModule(nn.Module):
    """Runs lowered steps. ``forward(x [B, C, H, W]) -> dict`` of the requested values (NCHW for rank-4 ones).

    Parameters are ``nn.Parameter`` s in :attr:`params` (keys from :func:`lower_graph`), so ``requires_grad_`` and
    ``state_dict`` work as for any module.
    """

    def __init__(self, steps: list[Step], params: dict[str, np.ndarray], input_name: str, outputs: list[str]) -> None:
        super().__init__()
        self.steps = steps
        self.input_name = input_name
        self.outputs = [_base(o) for o in outputs]
        self.params = nn.ParameterDict(
            {k: nn.Parameter(torch.from_numpy(np.array(v, np.float32))) for k, v in params.items()}
        )
        last_use: dict[str, int] = {}
        for i, s in enumerate(steps):
            for a in s.args:
                last_use[a] = i
        self._free_after = {
            i: [a for a in set(s.args) if last_use[a] == i and a not in self.outputs] for i, s in enumerate(steps)
        }

    def _p(self, step: Step, role: str) -> Tensor | None:
        key = step.attrs.get("params", {}).get(role)
        return None if key is None else self.params[key]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        env: dict[str, Tensor] = {self.input_name: x}
        for i, s in enumerate(self.steps):
            env[s.out] = self._run(s, [env[a] for a in s.args])
            for a in self._free_after[i]:
                env.pop(a, None)
        return {o: env[o] for o in self.outputs}

    def _run(self, s: Step, xs: list[Tensor]) -> Tensor:
        k, a = s.kind, s.attrs
        if k == "conv":
            x = xs[0]
            weight = self._p(s, "weight")
            assert weight is not None
            left, right, top, bottom = a["pads"]
            if a["padding"] == "SAME":
                t, b = _same_pads(x.shape[2], weight.shape[2], a["stride"][0], a["dilation"][0])
                lf, r = _same_pads(x.shape[3], weight.shape[3], a["stride"][1], a["dilation"][1])
                left, right, top, bottom = left + lf, right + r, top + t, bottom + b
            if left == right and top == bottom:
                y = F.conv2d(x, weight, self._p(s, "bias"), a["stride"], (top, left), a["dilation"], a["groups"])
            else:
                x = F.pad(x, (left, right, top, bottom))
                y = F.conv2d(x, weight, self._p(s, "bias"), a["stride"], 0, a["dilation"], a["groups"])
            return self._act(s, y)
        if k == "binary":
            if len(xs) == 2:
                lhs, rhs = xs
            else:
                c = self._p(s, "const")
                assert c is not None
                lhs, rhs = (c, xs[0]) if a["const_slot"] == 0 else (xs[0], c)
            fn = a["fn"]
            if fn == "add":
                return lhs + rhs
            if fn == "sub":
                return lhs - rhs
            if fn == "mul":
                return lhs * rhs
            if fn == "div":
                return lhs / rhs
            return torch.maximum(lhs, rhs) if fn == "max" else torch.minimum(lhs, rhs)
        if k == "prelu":
            alpha = self._p(s, "alpha")
            assert alpha is not None
            return F.prelu(xs[0], alpha)
        if k == "clip":
            return xs[0].clamp(a["lo"], a["hi"])
        if k == "unary":
            return _UNARY_FN[a["fn"]](xs[0])
        if k == "pad":
            return F.pad(xs[0], a["pads"])
        if k == "linear":
            return self._act(s, F.linear(xs[0], self._p(s, "weight"), self._p(s, "bias")))  # type: ignore[arg-type]
        if k == "reduce":
            x = xs[0].permute(0, 2, 3, 1) if a["nhwc"] else xs[0]
            return (
                x.mean(dim=a["dims"], keepdim=a["keep"])
                if a["fn"] == "mean"
                else x.sum(dim=a["dims"], keepdim=a["keep"])
            )
        if k == "squeeze":
            x = xs[0].permute(0, 2, 3, 1) if a["nhwc"] else xs[0]
            dims = a["dims"] or [d for d in range(x.ndim) if x.shape[d] == 1]
            for d in sorted((d % x.ndim for d in dims), reverse=True):
                x = x.squeeze(d)
            return x
        if k == "reshape":
            x = xs[0].permute(0, 2, 3, 1) if a["nhwc"] else xs[0]
            return x.reshape(a["shape"])
        if k == "softmax":
            return torch.softmax(xs[0], dim=-1)
        if k == "pool":
            x = xs[0]
            kh, kw = a["kernel"]
            sh, sw = a["stride"]
            if a["padding"] == "SAME":
                t, b = _same_pads(x.shape[2], kh, sh, 1)
                lf, r = _same_pads(x.shape[3], kw, sw, 1)
                if a["fn"] == "max":
                    x = F.pad(x, (lf, r, t, b), value=-math.inf)
                else:  # TF averages over the valid (unpadded) elements only
                    ones = F.pad(torch.ones_like(x[:, :1]), (lf, r, t, b))
                    x = F.pad(x, (lf, r, t, b))
                    return F.avg_pool2d(x, (kh, kw), (sh, sw)) / F.avg_pool2d(ones, (kh, kw), (sh, sw))
            return F.max_pool2d(x, (kh, kw), (sh, sw)) if a["fn"] == "max" else F.avg_pool2d(x, (kh, kw), (sh, sw))
        raise TfjsGraphError(f"unknown step kind {k!r}")

    def _act(self, s: Step, y: Tensor) -> Tensor:
        act = s.attrs.get("act")
        if act is None:
            return y
        if act == "relu":
            return F.relu(y)
        if act == "relu6":
            return y.clamp(0.0, 6.0)
        if act == "leaky":
            return F.leaky_relu(y, s.attrs["leak"])
        alpha = self._p(s, "alpha")
        assert alpha is not None
        return F.prelu(y, alpha)


_UNARY_FN = {
    "relu": F.relu,
    "relu6": lambda x: x.clamp(0.0, 6.0),
    "abs": torch.abs,
    "square": torch.square,
    "rsqrt": torch.rsqrt,
    "sqrt": torch.sqrt,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "identity": lambda x: x,
}

"""A reader of dlib's binary serialization format, enough to load a trained ``dlib::dnn`` network.

This is our own implementation, written from dlib's ``dlib/serialize.h``, ``dlib/dnn/core.h``,
``dlib/dnn/layers.h``, ``dlib/dnn/input.h``, ``dlib/dnn/loss.h`` and ``dlib/dnn/tensor.h``. It does not use dlib.

The format, as we understood it
===============================
Primitive values (``serialize.h``):

- **integers** (``int``, ``long``, ``unsigned long``, ...) use a compact variable-length code: one control byte whose
  low 4 bits give the number ``n`` (1..8) of following bytes and whose bit 7 is the sign (signed types only), then the
  magnitude in ``n`` little-endian bytes. ``0`` is written as ``01 00``; ``-28`` as ``81 1c``.
- **floats/doubles** are a pair of integers ``(mantissa: int64, exponent: int16)`` with value ``mantissa * 2**exponent``
  (``float_details``); special exponents mark inf/-inf/NaN. The older ASCII float format is not supported (it
  is recognisable because its first byte has one of the bits ``0x70`` set).
- **bool** is one ASCII byte, ``'1'`` or ``'0'``.
- **std::string** is its length (an integer as above) followed by the raw bytes.
- a **resizable_tensor** is ``int version (2)``, ``long num_samples, k, nr, nc``, then ``num_samples*k*nr*nc`` 4-byte
  little-endian IEEE floats in row-major ``[n, k, r, c]`` order.
- an **alias_tensor** (a view into a layer's ``params``; stores only its shape) is ``int version (1)`` and the four
  ``long`` dimensions.

Networks (``dnn/core.h``). A network type like ``loss<fc<relu<con<input>>>>`` is serialized from the top (the loss)
recursively, and every wrapper writes its version *before* recursing into the layer below it, and its own layer
*after* the recursion returns. The file is therefore:

1. ``add_loss_layer``: ``int version (1)``, the loss details (a name string such as ``"loss_metric_2"`` and its
   fields), then the subnetwork.
2. the **version prefix**: one integer per wrapper from the top down: ``add_layer`` writes ``2``, ``add_tag_layer``
   and ``add_skip_layer`` write ``1`` (and store nothing else: tag ids and skip targets live only in the C++ type),
   and the bottom ``add_layer`` whose subnetwork is the input layer writes ``3`` (``2`` in older files).
3. the input layer (``"input_rgb_image_sized"``, average red/green/blue as floats, ``NR``, ``NC``).
4. for every computational layer from the **bottom up**: the layer details (a name string such as ``"con_4"``,
   ``"affine_"``, ``"relu_"``, ``"max_pool_2"``, ``"avg_pool_2"``, ``"add_prev_"``, ``"fc_2"``, then that layer's
   fields; parameters live in one ``params`` tensor that ``alias_tensor`` views cut into filters/biases or
   gamma/beta), followed by the ``add_layer`` trailer: three bools and the ``x_grad``, ``cached_output`` (and, for
   version 2, ``params_grad``) tensors; the bottom layer's trailer is three bools, ``x_grad``, ``cached_output``,
   ``grad_final`` and (version 3) ``unsigned _sample_expansion_factor``. These trailing tensors are normally empty.

The file does not name the network's topology (which tag a ``skip``/``add_prev`` refers to); the reader returns the
ordered layer records and the wrapper sequence, and the PyTorch module checks them against its own architecture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "DlibFormatError",
    "DlibLayer",
    "DlibNetwork",
    "DlibStream",
    "read_dlib_network",
]

# float_details special exponents (dlib/float_details.h)
_IS_INF = 32000
_IS_NINF = 32001
_IS_NAN = 32002
_IS_SNAN = 32003


class DlibFormatError(ValueError):
    """The bytes are not a dlib-serialized network of a kind this reader understands."""


class DlibStream:
    """Sequential reader of dlib-serialized primitives from an in-memory buffer."""

    def __init__(self, data: bytes, name: str = "<bytes>") -> None:
        self.data = data
        self.pos = 0
        self.name = name

    def _fail(self, what: str) -> DlibFormatError:
        return DlibFormatError(f"{self.name}: {what} (at byte offset {self.pos})")

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self._fail(f"unexpected end of file reading {n} bytes")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def peek_byte(self) -> int:
        if self.pos >= len(self.data):
            raise self._fail("unexpected end of file")
        return self.data[self.pos]

    def read_int(self) -> int:
        """A dlib compact integer (signed or unsigned: the sign bit is never set for unsigned values)."""
        control = self._take(1)[0]
        if control & 0x70:
            raise self._fail(f"bad integer control byte 0x{control:02x}")
        size = control & 0x0F
        if size == 0 or size > 8:
            raise self._fail(f"bad integer size {size}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def read_float(self) -> float:
        """A dlib float/double: ``mantissa * 2**exponent``."""
        if self.peek_byte() & 0x70:
            raise self._fail("old ASCII float serialization is not supported")
        mantissa = self.read_int()
        exponent = self.read_int()
        if exponent == _IS_INF:
            return float("inf")
        if exponent == _IS_NINF:
            return float("-inf")
        if exponent in (_IS_NAN, _IS_SNAN):
            return float("nan")
        return float(np.ldexp(np.float64(mantissa), exponent))

    def read_bool(self) -> bool:
        ch = self._take(1)
        if ch == b"1":
            return True
        if ch == b"0":
            return False
        raise self._fail(f"bad bool byte {ch!r}")

    def read_str(self) -> str:
        n = self.read_int()
        if n < 0 or n > 1 << 20:
            raise self._fail(f"implausible string length {n}")
        return self._take(n).decode("latin-1")

    def read_tensor(self) -> np.ndarray:
        """A ``resizable_tensor`` as float32 ``[num_samples, k, nr, nc]``."""
        version = self.read_int()
        if version != 2:
            raise self._fail(f"unexpected resizable_tensor version {version}")
        shape = tuple(self.read_int() for _ in range(4))
        if any(d < 0 for d in shape):
            raise self._fail(f"negative tensor shape {shape}")
        count = int(np.prod(shape))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def read_alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.read_int()
        if version != 1:
            raise self._fail(f"unexpected alias_tensor version {version}")
        return tuple(self.read_int() for _ in range(4))  # type: ignore[return-value]


@dataclass
class DlibLayer:
    """One computational layer as stored in the file.

    ``kind`` is the serialized name (``"con_4"``, ``"affine_"``, ...); ``config`` holds its integer/float settings;
    ``arrays`` its parameters as float32 numpy arrays in dlib's layout:
    ``con``: ``filters [out, in, kh, kw]``, ``biases [out]``; ``affine``: ``gamma [k]``, ``beta [k]``;
    ``fc``: ``weights [num_inputs, num_outputs]`` (dlib computes ``y = x @ W``), optional ``biases [num_outputs]``.
    """

    kind: str
    config: dict[str, float | int] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def family(self) -> str:
        """``kind`` without its version suffix: ``con``, ``affine``, ``relu``, ``max_pool``, ``avg_pool``, ..."""
        base = self.kind.rstrip("0123456789")
        return base.rstrip("_")


@dataclass
class DlibNetwork:
    """A parsed dlib network.

    ``wrappers``: the version prefix from the top (just below the loss) down: ``"layer"`` for an ``add_layer``,
    ``"tag_or_skip"`` for an ``add_tag_layer``/``add_skip_layer``, ending with ``"input_layer"``.
    ``layers``: the computational layers from the bottom (just above the input) to the top.
    """

    loss: DlibLayer
    input: DlibLayer
    wrappers: list[str]
    layers: list[DlibLayer]


def _split_params(stream: DlibStream, params: np.ndarray, views: list[tuple[str, tuple[int, ...]]]) -> dict:
    flat = params.reshape(-1)
    out: dict[str, np.ndarray] = {}
    offset = 0
    for name, shape in views:
        n = int(np.prod(shape))
        if offset + n > flat.size:
            raise stream._fail(f"parameter view {name}{shape} exceeds params of size {flat.size}")
        out[name] = flat[offset : offset + n].reshape(shape).copy()
        offset += n
    return out


def _read_layer_details(s: DlibStream) -> DlibLayer:
    kind = s.read_str()
    layer = DlibLayer(kind)
    if kind in ("con_4", "con_5", "con_6"):
        params = s.read_tensor()
        cfg = layer.config
        cfg["num_filters"] = s.read_int()
        cfg["nr"] = s.read_int()
        cfg["nc"] = s.read_int()
        cfg["stride_y"] = s.read_int()
        cfg["stride_x"] = s.read_int()
        cfg["padding_y"] = s.read_int()
        cfg["padding_x"] = s.read_int()
        filters = s.read_alias_tensor()
        biases = s.read_alias_tensor()
        for key in ("learning_rate_multiplier", "weight_decay_multiplier", "bias_lr_multiplier", "bias_wd_multiplier"):
            cfg[key] = s.read_float()
        use_bias = True
        if kind in ("con_5", "con_6"):  # newer dlib: a bias switch, then (con_6) a fused-relu switch
            use_bias = s.read_bool()
        cfg["use_bias"] = int(use_bias)
        cfg["use_relu"] = int(s.read_bool()) if kind == "con_6" else 0
        views = [("filters", filters)]
        if use_bias:
            views.append(("biases", (biases[0] * biases[1] * biases[2] * biases[3],)))
        layer.arrays = _split_params(s, params, views)
    elif kind in ("affine_", "affine_2"):
        params = s.read_tensor()
        gamma = s.read_alias_tensor()
        beta = s.read_alias_tensor()
        layer.config["mode"] = s.read_int()  # 0 = CONV_MODE (per channel), 1 = FC_MODE (per element)
        n_g = int(np.prod(gamma))
        n_b = int(np.prod(beta))
        layer.arrays = _split_params(s, params, [("gamma", (n_g,)), ("beta", (n_b,))])
    elif kind in ("relu_", "add_prev_", "prelu_"):
        if kind == "prelu_":
            raise s._fail("prelu_ layers are not supported")
    elif kind in ("max_pool_2", "avg_pool_2"):
        cfg = layer.config
        for key in ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"):
            cfg[key] = s.read_int()
    elif kind == "fc_2":
        cfg = layer.config
        cfg["num_outputs"] = s.read_int()
        cfg["num_inputs"] = s.read_int()
        params = s.read_tensor()
        weights = s.read_alias_tensor()
        biases = s.read_alias_tensor()
        cfg["bias_mode"] = s.read_int()  # 0 = FC_HAS_BIAS, 1 = FC_NO_BIAS
        for key in ("learning_rate_multiplier", "weight_decay_multiplier", "bias_lr_multiplier", "bias_wd_multiplier"):
            cfg[key] = s.read_float()
        views = [("weights", (weights[0], weights[1] * weights[2] * weights[3]))]
        if cfg["bias_mode"] == 0:
            views.append(("biases", (int(np.prod(biases)),)))
        layer.arrays = _split_params(s, params, views)
    else:
        raise s._fail(f"unsupported dlib layer type {kind!r}")
    return layer


def _read_loss(s: DlibStream) -> DlibLayer:
    kind = s.read_str()
    loss = DlibLayer(kind)
    if kind == "loss_metric_2":
        loss.config["margin"] = s.read_float()
        loss.config["dist_thresh"] = s.read_float()
    elif kind == "loss_metric_":
        pass
    else:
        raise s._fail(f"unsupported dlib loss layer {kind!r}")
    return loss


def _read_input(s: DlibStream) -> DlibLayer:
    kind = s.read_str()
    layer = DlibLayer(kind)
    if kind == "input_rgb_image_sized":
        layer.config["avg_red"] = s.read_float()
        layer.config["avg_green"] = s.read_float()
        layer.config["avg_blue"] = s.read_float()
        layer.config["nr"] = s.read_int()
        layer.config["nc"] = s.read_int()
    elif kind == "input_rgb_image":
        layer.config["avg_red"] = s.read_float()
        layer.config["avg_green"] = s.read_float()
        layer.config["avg_blue"] = s.read_float()
    else:
        raise s._fail(f"unsupported dlib input layer {kind!r}")
    return layer


def _read_trailer(s: DlibStream, version: int, bottom: bool) -> None:
    """The per-``add_layer`` state after its details; training-time buffers that we check and discard."""
    for _ in range(3):
        s.read_bool()
    s.read_tensor()  # x_grad
    s.read_tensor()  # cached_output
    if bottom:
        s.read_tensor()  # grad_final
        if version >= 3:
            s.read_int()  # _sample_expansion_factor
    elif version == 2:
        s.read_tensor()  # params_grad


def read_dlib_network(path: str | Path) -> DlibNetwork:
    """Parse a ``dlib::dnn`` network with a ``loss_metric`` loss, as saved by ``dlib::serialize(file) << net``.

    Args:
        path: the ``.dat`` file (e.g. ``dlib_face_recognition_resnet_model_v1.dat``).

    Returns:
        the parsed :class:`DlibNetwork` (parameters as float32 numpy arrays).

    Raises:
        FileNotFoundError: the file does not exist.
        DlibFormatError: the bytes are not a network this reader understands.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dlib network file not found: {path}")
    s = DlibStream(path.read_bytes(), name=str(path))
    version = s.read_int()
    if version != 1:
        raise s._fail(f"expected add_loss_layer version 1, found {version}")
    loss = _read_loss(s)

    wrappers: list[str] = []
    versions: list[int] = []
    while True:
        v = s.read_int()
        if v == 3 or (v == 2 and s.peek_byte() == 0x01 and _looks_like_input_name(s)):
            wrappers.append("input_layer")
            versions.append(v)
            break
        if v == 2:
            wrappers.append("layer")
        elif v == 1:
            wrappers.append("tag_or_skip")
        else:
            raise s._fail(f"unexpected wrapper version {v}")
        versions.append(v)
        if len(wrappers) > 100_000:
            raise s._fail("no input layer found")

    input_layer = _read_input(s)
    layer_versions = [v for w, v in zip(wrappers, versions, strict=True) if w != "tag_or_skip"]
    layers: list[DlibLayer] = []
    for i, v in enumerate(reversed(layer_versions)):
        layers.append(_read_layer_details(s))
        _read_trailer(s, v, bottom=(i == 0))
    if s.pos != len(s.data):
        raise s._fail(f"{len(s.data) - s.pos} unread bytes after the network")
    return DlibNetwork(loss=loss, input=input_layer, wrappers=wrappers, layers=layers)


def _looks_like_input_name(s: DlibStream) -> bool:
    """Whether the next item is a string starting with ``input`` (distinguishes an old version-2 bottom layer)."""
    start = s.pos
    try:
        name = s.read_str()
    except DlibFormatError:
        return False
    finally:
        s.pos = start
    return name.startswith("input")

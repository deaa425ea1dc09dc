"""Reader for TensorFlow.js graph models (``model.json`` + binary weight shards), without TensorFlow.

A TF.js graph model (``format: "graph-model"``, written by ``tensorflowjs_converter``) is one JSON file:

- ``modelTopology.node``: the frozen TensorFlow GraphDef as JSON: each node has ``name``, ``op``, ``input`` (names of
  producer nodes, ``"^name"`` for control dependencies, ``"name:k"`` for a node's k-th output) and ``attr`` (protobuf
  ``AttrValue`` as JSON: ``s`` base64 strings, ``i`` int64 as decimal strings, ``f``, ``b``, ``type``, ``shape``,
  ``list``, ``tensor``). Weights are ``Const`` nodes whose values live in the shards, not in the JSON.
- ``weightsManifest``: groups ``{"paths": [shard files], "weights": [specs]}``; the shards of a group are one
  concatenated byte buffer holding the group's weights in order, each ``prod(shape) * bytes`` long, little-endian.
  A spec is ``{"name", "shape", "dtype": float32|int32|bool, "quantization"?}``; quantised specs store ``uint8`` /
  ``uint16`` values decoded as ``v * scale + min``, or ``float16`` halves (tfjs-core ``io_utils.decodeWeights``).
- ``signature`` (optional): the graph's named inputs and outputs.

:func:`read_tfjs_graph` returns every node (op, inputs, decoded attributes) and every weight as a float32 / int32 /
bool numpy array; :class:`TfjsFormatError` names the file and what was wrong.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TfjsFormatError", "TfjsGraph", "TfjsNode", "decode_weights", "read_tfjs_graph"]

log = logging.getLogger(__name__)

_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "int32": np.dtype("<i4"),
    "bool": np.dtype("u1"),
}
_QUANT_DTYPES: dict[str, np.dtype] = {"uint8": np.dtype("u1"), "uint16": np.dtype("<u2"), "float16": np.dtype("<f2")}


class TfjsFormatError(ValueError):
    """A file is not a readable TF.js graph model (the message names the file and the problem)."""


@dataclass(frozen=True)
class TfjsNode:
    """One node of the graph.

    Attributes:
        name: node name (unique).
        op: TensorFlow op type, e.g. ``"Conv2D"``, ``"_FusedConv2D"``, ``"Const"``.
        inputs: producer names; ``":k"`` output suffixes kept, control inputs (``^name``) dropped.
        attrs: decoded attributes: strings, ints, floats, bools, lists of those, shapes as lists of ints
            (``-1`` = unknown), dtypes as strings like ``"DT_FLOAT"``; ``value`` of a ``Const`` becomes its dtype and
            shape only (the data is in :attr:`TfjsGraph.weights`).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TfjsGraph:
    """A parsed TF.js graph model.

    Attributes:
        path: the ``model.json``.
        nodes: all nodes in file order.
        weights: weight name -> array (float32 for float weights, dequantised; int32; bool as uint8).
        signature: the ``signature`` block (``inputs`` / ``outputs`` by name), ``{}`` if absent.
        metadata: ``format``, ``generatedBy``, ``convertedBy``, ``userDefinedMetadata`` when present.
    """

    path: Path
    nodes: list[TfjsNode]
    weights: dict[str, np.ndarray]
    signature: dict[str, Any]
    metadata: dict[str, Any]

    def node(self, name: str) -> TfjsNode:
        """The node called ``name`` (a ``":k"`` suffix is ignored)."""
        base = name.split(":")[0]
        for n in self.nodes:
            if n.name == base:
                return n
        raise KeyError(f"{self.path.name}: no node named {base!r}")


def _decode_attr(value: dict[str, Any]) -> Any:
    """One protobuf ``AttrValue`` (JSON form) -> a Python value."""
    if "s" in value:
        raw = base64.b64decode(value["s"])
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return str(value["type"])
    if "shape" in value:
        return [int(d.get("size", -1)) for d in value["shape"].get("dim", [])]
    if "tensor" in value:
        tensor = value["tensor"]
        return {
            "dtype": tensor.get("dtype"),
            "shape": [int(d.get("size", -1)) for d in tensor.get("tensorShape", {}).get("dim", [])],
        }
    if "list" in value:
        items = value["list"]
        if "i" in items:
            return [int(v) for v in items["i"]]
        if "f" in items:
            return [float(v) for v in items["f"]]
        if "s" in items:
            return [base64.b64decode(v).decode("utf-8", "replace") for v in items["s"]]
        if "b" in items:
            return [bool(v) for v in items["b"]]
        if "type" in items:
            return [str(v) for v in items["type"]]
        return []
    return None


def _decode_node(raw: dict[str, Any], where: str) -> TfjsNode:
    try:
        name = str(raw["name"])
        op = str(raw["op"])
    except (KeyError, TypeError) as error:
        raise TfjsFormatError(f"{where}: a node without name/op: {str(raw)[:200]}") from error
    inputs = tuple(str(i) for i in raw.get("input", []) if not str(i).startswith("^"))
    attrs = {str(k): _decode_attr(v) for k, v in raw.get("attr", {}).items() if isinstance(v, dict)}
    return TfjsNode(name, op, inputs, attrs)


def decode_weights(specs: list[dict[str, Any]], buffer: bytes, where: str = "weights") -> dict[str, np.ndarray]:
    """Decode one weight group's concatenated shard bytes, as tfjs-core ``io.decodeWeights`` does.

    Args:
        specs: the group's weight specs in order (``name``, ``shape``, ``dtype``, optional ``quantization`` with
            ``dtype`` uint8 / uint16 (+ ``scale``, ``min``) or float16).
        buffer: the group's shards concatenated.
        where: file name for error messages.
    Returns:
        name -> array of ``shape`` (float32 / int32 / uint8 for bool).
    Raises:
        TfjsFormatError: unknown dtype or quantisation, missing ``scale``/``min``, or too few / too many bytes.
    """
    out: dict[str, np.ndarray] = {}
    offset = 0
    for spec in specs:
        try:
            name, shape, dtype = str(spec["name"]), [int(s) for s in spec["shape"]], str(spec["dtype"])
        except (KeyError, TypeError, ValueError) as error:
            raise TfjsFormatError(f"{where}: malformed weight spec {str(spec)[:200]}") from error
        if dtype not in _DTYPES:
            raise TfjsFormatError(f"{where}: weight {name!r} has unsupported dtype {dtype!r}")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        quant = spec.get("quantization")
        stored = _DTYPES[dtype]
        if quant is not None:
            qdtype = str(quant.get("dtype"))
            if qdtype not in _QUANT_DTYPES:
                raise TfjsFormatError(f"{where}: weight {name!r} has unknown quantization dtype {qdtype!r}")
            if qdtype == "float16" and dtype != "float32":
                raise TfjsFormatError(f"{where}: weight {name!r}: float16 quantization of a {dtype} weight")
            if qdtype != "float16" and not ("scale" in quant and "min" in quant):
                raise TfjsFormatError(f"{where}: weight {name!r}: {qdtype} quantization without scale and min")
            stored = _QUANT_DTYPES[qdtype]
        nbytes = count * stored.itemsize
        if offset + nbytes > len(buffer):
            raise TfjsFormatError(
                f"{where}: the weight shards end at byte {len(buffer)} inside weight {name!r} "
                f"(needs bytes {offset}..{offset + nbytes})"
            )
        values = np.frombuffer(buffer, dtype=stored, count=count, offset=offset)
        offset += nbytes
        if quant is None:
            array = values.astype(stored.newbyteorder("="), copy=True)
        elif quant["dtype"] == "float16":
            array = values.astype(np.float32)
        else:
            real = values.astype(np.float64) * float(quant["scale"]) + float(quant["min"])
            array = np.round(real).astype(np.int32) if dtype == "int32" else real.astype(np.float32)
        out[name] = array.reshape(shape)
    if offset != len(buffer):
        raise TfjsFormatError(f"{where}: {len(buffer) - offset} bytes left over after the last weight of a group")
    return out


def read_tfjs_graph(path: str | Path) -> TfjsGraph:
    """Parse a TF.js graph model and its weight shards (which must sit beside it, as TF.js expects).

    Args:
        path: the model's ``.json`` file.
    Returns:
        :class:`TfjsGraph` with every node and weight.
    Raises:
        FileNotFoundError: the JSON or a shard is missing.
        TfjsFormatError: not JSON, not a graph model, or the shards do not match the manifest.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TF.js model not found: {path}")
    try:
        model = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TfjsFormatError(f"{path}: not a JSON file ({error})") from error
    if not isinstance(model, dict) or "modelTopology" not in model or "weightsManifest" not in model:
        raise TfjsFormatError(f"{path}: not a TF.js model (no modelTopology / weightsManifest)")
    topology = model["modelTopology"]
    if model.get("format", "graph-model") != "graph-model" or not isinstance(topology, dict) or "node" not in topology:
        raise TfjsFormatError(
            f"{path}: a TF.js {model.get('format', 'layers')!r} model, not a graph model (modelTopology.node missing)"
        )
    nodes = [_decode_node(raw, str(path)) for raw in topology["node"]]
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise TfjsFormatError(f"{path}: duplicate node names")
    weights: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        if not isinstance(group, dict) or "paths" not in group or "weights" not in group:
            raise TfjsFormatError(f"{path}: malformed weightsManifest group {str(group)[:200]}")
        chunks = []
        for shard in group["paths"]:
            shard_path = path.parent / str(shard)
            if not shard_path.is_file():
                raise FileNotFoundError(f"TF.js weight shard {shard_path} (listed in {path.name}) is missing")
            chunks.append(shard_path.read_bytes())
        weights.update(decode_weights(group["weights"], b"".join(chunks), where=str(path)))
    consts = {n.name for n in nodes if n.op == "Const"}
    missing = sorted(consts - set(weights))
    if missing:
        raise TfjsFormatError(f"{path}: Const nodes without weights in the shards: {missing[:5]}")
    metadata = {k: model[k] for k in ("format", "generatedBy", "convertedBy", "userDefinedMetadata") if k in model}
    log.debug("read TF.js graph %s: %d nodes, %d weights", path, len(nodes), len(weights))
    return TfjsGraph(path, nodes, weights, dict(model.get("signature") or {}), metadata)

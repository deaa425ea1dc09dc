"""The numpy OBJ / GLB writers (ganfit.fitting.mesh_files), checked by loading the files with trimesh."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import trimesh
from PIL import Image

from ganfit.fitting.mesh_files import TexturedMesh, glb_bytes, write_glb, write_obj


def _png(colour: tuple[int, int, int], size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _square(name: str, z: float, png: bytes) -> TexturedMesh:
    """A unit square in the plane z, facing +Z, UVs covering the texture (v down)."""
    positions = np.array([[0, 0, z], [1, 0, z], [1, 1, z], [0, 1, z]], np.float32)
    triangles = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)  # texture-image convention: bottom row is v = 1
    normals = np.tile(np.float32([0, 0, 1]), (4, 1))
    return TexturedMesh(name, positions, normals, uv, triangles, f"{name}.png", png)


def test_glb_loads_with_trimesh_with_geometry_uvs_and_textures(tmp_path):
    meshes = [_square("face", 0.0, _png((200, 10, 10))), _square("eyes_mouth", 5.0, _png((10, 10, 200), 4))]
    write_glb(tmp_path / "mesh.glb", meshes)
    scene = trimesh.load(tmp_path / "mesh.glb", process=False)
    assert set(scene.geometry) == {"face", "eyes_mouth"}
    for mesh in meshes:
        loaded = scene.geometry[mesh.name]
        np.testing.assert_allclose(np.asarray(loaded.vertices), mesh.positions, atol=1e-6)
        np.testing.assert_array_equal(np.asarray(loaded.faces), mesh.triangles)
        np.testing.assert_allclose(np.asarray(loaded.vertex_normals), mesh.normals, atol=1e-6)
        # trimesh gives UVs with v up (it flips glTF's v-down on load)
        np.testing.assert_allclose(np.asarray(loaded.visual.uv)[:, 1], 1.0 - mesh.uv[:, 1], atol=1e-6)
        image = loaded.visual.material.baseColorTexture
        assert image.size == Image.open(io.BytesIO(mesh.texture_png)).size
    red = np.asarray(scene.geometry["face"].visual.material.baseColorTexture.convert("RGB"))[0, 0]
    assert tuple(red) == (200, 10, 10)


def test_glb_layout_is_aligned_and_declares_bounds():
    data = glb_bytes([_square("face", 2.0, _png((1, 2, 3)))])
    magic, version, total = struct.unpack("<III", data[:12])
    assert (magic, version, total) == (0x46546C67, 2, len(data))
    json_length, kind = struct.unpack("<II", data[12:20])
    assert kind == 0x4E4F534A and json_length % 4 == 0
    tree = json.loads(data[20 : 20 + json_length])
    position = tree["accessors"][tree["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    assert position["min"] == [0.0, 0.0, 2.0] and position["max"] == [1.0, 1.0, 2.0]
    assert all(view["byteOffset"] % 4 == 0 for view in tree["bufferViews"])


def test_obj_loads_with_trimesh_and_names_the_textures(tmp_path):
    meshes = [_square("face", 0.0, _png((0, 0, 0))), _square("eyes_mouth", 5.0, _png((0, 0, 0)))]
    write_obj(tmp_path, meshes)
    loaded = trimesh.load(tmp_path / "mesh.obj", force="mesh", process=False)
    assert len(loaded.faces) == 4 and len(loaded.vertices) == 8
    material = (tmp_path / "mesh.mtl").read_text()
    assert "map_Kd face.png" in material and "map_Kd eyes_mouth.png" in material
    text = (tmp_path / "mesh.obj").read_text()
    first_uv = next(line for line in text.splitlines() if line.startswith("vt "))
    assert first_uv == "vt 0.000000 0.000000"  # image-convention (0, 1) is OBJ's (0, 0): v up
    assert text.count("\nvn ") == 8 and "f 1/1/1 2/2/2 3/3/3" in text

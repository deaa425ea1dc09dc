"""Differentiable rendering: nvdiffrast's primitives on a compiled CPU backend, plus the face pipeline.

Use it like nvdiffrast::

    import ganfit.render as dr
    ctx = dr.RasterizeCpuContext()          # or dr.RasterizeCudaContext() (needs nvdiffrast + CUDA)
    rast, rast_db = dr.rasterize(ctx, pos, tri, resolution=(256, 256))
    attr_img, _ = dr.interpolate(attr, rast, tri)
    color = dr.texture(tex, uv_img, filter_mode="linear")
    color = dr.antialias(color, rast, pos, tri)

See ``docs/render.md`` for conventions and measured speed. Submodules: :mod:`ganfit.render.camera`,
:mod:`ganfit.render.lighting`, :mod:`ganfit.render.pipeline` (``FaceRenderer``), :mod:`ganfit.render.reference`
(slow pure-PyTorch reference used by the tests).
"""

from ganfit.render.ops import (
    BackendUnavailableError,
    RasterizeCpuContext,
    RasterizeCudaContext,
    RasterizeGLContext,
    TopologyHash,
    antialias,
    antialias_construct_topology_hash,
    interpolate,
    nvdiffrast_available,
    rasterize,
    texture,
    texture_construct_mip,
)

__all__ = [
    "BackendUnavailableError",
    "RasterizeCpuContext",
    "RasterizeCudaContext",
    "RasterizeGLContext",
    "TopologyHash",
    "antialias",
    "antialias_construct_topology_hash",
    "interpolate",
    "nvdiffrast_available",
    "rasterize",
    "texture",
    "texture_construct_mip",
]

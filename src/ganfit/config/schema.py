"""The structured-config schema: typed dataclasses registered with Hydra's ConfigStore.

Each YAML preset of a typed group starts with ``defaults: [schema, _self_]`` (or another preset of its group), so
Hydra merges it onto the dataclass: an unknown key (``fitting.full.weights.identiy=1``) or a value of the wrong type
(``fitting.resolution=abc``) fails at composition with the key's name. ``OmegaConf.to_object(cfg.fitting)`` turns a
composed node into the dataclass itself. Components with a ``_target_`` (face model, renderer, identity networks)
stay ``Any`` here and are built with ``hydra.utils.instantiate``.

This module avoids ``from __future__ import annotations``: OmegaConf reads the field types at run time.
"""

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any  # noqa: UP035  (OmegaConf reads typing's spellings)

from hydra.core.config_store import ConfigStore


class Lighting(StrEnum):
    """Light model of the fit."""

    phong = "phong"  # ambient + one coloured directional light
    sh = "sh"  # 2nd-order spherical harmonics, 9 x RGB


class LatentInit(StrEnum):
    """Start of the GAN latent."""

    search = "search"  # best of latent_candidates random latents
    zeros = "zeros"  # the mean latent


class TextureInit(StrEnum):
    """Start of the free (per-texel) texture."""

    unwrap = "unwrap"  # the photo projected to UV after stage 1, mirrored where unseen
    skin = "skin"  # a flat skin colour


class TextureMode(StrEnum):
    """Where the albedo comes from."""

    gan = "gan"  # the latent of a frozen texture GAN (GANFIT proper)
    free = "free"  # a per-texel UV map optimised directly


@dataclass
class LearningRates:
    """Adam learning rate per parameter group (0 = frozen). Field names are ``FitParameters.groups()``' names."""

    rotation: float = 0.0  # axis-angle, radians per step
    translation: float = 0.0  # mm per step
    focal: float = 0.0  # log focal length per step
    shape: float = 0.0  # shape coefficients ps (std units) per step
    expression: float = 0.0  # blendshape weights pe per step
    texture: float = 0.0  # free UV texels (0-1 units) or GAN latent per step
    light: float = 0.0  # light colours / direction / SH per step
    exposure: float = 0.0  # log of the per-photo RGB gain (exposure x white balance) per step

    def of(self, group: str) -> float:
        """The rate of parameter group ``group`` (a field name)."""
        return float(getattr(self, group))


@dataclass
class LossWeights:
    """Weight per loss term (0 = off). Field names are the terms of ``ganfit.fitting.objective.LossTerms``."""

    identity: float = 0.0  # 1 - cosine of identity descriptors (photo vs render)
    identity_random_view: float = 0.0  # the same for a render in a randomised pose, expression and light
    content: float = 0.0  # normalised distance of the identity net's feature maps
    moment: float = 0.0  # distance of channel-wise mean/std of those feature maps
    pixel: float = 0.0  # mean L1 colour error inside the rendered face
    landmark: float = 0.0  # normalised squared landmark distance
    dense_landmark: float = 0.0  # the same over mediapipe's dense face-mesh points (landmarks.dense=true)
    shape_prior: float = 0.0  # mean ps^2 (Gaussian prior, std units)
    expression_prior: float = 0.0  # mean pe^2 + penalty outside [0, 1]
    latent_prior: float = 0.0  # (|pt| - sqrt(512))^2 / 512, GAN texture only
    texture_prior: float = 0.0  # smoothness + symmetry of the free UV texture, free texture only
    light_prior: float = 0.0  # light colours near grey, SH bands small
    exposure_prior: float = 0.0  # the RGB gain near its grey-world centre, the light's own level near 1 (exposure on)


@dataclass
class RandomViewConfig:
    """GANFIT's second identity term: the render in a randomised view (``full.weights.identity_random_view``)."""

    yaw_deg: float = 30.0  # head yaw uniform in [-yaw_deg, yaw_deg] about the face centre, degrees
    pitch_deg: float = 10.0  # head pitch uniform in [-pitch_deg, pitch_deg], degrees
    expression_scale: float = 0.3  # random expression: active blendshapes ~ U(0, expression_scale)
    expression_fraction: float = 0.08  # probability of each blendshape being active
    light_jitter: float = 0.2  # light colours scaled by U(1 - j, 1 + j), light direction moved by up to j (unit)
    geometry: bool = True  # the term also moves the shape ps (false: texture only); never the camera
    seed: int = 0  # seed of the views' random generator (one new view per step)


@dataclass
class ExposureConfig:
    """The per-photo RGB gain (exposure x white balance) that multiplies the rendered face, and its prior
    (``full.weights.exposure_prior``): the light then carries only the shading, the gain the photo's exposure and
    colour cast, so a dim or warm photo does not darken or tint the albedo."""

    enabled: bool = False  # fit the gain (false: the light alone carries exposure and colour, as before)
    sigma: float = 0.5  # prior std of the log gain's level (mean of the 3 log gains) about its centre
    chroma_sigma: float = 0.1  # prior std of each log gain minus the level (the colour cast) about its centre
    light_level_sigma: float = 0.05  # prior std of the log of the light's own level (ambient + diffuse, or SH band 0)
    grey_world_level: bool = True  # centre the level on the grey-world estimate of the crop's surround (false: 1)
    grey_world_chroma: bool = True  # centre the colour cast on the grey-world estimate (false: neutral)
    grey_level: float = 0.5  # the surround's mean colour ([0, 1] units) that means a neutral exposure
    border: float = 0.2  # the surround: the crop's top, left and right bands this wide (fraction of its side)
    max_log_gain: float = 1.2  # the grey-world centre is clamped to +-this (log units; 1.2 = x3.3)
    max_log_level: float = 1.2  # ... and its level to at most this (0: a bright surround reads as neutral, not bright)


@dataclass
class StageConfig:
    """One optimisation stage: Adam steps, learning rates, loss weights; the first ``warmup_steps`` move only the
    texture and the light (geometry and camera wait until the appearance roughly matches the photo)."""

    steps: int = 0  # Adam steps
    warmup_steps: int = 0  # appearance-only steps at the start (stage 2)
    lr: LearningRates = field(default_factory=LearningRates)
    weights: LossWeights = field(default_factory=LossWeights)


@dataclass
class FittingConfig:
    """A fitting preset (``conf/fitting/*.yaml``; each key is commented there)."""

    resolution: int = 192  # side of the square face crop that is rendered and compared, pixels
    crop_scale: float = 1.8  # crop side as a multiple of the landmarks' bounding-box side
    batch_size: int = 4  # photos fitted together in one optimisation
    focal_factor: float = 1.5  # initial focal length / the photo's longer side
    lighting: Lighting = Lighting.phong  # light model
    texture_resolution: int = 256  # side of the UV texture optimised / generated during fitting
    jaw_weight: float = 0.5  # weight of the 17 jaw-contour landmarks relative to the 51 inner ones
    texture_symmetry: float = 0.5  # weight of left/right symmetry in the free-texture prior
    texture_init: TextureInit = TextureInit.unwrap  # free texture start
    latent_init: LatentInit = LatentInit.search  # GAN latent start
    latent_candidates: int = 8  # random latents tried by the search
    feature_taps: list[str] | None = None  # identity-net feature maps for content/moment (None = all spatial)
    identity_geometry: bool = False  # identity/content/moment terms also move shape, expression and camera
    random_view: RandomViewConfig = field(default_factory=RandomViewConfig)  # the randomised-view identity term
    exposure: ExposureConfig = field(default_factory=ExposureConfig)  # per-photo RGB gain and its prior
    photo_mask: bool = False  # pixel / identity / content losses only inside the photo's face (skin) mask
    photo_mask_colour: bool = True  # ... extended by the pixels of the face's skin colour (neck, ears)
    rigid: StageConfig = field(default_factory=StageConfig)  # stage 1a: camera from landmarks
    align: StageConfig = field(default_factory=StageConfig)  # stage 1b: + shape and expression
    full: StageConfig = field(default_factory=StageConfig)  # stage 2: the full objective

    def stages(self) -> list[tuple[str, StageConfig]]:
        """The stages in the order they run."""
        return [("rigid", self.rigid), ("align", self.align), ("full", self.full)]

    def replace(self, **changes: Any) -> "FittingConfig":
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


@dataclass
class LandmarksConfig:
    """The 68-point landmark detector (``conf/landmarks/*.yaml``)."""

    backend: str = "mediapipe"  # mediapipe | dlib
    face_index: int = 0  # which face when a photo holds several (0 = largest)
    dense: bool = True  # pass mediapipe's dense face-mesh points to the fit (the dense_landmark term); dlib has none


@dataclass
class TextureConfig:
    """The texture source (``conf/texture/*.yaml``)."""

    mode: TextureMode = TextureMode.gan  # gan | free
    generator: str | None = "default"  # generator.pt; default = the shipped one; unused in free mode
    out_resolution: int = 1024  # side of the exported texture.png / texture_gan.png / texture_confidence.png


@dataclass
class ShardingConfig:
    """How a photo job is spread over processes and machines (Lightning Fabric). Each rank fits a disjoint shard."""

    accelerator: str = "cpu"  # Fabric accelerator: cpu | cuda | auto
    num_nodes: int = 1  # machines; >1 under torchrun / SLURM (Fabric's launchers read the environment)
    strategy: str = "auto"  # auto: ddp_spawn for one node started by hand, ddp under torchrun / SLURM
    timeout_s: int = 1800  # collective timeout (the end-of-job barrier), seconds


@dataclass
class FitJobConfig:
    """``fit.yaml``: the fit job (``python fit.py key=value ...``)."""

    image: str | None = None  # photo file, folder, glob or list file; None = the embedded astronaut
    out: str = "outputs/fit"  # output root; each photo writes out/<name>/
    overwrite: bool = False  # refit photos that are already fitted with the same photo and settings
    device: str = "cpu"  # torch device of the optimisation
    seed: int = 0  # random seed
    processes: int = 1  # fitting processes per node (Fabric devices), each fitting a shard of the photos
    progress: bool = True  # progress bar
    torch_threads: int = 0  # torch threads per process (0 = the thread policy's choice)
    wandb: bool = False  # log the run to W&B (offline without an API key)
    report: bool = True  # write out/index.html (photos, pictures, metrics, 3D view)
    detail: bool = True  # build the detail texture from the photo (false: the GAN / free albedo alone)
    eyes: bool = True  # eyes and mouth interior in renders and meshes
    shared_identity: bool = False  # fit the photos of one person together: one shape and texture, per-photo pose
    verbose: bool = False  # also show third-party log lines (mediapipe, TF Lite) and the thread policy
    sharding: ShardingConfig = field(default_factory=ShardingConfig)
    face_model: Any = None  # _target_ node: the morphable model
    renderer: Any = None  # _target_ node (partial): the renderer factory
    landmarks: LandmarksConfig = field(default_factory=LandmarksConfig)
    identity: Any = None  # {name: _target_ node}: identity networks of the loss (none: no identity terms)
    texture: TextureConfig = field(default_factory=TextureConfig)
    fitting: FittingConfig = field(default_factory=FittingConfig)


@dataclass
class AblationConfig:
    """One variant of the synthetic benchmark's ablation (``conf/ablation/<name>.yaml``): changes to the preset."""

    identity: bool = True  # keep the identity network(s) in the loss
    free_texture: bool = False  # the per-texel texture instead of the GAN latent
    fitting: Any = field(default_factory=dict)  # partial fitting preset merged over the composed one


def register_schema() -> None:
    """Register the schema nodes with Hydra's ConfigStore (idempotent)."""
    store = ConfigStore.instance()
    store.store(group="fitting", name="schema", node=FittingConfig)
    store.store(group="landmarks", name="schema", node=LandmarksConfig)
    store.store(group="texture", name="schema", node=TextureConfig)
    store.store(name="fit_schema", node=FitJobConfig)

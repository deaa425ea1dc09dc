"""The structured-config schema: typed dataclasses registered with Hydra's ConfigStore.

Each YAML preset of a typed group starts with ``defaults: [schema, _self_]`` (or another preset of its group), so
Hydra merges it onto the dataclass: an unknown key (``fitting.full.weights.identiy=1``) or a value of the wrong type
(``fitting.resolution=abc``) fails at composition with the key's name. ``OmegaConf.to_object(cfg.fitting)`` turns a
composed node into the dataclass itself. Components with a ``_target_`` (face model, renderer, identity networks)
stay ``Any`` here and are built with ``hydra.utils.instantiate``.

This module avoids ``from __future__ import annotations``: OmegaConf reads the field types at run time.
"""

import dataclasses
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any  # noqa: UP035  (OmegaConf reads typing's spellings)

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


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


class GanTone(StrEnum):
    """The colour of the GAN albedo where the detail texture has neither the photo nor the mirror texel."""

    local = "local"  # a smooth per-texel gain carried out from the nearest seen texels (default since session 14)
    gain = "gain"  # one gain fitted over all the seen texels (before session 14)


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
    seed: int = 0  # seed of the views' random generator (one new view per step that computes the term)
    every: int = 1  # compute the term on every k-th stage-2 step only (1: every step; k: ~1/k of its time)


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
    exif_focal: bool = True  # start from the photo's EXIF 35 mm-equivalent focal length when it has one
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
    fixed_expressions: list[str] = field(default_factory=list)  # blendshapes (ICT names, fnmatch patterns) kept at 0
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
    skin_colour: bool = True  # the detail texture also takes skin-coloured photo pixels joined to the face (neck, ears)
    gan_tone: GanTone = GanTone.local  # colour of the GAN fill where the photo and the mirror show nothing


@dataclass
class ShardingConfig:
    """How a photo job is spread over processes and machines (Lightning Fabric). Each rank fits a disjoint shard."""

    accelerator: str = "cpu"  # Fabric accelerator: cpu | cuda | auto
    num_nodes: int = 1  # machines; >1 under torchrun / SLURM (Fabric's launchers read the environment)
    strategy: str = "auto"  # auto: ddp_spawn for one node started by hand, ddp under torchrun / SLURM
    timeout_s: int = 1800  # collective timeout (the end-of-job barrier), seconds


@dataclass
class PhotoJobConfig:
    """The keys every photo job has (fit.py, the dataset builder, eval.photos): inputs, output, run options and the
    components of the fit."""

    image: str | None = None  # photo file, folder, glob or list file; None = the embedded astronaut (fit.py)
    out: str = "outputs/fit"  # output root; each photo writes out/<name>/
    overwrite: bool = False  # redo photos that are already done (fit.py: with the same photo and settings)
    device: str = "cpu"  # torch device of the optimisation
    seed: int = 0  # random seed
    processes: int = 1  # fitting processes per node (Fabric devices), each fitting a shard of the photos
    progress: bool = True  # progress bar
    torch_threads: int = 0  # torch threads per process (0 = the thread policy's share; fit.yaml sets 1)
    face_model: Any = None  # _target_ node: the morphable model
    renderer: Any = None  # _target_ node (partial): the renderer factory
    landmarks: LandmarksConfig = field(default_factory=LandmarksConfig)
    identity: Any = None  # {name: _target_ node}: identity networks of the loss (none: no identity terms)
    texture: TextureConfig = field(default_factory=TextureConfig)
    fitting: FittingConfig = field(default_factory=FittingConfig)


@dataclass
class FitJobConfig(PhotoJobConfig):
    """``fit.yaml``: the fit job (``python fit.py key=value ...``)."""

    wandb: bool = False  # log the run to W&B (offline without an API key)
    report: bool = True  # write out/index.html (photos, pictures, metrics, 3D view)
    detail: bool = True  # build the detail texture from the photo (false: the GAN / free albedo alone)
    eyes: bool = True  # eyes and mouth interior in renders and meshes
    shared_identity: bool = False  # fit the photos of one person together: one shape and texture, per-photo pose
    verbose: bool = False  # also show third-party log lines (mediapipe, TF Lite) and the thread policy
    sharding: ShardingConfig = field(default_factory=ShardingConfig)


@dataclass
class UnwrapConfig:
    """Photo -> UV texture options of the dataset builder (``conf/data_build.yaml`` ``build:``)."""

    texture_resolution: int = 256  # side of the UV texture written, texels
    depth_resolution: int = 512  # side of the depth buffer used for visibility (crop frame), pixels
    depth_tolerance_mm: float = 4.0  # a texel is visible when within this distance of the depth buffer, mm
    min_facing: float = 0.2  # cosine(normal, view) at which confidence starts to rise from 0
    full_facing: float = 0.5  # cosine at which confidence reaches 1
    min_shading: float = 0.2  # shading below this is clamped before dividing (deep shadow is not albedo)
    skin_mask: bool = True  # keep only photo pixels inside the face outline, away from eyes and mouth (skin_mask.py)


@dataclass
class Thresholds:
    """A fit beyond any of these is dropped from the dataset (``conf/data_build.yaml`` ``thresholds:``)."""

    max_landmark_error_iod: float = 0.08  # mean landmark error / inter-ocular distance after the fit
    min_identity_cosine: float = 0.0  # identity cosine photo vs render (skipped when no identity network)
    max_pixel_l1: float = 0.12  # mean L1 colour error inside the rendered face, [0, 1] units
    min_visible_fraction: float = 0.15  # fraction of the UV layout seen with confidence > 0.5 (skin-masked)

    def reasons(self, metrics: dict[str, Any]) -> list[str]:
        """Why ``metrics`` fail the thresholds (empty: keep)."""
        out = []
        lm = float(metrics.get("landmark_error_iod", float("nan")))
        if not math.isfinite(lm) or lm > self.max_landmark_error_iod:
            out.append(f"landmark_error_iod {lm:.3f} > {self.max_landmark_error_iod}")
        cos = metrics.get("identity_cosine")
        if cos is not None and cos < self.min_identity_cosine:
            out.append(f"identity_cosine {cos:.3f} < {self.min_identity_cosine}")
        pix = metrics.get("pixel_l1")
        if pix is not None and pix > self.max_pixel_l1:
            out.append(f"pixel_l1 {pix:.3f} > {self.max_pixel_l1}")
        vis = metrics.get("visible_fraction", 0.0)
        if vis < self.min_visible_fraction:
            out.append(f"visible_fraction {vis:.3f} < {self.min_visible_fraction}")
        return out


@dataclass
class DataBuildConfig(PhotoJobConfig):
    """``data_build.yaml``: the dataset builder (``python -m ganfit.data_build key=value ...``)."""

    build: UnwrapConfig = field(default_factory=UnwrapConfig)
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass
class JudgeConfig:
    """``judge:`` of ``eval_photos.yaml``: the identity network of the metric."""

    name: str = "faceres"  # faceres | dlib | mobileface | arcface
    onnx_path: str | None = None  # ArcFace ONNX file (arcface only)
    models_dir: str | None = None  # human-models folder of the TF.js networks (None: found as documented)
    threshold: float | None = None  # same-person threshold of the judge's distance (None: the recorded one)


@dataclass
class EvalPhotosConfig(PhotoJobConfig):
    """``eval_photos.yaml``: the real-photo evaluation (``python -m ganfit.eval.photos key=value ...``)."""

    gallery: str | None = None  # photos of known people for rank-1 identification
    frl_holdout: bool = False  # probes / gallery = the held-out FRL-London people
    frl_all: bool = False  # probes / gallery = every FRL-London person (80; the generator trained on 70 of them)
    shape_consistency: bool = (
        False  # also fit the gallery photos and compare the fits' neutral shapes (needs a gallery)
    )
    holdout_file: str = "frl_holdout.json"  # ids held out of the generator's training data (in ganfit/data/)
    identity_pattern: str = "^[^_]+"  # regex on a file stem giving the person's id
    detail: bool = True  # the fits' detail texture from the photo
    eyes: bool = True  # eyes and mouth interior in the fits' renders
    judge: JudgeConfig = field(default_factory=JudgeConfig)


class SyntheticCamera(StrEnum):
    """Truth camera of the synthetic benchmark."""

    random = "random"  # distance, focal length and framing drawn per face (camera_distribution)
    fixed = "fixed"  # one focal length and distance for every face (focal_factor, face_fill; sessions 1-5)


@dataclass
class CameraBandConfig:
    """One distance band of the synthetic benchmark's random camera (``camera_distribution.bands``)."""

    name: str = MISSING  # label in the report, e.g. selfie
    min_mm: float = MISSING  # camera distance to the face centre, drawn log-uniform in [min_mm, max_mm]
    max_mm: float = MISSING
    focal_equiv_mm: list[float] = MISSING  # [lo, hi] 35 mm-equivalent focal lengths of the band's cameras


@dataclass
class CameraDistributionConfig:
    """``camera=random``: per face, a distance band (balanced over the faces, seeded order), a distance in it, a
    framing, and the focal length that frames the face so, clipped to the band's cameras."""

    bands: list[CameraBandConfig] = field(default_factory=list)  # distance bands (eval_synthetic.yaml)
    face_fill: list[float] = field(default_factory=lambda: [0.3, 0.6])  # [lo, hi] target face width / image width
    frame_mm: float = 36.0  # 35 mm-equivalent frame side that image_size stands for (focal / image_size = f_eq / this)


@dataclass
class EvalSyntheticConfig:
    """``eval_synthetic.yaml``: the synthetic benchmark (``python -m ganfit.eval.synthetic key=value ...``); each
    key is commented there."""

    n: int = 8  # number of synthetic faces
    views: int = 1  # photos of each face (own pose, expression, light, camera, background; one shape and texture)
    seed: int = 0  # seed of the ground-truth sampling
    out: str = MISSING  # output folder
    device: str = "cpu"  # torch device
    torch_threads: int = 1  # torch.set_num_threads (0 = torch's default; 1 as in fit.py)
    progress: bool = True  # log progress per variant and batch
    overwrite: bool = False  # unused (the fitting options read the same keys as fit.py)
    image_size: int = 512  # side of the synthetic photos, pixels
    camera: SyntheticCamera = SyntheticCamera.random  # truth camera: random (camera_distribution) | fixed
    camera_distribution: CameraDistributionConfig = field(default_factory=CameraDistributionConfig)
    focal_factor: float = 1.5  # camera=fixed: focal length / image_size
    face_fill: float = 0.45  # camera=fixed: face width as a fraction of the image width at yaw 0
    max_yaw_deg: float = 45.0  # degrees
    max_pitch_deg: float = 15.0  # degrees
    max_roll_deg: float = 10.0  # degrees
    shape_scale: float = 1.0  # ground-truth shape ps ~ N(0, shape_scale^2), std units
    expression_scale: float = 0.5  # active blendshapes ~ U(0, expression_scale)
    expression_fraction: float = 0.08  # probability of each blendshape being active
    textures: str | None = None  # folder of UV textures; None = flat skin tones
    oracle_landmarks: bool = False  # diagnostic: fit to the true projected landmarks
    known_focal: bool = False  # the fits start from the true focal length, as from a photo's EXIF (fitting.exif_focal)
    oracle_appearance: list[str] = field(default_factory=list)  # diagnostic: [texture, light] kept true
    region_radius_mm: float = 95.0  # shape error within this distance of the nose tip, mm
    variants: list[str] = field(default_factory=list)  # ablation variants to run
    face_model: Any = None  # _target_ node: the morphable model
    renderer: Any = None  # _target_ node (partial): the renderer factory
    landmarks: LandmarksConfig = field(default_factory=LandmarksConfig)
    identity: Any = None  # identity networks of the loss and the metric
    texture: TextureConfig = field(default_factory=TextureConfig)
    fitting: FittingConfig = field(default_factory=FittingConfig)


@dataclass
class AblationConfig:
    """One variant of the synthetic benchmark's ablation (``conf/ablation/<name>.yaml``): changes to the preset."""

    identity: bool = True  # keep the identity network(s) in the loss
    dense: bool = True  # pass the detector's dense points to the fit (as landmarks.dense; false: the 68 only)
    free_texture: bool = False  # the per-texel texture instead of the GAN latent
    shared_identity: bool = False  # fit each face's views together: one shape and texture (needs views >= 2)
    fitting: Any = field(default_factory=dict)  # partial fitting preset merged over the composed one


# ------------------------------------------------------------------------------------------ train_texture_gan.py
# Types only: every value is in the YAML presets (conf/gan/progan.yaml, conf/data/folder.yaml, conf/trainer/cpu.yaml,
# conf/train.yaml), where each key is commented; MISSING here means "the preset gives it".


@dataclass
class TextureGANConfig:
    """``conf/gan/*.yaml``: the arguments of ``ganfit.gan.module.TextureGAN``."""

    _target_: str = "ganfit.gan.module.TextureGAN"
    resolution: int = MISSING  # target texture resolution, texels (power of two)
    latent_dim: int = MISSING  # size of the Gaussian latent z
    fmap_base: int = MISSING  # width rule numerator: channels(res) = fmap_base / 2**(log2(res)-1)
    fmap_max: int = MISSING  # max channels per block
    fmap_min: int = MISSING  # min channels per block
    use_pixelnorm: bool = MISSING  # pixelwise feature normalisation in G
    mbstd_group_size: int = MISSING  # minibatch-stddev group size in D (0 = off)
    loss: str = MISSING  # wgan_gp | ns_r1 (checked by TextureGAN)
    gp_weight: float = MISSING  # WGAN-GP lambda
    gp_target: float = MISSING  # WGAN-GP target gradient norm
    drift_weight: float = MISSING  # epsilon_drift on D(real)^2
    r1_gamma: float = MISSING  # R1 weight (loss=ns_r1)
    lr_g: float = MISSING  # Adam learning rate of G
    lr_d: float = MISSING  # Adam learning rate of D
    beta1: float = MISSING  # Adam beta1
    beta2: float = MISSING  # Adam beta2
    adam_eps: float = MISSING  # Adam epsilon
    start_resolution: int = MISSING  # resolution growing starts at, texels
    stable_kimg: float = MISSING  # thousand real images per stabilisation phase
    fade_kimg: float = MISSING  # thousand real images per fade-in phase
    total_kimg: float = MISSING  # training length, thousand real images
    fade_reals: bool = MISSING  # blend reals between adjacent resolutions during fade-ins
    ema_kimg: float = MISSING  # half-life of the generator EMA, thousand images
    sample_every_n_steps: int = MISSING  # iterations between sample grids (0 = never)
    num_samples: int = MISSING  # fixed latents in the grid
    sample_seed: int = MISSING  # seed of the fixed latents
    sample_dir: str | None = None  # folder of the sample-grid PNGs
    swd_real_root: str | None = None  # held-back real images for the periodic SWD (None = off)
    swd_every_n_steps: int = MISSING  # iterations between SWD evaluations (0 = only at the end)
    swd_num_images: int = MISSING  # images per set for the SWD


@dataclass
class TextureDataConfig:
    """``conf/data/*.yaml``: the arguments of ``ganfit.gan.data.TextureDataModule``."""

    _target_: str = "ganfit.gan.data.TextureDataModule"
    root: str = MISSING  # REQUIRED: folder of PNG/JPG textures
    resolution: int = MISSING  # stored resolution (the GAN's target resolution), texels
    batch_size: int = MISSING  # images per iteration and process
    num_workers: int = MISSING  # DataLoader workers
    mirror: bool = MISSING  # random horizontal flips
    mask_suffix: str | None = None  # e.g. "_mask": a/b.png pairs with a/b_mask.png
    cache: bool = MISSING  # keep the decoded images in memory


@dataclass
class TrainerConfig:
    """``conf/trainer/*.yaml``: the ``pytorch_lightning.Trainer`` arguments ganfit's presets set, and a few more
    with Lightning's own defaults (so ``trainer.max_time=...`` works without ``+``). Values Lightning takes in
    several types (``devices``, ``fast_dev_run``, ``precision``, ...) are ``Any``; train_texture_gan.py checks
    ``fast_dev_run`` itself."""

    _target_: str = "pytorch_lightning.Trainer"
    accelerator: str = MISSING  # cpu | gpu | auto
    devices: Any = MISSING  # processes / devices: a count, "auto" or a list of device ids
    strategy: Any = "auto"  # "auto", a name, or a _target_ node (conf/trainer/ddp_cpu.yaml)
    precision: Any = None  # Lightning's precision ("32-true", "16-mixed", ...; None = Lightning's default)
    num_nodes: int = 1  # machines
    max_epochs: int = MISSING  # -1: unbounded (gan.total_kimg ends training)
    max_steps: int = MISSING  # -1: no step limit
    max_time: Any = None  # wall-clock limit ("DD:HH:MM:SS" or a dict), None = none
    limit_train_batches: Any = None  # batches per epoch (a count or a fraction), None = all
    log_every_n_steps: int = MISSING  # Lightning global steps between metric rows
    enable_progress_bar: bool = MISSING  # tqdm progress bar
    enable_model_summary: bool = MISSING  # module summary at start
    num_sanity_val_steps: int = MISSING  # validation batches before training
    default_root_dir: str = MISSING  # Lightning's root for logs / checkpoints
    fast_dev_run: Any = False  # true or a batch count: a smoke test without logging or checkpoints
    deterministic: Any = None  # torch deterministic algorithms (true / false / "warn")
    detect_anomaly: bool = False  # autograd anomaly detection


@dataclass
class CheckpointConfig:
    """``checkpoint:`` of ``conf/train.yaml``: the arguments of ``pytorch_lightning.callbacks.ModelCheckpoint``."""

    _target_: str = "pytorch_lightning.callbacks.ModelCheckpoint"
    dirpath: str = MISSING  # checkpoint folder
    filename: str = MISSING  # name pattern
    auto_insert_metric_name: bool = MISSING  # keep the pattern verbatim
    every_n_train_steps: int = MISSING  # Lightning global steps between checkpoints
    save_top_k: int = MISSING  # periodic checkpoints kept (-1 = all)
    save_last: bool = MISSING  # also maintain last.ckpt


@dataclass
class TrainJobConfig:
    """``train.yaml``: one training run (``python train_texture_gan.py key=value ...``)."""

    seed: int = MISSING  # seed of the Python / NumPy / torch RNGs
    resume: str | None = None  # local Lightning .ckpt to continue from
    export_path: str = MISSING  # where the EMA generator is written after training
    torch_threads: int = MISSING  # torch.set_num_threads per process (0 = torch's default)
    checkpoint: CheckpointConfig | None = field(default_factory=CheckpointConfig)  # null: no checkpoints
    gan: TextureGANConfig = field(default_factory=TextureGANConfig)
    data: TextureDataConfig = field(default_factory=TextureDataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: Any = None  # _target_ node of a Lightning logger (conf/logger/), null = none


def register_schema() -> None:
    """Register the schema nodes with Hydra's ConfigStore (idempotent)."""
    store = ConfigStore.instance()
    store.store(group="fitting", name="schema", node=FittingConfig)
    store.store(group="landmarks", name="schema", node=LandmarksConfig)
    store.store(group="texture", name="schema", node=TextureConfig)
    store.store(name="fit_schema", node=FitJobConfig)
    store.store(group="gan", name="schema", node=TextureGANConfig)
    store.store(group="data", name="schema", node=TextureDataConfig)
    store.store(group="trainer", name="schema", node=TrainerConfig)
    store.store(name="train_schema", node=TrainJobConfig)
    store.store(name="data_build_schema", node=DataBuildConfig)
    store.store(name="eval_photos_schema", node=EvalPhotosConfig)
    store.store(name="eval_synthetic_schema", node=EvalSyntheticConfig)

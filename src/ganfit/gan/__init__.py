"""Stage 1: progressive-growing texture GAN (ProGAN) on UV maps.

Public API: :func:`load_generator` (plain ``generator.pt`` -> :class:`Generator`), the networks, the
LightningModule :class:`~ganfit.gan.module.TextureGAN` and :class:`~ganfit.gan.data.TextureDataModule`.
Lightning-dependent modules are imported lazily so fitting code can load a generator without Lightning.
"""

from ganfit.gan.generator_file import GeneratorFileError, export_generator, load_generator
from ganfit.gan.networks import Discriminator, Generator

__all__ = ["Discriminator", "Generator", "GeneratorFileError", "export_generator", "load_generator"]

"""ProGAN networks: shapes at every level, exact fade-in at alpha=0, export round trip, losses."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from ganfit.gan.__main__ import main
from ganfit.gan.generator_file import FORMAT, GeneratorFileError, export_generator, load_generator
from ganfit.gan.loss import d_loss, g_loss
from ganfit.gan.module import TextureGAN
from ganfit.gan.networks import (
    Discriminator,
    EqualizedConv2d,
    Generator,
    assert_shape,
    channels_at,
    level_of,
    minibatch_stddev,
    pixel_norm,
)
from ganfit.gan.schedule import GrowthSchedule

RES = 32
KW = {"fmap_base": 128, "fmap_max": 32}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops on a shared machine: one thread avoids spin-waiting
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def nets() -> tuple[Generator, Discriminator]:
    torch.manual_seed(0)
    return Generator(RES, latent_dim=64, **KW).eval(), Discriminator(RES, **KW).eval()


def test_shapes_at_every_level(nets: tuple[Generator, Discriminator]) -> None:
    G, D = nets
    z = torch.randn(4, 64)
    for level in range(level_of(RES) + 1):
        for alpha in (0.0, 0.3, 1.0):
            img = G(z, level, alpha)
            res = 4 * 2**level
            assert img.shape == (4, 3, res, res)
            assert torch.isfinite(img).all()
            assert D(img, level, alpha).shape == (4, 1)


def test_generator_alpha_zero_equals_upsampled_previous_level(nets: tuple[Generator, Discriminator]) -> None:
    G, _ = nets
    z = torch.randn(3, 64)
    for level in range(1, level_of(RES) + 1):
        faded = G(z, level, 0.0)
        previous = F.interpolate(G(z, level - 1, 1.0), scale_factor=2, mode="nearest")
        torch.testing.assert_close(faded, previous, rtol=0, atol=1e-6)
        assert not torch.allclose(G(z, level, 1.0), previous, atol=1e-3)  # the new block does change things


def test_discriminator_alpha_zero_equals_previous_level_on_pooled_input(nets: tuple[Generator, Discriminator]) -> None:
    _, D = nets
    img = torch.randn(4, 3, RES, RES)
    level = level_of(RES)
    torch.testing.assert_close(D(img, level, 0.0), D(F.avg_pool2d(img, 2), level - 1, 1.0), rtol=1e-5, atol=1e-5)


def test_paper_widths_and_equalized_lr() -> None:
    assert [channels_at(r, 8192, 512) for r in (4, 32, 64, 128, 256, 512)] == [512, 512, 256, 128, 64, 32]
    conv = EqualizedConv2d(16, 8, 3)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.15)  # N(0, 1) storage
    assert conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(16 * 9))  # He constant applied at run time


def test_pixelnorm_and_minibatch_stddev() -> None:
    x = torch.randn(8, 5, 4, 4) * 7
    assert pixel_norm(x).square().mean(1).sub(1).abs().max() < 1e-4
    y = minibatch_stddev(x, 4)
    assert y.shape == (8, 6, 4, 4)
    torch.testing.assert_close(y[:, :5], x)
    same = minibatch_stddev(torch.ones(4, 2, 4, 4), 4)
    assert same[:, 2].abs().max() < 1e-3  # identical samples -> zero spread


def test_bad_input_shapes_raise_clear_errors(nets: tuple[Generator, Discriminator]) -> None:
    G, D = nets
    with pytest.raises(ValueError, match="z: dimension 1 is 10, expected 64"):
        G(torch.randn(2, 10))
    with pytest.raises(ValueError, match="img"):
        D(torch.randn(2, 3, 16, 16), level=3)
    with pytest.raises(ValueError, match="power of two"):
        Generator(48)
    with pytest.raises(ValueError, match="expected 2 dimensions"):
        assert_shape(torch.zeros(3), [None, 4], "q")


def test_synthesize_is_the_box_filtered_full_texture(nets: tuple[Generator, Discriminator]) -> None:
    G, _ = nets
    z = torch.randn(2, 64)
    full = G(z)
    assert G.resolution == RES and full.shape[-1] == RES
    low = G.synthesize(z, 8)
    torch.testing.assert_close(low, F.avg_pool2d(full, 4))
    with pytest.raises(ValueError, match="divide"):
        G.synthesize(z, 12)


def test_export_round_trip_weights_only(tmp_path, nets: tuple[Generator, Discriminator]) -> None:
    G, _ = nets
    path = export_generator(G, tmp_path / "generator.pt", level=2, alpha=0.5, images_seen=1234)
    payload = torch.load(path, weights_only=True)  # plain tensors and primitives only
    assert payload["format"] == FORMAT and payload["images_seen"] == 1234
    G2 = load_generator(path)
    assert G2.resolution == 8  # mid-fade export falls back to the last fully trained level
    assert not any(p.requires_grad for p in G2.parameters())
    z = torch.randn(2, 64)
    torch.testing.assert_close(G2(z), G(z, 1, 1.0))
    with pytest.raises(GeneratorFileError, match="does not exist"):
        load_generator(tmp_path / "missing.pt")
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(GeneratorFileError, match="not a ganfit generator"):
        load_generator(tmp_path / "other.pt")


def test_half_export_is_smaller_and_loads_as_float32(tmp_path, nets: tuple[Generator, Discriminator]) -> None:
    G, _ = nets
    full = export_generator(G, tmp_path / "full.pt")
    half = export_generator(G, tmp_path / "half.pt", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    payload = torch.load(half, weights_only=True)
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values() if v.is_floating_point())
    G2 = load_generator(half)
    assert all(p.dtype == torch.float32 for p in G2.parameters())
    z = torch.randn(2, 64)
    torch.testing.assert_close(G2(z), load_generator(full)(z), atol=2e-2, rtol=0)  # fp16 rounding only


@pytest.mark.parametrize("kind", ["wgan_gp", "ns_r1"])
def test_losses_give_finite_gradients(kind: str, nets: tuple[Generator, Discriminator]) -> None:
    G, D = nets
    G, D = G.train(), D.train()
    real = torch.rand(4, 3, 8, 8) * 2 - 1
    z = torch.randn(4, 64)
    critic = lambda x: D(x, 1, 0.5)
    loss, stats = d_loss(kind, critic, real, G(z, 1, 0.5).detach())
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in stats.values())
    assert all(torch.isfinite(p.grad).all() for p in D.parameters() if p.grad is not None)
    assert D.from_rgb[1].weight.grad.abs().sum() > 0  # the gradient penalty reached the new block
    G.zero_grad()
    g_loss(kind, critic, G(z, 1, 0.5)).backward()
    assert G.blocks[0].conv0.weight.grad.abs().sum() > 0
    D.zero_grad()
    G.zero_grad()
    with pytest.raises(ValueError, match="gan.loss"):
        g_loss("hinge", critic, real)


def test_growth_schedule() -> None:
    s = GrowthSchedule(start_level=0, max_level=3, stable_kimg=1.0, fade_kimg=2.0)
    assert s.progress(0) == (0, 1.0)
    assert s.progress(999) == (0, 1.0)
    assert s.progress(1000) == (1, 0.0)
    assert s.progress(2000) == (1, 0.5)
    assert s.progress(3500) == (1, 1.0)
    assert s.progress(4000) == (2, 0.0)
    assert s.progress(10_000) == (3, 1.0)
    assert s.progress(10**9) == (3, 1.0)
    assert s.kimg_to_reach_target() == 9.0
    assert s.progress(9000) == (3, 1.0) and s.progress(8999)[1] < 1.0


def test_export_cli_from_a_checkpoint(tmp_path, nets: tuple[Generator, Discriminator]) -> None:
    torch.manual_seed(0)
    model = TextureGAN(resolution=16, latent_dim=32, fmap_base=64, fmap_max=16, stable_kimg=0.01, fade_kimg=0.01)
    model.images_seen.fill_(15)  # mid-fade into 8x8
    ckpt = {
        "hyper_parameters": dict(model.hparams),
        "state_dict": model.state_dict(),
        "ganfit": {"images_seen": 15, "iterations": 2, "level": 1, "alpha": 0.5},
    }
    torch.save(ckpt, tmp_path / "m.ckpt")
    assert main(["export", f"ckpt={tmp_path / 'm.ckpt'}", f"out={tmp_path / 'g.pt'}"]) == 0
    G = load_generator(tmp_path / "g.pt")
    assert G.resolution == 4  # mid-fade: the last fully trained level
    z = torch.randn(2, 32)
    torch.testing.assert_close(G(z), model.G_ema(z, 0, 1.0))
    assert main(["nope"]) == 2  # a usage error: one message, exit 2

"""Sharding a fit job with Lightning Fabric on CPU: 2 processes on one node, and 2 nodes simulated on loopback
(two ``torchrun`` launches, one per node, as on two machines). Each rank fits a disjoint ``rank::world`` shard of the
real photos with the ``fitting=smoke`` preset; ``summary.json`` lists every photo once, with the rank that fitted it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli_helpers import FIT, environment
from fit_helpers import bad_inputs, deep3d_photos
from ganfit.jobs.engine import bind_rank_device
from ganfit.jobs.fit_job import run_fit_job
from ganfit.jobs.inputs import collect_inputs, output_names


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _photo_folder(root: Path, photos_root: Path, count: int, bad: bool = False) -> Path:
    folder = root / "in"
    if bad:
        bad_inputs(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for path in deep3d_photos(photos_root, count):
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def _assert_disjoint_shards(summary: dict, folder: Path, world: int) -> None:
    """Every photo of ``folder`` once in ``summary``, photo ``i`` (input order) fitted by rank ``i % world``."""
    names = output_names(collect_inputs(folder).sources)
    photos = summary["photos"]
    assert sorted(p["name"] for p in photos) == sorted(names), photos
    by_name = {p["name"]: p for p in photos}
    for index, name in enumerate(names):
        assert by_name[name]["rank"] == index % world, (name, by_name[name]["rank"])
    assert {p["rank"] for p in photos} == set(range(world))


@pytest.mark.slow
def test_two_processes_shard_the_photos(tmp_path, photos_root, assets_dir, compose_fit):
    """2 spawned CPU processes on this node (gloo): each fits a shard, failures included; rank 0 collects. The ranks
    take ``torch_threads`` from the config (not the thread policy's share of the cores, which would be 1 here)."""
    folder = _photo_folder(tmp_path, photos_root, 2, bad=True)
    out = tmp_path / "out"
    summary = run_fit_job(compose_fit([f"image={folder}", f"out={out}", "processes=2", "torch_threads=2"]))
    assert summary.count("fitted") == 2 and summary.count("failed") == 2, summary.format()
    assert not list(out.glob(".summary-rank*.json"))
    written = json.loads((out / "summary.json").read_text())
    _assert_disjoint_shards(written, folder, 2)
    fitted = [p["name"] for p in written["photos"] if p["status"] == "fitted"]
    assert [json.loads((out / n / "metrics.json").read_text())["torch_threads"] for n in fitted] == [2, 2]


@pytest.mark.slow
def test_two_nodes_on_loopback_under_torchrun(tmp_path, photos_root, assets_dir):
    """Two ``torchrun --nnodes=2 --node-rank=R --nproc-per-node=1`` launches on 127.0.0.1 (static rendezvous),
    ``sharding.num_nodes=2``: node 0 fits photos 0 and 2, node 1 photo 1; node 0 writes the summary."""
    folder = _photo_folder(tmp_path, photos_root, 3)
    out = tmp_path / "out"
    port = _free_port()
    nodes = []
    for node in (0, 1):
        launch = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes=2",
            f"--node-rank={node}",
            "--nproc-per-node=1",
            "--master-addr=127.0.0.1",
            f"--master-port={port}",
            str(FIT),
            f"image={folder}",
            f"out={out}",
            "fitting=smoke",
            "progress=false",
            "report=false",
            "sharding.num_nodes=2",
        ]
        nodes.append(subprocess.Popen(launch, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    logs = []
    for proc in nodes:
        output, _ = proc.communicate(timeout=1200)
        logs.append(output.decode(errors="replace"))
    for node, (proc, log) in enumerate(zip(nodes, logs, strict=True)):
        assert proc.returncode == 0, f"node {node} exited {proc.returncode}\n{log[-4000:]}"
        assert f"rank {node} of 2 (node {node})" in log, log[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fitted"] == 3 and summary["failed"] == 0, summary
    _assert_disjoint_shards(summary, folder, 2)
    assert not list(out.glob(".summary-rank*.json"))


def test_each_cuda_rank_binds_its_own_device(monkeypatch):
    """``device=cuda`` on a rank means that rank's GPU: the worker makes its Fabric device current (a CUDA device
    is only simulated here: the call is recorded, not made); on CPU nothing is touched."""
    calls: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "set_device", calls.append)
    bind_rank_device(torch.device("cpu"))
    assert calls == []
    bind_rank_device(torch.device("cuda", 1))
    assert calls == [torch.device("cuda", 1)]

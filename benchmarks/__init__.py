"""Benchmarks of nnlayers against a lean numpy loop, two common numpy convolution designs and PyTorch.

Not part of the installed library (``setup.cfg`` packages only ``nnlayers``): run it from the top
folder of a clone, as ``python -m benchmarks …`` or ``python scripts/bench.py …``.

    threads.py      thread counts, read from the command line before numpy loads
    models.py       the paired nets: nnlayers' from ``nnlayers.examples``, their PyTorch twins
    steps.py        one training step per framework, and the cases (XOR … ResNet) built from them
    timing.py       interleaved rounds, medians; numpy's matrix-product rate
    layers.py       each layer's forward and backward time, each convolution's rate
    convs.py        single 3×3 convolutions against PyTorch's and against numpy's products alone
    peers.py        the numpy peers: CS231n's im2col and Chainer's tensordot convolutions
    memory.py       peak memory growth of training, one child process per framework
    gpu.py          the same steps on a GPU (CuPy against PyTorch's CUDA build)
    machine.py      the stamp of a run: CPU, cores, BLAS kernel, versions, date, threads
    report.py       console and JSON output; ``python -m benchmarks.report results/*.json --rst``
    full.py         ``--full``: both thread counts and both BLAS kernels, one fresh process each
    process.py      the command and environment of those fresh processes
    cli.py          the command line (``python -m benchmarks --help``)
    results/        the committed ``--json`` runs that the speed tables (docs/speed.rst) are rendered from
"""

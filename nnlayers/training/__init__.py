"""Training: the ``Trainer`` and its loop, and what the loop calls, one job per file.

* ``trainer.py``    ``Trainer`` (fit, evaluate, predict) and ``FitRun``, the live state of one fit
* ``predict.py``    ``predict``: a model's outputs in eval mode and in batches, with or without a Trainer
* ``callbacks.py``  the callback protocol (``Callback``), ``BestEpoch`` (best epoch, patience, restore) and
                   ``Perplexity`` (exp of the epoch's loss in the History)
* ``clipping.py``   ``clip_grad_norm`` and ``GradientClipping``, the callback ``Trainer(clip_grad_norm=…)`` adds
* ``divergence.py`` ``DivergenceGuard``: NaN/inf rollback, ``TrainingDivergedError``
* ``progress.py``   ``Progress``: the tqdm bars or log lines
* ``history.py``    ``History``, what fit returns
* ``data.py``       ``minibatches``, ``accuracy``, the data checks, tuples of inputs
"""
from .callbacks import BestEpoch, Callback, Perplexity
from .clipping import GradientClipping, clip_grad_norm
from .data import accuracy, minibatches
from .divergence import DivergenceGuard, TrainingDivergedError
from .history import History
from .predict import predict
from .progress import Progress, _display_mode, _in_jupyter_kernel, _Progress  # noqa: F401 (tests use them)
from .trainer import FitRun, Trainer

__all__ = ["Trainer", "predict", "History", "TrainingDivergedError", "accuracy", "minibatches",
           "Callback", "BestEpoch", "DivergenceGuard", "Progress", "FitRun", "Perplexity", "GradientClipping",
           "clip_grad_norm"]

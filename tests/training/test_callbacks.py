"""The callback protocol of Trainer.fit: a user's own callback, the hooks' order, replacing a built-in one."""
import io
import math
import textwrap

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.examples.xor import XOR_X, XOR_Y, xor_network
from nnlayers.training import BestEpoch, Callback, DivergenceGuard, Progress


def xor_trainer(lr=5.0):
    model = xor_network(8, rng=1)
    return nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=lr))


def docstring_callback():
    """The callback written in Trainer's docstring, run as written there (so the example cannot drift)."""
    lines = nl.Trainer.__doc__.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("class StopAtLoss"))
    end = next(i for i in range(start, len(lines)) if lines[i].lstrip().startswith("trainer.fit("))
    namespace = {}
    exec(textwrap.dedent("\n".join(lines[start:end])), namespace)
    return namespace["StopAtLoss"]


def test_the_docstrings_callback_stops_training():
    stop = docstring_callback()(0.05)
    history = xor_trainer().fit(XOR_X, XOR_Y, epochs=2000, progress=False, callbacks=[stop])
    assert stop.stopped_at == history.epochs < 2000
    assert history.loss[-1] < 0.05 <= history.loss[-2]


class Recorder(Callback):
    """Every hook, in the order fit calls them."""

    def __init__(self):
        self.calls = []

    def on_fit_start(self, trainer, run):
        self.run = run
        self.calls.append(("fit_start", run.epochs, run.batches, run.validating))

    def on_epoch_start(self, epoch):
        self.calls.append(("epoch_start", epoch))

    def on_loss(self, epoch, batch, loss):
        assert isinstance(loss, float) and self.run.step == (epoch - 1) * 3 + batch   # the CPU: a float
        self.calls.append(("loss", epoch, batch))

    def on_backward_end(self, epoch, batch):
        self.calls.append(("backward_end", epoch, batch))

    def on_batch_end(self, epoch, batch):
        self.calls.append(("batch_end", epoch, batch))

    def on_epoch_logs(self, epoch, logs):
        assert list(logs) == ["loss", "accuracy", "val_loss", "val_accuracy"] and self.run.history.epochs == epoch - 1
        self.calls.append(("epoch_logs", epoch))

    def on_epoch_end(self, epoch, history):
        assert history.epochs == epoch
        self.calls.append(("epoch_end", epoch))

    def on_fit_end(self, history):
        self.calls.append(("fit_end", history.epochs))


def test_hooks_come_in_the_loops_order():
    model = nl.Sequential(nl.Linear(2, 2, rng=0))
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(model.parameters(), lr=0.1), metric=nl.accuracy)
    X, labels = np.random.default_rng(0).normal(size=(10, 2)), np.arange(10) % 2
    recorder = Recorder()
    trainer.fit(X, labels, epochs=2, batch_size=4, rng=0, validation_data=(X, labels), progress=False,
                callbacks=[recorder])
    epoch = lambda e: ([("epoch_start", e)] + [(kind, e, b) for b in (1, 2, 3)
                                               for kind in ("loss", "backward_end", "batch_end")]
                       + [("epoch_logs", e), ("epoch_end", e)])
    assert recorder.calls == [("fit_start", 2, 3, True)] + epoch(1) + epoch(2) + [("fit_end", 2)]


def test_on_exception_sees_the_error_and_fit_end_is_not_called():
    class Interrupt:
        def on_batch_end(self, epoch, batch):
            if batch == 2:
                raise KeyboardInterrupt

    class Witness(Callback):
        def __init__(self):
            self.errors, self.ended = [], False

        def on_exception(self, error):
            self.errors.append(type(error))

        def on_fit_end(self, history):
            self.ended = True

    witness = Witness()
    with pytest.raises(KeyboardInterrupt):
        xor_trainer().fit(XOR_X, XOR_Y, epochs=3, batch_size=1, progress=False, callbacks=[Interrupt(), witness])
    assert witness.errors == [KeyboardInterrupt] and not witness.ended


def test_a_progress_passed_replaces_the_built_in_one(capsys):
    stream = io.StringIO()
    xor_trainer().fit(XOR_X, XOR_Y, epochs=20, progress=True, callbacks=[Progress(mode="lines", file=stream)])
    assert capsys.readouterr().err == ""                                   # no second display
    assert stream.getvalue().count("\n") == 10 and "epoch 20/20: loss=" in stream.getvalue()


def test_best_epoch_as_a_callback_equals_the_keywords():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(16, 2)), rng.normal(size=(16, 1))
    runs = []
    for keywords, callbacks in [({"restore_best": True, "patience": 2}, []),
                                ({}, [BestEpoch(restore_best=True, patience=2)])]:
        model = nl.Sequential(nl.Linear(2, 1, rng=0))
        trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.3))
        history = trainer.fit(X, Y, epochs=30, batch_size=4, rng=0, validation_data=(X, -Y), progress=False,
                              callbacks=callbacks, **keywords)
        runs.append((history.best_epoch, history.epochs, model[0].W.data.copy()))
    assert runs[0][:2] == runs[1][:2] and runs[0][1] < 30
    np.testing.assert_array_equal(runs[0][2], runs[1][2])


def test_callback_argument_errors():
    with pytest.raises(ValueError, match="BestEpoch: patience must be a positive integer"):
        BestEpoch(patience=0)
    with pytest.raises(ValueError, match="DivergenceGuard: check_every must be a positive integer"):
        DivergenceGuard(check_every=0)


def test_a_callback_that_silences_progress_keeps_fit_from_adding_its_display(capsys):
    """One process of a data-parallel job shows progress; the others pass a callback saying so
    (nl.distributed.DistributedCallback does on every rank but 0)."""
    from nnlayers.distributed import DistributedCallback

    class FakeComm:
        def __init__(self, rank):
            self.rank = rank

        def Get_rank(self):
            return self.rank

        def Get_size(self):
            return 2

    X = np.random.default_rng(0).normal(size=(8, 2))
    for callbacks, shown in (([], True), ([type("Quiet", (), {"silences_progress": True})()], False)):
        model = nl.Sequential(nl.Linear(2, 1, rng=0))
        nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.01)).fit(
            X, X[:, :1], epochs=2, batch_size=4, callbacks=callbacks)
        assert ("epoch 2/2" in capsys.readouterr().err) == shown
    assert [DistributedCallback(FakeComm(rank)).silences_progress for rank in (0, 1)] == [False, True]


def test_a_guard_passed_in_callbacks_takes_the_built_in_guard_s_place_first():
    """The guard (nl.distributed.DistributedCallback is one) runs before the others, so the records it
    changes in on_epoch_logs are final before any other callback reads them."""
    class Guard(DivergenceGuard):
        def on_epoch_logs(self, epoch, logs):
            logs["loss"] = 0.5                               # as DistributedCallback sums the ranks' parts
            super().on_epoch_logs(epoch, logs)

    class Reader(Callback):
        def on_epoch_logs(self, epoch, logs):
            self.loss = logs["loss"]

    reader, clipping = Reader(), nl.GradientClipping(1.0)
    model = nl.Sequential(nl.Linear(2, 2, rng=0))
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(model.parameters(), lr=1.0), clip_grad_norm=3.0)
    callbacks = trainer._fit_callbacks(False, True, None, None, [reader, clipping, Guard(), nl.Perplexity()])
    assert [type(c).__name__ for c in callbacks] == ["Guard", "BestEpoch", "Reader", "GradientClipping", "Perplexity"]
    assert [type(c).__name__ for c in trainer._fit_callbacks(True, False, None, None, [reader])] == \
        ["DivergenceGuard", "GradientClipping", "Progress", "Reader"]
    history = trainer.fit(XOR_X, [0, 1, 1, 0], epochs=2, progress=False, callbacks=[reader, Guard(), nl.Perplexity()])
    assert reader.loss == 0.5 and history.loss == [0.5, 0.5] and history.perplexity == [math.exp(0.5)] * 2

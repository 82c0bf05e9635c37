import math

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.examples.xor import XOR_X, XOR_Y, train_xor, xor_network


def test_xor_forward_values_for_fixed_weights():
    model = xor_network(8, rng=0)
    model[0].W.data[...] = 1.0          # every hidden unit computes σ(x₁ + x₂)
    model[3].W.data[...] = 0.5
    model[4].b.data[...] = -2.0         # output σ(0.5 · 8 · h − 2) = σ(4h − 2)
    out = model.forward(XOR_X)[:, 0]
    sigma = lambda z: 1 / (1 + math.exp(-z))
    expected = [sigma(4 * sigma(s) - 2) for s in (0, 1, 1, 2)]
    assert expected[0] == 0.5           # σ(4 · ½ − 2) = σ(0)
    np.testing.assert_allclose(out, expected, rtol=1e-15)


def test_fit_records_one_mean_loss_per_epoch_and_learns():
    model = xor_network(8, rng=1)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=5.0))
    history = trainer.fit(XOR_X, XOR_Y, epochs=300, progress=False)
    assert history.epochs == 300 and len(history.seconds) == 300
    assert history.loss[-1] < history.loss[0] / 10
    # Full batch: the epoch loss is the loss the epoch's step saw, before its update.
    model2 = xor_network(8, rng=1)
    first = nl.EuclideanLoss()(model2.forward(XOR_X), XOR_Y)
    assert history.loss[0] == pytest.approx(first, rel=1e-15)


def test_xor_converges_for_every_seed_0_to_99():
    for seed in range(100):
        result = train_xor(seed=seed)
        assert result.converged and result.max_error < 0.05, seed
        np.testing.assert_array_equal(np.round(result.outputs), XOR_Y)


def test_sum_loss_is_reported_as_a_total_whatever_the_batch_size(rng):
    # EuclideanLoss sums over the batch, so an epoch's loss is the total over all samples.
    model = nl.Sequential(nl.Linear(2, 1, rng=0), nl.Bias(1))
    X, Y = rng.normal(size=(10, 2)), rng.normal(size=(10, 1))
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.0))   # weights fixed
    total = 0.5 * float(np.sum((model.forward(X) - Y) ** 2))
    for batch_size in (None, 3, 10):
        history = trainer.fit(X, Y, epochs=1, batch_size=batch_size, rng=0, validation_data=(X, Y),
                              progress=False)
        assert history.loss[0] == pytest.approx(total, rel=1e-12)
        assert history.val_loss[0] == pytest.approx(total, rel=1e-12)
    assert trainer.evaluate(X, Y, batch_size=4)[0] == pytest.approx(total, rel=1e-12)


def test_mean_loss_is_reported_per_sample_whatever_the_batch_size(rng):
    model = nl.Sequential(nl.Linear(3, 4, rng=0))
    X, labels = rng.normal(size=(10, 3)), rng.integers(0, 4, 10)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(model.parameters(), lr=0.0))
    mean = nl.SoftmaxCrossEntropy()(model.forward(X), labels)
    for batch_size in (None, 3):
        assert trainer.fit(X, labels, epochs=1, batch_size=batch_size, rng=0, progress=False).loss[0] == \
            pytest.approx(mean, rel=1e-12)
    assert trainer.evaluate(X, labels, batch_size=4)[0] == pytest.approx(mean, rel=1e-12)


def test_same_seed_gives_identical_weights():
    a, b = train_xor(seed=5, epochs=200), train_xor(seed=5, epochs=200)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    c = train_xor(seed=6, epochs=200)
    assert not np.array_equal(a.model[0].W.data, c.model[0].W.data)


def test_gradients_are_zero_after_every_step():
    model = xor_network(4, rng=0)
    nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=1.0)).fit(
        XOR_X, XOR_Y, epochs=3, progress=False)
    assert all(not p.grad.any() for p in model.parameters())


def test_divergence_stops_naming_epoch_and_keeps_last_finite_weights():
    model = nl.Sequential(nl.Linear(1, 1, rng=0), nl.Bias(1))
    X = np.array([[1.0], [2.0], [3.0]])
    Y = np.array([[1e140], [0.0], [0.0]])                     # lr too large: overflows in a few steps
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=1.0))
    snapshots = []
    original_step = trainer.optimizer.step

    def step():
        snapshots.append([p.data.copy() for p in model.parameters()])
        original_step()
    trainer.optimizer.step = step
    with pytest.raises(nl.TrainingDivergedError, match=r"loss became (inf|nan) at epoch \d+, batch 1") as info:
        trainer.fit(X, Y, epochs=50, progress=False)
    epoch = int(str(info.value).split("epoch ")[1].split(",")[0])
    assert len(info.value.history.loss) == epoch - 1
    # Restored to the weights of the last step whose loss was finite, all finite.
    for p, saved in zip(model.parameters(), snapshots[-1]):
        np.testing.assert_array_equal(p.data, saved)
        assert np.all(np.isfinite(p.data))


def test_minibatches_reshuffle_every_epoch_and_repeat_with_seed():
    rng = np.random.default_rng(3)
    first = np.concatenate(list(nl.minibatches(10, 4, rng=rng)))
    second = np.concatenate(list(nl.minibatches(10, 4, rng=rng)))
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert not np.array_equal(first, second)
    again = np.random.default_rng(3)
    np.testing.assert_array_equal(np.concatenate(list(nl.minibatches(10, 4, rng=again))), first)
    assert [len(b) for b in nl.minibatches(10, 4, shuffle=False)] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(list(nl.minibatches(10, 4, shuffle=False))), np.arange(10))


def test_fit_argument_errors():
    model = xor_network(2, rng=0)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=1.0))
    with pytest.raises(ValueError, match="same number of samples"):
        trainer.fit(XOR_X, XOR_Y[:3], epochs=1)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        trainer.fit(XOR_X, XOR_Y, epochs=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        trainer.fit(XOR_X, XOR_Y, epochs=1, batch_size=0)


def test_progress_can_be_silenced(capsys):
    model = xor_network(2, rng=0)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=1.0))
    trainer.fit(XOR_X, XOR_Y, epochs=20, progress=False)
    assert capsys.readouterr() == ("", "")
    trainer.fit(XOR_X, XOR_Y, epochs=20, progress=True)
    err = capsys.readouterr().err
    assert err.count("\n") == 10 and "epoch 20/20: loss=" in err     # not a terminal: ~10 lines


def test_predict_restores_each_modules_mode():
    model = nl.Sequential(nl.Linear(2, 4, rng=0), nl.Dropout(0.5, rng=0), nl.Linear(4, 1, rng=1))
    model[1].eval()                                               # the user froze this one
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=1.0))
    out = trainer.predict(XOR_X, batch_size=3)
    np.testing.assert_allclose(out, model.forward(XOR_X), rtol=1e-14)   # dropout off in both
    assert model.training and model[0].training and not model[1].training
    trainer.evaluate(XOR_X, XOR_Y)
    assert model.training and not model[1].training


def test_accuracy():
    assert nl.accuracy(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert nl.accuracy(np.array([[0.1, 0.9]]), np.array([[0, 1]])) == 1.0
    assert nl.accuracy(np.array([[0.2], [0.6]]), np.array([[0.0], [0.0]])) == 0.5


# -- what a user sees: History's display and the progress bars ------------------------------------

def _validated_xor_history(epochs=300):
    model = xor_network(8, rng=0)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=5.0), metric=nl.accuracy)
    return trainer.fit(XOR_X, XOR_Y, epochs=epochs, progress=False, validation_data=(XOR_X, XOR_Y))


def test_history_repr_shows_epochs_and_last_values_only():
    history = _validated_xor_history()
    text = repr(history)
    assert text.startswith(f"History(300 epochs, {sum(history.seconds):.1f} s; last: loss=")
    assert f"loss={history.loss[-1]:.6g}," in text and f"val_loss={history.val_loss[-1]:.6g}" in text
    assert "accuracy=1," in text and "val_accuracy=1" in text and text.endswith(")")
    assert len(text) < 200 and f"{history.loss[0]:.6g}" not in text       # not every value
    assert len(history.loss) == 300                                          # the lists stay whole
    assert repr(nl.History()) == "History(0 epochs)"
    one = nl.History(loss=[0.5], seconds=[0.25])
    assert repr(one).startswith("History(1 epoch, 0.2 s; last: loss=0.5")


def test_history_html_has_a_row_per_record():
    history = _validated_xor_history(epochs=20)
    html = history._repr_html_()
    assert html.startswith("<p>History: 20 epochs,")
    assert "<th>epoch 1</th><th>epoch 20 (last)</th><th>min</th><th>max</th>" in html
    for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
        assert f"<td style='text-align:left'>{name}</td>" in html
    loss = history.loss
    assert (f"<td>{loss[0]:.6g}</td><td>{loss[-1]:.6g}</td><td>{min(loss):.6g}</td><td>{max(loss):.6g}</td>"
            in html)


def _bar_lines(epochs, batches, metric, validated, loss_value):
    """Drive the text bars as fit does; return each line as a terminal would show it."""
    import io
    import re
    from nnlayers.training import _Progress
    stream = io.StringIO()
    display = _Progress(True, epochs, batches, metric, mode="bars", file=stream)
    history = nl.History()
    for epoch in range(1, epochs + 1):
        display.start_epoch(epoch)
        for batch in range(1, batches + 1):
            display.batch_done(batch, loss_value * 64 * batch, 0.9612 * 64 * batch, 64, True)
        history.loss.append(loss_value)
        if metric:
            history.record(metric, 0.96123)
        if validated:
            history.val_loss.append(loss_value * 1.1)
            if metric:
                history.record("val_" + metric, 0.97501)
        history.seconds.append(6.31)
        display.end_epoch(history)
    display.close()
    return [line.rstrip() for line in re.split(r"[\r\n]", stream.getvalue()) if line.strip()]


@pytest.mark.parametrize("epochs, batches, metric, validated, loss_value", [
    (8, 113, "accuracy", True, 0.1234),           # the sample CNN: a bar per epoch
    (100, 844, "accuracy", True, 1.234e-05),      # long run, losses in e-notation
    (2000, 1, None, False, 1.234e-05),            # full-batch XOR: one bar over the epochs
    (2000, 1, "accuracy", True, 1.234e-05),       # full batch with validation
])
def test_text_bars_keep_validation_numbers_within_80_columns(epochs, batches, metric, validated, loss_value):
    # With a 10-column bar (tqdm's width without a terminal) no line passes 80 columns, so on an
    # 80-column terminal the bar shrinks or grows and tqdm never has to cut the numbers off.
    lines = _bar_lines(epochs, batches, metric, validated, loss_value)
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    last = lines[-1]
    assert last.startswith("epoch") and f"{epochs}/{epochs}" in last
    assert f"loss {loss_value:.4g}" in last
    if validated:
        assert f"val loss {loss_value * 1.1:.4g} acc 0.9750" in last
    if batches > 1:
        assert last.endswith("· 6.3 s")
        assert sum(line.startswith(f"epoch {e}/{epochs}: loss") for e in range(1, epochs + 1) for line in lines) \
            >= epochs                              # each finished epoch leaves its line


def test_progress_picks_notebook_bars_terminal_bars_or_lines(monkeypatch):
    import io
    from nnlayers.training import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert progress._display_mode(io.StringIO()) == "lines"           # a log or a pipe
    assert progress._display_mode(Terminal()) == "bars"
    monkeypatch.setattr(progress, "_in_jupyter_kernel", lambda: True)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object() if name == "ipywidgets" else None)
    assert progress._display_mode(io.StringIO()) == "widgets"
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert progress._display_mode(io.StringIO()) == "bars"            # a notebook without ipywidgets
    assert progress._Progress(False, 3, 2, None).mode == "off"


# -- schedules, best epoch, early stopping, callbacks ----------------------------------------------

class Snapshots:
    """A callback keeping each epoch's state (weights and buffers) as the epoch ended."""

    def __init__(self, model):
        self.model, self.states = model, []

    def on_epoch_end(self, epoch, history):
        assert epoch == len(self.states) + 1 == history.epochs
        self.states.append(self.model.state_dict())


def drifting_problem(rng):
    """A regression whose validation targets are the training targets negated: fitting the training
    data makes the validation loss worse, so its best epoch comes early."""
    X = rng.normal(size=(32, 3))
    Y = X @ np.array([[1.0], [-2.0], [0.5]])
    model = nl.Sequential(nl.Linear(3, 4, rng=0), nl.BatchNorm1d(4), nl.Tanh(), nl.Linear(4, 1, rng=1))
    return model, X, Y, (X, -Y)


def test_schedule_steps_per_epoch_and_history_records_lr():
    model = xor_network(2, rng=0)
    optimizer = nl.SGD(model.parameters(), lr=1.0)
    schedule = nl.schedules.StepLR(optimizer, 2, gamma=0.5)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), optimizer, schedule=schedule)
    history = trainer.fit(XOR_X, XOR_Y, epochs=5, batch_size=2, rng=0, progress=False)
    assert history.lr == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert schedule.last_step == 5 and optimizer.lr == 0.25           # η(5) = 0.5^⌊5/2⌋


def test_schedule_steps_per_batch(rng):
    model = nl.Sequential(nl.Linear(2, 1, rng=0))
    optimizer = nl.SGD(model.parameters(), lr=1.0)
    schedule = nl.schedules.LinearLR(optimizer, start_factor=0.1, total_iters=10)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), optimizer, schedule=schedule, schedule_every="batch")
    history = trainer.fit(rng.normal(size=(8, 2)), rng.normal(size=(8, 1)), epochs=3, batch_size=3, rng=0,
                          progress=False)
    assert schedule.last_step == 9                                    # 3 batches per epoch
    assert history.lr == pytest.approx([0.1, 0.1 + 0.9 * 3 / 10, 0.1 + 0.9 * 6 / 10])


def test_trainer_refuses_a_schedule_of_another_optimizer_and_a_bad_interval():
    model = xor_network(2, rng=0)
    optimizer = nl.SGD(model.parameters(), lr=1.0)
    other = nl.schedules.StepLR(nl.SGD(model.parameters(), lr=1.0), 2)
    with pytest.raises(ValueError, match="does not act on this trainer's optimizer"):
        nl.Trainer(model, nl.EuclideanLoss(), optimizer, schedule=other)
    with pytest.raises(ValueError, match="schedule_every must be 'epoch' or 'batch', got 'step'"):
        nl.Trainer(model, nl.EuclideanLoss(), optimizer, schedule=nl.schedules.StepLR(optimizer, 2),
                   schedule_every="step")


def test_restore_best_puts_back_the_best_epochs_weights_and_buffers(rng):
    model, X, Y, validation = drifting_problem(rng)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.002))
    snapshots = Snapshots(model)
    history = trainer.fit(X, Y, epochs=8, batch_size=8, rng=0, validation_data=validation, progress=False,
                          restore_best=True, callbacks=[snapshots])
    assert history.epochs == 8
    best = int(np.argmin(history.val_loss)) + 1
    assert history.best_epoch == best and best < 8                     # the last epoch was not the best
    for name, value in model.state_dict().items():                     # BatchNorm's statistics too
        np.testing.assert_array_equal(value, snapshots.states[best - 1][name], err_msg=name)
    assert trainer.evaluate(*validation)[0] == pytest.approx(min(history.val_loss), rel=1e-12)


def test_patience_stops_after_epochs_without_improvement(rng):
    model, X, Y, validation = drifting_problem(rng)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.002))
    snapshots = Snapshots(model)
    history = trainer.fit(X, Y, epochs=50, batch_size=8, rng=0, validation_data=validation, progress=False,
                          patience=2, callbacks=[snapshots])
    assert history.epochs == history.best_epoch + 2 < 50
    assert history.val_loss[history.best_epoch - 1] == min(history.val_loss)
    for name, value in model.state_dict().items():                     # no restore: the last epoch's weights
        np.testing.assert_array_equal(value, snapshots.states[-1][name])


def test_monitor_a_metric_where_higher_is_better(rng):
    X = rng.normal(size=(40, 2))
    labels = (X[:, 0] > 0).astype(int)
    model = nl.Sequential(nl.Linear(2, 2, rng=0))
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(model.parameters(), lr=0.5), metric=nl.accuracy)
    history = trainer.fit(X, labels, epochs=6, batch_size=10, rng=0, validation_data=(X, 1 - labels),
                          progress=False, restore_best=True, monitor="val_accuracy")
    assert history.best_epoch == int(np.argmax(history.val_accuracy)) + 1
    assert trainer.evaluate(X, 1 - labels)[1] == max(history.val_accuracy)


def test_a_callback_returning_true_stops_training():
    class StopAtThree:
        def on_epoch_end(self, epoch, history):
            return epoch == 3

    model = xor_network(2, rng=0)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=1.0))
    history = trainer.fit(XOR_X, XOR_Y, epochs=10, progress=False, callbacks=[StopAtThree()])
    assert history.epochs == 3 and history.best_epoch is None


def test_monitor_and_patience_errors():
    model = xor_network(2, rng=0)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=1.0))
    with pytest.raises(ValueError, match=r"cannot monitor 'val_loss': this fit records loss \(pass validation_data"):
        trainer.fit(XOR_X, XOR_Y, epochs=2, progress=False, restore_best=True, monitor="val_loss")
    with pytest.raises(ValueError, match="cannot monitor 'accuracy'"):
        trainer.fit(XOR_X, XOR_Y, epochs=2, progress=False, patience=1, monitor="accuracy")
    with pytest.raises(ValueError, match="patience must be a positive integer"):
        trainer.fit(XOR_X, XOR_Y, epochs=2, progress=False, patience=0)
    history = trainer.fit(XOR_X, XOR_Y, epochs=3, progress=False, restore_best=True)   # monitors "loss"
    assert history.best_epoch == int(np.argmin(history.loss)) + 1


# -- no silent mistakes ------------------------------------------------------------------------------

def test_trainer_refuses_an_optimizer_built_for_another_model():
    model, other = xor_network(4, rng=0), xor_network(4, rng=1)
    with pytest.raises(ValueError, match=r"does not hold the model's parameter 0\.W .*SGD\(model\.parameters\(\)"):
        nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(other.parameters(), lr=0.1))
    with pytest.raises(ValueError, match=r"parameter 4\.b"):               # only some of them: names the first missing
        nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters()[:-1], lr=0.1))
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.1))
    trainer.model = other                                                    # replaced later: fit checks again
    with pytest.raises(ValueError, match="does not hold the model's parameter"):
        trainer.fit(XOR_X, XOR_Y, epochs=1, progress=False)
    nl.Trainer(model, None, None).predict(XOR_X)                             # no optimizer: prediction only


def test_fit_warns_once_naming_both_dtypes_when_the_data_would_be_cast():
    model = xor_network(4, rng=0).to(np.float32)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.1))
    with pytest.warns(UserWarning, match=r"X is float64 but the model computes in float32") as caught:
        trainer.fit(XOR_X, XOR_Y, epochs=3, batch_size=2, progress=False)
    assert len([w for w in caught if "computes in" in str(w.message)]) == 1
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer.fit(XOR_X.astype(np.float32), XOR_Y, epochs=1, progress=False)    # same dtype: silent
        trainer.fit(XOR_X.astype(np.uint8), XOR_Y, epochs=1, progress=False)      # integers: not "values cast"


def test_a_shape_error_in_fit_names_X_and_suggests_the_channel_axis():
    from nnlayers.examples import mnist
    model = mnist.cnn(1, 8, 3, width=2, rng=0)
    X, Y = np.random.default_rng(0).random((10, 8, 8)).astype(np.float32), np.zeros(10, dtype=int)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(model.parameters()))
    with pytest.raises(nl.ShapeError, match=r"fit: X of shape \(10, 8, 8\) does not fit the model \(in batches of "
                                            r"\(4, 8, 8\)\).*pass X\[:, None\], of shape \(10, 1, 8, 8\)"):
        trainer.fit(X, Y, epochs=1, batch_size=4, progress=False)
    mlp = xor_network(4, rng=0)
    with pytest.raises(nl.ShapeError, match=r"fit: X of shape \(4, 3\)") as raised:
        nl.Trainer(mlp, nl.EuclideanLoss(), nl.SGD(mlp.parameters(), lr=0.1)).fit(np.ones((4, 3)), XOR_Y, 1,
                                                                                  progress=False)
    assert "X[:, None]" not in str(raised.value)


def test_trainer_predict_is_nl_predict():
    model = xor_network(4, rng=0)
    np.testing.assert_array_equal(nl.Trainer(model, None, None).predict(XOR_X, batch_size=3),
                                  nl.predict(model, XOR_X))


def test_trainer_refuses_an_optimizer_built_before_the_model_was_cast():
    model = xor_network(4, rng=0)
    optimizer = nl.Adam(model.parameters(), lr=0.01)
    model.to(np.float32)
    with pytest.raises(ValueError, match=r"optimizer.s m arrays are float64 .* built before model\.to"):
        nl.Trainer(model, nl.EuclideanLoss(), optimizer)
    nl.Trainer(model, nl.EuclideanLoss(), nl.Adam(model.parameters(), lr=0.01))       # rebuilt: fine

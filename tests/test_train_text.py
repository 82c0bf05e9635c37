"""scripts/train_text.py: tiny runs of every model on both corpora, saving and loading, the JSON log, the plot, ONNX,
the learning-rate schedule and its calibration, and clear errors for bad arguments.

Most runs call the script's ``main`` in this process (``--system-malloc`` leaves the test process's malloc
alone); a few run it as a user does, as a separate process, to check exit codes and what it prints.
"""
import json
import math

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.examples import text
from tests.helpers import importable, load_script, lrs, require, run_script

TINY = ["--max-steps", "2", "--eval-every", "1", "--samples", "1", "--sample-length", "20", "--system-malloc"]
RECURRENT = [*TINY, "--hidden", "16", "--embed", "8"]
GPT = [*TINY, "--blocks", "1", "--embed", "16", "--heads", "2", "--seq-len", "16"]
SYMBOLS = {"austen": 81, "names": 27}


def tiny(model):
    return GPT if model == "gpt" else RECURRENT


@pytest.fixture(scope="module")
def script():
    return load_script("train_text.py")


def run(script, capsys, *args):
    """main(args) in this process: (exit status, stdout, stderr)."""
    status = script.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("data", ["names", "austen"])
@pytest.mark.parametrize("model", ["lstm", "gru", "rnn", "gpt"])
def test_tiny_run_of_each_model_on_each_corpus(script, capsys, tmp_path, model, data):
    log = tmp_path / "log.json"
    status, out, err = run(script, capsys, "--model", model, "--data", data, *tiny(model), "--log", log)
    assert status == 0, err
    lines = out.splitlines()
    assert any(line.startswith(f"{data}: ") and f"{SYMBOLS[data]} symbols" in line for line in lines)
    assert "step 0: validation" in out and "step 2 (" in out and "samples at temperature 0.8:" in out
    record = json.loads(log.read_text())
    assert record["model"] == model and record["data"] == data
    assert [point["step"] for point in record["curve"]] == [0, 1, 2]
    untrained = record["curve"][0]["val_loss"]
    assert abs(untrained - math.log(SYMBOLS[data])) < 0.5                # about uniform before training
    assert all(math.isfinite(point["val_loss"]) for point in record["curve"])
    (drawn,) = record["samples"]
    if data == "names":
        assert drawn.startswith(text.NAME_MARKER) and 1 < len(drawn) <= 21
        assert drawn.count(text.NAME_MARKER) <= 2 and (len(drawn) == 21 or drawn.endswith(text.NAME_MARKER))
    else:
        assert drawn.startswith("It is a truth universally acknowledged") and len(drawn) == 38 + 20
    if model == "gpt":
        assert record["schedule"] == "cosine" and record["warmup"] == 200 and record["hidden"] is None
        assert record["seq_len"] == (16 if data == "austen" else 12)     # names: the longest name and its markers
    else:
        assert record["schedule"] == "none" and record["hidden"] == 16 and record["seq_len"] == 64


def test_log_fields_and_a_curve_of_rounds(script, capsys, tmp_path):
    log = tmp_path / "curve.json"
    status, _, err = run(script, capsys, "--data", "names", *RECURRENT, "--max-steps", "5", "--eval-every", "2",
                         "--seed", "3", "--log", log, "--quiet")
    assert status == 0, err
    record = json.loads(log.read_text())
    assert set(record) == {"model", "data", "seed", "batch_size", "seq_len", "embed", "hidden", "heads", "blocks",
                           "lr", "schedule", "warmup", "clip", "dtype", "threads", "val_rows", "numpy", "nnlayers",
                           "date", "curve", "samples"}
    assert (record["seed"], record["batch_size"], record["lr"], record["clip"], record["dtype"]) == \
        (3, 64, 2e-3, 1.0, "float32")
    curve = record["curve"]
    assert [point["step"] for point in curve] == [0, 2, 4, 5]           # rounds of 2, the last one cut to --max-steps
    assert [point["epoch"] for point in curve] == [0, 1, 1, 1]
    assert curve[0]["loss"] is None and curve[0]["seconds"] == 0.0
    assert all(isinstance(point["loss"], float) and point["loss"] > 0 for point in curve[1:])
    seconds = [point["seconds"] for point in curve]
    assert seconds == sorted(seconds) and seconds[-1] > 0
    assert len(record["samples"]) == 1
    assert record["val_rows"] == len(text.load_corpus("names").X_val)


def test_val_limit_evaluates_on_the_first_rows(script, capsys, tmp_path, monkeypatch):
    evaluated = []
    evaluate = nl.Trainer.evaluate

    def spy(self, X, Y, **options):
        evaluated.append((X.copy(), Y.copy()))
        return evaluate(self, X, Y, **options)
    monkeypatch.setattr(nl.Trainer, "evaluate", spy)
    log = tmp_path / "log.json"
    status, out, err = run(script, capsys, "--data", "austen", *RECURRENT, "--val-limit", "10", "--log", log)
    assert status == 0, err
    assert " training rows of 64 characters, 10 validation, 81 symbols" in out
    corpus = text.load_corpus("austen")
    assert len(evaluated) == 3                                          # steps 0, 1 and 2
    for X, Y in evaluated:
        np.testing.assert_array_equal(X, corpus.X_val[:10])
        np.testing.assert_array_equal(Y, corpus.Y_val[:10])
    assert json.loads(log.read_text())["val_rows"] == 10


def test_same_seed_same_run(script, capsys, tmp_path):
    curves = []
    for name in ("a.json", "b.json"):
        status, _, err = run(script, capsys, "--model", "gru", "--data", "names", *RECURRENT, "--log",
                             tmp_path / name, "--quiet")
        assert status == 0, err
        record = json.loads((tmp_path / name).read_text())
        curves.append(([(p["step"], p["loss"], p["val_loss"]) for p in record["curve"]], record["samples"]))
    assert curves[0] == curves[1]


@pytest.mark.parametrize("model, data", [("lstm", "names"), ("gpt", "austen")])
def test_save_then_load_gives_the_same_validation_loss_and_samples(script, capsys, tmp_path, model, data):
    saved, first, second = tmp_path / "model.npz", tmp_path / "first.json", tmp_path / "second.json"
    status, out, err = run(script, capsys, "--model", model, "--data", data, *tiny(model), "--save", saved,
                           "--log", first)
    assert status == 0, err
    assert f"saved the model to {saved}" in out
    loaded = nl.load_model(saved)
    assert loaded[0].num_embeddings == SYMBOLS[data]
    # without --seq-len, a loaded GPT reads windows as long as its context (16 here, not the default 64)
    status, _, err = run(script, capsys, "--load", saved, "--data", data, "--minutes", "0", "--samples", "1",
                         "--sample-length", "20", "--log", second, "--quiet", "--system-malloc")
    assert status == 0, err
    before, after = json.loads(first.read_text()), json.loads(second.read_text())
    assert after["model"] == "loaded" and [p["step"] for p in after["curve"]] == [0]
    assert after["curve"][0]["val_loss"] == before["curve"][-1]["val_loss"]
    assert after["samples"] == before["samples"]                        # the same model and sample seed


def test_load_errors(script, capsys, tmp_path):
    names_model = tmp_path / "names.npz"
    nl.save_model(text.char_model("lstm", 27, embed=4, hidden=8, rng=0), names_model)
    (tmp_path / "notes.txt").write_text("not a model")
    nl.save_model(nl.Sequential(nl.Linear(3, 4)), tmp_path / "linear.npz")
    short_gpt = tmp_path / "gpt.npz"
    nl.save_model(text.gpt(27, context=8, embed=8, heads=2, blocks=1, rng=0), short_gpt)
    austen_gpt = tmp_path / "austen-gpt.npz"
    nl.save_model(text.gpt(81, context=16, embed=8, heads=2, blocks=1, rng=0), austen_gpt)
    for path, data, extra, message in [
            (names_model, "austen", [], "not a character model of the 81 symbols of --data austen"),
            (tmp_path / "notes.txt", "names", [], "is not an .npz archive"),
            (tmp_path / "linear.npz", "names", [], "not a character model of the 27 symbols of --data names"),
            (tmp_path / "missing.npz", "names", [], "No such file or directory"),
            (short_gpt, "names", [], "the longest name, with its markers, 12 is longer than the loaded model's "
                                     "context of 8 characters"),
            (austen_gpt, "austen", ["--seq-len", "32"], "--seq-len 32 is longer than the loaded model's context of "
                                                        "16 characters")]:
        status, out, err = run(script, capsys, "--load", path, "--data", data, "--minutes", "0", "--system-malloc",
                               *extra)
        assert status == 2, (path, out, err)
        assert err.startswith(f"error: --load {path}: ") and message in err, err
        assert "samples" not in out


def test_bad_arguments_exit_2_with_a_message(script, capsys, tmp_path):
    for args, message in [(["--dropout", "1"], "--dropout must be below 1, got 1.0"),
                          (["--model", "transformer"], "argument --model: invalid choice: 'transformer'"),
                          (["--data", "shakespeare"], "argument --data: invalid choice"),
                          (["--seq-len", "0"], "argument --seq-len"),
                          (["--minutes", "-1"], "argument --minutes"),
                          (["--temperature", "0"], "argument --temperature"),
                          (["--plot", tmp_path / "missing-dir" / "file.txt" / "x.png"], "--plot")]:
        if args[0] == "--plot":
            (tmp_path / "missing-dir").mkdir()
            (tmp_path / "missing-dir" / "file.txt").write_text("a file, not a folder")
        with pytest.raises(SystemExit) as raised:
            script.parse_args([str(a) for a in args])
        assert raised.value.code == 2, args
        assert message in capsys.readouterr().err, args


def test_as_a_user_runs_it_quiet_prints_only_the_samples(tmp_path):
    result = run_script("train_text.py", "--model", "rnn", "--data", "names", *RECURRENT, "--samples", "3",
                        "--quiet", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    header, *samples = result.stdout.splitlines()
    assert header == "samples at temperature 0.8:" and len(samples) == 3
    assert all(line.startswith("  ") and set(line.strip()) <= set("abcdefghijklmnopqrstuvwxyz") for line in samples)
    result = run_script("train_text.py", "--model", "gpt", "--data", "austen", *GPT, "--quiet", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("samples at temperature 0.8:\nIt is a truth universally acknowledged")
    assert result.stdout.count("\n") == 3                               # the header, the sample, a blank line
    result = run_script("train_text.py", "--dropout", "1")
    assert result.returncode == 2 and "--dropout must be below 1" in result.stderr


def test_plot_writes_a_png(script, capsys, tmp_path):
    plot = tmp_path / "curve.png"
    status, out, err = run(script, capsys, "--data", "names", *RECURRENT, "--plot", plot)
    assert status == 0, err
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5_000
    assert f"saved {plot}" in out


@pytest.mark.parametrize("model", ["lstm", "gpt"])
def test_export_onnx_runs_in_onnx_runtime(script, capsys, tmp_path, model):
    require(importable("onnx", "onnxruntime"), "onnx and onnxruntime are not installed (pip install -e '.[onnx]')")
    import onnxruntime
    exported, saved = tmp_path / "model.onnx", tmp_path / "model.npz"
    status, out, err = run(script, capsys, "--model", model, "--data", "austen", *tiny(model),
                           "--export-onnx", exported, "--save", saved)
    assert status == 0, err
    assert f"exported to {exported}" in out
    ours = nl.load_model(saved).eval()
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(int64)"
    for T in ((16, 5) if model == "gpt" else (64, 7)):                  # ids of any length (the GPT: ≤ its context)
        ids = np.random.default_rng(T).integers(0, 81, size=(2, T)).astype(np.int64)
        (Z,) = session.run(None, {session.get_inputs()[0].name: ids})
        assert Z.shape == (2, T, 81) and Z.dtype == np.float32
        np.testing.assert_allclose(Z, ours.forward(ids), rtol=1e-4, atol=1e-5)


def test_defaults_by_model_and_corpus(script):
    args = script.parse_args([])
    assert (args.model, args.data, args.minutes, args.batch_size, args.eval_every, args.seq_len, args.embed,
            args.hidden, args.lr, args.schedule, args.warmup, args.samples) == \
        ("lstm", "austen", 5.0, 32, 500, 64, 64, 256, 2e-3, "none", 0, 3)
    args = script.parse_args(["--model", "gpt"])
    assert (args.seq_len, args.embed, args.hidden, args.lr, args.schedule, args.warmup) == \
        (128, 128, None, 1e-3, "cosine", 200)
    args = script.parse_args(["--model", "gpt", "--data", "names", "--seq-len", "40"])
    assert (args.seq_len, args.minutes, args.batch_size, args.eval_every, args.samples) == (12, 1.0, 64, 100, 12)
    args = script.parse_args(["--model", "gru", "--lr", "0.01", "--schedule", "cosine", "--warmup", "3"])
    assert (args.lr, args.schedule, args.warmup) == (0.01, "cosine", 3)


def small_setup(script, argv):
    args = script.parse_args(["--data", "names", "--system-malloc", *argv])
    corpus = text.load_corpus("names")
    model = text.gpt(len(corpus.vocab), context=12, embed=8, heads=2, blocks=1, rng=0)
    optimizer = nl.AdamW(model.parameters(), lr=args.lr)
    return args, corpus, model, optimizer


def test_schedule_over_the_steps_the_minutes_allow(script, monkeypatch):
    monkeypatch.setattr(script, "step_seconds", lambda *a: 0.25)
    args, corpus, model, optimizer = small_setup(script, ["--model", "gpt", "--minutes", "1", "--warmup", "20"])
    schedule = script.make_schedule(args, optimizer, model, None, corpus)
    assert args.max_steps == 240                                         # 60 s / 0.25 s: training ends with the decay
    rates = lrs(schedule, 240)
    assert rates[0] == pytest.approx(1e-5) and rates[20] == pytest.approx(1e-3)     # warm-up from lr/100
    assert rates[130] == pytest.approx((1e-3 + 1e-4) / 2) and rates[240] == pytest.approx(1e-4)   # cosine to lr/10
    args, corpus, model, optimizer = small_setup(script, ["--model", "gpt", "--max-steps", "50", "--warmup", "0"])
    rates = lrs(script.make_schedule(args, optimizer, model, None, corpus), 50)
    assert rates[0] == pytest.approx(1e-3) and rates[50] == pytest.approx(1e-4) and args.max_steps == 50
    args, corpus, model, optimizer = small_setup(script, ["--model", "lstm"])
    assert script.make_schedule(args, optimizer, model, None, corpus) is None
    args, corpus, model, optimizer = small_setup(script, ["--model", "lstm", "--warmup", "4"])
    rates = lrs(script.make_schedule(args, optimizer, model, None, corpus), 6)
    assert rates[0] == pytest.approx(2e-5) and rates[4] == rates[6] == pytest.approx(2e-3)   # warm-up only


def test_step_seconds_leaves_the_model_and_optimizer_as_they_were(script):
    args, corpus, model, optimizer = small_setup(script, ["--model", "gpt", "--batch-size", "8"])
    loss = nl.SoftmaxCrossEntropy(ignore_index=nl.datasets.IGNORE_INDEX)
    trainer = nl.Trainer(model, loss, optimizer)
    trainer.fit(corpus.X[:16], corpus.Y[:16], epochs=1, batch_size=8, progress=False)   # some optimizer state
    weights = {name: p.data.copy() for name, p in model.named_parameters()}
    state = optimizer.state_dict()
    seconds = script.step_seconds(model, loss, optimizer, corpus, args)
    assert 0 < seconds < 5
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.data, weights[name], err_msg=name)
    after = optimizer.state_dict()
    assert after.keys() == state.keys()
    for key in state:
        np.testing.assert_equal(after[key], state[key], err_msg=key)


def test_minutes_end_a_calibrated_run(script, capsys, tmp_path):
    """--minutes with the cosine schedule: the step budget comes from a measured step; training stops at it or
    at the time, whichever comes first."""
    log = tmp_path / "log.json"
    status, _, err = run(script, capsys, "--model", "gpt", "--data", "names", "--blocks", "1", "--embed", "8",
                         "--heads", "2", "--minutes", "0.01", "--eval-every", "20", "--samples", "0", "--log", log,
                         "--quiet", "--system-malloc")
    assert status == 0, err
    curve = json.loads(log.read_text())["curve"]
    assert len(curve) >= 2 and curve[-1]["step"] > 0
    assert curve[-2]["seconds"] < 0.6                                    # no round starts after the time is spent

"""The derivation's XOR network: training converges, and scripts/train_xor.py as a user runs it."""
import re

from tests.helpers import run_script


def test_default_run_converges_and_prints_truth_table(tmp_path):
    plot = tmp_path / "xor.png"
    result = run_script("train_xor.py", "--plot", plot, "--quiet")
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^\s*([01])\s+([01]) \|\s+([01]) \| (\d\.\d{4})$", result.stdout, re.M)
    assert len(rows) == 4
    for x1, x2, target, output in rows:
        assert int(target) == int(x1) ^ int(x2)
        assert abs(float(output) - int(target)) < 0.1
    assert result.stderr == ""                                          # --quiet
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_progress_goes_to_stderr():
    result = run_script("train_xor.py", "--epochs", "50")
    assert "epoch 50/50: loss=" in result.stderr and "loss=" not in result.stdout


def test_not_converged_exits_nonzero():
    result = run_script("train_xor.py", "--epochs", "3", "--quiet")
    assert result.returncode == 1
    assert "not converged" in result.stderr


def test_invalid_argument_exits_2():
    for args in (["--lr", "-1"], ["--lr", "inf"], ["--epochs", "ten"], ["--hidden", "0"], ["--momentum", "1.5"],
                 ["--seed", "-1"]):
        result = run_script("train_xor.py", *args)
        assert result.returncode == 2, args
        assert "error" in result.stderr


def test_plot_destination_is_checked_before_training(tmp_path):
    import time
    (tmp_path / "notes.txt").write_text("x")                  # a file where a folder is needed
    target = tmp_path / "notes.txt" / "xor.png"
    started = time.perf_counter()
    result = run_script("train_xor.py", "--plot", target, "--epochs", "200000")   # would train for minutes
    assert time.perf_counter() - started < 20
    assert result.returncode == 2 and result.stdout == ""
    assert f"--plot {target}: {target.parent} is a file, not a folder" in result.stderr


def test_show_without_a_display_says_so_and_one_epoch_is_singular():
    result = run_script("train_xor.py", "--show", "--epochs", "1", "--quiet")   # the tests run headless (Agg)
    assert "warning: --show:" in result.stderr and "no window will open" in result.stderr
    assert "use --plot FILE" in result.stderr
    assert ", 1 epoch, seed 0" in result.stdout

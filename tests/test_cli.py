"""The scripts' shared argument helpers (nnlayers/cli.py)."""
import argparse
import os

import pytest

from nnlayers import cli


def test_destination_problem_names_what_is_wrong(tmp_path):
    assert cli.destination_problem(tmp_path / "w.npz") is None
    assert cli.destination_problem(tmp_path / "missing" / "deeper" / "w.npz") is None    # created when checked
    assert cli.destination_problem(tmp_path) == f"{tmp_path} is a folder; give a file name"
    plain = tmp_path / "file"
    plain.write_text("x")
    assert cli.destination_problem(plain / "w.npz") == f"{plain} is a file, not a folder"
    assert cli.destination_problem(plain / "sub" / "w.npz") == f"{plain} is a file, not a folder"
    if os.geteuid() != 0:                                 # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert cli.destination_problem(locked / "w.npz") == f"no permission to write in folder {locked}"


def test_check_destinations_stops_with_status_2_naming_the_option_and_path(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="train")
    cli.check_destinations(parser, save=None, plot=tmp_path / "fine.png")     # nothing to say
    with pytest.raises(SystemExit) as stopped:
        cli.check_destinations(parser, save=tmp_path / "fine.npz", recon_out=tmp_path)
    assert stopped.value.code == 2
    assert f"train: error: --recon-out {tmp_path}: {tmp_path} is a folder; give a file name" \
        in capsys.readouterr().err
    assert not (tmp_path / "out").exists()                     # nothing created when one is refused


def test_check_destinations_creates_missing_parent_folders(tmp_path):
    parser = argparse.ArgumentParser(prog="train")
    cli.check_destinations(parser, save=tmp_path / "out" / "cnn.npz", plot=tmp_path / "a" / "b" / "c.png")
    assert (tmp_path / "out").is_dir() and (tmp_path / "a" / "b").is_dir()


@pytest.mark.parametrize("value, text", [(0.1 * 3e-3, "3e-4"), (3e-4, "3e-4"), (0.05, "0.05"), (2e-3, "0.002"),
                                         (1e-3, "0.001"), (0.00030000000000000003, "3e-4"), (1.5e-5, "1.5e-5"),
                                         (5.0, "5"), (12000.0, "1.2e4"), (0.0, "0")])
def test_short_number_rounds_what_logs_print(value, text):
    assert cli.short_number(value) == text


def test_check_show_warns_before_the_run(monkeypatch, capsys):
    from nnlayers import plotting
    assert cli.check_show(False) is False and capsys.readouterr().err == ""
    monkeypatch.setattr(plotting, "can_show", lambda: (False, "no display (DISPLAY is not set)"))
    assert cli.check_show(True, saving=False) is False
    assert capsys.readouterr().err == ("warning: --show: no display (DISPLAY is not set), so no window will open; "
                                       "use --plot FILE to save the figure instead\n")
    monkeypatch.setattr(plotting, "can_show", lambda: (True, ""))
    assert cli.check_show(True) is True and capsys.readouterr().err == ""


def test_plural():
    assert [cli.plural(n, "epoch") for n in (0, 1, 2)] == ["0 epochs", "1 epoch", "2 epochs"]


def test_malloc_option_keeps_freed_memory_unless_system_malloc(monkeypatch):
    from nnlayers import allocator
    calls = []
    monkeypatch.setattr(allocator, "reuse_freed_memory", lambda: calls.append("reuse") or True)
    parser = argparse.ArgumentParser(prog="train")
    cli.add_malloc_option(parser)
    assert cli.apply_malloc_option(parser.parse_args([])) is True and calls == ["reuse"]
    assert cli.apply_malloc_option(parser.parse_args(["--system-malloc"])) is False and calls == ["reuse"]
    assert "--system-malloc" in parser.format_help()

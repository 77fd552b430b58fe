"""The recsys-lab command: help, argument errors and exit codes (no notebook is executed)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from recsys_lab import cli


def recsys_lab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "recsys_lab", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_module_help():
    p = recsys_lab("--help")
    assert p.returncode == 0, p.stderr
    assert "reports" in p.stdout and "datasets" in p.stdout and "exit codes" in p.stdout
    p = recsys_lab("reports", "--help")
    assert p.returncode == 0
    for option in ("--profile", "--only", "--output", "-p KEY VALUE"):
        assert option in p.stdout


def test_console_script_installed():
    script = Path(sys.executable).with_name("recsys-lab")
    if not script.exists():
        pytest.skip("recsys-lab entry point not installed (pip install -e .)")
    p = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "reports" in p.stdout


def test_bad_profile_is_usage_error(tmp_path):
    p = recsys_lab("reports", "--profile", "huge", "--output", tmp_path / "out")
    assert p.returncode == cli.EXIT_USAGE == 2
    assert "invalid choice: 'huge'" in p.stderr and "quick" in p.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_notebook_is_usage_error(tmp_path, make_notebook):
    make_notebook(tmp_path / "nb" / "00_quickstart.ipynb", "x = 1")
    p = recsys_lab("reports", "--notebooks", tmp_path / "nb", "--output", tmp_path / "out",
                   "--only", "99_nope")
    assert p.returncode == 2
    assert "unknown notebook(s) '99_nope'" in p.stderr and "available: 00_quickstart" in p.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["reports", "-p", "TOP_K"],
                                  ["reports", "--only"], ["reports", "--bogus"]])
def test_malformed_arguments(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    assert "usage: recsys-lab" in capsys.readouterr().err


def test_datasets_lists_registry(capsys):
    data = pytest.importorskip("recsys_lab.data")
    if not hasattr(data, "list_datasets"):
        pytest.skip("recsys_lab.data.list_datasets not available")
    assert cli.main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in data.list_datasets():
        assert str(name) in out

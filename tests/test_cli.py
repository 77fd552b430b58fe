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


# ---- the output directory is checked before any notebook runs (issue 14) -------------------------

RAN = "open('ran', 'w').close()"  # cwd is the notebooks folder: a marker that the notebook ran


def assert_usage_error_before_running(p, nb_dir, *messages):
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    for m in messages:
        assert m in p.stderr, p.stderr
    assert not (nb_dir / "ran").exists(), "a notebook ran before the output was checked"


def test_output_that_is_a_file_is_usage_error(tmp_path, make_notebook):
    make_notebook(tmp_path / "nb" / "00_a.ipynb", RAN)
    target = tmp_path / "reports.txt"
    target.write_text("not a directory")
    p = recsys_lab("reports", "--notebooks", tmp_path / "nb", "--output", target)
    assert_usage_error_before_running(p, tmp_path / "nb", f"output {target} is a file")
    assert target.read_text() == "not a directory"
    p = recsys_lab("reports", "--notebooks", tmp_path / "nb", "--output", target / "sub")
    assert_usage_error_before_running(p, tmp_path / "nb", "cannot create the output directory",
                                      "Not a directory")


def test_read_only_output_is_usage_error(tmp_path, make_notebook):
    """A read-only mount (a private mount namespace, so no root is needed and nothing leaks)."""
    make_notebook(tmp_path / "nb" / "00_a.ipynb", RAN)
    ro = tmp_path / "ro"
    ro.mkdir()
    probe = subprocess.run(["unshare", "-r", "-m", "sh", "-c", f"mount -t tmpfs -o ro tmpfs {ro}"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no private read-only mount here: {probe.stderr.strip()}")
    cmd = (f"mount -t tmpfs -o ro tmpfs {ro} && exec {sys.executable} -m recsys_lab reports "
           f"--notebooks {tmp_path / 'nb'} --output {ro / 'reports'}")
    p = subprocess.run(["unshare", "-r", "-m", "sh", "-c", cmd], capture_output=True, text=True,
                       timeout=120)
    assert_usage_error_before_running(p, tmp_path / "nb", "cannot create the output directory",
                                      "Read-only file system")
    cmd = cmd.replace(f"--output {ro / 'reports'}", f"--output {ro}")
    p = subprocess.run(["unshare", "-r", "-m", "sh", "-c", cmd], capture_output=True, text=True,
                       timeout=120)
    assert_usage_error_before_running(p, tmp_path / "nb", f"the output directory {ro} is not "
                                      "writable", "Read-only file system")

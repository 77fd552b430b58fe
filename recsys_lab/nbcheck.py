"""Keep committed notebooks small and checked: only `# NBVAL_CHECK_OUTPUT` cells keep outputs.

    python -m recsys_lab.nbcheck notebooks/00_quickstart.ipynb [...]

executes each notebook with its default parameters (papermill, kernel python3), copies the outputs
of checked cells into the source notebook, strips every other output, execution count and widget
state, and writes the source back atomically. nbval then compares those outputs in CI.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nbformat

from .fileio import atomic_write

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and (
        cell.source.lstrip().startswith(CHECK_MARK)
        or "nbval-check-output" in cell.get("metadata", {}).get("tags", []))


def strip(nb, executed=None):
    """Clear outputs except on checked cells (taken from ``executed`` when given)."""
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("papermill", None)
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if is_checked(cell) and executed is not None:
            cell.outputs = [o for o in executed.cells[i].outputs if o.output_type != "display_data"
                            or "application/vnd.plotly.v1+json" not in o.get("data", {})]
            cell.execution_count = executed.cells[i].execution_count
        elif not is_checked(cell):
            cell.outputs, cell.execution_count = [], None
    return nb


def write_atomic(nb, path: Path):
    atomic_write(path, nbformat.writes(nb) + "\n")


def refresh(path: Path) -> None:
    import papermill as pm
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        pm.execute_notebook(str(path), str(out), kernel_name="python3", cwd=str(path.parent),
                            progress_bar=False)
        executed = nbformat.read(out, as_version=4)
    write_atomic(strip(nb, executed), path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m recsys_lab.nbcheck", description=__doc__.split("\n")[0])
    p.add_argument("notebooks", nargs="+", type=Path)
    p.add_argument("--strip-only", action="store_true", help="only strip unchecked outputs, do not execute")
    args = p.parse_args(argv)
    for path in args.notebooks:
        if not path.exists():
            p.error(f"no such notebook: {path}")
        if args.strip_only:
            write_atomic(strip(nbformat.read(path, as_version=4)), path)
        else:
            refresh(path)
        print(f"{path}: checked outputs stored", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Which notebooks run and with which parameters: all checked before anything runs."""
from __future__ import annotations

import ast
import json
from pathlib import Path

from .result import ReportError

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


def list_notebooks(notebooks_dir="notebooks") -> list[Path]:
    """The report notebooks ``NN_*.ipynb`` of ``notebooks_dir``, sorted by name."""
    d = Path(notebooks_dir)
    if not d.is_dir():
        raise ReportError(f"notebooks directory not found: {d}")
    return sorted(d.glob(NOTEBOOK_GLOB))


def select_notebooks(notebooks: list[Path], only=None) -> list[Path]:
    """Keep the notebooks named in ``only`` (file name or stem), in sorted order."""
    if only is None:
        return list(notebooks)
    only = [only] if isinstance(only, str) else list(only)
    by_name = {**{p.stem: p for p in notebooks}, **{p.name: p for p in notebooks}}
    unknown = [n for n in only if n not in by_name]
    if unknown:
        known = ", ".join(p.stem for p in notebooks) or "(none)"
        raise ReportError(f"unknown notebook(s) {', '.join(map(repr, unknown))}; "
                          f"available: {known}")
    wanted = {by_name[n] for n in only}
    return [p for p in notebooks if p in wanted]


def parse_value(text: str):
    """A ``-p KEY VALUE`` value: a Python literal (``10``, ``0.5``, ``False``), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def notebook_parameters(notebook) -> list[str]:
    """Names assigned in the notebook's cell tagged ``parameters`` (papermill's own parser)."""
    import nbformat
    from papermill.translators import PythonTranslator

    nb = nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            return [p.name for p in PythonTranslator.inspect(cell)]
    return []


def check_parameters(notebooks: list[Path], params: dict) -> None:
    """Raise :class:`ReportError` if a notebook's ``parameters`` cell lacks one of ``params``,
    or a value cannot travel to the worker process (JSON: numbers, strings, lists, dicts)."""
    for key, value in params.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ReportError(f"parameter {key}={value!r} is not a number, string, bool, None, "
                              "list or dict") from None
    problems = []
    for nb in notebooks:
        declared = notebook_parameters(nb)
        unknown = sorted(set(params) - set(declared))
        if unknown:
            problems.append(f"{nb.stem} has no parameter(s) {', '.join(unknown)} "
                            f"(declared: {', '.join(declared) or 'none'})")
    if problems:
        raise ReportError("unknown parameter(s): " + "; ".join(problems))

"""Shared fixtures. Keep this small: helpers used by one file belong in that file."""
from __future__ import annotations

from pathlib import Path

import pytest

PARAMETERS = 'PROFILE = "quick"\nINTERACTIVE = False'


@pytest.fixture(scope="session")
def make_notebook():
    """``make_notebook(path, *code, parameters=PARAMETERS, title="Test")`` writes an .ipynb.

    Cells: 0 = markdown title, 1 = the code cell tagged ``parameters``, 2.. = ``code``.
    """
    import nbformat

    def make(path, *code, parameters=PARAMETERS, title="Test"):
        v4 = nbformat.v4
        cells = [v4.new_markdown_cell(f"# {title}"),
                 v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                 *(v4.new_code_cell(src) for src in code)]
        nb = v4.new_notebook(cells=cells, metadata={"kernelspec": {
            "name": "python3", "display_name": "Python 3", "language": "python"}})
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
        return Path(path)

    return make

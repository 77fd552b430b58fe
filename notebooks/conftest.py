"""nbval runs each notebook here; these hooks check what it already produced, at no extra run.

- every plotly figure a cell shows must have axes that fit its data
  (:func:`recsys_lab.viz.checks.axis_problems`): the cell fails otherwise;
- after each notebook's last cell, an extra item ``recorded numbers`` compares what the notebook
  ``record()``ed with ``tests/expected_records.json`` (:mod:`recsys_lab.reports.expected`);
  ``--refresh-recorded`` rewrites that notebook's entry instead.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

EXPECTED = Path(__file__).resolve().parents[1] / "tests" / "expected_records.json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def pytest_addoption(parser):
    parser.addoption("--refresh-recorded", action="store_true",
                     help=f"write the recorded numbers of the notebooks run into {EXPECTED.name}")


def _is_nbval_cell(item) -> bool:
    return type(item).__name__ == "IPyNbCell"


class RecordedNumbers(pytest.Item):
    """The record() values of one notebook against their committed expected values."""

    def __init__(self, *, cells, **kwargs):
        super().__init__(**kwargs)
        self.cells = cells

    def runtest(self):
        from recsys_lab.reports.expected import compare, load, refresh
        from recsys_lab.reports.records import records_in

        code_cells = sum(c.cell_type == "code" for c in self.parent.nb.cells)
        if len(self.cells) < code_cells:
            pytest.skip(f"{len(self.cells)} of {code_cells} cells selected: numbers not checked")
        states = {c.name: getattr(c, "_nbval_state", None) for c in self.cells}
        unfinished = [n for n, s in states.items() if s not in ("passed", "ran", "skipped")]
        if unfinished:
            pytest.skip(f"{unfinished[0]} did not run through: numbers not checked (the cell's "
                        "own report says why)")
        records = records_in(o for c in self.cells for o in (c.test_outputs or []))
        name = Path(str(self.path)).stem
        if self.config.getoption("refresh_recorded"):
            entry = refresh(EXPECTED, name, records)
            print(f"{name}: {len(entry)} expected values written to {EXPECTED}")
            return
        problems = compare(name, records, load(EXPECTED), path=EXPECTED.name)
        if problems:
            raise AssertionError("\n".join(problems))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, AssertionError):
            return str(excinfo.value)  # the list of departures, without pytest's own frames
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{Path(str(self.path)).name}::recorded numbers"


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: a partial notebook is not checked
def pytest_collection_modifyitems(session, config, items):
    """Append one ``recorded numbers`` item after the last cell of every notebook."""
    by_file: dict = {}
    for item in items:
        if _is_nbval_cell(item):
            by_file.setdefault(item.parent, []).append(item)
    for nb, cells in by_file.items():
        check = RecordedNumbers.from_parent(nb, name="recorded numbers", cells=cells)
        items.insert(items.index(cells[-1]) + 1, check)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fail a cell whose plotly figures have an axis that does not fit the data."""
    try:
        result = yield
    except pytest.skip.Exception:
        item._nbval_state = "skipped"
        raise
    except BaseException:
        outs = getattr(item, "test_outputs", None)
        # a cell whose checked output differs still ran: its record() values count
        executed = outs is not None and not any(o.get("output_type") == "error" for o in outs)
        item._nbval_state = "ran" if executed else "failed"
        raise
    if _is_nbval_cell(item):
        from recsys_lab.viz.checks import axis_problems

        problems = []
        for out in item.test_outputs or []:
            fig = (out.get("data") or {}).get(PLOTLY_MIME)
            if fig is not None:
                fig = json.loads(fig) if isinstance(fig, str) else fig
                title = ((fig.get("layout") or {}).get("title") or {})
                title = title.get("text", "") if isinstance(title, dict) else str(title)
                problems += [f"figure {title!r}: {p}" for p in axis_problems(fig)]
        if problems:
            item._nbval_state = "ran"
            item.raise_cell_error("plotly axes that do not fit their data",  # nbval's report
                                  "\n".join(problems))
    item._nbval_state = "passed"
    return result

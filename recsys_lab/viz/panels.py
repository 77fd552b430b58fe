"""Interactive panels: a figure (and a table) rebuilt from a frame whenever a control moves.

    viz.panel({"y": viz.dropdown(["ndcg@10", "recall@10"], description="accuracy")},
              figure=lambda y: viz.latency_accuracy(sweep, y=y, front=True),
              table=lambda y: sweep[["model", y]], interactive=INTERACTIVE)

``figure`` and ``table`` are called with one keyword per control. In JupyterLab
(``interactive=True``) each control becomes an ipywidget; a change (or the button, with
``manual=True``, for callbacks that fit a model) rebuilds the figure into one FigureWidget and
refreshes the table below it. Widgets render blank in static HTML, so reports run with
``interactive=False``: the panel then draws the figure and the table once at the controls'
defaults, or with ``static=False`` only says which controls JupyterLab would show (when the
notebook has already shown that view above).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KINDS = ("dropdown", "toggle", "slider", "log_slider", "text")


@dataclass(frozen=True)
class Control:
    """One control of a panel: its kind, default value and options or range."""

    kind: str
    value: Any
    options: tuple = ()
    min: float | None = None
    max: float | None = None
    step: float | None = None
    description: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown control kind {self.kind!r}; one of {KINDS}")
        if self.kind in ("dropdown", "toggle") and self.value not in self.options:
            raise ValueError(f"default {self.value!r} is not among the options {list(self.options)}")
        if self.kind in ("slider", "log_slider") and not (self.min <= self.value <= self.max):
            raise ValueError(f"default {self.value!r} is outside [{self.min}, {self.max}]")
        if self.kind == "log_slider" and self.min <= 0:
            raise ValueError(f"a log slider needs a positive minimum, got {self.min!r}")

    def widget(self, name: str):
        """The ipywidget of this control (ipywidgets is imported only here)."""
        import ipywidgets as w

        label = self.description or name
        if self.kind == "dropdown":
            return w.Dropdown(options=list(self.options), value=self.value, description=label)
        if self.kind == "toggle":
            return w.ToggleButtons(options=list(self.options), value=self.value, description=label)
        if self.kind == "text":
            return w.Text(value=self.value, description=label)
        if self.kind == "log_slider":
            return w.FloatLogSlider(value=self.value, base=10, min=math.log10(self.min),
                                    max=math.log10(self.max), description=label)
        whole = all(float(v).is_integer() for v in (self.min, self.max, self.value, self.step))
        cls = w.IntSlider if whole else w.FloatSlider
        cast = int if whole else float
        return cls(value=cast(self.value), min=cast(self.min), max=cast(self.max), step=cast(self.step),
                   description=label)


def dropdown(options: Sequence, value=None, description: str | None = None) -> Control:
    """Pick one of ``options`` (default: the first)."""
    options = tuple(options)
    if not options:
        raise ValueError("a dropdown needs at least one option")
    return Control("dropdown", options[0] if value is None else value, options, description=description)


def toggle(options: Sequence, value=None, description: str | None = None) -> Control:
    """Toggle buttons over a few ``options`` (default: the first)."""
    options = tuple(options)
    if not options:
        raise ValueError("toggle buttons need at least one option")
    return Control("toggle", options[0] if value is None else value, options, description=description)


def slider(min: float, max: float, value: float, step: float = 1, description: str | None = None) -> Control:
    """A number in ``[min, max]`` by ``step`` (whole numbers give an integer slider)."""
    return Control("slider", value, min=min, max=max, step=step, description=description)


def log_slider(min: float, max: float, value: float, description: str | None = None) -> Control:
    """A positive number in ``[min, max]`` on a log scale (e.g. events per second)."""
    return Control("log_slider", value, min=min, max=max, description=description)


def text(value: str, description: str | None = None) -> Control:
    """Free text (e.g. a comma-separated vector)."""
    return Control("text", str(value), description=description)


def _controls(controls: Mapping[str, Control | Sequence]) -> dict[str, Control]:
    if not isinstance(controls, Mapping) or not controls:
        raise ValueError("a panel needs a dict {name: control} with at least one control")
    out = {}
    for name, c in controls.items():
        if isinstance(c, Control):
            out[name] = c
        elif isinstance(c, Sequence) and not isinstance(c, str):
            out[name] = dropdown(c)  # a plain list of options
        else:
            raise TypeError(f"control {name!r} must be a viz control (dropdown, slider, ...) or a "
                            f"list of options, got {type(c).__name__}")
    return out


def _show_table(value) -> None:
    from IPython.display import display

    if value is None:
        return
    if isinstance(value, str):
        print(value)
    else:
        display(value)


class Panel:
    """A figure and/or a table as functions of named controls (see the module docstring)."""

    def __init__(self, controls: Mapping[str, Control | Sequence], figure: Callable | None = None,
                 table: Callable | None = None, manual: bool | str = False):
        self.controls = _controls(controls)
        if figure is None and table is None:
            raise ValueError("a panel needs a figure or a table function")
        for name, fn in (("figure", figure), ("table", table)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be a function of the controls, got {type(fn).__name__}")
        self.figure, self.table, self.manual = figure, table, manual
        self.figure_widget = self.widgets = None

    @property
    def defaults(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def build(self, **values):
        """(figure, table) at these control values (None for what the panel does not have)."""
        return (None if self.figure is None else self.figure(**values),
                None if self.table is None else self.table(**values))

    def static(self):
        """(figure, table) at the controls' defaults: what a static report shows."""
        return self.build(**self.defaults)

    def widget(self):
        """The live panel: the controls (and the button), one FigureWidget, the table output."""
        import ipywidgets as w
        import plotly.graph_objects as go

        self.widgets = {name: c.widget(name) for name, c in self.controls.items()}
        first, first_table = self.build(**self.defaults)
        self.figure_widget = None if first is None else go.FigureWidget(first)
        out = w.Output()

        def refresh(_change=None):
            fig, tab = self.build(**{name: wd.value for name, wd in self.widgets.items()})
            if fig is not None:
                with self.figure_widget.batch_update():
                    self.figure_widget.data = []
                    self.figure_widget.add_traces(fig.data)
                    self.figure_widget.layout = fig.layout
            out.clear_output(wait=True)
            with out:
                _show_table(tab)

        row = list(self.widgets.values())
        if self.manual:
            button = w.Button(description=self.manual if isinstance(self.manual, str) else "run")
            button.on_click(refresh)
            row.append(button)
        else:
            for wd in self.widgets.values():
                wd.observe(refresh, names="value")
        with out:
            _show_table(first_table)
        self.refresh = refresh
        return w.VBox([w.HBox(row), *([self.figure_widget] if self.figure_widget is not None else []), out])

    def show(self, interactive: bool, static: bool = True) -> None:
        """Display the live panel, or its static view (``static=False``: a one-line note)."""
        from IPython.display import display

        if interactive:
            display(self.widget())
        elif static:
            fig, tab = self.static()
            if fig is not None:
                fig.show()
            _show_table(tab)
        else:
            print(f"static report: set INTERACTIVE = True in JupyterLab for the controls "
                  f"({', '.join(c.description or n for n, c in self.controls.items())})")


def panel(controls: Mapping[str, Control | Sequence], figure: Callable | None = None,
          table: Callable | None = None, *, interactive: bool, manual: bool | str = False,
          static: bool = True) -> None:
    """Build a :class:`Panel` and show it: live when ``interactive``, else its static view."""
    Panel(controls, figure=figure, table=table, manual=manual).show(interactive, static=static)

"""The package's layers, checked on the source: what may import what (ARCHITECTURE.md's rules).

    data <- similarity, ties, metrics <- models <- accel <- experiments / notebooks / benchmarks
    eval takes any Recommender by its contract: it imports models' argument checks, never accel.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "recsys_lab"


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module a file imports (relative imports resolved)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level + (path.name == "__init__.py")]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            out.add(name)
            out |= {f"{name}.{a.name}" for a in node.names}
    return out


def files(sub: str):
    return sorted((PACKAGE / sub).rglob("*.py"))


@pytest.mark.parametrize("path", files("models"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_models_never_import_eval_accel_viz_or_reports(path):
    bad = {m for m in imported_modules(path)
           if m.startswith(("recsys_lab.eval", "recsys_lab.accel", "recsys_lab.viz", "recsys_lab.reports",
                            "recsys_lab.experiments"))}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", files("eval"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_eval_never_imports_accel(path):
    bad = {m for m in imported_modules(path) if m.startswith("recsys_lab.accel")}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", files("accel"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_accel_never_imports_the_sweep(path):
    bad = {m for m in imported_modules(path) if m.startswith("recsys_lab.eval.sweep")}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_metrics_kernel_sits_below_models():
    assert not {m for m in imported_modules(PACKAGE / "metrics.py") if m.startswith("recsys_lab")}


def test_importing_models_loads_no_eval():
    import subprocess
    import sys
    code = ("import sys, recsys_lab.models, recsys_lab.models.sequential; "
            "bad = [m for m in sys.modules if m.startswith(('recsys_lab.eval', 'recsys_lab.accel'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent)

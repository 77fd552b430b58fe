"""The notebooks themselves: committed small, parameterised, and nbval's checks really bite."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHECK = "# NBVAL_CHECK_OUTPUT"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_parameterised_small_and_checked(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged `parameters`"
    src = "".join(params[0]["source"])
    for name in ("PROFILE", "SEED", "INTERACTIVE"):
        assert re.search(rf"^{name}\s*=", src, re.M), f"parameters cell lacks {name}"
    assert "widgets" not in nb.get("metadata", {}), "widget state must be stripped"
    assert path.stat().st_size < 300_000
    checked = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).startswith(CHECK)]
    assert checked and all(c["outputs"] for c in checked), "checked cells must carry their outputs"
    unchecked = [c for c in cells if c["cell_type"] == "code" and c not in checked]
    assert not any(c["outputs"] for c in unchecked), "only checked cells keep outputs"


def test_editing_a_checked_number_fails_nbval(tmp_path):
    src = NOTEBOOKS[0]
    nb = json.loads(src.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if "".join(cell.get("source", "")).startswith(CHECK):
            for out in cell["outputs"]:
                text = "".join(out.get("text", ""))
                m = re.search(r"\d+\.\d+", text)
                if m:
                    edited = text[:m.start()] + str(float(m.group()) + 1) + text[m.end():]
                    out["text"] = edited
                    break
            else:
                continue
            break
    else:
        pytest.fail("no checked number found to edit")
    root = src.parents[1]

    def nbval(path):
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
               "--nbval-current-env", "--nbval-sanitize-with", str(root / "notebooks" / "sanitize.cfg"),
               "--rootdir", str(path.parent), "-o", "addopts=", str(path)]
        return subprocess.run(cmd, cwd=root / "notebooks", capture_output=True, text=True, timeout=600)

    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    good, bad = tmp_path / "good" / src.name, tmp_path / "bad" / src.name
    good.write_bytes(src.read_bytes())
    bad.write_text(json.dumps(nb), encoding="utf-8")
    control = nbval(good)
    assert control.returncode == 0, control.stdout[-2000:]     # the untouched copy passes ...
    run = nbval(bad)
    assert run.returncode == 1, run.stdout[-2000:]             # ... the edited one does not
    assert "1 failed" in run.stdout

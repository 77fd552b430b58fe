"""Offline HTML of an executed notebook: no CDN scripts, plotly.js inline, LaTeX as MathML."""
from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
HTML_TEMPLATE = "recsys_lab_html"  # templates/recsys_lab_html: lab/index.html.j2 minus CDN scripts

# <script src="http..."></script> in outputs, e.g. the MathJax CDN tag plotly adds to every figure
_CDN_SCRIPT = re.compile(r"""<script\b[^>]*\bsrc=["']?(?:https?:)?//[^>]*>\s*</script>""", re.I)

# LaTeX in markdown: $$display$$ and $inline$ (pandoc's rule: no space inside the delimiters,
# no digit after the closing $); fenced code and `code spans` are left alone.
_CODE = re.compile(r"(```.*?```|~~~.*?~~~|`[^`\n]*`)", re.S)
_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?=\S)([^$\n]+?)(?<=\S)\$(?!\d)", re.S)
_MD_SPECIAL = str.maketrans({c: f"&#{ord(c)};" for c in "*_\\`|$~[]"})


def math_to_mathml(markdown: str) -> str:
    """Replace LaTeX math in markdown by MathML, which browsers draw with no script or network.

    Uses ``latex2mathml`` when installed (else returns ``markdown`` unchanged); an expression
    it cannot convert stays as LaTeX source.
    """
    try:
        from latex2mathml.converter import convert
    except ImportError:
        return markdown

    def one(m):
        display = m.group(1) is not None
        try:
            mathml = convert((m.group(1) if display else m.group(2)).strip(),
                             display="block" if display else "inline")
        except Exception:
            return m.group(0)
        # markdown must not re-read the text nodes (x_i, a*b, |T_u|) as emphasis or tables
        return re.sub(r">([^<]+)<", lambda t: ">" + t.group(1).translate(_MD_SPECIAL) + "<",
                      mathml)

    parts = _CODE.split(markdown)  # odd indices are code
    return "".join(p if i % 2 else _MATH.sub(one, p) for i, p in enumerate(parts))


def export_html(executed_nb_path, title: str | None = None) -> str:
    """Self-contained HTML of an executed notebook: no CDN scripts, plotly.js inline.

    The template drops nbconvert's require.js/MathJax/mermaid tags; CDN ``<script src>`` tags
    inside outputs (plotly's MathJax for LaTeX axis labels) are removed too, as offline they
    cannot load. LaTeX in markdown becomes MathML (:func:`math_to_mathml`).
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed_nb_path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = math_to_mathml(cell.source)
        for out in cell.get("outputs", []):
            if isinstance(out.get("data", {}).get("text/html"), str):
                out["data"]["text/html"] = _CDN_SCRIPT.sub("", out["data"]["text/html"])
    exporter = HTMLExporter(template_name=HTML_TEMPLATE, extra_template_basedirs=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": title or Path(executed_nb_path).stem}})
    return body

"""One self-contained HTML page of a result folder (``sgdnoise report DIR``).

Figures are embedded as base64 PNG; tables give the measured values against
each prediction with standard errors and z-scores (for ``linear``, the
``theory.comparison`` block: z = (predicted - measured) / s.e. of the measured
trace, docs/theory.md §3), then the config and the versions.  Nothing is
fetched from elsewhere, so the page opens anywhere.
"""
from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;"
         "text-align:right}th{background:#eee}img{max-width:100%;border:1px solid #ddd}"
         "td.l,th.l{text-align:left}")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value)
        return text if len(text) < 80 else text[:77] + "..."
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], caption: str, name: str) -> str:
    """An HTML table (``data-table`` = ``name``), first column left-aligned."""
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{html.escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i == 0 else ""}">{html.escape(_fmt(v))}</td>'
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return (f'<table data-table="{html.escape(name)}"><caption>{html.escape(caption)}</caption>'
            f"<tr>{head}</tr>{body}</table>")


def image(png: bytes, alt: str) -> str:
    """An ``<img>`` holding ``png`` as a data URI."""
    data = base64.b64encode(png).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>' \
           f"{html.escape(alt)}</figcaption></figure>"


def page(title: str, sections: Sequence[str]) -> str:
    """A complete HTML document."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>\n")


def comparison_rows(summary: dict[str, Any]) -> list[list[Any]]:
    """Rows (method, exact here, measured tr, s.e., predicted tr, rel. error, z, max |z|) of a linear summary."""
    theory, measured = summary.get("theory", {}), summary.get("measured", {})
    trace, stderr = measured.get("var_theta_trace"), measured.get("var_theta_trace_stderr")
    if trace is None and measured.get("var_theta"):
        trace = sum(v for v in measured["var_theta"] if v is not None)
    rows = []
    for method, c in theory.get("comparison", {}).items():
        predicted = theory.get(method, {}).get("trace") if isinstance(theory.get(method), dict) else None
        rows.append([method, c.get("exact_here"), trace, stderr, predicted, c.get("trace_relative_error"),
                     c.get("trace_z"), c.get("max_abs_z")])
    return rows


COMPARISON_HEADERS = ("method", "exact here", "measured tr Var θ", "s.e.", "predicted tr Var θ",
                      "rel. error", "z", "max |z| (dirs)")


def folder_sections(folder: Path, summary: dict[str, Any], level: int = 2) -> list[str]:
    """Figures, the comparison tables, config and versions of one result folder (and its subfolders)."""
    h = f"h{level}"
    sections = [f"<{h}>{html.escape(folder.name)}: {html.escape(str(summary.get('status', '')))}</{h}>"]
    for png in sorted(folder.glob("*.png")):
        sections.append(image(png.read_bytes(), f"{folder.name}/{png.name}: "
                              f"{summary.get('files', {}).get(png.name, '')}"))
    rows = comparison_rows(summary)
    if rows:
        sections.append(table(COMPARISON_HEADERS, rows, "theory vs measurement "
                              f"({summary.get('theory', {}).get('note', '')})", f"comparison:{folder.name}"))
    config = summary.get("config", {})
    settings = config.get("settings") or {k: v for k, v in config.items() if not isinstance(v, dict)}
    if settings:
        sections.append(table(("key", "value"), sorted(settings.items()), "config", f"config:{folder.name}"))
    if summary.get("provenance"):
        sections.append(table(("what", "version"), sorted(summary["provenance"].items()), "versions",
                              f"versions:{folder.name}"))
    for sub in summary.get("runs", {}).values():
        path = folder / sub
        if path.is_file():
            sections += folder_sections(path.parent, json.loads(path.read_text()), level + 1)
    return sections


def result_page(folder: str | Path) -> str:
    """The page of one result folder (any experiment: ``summary.json`` and its figures)."""
    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text())
    name = summary.get("config", {}).get("experiment", "result")
    return page(f"sgdnoise {name}: {folder}", folder_sections(folder, summary))

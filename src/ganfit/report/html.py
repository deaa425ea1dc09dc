"""Small HTML building blocks shared by the report pages: escaping, number formatting, the page skeleton, and
atomic writes. Pages are static files that open from ``file://`` (no server, no network)."""

from __future__ import annotations

import html
import math
import os
import tempfile
from pathlib import Path
from typing import Any

STYLE = """
:root { --bg: #f4f5f7; --card: #fff; --ink: #1d2127; --muted: #5d6673; --bad: #b3261e; --ok: #1e7b34; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg);
       color: var(--ink); }
header.page { padding: 18px 24px 8px; }
header.page h1 { margin: 0 0 4px; font-size: 22px; }
header.page p { margin: 2px 0; color: var(--muted); }
main { padding: 8px 24px 32px; }
.card { background: var(--card); border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.12); margin: 0 0 18px;
        padding: 14px 16px; }
.card h2 { margin: 0 0 2px; font-size: 17px; }
.card .source { color: var(--muted); font-size: 12px; word-break: break-all; margin: 0 0 10px; }
.card.failed { border-left: 5px solid var(--bad); }
.card .reason { color: var(--bad); font-family: ui-monospace, monospace; white-space: pre-wrap; }
.badge { display: inline-block; font-size: 11px; padding: 1px 7px; border-radius: 9px; margin-left: 6px;
         vertical-align: 2px; background: #e3e6ea; color: var(--muted); }
.badge.failed { background: #f9dedc; color: var(--bad); }
.badge.fitted { background: #d8f0dc; color: var(--ok); }
.body { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.body > .details { flex: 1 1 420px; min-width: 0; }
.ganfit-viewer { position: relative; width: 360px; height: 360px; background: #2b2f36; border-radius: 6px;
                 overflow: hidden; flex: none; }
.ganfit-viewer canvas { display: block; }
.ganfit-viewer:not([data-viewer-state="ready"])::before { content: "3D view loading…"; color: #aab; position: absolute;
                 top: 45%; width: 100%; text-align: center; }
.ganfit-viewer[data-viewer-state="error"]::before { content: ""; }
.ganfit-viewer-bar { position: absolute; left: 8px; bottom: 8px; display: flex; gap: 6px; }
.ganfit-viewer-bar button { font: 12px system-ui, sans-serif; padding: 3px 9px; border: 0; border-radius: 4px;
                 background: rgba(255,255,255,.85); cursor: pointer; }
.ganfit-viewer-error { color: #f4b4ae; padding: 12px; }
.thumbs { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; text-align: center; }
figure img { height: 170px; max-width: 260px; object-fit: contain; background: #eceef1; border-radius: 4px;
             display: block; }
figcaption { font-size: 12px; color: var(--muted); }
table.metrics { border-collapse: collapse; font-size: 13px; }
table.metrics td { padding: 1px 10px 1px 0; }
table.metrics td.value { font-variant-numeric: tabular-nums; text-align: right; }
.files { font-size: 12px; margin-top: 6px; }
.files a { margin-right: 8px; }
table.results { border-collapse: collapse; background: var(--card); font-size: 13px; }
table.results th, table.results td { padding: 4px 10px; border-bottom: 1px solid #e3e6ea; text-align: left;
                                     vertical-align: middle; }
table.results td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.results img { height: 72px; display: block; }
table.results tr.failed td { color: var(--bad); }
.sheet { display: grid; grid-template-columns: repeat(auto-fill, minmax(var(--tile, 160px), 1fr)); gap: 10px; }
.sheet figure img { width: 100%; height: auto; max-width: none; }
"""


def esc(value: Any) -> str:
    """HTML-escaped text of ``value``."""
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """A metric value for display: floats with 4 significant digits, others as text."""
    if isinstance(value, bool) or value is None:
        return esc(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return esc(value)
        return f"{value:.4g}"
    return esc(value)


def href(path: Path, base: Path) -> str:
    """A relative URL from folder ``base`` to ``path`` (forward slashes, percent-escaped)."""
    from urllib.parse import quote

    relative = os.path.relpath(Path(path).resolve(), Path(base).resolve())
    return quote(relative.replace(os.sep, "/"))


def page(title: str, body: str, head: str = "", subtitle: str = "") -> str:
    """A complete HTML document with the shared style."""
    sub = f"<p>{subtitle}</p>" if subtitle else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n{head}</head>\n<body>\n"
        f'<header class="page"><h1>{esc(title)}</h1>{sub}</header>\n<main>\n{body}\n</main>\n</body>\n</html>\n'
    )


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder (readers never see half a page)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

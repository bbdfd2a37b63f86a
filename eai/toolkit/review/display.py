"""The two HTML panels of a task: the kinematic evidence and the drafts, every value escaped.

Label Studio shows these through <HyperText inline>, i.e. as HTML in the page, and part of the
content is model text (the drafted explanation, phrases quoted by the faithfulness check) or
comes from users' files (clip ids). Everything is passed through html.escape, so a draft that
contains <script> or an onerror attribute shows as text and never runs.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from eai.toolkit.descriptors import DESCRIPTORS

_ORDER = {d.name: i for i, d in enumerate(DESCRIPTORS)}
_DOC = {d.name: d.doc for d in DESCRIPTORS}
_LEVEL_STYLE = {"high": "color:#b3261e;font-weight:600", "low": "color:#0b57d0;font-weight:600"}
_CELL = "padding:1px 6px;border-bottom:1px solid #eee"


def e(value: Any) -> str:
    """Escaped text of any value (quotes too: the result may end up in an attribute)."""
    return escape("" if value is None else str(value), quote=True)


def number(value: float | None) -> str:
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "n/a"
    return f"{value:.3g}"


def evidence_rows(evidence: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Unusual values (low/high) first, then typical, then unknown; descriptor order within."""
    rank = {"high": 0, "low": 0, "typical": 1}
    return sorted(evidence.items(), key=lambda kv: (rank.get((kv[1] or {}).get("level"), 2),
                                                    _ORDER.get(kv[0], len(_ORDER)), kv[0]))


def evidence_html(evidence: dict[str, dict[str, Any]], contradicted: set[str] = frozenset()
                  ) -> str:
    """A table descriptor | value | unit | level; rows a draft contradicts are highlighted."""
    if not evidence:
        return "<p><i>No kinematic evidence in the draft.</i></p>"
    rows = []
    for name, ev in evidence_rows(evidence):
        ev = ev or {}
        level = ev.get("level")
        bg = "background:#fde7e9;" if name in contradicted else ""
        mark = " &#9888;" if name in contradicted else ""
        rows.append(
            f'<tr style="{bg}" data-descriptor="{e(name)}">'
            f'<td style="{_CELL}" title="{e(_DOC.get(name, ""))}">{e(name)}{mark}</td>'
            f'<td style="{_CELL};text-align:right">{e(number(ev.get("value")))}</td>'
            f'<td style="{_CELL}">{e(ev.get("unit", ""))}</td>'
            f'<td style="{_CELL};{_LEVEL_STYLE.get(level, "")}">{e(level or "")}</td></tr>')
    head = "".join(f'<th style="{_CELL};text-align:left">{h}</th>'
                   for h in ("descriptor", "value", "unit", "level"))
    return (f'<table class="eai-evidence" style="border-collapse:collapse;font-size:12px">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _contradiction(c: dict[str, Any]) -> str:
    return (f"<li>&#8220;{e(c.get('phrase'))}&#8221; claims <b>{e(c.get('claimed'))}</b> "
            f"{e(c.get('descriptor'))}, measured <b>{e(c.get('measured'))}</b></li>")


def draft_html(summaries: list[dict[str, Any]]) -> str:
    """One block per model version (newest first): label, confidence, classifier, the
    faithfulness check and the original drafted text, for reviewers to compare with."""
    blocks = []
    for s in summaries:
        conf = "" if s.get("confidence") is None else f" ({s['confidence']:.2f})"
        label = e(s.get("emotion") or "no label") + e(conf)
        parts = [f"<b>{e(s.get('model_version'))}</b>: {label}"]
        cls = s.get("classifier") or {}
        if cls.get("emotion"):
            agree = "agrees" if cls["emotion"] == s.get("emotion") else "DISAGREES"
            parts.append(f"classifier {e(cls['emotion'])} ({number(cls.get('confidence'))}), "
                         f"{agree}")
        checked = s.get("faithfulness_checked")
        if checked is not None:
            n = len(s.get("contradictions") or [])
            parts.append(f"faithfulness: {n} contradiction(s) in {e(checked)} claim(s)")
        items = "".join(_contradiction(c) for c in s.get("contradictions") or [])
        warn = "".join(f"<li>{e(w)}</li>" for w in s.get("warnings") or [])
        items = f"<ul>{items}</ul>" if items else ""
        warn = f'<ul style="color:#8a5a00">{warn}</ul>' if warn else ""
        blocks.append(
            f'<div class="eai-draft" style="margin:4px 0;padding:4px 8px;'
            f'border-left:3px solid #999;font-size:12px">{" &middot; ".join(parts)}{items}{warn}'
            f'<div>Original text: <span class="eai-original">{e(s.get("explanation"))}</span>'
            f"</div></div>")
    return "".join(blocks) or "<p><i>No drafts.</i></p>"

"""The run's front page: index.html at the run root, for people who never open a notebook.

It shows the headline figures of reports/summary.json (when stage 08 ran), each stage's status
and seconds, and links to the PDF, the workbook, every plot and every executed notebook's HTML.
Links are relative to the run root, so the page works wherever the run folder is copied or
downloaded from S3; the page needs no network (inline CSS, no scripts). Every text that comes
from data or params (run id, server names, errors) is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from capacity_forecaster.core import catalog
from capacity_forecaster.core.vocabulary import AT_RISK_LEVELS, RISK_LEVELS
from capacity_forecaster.reporting.headline import outlook_line
from capacity_forecaster.reporting.style import RISK_LEVEL_COLOURS
from capacity_forecaster.reporting.text import (
    MISSING,
    breach_when,
    format_number,
    format_value,
    html_safe,
    reclamation_line,
    stem_label,
    trust_legend,
)

DATA_WARNINGS_SHOWN = 10  # the rest are in validated/quality.json

# (key, label) of the reports a reader wants first, in the order they are shown.
_REPORTS = (
    (catalog.PDF_REPORT.key, "Summary (PDF)"),
    (catalog.WORKBOOK.key, "Details workbook (Excel)"),
    (catalog.HEADLINE.key, "Headline figures (JSON)"),
    (catalog.MANIFEST.key, "Run manifest (JSON)"),
)

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 60rem; color: #1f2933; line-height: 1.45; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #d9e2ec; }
.sub { color: #52606d; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8rem; }
.card { border: 1px solid #d9e2ec; border-radius: 6px; padding: 0.7rem 1rem; min-width: 9rem; }
.card .v { font-size: 1.6rem; font-weight: 600; } .card .k { color: #52606d; font-size: 0.85rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.92rem; }
th, td { text-align: left; padding: 0.3rem 0.6rem; border-bottom: 1px solid #e4e7eb; }
th { background: #f0f4f8; }
.status-succeeded { color: #027a48; } .status-failed { color: #b42318; font-weight: 600; }
.status-not_run, .status-skipped { color: #7b8794; } .status-outdated { color: #b54708; }
""" + "".join(f".{level} {{ color: {RISK_LEVEL_COLOURS[level][1]}; }} " for level in RISK_LEVELS)


_e = html_safe


def _link(key: str, label: str) -> str:
    # Keys are run-relative POSIX paths; quote what a file name could carry into an attribute.
    return f'<a href="{_e(key)}">{_e(label)}</a>'


def _figure(value: Any, kind: str = "int") -> str:
    """A figure of summary.json formatted by its ``text.COLUMN_KINDS`` kind, escaped."""
    return _e(format_value(value, kind))


def _card(value: str, label: str, css: str = "") -> str:
    return f'<div class="card"><div class="v {css}">{value}</div><div class="k">{_e(label)}</div></div>'


def _headline_section(headline: Mapping[str, Any]) -> list[str]:
    fleet = headline.get("fleet") or {}
    risk = headline.get("risk") or {}
    levels = risk.get("servers_by_level") or {}
    accuracy = headline.get("accuracy") or {}
    champion = accuracy.get("champion") or {}
    baseline = accuracy.get("baseline") or {}
    savings = headline.get("savings") or {}
    parts = ["<h2>Headline</h2>", '<div class="cards">']
    parts.append(_card(_figure(fleet.get("servers")), "servers"))
    for level in AT_RISK_LEVELS:
        parts.append(_card(_figure(levels.get(level)), f"servers at {level} risk", level))
    parts.append(_card(_figure(savings.get("monthly_usd_total"), "money"), "savings / month"))
    parts.append(_card(_figure(champion.get("mase"), "ratio"), "forecast MASE (champion)"))
    parts.append(_card(_figure(baseline.get("mase"), "ratio"), "MASE, seasonal-naive baseline"))
    parts.append("</div>")
    outlook = outlook_line(headline)
    if outlook:
        parts.append(f'<p class="sub">{_e(outlook)}</p>')
    breaches = risk.get("earliest_breaches") or []
    if breaches:
        parts.append("<h3>Over the threshold now, then the earliest forecast breaches</h3><table>")
        parts.append(
            "<tr><th>Server</th><th>Metric</th><th>Breach</th><th>Days</th>"
            "<th>Probability</th><th>Criticality</th><th>Trust</th></tr>"
        )
        for row in breaches[:10]:
            parts.append(
                "<tr>"
                f"<td>{_e(row.get('server_id', ''))}</td><td>{_e(row.get('metric', ''))}</td>"
                f"<td>{_e(breach_when(row))}</td>"
                f"<td>{_figure(row.get('days_to_breach'))}</td>"
                f"<td>{_figure(row.get('breach_probability'), 'probability')}</td>"
                f"<td>{_e(row.get('criticality', ''))}</td>"
                f"<td>{_e(row.get('trust_grade') or MISSING)}</td>"
                "</tr>"
            )
        parts.append("</table>")
        parts.append(f'<p class="sub">{_e(trust_legend())}</p>')
    warned = (headline.get("data_quality") or {}).get("warnings") or []
    if warned:
        parts.append(f'<h3>Data warnings ({len(warned)})</h3><ul class="warnings">')
        parts += [f"<li>{_e(line)}</li>" for line in warned[:DATA_WARNINGS_SHOWN]]
        if len(warned) > DATA_WARNINGS_SHOWN:
            parts.append(
                f"<li>and {len(warned) - DATA_WARNINGS_SHOWN} more in validated/quality.json</li>"
            )
        parts.append("</ul>")
    reclaim = (headline.get("data_quality") or {}).get("reclamation") or []
    if reclaim:
        parts.append("<h3>Not forecast: set aside in loading</h3><ul>")
        parts += [f"<li>{_e(reclamation_line(c))}</li>" for c in reclaim]
        parts.append("</ul>")
    return parts


def _stage_rows(records: Iterable[Mapping[str, Any]], present: set[str]) -> list[str]:
    rows = [
        "<table><tr><th>Stage</th><th>Status</th><th>Seconds</th>"
        "<th>Shareable report</th><th>Full notebook</th></tr>"
    ]
    for record in records:
        status = str(record.get("status", "not_run"))
        report = record.get("report_html")
        full = record.get("html")
        note = record.get("error") or record.get("reason") or ""
        rows.append(
            "<tr>"
            f"<td>{_e(record.get('stage', ''))}</td>"
            f'<td class="status-{_e(status)}">{_e(status)}'
            f"{'<br><small>' + _e(note) + '</small>' if note else ''}</td>"
            f"<td>{_e(format_number(record.get('seconds'), '.1f'))}</td>"
            f"<td>{_link(report, 'report') if report in present else MISSING}</td>"
            f"<td>{_link(full, 'notebook') if full in present else MISSING}</td>"
            "</tr>"
        )
    rows.append("</table>")
    return rows


def render_index(
    run_id: str,
    status: str,
    records: Iterable[Mapping[str, Any]],
    artifact_keys: Iterable[str],
    headline: Mapping[str, Any] | None = None,
    finished_at: str = "",
) -> str:
    """The front page as one self-contained HTML string.

    ``records`` are the manifest's stage records, ``artifact_keys`` the run-relative keys that
    exist (only links to those are written), ``headline`` the content of reports/summary.json.
    """
    present = set(artifact_keys)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Capacity forecast · {_e(run_id)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Capacity forecast · {_e(run_id)}</h1>",
        f'<p class="sub">Run <span class="status-{_e(status)}">{_e(status)}</span>'
        f"{' · finished ' + _e(finished_at) if finished_at else ''}</p>",
    ]
    if headline:
        parts.extend(_headline_section(headline))
    reports = [(key, label) for key, label in _REPORTS if key in present]
    if reports:
        parts.append("<h2>Reports</h2><ul>")
        parts.extend(f"<li>{_link(key, label)}</li>" for key, label in reports)
        parts.append("</ul>")
    plots = sorted(k for k in present if k.startswith(catalog.PLOT_PAGE.folder))
    pages = [k for k in plots if k.endswith(".html")]
    images = [k for k in plots if k.endswith(".png")]
    if pages or images:
        parts.append("<h2>Charts</h2><ul>")
        for key in pages:
            stem = PurePosixPath(key).stem
            png = key[: -len(".html")] + ".png"
            static = f" ({_link(png, 'PNG')})" if png in present else ""
            parts.append(f"<li>{_link(key, stem_label(stem))}{static}</li>")
        for key in images:
            if key[: -len(".png")] + ".html" not in present:
                parts.append(f"<li>{_link(key, stem_label(PurePosixPath(key).stem))}</li>")
        parts.append("</ul>")
    parts.append("<h2>Stages</h2>")
    parts.extend(_stage_rows(records, present))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"

"""``report.html``: the billing team's page of one run, one self-contained file.

Headline figures (the numbers of ``report.json``'s summary), charts of held dollars by gap code,
clinician, drug and service day, outcomes, trends across runs, and the coder worklist (one row per
gap, sortable, filterable and paged in the page). The sums are made in Python (:mod:`.view`); the
page gets them, the chart specifications and the worklist as JSON in a
``<script type="application/json">`` block in which ``<``, ``>`` and ``&`` are written as
``\\u003c``-style escapes, so no text in the data can end the block. The worklist is built with
DOM calls (``textContent``), never by parsing HTML, and links are made only to an ``http``/``https``
server base with the id URL-encoded.

Charts are drawn by Vega-Lite (``vendor/``: vega, vega-lite and vega-embed, BSD-3-Clause, from the
npm registry; ``vendor/refresh.sh`` updates them), embedded in the file: the page loads nothing
from the network. Its Content-Security-Policy allows only the page's own scripts (by hash), no
connections and no images but ``data:``.

The page is a Jinja2 template (``templates/report.html.j2``) with autoescaping on.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from ..decision.ruleset import OUTCOMES
from .trends import SHOWN, delta
from .view import ReportView, by_day, server_base, top
from .worklist import write_worklist

__all__ = [
    "HERE",
    "PAGE_SIZE",
    "TREND_CODES",
    "VENDOR",
    "load_report",
    "page_context",
    "render_html",
    "script_json",
    "write_csv",
    "write_html",
    "write_pages",
]

HERE = Path(__file__).parent
VENDOR = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
PAGE_SIZE = 50  # worklist rows shown at once
TREND_CODES = 8  # gap codes drawn in the trend chart


def script_json(value: Any) -> str:
    """JSON that is safe inside a ``<script type="application/json">`` element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


@cache
def _vendor_js() -> tuple[str, ...]:
    scripts = []
    for name in VENDOR:
        js = (HERE / "vendor" / name).read_text(encoding="utf-8")
        # An inline script ends at the first "</script"; the vendored builds hold none, and this
        # keeps it so after an update (in a JS string or regex, "<\/" is the same as "</").
        scripts.append(js.replace("</script", "<\\/script").replace("<!--", "<\\!--"))
    return tuple(scripts)


@cache
def _page_js() -> str:
    return (HERE / "templates" / "report.js").read_text(encoding="utf-8")


def _csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


@cache
def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


# ----------------------------------------------------------------------------- chart specs


def _bars(values: list[dict], title: str, x_title: str = "held $") -> dict[str, Any]:
    return {
        "title": title,
        "width": 380,
        "data": {"values": values},
        "mark": {"type": "bar", "tooltip": True, "color": "#b4472a"},
        "encoding": {
            "y": {"field": "label", "type": "nominal", "sort": None, "title": None},
            "x": {"field": "usd", "type": "quantitative", "title": x_title},
        },
    }


def _days(values: list[dict]) -> dict[str, Any]:
    return {
        "title": "Held dollars by service day",
        "width": 380,
        "height": 200,
        "data": {"values": values},
        "mark": {"type": "bar", "tooltip": True, "color": "#b4472a"},
        "encoding": {
            "x": {"field": "label", "type": "ordinal", "sort": None, "title": None},
            "y": {"field": "usd", "type": "quantitative", "title": "held $"},
        },
    }


def _outcomes(outcomes: Mapping[str, int]) -> dict[str, Any]:
    values = [{"label": o, "n": int(outcomes.get(o, 0))} for o in OUTCOMES]
    return {
        "title": "Outcomes (administrations)",
        "width": 380,
        "data": {"values": values},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "label", "type": "nominal", "sort": None, "title": None},
            "x": {"field": "n", "type": "quantitative", "title": "administrations"},
            "color": {
                "field": "label",
                "type": "nominal",
                "legend": None,
                "scale": {
                    "domain": list(OUTCOMES),
                    "range": ["#2a7ab4", "#b4472a", "#7a7a7a", "#bbbbbb", "#444444"],
                },
            },
        },
    }


def _trend_specs(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    shown = runs[-SHOWN:]
    if len(shown) < 2:
        return {}
    held = [
        {"run": i + 1, "time": r["time"], "usd": float(r["estimated_held_usd"])}
        for i, r in enumerate(shown)
    ]
    totals: dict[str, int] = {}
    for r in shown:
        for code, n in r["gaps"].items():
            totals[code] = totals.get(code, 0) + n
    codes = sorted(totals, key=lambda c: (-totals[c], c))[:TREND_CODES]
    gaps = [
        {"run": i + 1, "time": r["time"], "code": c, "n": int(r["gaps"].get(c, 0))}
        for i, r in enumerate(shown)
        for c in codes
    ]
    tooltip = [{"field": "time", "type": "nominal"}]
    return {
        "trend-held": {
            "title": f"Held dollars, last {len(shown)} runs",
            "width": 380,
            "height": 200,
            "data": {"values": held},
            "mark": {"type": "line", "point": True, "color": "#b4472a"},
            "encoding": {
                "x": {"field": "run", "type": "ordinal", "title": "run", "axis": {"labelAngle": 0}},
                "y": {"field": "usd", "type": "quantitative", "title": "held $"},
                "tooltip": [*tooltip, {"field": "usd", "type": "quantitative"}],
            },
        },
        "trend-gaps": {
            "title": f"Gaps by code, last {len(shown)} runs (top {len(codes)})",
            "width": 380,
            "height": 200,
            "data": {"values": gaps},
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": {"field": "run", "type": "ordinal", "title": "run", "axis": {"labelAngle": 0}},
                "y": {"field": "n", "type": "quantitative", "title": "gaps"},
                "color": {"field": "code", "type": "nominal", "title": "gap"},
                "tooltip": [
                    *tooltip,
                    {"field": "code", "type": "nominal"},
                    {"field": "n", "type": "quantitative"},
                ],
            },
        },
    }


# ----------------------------------------------------------------------------- page data


def _worklist_data(view: ReportView) -> tuple[list[str], list[list]]:
    """Rows as lists of indexes into one string table (a gap's field and message, a clinician or
    a date repeat across thousands of rows); the amount stays a number."""
    strings: list[str] = []
    index: dict[str, int] = {}

    def s(value: str) -> int:
        i = index.get(value)
        if i is None:
            i = index[value] = len(strings)
            strings.append(value)
        return i

    rows = [
        [
            s(r.service_date),
            s(r.administration),
            s(r.outcome),
            s(r.severity),
            s(r.gap),
            s(r.field),
            s(r.message),
            s(r.clinician),
            s(r.payer_type),
            s(r.hcpcs),
            r.estimated_usd,
            s(r.task),
            r.days_left,  # to the filing limit: a number, or null (no limit known)
        ]
        for r in view.sorted_worklist()
    ]
    return strings, rows


def page_context(
    view: ReportView,
    report_meta: Mapping[str, Any],
    summary: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Everything the template shows; the numbers at the top are the report summary's own."""
    runs = list(history or [])
    change = delta(runs)
    source_base = server_base(report_meta.get("source"))
    target_base = server_base(report_meta.get("target")) or (
        source_base if "target" not in report_meta else None
    )
    strings, rows = _worklist_data(view)
    charts = {
        "held-gap": _bars(
            top(view.held_by_gap), "Held dollars by blocking gap (an administration under each)"
        ),
        "held-clinician": _bars(
            top(view.held_by_clinician), "Held dollars by clinician (performer)"
        ),
        "held-drug": _bars(top(view.held_by_drug), "Held dollars by drug (HCPCS)"),
        "held-day": _days(by_day(view.held_by_day)),
        "outcomes": _outcomes(summary.get("outcomes") or {}),
        **_trend_specs(runs),
    }
    claims = summary.get("claims") or {}
    data = {
        "charts": charts,
        "strings": strings,
        "rows": rows,
        "sourceBase": source_base,
        "targetBase": target_base,
        "pageSize": PAGE_SIZE,
    }
    return {
        "generated": str(report_meta.get("generated") or ""),
        "source": str(report_meta.get("source") or ""),
        "target": str(report_meta.get("target") or ""),
        "headline": {
            "administrations": int(summary.get("administrations") or 0),
            "billable": float(summary.get("estimated_billable_usd") or 0),
            "held": float(summary.get("estimated_held_usd") or 0),
            "self_pay": float(summary.get("estimated_self_pay_usd") or 0),
            "lost": float(summary.get("estimated_lost_to_filing_limit_usd") or 0),
            "window": str(summary.get("window") or ""),
            "claims_active": int(claims.get("active") or 0),
            "claims_draft": int(claims.get("draft") or 0),
            "tasks": int(summary.get("tasks") or 0),
            "record_errors": int(summary.get("record_errors") or 0),
        },
        "outcomes": {o: int((summary.get("outcomes") or {}).get(o, 0)) for o in OUTCOMES},
        "delta": change,
        "runs": len(runs),
        "gap_codes": sorted({r.gap for r in view.worklist}),
        "worklist_rows": len(rows),
        "trend_charts": [k for k in charts if k.startswith("trend-")],
        "data_json": script_json(data),
    }


def render_html(context: Mapping[str, Any]) -> str:
    """The page: the template, the vendored chart library and the page's own script inline, and a
    CSP that lets only those scripts run."""
    scripts = [*_vendor_js(), _page_js()]
    csp = "; ".join(
        [
            "default-src 'none'",
            # vega compiles its expressions with Function(): 'unsafe-eval', scripts still by hash
            "script-src " + " ".join(_csp_hash(s) for s in scripts) + " 'unsafe-eval'",
            "style-src 'unsafe-inline'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    template = _environment().get_template("report.html.j2")
    return template.render(**context, csp=csp, vendor_scripts=scripts[:-1], page_script=scripts[-1])


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_html(path: str | Path, context: Mapping[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page = render_html(context)
    _write_atomic(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return path


def write_csv(path: str | Path, view: ReportView, report_meta: Mapping[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    source_base = server_base(report_meta.get("source"))
    target_base = server_base(report_meta.get("target")) or (
        source_base if "target" not in report_meta else None
    )

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
            write_worklist(fh, view.sorted_worklist(), source_base, target_base)

    _write_atomic(path, write)
    return path


# ----------------------------------------------------------------------------- saved reports


def _parse(raw: bytes) -> Any:
    """orjson where it can (a 100,000-administration report.json is ~70 MB), else ``json``, which
    also reads what the report may hold beyond strict JSON (NaN)."""
    try:
        import orjson

        return orjson.loads(raw)
    except ImportError:  # pragma: no cover - orjson is a dependency
        pass
    except ValueError:
        pass
    return json.loads(raw.decode("utf-8"))


def load_report(path: str | Path) -> tuple[dict[str, Any], ReportView, dict[str, Any]]:
    """A saved ``report.json``: its run metadata, its entries summed into a view, its summary.
    Raises ConfigError (exit 2) with a message naming the file when it is missing or not a
    report."""
    from ..errors import ConfigError

    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"report file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"report file {path} is a folder; give the report.json in it") from None
    except OSError as exc:
        raise ConfigError(f"report file {path} cannot be read ({exc.strerror})") from None
    try:
        report = _parse(raw)
    except ValueError as exc:
        raise ConfigError(f"report file {path} is not valid JSON ({exc})") from None
    if (
        not isinstance(report, dict)
        or not isinstance(report.get("administrations"), list)
        or not isinstance(report.get("summary"), dict)
        or not isinstance((report["summary"]).get("outcomes"), dict)
    ):
        raise ConfigError(
            f"report file {path} is not a fhir-injection report.json "
            "(it needs 'administrations' and 'summary')"
        )
    view = ReportView()
    for entry in report["administrations"]:
        if isinstance(entry, dict):
            view.add(entry)
    meta = {k: v for k, v in report.items() if k not in ("administrations", "errors", "input")}
    meta.pop("summary", None)
    return meta, view, report["summary"]


def write_pages(
    view: ReportView,
    meta: Mapping[str, Any],
    summary: Mapping[str, Any],
    html_path: str | Path | None,
    csv_path: str | Path | None,
    history: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """report.html and worklist.csv of one run (either may be None: not written)."""
    if html_path is not None:
        write_html(html_path, page_context(view, meta, summary, history))
    if csv_path is not None:
        write_csv(csv_path, view, meta)

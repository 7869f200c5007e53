"""Words and numbers on screen: status lines, the model's quality, the approval checks."""
from __future__ import annotations

from html import escape

import polars as pl

from va_ui import views


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _num(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def encoder_banner(settings) -> str | None:
    from va_core.encoders import parse_spec

    encoder_id = parse_spec(settings.encoder).encoder_id
    if "tiny" not in encoder_id and "random" not in encoder_id:
        return None
    return (f"This home uses the <b>{escape(encoder_id)}</b> encoder: random weights, no semantics. "
            "Search and zero-shot results are arbitrary; for real work ingest with real CLIP weights.")


def label_status(summary: dict) -> str:
    shared = summary.get("n_shared")
    on = f" on {shared} clip{'s' if shared != 1 else ''} with 2+ annotators" if shared is not None else ""
    agreement = "" if summary.get("agreement") is None else f" · agreement {_pct(summary['agreement'])}{on}"
    conflicts = f" · {summary['n_conflicts']} conflict{'s' if summary['n_conflicts'] != 1 else ''}" \
        if summary.get("n_conflicts") else ""
    return (f"**{summary['label']}**: {summary['n_pos']} yes · {summary['n_neg']} no{conflicts} · "
            f"{summary.get('n_annotators', 0)} annotator{'s' if summary.get('n_annotators') != 1 else ''}{agreement}")


def progress(session) -> str:
    if not session.label:
        return ""
    source = session.source.replace("_", " ")
    chose = ""
    if session.source == "next" and session.chosen_source:
        chose = f" (va chose **{session.chosen_source.replace('_', ' ')}**)"
    last = f" · {escape(session.message)}" if session.message else ""
    return (f"From **{source}**{chose} · **{session.n_labelled}** labelled this session · "
            f"{len(session.queue)} more queued{last}")


def build_status(built: dict) -> str:
    r = built["result"]
    if not r.created:
        return (f"**{r.label} v{r.model_version}** is already trained on these labels "
                f"(AP {_num(r.ap)} ± {_num(r.ap_std)}); label more clips to improve it.")
    return (f"Built **{r.label} v{r.model_version}** in {built['seconds']:.2f} s: AP **{_num(r.ap)}** ± "
            f"{_num(r.ap_std)} (random {_num(r.baseline_ap)}). Feeds refreshed.")


def quality(settings, label: str, history: pl.DataFrame) -> str:
    """The latest version's numbers, then one line per version."""
    if history.height == 0:
        return (f"**{label}** has no model yet. Label at least a few clips yes and no, then press **Build**. "
                "Until then the zero-shot source shows clips like the description.")
    latest = history.row(-1, named=True)
    served = history.filter(pl.col("stage") == "approved")
    shown = [served.row(-1, named=True)] if served.height else []
    if not shown or shown[0]["model_version"] != latest["model_version"]:
        shown.append(latest)
    head = (f"### {label}: serving v{shown[0]['model_version']}" if served.height
            else f"### {label}: nothing served yet (approve a version to serve it)")
    lines = [
        head,
        "",
        "| version | AP | random baseline | diversity | yes | no | conflicts | agreement when trained | checks |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in shown:
        method = f" ({r['method']})" if r.get("method") else ""
        agreement = "no clip had 2 annotators" if r.get("agreement") is None else _pct(r["agreement"])
        lines.append(
            f"| v{r['model_version']} · {r['stage']}{' (latest)' if r is latest and served.height else ''} | "
            f"**{_num(r['ap_mean'])}** ± {_num(r['ap_std'])}{method} | {_num(r['baseline_ap'])} | "
            f"{_num(r['diversity_score'], 2)} | {r['n_pos']} | {r['n_neg']} | {r.get('n_conflicts') or 0} | "
            f"{agreement} | {'passed' if r['checks_passed'] else 'failed'} |")
    lines += [
        "",
        "<details><summary>All versions</summary>",
        "",
        "| version | stage | labels | AP | ± | baseline | trained |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in history.sort("model_version", descending=True).iter_rows(named=True):
        trained = v["trained_at"].strftime("%Y-%m-%d %H:%M") if v.get("trained_at") else ""
        lines.append(f"| v{v['model_version']} | {v['stage']} | {v['n_labels']} | {_num(v['ap_mean'])} | "
                     f"{_num(v['ap_std'])} | {_num(v['baseline_ap'])} | {trained} |")
    lines += ["", "</details>"]
    return "\n".join(lines)


def ap_chart(history: pl.DataFrame, width: int = 720, height: int = 260) -> str:
    """AP (with its spread) and the random baseline against the number of labels, per model version.

    Inline SVG: drawn by the browser at once, no image to render on the server.
    """
    left, right, top, bottom = 48, 16, 16, 40
    pw, ph = width - left - right, height - top - bottom
    parts = [f'<svg class="va-chart" viewBox="0 0 {width} {height}" width="100%" style="max-width: {width}px" role="img" '
             'aria-label="AP against number of labels" xmlns="http://www.w3.org/2000/svg" '
             'font-family="sans-serif" font-size="11">']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + ph * (1 - tick)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#9ca3af" '
                     f'stroke-opacity="0.3"/><text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'fill="currentColor">{tick:.2f}</text>')
    parts.append(f'<text x="12" y="{top + ph / 2:.1f}" transform="rotate(-90 12 {top + ph / 2:.1f})" '
                 'text-anchor="middle" fill="currentColor">average precision</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle" fill="currentColor">'
                 'labels the version was trained on</text>')
    if history.height == 0:
        parts.append(f'<text x="{left + pw / 2:.1f}" y="{top + ph / 2:.1f}" text-anchor="middle" '
                     'fill="#6b7280">no model yet</text></svg>')
        return "".join(parts)
    rows = history.sort("model_version").to_dicts()
    xs = [int(r["n_labels"]) for r in rows]
    lo, hi = min(xs), max(xs)
    span = max(hi - lo, 1)
    lo, hi = lo - 0.08 * span, hi + 0.08 * span

    def px(x):
        return left + pw * (x - lo) / (hi - lo)

    def py(y):
        return top + ph * (1 - min(max(y, 0.0), 1.0))

    for x in sorted(set(xs)):
        parts.append(f'<text x="{px(x):.1f}" y="{top + ph + 16}" text-anchor="middle" fill="currentColor">{x}</text>')
    base = [(px(r["n_labels"]), py(r["baseline_ap"])) for r in rows if r.get("baseline_ap") is not None]
    if base:
        parts.append('<polyline fill="none" stroke="#6b7280" stroke-dasharray="5 4" stroke-width="1.5" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in base) + '"/>')
        parts += [f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" fill="#6b7280"/>' for x, y in base]
    pts = [(px(r["n_labels"]), py(r["ap_mean"]), r) for r in rows if r.get("ap_mean") is not None]
    if pts:
        parts.append('<polyline fill="none" stroke="#ea580c" stroke-width="2" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in pts) + '"/>')
    for x, y, r in pts:
        std = r.get("ap_std") or 0.0
        y1, y2 = py(r["ap_mean"] - std), py(r["ap_mean"] + std)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" stroke="#ea580c"/>'
                     f'<line x1="{x - 4:.1f}" x2="{x + 4:.1f}" y1="{y1:.1f}" y2="{y1:.1f}" stroke="#ea580c"/>'
                     f'<line x1="{x - 4:.1f}" x2="{x + 4:.1f}" y1="{y2:.1f}" y2="{y2:.1f}" stroke="#ea580c"/>'
                     f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#ea580c"><title>v{r["model_version"]}: AP '
                     f'{r["ap_mean"]:.3f} ± {std:.3f}, {r["n_labels"]} labels</title></circle>'
                     f'<text x="{x + 6:.1f}" y="{y - 6:.1f}" fill="currentColor">v{r["model_version"]}</text>')
    lx = left + pw - 190
    parts.append(f'<g transform="translate({lx},{top + ph - 34})"><rect width="186" height="32" rx="4" '
                 'fill="var(--background-fill-primary, white)" stroke="#9ca3af" stroke-opacity="0.5"/>'
                 '<line x1="8" x2="30" y1="11" y2="11" stroke="#ea580c" stroke-width="2"/>'
                 '<text x="36" y="15" fill="currentColor">model AP ± spread</text>'
                 '<line x1="8" x2="30" y1="24" y2="24" stroke="#6b7280" stroke-dasharray="5 4"/>'
                 '<rect x="16" y="21" width="6" height="6" fill="#6b7280"/>'
                 '<text x="36" y="28" fill="currentColor">random baseline</text></g></svg>')
    return "".join(parts)


def previews(feeds: dict[str, list[dict]]) -> str:
    if not feeds:
        return ""
    return "".join(views.feed_strip(name, items) for name, items in feeds.items())


def checks(report: dict) -> str:
    lines = [f"**Approve {report['label']} v{report['model_version']}** (AP {_num(report['ap'])}, "
             f"{report['n_pos']} yes / {report['n_neg']} no, encoder `{report['encoder_id']}`)?", ""]
    if not report["checks"]:
        lines.append("- no checks were recorded for this version")
    for c in report["checks"]:
        mark = "passed" if c["passed"] else ("FAILED" if c["blocking"] else "warning")
        lines.append(f"- **{mark}** · {c['name'].replace('_', ' ')}: {c['message']}")
    lines.append("")
    serving = [v for v in report.get("approved_now", []) if v != report["model_version"]]
    if report["stage"] == "approved":
        lines.append("This version is already approved: it is the one served.")
    elif report["passed"] and serving:
        lines.append(f"Serving will switch to this version; v{', v'.join(map(str, serving))}, served now, "
                     f"{'is' if len(serving) == 1 else 'are'} retired.")
    elif report["passed"]:
        lines.append(f"No version of {report['label']} is served yet: serving starts with this one.")
    else:
        lines.append("**A blocking check failed: this version cannot be approved.** Label more clips and build again.")
    return "\n".join(lines)


def approved(done: dict) -> str:
    if not done.get("changed"):
        return f"**{done['label']} v{done['model_version']}** was already approved."
    retired = f"; v{', v'.join(map(str, done['retired']))} retired" if done.get("retired") else ""
    return f"**{done['label']} v{done['model_version']}** approved: serving picks it up{retired}."

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
    unsure = f" · {summary['n_unsure']} unsure" if summary.get("n_unsure") else ""
    return (f"**{summary['label']}**: {summary['n_pos']} yes · {summary['n_neg']} no{conflicts}{unsure} · "
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


def estimate_text(ap, low, high, n_audit, needed) -> str:
    """The corpus estimate in words, or what it still needs (and where to get it)."""
    ask = f"needs **{needed}** more audit labels: choose **audit** in Annotate"
    if ap is None:
        return f"AP on the corpus unknown ({ask})"
    text = f"AP on the corpus **{_num(ap)}** [{_num(low)}, {_num(high)}] (90%, {n_audit or 0} audit labels)"
    return text + (f"; provisional, {ask}" if needed else "")


def build_status(built: dict) -> str:
    r = built["result"]
    quality_text = estimate_text(r.ap, r.ap_low, r.ap_high, r.n_audit, r.audit_needed)
    if not r.created:
        return (f"**{r.label} v{r.model_version}** is already trained on these labels ({quality_text}); "
                "label more clips to improve it.")
    return (f"Built **{r.label} v{r.model_version}** in {built['seconds']:.2f} s: {quality_text}; labelled-set AP "
            f"{_num(r.labelled_ap)} ± {_num(r.ap_std)}. Feeds refreshed.")


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
    lines = [head, ""]
    for r in shown:  # the served version's estimate first, then the latest candidate's
        who = (f"v{r['model_version']} (served)" if r["stage"] == "approved"
               else f"v{r['model_version']} (latest, {r['stage']})")
        lines += [f"{who}: " + estimate_text(r.get("ap"), r.get("ap_low"), r.get("ap_high"), r.get("n_audit"),
                                             r.get("audit_needed")), ""]
    lines += [
        "| version | AP on the corpus (90%) | precision · recall at threshold | random baseline | labelled-set AP | "
        "diversity | yes | no | conflicts | agreement when trained | checks |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in shown:
        method = f" ({r['method']})" if r.get("method") else ""
        baseline = r.get("prevalence") if r.get("prevalence") is not None else r["baseline_ap"]
        agreement = "no clip had 2 annotators" if r.get("agreement") is None else _pct(r["agreement"])
        lines.append(
            f"| v{r['model_version']} · {r['stage']}{' (latest)' if r is latest and served.height else ''} | "
            f"**{_num(r.get('ap'))}** [{_num(r.get('ap_low'))}, {_num(r.get('ap_high'))}] · {r.get('n_audit') or 0} "
            f"audit labels | {_num(r.get('precision'))} · {_num(r.get('recall'))} | {_num(baseline)} | "
            f"{_num(r['ap_mean'])} ± {_num(r['ap_std'])}{method} | "
            f"{_num(r['diversity_score'], 2)} | {r['n_pos']} | {r['n_neg']} | {r.get('n_conflicts') or 0} | "
            f"{agreement} | {'passed' if r['checks_passed'] else 'failed'} |")
    lines += [
        "",
        "The labelled-set AP is measured on clips the feeds chose: it runs high, most of all for rare labels. "
        "The corpus estimate rests on audit labels (random draws by score strata).",
    ]
    return "\n".join(lines)


def _when(t) -> str:
    return t.strftime("%Y-%m-%d %H:%M") if t else "–"


def _interval(r: dict) -> str:
    return "–" if r.get("ap") is None else f"[{_num(r.get('ap_low'))}, {_num(r.get('ap_high'))}]"


def versions(history: pl.DataFrame) -> str:
    """Every version, newest first: its corpus estimate with the 90% interval, which one is served."""
    if history.height == 0:
        return ""
    lines = ["**Versions** (pick one below to approve it)", "",
             "| version | stage | AP on the corpus | 90% interval | audit labels | method | labelled-set AP | yes | no "
             "| trained |", "|---|---|---|---|---|---|---|---|---|---|"]
    for v in history.sort("model_version", descending=True).iter_rows(named=True):
        stage = "**approved · served**" if v["stage"] == "approved" else v["stage"]
        lines.append(f"| v{v['model_version']} | {stage} | {_num(v.get('ap'))} | {_interval(v)} | "
                     f"{v.get('n_audit') or 0} | {v.get('ap_method') or '–'} | {_num(v.get('labelled_ap'))} | "
                     f"{v['n_pos']} | {v['n_neg']} | {_when(v.get('trained_at'))} |")
    return "\n".join(lines)


def version_choice(r: dict) -> str:
    """A version as the picker names it."""
    ap = "no corpus estimate" if r.get("ap") is None else f"AP {_num(r['ap'])} {_interval(r)}"
    return f"v{r['model_version']} · {'served' if r['stage'] == 'approved' else r['stage']} · {ap}"


def comparison(picked: dict, served: dict | None) -> str:
    """The picked version beside the served one, as the approval dialog shows them."""
    if served is None or served["model_version"] == picked["model_version"]:
        return ""

    def est(r):
        if r.get("ap") is None:
            return "no corpus estimate"
        method = f", {r['ap_method']}" if r.get("ap_method") else ""
        return f"{_num(r['ap'])} {_interval(r)} · {r.get('n_audit') or 0} audit labels{method}"

    rows = [("AP on the corpus (90%)", est), ("labelled-set AP", lambda r: _num(r.get("labelled_ap"))),
            ("yes · no", lambda r: f"{r['n_pos']} · {r['n_neg']}"), ("label set size", lambda r: str(r["n_labels"])),
            ("trained", lambda r: _when(r.get("trained_at")))]
    lines = [f"| | v{picked['model_version']} (this version) | v{served['model_version']} (served now) |",
             "|---|---|---|"]
    lines += [f"| {name} | {fn(picked)} | {fn(served)} |" for name, fn in rows]
    return "\n".join(lines)


def ap_chart(history: pl.DataFrame, width: int = 720, height: int = 260) -> str:
    """AP on the corpus (with its 90% interval), the labelled-set AP and the random baseline against the
    number of labels, per model version.

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
    base = [(px(r["n_labels"]), py(r["prevalence"] if r.get("prevalence") is not None else r["baseline_ap"]))
            for r in rows if r.get("baseline_ap") is not None or r.get("prevalence") is not None]
    if base:
        parts.append('<polyline fill="none" stroke="#6b7280" stroke-dasharray="5 4" stroke-width="1.5" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in base) + '"/>')
        parts += [f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" fill="#6b7280"/>' for x, y in base]
    labelled = [(px(r["n_labels"]), py(r["ap_mean"]), r) for r in rows if r.get("ap_mean") is not None]
    if labelled:
        parts.append('<polyline fill="none" stroke="#2563eb" stroke-dasharray="2 3" stroke-width="1.5" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in labelled) + '"/>')
    # one point per version: a version without a corpus estimate yet shows its labelled-set AP, hollow
    for x, y, r in labelled:
        if r.get("ap") is None:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="none" stroke="#2563eb" stroke-width="1.5">'
                         f'<title>v{r["model_version"]}: no corpus estimate yet (labelled-set AP {r["ap_mean"]:.3f}), '
                         f'{r["n_labels"]} labels</title></circle>'
                         f'<text x="{x + 6:.1f}" y="{y - 6:.1f}" fill="currentColor">v{r["model_version"]}</text>')
    pts = [(px(r["n_labels"]), py(r["ap"]), r) for r in rows if r.get("ap") is not None]
    if pts:
        parts.append('<polyline fill="none" stroke="#ea580c" stroke-width="2" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in pts) + '"/>')
    for x, y, r in pts:
        y1, y2 = py(r["ap_low"]), py(r["ap_high"])
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" stroke="#ea580c"/>'
                     f'<line x1="{x - 4:.1f}" x2="{x + 4:.1f}" y1="{y1:.1f}" y2="{y1:.1f}" stroke="#ea580c"/>'
                     f'<line x1="{x - 4:.1f}" x2="{x + 4:.1f}" y1="{y2:.1f}" y2="{y2:.1f}" stroke="#ea580c"/>'
                     f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#ea580c"><title>v{r["model_version"]}: AP '
                     f'{r["ap"]:.3f} [{r["ap_low"]:.3f}, {r["ap_high"]:.3f}] on the corpus, {r["n_audit"]} audit '
                     f'labels, {r["n_labels"]} labels</title></circle>'
                     f'<text x="{x + 6:.1f}" y="{y - 6:.1f}" fill="currentColor">v{r["model_version"]}</text>')
    lx = left + pw - 230
    parts.append(f'<g transform="translate({lx},{top + ph - 48})"><rect width="226" height="46" rx="4" '
                 'fill="var(--background-fill-primary, white)" stroke="#9ca3af" stroke-opacity="0.5"/>'
                 '<line x1="8" x2="30" y1="11" y2="11" stroke="#ea580c" stroke-width="2"/>'
                 '<text x="36" y="15" fill="currentColor">AP on the corpus, 90% interval</text>'
                 '<line x1="8" x2="30" y1="24" y2="24" stroke="#2563eb" stroke-dasharray="2 3"/>'
                 '<text x="36" y="28" fill="currentColor">labelled-set AP (biased)</text>'
                 '<line x1="8" x2="30" y1="37" y2="37" stroke="#6b7280" stroke-dasharray="5 4"/>'
                 '<rect x="16" y="34" width="6" height="6" fill="#6b7280"/>'
                 '<text x="36" y="41" fill="currentColor">random baseline</text></g></svg>')
    return "".join(parts)


def previews(feeds: dict[str, list[dict]]) -> str:
    if not feeds:
        return ""
    return "".join(views.feed_strip(name, items) for name, items in feeds.items())


def checks(report: dict, rollback: bool = False) -> str:
    """The approval dialog: the version's checks, beside the served version, and what approving does."""
    interval = "" if report.get("ap") is None else f" {_interval(report)}"
    verb = "Roll back" if rollback else "Approve"
    lines = [f"**{verb} {report['label']} {'to ' if rollback else ''}v{report['model_version']}** (AP on the corpus "
             f"{_num(report['ap'])}{interval}, {report['n_pos']} yes / {report['n_neg']} no, encoder "
             f"`{report['encoder_id']}`)?", ""]
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
    table = comparison(report, report.get("served"))
    if table:
        lines += ["", table]
    if report.get("override_needed") and report["passed"]:
        lines += ["", f"**Clearly worse than the served version:** {report['override_needed']}. Approving it anyway "
                      "needs a reason, recorded in the stage history."]
    return "\n".join(lines)


def approved(done: dict) -> str:
    if not done.get("changed"):
        return f"**{done['label']} v{done['model_version']}** was already approved."
    retired = f"; v{', v'.join(map(str, done['retired']))} retired" if done.get("retired") else ""
    return f"**{done['label']} v{done['model_version']}** approved: serving picks it up{retired}."

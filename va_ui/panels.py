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
    agreement = "" if summary.get("agreement") is None else f" · agreement {_pct(summary['agreement'])}"
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
    r = history.row(-1, named=True)
    method = f" ({r['method']})" if r.get("method") else ""
    lines = [
        f"### {label} v{r['model_version']} · {r['stage']}",
        "",
        "| AP | random baseline | diversity | yes | no | conflicts | agreement | checks |",
        "|---|---|---|---|---|---|---|---|",
        f"| **{_num(r['ap_mean'])}** ± {_num(r['ap_std'])}{method} | {_num(r['baseline_ap'])} | "
        f"{_num(r['diversity_score'], 2)} | {r['n_pos']} | {r['n_neg']} | {r.get('n_conflicts') or 0} | "
        f"{_pct(r.get('agreement'))} | {'passed' if r['checks_passed'] else 'failed'} |",
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


def ap_chart(history: pl.DataFrame):
    """AP (with its spread) and the random baseline against the number of labels, per model version."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if history.height:
        h = history.sort("model_version")
        x = h["n_labels"].to_numpy()
        ap = h["ap_mean"].to_numpy()
        ax.errorbar(x, ap, yerr=h["ap_std"].fill_null(0).to_numpy(), marker="o", capsize=4, label="model AP ± spread",
                    color="#ea580c")
        ax.plot(x, h["baseline_ap"].to_numpy(), linestyle="--", marker=".", color="#6b7280", label="random baseline")
        for xi, yi, v in zip(x, ap, h["model_version"].to_list()):
            ax.annotate(f"v{v}", (xi, yi), textcoords="offset points", xytext=(4, 6), fontsize=8)
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no model yet", ha="center", va="center", transform=ax.transAxes, color="#6b7280")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("labels the version was trained on")
    ax.set_ylabel("average precision")
    ax.grid(alpha=0.3)
    return fig


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
    if report["stage"] == "approved":
        lines.append("This version is already approved.")
    elif report["passed"]:
        lines.append("Serving will switch to this version; the version approved now is retired.")
    else:
        lines.append("**A blocking check failed: this version cannot be approved.** Label more clips and build again.")
    return "\n".join(lines)


def approved(done: dict) -> str:
    if not done.get("changed"):
        return f"**{done['label']} v{done['model_version']}** was already approved."
    retired = f"; v{', v'.join(map(str, done['retired']))} retired" if done.get("retired") else ""
    return f"**{done['label']} v{done['model_version']}** approved: serving picks it up{retired}."

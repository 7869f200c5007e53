"""`va train`, `va approve` and `va status`: model versions, their estimates and stages."""
from __future__ import annotations

import sys

from va_core.registry import ReasonNeeded, approve
from va_core.status import status
from va_core.train import TrainResult, describe_quality, train_label


def describe_result(r: TrainResult) -> str:
    diversity = f"; diversity {r.diversity:.2f}" if r.diversity is not None else ""
    labelled = "-" if r.labelled_ap is None else f"{r.labelled_ap:.3f} ± {r.ap_std:.3f}"
    head = (f"{r.label} v{r.model_version} ({r.trainer}): "
            f"{describe_quality(r.ap, r.ap_low, r.ap_high, r.n_audit, r.ap_method, r.audit_needed, r.label)}\n"
            f"  labelled-set AP {labelled} [{r.method}] vs random {r.baseline_ap:.3f} (biased: feeds chose "
            f"those clips); {r.n_pos} positive, {r.n_neg} negative, {r.n_conflicts} conflicts{diversity}")
    if r.n_audit_unsure:
        head += (f"\n  {r.n_audit_unsure} audit clip(s) answered unsure are left out of the estimate (as if not "
                 "drawn: the estimate assumes they are like the other clips of their stratum)")
    if not r.created:
        head += "\n  already trained on this label set: nothing written"
    failed = [c for c in r.checks if c["blocking"] and not c["passed"]]
    if r.stage == "approved":
        head += "\n  approved: this version is the one served"
    elif failed:
        head += "\n  cannot be approved: " + "; ".join(f"{c['name']}: {c['message']}" for c in failed)
    else:
        head += f"\n  checks passed: `va approve {r.label}` to serve it"
    return head


def cli_train(args, settings):
    result = train_label(settings, args.label, trainer=args.trainer, force=args.force, features=args.features)
    if result.created:
        print(f"trained in {sum(result.timings.values()):.2f} s", file=sys.stderr)
    return result.as_dict(), describe_result(result)


def cli_approve(args, settings):
    try:
        result = approve(settings, args.label, args.version, by=args.by, override=getattr(args, "override", None))
    except ReasonNeeded as exc:
        raise ReasonNeeded(f"{exc}: give it with --override \"REASON\"") from exc
    if not result["changed"]:
        text = f"{args.label} v{result['model_version']} is already approved"
    else:
        retired = f"; retired v{', v'.join(map(str, result['retired']))}" if result["retired"] else ""
        ap = ("AP on the corpus unknown: no audit labels" if result["ap"] is None else
              f"AP on the corpus {result['ap']:.3f} [{result['ap_low']:.3f}, {result['ap_high']:.3f}]")
        forced = f"; override: {result['override']}" if result.get("override") else ""
        text = f"{args.label} v{result['model_version']} approved ({ap}){retired}{forced}"
    return result, text


def _interval(lab: dict) -> str:
    if lab["latest_ap"] is None:
        return "-"
    return f"{lab['latest_ap']:.3f} [{lab['latest_ap_low']:.2f}, {lab['latest_ap_high']:.2f}]"


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def format_status(data: dict) -> str:
    lines = [f"home       {data['home']}", f"warehouse  {data['warehouse']}", f"encoder    {data['encoder']}", "",
             f"{'table':<20} {'version':>8} {'rows':>10}"]
    for name, t in data["tables"].items():
        lines.append(f"{name:<20} {_fmt(t['version'], 'd'):>8} {t['rows']:>10}")
    lines += ["", f"{'label':<24} {'pos':>5} {'neg':>5} {'confl':>5} {'latest':>7} {'AP (corpus, 90%)':>20} "
                  f"{'audit':>5} {'set AP':>6} {'stage':<10} {'approved':>8}"]
    if not data["labels"]:
        lines.append("(no labels yet: `va label LABEL CLIP_KEY --yes`)")
    for lab in data["labels"]:
        latest = f"v{lab['latest_version']}" if lab["latest_version"] else "-"
        approved = f"v{lab['approved_version']}" if lab["approved_version"] else "-"
        stale = " (new labels since)" if lab["stale"] else ""
        needs = f" (needs {lab['audit_needed']} more audit labels: `va feeds {lab['label']} --feed audit`)" \
            if lab["audit_needed"] else ""
        lines.append(f"{lab['label']:<24} {lab['n_pos']:>5} {lab['n_neg']:>5} {lab['n_conflicts']:>5} {latest:>7} "
                     f"{_interval(lab):>20} {lab['latest_n_audit']:>5} {_fmt(lab['latest_labelled_ap']):>6} "
                     f"{lab['latest_stage'] or '-':<10} {approved:>8}{stale}{needs}")
    return "\n".join(lines)


def cli_status(args, settings):
    data = status(settings)
    return data, format_status(data)

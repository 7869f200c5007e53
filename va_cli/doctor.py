"""`va doctor`: the home's invariants; exit status 1 while a problem remains."""
from __future__ import annotations

from va_core.doctor import doctor
from va_core.errors import InputError
from va_core.warehouse import Warehouse


def describe(report: dict) -> str:
    lines = [f"warehouse  {report['warehouse']}"]
    lines += [f"repaired   [{r['check']}] {r['table']}: {r['message']} -> {r['repair']}" for r in report["repaired"]]
    for p in report["problems"]:
        fix = f" (`va doctor --repair`: {p['repair']})" if p["repair"] else ""
        lines.append(f"PROBLEM    [{p['check']}] {p['table']}: {p['message']}{fix}")
    lines += [f"note       {n}" for n in report["notes"]]
    lines.append("healthy: every invariant holds" if report["healthy"] else
                 f"{len(report['problems'])} problem(s) remain")
    return "\n".join(lines)


def cli_doctor(args, settings):
    if args.grace < 0:
        raise InputError(f"--grace must be a number of minutes >= 0, got {args.grace}")
    report = doctor(Warehouse.from_settings(settings), repair=args.repair, grace_s=args.grace * 60)
    return report, describe(report), 0 if report["healthy"] else 1

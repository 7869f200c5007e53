"""The loop through the `va` command: real processes, one JSON document on stdout, no torch."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from loop_corpus import make_home, sample_rows

VA = [sys.executable, "-m", "va_cli"]  # what the `va` script runs (pyproject: va_cli.main:main)


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "home"
    settings, wh, corpus = make_home(root, n=400)
    rows = sample_rows(corpus, 3, 10, 30)
    csv = root / "labels.csv"
    csv.write_text("label,clip_key,value,annotator\n" + "".join(
        f"topic3,{corpus.keys[i]},{'yes' if corpus.topics[i] == 3 else 'no'},importer\n" for i in rows))
    fresh = [k for i, k in enumerate(corpus.keys) if i not in set(rows.tolist())]
    return root, corpus, csv, fresh


def _env(root):
    env = dict(os.environ)
    env.update({"VA_HOME": str(root), "VA_ENCODER": "tiny", "LOGNAME": "tester", "USER": "tester"})
    env.pop("VA_WAREHOUSE_URI", None)
    return env


def va(root, *argv, ok=True):
    proc = subprocess.run([*VA, *argv, "--json"], capture_output=True, text=True, env=_env(root), timeout=300)
    assert (proc.returncode == 0) == ok, proc.stderr
    return json.loads(proc.stdout), proc  # exactly one JSON document, or this fails


def test_the_loop_through_the_command(cli_home):
    root, corpus, csv, fresh = cli_home
    data, _ = va(root, "import-labels", str(csv))
    assert data["n_events"] == 40 and data["labels"][0]["n_pos"] == 10
    data, _ = va(root, "label", "topic3", fresh[0], "--no", "--source", "search")
    assert data["value"] is False and data["n_neg"] == 31
    data, _ = va(root, "train", "topic3")
    assert data["created"] and data["model_version"] == 1 and data["checks_passed"]
    data, _ = va(root, "feeds", "topic3", "-k", "2")
    assert set(data["feeds"]) == {"top_positive", "top_negative", "borderline", "random", "audit"}
    data, _ = va(root, "approve", "topic3")
    assert data["stage"] == "approved" and data["model_version"] == 1
    data, _ = va(root, "status")
    (lab,) = [x for x in data["labels"] if x["label"] == "topic3"]
    assert lab["approved_version"] == 1 and lab["n_pos"] == 10 and lab["latest_stage"] == "approved"
    assert data["tables"]["models"]["rows"] == 1


def test_bad_input_is_an_error_document_and_exit_2(cli_home):
    root, corpus, _, fresh = cli_home
    data, proc = va(root, "label", "Bad Label", corpus.keys[0], "--yes", ok=False)
    assert proc.returncode == 2 and data["type"] == "InputError" and "bad label name" in data["error"]
    data, proc = va(root, "label", "topic3", "no-such|clip", "--yes", ok=False)
    assert "unknown clip key" in data["error"]
    data, proc = va(root, "approve", "topic3", "--version", "7", ok=False)
    assert data["type"] == "NotFound"


def test_commands_that_do_not_encode_never_import_torch(cli_home):
    root, corpus, csv, fresh = cli_home
    script = f"""
import json, sys
from va_cli.main import main
runs = [["describe", "topic9", "a topic"], ["label", "topic9", {fresh[1]!r}, "--yes"],
        ["import-labels", {str(csv)!r}], ["train", "topic3", "--trainer", "fast"],
        ["feeds", "topic3", "--feed", "top_positive"], ["approve", "topic3"], ["status"]]
codes = [main(argv + ["--json"]) for argv in runs]
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "open_clip", "torchvision"))
print(json.dumps({{"codes": codes, "heavy": heavy}}), file=sys.stderr)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(root), timeout=300)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["codes"] == [0] * 7, proc.stderr
    assert report["heavy"] == []


def test_demo_runs_the_simulated_expert_and_approves(tmp_path):
    proc = subprocess.run([*VA, "demo", "--encoder", "tiny", "--videos", "6", "--rounds", "2", "--json"],
                          capture_output=True, text=True, env=_env(tmp_path / "demo"), timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["encoder"] == "tiny" and len(data["rounds"]) == 2
    assert [r["model_version"] for r in data["rounds"]] == [1, 2]
    counts = [r["n_pos"] + r["n_neg"] for r in data["rounds"]]
    assert counts == sorted(counts) and counts[-1] > counts[0]
    assert all(0 <= r["diversity"] <= 1 and r["labelled_ap"] >= 0 for r in data["rounds"])
    assert all(r["ap"] is None or r["ap_low"] <= r["ap"] <= r["ap_high"] for r in data["rounds"])
    assert data["approved"].get("model_version") == 2 or "error" in data["approved"]
    assert json.loads((tmp_path / "demo" / "config.json").read_text())["encoder"] == "tiny"

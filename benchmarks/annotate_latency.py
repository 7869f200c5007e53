"""Annotate in the browser: key press -> next clip shown, in headless Chromium on the demo's home.

The app (`python -m va_ui`, as `va ui` runs it) serves the home `va demo --encoder tiny`
makes (24 sample videos; --quick: 8). A simulated expert builds "blue background" from
scratch in the Annotate desk with the keyboard, answering from the corpus's ground truth:

- steady: a press every 600 ms (an expert who looks at each clip);
- quick: a press every 250 ms;
- burst: 10 presses as fast as the browser takes them.

Measured in the page (the desk's own record, `window.vaDesk`): from the key event's time
stamp to the first frame painted after the next clip is in place (``shown``), and to a
frame of that clip's video (``frame``: the same when the clip was buffered in time); the
server-side part: each answer's round trip from the page (sent in the background, never
waited for) and the handler's own time in the server. Every run checks that each press is
stored, on the clip it was pressed on.

    .venv/bin/python -m benchmarks.annotate_latency                # 60 + 40 + 10 presses
    .venv/bin/python -m benchmarks.annotate_latency --quick        # 20 + 10 + 10 presses
    .venv/bin/python -m benchmarks.annotate_latency --home DIR     # an existing demo home

Writes benchmarks/results/annotate_latency.json (annotate_latency_quick.json) and prints a markdown table.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ._results import arguments, markdown, percentile, report, save

LABEL = "blue_background"
COLOUR = "blue"
SCENARIOS = {"steady": 0.6, "quick": 0.25, "burst": 0.0}


def demo_home(videos: int, rounds: int) -> Path:
    home = Path(tempfile.mkdtemp(prefix="va-annotate-bench-")) / "home"
    subprocess.run([sys.executable, "-m", "va_cli", "demo", "--encoder", "tiny", "--home", str(home),
                    "--videos", str(videos), "--rounds", str(rounds)], check=True, stdout=subprocess.DEVNULL)
    return home


def start_app(home: Path, log: Path) -> tuple[subprocess.Popen, str]:
    from va_core.process import free_port

    port = free_port()
    env = dict(os.environ, VA_HOME=str(home), VA_ENCODER="tiny", GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen([sys.executable, "-m", "va_ui", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"va ui exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url + "/", timeout=2).close()
            return proc, url
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"va ui did not answer within 120 s: {log.read_text()[-2000:]}")


def truth_of(home: Path) -> dict[str, bool]:
    from va_core.sample_corpus import truth_for_clips
    from va_core.warehouse import Warehouse

    clips = Warehouse(str(home / "warehouse")).read("clips")
    truth = truth_for_clips(home / "sample_corpus", clips)
    return {k: c == COLOUR for k, c in truth.select("clip_key", "colour").iter_rows()}


def run_scenario(page, truth: dict[str, bool], presses: int, interval: float) -> dict:
    page.evaluate("() => { window.vaDesk.timings.length = 0; window.vaDesk.saves.length = 0; }")
    pressed = []
    for _ in range(presses):
        key = page.evaluate("() => window.vaDesk.current && window.vaDesk.current.clip_key")
        if key is None:  # the source ran dry: wait for the next batch
            page.wait_for_function("() => window.vaDesk.current", timeout=60_000)
            key = page.evaluate("() => window.vaDesk.current.clip_key")
        value = truth.get(key, False)
        page.keyboard.press("y" if value else "n")
        pressed.append((key, value))
        if interval:
            time.sleep(interval)
    page.wait_for_function("() => !window.vaDesk.sending && window.vaDesk.pending.length === 0", timeout=120_000)
    failed = page.evaluate("() => window.vaDesk.failed.map((op) => op.error)")
    if failed:
        raise RuntimeError(f"answers were refused: {failed[:3]}")
    record = page.evaluate("() => ({timings: window.vaDesk.timings, saves: window.vaDesk.saves})")
    return {"pressed": pressed, **record}


def summarise(name: str, run: dict, stored: list[tuple[str, bool]]) -> dict:
    shown = [t["shown_ms"] for t in run["timings"]]
    frame = [t["frame_ms"] for t in run["timings"] if t.get("frame_ms") is not None]
    trips = [s["round_trip_ms"] for s in run["saves"]]
    server = [s["server_ms"] for s in run["saves"] if s.get("server_ms") is not None]
    return {
        "scenario": name, "presses": len(run["pressed"]), "stored": len(stored),
        "all_stored_in_order": stored == run["pressed"],
        "buffered_share": sum(t["had_frame"] for t in run["timings"]) / max(len(run["timings"]), 1),
        "shown_p50_ms": percentile(shown, 50), "shown_p90_ms": percentile(shown, 90), "shown_max_ms": max(shown),
        "frame_p50_ms": percentile(frame, 50), "frame_p90_ms": percentile(frame, 90),
        "save_round_trip_p50_ms": percentile(trips, 50), "save_round_trip_p90_ms": percentile(trips, 90),
        "server_p50_ms": percentile(server, 50), "server_p90_ms": percentile(server, 90),
    }


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, "8 videos, 20 + 10 + 10 presses")
    parser.add_argument("--home", type=Path, help="an existing home made by `va demo --encoder tiny`")
    args = parser.parse_args(argv)
    started = time.time()
    from playwright.sync_api import sync_playwright

    from benchmarks._browser import launch
    from va_core.labels import set_description
    from va_core.warehouse import Warehouse

    home = args.home.resolve() if args.home else demo_home(8 if args.quick else 24, 2 if args.quick else 6)
    wh = Warehouse(str(home / "warehouse"))
    truth = truth_of(home)
    label = f"{LABEL}_{int(time.time())}"  # from scratch, whatever the home holds already
    set_description(wh, label, "a blue background", annotator="bench")
    counts = {"steady": 20, "quick": 10, "burst": 10} if args.quick else {"steady": 60, "quick": 40, "burst": 10}
    load_before = os.getloadavg()
    proc, url = start_app(home, home.parent / "annotate_latency_ui.log")
    rows = []
    try:
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
            page.set_default_timeout(60_000)
            page.goto(url)
            page.locator("#va-name input, #va-name textarea").first.fill("bench")
            box = page.locator("#va-label input")
            box.click()
            box.fill(label)
            page.get_by_role("option", name=label, exact=True).click()
            page.get_by_role("tab", name="Annotate").click()
            page.locator("#va-desk .va-start").click()
            page.wait_for_function("() => window.vaDesk && window.vaDesk.current", timeout=60_000)
            page.wait_for_timeout(2000)  # the first clips cut and buffered, as after any pause
            done = 0
            for name, presses in counts.items():
                run = run_scenario(page, truth, presses, SCENARIOS[name])
                events = wh.read("label_events", where={"label": label, "annotator": "bench"}).sort(
                    ["created_at", "event_id"])
                stored = list(zip(events["clip_key"].to_list(), events["value"].to_list()))[done:]
                done += len(stored)
                rows.append(summarise(name, run, stored))
                page.wait_for_timeout(1500)
            browser.close()
    finally:
        from va_core.process import stop_group

        stop_group(proc)
    load_after = os.getloadavg()
    table = markdown(
        ["scenario", "presses", "stored in order", "buffered", "shown p50", "p90", "max", "frame p50", "p90",
         "save round trip p50", "p90", "server p50", "p90"],
        [[r["scenario"], r["presses"], f"{r['stored']} {'yes' if r['all_stored_in_order'] else 'NO'}",
          f"{100 * r['buffered_share']:.0f}%", f"{r['shown_p50_ms']:.0f} ms", f"{r['shown_p90_ms']:.0f} ms",
          f"{r['shown_max_ms']:.0f} ms", f"{r['frame_p50_ms']:.0f} ms", f"{r['frame_p90_ms']:.0f} ms",
          f"{r['save_round_trip_p50_ms']:.0f} ms", f"{r['save_round_trip_p90_ms']:.0f} ms",
          f"{r['server_p50_ms']:.0f} ms", f"{r['server_p90_ms']:.0f} ms"] for r in rows],
        align="lrrrrrrrrrrrr")
    path = save("annotate_latency", args.quick, {
        "home": str(home), "label": label, "clips": len(truth), "intervals_s": SCENARIOS,
        "load_average_before": load_before, "load_average_after": load_after, "rows": rows}, started)
    report(table, path)
    if not all(r["all_stored_in_order"] for r in rows):
        print("some presses were not stored in order", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

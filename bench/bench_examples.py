"""What a test of the example aggregators costs, next to the same scenario on the bare fixture.

Run by hand in the examples' environment (.ci/run builds it, see examples/README.md):
`.venv-examples/bin/python bench/bench_examples.py [runs]`. Each suite — examples/fastapi_httpx
(Kilat: FastAPI + httpx, async), examples/flask_requests (Pinjam: Flask + requests) and
bench/bare_flows (the same four scenarios as lender calls through `lender_sandbox.client()`) —
runs `runs` times (default 15) in a fresh pytest process with sockets disabled; a test's cost
is its setup + call + teardown + a garbage collection of what it left, in the session's second
pass over the suite, so one-time costs (the session template, first imports) stay out and the
collector's work lands on the test that made the garbage (bench/timing_plugin.py). Reported, in wall
time and in CPU time of the process (steadier when other processes share the machine): each
scenario's median per suite, each suite's median per test, and the ratio to the bare twin
(the bar: at most 2x). The same for the fixtures alone (setup + teardown): `lender_sandbox`
in the bare suite; `lender_sandbox` plus the app, its client, the interception and the
callback delivery in the examples. Last, in this process, what the two bridges themselves add
to a test: a fresh Sandbox alone, and with `intercept()` entered and left and `deliver_to()`
bound — the rest of an example fixture's cost is the app's own construction.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
BARE = "bare fixture"
SUITES = {
    BARE: BENCH / "bare_flows",
    "Kilat (FastAPI+httpx)": ROOT / "examples" / "fastapi_httpx",
    "Pinjam (Flask+requests)": ROOT / "examples" / "flask_requests",
}
# scenario -> a word of its test's name in every suite
SCENARIOS = {
    "precheck to settlement": "settlement",
    "rejection": "reject",
    "overdue + extension": "overdue",
    "failing callback retried": "retr",
}
METRICS = ("wall", "cpu", "fixtures wall", "fixtures cpu")

Samples = dict[str, dict[str, list[float]]]  # metric -> scenario -> milliseconds


def run_once(suite: Path) -> dict[str, list[float]]:
    """One pytest session of `suite`: {test name: [wall, cpu, fixtures wall, fixtures cpu]}."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "times.json"
        path = os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "BENCH_TIMINGS": str(out), "PYTHONPATH": path}
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "timing_plugin", "-p", "no:cacheprovider"],
            cwd=suite,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return json.loads(out.read_text())["times"]


def by_scenario(runs: list[dict[str, list[float]]]) -> Samples:
    found: Samples = {m: {s: [] for s in SCENARIOS} for m in METRICS}
    for run in runs:
        for test, seconds in run.items():
            for scenario, word in SCENARIOS.items():
                if word in test:
                    for metric, value in zip(METRICS, seconds, strict=True):
                        found[metric][scenario].append(value * 1000)
    missing = [s for s, ms in found["wall"].items() if not ms]
    if missing:
        raise SystemExit(f"no test found for {missing}")
    return found


def cell(ms: float, base: float | None) -> str:
    return f"{ms:.1f}" + ("" if base is None else f" ({ms / base:.2f}x)")


def table(metric: str, results: dict[str, Samples]) -> None:
    print(f"\n{metric} ms (median)".ljust(28) + "".join(f"{label:>26}" for label in results))
    med = statistics.median
    for scenario in SCENARIOS:
        base = med(results[BARE][metric][scenario])
        print(
            f"{scenario:28}"
            + "".join(
                f"{cell(med(r[metric][scenario]), None if label == BARE else base):>26}"
                for label, r in results.items()
            )
        )

    def overall(r: Samples) -> float:
        return med([ms for values in r[metric].values() for ms in values])

    base = overall(results[BARE])
    print(
        f"{'all four':28}"
        + "".join(
            f"{cell(overall(r), None if label == BARE else base):>26}"
            for label, r in results.items()
        )
    )


def bridges(iterations: int = 500) -> None:
    from starlette.applications import Starlette

    from sandbox.testing import Sandbox, Template

    template, app = Template(), Starlette()

    def bare() -> None:
        with Sandbox(template):
            pass

    def bridged() -> None:
        with (
            Sandbox(template) as sb,
            sb.intercept("https://api.lender.example.id/v1"),
            sb.callbacks.deliver_to(app, prefix="/lender-callbacks"),
        ):
            pass

    print("\nin-process, median of", iterations)
    for label, fn in (("Sandbox alone", bare), ("+ intercept() + deliver_to()", bridged)):
        for _ in range(50):
            fn()
        ms = []
        for _ in range(iterations):
            start = time.process_time()
            fn()
            ms.append((time.process_time() - start) * 1000)
        print(f"{label:28}{statistics.median(ms):>8.2f} ms cpu")
    template.close()


def main(runs: int = 15) -> None:
    results = {
        label: by_scenario([run_once(suite) for _ in range(runs)])
        for label, suite in SUITES.items()
    }
    print(f"setup + call + teardown + gc of each test, {runs} sessions per suite")
    for metric in METRICS:
        table(metric, results)
    bridges()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)

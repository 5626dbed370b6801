"""What the `lender_sandbox` fixture costs a test: setup + first precheck call + teardown.

Run by hand: `python bench/bench_fixture.py [iterations]`. Each iteration does what the
fixture and a test's first call do — copy the session template into a fresh Sandbox, make
an in-process client, call 02 get-loan-precheck, close — and is timed on its own. The
template (built once per session by the plugin) is not counted; it is reported apart.
For comparison, moto's `mock_aws()` costs about 16 ms at its leanest and about 170 ms in
common use per test.
"""

from __future__ import annotations

import statistics
import sys
import time

from sandbox.testing import Sandbox, Template, sample_order


def one(template: Template, payload: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this thread) for one fixture use."""
    wall, cpu = time.perf_counter(), time.thread_time()
    with Sandbox(template) as sb:
        assert sb.client().call("get-loan-precheck", payload)["code"] == 0
    return time.perf_counter() - wall, time.thread_time() - cpu


def summary(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[int(len(ms) * 0.95) - 1]
    return (
        f"{label}: median {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms, "
        f"min {ms[0]:.2f} ms, max {ms[-1]:.2f} ms"
    )


def main(iterations: int = 2000) -> None:
    start = time.perf_counter()
    template = Template()
    built = time.perf_counter() - start
    payload = sample_order(
        "bench", today=template.today(), rules=template.settings.data.rules
    ).precheck()
    for _ in range(50):  # warm up imports and caches, as the first tests of a session do
        one(template, payload)
    runs = [one(template, payload) for _ in range(iterations)]
    print(f"template (once per session): {built * 1000:.1f} ms")
    print(f"fixture setup + first precheck + teardown, {iterations} runs")
    print("  " + summary("wall", [w for w, _ in runs]))
    # CPU time of the thread: what the work costs when other processes compete for the CPU
    print("  " + summary("cpu ", [c for _, c in runs]))
    print("moto mock_aws() for comparison: ~16 ms leanest, ~170 ms common")
    template.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)

"""pytest plugin for bench/bench_examples.py: each test's wall and CPU time (setup + call +
teardown + collecting the garbage it left; CPU of the whole process, helper threads included),
and apart the time of its fixtures alone (setup + teardown).

The session runs every test twice and keeps the second pass: the first pays what a session
pays once (the lender_sandbox template, first imports, first app build), not what a test costs.
Before the second pass everything alive is frozen out of the collector's sight (gc.freeze), so
the collection after each test costs what that test's own garbage costs, not a sweep of every
module the session imported. Written as JSON to $BENCH_TIMINGS when the session ends.
"""

import gc
import json
import os
import time

import pytest

_times: dict[str, tuple[float, float, float, float]] = {}
_fixtures: dict[str, list[float]] = {}  # test -> [wall, cpu] of its setup + teardown


def pytest_collection_modifyitems(session, config, items):
    items[:] = items + items  # a warm-up pass, then the measured pass


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if item.name in _times and not gc.get_freeze_count():  # the measured pass begins
        gc.collect()
        gc.freeze()
    _fixtures[item.name] = [0.0, 0.0]
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        return (yield)
    finally:
        # A test pays for collecting the garbage it leaves (not whichever later test the
        # collector happens to run in). The second pass overwrites the first.
        gc.collect()
        _times[item.name] = (
            time.perf_counter() - wall,
            time.process_time() - cpu,
            *_fixtures[item.name],
        )


def _fixture_phase(item):
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        return (yield)
    finally:
        spent = _fixtures[item.name]
        spent[0] += time.perf_counter() - wall
        spent[1] += time.process_time() - cpu


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _fixture_phase(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    return (yield from _fixture_phase(item))


def pytest_sessionfinish(session, exitstatus):
    with open(os.environ["BENCH_TIMINGS"], "w") as f:
        json.dump({"exitstatus": int(exitstatus), "times": _times}, f)

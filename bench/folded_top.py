"""A "top" of a py-spy raw (folded) profile: own and total samples per function.

Run by hand: `python bench/folded_top.py FILE.folded [--top N] [--rate HZ --seconds S]`
(bench/profile_server.sh runs it).
A folded line is `frame;frame;...;frame COUNT`, outermost first, each frame `function
(file:line)`. Own samples: the innermost frame (where the CPU was); total: every function on
the stack, once per stack. Functions are keyed by name and file (line numbers dropped). Prints
the N (default 25) functions with the most own samples, then the N with the most total.
With the sampling rate and duration it also says how much of the time a thread held the GIL
(py-spy --gil): far below 100 % means the server mostly waited (I/O, fsync, locks), not
computed.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter

LINE = re.compile(r":\d+\)$")


def function(frame: str) -> str:
    return LINE.sub(")", frame.strip())


def tops(lines: list[str]) -> tuple[int, Counter[str], Counter[str]]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [function(f) for f in stack.split(";") if f]
        samples += n
        own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
    return samples, own, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--rate", type=float, help="py-spy samples per second")
    ap.add_argument("--seconds", type=float, help="how long py-spy recorded")
    args = ap.parse_args()
    with open(args.path, encoding="utf-8", errors="replace") as f:
        samples, own, total = tops(f.readlines())
    if not samples:
        sys.exit(f"{args.path}: no samples")
    held = ""
    if args.rate and args.seconds:
        share = samples / (args.rate * args.seconds) * 100
        held = f": a thread held the GIL {share:.0f} % of the time"
    print(f"{samples} samples in {args.path}{held}")
    for title, counter in (("own", own), ("total", total)):
        print(f"\n  {title:>5} %  function (file)")
        for name, count in counter.most_common(args.top):
            print(f"  {count / samples * 100:7.1f}  {name}")


if __name__ == "__main__":
    main()

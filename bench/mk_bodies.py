"""Request bodies for loading a running sandbox with wrk (used by bench/profile_server.sh).

Run by hand: `python bench/mk_bodies.py BASE_URL OUTDIR [N_WRITES] [--partner demo]`.
Writes, for the partner (default demo, its key read from the control API):
  OUTDIR/read.json    12 get-order-status of one order walked to 90 (05, 06; the review never
                      decides): a stateful encrypted read of an existing order
  OUTDIR/writes.txt   N_WRITES (default 60000) one-line 05 push-basic-info bodies, each a new
                      order of a new person (the same scenario): one per wrk request
Prints what it wrote. The same bodies as the performance issue's reference comparison uses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sandbox.client import LenderClient, SandboxControl
from sandbox.testing import sample_order


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base_url")
    ap.add_argument("outdir", type=Path)
    ap.add_argument("writes", nargs="?", type=int, default=60000)
    ap.add_argument("--partner", default="demo")
    args = ap.parse_args()
    creds = SandboxControl(args.base_url).partner(args.partner, secrets=True)
    client = LenderClient(args.base_url, args.partner, creds["aes_key"], creds["aes_iv"])
    o = sample_order("bench-read-0", scenario="review_stuck")
    for name, payload in (
        ("push-basic-info", o.basic_info()),
        ("push-supplement-info", o.supplement_info()),
    ):
        doc = client.call(name, payload)
        if doc.get("code") != 0:
            sys.exit(f"{name} answered {doc}")
    args.outdir.mkdir(parents=True, exist_ok=True)
    (args.outdir / "read.json").write_text(json.dumps(client.envelope(o.order())))
    with (args.outdir / "writes.txt").open("w") as f:
        for i in range(args.writes):
            w = sample_order(f"bench-w-{i}", scenario="review_stuck")
            f.write(json.dumps(client.envelope(w.basic_info())) + "\n")
    print(f"read.json and {args.writes} write bodies in {args.outdir}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""The table of bench/compare.sh: one row per tc-load JSON line (labels
'design#round'), with the ratio of its codes/s to tracesvc's in the same
mode, batch size and round (the 'sig' rows compare with tracesvc's MAC
rows)."""
import json
import sys

rows = [json.loads(line) for line in sys.stdin if line.startswith("{")]
def parts(r):
    design, _, rnd = r["label"].partition("#")
    return design, rnd


ref = {(r["mode"], r["batch"], parts(r)[1]): r["codes_per_s"] for r in rows
       if parts(r)[0] == "tracesvc"}
print("%-9s %-6s %5s %12s %12s %9s %9s %7s %s" % ("design", "mode", "B", "calls/s", "codes/s",
                                                  "p50 ms", "p99 ms", "errors",
                                                  "vs tracesvc"))
for r in rows:
    base = ref.get((r["mode"], r["batch"], parts(r)[1]))
    ratio = "%.2fx" % (r["codes_per_s"] / base) if base else "-"
    print("%-9s %-6s %5d %12.0f %12.0f %9.2f %9.2f %7d %s" % (
        r["label"], r["mode"], r["batch"], r["calls_per_s"], r["codes_per_s"],
        r["p50_us"] / 1000, r["p99_us"] / 1000, r["errors"], ratio))

#!/usr/bin/python3
"""bench/failover.py - how long a Sentinel failover keeps writes away, and
whether any verification fails meanwhile, on scripts/cluster.sh's topology
(a primary, two replicas, three Sentinels, three tracesvc nodes, all on
loopback) with Sentinel's down-after-milliseconds at DOWN_MS (default 5000).

Each round: verify and write load on all three nodes (the fault suite's
Load: per node one verifier thread, one writer of UpsertManufacturer), 3 s
of calm, kill -9 of the primary, then until every node has acknowledged a
write again. Per node: the time from the kill to its first successful write
after its last failed one. Also: failed verifications (target 0), the
verification rate during the failover against the calm before it (same
run), and the acknowledged writes all present on the new primary.
Prints one JSON line per round and a table."""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import tcfixture as F  # noqa: E402
import test_faults as TF  # noqa: E402

rounds = int(os.environ.get("ROUNDS", "3"))
down_ms = int(os.environ.get("DOWN_MS", "5000"))
target_s = 15.0

c = TF.Cluster(TF.WORK, down_ms=down_ms)
c.up()
rows = []
try:
    _, codes = F.chain(c.nodes[0], F.uscc(next(TF._seq)), F.unique("BCH2026"), 200)
    for rnd in range(1, rounds + 1):
        c.heal(120)
        old = c.primary()
        with TF.Load(c, codes, timeout=3.0) as load:
            time.sleep(3)
            calm_ok, t_calm = load.verify_ok, time.time()
            calm_rate = calm_ok / 3.0
            t0 = time.time()
            os.kill(c.pid("redis%d" % old), signal.SIGKILL)
            back = F.wait_for(lambda: all(load.first_ack_after(i, t0) and
                                          load.first_ack_after(i, load.last_error(i))
                                          for i in range(3)), 90)
            t_back = time.time()
            during_rate = (load.verify_ok - calm_ok) / max(t_back - t_calm, 1e-6)
            per_node = []
            for i in range(3):
                first = load.first_ack_after(i, max(t0, load.last_error(i)))
                per_node.append(round(first - t0, 2) if back and first else None)
        p = c.base + c.primary()
        lost = [k for _, _, k in load.acked
                if c.cli(p, "EXISTS", "{tc}:mfr:" + k).strip() != "1"]
        row = {"round": rnd, "down_after_ms": down_ms, "writes_back_s": per_node,
               "verify_failed": len(load.verify_bad), "verify_ok": load.verify_ok,
               "verify_rate_calm": round(calm_rate, 1),
               "verify_rate_failover": round(during_rate, 1),
               "failover_vs_calm": round(during_rate / calm_rate, 3) if calm_rate else None,
               "writes_acked": len(load.acked), "writes_failed": len(load.write_err),
               "acked_lost": len(lost), "new_primary": c.primary() != old}
        print(json.dumps(row), flush=True)
        rows.append(row)
finally:
    c.down()

print()
print("| round | writes back per node (s) | worst / down-after | failed verifications "
      "| verify rate failover / calm | acked writes lost |")
print("| ---: | --- | ---: | ---: | ---: | ---: |")
for r in rows:
    worst = max((x for x in r["writes_back_s"] if x is not None), default=None)
    print("| %d | %s | %s | %d of %d | %s | %d of %d |" % (
        r["round"], ", ".join("%.2f" % x if x is not None else "never" for x in r["writes_back_s"]),
        "%.2f" % (worst / (down_ms / 1000.0)) if worst else "-", r["verify_failed"],
        r["verify_failed"] + r["verify_ok"], r["failover_vs_calm"], r["acked_lost"],
        r["writes_acked"]))
missed = [r for r in rows if r["verify_failed"] or r["acked_lost"] or None in r["writes_back_s"]
          or max(r["writes_back_s"]) > target_s]
print("\ntarget (no verification failed, no acknowledged write lost, writes back within "
      "%.0f s): %s" % (target_s, "met" if not missed else "MISSED in rounds %s" %
                       [r["round"] for r in missed]))

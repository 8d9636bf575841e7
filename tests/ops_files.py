#!/usr/bin/python3
"""ops_files.py SRCDIR PROMTOOL - docs/ops/ checked: the alert rules load and
their unit tests pass (promtool check rules, promtool test rules); the
Grafana dashboard is JSON whose every query names only metrics tracesvc
exports (their names as the source writes them)."""
import json
import os
import re
import subprocess
import sys

src, promtool = sys.argv[1], os.path.abspath(sys.argv[2])
ops = os.path.join(src, "docs", "ops")
fails = []
if not os.access(promtool, os.X_OK):
    print("ops_files: no promtool at %s: run ./scripts/deps.sh" % promtool)
    sys.exit(1)
for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
    p = subprocess.run([promtool] + args, cwd=ops, capture_output=True, text=True)
    if p.returncode != 0:
        fails.append("promtool %s: %s%s" % (" ".join(args), p.stdout, p.stderr))

exported = set()
for root, _, files in os.walk(os.path.join(src, "svc")):
    for f in files:
        if f.endswith(".c"):
            text = open(os.path.join(root, f), encoding="utf-8").read()
            exported |= set(re.findall(r"\b((?:tracesvc|process|grpc_server)_[a-z_]+)", text))
with open(os.path.join(ops, "grafana-dashboard.json")) as f:
    dash = json.load(f)
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
rules = open(os.path.join(ops, "alerts.yml")).read()
exprs += re.findall(r"expr: (.*)", rules)
for e in exprs:
    for name in re.findall(r"\b((?:tracesvc|process|grpc_server)_[a-z_]+)", e):
        base = re.sub(r"_(bucket|sum|count)$", "", name)  # a histogram's series
        if name not in exported and base not in exported:
            fails.append("%r uses %s, which tracesvc does not export" % (e, name))
for f in fails:
    print("ops_files: " + f)
if fails:
    sys.exit(1)
print("ops_files: %d queries over %d exported names; rules check and their tests pass"
      % (len(exprs), len(exported)))

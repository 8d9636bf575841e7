#!/usr/bin/env python3
"""cluster_flags.py SOURCE_DIR - docker/compose.yaml describes the topology
scripts/cluster.sh runs (and the fault tests prove): the same Redis and
Sentinel settings, the same tracesvc flags, and what a compose file must
have for it to start and fail over (compose itself is never run here:
these machines have no container engine)."""
import json
import re
import sys

import yaml

src = sys.argv[1] if len(sys.argv) > 1 else "."
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def shell_var(text, name):
    m = re.search(r'^%s="(.*?)"$' % name, text, re.S | re.M)
    if not m:
        sys.exit("cluster_flags: %s not found in scripts/cluster.sh" % name)
    return m.group(1)


def marked(path):
    """The lines between '# [cluster] begin' and '# [cluster] end'."""
    lines, inside = [], False
    for line in open(path):
        line = line.strip()
        if line == "# [cluster] begin":
            inside = True
        elif line == "# [cluster] end":
            inside = False
        elif inside and line and not line.startswith("#"):
            lines.append(" ".join(line.split()))
    if not lines:
        sys.exit("cluster_flags: no [cluster] block in %s" % path)
    return lines


cluster = open(src + "/scripts/cluster.sh").read()
master = re.search(r"^master=(\S+)$", cluster, re.M).group(1)
sh_redis = [" ".join(l.split()) for l in shell_var(cluster, "REDIS_SETTINGS").splitlines()]
sh_sentinel = [" ".join(l.replace("$master", master).replace("$down_ms", "5000").split())
               for l in shell_var(cluster, "SENTINEL_SETTINGS").splitlines()]
sh_flags = shell_var(cluster, "TRACESVC_FLAGS").split()

check(marked(src + "/docker/redis.conf") == sh_redis,
      "docker/redis.conf [cluster] settings differ from cluster.sh REDIS_SETTINGS:\n  %s\n  %s"
      % (marked(src + "/docker/redis.conf"), sh_redis))
check(marked(src + "/docker/sentinel.conf") == sh_sentinel,
      "docker/sentinel.conf [cluster] settings differ from cluster.sh SENTINEL_SETTINGS "
      "(down-after 5000):\n  %s\n  %s" % (marked(src + "/docker/sentinel.conf"), sh_sentinel))
sentinel_conf = open(src + "/docker/sentinel.conf").read()
check(re.search(r"^sentinel monitor %s \S+ 6379 2$" % master, sentinel_conf, re.M),
      "docker/sentinel.conf must monitor '%s' with quorum 2, as cluster.sh" % master)
check(re.search(r"sentinel monitor \$master .* 2\"$", cluster, re.M),
      "cluster.sh Sentinels must use quorum 2")

compose = yaml.safe_load(open(src + "/docker/compose.yaml"))
svcs = compose["services"]
redis = sorted(n for n in svcs if n.startswith("redis-"))
sentinels = sorted(n for n in svcs if n.startswith("sentinel-"))
nodes = sorted(n for n in svcs if n.startswith("node-"))
check(len(redis) == 3 and len(sentinels) == 3 and len(nodes) == 3,
      "compose wants 3 Redis, 3 Sentinels, 3 nodes (as cluster.sh): %s %s %s"
      % (redis, sentinels, nodes))
check(len(re.findall(r"up_(?:redis|sentinel|node) \"\$i\"; done", cluster)) == 3
      and "for i in 0 1 2; do up_redis" in cluster, "cluster.sh starts 3 of each")

for name, s in svcs.items():
    check(s.get("restart") in ("unless-stopped", "always", "on-failure"),
          "%s has no restart policy" % name)
    check("healthcheck" in s and s["healthcheck"].get("test"), "%s has no health check" % name)
    for dep, cond in (s.get("depends_on") or {}).items():
        check(isinstance(cond, dict) and cond.get("condition") == "service_healthy",
              "%s waits for %s without service_healthy" % (name, dep))
    for v in s.get("volumes", []):
        check(not (name.startswith("sentinel-") and str(v).endswith(":ro")),
              "%s: Sentinel rewrites its config; its volume must be writable" % name)
    check("redis_password" in s.get("secrets", []), "%s has no Redis password" % name)
    for v in (s.get("environment") or {}).values():
        check("password" not in str(v).lower() or "/run/secrets/" in str(v),
              "%s: a password in its environment" % name)

for n in redis[1:]:
    check(redis[0] in (svcs[n].get("depends_on") or {}), "%s starts before %s" % (n, redis[0]))
    check(svcs[n].get("entrypoint", [])[-1:] == [redis[0]], "%s is not a replica of %s" % (n, redis[0]))
for n in sentinels:
    check("sentinel_password" in svcs[n].get("secrets", []), "%s has no password of its own" % n)
    check(set(redis) <= set(svcs[n].get("depends_on") or {}), "%s starts before the Redis" % n)

url = "redis-sentinel://%s/%s" % (",".join("%s:26379" % s for s in sentinels), master)
for n in nodes:
    s = svcs[n]
    env = s.get("environment") or {}
    check(s.get("command") == sh_flags,
          "%s runs with %s, cluster.sh with %s" % (n, s.get("command"), sh_flags))
    check(env.get("TRACESVC_REDIS") == url, "%s: TRACESVC_REDIS should be %s" % (n, url))
    check(env.get("TRACESVC_REDIS_PASSWORD_FILE", "").startswith("/run/secrets/")
          and env.get("TRACESVC_SENTINEL_PASSWORD_FILE", "").startswith("/run/secrets/"),
          "%s does not read both passwords from secrets" % n)
    check(env.get("TRACESVC_NODE_ID") == n, "%s: TRACESVC_NODE_ID should be %s" % (n, n))
    check(set(sentinels) <= set(s.get("depends_on") or {}), "%s starts before the Sentinels" % n)
    check("readyz" in json.dumps(s["healthcheck"]["test"]), "%s's health check is not /readyz" % n)
    admin = env.get("TRACESVC_ADMIN", "")
    check(admin.rsplit(":", 1)[-1] in json.dumps(s["healthcheck"]["test"]) and admin,
          "%s's health check does not ask its admin listener (TRACESVC_ADMIN)" % n)

if failures:
    print("cluster_flags: docker/compose.yaml and scripts/cluster.sh are out of step:")
    for f in failures:
        print(" -", f)
    sys.exit(1)
print("cluster_flags: compose and cluster.sh agree (%d settings, %d flags, %d services)"
      % (len(sh_redis) + len(sh_sentinel), len(sh_flags), len(svcs)))

#!/usr/bin/python3
"""layers.py SRCDIR - the layering of docs/ARCHITECTURE.md, checked.

Every `#include "x.h"` among the tracked C files of codec/, keys/, auditor/ and svc/
is an edge from the including file's folder to the header's. The check
fails, naming the file and the include, when:
  * two headers share a name (an include would then be ambiguous);
  * a folder includes from a folder it is not allowed to (ALLOWED below:
    dependencies point down only);
  * the folders, or the files, include each other in a circle;
  * a third-party library's headers appear outside the folder that
    contains it (CONTAINED below).
"""
import collections
import os
import re
import subprocess
import sys

# Folder -> the folders it may include from (not transitively: each
# folder names what it uses). Ordered bottom up.
ALLOWED = {
    "codec": set(),
    "keys": {"codec"},
    "auditor": {"codec"},
    "svc/log": set(),
    "svc/core": {"codec", "keys"},
    "svc/store": {"svc/log", "svc/core", "keys", "codec"},
    "svc/node": {"svc/log", "svc/store", "svc/core", "keys", "codec"},
    "svc/audit": {"svc/log", "svc/node", "svc/store", "svc/core", "keys", "codec"},
    "svc/delist": {"svc/log", "svc/node", "svc/store", "svc/core", "keys", "codec"},
    "svc/api": {"svc/log", "svc/audit", "svc/delist", "svc/node", "svc/store", "svc/core", "keys", "codec"},
    "svc/rpc": {"svc/log", "svc/api", "svc/node", "svc/store", "svc/core", "keys", "codec"},
    "svc/http": {"svc/log", "svc/api", "svc/node", "svc/store", "svc/core", "keys", "codec"},
    "svc/ctl": {"svc/rpc", "auditor", "keys", "codec"},
    "svc": {"svc/log", "svc/rpc", "svc/http", "svc/api", "svc/audit", "svc/delist", "svc/node",
            "svc/store", "svc/core", "keys", "codec"},
}

# A library's include prefix -> the folders allowed to include it.
CONTAINED = {
    "hiredis/": {"svc/store"},
    "grpc/": {"svc/rpc"},
    "protobuf-c/": {"svc/rpc"},
    "event2/": {"svc/store", "svc/http", "svc"},
    "qrencode.h": {"codec"},
    "png.h": {"codec"},
    "openssl/": {"codec", "keys", "svc/store"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def main():
    os.chdir(sys.argv[1] if len(sys.argv) > 1 else ".")
    files = subprocess.check_output(["git", "ls-files", "-co", "--exclude-standard", "*.c", "*.h"], text=True).split()
    files = [f for f in files if f.split("/")[0] in ("codec", "keys", "auditor", "svc")]
    bad = []
    byname = collections.defaultdict(list)
    for f in files:
        byname[os.path.basename(f)].append(f)
    for name, where in sorted(byname.items()):
        if len(where) > 1 and name.endswith(".h"):
            bad.append("two headers named %s: %s" % (name, ", ".join(where)))

    fdeps = collections.defaultdict(set)  # file -> headers (paths) it includes
    folder_edges = collections.defaultdict(dict)  # a -> b -> an example
    for f in files:
        here = os.path.dirname(f)
        if here not in ALLOWED:
            bad.append("%s: folder %s is not in tests/layers.py's ALLOWED" % (f, here))
            continue
        for kind, inc in INCLUDE.findall(open(f, encoding="utf-8").read()):
            for lib, where in CONTAINED.items():
                if inc.startswith(lib) and here not in where:
                    bad.append("%s includes <%s>: %s is contained in %s" %
                               (f, inc, lib, ", ".join(sorted(where))))
            if kind != '"' or os.path.basename(inc) not in byname:
                continue  # generated (build tree) or a system header
            target = byname[os.path.basename(inc)][0]
            fdeps[f].add(target)
            there = os.path.dirname(target)
            if there != here:
                folder_edges[here].setdefault(there, "%s includes \"%s\"" % (f, inc))
                if there not in ALLOWED[here]:
                    bad.append("%s includes \"%s\": %s may not depend on %s" %
                               (f, inc, here, there))

    def cycle(graph):
        """One circle in graph (a list of nodes), or None."""
        state, stack = {}, []

        def visit(n):
            state[n] = 1
            stack.append(n)
            for m in sorted(graph.get(n, ())):
                if state.get(m) == 1:
                    return stack[stack.index(m):] + [m]
                if not state.get(m):
                    c = visit(m)
                    if c:
                        return c
            stack.pop()
            state[n] = 2
            return None

        for n in sorted(graph):
            if not state.get(n):
                c = visit(n)
                if c:
                    return c
        return None

    c = cycle({a: set(b) for a, b in folder_edges.items()})
    if c:
        bad.append("folders include each other in a circle: " + " -> ".join(c) + " (" +
                   "; ".join(folder_edges[c[i]][c[i + 1]] for i in range(len(c) - 1)) + ")")
    c = cycle(fdeps)
    if c:
        bad.append("files include each other in a circle: " + " -> ".join(c))

    for b in bad:
        print("layers: " + b)
    if bad:
        return 1
    print("layers: %d files, %d folders, no circle; every include points down" %
          (len(files), len(ALLOWED)))
    for a in sorted(folder_edges):
        print("  %-10s -> %s" % (a, " ".join(sorted(folder_edges[a]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""The store's Lua scripts against a real redis-server, as Redis runs them:
the assembled texts the build embeds (BUILD/svc/store/lua/*.lua) load with
SCRIPT LOAD under the SHA-1 the service calls them by, name every key they
touch in KEYS, and answer smoke calls made with `redis-cli --eval` -
including the guards that refuse a write whose caller read something that
changed in between (RETRY), which must change nothing.
"""
import hashlib
import os
import re
import subprocess
import tempfile
import unittest

import tcfixture
from tcfixture import ROOT

BUILD = os.path.join(ROOT, os.environ.get("TC_BUILD", "build"))
LUA = os.path.join(BUILD, "svc", "store", "lua")
SRC = os.path.join(ROOT, "svc", "store", "lua")
FP = "ab" * 32  # an idempotency fingerprint
AUDIT_META, AUDIT_E = "{tc}:audit:meta", "{tc}:audit:e"


def audit_keys(kind, subject):
    return [AUDIT_META, AUDIT_E, "{tc}:audit:s:" + subject, "{tc}:audit:k:" + kind]


def manifest():
    with open(os.path.join(LUA, "manifest.txt")) as f:
        return dict(line.split() for line in f if line.strip())


class LuaScripts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="tc-lua-")
        cls.redis = tcfixture.Redis(cls.tmp.name)
        cls.redis.start()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()
        cls.tmp.cleanup()

    def cli(self, *args):
        return self.redis.cli(*args).splitlines()

    def eval(self, script, keys, args):
        """redis-cli --eval: the reply's lines (raw mode flattens arrays)."""
        out = subprocess.run(["redis-cli", "-s", self.redis.sock, "--eval",
                              os.path.join(LUA, script + ".lua")] + keys + [","] + args,
                             capture_output=True, text=True, check=True).stdout
        return out.splitlines()

    # --- what the build embeds ----------------------------------------------

    def test_every_script_loads_under_its_sha(self):
        m = manifest()
        sources = sorted(f[:-4] for f in os.listdir(SRC) if f.endswith(".lua"))
        self.assertEqual(sorted(m), sources, "every svc/store/lua/*.lua is embedded")
        for name, sha in m.items():
            path = os.path.join(LUA, name + ".lua")
            with open(path, "rb") as f:
                text = f.read()
            self.assertEqual(hashlib.sha1(text).hexdigest(), sha, name)
            got = subprocess.run(["redis-cli", "-s", self.redis.sock, "-x", "SCRIPT", "LOAD"],
                                 input=text, capture_output=True, check=True).stdout
            self.assertEqual(got.decode().strip(), sha, name)

    def test_no_key_is_built_inside_lua(self):
        """Every key arrives in KEYS: no script names a key of ours itself
        (all of them start with the {tc} hash tag)."""
        for root, _, files in os.walk(SRC):
            for f in files:
                if f.endswith(".lua"):
                    with open(os.path.join(root, f)) as fh:
                        for n, line in enumerate(fh, 1):
                            code = line.split("--", 1)[0]
                            self.assertNotIn("{tc}", code, f"{f}:{n} builds a key")

    def test_shared_pieces_are_combined(self):
        with open(os.path.join(LUA, "put.lua")) as f:
            put = f.read()
        self.assertIn("local function audit(", put)
        self.assertIn("local function notice(", put)
        self.assertIn("local function body()", put)
        with open(os.path.join(LUA, "gcra.lua")) as f:
            self.assertNotIn("local function audit(", f.read())

    # --- smoke calls --------------------------------------------------------

    def test_gcra(self):
        key = "{tc}:rl:smoke"
        self.assertEqual(self.eval("gcra", [key], ["1000000", "1000000"]), ["0"])
        wait = int(self.eval("gcra", [key], ["1000000", "1000000"])[0])
        self.assertGreater(wait, 0)

    def test_audit_append(self):
        keys = audit_keys("note", "smoke-subject")
        first = int(self.eval("audit_append", keys, ["note", "tester", "smoke-subject", "b1"])[0])
        second = int(self.eval("audit_append", keys, ["note", "tester", "smoke-subject", "b2"])[0])
        self.assertEqual(second, first + 1)
        entry = self.redis.cli("HGET", AUDIT_E, str(second))
        self.assertRegex(entry, r"^tracecode-audit v1\nindex %d\ntime \d+\nkind note\nactor tester\n"
                                r"subject smoke-subject\nbody 2:b2" % second)
        self.assertEqual(self.cli("ZRANGE", keys[2], "0", "-1"), [str(first), str(second)])
        self.assertIn(str(second), self.cli("ZRANGE", keys[3], "0", "-1"))

    def put(self, rid, type_, id_, plats, fields, must_exist="0", fp=FP):
        kind = "manufacturer" if type_ == "mfr" else type_
        keys = ["{tc}:idem:smoke:" + rid, "{tc}:%s:%s" % (type_, id_), "{tc}:rev",
                "{tc}:changes"] + audit_keys(kind, id_)
        args = [fp if rid else "", "86400", type_, id_, "1000", must_exist, "86400000",
                "regulator:smoke", "10000"]
        if plats is None:
            args.append("")
        else:
            keys += ["{tc}:cert-platforms:" + id_] + audit_keys("delist", id_)
            for p in plats:
                keys += ["{tc}:cert-listings:%s:%s" % (id_, p), "{tc}:notices:" + p,
                         "{tc}:notice-log:" + p, "{tc}:notice-state:" + p]
            keys.append("{tc}:notices-unacked")
            args.append(str(len(plats)))
            args += plats
        return self.eval("put", keys, args + fields)

    def bind(self, plat, lid, code, batch, cert, serial, old=("", "", "")):
        keys = ["{tc}:idem:-"] + audit_keys("listing", plat) + [
            "{tc}:listing:%s:%s" % (plat, lid), "{tc}:code:" + code,
            "{tc}:cert-listings:%s:%s" % (cert, plat), "{tc}:batch-listings:%s:%s" % (batch, plat),
            "{tc}:cert-platforms:" + cert]
        if old[0]:
            keys += ["{tc}:code:" + old[0], "{tc}:cert-listings:%s:%s" % (old[2], plat),
                     "{tc}:batch-listings:%s:%s" % (old[1], plat)]
        return self.eval("bind", keys, ["", "86400", plat, lid, code, batch, cert, serial,
                                        old[0]])

    def test_put_is_idempotent(self):
        first = self.put("m1", "mfr", "M-SMOKE", None, ["name", "Acme", "status", "1"])
        self.assertEqual(first[0], "1")  # ran
        again = self.put("m1", "mfr", "M-SMOKE", None, ["name", "Acme", "status", "1"])
        self.assertEqual(again, ["0"] + first[1:])  # replayed: same outcome
        other = self.put("m1", "mfr", "M-SMOKE", None, ["name", "Other", "status", "1"])
        # same request id, other fingerprint? the fingerprint is FP for both here,
        # so what differs is only the body: still a replay, nothing written
        self.assertEqual(other[0], "0")
        self.assertEqual(self.redis.cli("HGET", "{tc}:mfr:M-SMOKE", "name").strip(), "Acme")

    def test_suspension_fans_out_and_guards_its_platforms(self):
        cert = "C-SMOKE-1"
        ok = self.put("", "cert", cert, [], ["status", "1", "reason", "", "updated", "1"])
        self.assertEqual(ok[0], "1")
        self.assertEqual(self.bind("shopA", "L1", "CODE1", "7", cert, "3"), ["1", "0", "0"])
        self.assertEqual(self.cli("SMEMBERS", "{tc}:cert-platforms:" + cert), ["shopA"])
        # The caller read no platforms, but shopA has listings now: refused,
        # nothing written (status, revision, notices).
        rev = self.redis.cli("GET", "{tc}:rev").strip()
        stale = self.put("", "cert", cert, [], ["status", "2", "reason", "x", "updated", "2"])
        self.assertTrue(stale[0].startswith("RETRY "), stale)
        self.assertEqual(self.redis.cli("HGET", "{tc}:cert:" + cert, "status").strip(), "1")
        self.assertEqual(self.redis.cli("GET", "{tc}:rev").strip(), rev)
        self.assertEqual(self.redis.cli("XLEN", "{tc}:notices:shopA").strip(), "0")
        # Read again: one notice naming L1, in the notice log and the audit log.
        done = self.put("", "cert", cert, ["shopA"],
                        ["status", "2", "reason", "x", "updated", "2"])
        self.assertEqual(done[0], "1")
        self.assertEqual(done[2], "1")  # {1, {rev, notices}}: one notice
        self.assertEqual(self.redis.cli("XLEN", "{tc}:notices:shopA").strip(), "1")
        entry = self.cli("XRANGE", "{tc}:notices:shopA", "-", "+")
        self.assertEqual(entry[entry.index("listings") + 1], "L1")
        self.assertEqual(self.redis.cli("ZCARD", "{tc}:notice-log:shopA").strip(), "1")
        # In the index of notices not acknowledged, by time, until acknowledged in full.
        nid = self.cli("ZRANGE", "{tc}:notice-log:shopA", "0", "-1")[0]
        unacked = "{tc}:notices-unacked"
        self.assertEqual(self.redis.cli("ZSCORE", unacked, "shopA\n" + nid).strip(),
                         nid.split("-")[0])
        ack_keys = ["{tc}:idem:-", "{tc}:notices:shopA", "{tc}:notice-state:shopA",
                    "{tc}:notice-acked:shopA:" + nid] + audit_keys("ack", "shopA") + [unacked]
        self.eval("notice_ack", ack_keys, ["", "86400", nid, "0", "shopA", "L1"])
        self.assertEqual(self.redis.cli("ZSCORE", unacked, "shopA\n" + nid).strip(), "")
        kinds = [self.redis.cli("HGET", AUDIT_E, i).split("\n")[3]
                 for i in self.cli("ZRANGE", "{tc}:audit:s:" + cert, "0", "-1")]
        self.assertEqual(kinds, ["kind cert", "kind cert", "kind delist"])

    def test_bind_guards_what_it_read(self):
        cert = "C-SMOKE-2"
        self.assertEqual(self.bind("shopB", "L9", "CODE9", "8", cert, "1"), ["1", "0", "0"])
        # The caller thinks L9 is not bound: refused, still bound to CODE9.
        stale = self.bind("shopB", "L9", "CODE10", "8", cert, "2")
        self.assertTrue(stale[0].startswith("RETRY "), stale)
        self.assertEqual(self.redis.cli("HGET", "{tc}:listing:shopB:L9", "code").strip(), "CODE9")
        self.assertEqual(self.redis.cli("SCARD", "{tc}:code:CODE10").strip(), "0")
        # bind_plan says what it is bound to; with that, the rebinding moves it.
        plan = self.eval("bind_plan", ["{tc}:listing:shopB:L9", "{tc}:listing:shopB:none"], [])
        self.assertEqual(plan, ["CODE9", "8", cert, "", "", ""])
        moved = self.bind("shopB", "L9", "CODE10", "8", cert, "2", old=("CODE9", "8", cert))
        self.assertEqual(moved[0], "1")
        self.assertEqual(self.redis.cli("SCARD", "{tc}:code:CODE9").strip(), "0")
        self.assertEqual(self.cli("SMEMBERS", "{tc}:code:CODE10"), ["shopB\tL9"])

    def recall(self, batch, cert, plats, lists):
        keys = ["{tc}:idem:-", "{tc}:batch:" + batch, "{tc}:recalls:" + batch, "{tc}:rev",
                "{tc}:changes"] + audit_keys("recall", batch) + [
            "{tc}:cert:" + cert, "{tc}:cert-platforms:" + cert] + audit_keys("delist", cert)
        args = ["", "86400", "1000", batch, "M-R", "0", "5", "defect", "9", "86400000", "6",
                "10000", cert, str(len(plats))]
        for p, ids in zip(plats, lists):
            keys += ["{tc}:notices:" + p, "{tc}:notice-log:" + p, "{tc}:notice-state:" + p,
                     "{tc}:batch-listings:%s:%s" % (batch, p)]
            keys += ["{tc}:listing:%s:%s" % (p, i) for i in ids]
            args += [p, str(len(ids))] + ids
        keys.append("{tc}:notices-unacked")
        return self.eval("recall", keys, args)

    def test_recall_guards_its_listings(self):
        cert, batch = "C-SMOKE-3", "77"
        self.redis.cli("HSET", "{tc}:batch:" + batch, "issuer", "M-R", "quantity", "10", "cert",
                       cert)
        self.redis.cli("HSET", "{tc}:cert:" + cert, "status", "1")
        self.bind("shopC", "R1", "RC1", batch, cert, "2")
        self.bind("shopC", "R2", "RC2", batch, cert, "8")
        stale = self.recall(batch, cert, ["shopC"], [["R1"]])
        self.assertTrue(stale[0].startswith("RETRY "), stale)
        self.assertEqual(self.redis.cli("LLEN", "{tc}:recalls:" + batch).strip(), "0")
        done = self.recall(batch, cert, ["shopC"], [["R1", "R2"]])
        self.assertEqual(done[0], "1")
        self.assertEqual(done[2:], ["1", "6"])  # one notice; affected kept
        entry = self.cli("XRANGE", "{tc}:notices:shopC", "-", "+")
        self.assertEqual(entry[entry.index("listings") + 1], "R1")  # serial 2 of 0..5; 8 is not

    def test_key_activate_guards_the_issuing_key(self):
        keys = ["{tc}:idem:-", "{tc}:key:41", "{tc}:rev", "{tc}:changes", "{tc}:keys:issuing",
                "{tc}:key:41"] + audit_keys("key", "key:41")
        stale = self.eval("key_activate", keys, ["", "86400", "1000", "41", "1", "100",
                                                 "regulator:smoke", "40"])
        self.assertTrue(stale[0].startswith("RETRY "), stale)
        self.assertEqual(self.redis.cli("HGET", "{tc}:keys:issuing", "1").strip(), "")
        done = self.eval("key_activate", keys, ["", "86400", "1000", "41", "1", "100",
                                                "regulator:smoke", ""])
        self.assertEqual(done[0], "1")
        self.assertEqual(self.redis.cli("HGET", "{tc}:keys:issuing", "1").strip(), "41")

    def test_read_sets(self):
        self.redis.cli("SADD", "{tc}:s:a", "x", "y")
        out = self.eval("read_sets", ["{tc}:s:a", "{tc}:s:none"], [])
        self.assertEqual(sorted(out), ["", "x", "y"])  # raw mode: an empty array is ""


if __name__ == "__main__":
    unittest.main(verbosity=2)

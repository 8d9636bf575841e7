#!/usr/bin/python3
"""The audit log end to end: one redis-server (AOF, fsync always) and two
tracesvc nodes. Every kind of change is logged; QueryAudit filters and
pages; tree heads, inclusion and consistency proofs are checked here with
an independent RFC 9162 implementation and `tracekeys export-public`;
`tracectl audit verify` finds an entry changed in Redis; when the
sequencing node is killed the other one carries the tree on, consistent
with the head signed before; a key rotation is logged and later heads are
signed with the new key.
"""
import hashlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcfixture as F  # noqa: E402

import grpc  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: E402

WORK = F.workdir()
F.generate_stubs(os.path.join(WORK, "stubs"))

from tracecode.v1 import audit_pb2 as A  # noqa: E402
from tracecode.v1 import issuer_pb2 as I  # noqa: E402
from tracecode.v1 import registry_pb2 as R  # noqa: E402
from tracecode.v1 import types_pb2 as T  # noqa: E402
from tracecode.v1 import verifier_pb2 as V  # noqa: E402

REG = F.md("regulator", "SAMR")
_seq = itertools.count(1)


def unique(prefix):
    return "%s%05d" % (prefix, next(_seq))


# -- RFC 9162 section 2.1, written here apart from the service's C ------------

def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf, index, size, proof, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(m, n, root1, root2, proof):
    if m == n:
        return not proof and root1 == root2
    if m == 0 or m > n or not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:
        path = [root1] + path
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == root1 and sr == root2 and sn == 0


def head_text(h):
    return ("tracecode-tree-head v1\nkey %d\nsize %d\nroot %s\ntime %d\n" % (
        h.key_id, h.size, h.root_hash.hex(), h.time_unix)).encode()


class Audit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = F.Redis(WORK)
        cls.redis.start()
        cls.keys = F.keyring(WORK)
        cls.svcs = [F.Service(WORK, "a", cls.redis.url, cls.keys,
                              ["--node-id", "a", "--http", "127.0.0.1:0"]).start(),
                    F.Service(WORK, "b", cls.redis.url, cls.keys, ["--node-id", "b"]).start()]
        cls.a, cls.b = (F.Node(s.port) for s in cls.svcs)
        cls.load_keys()

    @classmethod
    def load_keys(cls):
        cls.pubfile = os.path.join(WORK, "public.json")
        out = subprocess.run([F.binary("tracekeys"), "export-public", "--dir", cls.keys],
                             check=True, capture_output=True, text=True).stdout
        with open(cls.pubfile, "w") as f:
            f.write(out)
        cls.pubkeys = {k["kid"]: Ed25519PublicKey.from_public_bytes(bytes.fromhex(k["public"]))
                       for k in json.loads(out)["keys"] if k["kind"] == "ed25519"}

    @classmethod
    def tearDownClass(cls):
        bad = []
        for s in cls.svcs:
            rc = s.stop()
            if rc not in (0, None):
                bad.append("tracesvc exited %s:\n%s" % (rc, s.output()[-4000:]))
        cls.redis.stop()
        if bad:
            raise AssertionError("\n".join(bad))

    # -- helpers ------------------------------------------------------------------

    def node(self):
        """A node that is up (the failover test kills one)."""
        return self.a if self.svcs[0].proc else self.b

    def chain(self, node, quantity=8):
        credit, number = F.uscc(next(_seq)), unique("CCC2025")
        batch, codes = F.chain(node, credit, number, quantity)
        return credit, number, batch, codes

    def head(self, node=None, min_size=0, timeout=10.0):
        """The signed head, once it covers min_size entries."""
        n = node or self.node()
        end = time.time() + timeout
        while True:
            try:
                h = n.audit.GetTreeHead(A.GetTreeHeadRequest(), metadata=REG).tree_head
                if h.size >= min_size:
                    return h
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            if time.time() > end:
                self.fail("no tree head of size >= %d within %.0f s" % (min_size, timeout))
            time.sleep(0.05)

    def entries_count(self):
        return int(self.redis.cli("HGET", "{tc}:audit:meta", "n").strip() or 0)

    def query(self, node=None, **kw):
        return [m.entry for m in (node or self.node()).audit.QueryAudit(
            A.QueryAuditRequest(**kw), metadata=REG)]

    def tracectl(self, node_port, *args):
        return subprocess.run([F.binary("tracectl"), "--addr", "127.0.0.1:%d" % node_port,
                               "--insecure", "--role", "regulator", "--subject", "SAMR"] +
                              list(args), capture_output=True, text=True, timeout=120)

    def check_head(self, h):
        self.pubkeys[h.key_id].verify(h.signature, head_text(h))

    # -- tests --------------------------------------------------------------------

    def test_1_every_change_is_logged(self):
        n = self.a
        credit, number, batch, codes = self.chain(n)
        shop = unique("shop")
        n.ver.RegisterListings(V.RegisterListingsRequest(bindings=[
            V.ListingBinding(listing_id="L1", code=codes[0]),
            V.ListingBinding(listing_id="L2", code=codes[1])]), metadata=F.md("platform", shop))
        n.iss.RecallBatch(I.RecallBatchRequest(batch_id=batch, first_serial=0, last_serial=0,
                                               reason="swelling"),
                          metadata=F.md("manufacturer", credit))
        n.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
            number=number, status=T.CERTIFICATE_STATUS_SUSPENDED, reason="inspection"), metadata=REG)
        # two notices: the recall's (listing L1 holds serial 0) and the suspension's
        notices = [e for e in self.query(subject=number, kind="delist")]
        self.assertEqual(len(notices), 2)
        self.assertIn(b"\nbatch %d\n" % batch, notices[0].body)
        self.assertIn(b"\nlistings 1\nL1", notices[0].body)
        self.assertIn(b"\nstatus 2\n", notices[1].body)
        self.assertIn(b"\nlistings 2\n", notices[1].body)
        nid = re.search(rb"\nnotice (\S+)\n", notices[1].body).group(1).decode()
        n.ver.AckDelisting(V.AckDelistingRequest(notice_id=nid), metadata=F.md("platform", shop))

        by_kind = {}
        for sub in (credit, number, str(batch), shop):
            for e in self.query(subject=sub, limit=1000):
                by_kind.setdefault(e.kind, []).append(e)
        for kind in ("manufacturer", "cert", "issue", "recall", "listing", "delist", "ack"):
            self.assertIn(kind, by_kind, kind)
        issue = by_kind["issue"][0]
        self.assertEqual(issue.actor, "manufacturer:" + credit)
        self.assertIn(b"tracecode-manifest v1", issue.body)  # the signed manifest
        self.assertRegex(issue.body, rb"\nsignature [0-9a-f]{128}\n")
        self.assertIn(b"reason swelling", by_kind["recall"][0].body)
        self.assertIn(b"listing L1 code " + codes[0].encode(), by_kind["listing"][0].body)
        self.assertIn(b"\ncomplete yes", by_kind["ack"][0].body)
        cert = [e for e in by_kind["cert"] if b"status 2" in e.body]
        self.assertEqual(cert[0].actor, "regulator:SAMR")
        # each entry carries its leaf hash: SHA-256(0x00 || body)
        for e in by_kind["delist"] + by_kind["cert"]:
            self.assertEqual(e.leaf_hash, hashlib.sha256(b"\x00" + e.body).digest())
            self.assertTrue(e.body.startswith(b"tracecode-audit v1\nindex %d\n" % e.index))
        # the regulator's own queries are logged too, and so is a compliance query
        n.audit.GetDelistingCompliance(A.GetDelistingComplianceRequest(platform_id=shop),
                                       metadata=REG)
        q = self.query(subject=shop, kind="query")
        self.assertTrue(any(b"GetDelistingCompliance" in e.body for e in q))
        self.assertTrue(all(e.actor == "regulator:SAMR" for e in q))
        # the node's keys were recorded when it started
        self.assertTrue(self.query(kind="key"))

    def test_2_query_filters_pages_and_bounds(self):
        n = self.a
        credit, number, _, _ = self.chain(n)
        for i in range(5):
            n.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
                number=number, status=T.CERTIFICATE_STATUS_SUSPENDED if i % 2 == 0 else T.CERTIFICATE_STATUS_VALID, reason="r%d" % i),
                metadata=REG)
        every = self.query(subject=number, kind="cert", limit=1000)
        self.assertEqual(len(every), 6)  # the upsert and five status changes
        got, token = [], ""
        while True:
            page = self.query(subject=number, kind="cert", limit=2, page_token=token)
            got += page
            if len(page) < 2:
                break
            token = str(page[-1].index + 1)
        self.assertEqual([e.index for e in got], [e.index for e in every])
        self.assertEqual([e.index for e in every], sorted(e.index for e in every))
        # time ranges: everything so far is before the future, none after
        future = int(time.time()) + 3600
        self.assertEqual(self.query(subject=number, from_unix=future), [])
        self.assertEqual(len(self.query(subject=number, kind="cert", to_unix=future,
                                        from_unix=every[0].time_unix)), 6)
        # bad input: precise errors
        for req, text in ((dict(limit=5000), "limit 5000 is over 1000"),
                          (dict(page_token="abc"), "page_token"),
                          (dict(from_unix=10, to_unix=5), "to_unix"),
                          (dict(subject="x\ny"), "subject")):
            code, msg = F.status_of(self.query, **req)
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, req)
            self.assertIn(text, msg)
        # only regulators query; certifiers may read heads and proofs
        code, _ = F.status_of(lambda: list(n.audit.QueryAudit(
            A.QueryAuditRequest(), metadata=F.md("platform", "shop"))))
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        n.audit.GetTreeHead(A.GetTreeHeadRequest(), metadata=F.md("certifier", "CQC"))

    def test_3_heads_and_proofs_verify_independently(self):
        n = self.a
        self.chain(n)
        want = self.entries_count()
        h = self.head(min_size=want)
        self.check_head(h)
        self.assertGreater(time.time() + 5, h.time_unix)
        leaves = [e.leaf_hash for e in self.query(limit=1000)][:h.size]
        self.assertEqual(len(leaves), h.size)
        for i in list(range(min(h.size, 12))) + [h.size - 1]:
            p = n.audit.GetInclusionProof(A.GetInclusionProofRequest(index=i, tree_size=h.size),
                                          metadata=REG)
            self.assertTrue(verify_inclusion(leaves[i], i, h.size, list(p.hashes), h.root_hash))
            self.assertFalse(verify_inclusion(leaves[(i + 1) % h.size], i, h.size,
                                              list(p.hashes), h.root_hash))
        # grow the log, then prove the old head is a prefix of the new one
        self.chain(self.b)
        h2 = self.head(node=self.b, min_size=self.entries_count())
        self.check_head(h2)
        for m in (1, 2, 3, h.size - 1, h.size):
            p = self.b.audit.GetConsistencyProof(A.GetConsistencyProofRequest(
                from_size=m, to_size=h2.size), metadata=REG)
            root_m = h.root_hash if m == h.size else self.root_of(leaves[:m])
            self.assertTrue(verify_consistency(m, h2.size, root_m, h2.root_hash,
                                               list(p.hashes)), m)
        for req, code in ((A.GetInclusionProofRequest(index=h2.size, tree_size=h2.size),
                           grpc.StatusCode.OUT_OF_RANGE),
                          (A.GetInclusionProofRequest(index=0, tree_size=h2.size + 1000),
                           grpc.StatusCode.OUT_OF_RANGE)):
            self.assertEqual(F.status_of(n.audit.GetInclusionProof, req, metadata=REG)[0], code)
        self.assertEqual(F.status_of(n.audit.GetConsistencyProof, A.GetConsistencyProofRequest(
            from_size=0, to_size=3), metadata=REG)[0], grpc.StatusCode.INVALID_ARGUMENT)
        # the tree size is on /metrics
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.svcs[0].admin_port,
                                    timeout=10) as r:
            text = r.read().decode()
        size = int(re.search(r"^tracesvc_audit_tree_size (\d+)$", text, re.M).group(1))
        self.assertGreaterEqual(size, h.size)

    @staticmethod
    def root_of(leaves):
        if len(leaves) == 1:
            return leaves[0]
        k = 1
        while k * 2 < len(leaves):
            k *= 2
        return node_hash(Audit.root_of(leaves[:k]), Audit.root_of(leaves[k:]))

    def test_4_tracectl_verify_finds_tampering(self):
        self.chain(self.a)
        self.head(min_size=self.entries_count())
        port = self.svcs[0].port
        saved = os.path.join(WORK, "head.txt")
        r = self.tracectl(port, "audit", "verify", "--public-keys", self.pubfile, "--out", saved)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("audit log verified", r.stdout)
        # change one stored entry in Redis: verify fails and names it
        victim = self.query(kind="manufacturer")[0].index  # its body names "Acme"
        original = subprocess.run(["redis-cli", "-s", self.redis.sock, "HGET", "{tc}:audit:e",
                                   str(victim)], capture_output=True, check=True).stdout[:-1]
        forged = original.replace(b"Acme", b"Acne", 1)
        self.assertNotEqual(forged, original)
        subprocess.run(["redis-cli", "-s", self.redis.sock, "-x", "HSET", "{tc}:audit:e",
                        str(victim)], input=forged, check=True, capture_output=True)
        try:
            r = self.tracectl(port, "audit", "verify", "--public-keys", self.pubfile)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("entry %d does not match the signed tree head" % victim, r.stderr)
            r = self.tracectl(port, "audit", "verify", "--public-keys", self.pubfile, "--index",
                              str(victim))
            self.assertEqual(r.returncode, 1)
            self.assertIn("entry %d" % victim, r.stderr)
        finally:
            subprocess.run(["redis-cli", "-s", self.redis.sock, "-x", "HSET", "{tc}:audit:e",
                            str(victim)], input=original, check=True, capture_output=True)
        r = self.tracectl(port, "audit", "verify", "--public-keys", self.pubfile, "--since",
                          saved)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("consistent with the saved head", r.stdout)
        # a head file whose root was rewritten is caught as a rewritten history
        with open(saved) as f:
            text = f.read()
        bad = os.path.join(WORK, "bad-head.txt")
        with open(bad, "w") as f:
            f.write(re.sub(r"root ([0-9a-f])", lambda m: "root " + ("1" if m.group(1) != "1"
                                                                     else "2"), text))
        r = self.tracectl(port, "audit", "verify", "--public-keys", self.pubfile, "--since", bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn("signature of the saved head", r.stderr)
        # An outside auditor's own program, linking only auditor/, reads the same files.
        later = os.path.join(WORK, "head-later.txt")
        self.chain(self.a)
        self.head(min_size=self.entries_count())
        r = self.tracectl(port, "audit", "head", "--out", later)
        self.assertEqual(r.returncode, 0, r.stderr)
        check = [F.binary("check_head"), self.pubfile]
        r = subprocess.run(check + [saved, later], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.count(": ok\n"), 2, r.stdout)
        r = subprocess.run(check + [later, saved], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("the log shrank from", r.stdout)
        r = subprocess.run(check + [bad], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("does not verify with key", r.stdout)
        r = subprocess.run(check + ["/nonexistent"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)

    def test_5_sequencer_killed_another_carries_on(self):
        # which node sequences? the one whose log says so last
        def sequencer():
            for i, s in enumerate(self.svcs):
                lines = [l for l in s.output().splitlines() if "sequencing the log" in l]
                if lines and lines[-1].endswith('now sequencing the log"'):  # logfmt msg="..."
                    return i
            return None
        self.assertTrue(F.wait_for(lambda: sequencer() is not None, 10))
        k = sequencer()
        victim, other = self.svcs[k], self.svcs[1 - k]
        survivor = F.Node(other.port)
        self.chain(survivor)
        old = self.head(node=survivor, min_size=self.entries_count())
        saved = os.path.join(WORK, "before-kill.txt")
        r = self.tracectl(other.port, "audit", "head", "--out", saved)
        self.assertEqual(r.returncode, 0, r.stderr)
        victim.stop(signal.SIGKILL)
        self.chain(survivor)
        after = self.entries_count()
        h = self.head(node=survivor, min_size=after, timeout=15)
        self.assertGreater(h.size, old.size)
        self.check_head(h)
        self.assertIn("now sequencing the log", other.output())
        r = self.tracectl(other.port, "audit", "verify", "--public-keys", self.pubfile, "--since",
                          saved)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("consistent with the saved head of size", r.stdout)

    def test_6_key_rotation_is_logged_and_used(self):
        n = self.node()
        s = self.svcs[0] if n is self.a else self.svcs[1]
        before = self.query(node=n, kind="key", limit=1000)
        subprocess.run([F.binary("tracekeys"), "rotate", "--dir", self.keys, "--kind",
                        "ed25519"], check=True, capture_output=True)
        self.load_keys()
        self.assertEqual(s.stop(), 0)
        s.start()
        n2 = F.Node(s.port)
        after = self.query(node=n2, kind="key", limit=1000)
        self.assertEqual(len(after), len(before) + 1)
        newest = max(self.pubkeys)
        self.assertIn(b'"kid":%d' % newest, after[-1].body)
        self.chain(n2)
        h = self.head(node=n2, min_size=self.entries_count(), timeout=15)
        self.assertEqual(h.key_id, newest)
        self.check_head(h)
        # the stopped node flushed its verification counts: one entry per platform
        plat = unique("shop")
        _, _, _, codes = self.chain(n2)
        for c in codes[:3]:
            n2.ver.VerifyCode(V.VerifyCodeRequest(code=c), metadata=F.md("platform", plat))
        n2.ver.VerifyCode(V.VerifyCodeRequest(code="X" * 34), metadata=F.md("platform", plat))
        self.assertEqual(s.stop(), 0)
        s.start()
        n3 = F.Node(s.port)
        [v] = self.query(node=n3, subject=plat, kind="verify")
        self.assertIn(b"\ntotal 4\n", v.body)
        self.assertIn(b"\nGENUINE 3", v.body)
        self.assertTrue(v.actor.startswith("node:"))


if __name__ == "__main__":
    unittest.main(verbosity=2)

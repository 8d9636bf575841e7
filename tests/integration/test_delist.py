#!/usr/bin/python3
"""Auto-delisting end to end, through Python grpcio: one redis-server (AOF,
fsync always) and three tracesvc nodes on loopback. A platform watches on
node C while a regulator acts on node A and node B answers verifications;
notices carry exactly the platform's listings, are signed (checked against
`tracekeys export-public`), resume exactly once from a cursor, survive a
Redis kill -9 and restart, and are acknowledged and audited.
"""
import itertools
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
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
from tracecode.v1 import registry_pb2 as R  # noqa: E402
from tracecode.v1 import types_pb2 as T  # noqa: E402
from tracecode.v1 import verifier_pb2 as V  # noqa: E402

REG = F.md("regulator", "SAMR")
_seq = itertools.count(1)


def unique(prefix):
    return "%s%05d" % (prefix, next(_seq))


def plat(name):
    return F.md("platform", name)


class Watch:
    """A WatchDelistings call drained by a thread into a queue of notices;
    heartbeats (the other event of the oneof) are counted, not queued."""

    def __init__(self, node, platform, cursor="", start=True):
        self.q = queue.Queue()
        self.heartbeats = 0
        self.error = None
        self.done = threading.Event()
        self.call = node.ver.WatchDelistings(V.WatchDelistingsRequest(cursor=cursor),
                                             metadata=plat(platform))
        self.thread = threading.Thread(target=self._run, daemon=True)
        if start:
            self.thread.start()

    def _run(self):
        try:
            for m in self.call:
                if m.WhichOneof("event") == "notice":
                    self.q.put(m.notice)
                else:
                    self.assertTrue_heartbeat(m)
                    self.heartbeats += 1
        except grpc.RpcError as e:
            self.error = e
        self.done.set()

    @staticmethod
    def assertTrue_heartbeat(m):
        if m.WhichOneof("event") != "heartbeat" or m.heartbeat.sent_unix <= 0:
            raise AssertionError("not a notice nor a heartbeat: %r" % m)

    def take(self, n, timeout=10.0):
        out = []
        end = time.time() + timeout
        while len(out) < n:
            try:
                out.append(self.q.get(timeout=max(0.01, end - time.time())))
            except queue.Empty:
                break
        return out

    def cancel(self):
        self.call.cancel()
        self.done.wait(5)

    def live(self, timeout=5.0):
        """Wait for a heartbeat: the server sends one only to a watcher that
        is caught up and idle, so one arriving means the watch is live."""
        return F.wait_for(lambda: self.heartbeats >= 1 or self.done.is_set(), timeout) and \
            self.heartbeats >= 1

    def quiet_until_heartbeat(self, timeout=5.0):
        """Wait for the next heartbeat; a notice sent before it (a duplicate,
        say) would have arrived first on the same stream."""
        seen = self.heartbeats
        return F.wait_for(lambda: self.heartbeats > seen or self.done.is_set(), timeout) and \
            self.heartbeats > seen


def notice_text(m):
    """The canonical text a notice's signature covers (docs/ARCHITECTURE.md),
    built here independently of the service."""
    reason = m.reason.encode()
    head = ("tracecode-delisting-notice v1\nkey %d\nnotice %s\nplatform %s\ncertificate %s\n"
            "batch %d\nstatus %d\neffective %d\n" % (
                m.key_id, m.notice_id, m.platform_id, m.certificate_number, m.batch_id,
                m.new_status, m.effective_unix)).encode()
    body = b"reason %d:" % len(reason) + reason + b"\nlistings %d\n" % len(m.listing_ids)
    return head + body + b"".join(x.encode() + b"\n" for x in m.listing_ids)


class Delisting(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = F.Redis(WORK)
        cls.redis.start()
        cls.keys = F.keyring(WORK)
        extra = ["--heartbeat", "300", "--max-staleness", "1"]
        cls.svcs = [F.Service(WORK, n, cls.redis.url, cls.keys, extra).start()
                    for n in ("a", "b")]
        cls.svcs.append(F.Service(WORK, "c", cls.redis.url, cls.keys,
                                  extra + ["--watch-buffer", "1"]).start())
        cls.a, cls.b, cls.c = (F.Node(s.port) for s in cls.svcs)
        pub = json.loads(subprocess.run([F.binary("tracekeys"), "export-public", "--dir",
                                         cls.keys], check=True, capture_output=True,
                                        text=True).stdout)
        cls.pubkeys = {k["kid"]: Ed25519PublicKey.from_public_bytes(bytes.fromhex(k["public"]))
                       for k in pub["keys"] if k["kind"] == "ed25519"}

    @classmethod
    def tearDownClass(cls):
        bad = []
        for s in cls.svcs:
            rc = s.stop()
            if rc != 0:
                bad.append("tracesvc exited %s:\n%s" % (rc, s.output()[-4000:]))
        cls.redis.stop()
        if bad:
            raise AssertionError("\n".join(bad))

    # -- helpers ------------------------------------------------------------------

    def chain(self, quantity=20):
        """A manufacturer, a valid certificate, a product and a batch."""
        number = unique("CCC2025")
        _, codes = F.chain(self.a, F.uscc(next(_seq)), number, quantity)
        return number, codes

    def bind(self, platform, pairs, node=None):
        r = (node or self.a).ver.RegisterListings(V.RegisterListingsRequest(
            bindings=[V.ListingBinding(listing_id=l, code=c) for l, c in pairs]),
            metadata=plat(platform))
        return r.results

    def set_status(self, number, status, reason="test", node=None):
        return (node or self.a).reg.SetCertificateStatus(R.SetCertificateStatusRequest(
            number=number, status=status, reason=reason), metadata=REG)

    def stream_ids(self, platform):
        out = self.redis.cli("XRANGE", "{tc}:notices:" + platform, "-", "+")
        return [line for line in out.split("\n") if line and line[0].isdigit() and "-" in line
                and line.replace("-", "").isdigit()]

    def check_signature(self, m):
        self.pubkeys[m.key_id].verify(m.signature, notice_text(m))

    # -- the loop -----------------------------------------------------------------

    def test_revoke_on_a_reaches_watcher_on_c(self):
        number, codes = self.chain()
        p, q = unique("shopp"), unique("shopq")
        self.bind(p, [("P%d" % i, codes[i]) for i in range(5)])
        self.bind(q, [("Q1", codes[10])])
        wp, wq = Watch(self.c, p), Watch(self.c, q)
        self.assertTrue(wp.live() and wq.live())  # both caught up on C
        t0 = time.time()
        r = self.set_status(number, T.CERTIFICATE_STATUS_REVOKED, reason="fire risk")
        self.assertEqual(r.notices, 2)
        [m] = wp.take(1)
        latency = time.time() - t0
        self.assertEqual(sorted(m.listing_ids), ["P%d" % i for i in range(5)])
        self.assertEqual((m.certificate_number, m.new_status, m.reason, m.platform_id),
                         (number, T.CERTIFICATE_STATUS_REVOKED, "fire risk", p))
        self.assertTrue(m.notice_id and m.effective_unix > 0)
        self.check_signature(m)
        [mq] = wq.take(1)
        self.assertEqual(list(mq.listing_ids), ["Q1"])  # never another platform's listings
        self.check_signature(mq)
        # A tampered notice does not verify.
        m.listing_ids.pop()
        with self.assertRaises(Exception):
            self.check_signature(m)
        # Node B answers CERT_REVOKED (its replica follows the same change).
        self.assertTrue(F.wait_for(lambda: self.b.ver.VerifyCode(
            V.VerifyCodeRequest(code=codes[0]), metadata=plat(p)).result.verdict ==
            T.VERDICT_CERT_REVOKED, 5))
        self.assertLess(latency, 2.0)
        self.assertTrue(wp.q.empty() and wq.q.empty())
        wp.cancel()
        wq.cancel()

    def test_resume_exactly_once(self):
        number, codes = self.chain()
        p = unique("shopr")
        self.bind(p, [("R1", codes[0]), ("R2", codes[1])])
        w = Watch(self.c, p)
        self.set_status(number, T.CERTIFICATE_STATUS_SUSPENDED)
        self.set_status(number, T.CERTIFICATE_STATUS_VALID)
        got = w.take(2)
        self.assertEqual([m.new_status for m in got], [T.CERTIFICATE_STATUS_SUSPENDED, T.CERTIFICATE_STATUS_VALID])
        w.cancel()
        cursor = got[-1].notice_id
        # While nobody watches: four more, on two different nodes.
        for i, status in enumerate((T.CERTIFICATE_STATUS_REVOKED, T.CERTIFICATE_STATUS_VALID, T.CERTIFICATE_STATUS_SUSPENDED, T.CERTIFICATE_STATUS_VALID)):
            self.set_status(number, status, node=(self.a, self.b)[i % 2])
        w = Watch(self.b, p, cursor=cursor)
        later = w.take(4)
        self.assertEqual([m.new_status for m in later],
                         [T.CERTIFICATE_STATUS_REVOKED, T.CERTIFICATE_STATUS_VALID, T.CERTIFICATE_STATUS_SUSPENDED, T.CERTIFICATE_STATUS_VALID])
        self.set_status(number, T.CERTIFICATE_STATUS_REVOKED)
        later += w.take(1)
        self.assertTrue(w.quiet_until_heartbeat())
        self.assertTrue(w.q.empty(), "a notice came twice")
        ids = [m.notice_id for m in got + later]
        self.assertEqual(ids, self.stream_ids(p))  # each exactly once, in order
        w.cancel()
        # From the start again: everything retained.
        w = Watch(self.a, p)
        self.assertEqual([m.notice_id for m in w.take(7)], ids)
        w.cancel()

    def test_heartbeats_keep_idle_watchers(self):
        w = Watch(self.c, unique("shopidle"))
        t0 = time.time()
        self.assertTrue(F.wait_for(lambda: w.heartbeats >= 3, 5), w.heartbeats)  # --heartbeat 300
        self.assertGreater(time.time() - t0, 0.5)  # paced, not sent in a burst
        self.assertTrue(w.q.empty() and w.error is None)
        w.cancel()

    def test_cursors_out_of_range_and_malformed(self):
        number, codes = self.chain()
        p = unique("shopt")
        self.bind(p, [("T1", codes[0])])
        for status in (T.CERTIFICATE_STATUS_SUSPENDED, T.CERTIFICATE_STATUS_VALID, T.CERTIFICATE_STATUS_SUSPENDED):
            self.set_status(number, status)
        ids = self.stream_ids(p)
        self.assertEqual(len(ids), 3)
        # Retention trims by time; do what it does, now: drop the oldest two.
        self.redis.cli("XTRIM", "{tc}:notices:" + p, "MINID", ids[2])
        w = Watch(self.a, p, cursor=ids[0])
        w.done.wait(5)
        self.assertEqual(w.error.code(), grpc.StatusCode.OUT_OF_RANGE)
        self.assertIn("oldest available cursor: " + ids[1], w.error.details())
        w = Watch(self.a, p, cursor=ids[1])  # the oldest available cursor works
        self.assertEqual([m.notice_id for m in w.take(1)], [ids[2]])
        w.cancel()
        for bad, code in (("12", grpc.StatusCode.INVALID_ARGUMENT),
                          ("x-1", grpc.StatusCode.INVALID_ARGUMENT),
                          ("99999999999999-0", grpc.StatusCode.OUT_OF_RANGE)):
            w = Watch(self.a, p, cursor=bad)
            w.done.wait(5)
            self.assertEqual(w.error.code(), code, bad)

    def test_redis_killed_mid_stream_loses_no_acknowledged_notice(self):
        number, codes = self.chain()
        p = unique("shopk")
        self.bind(p, [("K1", codes[0])])
        w = Watch(self.c, p)
        self.assertTrue(w.live())
        acked = []  # reasons of the changes the regulator was told were written
        status = [T.CERTIFICATE_STATUS_SUSPENDED, T.CERTIFICATE_STATUS_VALID]
        stop = threading.Event()

        def regulator():
            i = 0
            while not stop.is_set():
                reason = "k%d" % i
                try:
                    r = self.set_status(number, status[i % 2], reason=reason, node=self.a)
                    if r.notices:
                        acked.append(reason)
                except grpc.RpcError:
                    time.sleep(0.05)  # not acknowledged; it may or may not have been written
                i += 1
        t = threading.Thread(target=regulator, daemon=True)
        t.start()
        self.assertTrue(F.wait_for(lambda: len(acked) >= 3, 10))  # writing, and being watched
        self.redis.proc.send_signal(signal.SIGKILL)
        self.redis.proc.wait()
        before = len(acked)
        time.sleep(0.5)  # Redis stays down a while: writes fail, nothing is acknowledged
        self.assertLessEqual(len(acked), before + 1)  # at most one answered as it died
        self.redis.start()  # AOF with fsync always: every acknowledged write is back
        self.assertTrue(F.wait_for(lambda: len(acked) >= before + 3, 15))  # writing again
        stop.set()
        t.join(10)
        self.assertGreater(len(acked), 4)
        stored = self.stream_ids(p)
        got = []
        while len(got) < len(stored):
            batch = w.take(len(stored) - len(got), timeout=10)
            got += batch
            if len(got) < len(stored) and w.done.is_set():  # ended: resume like a client
                w = Watch(self.c, p, cursor=got[-1].notice_id if got else "")
            elif not batch:
                break
        w.cancel()
        self.assertEqual([m.notice_id for m in got], stored)  # all, each once, in order
        missing = set(acked) - {m.reason for m in got}
        self.assertFalse(missing, "acknowledged but never delivered")

    def test_slow_watcher_is_told_to_resume(self):
        number, codes = self.chain(quantity=2000)
        p = unique("shops")
        for i in range(0, 2000, 1000):
            self.bind(p, [("S%04d" % j, codes[j]) for j in range(i, i + 1000)])
        # A client that reads nothing for now, with small HTTP/2 windows (no BDP
        # probing), so what it does not read stays queued on the server.
        slow = F.Node(self.svcs[2].port, options=[("grpc.http2.bdp_probe", 0),
                                                  ("grpc.http2.lookahead_bytes", 65536)])
        w = Watch(slow, p, start=False)
        # Not read, so not observable: give the call a moment to reach C
        # before the notices (had it not, it would read them from the
        # stream at its start instead, and still fall behind).
        time.sleep(0.3)
        for i in range(120):  # ~12 KB a notice: far beyond C's 1 MiB bound
            self.set_status(number, (T.CERTIFICATE_STATUS_SUSPENDED, T.CERTIFICATE_STATUS_VALID)[i % 2])
        time.sleep(0.5)  # the node queues what the client does not read (a time, not a state)
        w.thread.start()
        w.done.wait(20)
        self.assertEqual(w.error.code(), grpc.StatusCode.ABORTED, w.error.details())
        self.assertIn("fell behind", w.error.details())
        got = []
        while not w.q.empty():
            got.append(w.q.get())
        self.assertLess(len(got), 120)
        # Resume from the last notice received: the rest, each once.
        w = Watch(self.a, p, cursor=got[-1].notice_id if got else "")
        got += w.take(120 - len(got), timeout=20)
        w.cancel()
        self.assertEqual([m.notice_id for m in got], self.stream_ids(p))

    def test_drain_ends_watchers_with_their_cursor(self):
        number, codes = self.chain()
        p = unique("shopz")
        self.bind(p, [("Z1", codes[0])])
        d = F.Service(WORK, "d", self.redis.url, self.keys, ["--heartbeat", "300"]).start()
        w = Watch(F.Node(d.port), p)
        self.set_status(number, T.CERTIFICATE_STATUS_SUSPENDED)
        [m] = w.take(1)
        t0 = time.time()
        self.assertEqual(d.stop(), 0)
        self.assertLess(time.time() - t0, 5)  # watchers do not hold the drain
        w.done.wait(5)
        self.assertEqual(w.error.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn('draining', w.error.details())
        self.assertIn('resume from cursor "%s"' % m.notice_id, w.error.details())

    def unacked_metrics(self, svc):
        """tracesvc_delist_* from a node's /metrics: total, {platform: age}."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % svc.admin_port,
                                    timeout=5) as resp:
            text = resp.read().decode()
        total = re.search(r"^tracesvc_delist_unacked_notices (\d+)$", text, re.M)
        ages = {m.group(1): float(m.group(2)) for m in re.finditer(
            r'^tracesvc_delist_oldest_unacked_seconds\{platform="([^"]+)"\} ([0-9.]+)$', text,
            re.M)}
        return (int(total.group(1)) if total else None), ages

    def test_unacknowledged_notices_in_metrics(self):
        # A notice not acknowledged shows on every node's /metrics with its
        # age (the alert TracecodeDelistingUnacknowledged reads it); a
        # partial acknowledgement keeps it there, a complete one takes it out.
        number, codes = self.chain()
        p = unique("shope")
        self.bind(p, [("E1", codes[0]), ("E2", codes[1])])
        _, before = self.unacked_metrics(self.svcs[1])
        self.assertNotIn(p, before)
        written = time.time()
        self.set_status(number, T.CERTIFICATE_STATUS_SUSPENDED)
        notice = self.stream_ids(p)[0]
        for svc in self.svcs:
            self.assertTrue(F.wait_for(lambda: p in self.unacked_metrics(svc)[1], 5),
                            "node %s does not list %s" % (svc.log_path, p))
        total, ages = self.unacked_metrics(self.svcs[2])
        self.assertGreaterEqual(total, 1)
        self.assertLessEqual(ages[p], time.time() - written + 2.5)  # read at most 1 s ago
        time.sleep(1.5)  # the age grows while nobody acknowledges
        self.assertGreater(self.unacked_metrics(self.svcs[2])[1][p], ages[p] + 0.5)
        ack = self.b.ver.AckDelisting
        ack(V.AckDelistingRequest(notice_id=notice, listing_ids=["E1"]), metadata=plat(p))
        time.sleep(1.2)  # a read later: still open (E2 is not delisted)
        self.assertIn(p, self.unacked_metrics(self.svcs[0])[1])
        ack(V.AckDelistingRequest(notice_id=notice, listing_ids=["E2"]), metadata=plat(p))
        self.assertTrue(F.wait_for(lambda: p not in self.unacked_metrics(self.svcs[0])[1], 5))
        self.assertEqual(self.redis.cli("ZSCORE", "{tc}:notices-unacked", p + "\n" + notice)
                         .strip(), "")

    def test_ack_and_compliance(self):
        number, codes = self.chain()
        p, q = unique("shopc"), unique("shopd")
        self.bind(p, [("C1", codes[0]), ("C2", codes[1]), ("C3", codes[2])])
        self.bind(q, [("D1", codes[3])])
        w = Watch(self.c, p)
        self.set_status(number, T.CERTIFICATE_STATUS_SUSPENDED)
        self.set_status(number, T.CERTIFICATE_STATUS_VALID)
        self.set_status(number, T.CERTIFICATE_STATUS_REVOKED)
        n1, n2, n3 = w.take(3)
        w.cancel()
        now = int(time.time())
        ack = self.c.ver.AckDelisting
        ack(V.AckDelistingRequest(notice_id=n1.notice_id, delisted_unix=now), metadata=plat(p))
        # In parts: C1, then C2 and C3; a repeat changes nothing.
        ack(V.AckDelistingRequest(notice_id=n3.notice_id, listing_ids=["C1"],
                                  delisted_unix=now), metadata=plat(p))
        rep = self.a.audit.GetDelistingCompliance(A.GetDelistingComplianceRequest(
            platform_id=p), metadata=REG)
        self.assertEqual((rep.notices, rep.acked, rep.listings), (3, 1, 9))
        self.assertEqual(sorted(rep.unacked), sorted([n2.notice_id, n3.notice_id]))
        ack(V.AckDelistingRequest(notice_id=n3.notice_id, listing_ids=["C2", "C3"]),
            metadata=plat(p))
        ack(V.AckDelistingRequest(notice_id=n3.notice_id, listing_ids=["C2"]), metadata=plat(p))
        rep = self.b.audit.GetDelistingCompliance(A.GetDelistingComplianceRequest(
            platform_id=p, from_unix=now - 60, to_unix=now + 60), metadata=REG)
        self.assertEqual((rep.notices, rep.acked, list(rep.unacked)), (3, 2, [n2.notice_id]))
        self.assertGreaterEqual(rep.p99_seconds, rep.p50_seconds)
        self.assertGreater(rep.p50_seconds, 0)
        self.assertLess(rep.p99_seconds, 30)
        # Refusals change nothing.
        for req, md, code, words in (
                (V.AckDelistingRequest(notice_id=n2.notice_id, listing_ids=["D1"]), plat(p),
                 grpc.StatusCode.INVALID_ARGUMENT, "listing D1 is not in notice"),
                (V.AckDelistingRequest(notice_id="1-0"), plat(q),
                 grpc.StatusCode.NOT_FOUND, "was not sent to this platform"),
                (V.AckDelistingRequest(notice_id="nope"), plat(p),
                 grpc.StatusCode.INVALID_ARGUMENT, "not a notice id"),
                (V.AckDelistingRequest(notice_id=n2.notice_id, delisted_unix=now + 86400),
                 plat(p), grpc.StatusCode.INVALID_ARGUMENT, "in the future"),
                (V.AckDelistingRequest(notice_id=n2.notice_id), REG,
                 grpc.StatusCode.PERMISSION_DENIED, "")):
            c, msg = F.status_of(ack, req, metadata=md)
            self.assertEqual(c, code, msg)
            self.assertIn(words, msg)
        # Platform q's notices of the same changes are q's own (their ids come from
        # q's stream): acknowledging q's second one leaves p's second one open.
        ack(V.AckDelistingRequest(notice_id=self.stream_ids(q)[1]), metadata=plat(q))
        rep = self.a.audit.GetDelistingCompliance(A.GetDelistingComplianceRequest(
            platform_id=p), metadata=REG)
        self.assertEqual((rep.acked, list(rep.unacked)), (2, [n2.notice_id]))
        rep = self.a.audit.GetDelistingCompliance(A.GetDelistingComplianceRequest(
            platform_id=q), metadata=REG)
        self.assertEqual((rep.notices, rep.acked, rep.listings), (3, 1, 3))
        # An empty window; and a platform may not read the audit.
        rep = self.a.audit.GetDelistingCompliance(A.GetDelistingComplianceRequest(
            platform_id=p, from_unix=1, to_unix=2), metadata=REG)
        self.assertEqual((rep.notices, rep.acked, rep.p50_seconds), (0, 0, 0))
        c, _ = F.status_of(self.a.audit.GetDelistingCompliance,
                              A.GetDelistingComplianceRequest(platform_id=p), metadata=plat(p))
        self.assertEqual(c, grpc.StatusCode.PERMISSION_DENIED)


if __name__ == "__main__":
    unittest.main(verbosity=2)

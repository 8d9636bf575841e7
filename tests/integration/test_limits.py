#!/usr/bin/python3
"""Fair shares and rate limits (issue 12), each finding reproduced as it
was found against a real tracesvc and redis-server:

* 130 WatchDelistings streams from one platform made another platform's
  watch time out: now a platform holds at most 16 on a node (default), the
  rest are told RESOURCE_EXHAUSTED at once, and another platform's watch
  works;
* 8 stalled IssueCodes streams from one manufacturer blocked another's: at
  most 2 per manufacturer (default);
* one platform verified forged codes at full speed with no limit: with a
  verify_rate it gets RESOURCE_EXHAUSTED naming the limit and the wait,
  while another platform's latency stays within 2x of idle;
* write_rate across the deployment (GCRA in Redis), off unless set;
* the limits file and --limit flags are checked, and refusals counted.
"""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcfixture as F  # noqa: E402

import grpc  # noqa: E402

WORK = F.workdir()
F.generate_stubs(os.path.join(WORK, "stubs"))

from tracecode.v1 import issuer_pb2 as I  # noqa: E402
from tracecode.v1 import types_pb2 as T  # noqa: E402
from tracecode.v1 import verifier_pb2 as V  # noqa: E402

REG = F.md("regulator", "SAMR")


def median(v):
    v = sorted(v)
    return v[len(v) // 2]


def next_seq():
    return int(F.unique("")[-5:])


LIMITS = os.path.join(WORK, "limits.conf")
with open(LIMITS, "w") as _f:
    _f.write("# verify rates per node\n"
             "platform/flood verify_rate 3000   # codes/s\n"
             "platform/flood verify_burst 500\n")


class Limits(F.ServiceCase):
    WORK = WORK
    EXTRA = ("--heartbeat", "200", "--http", "127.0.0.1:0", "--limits", LIMITS,
             "--limit", "manufacturer/" + F.uscc(900) + ":write_rate=1")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.maker = F.uscc(next_seq())
        _, cls.codes = F.chain(cls.a, cls.maker, "CCC-L-1", 100)

    def test_watch_streams_per_platform(self):
        calls = [self.a.ver.WatchDelistings(V.WatchDelistingsRequest(),
                                            metadata=F.md("platform", "hog")) for _ in range(130)]
        refused, open_ = 0, []
        try:
            for c in calls:
                try:
                    first = next(c)  # a heartbeat within 200 ms when admitted
                    self.assertEqual(first.WhichOneof("event"), "heartbeat")
                    open_.append(c)
                except grpc.RpcError as e:
                    self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
                    self.assertIn("watch_streams: platform hog has 16 open on this node, the "
                                  "limit is 16", e.details())
                    refused += 1
            self.assertEqual((len(open_), refused), (16, 114))
            # Another platform's watch is served at once.
            t0 = time.time()
            other = self.a.ver.WatchDelistings(V.WatchDelistingsRequest(),
                                               metadata=F.md("platform", "calm"), timeout=5)
            self.assertEqual(next(other).WhichOneof("event"), "heartbeat")
            self.assertLess(time.time() - t0, 2.0)
            other.cancel()
        finally:
            for c in calls:
                c.cancel()
        # Closed streams give their share back.
        self.assertTrue(F.wait_for(lambda: self._watch_ok("hog"), 5))

    def _watch_ok(self, platform):
        c = self.a.ver.WatchDelistings(V.WatchDelistingsRequest(),
                                       metadata=F.md("platform", platform), timeout=3)
        try:
            next(c)
            return True
        except grpc.RpcError:
            return False
        finally:
            c.cancel()

    def product(self, maker):
        self.a.reg.UpsertManufacturer(F.mfr_req(credit_code=maker, name="M"), metadata=REG)
        number = "CCC-L-%d" % next_seq()
        self.a.reg.UpsertCertificate(F.cert_req(number=number, kind=T.CERTIFICATE_KIND_CCC,
                                                holder_credit_code=maker,
                                                category_codes=["0704"]), metadata=REG)
        return self.a.iss.RegisterProduct(I.RegisterProductRequest(
            certificate_number=number, category_code="0704", brand="B", model="M"),
            metadata=F.md("manufacturer", maker)).product.product_id

    def test_stalled_issuance_streams_per_manufacturer(self):
        m1, m2 = F.uscc(next_seq()), F.uscc(next_seq())
        p1, p2 = self.product(m1), self.product(m2)
        # A client that asks for big batches and does not read them (small
        # HTTP/2 windows, so the server's sends stall).
        slow = F.Node(self.svc.port, options=[("grpc.http2.bdp_probe", 0),
                                              ("grpc.http2.lookahead_bytes", 65536)])
        before = self.refusals("issue_streams")
        stalled = [slow.iss.IssueCodes(I.IssueCodesRequest(product_id=p1, quantity=500000),
                                       metadata=F.md("manufacturer", m1)) for _ in range(8)]
        try:
            # all eight reached the node: two streaming, six refused
            self.assertTrue(F.wait_for(lambda: self.refusals("issue_streams") >= before + 6, 10))
            refused = 0
            for c in stalled:
                try:
                    next(c)
                except grpc.RpcError as e:
                    self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
                    self.assertIn("issue_streams: manufacturer %s has 2 open" % m1, e.details())
                    refused += 1
            self.assertEqual(refused, 6)
            # Another manufacturer issues as if alone.
            t0 = time.time()
            got = sum(len(m.codes) for m in self.a.iss.IssueCodes(
                I.IssueCodesRequest(product_id=p2, quantity=20000),
                metadata=F.md("manufacturer", m2), timeout=20))
            self.assertEqual(got, 20000)
            self.assertLess(time.time() - t0, 10)
        finally:
            for c in stalled:
                c.cancel()
            slow.channel.close()

    def verify_latency(self, platform, n=60):
        lat = []
        for i in range(n):
            t0 = time.perf_counter()
            r = self.a.ver.VerifyCode(V.VerifyCodeRequest(code=self.codes[i % 100]),
                                      metadata=F.md("platform", platform), timeout=5)
            lat.append(time.perf_counter() - t0)
            self.assertEqual(r.result.verdict, T.VERDICT_GENUINE)
        return median(lat)

    def test_verify_rate_refuses_the_flood_not_the_others(self):
        self.verify_latency("calm", 20)  # warm
        idle = self.verify_latency("calm", 100)
        # The flood from another process (so that it does not share this
        # one's interpreter lock with the measurements): forged codes, far
        # over its rate, paced (a call of 100 codes every 5 ms per thread,
        # 2 threads: ~40,000 codes/s against 3,000).
        forged = [c[:20] + ("A" if c[20] != "A" else "B") + c[21:] for c in self.codes]
        script = os.path.join(WORK, "flood.py")
        with open(script, "w") as f:
            f.write("""
import sys, threading, time
sys.path.insert(0, %r)
import tcfixture as F
F.generate_stubs(%r)
import grpc
from tracecode.v1 import verifier_pb2 as V
n = F.Node(%d)
codes = %r
ok, refused, msgs = [0], [0], []
def flood():
    end = time.time() + float(sys.argv[1])
    while time.time() < end:
        time.sleep(0.005)
        try:
            n.ver.VerifyBatch(V.VerifyBatchRequest(items=[V.VerifyItem(code=c) for c in codes]),
                              metadata=F.md("platform", "flood"), timeout=5)
            ok[0] += 1
        except grpc.RpcError as e:
            refused[0] += 1
            msgs.append(e.code().name + " " + e.details())
ts = [threading.Thread(target=flood) for _ in range(2)]
[t.start() for t in ts]
[t.join() for t in ts]
print(ok[0], refused[0])
print(msgs[0] if msgs else "")
""" % (os.path.dirname(os.path.abspath(__file__)), os.path.join(WORK, "stubs-flood"),
                   self.svc.port, forged))
        import subprocess
        flood = subprocess.Popen([sys.executable, script, "6"], stdout=subprocess.PIPE, text=True)
        try:
            before = self.refusals("verify_rate")
            self.assertTrue(F.wait_for(lambda: self.refusals("verify_rate") > before + 10, 15))
            busy = self.verify_latency("calm", 100)
        finally:
            out, _ = flood.communicate(timeout=60)
        ok, refused = (int(x) for x in out.splitlines()[0].split())
        first = out.splitlines()[1]
        self.assertGreater(refused, ok)
        self.assertIn("RESOURCE_EXHAUSTED verify_rate: platform flood may verify 3000 codes/s "
                      "on this node (burst 500); retry in", first)
        # 3,000 codes/s is 30 calls of 100 codes a second, give or take the burst.
        self.assertLess(ok, 30 * 6 + 10)
        self.assertLess(busy, max(2 * idle, idle + 0.002),
                        "calm platform: idle %.2f ms, during the flood %.2f ms" %
                        (idle * 1000, busy * 1000))
        self.assertRegex(self.metrics(), r'tracesvc_limit_refusals_total\{limit="verify_rate"\} '
                                         r'[1-9]')

    def refusals(self, limit):
        m = re.search(r'tracesvc_limit_refusals_total\{limit="%s"\} (\d+)' % limit, self.metrics())
        return int(m.group(1)) if m else 0

    def metrics(self):
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.svc.admin_port,
                                    timeout=5) as r:
            return r.read().decode()

    def test_write_rate_across_the_deployment(self):
        maker = F.uscc(900)  # write_rate 1/s, burst 1
        call = lambda n: self.a.reg.UpsertManufacturer(  # noqa: E731
            F.mfr_req(credit_code=maker, name="n%d" % n), metadata=F.md("regulator", "SAMR"))
        call(0)  # regulators have no write_rate: not limited
        call(1)
        code, msg = F.status_of(self.product, maker)
        self.assertEqual(code, grpc.StatusCode.OK, msg)  # one write in the bucket
        # The bucket lives in Redis, so every node shares it.
        self.assertEqual(self.redis.cli("EXISTS", "{tc}:gcra:manufacturer:" + maker).strip(), "1")
        code, msg = F.status_of(self.a.iss.RegisterProduct, I.RegisterProductRequest(
            certificate_number="NONE", category_code="0704", brand="B", model="M"),
            metadata=F.md("manufacturer", maker))
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, msg)
        self.assertIn("write_rate: manufacturer %s may write 1 times/s across the deployment "
                      "(burst 1); retry in 0." % maker, msg)
        self.assertRegex(self.metrics(), r'tracesvc_limit_refusals_total\{limit="write_rate"\} 1')

    def test_forgery_signal(self):
        """A platform feeding counterfeit codes: past the share over the
        window, an audit entry names it, /metrics flags it and (with
        --forgery-throttle) its verifications are bounded; others are not."""
        from tracecode.v1 import audit_pb2 as A
        b = F.Service(WORK, "forgery", self.redis.url, self.keys,
                      ["--http", "127.0.0.1:0", "--forgery-window", "3", "--forgery-min", "300",
                       "--forgery-percent", "50", "--forgery-throttle", "200"]).start()
        try:
            n = F.Node(b.port)
            forged = [c[:20] + ("A" if c[20] != "A" else "B") + c[21:] for c in self.codes]
            bad, good = F.md("platform", "fake-shop"), F.md("platform", "honest-shop")
            for _ in range(4):  # 400 forged + 40 genuine: 91 % forged
                n.ver.VerifyBatch(V.VerifyBatchRequest(items=[V.VerifyItem(code=c)
                                                              for c in forged]), metadata=bad)
                n.ver.VerifyBatch(V.VerifyBatchRequest(items=[V.VerifyItem(code=c)
                                                              for c in self.codes[:10]]),
                                  metadata=bad)
            # Honest traffic of the same size is not flagged.
            for _ in range(4):
                n.ver.VerifyBatch(V.VerifyBatchRequest(items=[V.VerifyItem(code=c)
                                                              for c in self.codes]),
                                  metadata=good)

            def entries():
                return [m.entry for m in n.audit.QueryAudit(
                    A.QueryAuditRequest(kind="forgery"), metadata=REG)]
            self.assertTrue(F.wait_for(lambda: len(entries()) == 1, 5), b.output())
            e = entries()[0]
            self.assertEqual(e.subject, "fake-shop")
            self.assertIn(b"\nverified 440\nforged 400\nmalformed 0\n", e.body)
            self.assertIn("forgery signal: platform fake-shop: 400 of 440 codes forged or "
                          "malformed in 3 s; throttled", b.output())
            import urllib.request
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % b.admin_port) as r:
                m = r.read().decode()
            self.assertIn('tracesvc_forgery_suspected{platform="fake-shop"} 1', m)
            self.assertIn('tracesvc_forgery_suspected{platform="honest-shop"} 0', m)
            self.assertIn('tracesvc_forged_share{platform="fake-shop"} 0.909', m)
            # Throttled: 200 codes/s, so a batch of 100 then another is refused.
            code, msg = F.status_of(lambda: [n.ver.VerifyBatch(V.VerifyBatchRequest(
                items=[V.VerifyItem(code=c) for c in self.codes]), metadata=bad)
                for _ in range(4)])
            self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, msg)
            self.assertIn("forgery throttle: platform fake-shop sent mostly forged", msg)
            n.ver.VerifyBatch(V.VerifyBatchRequest(items=[V.VerifyItem(code=c)
                                                          for c in self.codes]), metadata=good)
            # Once the window holds no such traffic, the flag is lifted.
            self.assertTrue(F.wait_for(lambda: "fake-shop is back under the threshold" in
                                       b.output(), 10))
            n.ver.VerifyBatch(V.VerifyBatchRequest(items=[V.VerifyItem(code=c)
                                                          for c in self.codes]), metadata=bad)
        finally:
            rc = b.stop()
        self.assertEqual(rc, 0)

    def test_bad_limits_refuse_to_start(self):
        import subprocess
        for flags, want in ((["--limit", "platform:verify_rat=5"], "unknown limit 'verify_rat'"),
                            (["--limit", "shop:verify_rate=5"], "scope 'shop' is not"),
                            (["--limit", "platform:verify_rate=-1"], "must be a number from 0"),
                            (["--limits", "/nonexistent"], "cannot open the limits file")):
            p = subprocess.run([F.binary("tracesvc"), "--redis", self.redis.url, "--keys",
                                self.keys, "--grpc", "127.0.0.1:0", "--insecure"] + flags,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 1, flags)
            self.assertIn(want, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

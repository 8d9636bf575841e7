#!/usr/bin/python3
"""Sold codes (docs/SALES.md), against a real redis-server and tracesvc:
VerifierService.ReportSales records a code's first sale (platform, time,
a salted hash of the order reference - never the reference); a second sale
on any platform is ALREADY_SOLD naming the first, flagged, in the audit
log; the seller undoes its own sale within the window, nobody else can;
request ids replay; bad input writes nothing; consumers see the sale and a
copy warning; each code's record is under its own hash tag.
"""
import itertools
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

from tracecode.v1 import audit_pb2 as A  # noqa: E402
from tracecode.v1 import consumer_pb2 as C  # noqa: E402
from tracecode.v1 import types_pb2 as T  # noqa: E402
from tracecode.v1 import verifier_pb2 as V  # noqa: E402

REG = F.md("regulator", "SAMR")
_seq = itertools.count(1)


def plat(name):
    return F.md("platform", name)


def sale(code, ref):
    return V.SaleItem(code=code, order_ref=ref)


class Sales(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = F.Redis(WORK)
        cls.redis.start()
        cls.keys = F.keyring(WORK)
        cls.svc = F.Service(WORK, "a", cls.redis.url, cls.keys, ["--http", "127.0.0.1:0"]).start()
        cls.short = F.Service(WORK, "b", cls.redis.url, cls.keys,
                              ["--sale-undo-window", "1"]).start()
        cls.node, cls.node_b = F.Node(cls.svc.port), F.Node(cls.short.port)
        _, cls.codes = F.chain(cls.node, F.uscc(81), "CCC-SALES-1", 40)
        cls.next = iter(cls.codes)

    @classmethod
    def tearDownClass(cls):
        rcs = [cls.svc.stop(), cls.short.stop()]
        cls.redis.stop()
        if rcs != [0, 0]:
            raise AssertionError("tracesvc exited %s:\n%s" % (rcs, cls.svc.output()[-3000:]))

    def report(self, platform, items, node=None, **kw):
        return (node or self.node).ver.ReportSales(
            V.ReportSalesRequest(items=items, **kw), metadata=plat(platform)).results

    def record(self, code):
        out = self.redis.cli("HGETALL", "tc:{%s}:sale" % code).split("\n")[:-1]
        return dict(zip(out[0::2], out[1::2]))

    def test_first_second_and_repeated_sales(self):
        code = next(self.next)
        t0 = int(time.time())
        r = self.report("shop-a", [sale(code, "ORDER-1001")])[0]
        self.assertEqual((r.verdict, r.first_platform_id, r.suspected_copy),
                         (T.VERDICT_GENUINE, "shop-a", False))
        self.assertLessEqual(abs(r.first_sold_unix - t0), 2)
        rec = self.record(code)
        self.assertEqual(rec["platform"], "shop-a")
        self.assertRegex(rec["order"], r"^[0-9a-f]{64}$")  # a salted hash ...
        values = self.redis.cli("HVALS", "tc:{%s}:sale" % code)
        self.assertNotIn("ORDER-1001", values)  # ... only: the reference is never stored
        # The same platform reporting the same order again: its own sale.
        again = self.report("shop-a", [sale(code, "ORDER-1001")])[0]
        self.assertEqual((again.verdict, again.first_platform_id), (T.VERDICT_GENUINE, "shop-a"))
        self.assertEqual(self.redis.cli("SCARD", "tc:{%s}:sale-dups" % code).strip(), "0")
        # Another platform sells the same code: a copy's sale.
        second = self.report("shop-b", [sale(code, "B-77")])[0]
        self.assertEqual(second.verdict, T.VERDICT_ALREADY_SOLD)
        self.assertEqual((second.first_platform_id, second.first_sold_unix),
                         ("shop-a", r.first_sold_unix))
        self.assertTrue(second.suspected_copy)
        self.assertIn("already sold by platform shop-a", second.detail)
        # The same platform under another order: sold twice as well.
        third = self.report("shop-a", [sale(code, "ORDER-2002")])[0]
        self.assertEqual(third.verdict, T.VERDICT_ALREADY_SOLD)
        self.assertEqual(self.redis.cli("SCARD", "tc:{%s}:sale-dups" % code).strip(), "2")
        # The regulator finds the second sales in the audit log.
        entries = [m.entry for m in self.node.audit.QueryAudit(
            A.QueryAuditRequest(subject=code, kind="sale-copy"), metadata=REG)]
        self.assertEqual(len(entries), 2)
        self.assertIn(b"first_platform shop-a", entries[0].body)
        # Consumers see the sale and the warning (ConsumerService and the page).
        s = self.node.con.Scan(C.ScanRequest(code=code), metadata=plat("shop-c"))
        self.assertEqual((s.sold_platform_id, s.sales, s.suspected_copy), ("shop-a", 3, True))
        self.assertIn("sold 3 times", self.scan_json(code)["copy_reasons"])

    def scan_json(self, code):
        import http.client
        import json
        c = http.client.HTTPConnection("127.0.0.1", self.svc.http_port, timeout=10)
        c.request("GET", "/api/v1/scan/" + code)
        r = c.getresponse()
        body = r.read()
        c.close()
        self.assertEqual(r.status, 200)
        return json.loads(body)

    def page(self, code, lang="zh"):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.svc.http_port, timeout=10)
        c.request("GET", "/C/%s?lang=%s" % (code, lang), headers={"User-Agent": "Mozilla/5.0"})
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return re.sub(r"<style>.*?</style>|<[^>]+>", " ", body)

    def test_consumers_see_the_sale(self):
        code = next(self.next)
        self.report("shop-a", [sale(code, "O-1")])
        zh, en = self.page(code), self.page(code, "en")
        self.assertIn("已由平台 shop-a 于", zh)
        self.assertIn("（北京时间）", zh)
        self.assertIn("Sold by platform shop-a on", en)
        self.assertIn("China time (UTC+8)", en)
        self.assertEqual(self.scan_json(code)["sales"], 1)

    def test_undo_by_the_seller_only_within_the_window(self):
        code = next(self.next)
        self.report("shop-a", [sale(code, "R-1")])
        c, msg = F.status_of(self.node.ver.UndoSale, V.UndoSaleRequest(code=code),
                             metadata=plat("shop-b"))
        self.assertEqual(c, grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("only the seller", msg)
        self.node.ver.UndoSale(V.UndoSaleRequest(code=code, request_id="u-1"),
                               metadata=plat("shop-a"))
        # The same request again answers as the first time; another fails.
        self.node.ver.UndoSale(V.UndoSaleRequest(code=code, request_id="u-1"),
                               metadata=plat("shop-a"))
        c, msg = F.status_of(self.node.ver.UndoSale, V.UndoSaleRequest(code=code),
                             metadata=plat("shop-a"))
        self.assertEqual(c, grpc.StatusCode.NOT_FOUND)
        # Returned: the next sale is a first sale.
        r = self.report("shop-c", [sale(code, "C-9")])[0]
        self.assertEqual((r.verdict, r.first_platform_id), (T.VERDICT_GENUINE, "shop-c"))
        # Past the window (node b: 1 s), the seller cannot undo any more.
        late = next(self.next)
        self.report("shop-a", [sale(late, "L-1")], node=self.node_b)
        time.sleep(2.2)  # a duration: the window is what is tested
        c, msg = F.status_of(self.node_b.ver.UndoSale, V.UndoSaleRequest(code=late),
                             metadata=plat("shop-a"))
        self.assertEqual(c, grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("past the undo window of 1 s", msg)
        self.assertEqual(self.record(late)["platform"], "shop-a")

    def test_request_ids_replay_and_bad_input_writes_nothing(self):
        a, b = next(self.next), next(self.next)
        self.report("shop-a", [sale(a, "X-1")])
        req = dict(items=[sale(a, "Y-1"), sale(b, "Y-2")], request_id="sales-1")
        first = self.report("shop-b", **req)
        again = self.report("shop-b", **req)
        self.assertEqual([r.verdict for r in first], [T.VERDICT_ALREADY_SOLD, T.VERDICT_GENUINE])
        self.assertEqual(list(first), list(again))
        self.assertEqual(self.redis.cli("SCARD", "tc:{%s}:sale-dups" % a).strip(), "1")
        entries = list(self.node.audit.QueryAudit(A.QueryAuditRequest(subject=a, kind="sale-copy"),
                                                  metadata=REG))
        self.assertEqual(len(entries), 1)  # the replay logged nothing more
        c, msg = F.status_of(self.node.ver.ReportSales, V.ReportSalesRequest(
            items=[sale(b, "Z-1")], request_id="sales-1"), metadata=plat("shop-b"))
        self.assertEqual(c, grpc.StatusCode.ALREADY_EXISTS)
        fresh = next(self.next)
        for req, words in (
                (V.ReportSalesRequest(items=[]), "items: 1 to 1000"),
                (V.ReportSalesRequest(items=[sale(fresh, "o")] * 1001), "not 1001"),
                (V.ReportSalesRequest(items=[sale(fresh, "o"), sale(fresh, "")]),
                 "items[1].order_ref"),
                (V.ReportSalesRequest(items=[sale(fresh, "o" * 129)]), "items[0].order_ref"),
                (V.ReportSalesRequest(items=[sale(fresh, "o\x00")]), "items[0].order_ref"),
                (V.ReportSalesRequest(items=[sale(fresh, "o")], sold_unix=int(time.time()) + 3600),
                 "in the future")):
            c, msg = F.status_of(self.node.ver.ReportSales, req, metadata=plat("shop-a"))
            self.assertEqual(c, grpc.StatusCode.INVALID_ARGUMENT, msg)
            self.assertIn(words, msg)
        self.assertEqual(self.record(fresh), {})
        c, _ = F.status_of(self.node.ver.ReportSales, V.ReportSalesRequest(items=[sale(fresh, "o")]),
                           metadata=F.md("manufacturer", F.uscc(81)))
        self.assertEqual(c, grpc.StatusCode.PERMISSION_DENIED)

    def test_codes_never_issued_are_not_recorded(self):
        code = next(self.next)
        forged = code[:-4] + ("0000" if code[-4:] != "0000" else "1111")
        r = self.report("shop-a", [sale(forged, "F-1"), sale("NOT-A-CODE", "F-2")])
        self.assertIn(r[0].verdict, (T.VERDICT_FORGED, T.VERDICT_MALFORMED))
        self.assertEqual(r[1].verdict, T.VERDICT_MALFORMED)
        self.assertEqual(self.redis.cli("KEYS", "tc:{%s}:*" % forged).strip(), "")

    def test_bytes_per_sold_code(self):
        codes = [next(self.next) for _ in range(4)]
        self.report("shop-a", [sale(c, "ORDER-%d" % i) for i, c in enumerate(codes)])
        sizes = [int(self.redis.cli("MEMORY", "USAGE", "tc:{%s}:sale" % c)) for c in codes]
        print("\n  bytes per sold code (MEMORY USAGE of its record): %s" % sizes, file=sys.stderr)
        self.assertLess(max(sizes), 400)
        # One hash tag per code: its keys can go to any slot of a cluster.
        keys = self.redis.cli("KEYS", "tc:{*}:sale").split()
        self.assertTrue(all(re.fullmatch(r"tc:\{[0-9A-Z]{34}\}:sale", k) for k in keys), keys)


if __name__ == "__main__":
    unittest.main(verbosity=2)

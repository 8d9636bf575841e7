#!/usr/bin/python3
"""Consumers' problem reports, against a real redis-server and tracesvc:
ConsumerService.ReportProblem and the scan page's form file them (bounded,
rate-limited per device and per code, only for codes the registry issued);
the regulator reads them all through AuditService.QueryReports (and
tracectl reports), by code, batch and product; a manufacturer reads its
own products' reports and nobody else's; a platform reads none.
"""
import http.client
import os
import re
import subprocess
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcfixture as F  # noqa: E402

import grpc  # noqa: E402

WORK = F.workdir()
F.generate_stubs(os.path.join(WORK, "stubs"))

from tracecode.v1 import audit_pb2 as A  # noqa: E402
from tracecode.v1 import consumer_pb2 as C  # noqa: E402
from tracecode.v1 import types_pb2 as T  # noqa: E402

REG = F.md("regulator", "SAMR")
PLAT = F.md("platform", "shop-a")
MAKER, OTHER = F.uscc(61), F.uscc(62)


class Reports(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = F.Redis(WORK)
        cls.redis.start()
        cls.keys = F.keyring(WORK)
        cls.svc = F.Service(WORK, "a", cls.redis.url, cls.keys, ["--http", "127.0.0.1:0"]).start()
        cls.node = F.Node(cls.svc.port)
        cls.batch, cls.codes = F.chain(cls.node, MAKER, "CCC-REP-1", 20)
        cls.other_batch, cls.other_codes = F.chain(cls.node, OTHER, "CCC-REP-2", 3)

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.redis.stop()
        if rc != 0:
            raise AssertionError("tracesvc exited %s:\n%s" % (rc, cls.svc.output()[-3000:]))

    def report(self, code, reason=T.PROBLEM_REASON_NOT_AS_DESCRIBED, text="", device="d-1",
               region=""):
        return self.node.con.ReportProblem(C.ReportProblemRequest(
            code=code, reason=reason, text=text, device_id=device, region=region), metadata=PLAT)

    def stream(self, req, metadata):
        return list(self.node.audit.QueryReports(req, metadata=metadata))

    def query(self, md=REG, **kw):
        return [m.report for m in self.node.audit.QueryReports(A.QueryReportsRequest(**kw),
                                                                metadata=md)]

    def test_filed_counted_and_read_by_the_regulator(self):
        code = self.codes[0]
        r = self.report(code, text="颜色与描述不符 <b>红色</b>", region="310101")
        self.assertEqual(r.reports_on_code, 1)
        self.assertEqual(self.report(code, T.PROBLEM_REASON_SAFETY_HAZARD, device="d-9")
                         .reports_on_code, 2)
        got = self.query(code=code.lower())  # any form of the code
        self.assertEqual(len(got), 2)
        first = got[0]
        self.assertEqual((first.report_id, first.code, first.reason, first.via, first.region),
                         (r.report_id, code, T.PROBLEM_REASON_NOT_AS_DESCRIBED, "shop-a", "310101"))
        self.assertEqual(first.text, "颜色与描述不符 <b>红色</b>")  # stored as given
        self.assertEqual((first.batch_id, first.issuer_credit_code), (self.batch, MAKER))
        self.assertGreater(first.created_unix, 0)
        by_product = [x.report_id for x in self.query(product_id=first.product_id)]
        self.assertTrue({x.report_id for x in got} <= set(by_product))
        self.assertEqual(len(self.query(batch_id=self.batch)), len(self.query(
            product_id=first.product_id)))
        # Paged: after the first, the second.
        page = self.query(code=code, limit=1, page_token=first.report_id)
        self.assertEqual([x.report_id for x in page], [got[1].report_id])
        # tracectl reports, for a regulator's script.
        out = subprocess.run([F.binary("tracectl"), "--addr", "127.0.0.1:%d" % self.svc.port,
                              "--insecure", "--role", "regulator", "--subject", "SAMR", "reports",
                              "code", code], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("NOT_AS_DESCRIBED", out.stdout)
        self.assertIn("颜色与描述不符", out.stdout)

    def test_makers_read_their_own_and_platforms_none(self):
        mine, theirs = self.codes[1], self.other_codes[0]
        self.report(mine, device="d-2")
        self.report(theirs, device="d-2")
        own = self.query(md=F.md("manufacturer", MAKER))
        self.assertTrue(own)
        self.assertTrue(all(x.issuer_credit_code == MAKER for x in own))
        self.assertNotIn(theirs, [x.code for x in own])
        for kw in ({"code": theirs}, {"batch_id": self.other_batch}):
            c, msg = F.status_of(self.stream, A.QueryReportsRequest(**kw),
                                 metadata=F.md("manufacturer", MAKER))
            self.assertEqual(c, grpc.StatusCode.PERMISSION_DENIED, kw)
        c, _ = F.status_of(self.stream, A.QueryReportsRequest(), metadata=PLAT)
        self.assertEqual(c, grpc.StatusCode.PERMISSION_DENIED)

    def test_bad_reports_change_nothing_and_rates_hold(self):
        code = self.codes[2]
        for kw, status, words in (
                ({"reason": T.PROBLEM_REASON_UNSPECIFIED}, grpc.StatusCode.INVALID_ARGUMENT,
                 "not a ProblemReason"),
                ({"text": "x" * 501}, grpc.StatusCode.INVALID_ARGUMENT, "text"),
                ({"text": "a\x00b"}, grpc.StatusCode.INVALID_ARGUMENT, "text"),
                ({"text": "\u202egnp.exe"}, grpc.StatusCode.INVALID_ARGUMENT, "text"),
                ({"device": ""}, grpc.StatusCode.INVALID_ARGUMENT, "device_id"),
                ({"region": "a b"}, grpc.StatusCode.INVALID_ARGUMENT, "region")):
            c, msg = F.status_of(self.report, code, **kw)
            self.assertEqual(c, status, (kw, msg))
            self.assertIn(words, msg)
        forged = code[:-4] + ("0000" if code[-4:] != "0000" else "1111")
        c, msg = F.status_of(self.report, forged)
        self.assertIn(c, (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT))
        self.assertEqual(self.query(code=code), [])
        # A device files 5 an hour; the 6th is refused and not stored.
        for i in range(5):
            self.report(self.codes[3 + i], device="d-rate")
        c, msg = F.status_of(self.report, self.codes[8], device="d-rate")
        self.assertEqual(c, grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("5 reports in the last 3600 s", msg)
        self.assertEqual(self.query(code=self.codes[8]), [])

    def test_the_scan_page_form(self):
        code = self.codes[9]
        c = http.client.HTTPConnection("127.0.0.1", self.svc.http_port, timeout=10)
        c.request("GET", "/C/" + code, headers={"User-Agent": "Mozilla/5.0 (phone)"})
        r = c.getresponse()
        page = r.read().decode()
        cookie = r.getheader("Set-Cookie").split(";")[0]
        self.assertIn('action="/report/%s?lang=zh"' % code, page)
        body = urllib.parse.urlencode({"reason": "2", "text": "包装上的字印错了"})
        headers = {"User-Agent": "Mozilla/5.0 (phone)", "Cookie": cookie,
                   "Content-Type": "application/x-www-form-urlencoded"}
        c.request("POST", "/report/%s?lang=zh" % code, body=body, headers=headers)
        r = c.getresponse()
        text = re.sub(r"<[^>]+>", " ", r.read().decode())
        self.assertEqual(r.status, 200, text)
        self.assertIn("感谢您的报告", text)
        got = self.query(code=code)
        self.assertEqual([(x.via, x.reason, x.text) for x in got],
                         [("page", T.PROBLEM_REASON_SUSPECTED_FAKE, "包装上的字印错了")])
        # No cookie from the page (a cross-site form, a script): refused.
        del headers["Cookie"]
        c.request("POST", "/report/%s" % code, body=body, headers=headers)
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 403)
        c.close()
        self.assertEqual(len(self.query(code=code)), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)

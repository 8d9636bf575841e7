#!/usr/bin/python3
"""The product passport, against a real redis-server and tracesvc: a
manufacturer registers a product with its standards, test reports, images,
description and origin, and replaces them with UpdateProduct (every change
in the audit log under the product id); GetProduct, ConsumerService.Scan,
the scan page (zh/en) and its JSON carry it, escaped; images show only from
--image-origins (the page's Content-Security-Policy), others as links;
links are https only, hashes SHA-256, every field bounded; what codes were
issued for does not change; another maker's product is not the caller's.
"""
import http.client
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcfixture as F  # noqa: E402

import grpc  # noqa: E402

WORK = F.workdir()
F.generate_stubs(os.path.join(WORK, "stubs"))

from tracecode.v1 import audit_pb2 as A  # noqa: E402
from tracecode.v1 import consumer_pb2 as C  # noqa: E402
from tracecode.v1 import issuer_pb2 as I  # noqa: E402
from tracecode.v1 import registry_pb2 as R  # noqa: E402
from tracecode.v1 import types_pb2 as T  # noqa: E402

REG = F.md("regulator", "SAMR")
MAKER, OTHER = F.uscc(51), F.uscc(52)
SHA = "ab" * 32
IMG = "https://img.example.cn/pb20/front.jpg"
ELSEWHERE = "https://cdn.elsewhere.example/pb20/back.jpg"


def report(number="CQC-2026-0001", lab="中国质量认证中心 <CQC>", url="https://lab.example.cn/r/1.pdf"):
    return T.TestReport(number=number, laboratory=lab, issued_unix=1767225600, url=url,
                        sha256=SHA if url else "")


class Passport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = F.Redis(WORK)
        cls.redis.start()
        cls.keys = F.keyring(WORK)
        cls.svc = F.Service(WORK, "a", cls.redis.url, cls.keys, [
            "--http", "127.0.0.1:0", "--image-origins", "https://img.example.cn"]).start()
        cls.node = F.Node(cls.svc.port)
        for credit, number in ((MAKER, "CCC-PP-1"), (OTHER, "CCC-PP-2")):
            cls.node.reg.UpsertManufacturer(R.UpsertManufacturerRequest(
                manufacturer=T.Manufacturer(credit_code=credit, name="Acme",
                                            status=T.MANUFACTURER_STATUS_ACTIVE)), metadata=REG)
            cls.node.reg.UpsertCertificate(R.UpsertCertificateRequest(certificate=T.Certificate(
                number=number, kind=T.CERTIFICATE_KIND_CCC, holder_credit_code=credit,
                category_codes=["0704"])), metadata=REG)
        cls.mf = F.md("manufacturer", MAKER)
        cls.product = cls.node.iss.RegisterProduct(I.RegisterProductRequest(
            certificate_number="CCC-PP-1", category_code="0704", brand="Acme", model="PB-20",
            standards=["GB 4943.1-2022", "GB 31241-2022"], test_reports=[report()],
            images=[T.ProductImage(url=IMG, sha256=SHA, alt="正面 front"),
                    T.ProductImage(url=ELSEWHERE, sha256=SHA, alt="背面 back")],
            description="20000 mAh <script>alert(1)</script> 移动电源", origin="广东省深圳市"),
            metadata=cls.mf).product
        cls.codes = []
        for m in cls.node.iss.IssueCodes(I.IssueCodesRequest(
                product_id=cls.product.product_id, quantity=3), metadata=cls.mf):
            cls.codes += list(m.codes)

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.redis.stop()
        if rc != 0:
            raise AssertionError("tracesvc exited %s:\n%s" % (rc, cls.svc.output()[-3000:]))

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.svc.http_port, timeout=10)
        c.request("GET", path, headers={"User-Agent": "Mozilla/5.0 (phone)"})
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r, body

    def test_round_trip_to_the_scan(self):
        p = self.product
        self.assertEqual(list(p.standards), ["GB 4943.1-2022", "GB 31241-2022"])
        self.assertEqual((p.test_reports[0].number, p.test_reports[0].sha256),
                         ("CQC-2026-0001", SHA))
        got = self.node.iss.GetProduct(I.GetProductRequest(product_id=p.product_id),
                                       metadata=self.mf).product
        self.assertEqual((list(got.standards), got.origin, len(got.images)),
                         (list(p.standards), "广东省深圳市", 2))
        s = self.node.con.Scan(C.ScanRequest(code=self.codes[0]),
                               metadata=F.md("platform", "shop-a"))
        self.assertEqual(s.product.test_reports[0].laboratory, "中国质量认证中心 <CQC>")
        self.assertEqual(s.product.description, p.description)
        r, html = self.get("/C/" + self.codes[0])
        self.assertEqual(r.status, 200)
        csp = r.getheader("Content-Security-Policy")
        self.assertIn("img-src 'self' https://img.example.cn;", csp)
        self.assertIn('<img src="%s" alt="正面 front"' % IMG, html)  # an allowed origin
        self.assertNotIn('<img src="%s"' % ELSEWHERE, html)          # elsewhere: a link
        self.assertIn('href="%s"' % ELSEWHERE, html)
        self.assertIn("GB 4943.1-2022、GB 31241-2022", html)
        self.assertIn("中国质量认证中心 &lt;CQC&gt;", html)           # escaped
        self.assertNotIn("<script>alert(1)", html)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", html)
        self.assertIn("2026-01-01", html)                             # the report's day, China time
        _, en = self.get("/C/%s?lang=en" % self.codes[0])
        self.assertIn("Made to", en)
        self.assertIn("the report", en)
        _, body = self.get("/api/v1/scan/" + self.codes[0])
        j = json.loads(body)["passport"]
        self.assertEqual((j["standards"][1], j["images"][1]["url"], j["origin"]),
                         ("GB 31241-2022", ELSEWHERE, "广东省深圳市"))

    def test_update_is_logged_and_bounded(self):
        pid = self.product.product_id
        new = self.node.iss.UpdateProduct(I.UpdateProductRequest(
            product=T.Product(product_id=pid, brand="Acme", standards=["GB 4943.1-2022"],
                              test_reports=[report("CQC-2026-0002", "CQC", "")],
                              origin="江苏省苏州市"), request_id="pp-1"), metadata=self.mf).product
        self.assertEqual((list(new.standards), new.origin, len(new.images)),
                         (["GB 4943.1-2022"], "江苏省苏州市", 0))
        self.assertTrue(F.wait_for(lambda: "江苏省苏州市" in self.get("/C/" + self.codes[1])[1], 5))
        # Every change in the audit log, under the product id.
        bodies = [m.entry.body.decode() for m in self.node.audit.QueryAudit(
            A.QueryAuditRequest(subject=pid, kind="product"), metadata=REG)]
        self.assertGreaterEqual(len(bodies), 2)
        self.assertIn("standard GB 31241-2022", bodies[0])   # as registered
        self.assertIn("origin 江苏省苏州市", bodies[-1])       # as updated
        # Refusals name the field and change nothing.
        base = dict(product_id=pid, standards=["GB 4943.1-2022"])
        for extra, words in (
                ({"images": [T.ProductImage(url="http://img.example.cn/a.jpg", sha256=SHA,
                                            alt="a")]}, "images[0].url must be an https://"),
                ({"images": [T.ProductImage(url=IMG, sha256="xyz", alt="a")]},
                 "images[0].sha256 must be 64"),
                ({"images": [T.ProductImage(url=IMG, sha256=SHA, alt="")]}, "images[0].alt"),
                ({"images": [T.ProductImage(url='https://x.cn/"onerror="', sha256=SHA,
                                            alt="a")]}, "images[0].url has a character"),
                ({"test_reports": [report(url="javascript:alert(1)")]},
                 "test_reports[0].url must be an https://"),
                ({"standards": ["S%d" % i for i in range(17)]}, "at most 16 standards"),
                ({"description": "x" * 2001}, "description is longer"),
                ({"origin": "a\nb"}, "origin has an invalid or control byte"),
                ({"brand": "Bcme"}, "product.brand cannot change")):
            kw = dict(base, **extra)
            c, msg = F.status_of(self.node.iss.UpdateProduct, I.UpdateProductRequest(
                product=T.Product(**kw)), metadata=self.mf)
            self.assertIn(c, (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION),
                          msg)
            self.assertIn(words, msg)
        c, _ = F.status_of(self.node.iss.UpdateProduct, I.UpdateProductRequest(
            product=T.Product(**base)), metadata=F.md("manufacturer", OTHER))
        self.assertEqual(c, grpc.StatusCode.PERMISSION_DENIED)
        got = self.node.iss.GetProduct(I.GetProductRequest(product_id=pid), metadata=self.mf).product
        self.assertEqual(got.origin, "江苏省苏州市")

    def test_a_batch_production_date_and_lot(self):
        pid = self.product.product_id
        codes, batch = [], None
        for m in self.node.iss.IssueCodes(I.IssueCodesRequest(
                product_id=pid, quantity=2, production_date="2026-11-30", lot="L-2026-11A"),
                metadata=self.mf):
            codes += list(m.codes)
            if m.HasField("batch"):
                batch = m.batch
        self.assertEqual((batch.production_date, batch.lot), ("2026-11-30", "L-2026-11A"))
        got = self.node.iss.GetBatch(I.GetBatchRequest(batch_id=batch.batch_id),
                                     metadata=self.mf).batch
        self.assertEqual((got.production_date, got.lot), ("2026-11-30", "L-2026-11A"))
        self.assertTrue(F.wait_for(lambda: "L-2026-11A" in self.get("/C/" + codes[0])[1], 5))
        _, html = self.get("/C/" + codes[0])
        self.assertIn("生产日期", html)
        self.assertIn("2026-11-30", html)
        s = self.node.con.Scan(C.ScanRequest(code=codes[1]), metadata=F.md("platform", "shop-a"))
        self.assertEqual((s.production_date, s.lot), ("2026-11-30", "L-2026-11A"))
        _, body = self.get("/api/v1/scan/" + codes[1])
        self.assertEqual(json.loads(body)["lot"], "L-2026-11A")
        for kw, words in (({"production_date": "2026-02-30"}, "not a day of the calendar"),
                          ({"production_date": "30/11/2026"}, "YYYY-MM-DD"),
                          ({"production_date": "2099-01-01"}, "in the future"),
                          ({"lot": "L\tX"}, "lot has an invalid or control byte"),
                          ({"lot": "L" * 33}, "lot is longer than 32")):
            c, msg = F.status_of(lambda req, metadata: list(self.node.iss.IssueCodes(
                req, metadata=metadata)), I.IssueCodesRequest(product_id=pid, quantity=1, **kw),
                metadata=self.mf)
            self.assertEqual(c, grpc.StatusCode.INVALID_ARGUMENT, msg)
            self.assertIn(words, msg)

    def test_tracectl_product_update_and_show(self):
        pid = self.node.iss.RegisterProduct(I.RegisterProductRequest(
            certificate_number="CCC-PP-1", category_code="0704", brand="Acme", model="PB-30"),
            metadata=self.mf).product.product_id
        path = os.path.join(WORK, "passport.txt")
        with open(path, "w") as f:
            f.write("# PB-30's passport\nstandard: GB 4943.1-2022\n"
                    "report: CQC-9 | CQC | 2026-03-01 | https://lab.example.cn/9.pdf | %s\n"
                    "image: %s | %s | 正面\norigin: 浙江省杭州市\n" % (SHA, IMG, SHA))
        env = dict(os.environ, TRACECTL_ADDR="127.0.0.1:%d" % self.svc.port, TRACECTL_INSECURE="1",
                   TRACECTL_ROLE="manufacturer", TRACECTL_SUBJECT=MAKER)
        r = subprocess.run([F.binary("tracectl"), "product", "update", pid, "--file", path],
                           capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([F.binary("tracectl"), "product", "show", pid], capture_output=True,
                           text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("standard: GB 4943.1-2022", r.stdout)
        self.assertIn("report: CQC-9 | CQC |", r.stdout)
        self.assertIn("origin: 浙江省杭州市", r.stdout)
        with open(path, "a") as f:
            f.write("colour: red\n")
        r = subprocess.run([F.binary("tracectl"), "product", "update", pid, "--file", path],
                           capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 2)
        self.assertIn("'colour' is not a field", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

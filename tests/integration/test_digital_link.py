#!/usr/bin/python3
"""The code's forms for GS1 scanners and people (docs/CODES.md), against a
real redis-server and tracesvc: tracectl issue --sheet prints GS1 Digital
Link labels for a product with a GTIN; each label, rasterised by librsvg
and read by zbarimg, is a Digital Link that digital-link.js (an
implementation not ours) finds valid, with the product's GTIN-14 and the
code split over the lot and the serial; VerifyCode, VerifyBatch, Scan and
the scan page at the link's own path take it; a link naming another GTIN
is GTIN_MISMATCH, one whose GTIN fails its check digit MALFORMED; the
printed form (check symbol) verifies and a typo in it is "mistyped", not
FORGED; a certificate cancelled by its holder is CERT_CANCELLED.
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

WORK = F.workdir()
F.generate_stubs(os.path.join(WORK, "stubs"))

from tracecode.v1 import consumer_pb2 as C  # noqa: E402
from tracecode.v1 import issuer_pb2 as I  # noqa: E402
from tracecode.v1 import registry_pb2 as R  # noqa: E402
from tracecode.v1 import types_pb2 as T  # noqa: E402
from tracecode.v1 import verifier_pb2 as V  # noqa: E402

REG = F.md("regulator", "SAMR")
PLAT = F.md("platform", "shop-a")
BASE = "https://tc.samr.example"
GTIN = "6901234567892"  # GTIN-13; its Digital Link carries 06901234567892
OTHER_GTIN = "06901234567908"  # valid check digit, another product


def dl_check(*uris):
    """digital-link.js's view of each URI (tests/integration/dl_check.js)."""
    out = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "dl_check.js")] +
                         list(uris), capture_output=True, text=True, check=True,
                         cwd=F.ROOT).stdout
    return [json.loads(line) for line in out.splitlines()]


def cells(svg_path, n, work):
    """zbarimg's reading of the first n labels of a sheet, one cell at a
    time (as test_qr's test_sheet_zbar: a scanner reads one label)."""
    with open(svg_path) as f:
        svg = f.read()
    page = 'width="210mm" height="297mm" viewBox="0 0 210 297"'
    assert page in svg
    got = []
    for i in range(n):
        view = 'width="70mm" height="37.125mm" viewBox="%.3f %.3f 70 37.125"' % (
            (i % 3) * 70.0, (i // 3) * 37.125)
        cell_svg, cell_png = os.path.join(work, "cell.svg"), os.path.join(work, "cell.png")
        with open(cell_svg, "w") as f:
            f.write(svg.replace(page, view, 1))
        subprocess.run(["rsvg-convert", "-d", "300", "-p", "300", "-b", "white", cell_svg, "-o",
                        cell_png], check=True)
        got.append(subprocess.run(["zbarimg", "--quiet", "--raw", cell_png], capture_output=True,
                                  text=True, check=True).stdout.strip())
    return got


class DigitalLink(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = F.Redis(WORK)
        cls.redis.start()
        cls.keys = F.keyring(WORK)
        cls.svc = F.Service(WORK, "a", cls.redis.url, cls.keys,
                            ["--http", "127.0.0.1:0", "--base-url", BASE]).start()
        cls.node = F.Node(cls.svc.port)
        cls.credit = F.uscc(71)
        cls.number = "CCC-DL-1"
        cls.node.reg.UpsertManufacturer(R.UpsertManufacturerRequest(manufacturer=T.Manufacturer(
            credit_code=cls.credit, name="Acme", status=T.MANUFACTURER_STATUS_ACTIVE)),
            metadata=REG)
        cls.node.reg.UpsertCertificate(R.UpsertCertificateRequest(certificate=T.Certificate(
            number=cls.number, kind=T.CERTIFICATE_KIND_CCC, holder_credit_code=cls.credit,
            category_codes=["0704"])), metadata=REG)
        mf = F.md("manufacturer", cls.credit)
        cls.with_gtin = cls.node.iss.RegisterProduct(I.RegisterProductRequest(
            certificate_number=cls.number, category_code="0704", brand="Acme", model="PB-20",
            gtin=GTIN), metadata=mf).product.product_id
        cls.without = cls.node.iss.RegisterProduct(I.RegisterProductRequest(
            certificate_number=cls.number, category_code="0704", brand="Acme", model="PB-10"),
            metadata=mf).product.product_id

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.redis.stop()
        if rc != 0:
            raise AssertionError("tracesvc exited %s:\n%s" % (rc, cls.svc.output()[-4000:]))

    def tracectl(self, *args):
        env = dict(os.environ, TRACECTL_ADDR="127.0.0.1:%d" % self.svc.port, TRACECTL_INSECURE="1",
                   TRACECTL_ROLE="manufacturer", TRACECTL_SUBJECT=self.credit)
        return subprocess.run([F.binary("tracectl")] + list(args), capture_output=True, text=True,
                              env=env)

    def issue_labels(self, product, n, name):
        out, sheet = os.path.join(WORK, name + ".txt"), os.path.join(WORK, name)
        r = self.tracectl("issue", product, "--quantity", str(n), "--out", out, "--sheet", sheet,
                          "--base-url", BASE)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            codes = f.read().split()
        return codes, cells(sheet + "-001.svg", n, WORK)

    def verify(self, code):
        return self.node.ver.VerifyCode(V.VerifyCodeRequest(code=code), metadata=PLAT).result

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.svc.http_port, timeout=10)
        c.request("GET", path, headers={"User-Agent": "Mozilla/5.0 (test)"})
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r.status, body

    def test_labels_are_valid_digital_links_and_verify(self):
        codes, read = self.issue_labels(self.with_gtin, 3, "dl")
        for code, uri, view in zip(codes, read, dl_check(*read)):
            self.assertEqual(uri, "https://TC.SAMR.EXAMPLE/01/0%s/10/%s/21/%s"
                             % (GTIN, code[:14], code[14:]))
            self.assertEqual(view, {"uri": uri, "valid": True, "gtin": "0" + GTIN,
                                    "lot": code[:14], "serial": code[14:]})
            v = self.verify(uri)
            self.assertEqual(v.verdict, T.VERDICT_GENUINE, v.detail)
            s = self.node.con.Scan(C.ScanRequest(code=uri), metadata=PLAT)
            self.assertEqual(s.verdict, T.VERDICT_GENUINE)
        batch = self.node.ver.VerifyBatch(V.VerifyBatchRequest(
            items=[V.VerifyItem(code=c) for c in read + codes[:1]]), metadata=PLAT).results
        self.assertEqual([r.verdict for r in batch], [T.VERDICT_GENUINE] * 4)
        # GS1 scanners open the link: the scan page answers at its path.
        status, body = self.get(read[0][len("https://TC.SAMR.EXAMPLE"):])
        self.assertEqual(status, 200)
        self.assertIn("PB-20", body)
        printed = re.sub(r"(.{4})", r"\1-", codes[0])  # shown as printed, with the check symbol
        self.assertIn(printed[:40], body)

    def test_another_gtin_is_its_own_failure(self):
        codes, read = self.issue_labels(self.with_gtin, 1, "dl2")
        wrong = read[0].replace("/01/0" + GTIN, "/01/" + OTHER_GTIN)
        self.assertTrue(dl_check(wrong)[0]["valid"])  # a well-formed link ...
        v = self.verify(wrong)  # ... naming a product this code was not issued for
        self.assertEqual(v.verdict, T.VERDICT_GTIN_MISMATCH)
        self.assertIn("names GTIN %s" % OTHER_GTIN, v.detail)
        status, body = self.get(wrong[len("https://TC.SAMR.EXAMPLE"):])
        self.assertEqual(status, 200)
        self.assertIn("标签标示的商品与追溯码所属商品不符", body)
        bad_digit = read[0].replace("/01/0" + GTIN, "/01/06901234567893")
        self.assertFalse(dl_check(bad_digit)[0]["valid"])
        v = self.verify(bad_digit)
        self.assertEqual(v.verdict, T.VERDICT_MALFORMED)
        self.assertIn("GS1 check digit", v.detail)
        # A product without a GTIN: any Digital Link of its codes is a mismatch.
        plain, _ = self.issue_labels(self.without, 1, "plain")
        link = "https://x.example/01/0%s/10/%s/21/%s" % (GTIN, plain[0][:14], plain[0][14:])
        v = self.verify(link)
        self.assertEqual(v.verdict, T.VERDICT_GTIN_MISMATCH)
        self.assertIn("no GTIN registered", v.detail)

    def test_without_gtin_labels_keep_the_short_form(self):
        codes, read = self.issue_labels(self.without, 2, "short")
        self.assertEqual(read, ["HTTPS://TC.SAMR.EXAMPLE/C/" + c for c in codes])

    def test_typed_codes_check_symbol(self):
        codes, _ = self.issue_labels(self.with_gtin, 1, "typed")
        out = subprocess.run([F.binary("tracekeys"), "check", "--dir", self.keys],
                             input=codes[0] + "\n", capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        with open(os.path.join(WORK, "typed-001.svg")) as f:
            svg = f.read()
        groups = re.findall(r"<tspan[^>]*>([0-9A-Z*~$=-]+)</tspan>", svg)
        printed = "-".join(g.strip("-") for g in groups)
        self.assertEqual(printed.replace("-", "")[:34], codes[0])
        self.assertEqual(len(printed.replace("-", "")), 35)  # and the check symbol
        self.assertEqual(self.verify(printed.lower()).verdict, T.VERDICT_GENUINE)
        typo = printed[:5] + ("X" if printed[5] != "X" else "Y") + printed[6:]
        v = self.verify(typo)
        self.assertEqual(v.verdict, T.VERDICT_MALFORMED)
        self.assertIn("mistyped", v.detail)


if __name__ == "__main__":
    unittest.main(verbosity=2)

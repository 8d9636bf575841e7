#!/usr/bin/python3
"""The scan page as a consumer's phone shows it: every kind of page, in
Chinese and in English, loaded in a 390 x 844 headless Chromium (Debian's,
driven by puppeteer-core) and checked by axe-core against WCAG 2.1 A and AA
(tests/integration/a11y_check.js): no violation, one <h1>, every link,
button and field at least 44 x 44 CSS pixels. Chinese pages never carry the
parser's English; times are China time, the zone named; a suspect product
names the complaint line (12315); a code that does not read offers a field
to type it, whose check symbol catches a typo. Screenshots go to the build
tree's test-artifacts/.
"""
import json
import os
import re
import subprocess
import sys
import unittest
import urllib.parse

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
ARTIFACTS = os.path.abspath(os.path.join(os.environ.get("TC_BUILD", WORK), "test-artifacts", "a11y"))


def printed(code):
    """The printed form, as labels print it (tracekeys mint --sheet would
    give the same): groups of four and the check symbol."""
    value = 0
    for ch in code:
        value = value * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(ch)
    t = code + "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U"[value % 37]
    return "-".join(t[i:i + 4] for i in range(0, len(t), 4))


class Accessible(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(ARTIFACTS, exist_ok=True)
        cls.redis = F.Redis(WORK)
        cls.redis.start()
        cls.keys = F.keyring(WORK)
        cls.svc = F.Service(WORK, "a", cls.redis.url, cls.keys, [
            "--http", "127.0.0.1:0", "--image-origins", "https://img.example.cn"]).start()
        cls.node = F.Node(cls.svc.port)
        _, cls.codes = F.chain(cls.node, F.uscc(91), "CCC-A11Y-1", 10, maker="Acme 电源")
        _, cls.revoked = F.chain(cls.node, F.uscc(92), "CCC-A11Y-2", 2, maker="Bcme")
        # The genuine code's product has a passport: standards, a test
        # report, pictures (one from an allowed origin, one a link), words.
        pid = cls.node.ver.VerifyCode(V.VerifyCodeRequest(code=cls.codes[0], view=T.VERIFY_VIEW_FULL),
                                      metadata=F.md("platform", "x")).result.product.product_id
        sha = "cd" * 32
        cls.node.iss.UpdateProduct(I.UpdateProductRequest(product=T.Product(
            product_id=pid, standards=["GB 4943.1-2022", "GB 31241-2022"],
            test_reports=[T.TestReport(number="CQC-2026-0001", laboratory="中国质量认证中心",
                                       issued_unix=1767225600,
                                       url="https://lab.example.cn/r/1.pdf", sha256=sha)],
            images=[T.ProductImage(url="https://img.example.cn/pb/front.jpg", sha256=sha,
                                   alt="移动电源正面"),
                    T.ProductImage(url="https://cdn.example.com/pb/back.jpg", sha256=sha,
                                   alt="移动电源背面")],
            description="20000 毫安时移动电源，双 USB-C 接口", origin="广东省深圳市")),
            metadata=F.md("manufacturer", F.uscc(91)))
        cls.node.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
            number="CCC-A11Y-2", status=T.CERTIFICATE_STATUS_REVOKED, reason="fire risk"),
            metadata=REG)
        # A scan with a device (first scan time on the page), and a code sold twice.
        cls.node.con.Scan(C.ScanRequest(code=cls.codes[0], device_id="phone-1", region="310101"),
                          metadata=F.md("platform", "shop-a"))
        for p, ref in (("shop-a", "A-1"), ("shop-b", "B-1")):
            cls.node.ver.ReportSales(V.ReportSalesRequest(
                items=[V.SaleItem(code=cls.codes[1], order_ref=ref)]), metadata=F.md("platform", p))
        F.wait_for(lambda: cls.node.ver.VerifyCode(V.VerifyCodeRequest(code=cls.revoked[0]),
                                                   metadata=F.md("platform", "x")).result.verdict
                   == T.VERDICT_CERT_REVOKED, 5)

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.redis.stop()
        if rc != 0:
            raise AssertionError("tracesvc exited %s:\n%s" % (rc, cls.svc.output()[-4000:]))

    def check(self, paths):
        base = "http://127.0.0.1:%d" % self.svc.http_port
        out = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "a11y_check.js")] +
                             [base + p for p in paths], capture_output=True, text=True,
                             cwd=F.ROOT, env=dict(os.environ, SHOTS=ARTIFACTS), timeout=300)
        self.assertEqual(out.returncode, 0, out.stderr)
        pages = [json.loads(line) for line in out.stdout.splitlines()]
        self.assertEqual(len(pages), len(paths))
        for path, page in zip(paths, pages):
            self.assertEqual(page["status"], 200, path)
            self.assertEqual(page["violations"], [], path)
            self.assertEqual(page["h1"], 1, path)
            self.assertEqual(page["small"], [], path)
        return dict(zip(paths, pages))

    def test_every_page_in_both_languages(self):
        genuine, copied, revoked = self.codes[0], self.codes[1], self.revoked[0]
        forged = genuine[:20] + ("0" if genuine[20] != "0" else "1") + genuine[21:]
        typo = printed(genuine)
        typo = typo[:5] + ("X" if typo[5] != "X" else "Y") + typo[6:]
        kinds = {
            "genuine": "/C/" + genuine,
            "copied": "/C/" + copied,
            "forged": "/C/" + forged,
            "revoked": "/C/" + revoked,
            "malformed": "/C/NOT-A-CODE",
            "typed": "/check?code=" + urllib.parse.quote(printed(genuine).lower()),
            "mistyped": "/check?code=" + urllib.parse.quote(typo),
        }
        paths = []
        for path in kinds.values():
            for lang in ("zh", "en"):
                paths.append(path + ("&" if "?" in path else "?") + "lang=" + lang)
        pages = self.check(paths)

        def page(kind, lang):
            path = kinds[kind]
            return pages[path + ("&" if "?" in path else "?") + "lang=" + lang]

        for kind in kinds:
            zh, en = page(kind, "zh"), page(kind, "en")
            self.assertEqual((zh["lang"], en["lang"]), ("zh-CN", "en"))
            # The parser's English never reaches a Chinese sentence.
            for words in ("cannot parse", "wrong length", "bad symbol", "mistyped", "check symbol"):
                self.assertNotIn(words, zh["text"], kind)
            self.assertFalse(re.search(r"[A-Za-z]{6,}", zh["text"].replace("English", "")
                                       .replace("Acme", "").replace("Bcme", "")), kind)
        # Times in China time, the zone named.
        self.assertIn("（北京时间）", page("genuine", "zh")["text"])
        self.assertIn("China time (UTC+8)", page("genuine", "en")["text"])
        # The printed grouping is how a code is shown.
        self.assertIn(printed(genuine), page("genuine", "zh")["text"])
        # What to do next on a suspect page: the complaint line.
        for kind in ("copied", "forged", "revoked", "malformed"):
            self.assertIn("12315", page(kind, "zh")["text"], kind)
            self.assertIn("12315", page(kind, "en")["text"], kind)
        self.assertNotIn("12315", page("genuine", "zh")["text"])
        self.assertNotIn("12315", page("mistyped", "zh")["text"])  # a typo is not a suspect
        # A code that does not read offers the field; typed, it reads.
        self.assertIn("输入二维码下方印刷的追溯码", page("malformed", "zh")["text"])
        self.assertIn("正品", page("typed", "zh")["text"])
        self.assertIn("追溯码输入有误", page("mistyped", "zh")["text"])
        self.assertIn("mistyped", page("mistyped", "en")["text"])
        self.assertIn("疑似复制码", page("copied", "zh")["text"])
        self.assertIn("售出", page("copied", "zh")["text"])
        # The passport, in both languages.
        self.assertIn("GB 4943.1-2022、GB 31241-2022", page("genuine", "zh")["text"])
        self.assertIn("中国质量认证中心", page("genuine", "zh")["text"])
        self.assertIn("Made to", page("genuine", "en")["text"])


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
"""The scan page in a real browser: headless Chromium (Debian's) loads the
page of a genuine, a forged and a revoked code from tracesvc over loopback;
the rendered text must say so, and a phone-sized screenshot of each is
saved under the build tree (test-artifacts/) for people to look at.
"""
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcfixture as F  # noqa: E402

WORK = F.workdir()
F.generate_stubs(os.path.join(WORK, "stubs"))

from tracecode.v1 import registry_pb2 as R  # noqa: E402
from tracecode.v1 import types_pb2 as T  # noqa: E402

REG = F.md("regulator", "SAMR")
BROWSER = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking"]
ARTIFACTS = os.path.join(os.environ.get("TC_BUILD", WORK), "test-artifacts")
_seq = itertools.count(1)


def unique(prefix):
    return "%s%05d" % (prefix, next(_seq))


class Browser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not BROWSER:
            raise AssertionError("chromium is not installed: run ./scripts/deps.sh")
        os.makedirs(ARTIFACTS, exist_ok=True)
        cls.redis = F.Redis(WORK)
        cls.redis.start()
        cls.keys = F.keyring(WORK)
        cls.svc = F.Service(WORK, "a", cls.redis.url, cls.keys,
                            ["--http", "127.0.0.1:0"]).start()
        cls.node = F.Node(cls.svc.port)
        cls.reg = cls.node.reg
        cls.profile = tempfile.mkdtemp(prefix="tc-chromium-", dir=WORK)

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.redis.stop()
        if rc != 0:
            raise AssertionError("tracesvc exited %s:\n%s" % (rc, cls.svc.output()[-4000:]))

    def chromium(self, *args):
        # a phone set to Chinese: the page follows Accept-Language
        r = subprocess.run([BROWSER] + FLAGS + ["--user-data-dir=" + self.profile,
                                                "--lang=zh-CN", "--accept-lang=zh-CN"] +
                           list(args),
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, HOME=self.profile))
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        return r.stdout

    def render(self, name, code):
        """The page's DOM after Chromium loaded it, and its screenshot."""
        url = "http://127.0.0.1:%d/C/%s" % (self.svc.http_port, code)
        dom = self.chromium("--dump-dom", url)
        shot = os.path.join(ARTIFACTS, "scan-%s.png" % name)
        if os.path.exists(shot):
            os.unlink(shot)
        self.chromium("--screenshot=" + shot, "--window-size=412,915",
                      "--hide-scrollbars", url)
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertGreater(os.path.getsize(shot), 5000)  # a page, not a blank
        return dom

    def chain(self):
        number = unique("CCC2026")
        _, codes = F.chain(self.node, F.uscc(next(_seq)), number, 3, maker="安克电源",
                           brand="Anker", model="PB-20K")
        return number, codes

    def test_genuine_forged_revoked(self):
        number, codes = self.chain()
        dom = self.render("genuine", codes[0])
        for words in ("正品", "Anker", "PB-20K", "安克电源", number):
            self.assertIn(words, dom)
        self.assertNotIn("疑似伪造", dom)

        code = codes[1]
        forged = code[:25] + ("2" if code[25] != "2" else "3") + code[26:]  # a tag symbol
        dom = self.render("forged", forged)
        self.assertIn("疑似伪造", dom)
        self.assertNotIn("Anker", dom)  # nothing of the real product on a forged code

        revoked, other = self.chain()
        self.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
            number=revoked, status=T.CERTIFICATE_STATUS_REVOKED, reason="fire risk"), metadata=REG)
        dom = self.render("revoked", other[0])  # SetCertificateStatus returns once applied here
        self.assertIn("证书已撤销", dom)
        self.assertIn("fire risk", dom)
        self.assertNotIn("正品：", dom)


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
"""Consumers: the HTTP scan page (zh / en), its JSON and QR images, health
checks, ConsumerService.Scan, and copy detection by distinct devices,
regions, travel and listings - against a real redis-server and tracesvc.
"""
import http.client
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcfixture as F  # noqa: E402

import grpc  # noqa: E402

WORK = F.workdir()
F.generate_stubs(os.path.join(WORK, "stubs"))

from tracecode.v1 import consumer_pb2 as C  # noqa: E402
from tracecode.v1 import issuer_pb2 as I  # noqa: E402
from tracecode.v1 import registry_pb2 as R  # noqa: E402
from tracecode.v1 import types_pb2 as T  # noqa: E402
from tracecode.v1 import verifier_pb2 as V  # noqa: E402

REG = F.md("regulator", "SAMR")
BROWSER = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/120.0 Mobile Safari/537.36")
BASE = "https://tc.samr.example"
_seq = itertools.count(1)


def unique(prefix):
    return "%s%05d" % (prefix, next(_seq))


class Scan(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.started = time.time()
        cls.redis = F.Redis(WORK)
        cls.redis.start()
        cls.keys = F.keyring(WORK)
        cls.svc = F.Service(WORK, "a", cls.redis.url, cls.keys, [
            "--http", "127.0.0.1:0", "--base-url", BASE, "--copy-devices", "3",
            "--copy-regions", "2", "--copy-window", "3600",
            "--trusted-proxy", "127.0.0.1/32",
            "--access-log", os.path.join(WORK, "access.log")]).start()
        cls.node = F.Node(cls.svc.port)
        cls.reg, cls.iss, cls.ver, cls.con = (cls.node.reg, cls.node.iss, cls.node.ver,
                                              cls.node.con)

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.redis.stop()
        if rc != 0:
            raise AssertionError("tracesvc exited %s:\n%s" % (rc, cls.svc.output()[-4000:]))
        # Every line it logged, the drain included, is one logfmt event.
        bad = F.logfmt_problems(cls.svc.output())
        if bad:
            raise AssertionError("not logfmt: %r" % bad[:5])

    def get(self, path, headers=None, method="GET", port=None):
        c = http.client.HTTPConnection("127.0.0.1", port or self.svc.http_port, timeout=10)
        c.request(method, path, headers=dict({"User-Agent": BROWSER}, **(headers or {})))
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, dict(r.getheaders()), body

    def page(self, path, headers=None):
        status, h, body = self.get(path, headers)
        self.assertEqual(status, 200)
        self.assertIn("text/html", h["Content-Type"])
        text = re.sub(r"<style>.*?</style>|<[^>]+>", " ", body.decode())
        return h, body.decode(), re.sub(r"\s+", " ", text)

    def chain(self, quantity=10):
        credit, number = F.uscc(next(_seq)), unique("CCC2026")
        _, codes = F.chain(self.node, credit, number, quantity, maker="安克电源", brand="Anker",
                           model="PB-20K")
        return credit, number, codes

    def visit(self, code, headers=None, port=None):
        """A browser's visit: the page (which sets the device cookie when
        it has none), then the page's beacon with that cookie. The cookie."""
        status, h, body = self.get("/C/" + code, headers, port=port)
        self.assertEqual(status, 200)
        cookie = (headers or {}).get("Cookie") or h["Set-Cookie"].split(";")[0]
        self.assertIn('<script src="/beacon.js" data-code="%s" async></script>' % code.upper(),
                      body.decode())
        status, _, body = self.get("/seen/" + code, dict(headers or {}, Cookie=cookie),
                                   method="POST", port=port)
        self.assertEqual((status, body), (200, b"counted\n"))
        return cookie

    def test_page_genuine_in_chinese_and_english(self):
        _, number, codes = self.chain()
        h, html, text = self.page("/C/" + codes[0])
        self.assertIn('lang="zh-CN"', html)
        self.assertIn('name="viewport"', html)
        for words in ("正品", "Anker", "PB-20K", "安克电源", number, "有效", "扫码设备数 0"):
            self.assertIn(words, text)
        # The device cookie is signed: key id, 16 random bytes, 8 bytes of tag.
        self.assertRegex(h["Set-Cookie"], r"^tcd=[0-9a-f]{50}; Max-Age=31536000; Path=/; "
                                          r"HttpOnly; SameSite=Lax$")
        self.visit(codes[0], {"Cookie": h["Set-Cookie"].split(";")[0]})
        _, _, text = self.page("/C/" + codes[0])
        self.assertIn("扫码设备数 1", text)
        _, _, text = self.page("/C/" + codes[0].lower() + "?lang=en")  # any case
        self.assertIn("Genuine: Anker PB-20K made by 安克电源, under valid certificate", text)
        _, _, text = self.page("/C/" + codes[0], {"Accept-Language": "en-GB,en;q=0.9"})
        self.assertIn("Certificate status valid", text)

    def test_forged_revoked_recalled_and_bad_codes(self):
        credit, number, codes = self.chain()
        code = codes[1]
        forged = code[:20] + ("2" if code[20] != "2" else "3") + code[21:]
        _, _, text = self.page("/C/" + forged)
        self.assertIn("疑似伪造", text)
        self.assertIn("不是由监管系统签发", text)
        self.assertEqual(self.redis.cli("EXISTS", "tc:{%s}:scan" % forged).strip(), "0")
        # Recalled, then the certificate revoked.
        batch = self.iss.GetBatch(I.GetBatchRequest(batch_id=int(self.ver.VerifyCode(
            V.VerifyCodeRequest(code=code), metadata=F.md("platform", "p")).result.batch_id)),
            metadata=F.md("manufacturer", credit)).batch
        self.iss.RecallBatch(I.RecallBatchRequest(batch_id=batch.batch_id, first_serial=0,
                                                  last_serial=9, reason="电芯鼓包"),
                             metadata=F.md("manufacturer", credit))
        self.assertTrue(F.wait_for(lambda: "已召回" in self.page("/C/" + code)[2], 5))
        self.assertIn("电芯鼓包", self.page("/C/" + code)[2])
        self.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
            number=number, status=T.CERTIFICATE_STATUS_REVOKED, reason="fire risk"), metadata=REG)
        # Recall is decided first (verify.h order); a code without recall: revoked.
        _, _, text = self.page("/C/" + code + "?lang=en")
        self.assertIn("Recalled", text)
        # Bad input: a page that explains, escaped, never an error dump.
        _, html, text = self.page("/C/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        self.assertNotIn("<script", html)
        self.assertIn("无法识别", text)
        _, _, text = self.page("/C/ABC?lang=en")
        self.assertIn("This is not a valid trace code", text)
        self.assertNotIn("wrong length", text)  # the parser's words: in the JSON only
        status, _, body = self.get("/api/v1/scan/ABC")
        self.assertIn("wrong length 3, want 34 or 120", json.loads(body)["detail"])
        self.assertEqual(self.get("/C/" + "A" * 400)[0], 414)
        self.assertEqual(self.get("/nope")[0], 404)
        self.assertEqual(self.get("/C/" + code, method="POST")[0], 405)

    def test_revoked_certificate(self):
        _, number, codes = self.chain()
        self.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
            number=number, status=T.CERTIFICATE_STATUS_REVOKED, reason="fire risk"), metadata=REG)
        self.assertTrue(F.wait_for(lambda: "证书已撤销" in self.page("/C/" + codes[2])[2], 5))
        _, _, text = self.page("/C/" + codes[2] + "?lang=en")
        self.assertIn("Certificate revoked", text)
        self.assertIn("fire risk", text)

    def test_copy_rules(self):
        _, _, codes = self.chain()

        def scan(code, device, region=None):
            h = {"X-Region": region} if region else {}
            status, _, body = self.get("/api/v1/scan/%s?device=d%d" % (code, device), h)
            self.assertEqual(status, 200)
            return json.loads(body)

        # Devices: the same device many times is one; four devices > 3.
        for _ in range(5):
            j = scan(codes[3], 1)
        self.assertEqual((j["scan_count"], j["suspected_copy"]), (1, False))
        for d in (2, 3, 4):
            j = scan(codes[3], d)
        self.assertEqual(j["scan_count"], 4)
        self.assertTrue(j["suspected_copy"])
        self.assertIn("4 distinct devices", j["copy_reasons"])
        self.assertEqual(j["verdict"], "GENUINE")
        # Regions: a third distinct region (> 2); the same province only.
        for r in ("110101", "110102"):
            j = scan(codes[4], 10, r)
        self.assertFalse(j["suspected_copy"], j["copy_reasons"])
        self.assertEqual(j["first_scan_region"], "110101")
        j = scan(codes[4], 10, "110105")
        self.assertIn("scanned in 3 regions", j["copy_reasons"])
        # Travel: Beijing, then Shenzhen within the hour.
        scan(codes[5], 20, "110101")
        j = scan(codes[5], 20, "440305")
        self.assertIn("two provinces within 60 minutes", j["copy_reasons"])
        # Listings: one code on two listings.
        self.ver.RegisterListings(V.RegisterListingsRequest(bindings=[
            V.ListingBinding(listing_id="X1", code=codes[6])]), metadata=F.md("platform", "p1"))
        self.ver.RegisterListings(V.RegisterListingsRequest(bindings=[
            V.ListingBinding(listing_id="Y1", code=codes[6])]), metadata=F.md("platform", "p2"))
        j = scan(codes[6], 30)
        self.assertIn("bound to 2 listings", j["copy_reasons"])
        _, _, text = self.page("/C/" + codes[6])
        self.assertIn("疑似复制码", text)

    def test_scans_cannot_be_faked_from_outside(self):
        """Found: every GET and HEAD counted, a request without the cookie
        counted a new device, X-Region from anyone was believed: 11 fetches
        by a link-preview bot flipped a genuine code to "suspected copy"."""
        _, _, codes = self.chain()
        code = codes[9]
        self.assertEqual(self.get("/C/" + code, method="HEAD")[0], 200)
        for i in range(20):  # a browser that never keeps the cookie, and never runs the page
            self.page("/C/" + code)
        for ua in ("facebookexternalhit/1.1", "Slackbot-LinkExpanding 1.0", "WhatsApp/2.23",
                   "UptimeRobot/2.0", "curl/7.88.1", ""):
            self.assertEqual(self.get("/C/%s" % code, {"User-Agent": ua})[0], 200)
            # Even with a valid cookie, a robot's beacon is not counted.
            cookie = self.get("/C/" + code)[1]["Set-Cookie"].split(";")[0]
            status, _, _ = self.get("/seen/" + code, {"User-Agent": ua, "Cookie": cookie},
                                    method="POST")
            self.assertEqual(status, 403, ua)
        # A made-up cookie names no device.
        for fake in ("tcd=" + "00" * 25, "tcd=" + "%032x" % 7, "tcd=01" + "ab" * 24):
            status, _, body = self.get("/seen/" + code, {"Cookie": fake}, method="POST")
            self.assertEqual(status, 403, fake)
        # The JSON API records only with a device id (and then whatever the
        # app's HTTP client is called).
        for _ in range(5):
            j = json.loads(self.get("/api/v1/scan/" + code, {"User-Agent": "okhttp/4.12"})[2])
        self.assertEqual((j["scan_count"], j["suspected_copy"]), (0, False))
        self.assertEqual(self.redis.cli("EXISTS", "tc:{%s}:scan" % code).strip(), "0")
        _, _, text = self.page("/C/" + code)
        self.assertIn("扫码设备数 0", text)
        self.assertNotIn("疑似复制码", text)
        j = json.loads(self.get("/api/v1/scan/%s?device=app-7" % code,
                                {"User-Agent": "okhttp/4.12"})[2])
        self.assertEqual(j["scan_count"], 1)
        # The beacon is a POST: a GET of it counts nothing.
        self.assertEqual(self.get("/seen/" + code)[0], 405)

    def test_region_only_from_trusted_proxies(self):
        _, _, codes = self.chain()
        other = F.Service(WORK, "untrusting", self.redis.url, self.keys,
                          ["--http", "127.0.0.1:0", "--trusted-proxy", "10.0.0.0/8,fd00::/8",
                           "--copy-window", "3600"]).start()
        try:
            # From an address that is not a trusted proxy, X-Region is anyone's claim.
            for region in ("110101", "440305", "310101"):
                self.visit(codes[8], {"X-Region": region}, port=other.http_port)
            j = json.loads(self.get("/api/v1/scan/" + codes[8], port=other.http_port)[2])
            self.assertEqual((j["first_scan_region"], j["suspected_copy"]), ("", False))
            self.assertEqual(j["scan_count"], 3)
        finally:
            self.assertEqual(other.stop(), 0)
        # The same visits through this node, which trusts 127.0.0.1: regions count.
        self.visit(codes[7], {"X-Region": "110101"})
        j = json.loads(self.get("/api/v1/scan/" + codes[7])[2])
        self.assertEqual(j["first_scan_region"], "110101")
        # A bad --trusted-proxy stops the node at start.
        p = subprocess.run([F.binary("tracesvc"), "--redis", self.redis.url, "--keys", self.keys,
                            "--grpc", "127.0.0.1:0", "--insecure", "--http", "127.0.0.1:0",
                            "--trusted-proxy", "10.0.0.0/33"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--trusted-proxy '10.0.0.0/33' is not ADDRESS[/BITS]", p.stderr)

    def test_scan_rpc(self):
        _, number, codes = self.chain()
        pm = F.md("platform", "shop-scan")
        for dev in ("d1", "d1", "d2"):
            r = self.con.Scan(C.ScanRequest(code=codes[7], region="310101", device_id=dev),
                              metadata=pm)
        self.assertEqual((r.verdict, r.scan_count, r.first_scan_region, r.suspected_copy),
                         (T.VERDICT_GENUINE, 2, "310101", False))
        self.assertEqual((r.product.brand, r.issuer_name, r.certificate_number),
                         ("Anker", "安克电源", number))
        self.assertIn("正品", r.message)
        self.assertGreater(r.first_scan_unix, 0)
        code, msg = F.status_of(self.con.Scan, C.ScanRequest(code=codes[7], region="bad region"),
                                metadata=pm)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        code, _ = F.status_of(self.con.Scan, C.ScanRequest(code=codes[7]), metadata=REG)
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)

    def test_qr_images(self):
        _, _, codes = self.chain()
        status, h, png = self.get("/qr/%s.png" % codes[8].lower())
        self.assertEqual((status, h["Content-Type"]), (200, "image/png"))
        path = os.path.join(WORK, "qr.png")
        with open(path, "wb") as f:
            f.write(png)
        out = subprocess.run(["zbarimg", "-q", "--raw", path], capture_output=True,
                             text=True).stdout.strip()
        self.assertEqual(out, (BASE + "/C/" + codes[8]).upper())
        status, h, svg = self.get("/qr/%s.svg" % codes[8])
        self.assertEqual((status, h["Content-Type"]), (200, "image/svg+xml"))
        self.assertTrue(svg.startswith(b"<?xml") or svg.startswith(b"<svg"))
        self.assertEqual(self.get("/qr/NOTACODE.png")[0], 404)

    def test_not_ready_without_an_issuing_key(self):
        # The deployment issues under key 2 (ed25519); node b's keyring has
        # only key 1: b answers /readyz 503 naming the key and what to do,
        # says so in /metrics, and is ready once it has the file (SIGHUP).
        self.reg.ActivateKey(R.ActivateKeyRequest(key_id=2, request_id="act-2-ready"),
                             metadata=REG, timeout=10)
        kb = os.path.join(WORK, "keys-b")
        os.mkdir(kb, 0o700)
        subprocess.run(["cp", "-p", os.path.join(self.keys, "key-001"), kb], check=True)
        b = F.Service(WORK, "b", self.redis.url, kb, ["--http", "127.0.0.1:0"]).start()
        try:
            def ready():
                return self.get("/readyz", port=b.admin_port)

            self.assertTrue(F.wait_for(lambda: ready()[0] == 503, 10), ready())
            self.assertEqual(ready()[2].decode(),
                             "not ready: the deployment issues under key 2, which this node's "
                             "keyring lacks (copy key-002 to it and send SIGHUP)\n")
            metrics = self.get("/metrics", port=b.admin_port)[2].decode()
            self.assertIn("\ntracesvc_keyring_missing_key 2\n", metrics)
            self.assertIn("lacks: copy key-002 to it and send SIGHUP", b.output())
            subprocess.run(["cp", "-p", os.path.join(self.keys, "key-002"), kb], check=True)
            b.proc.send_signal(signal.SIGHUP)
            self.assertTrue(F.wait_for(lambda: ready()[0] == 200, 10), ready())
            metrics = self.get("/metrics", port=b.admin_port)[2].decode()
            self.assertIn("\ntracesvc_keyring_missing_key 0\n", metrics)
        finally:
            self.assertEqual(b.stop(), 0, b.output()[-2000:])

    def test_health_and_metrics(self):
        admin = self.svc.admin_port
        self.assertEqual(self.get("/healthz", port=admin)[0], 200)
        self.assertEqual(self.get("/readyz", port=admin)[:3:2],
                         (200, b"ready: verifying; writes possible\n"))
        self.assertEqual(self.get("/readyz?writes=1", port=admin)[0], 200)
        # Each listener serves its own: no metrics or health on the public
        # one, no scan pages on the admin one (loopback by default).
        for path in ("/metrics", "/healthz", "/readyz"):
            status, _, body = self.get(path)
            self.assertEqual(status, 404, path)
            self.assertIn(b"scan pages are at /C/{code}", body)
        status, _, body = self.get("/C/" + "A" * 34, port=admin)
        self.assertEqual(status, 404)
        self.assertIn(b"this is the admin listener (--admin)", body)
        self.assertRegex(self.svc.output(), r"serving the admin listener on 127\.0\.0\.1:0 "
                                            r"admin-port \d+ ")
        _, _, codes = self.chain()
        pm = F.md("platform", "shop-m")
        self.ver.VerifyCode(V.VerifyCodeRequest(code=codes[9]), metadata=pm)
        code = codes[9]
        forged = code[:25] + ("2" if code[25] != "2" else "3") + code[25 + 1:]  # a tag symbol
        self.assertEqual(self.ver.VerifyCode(V.VerifyCodeRequest(code=forged), metadata=pm).result.verdict,
                         T.VERDICT_FORGED)
        F.status_of(self.ver.VerifyCode, V.VerifyCodeRequest(code="x"), metadata=REG)
        status, h, body = self.get("/metrics", port=admin)
        self.assertEqual(status, 200)
        self.assertIn("text/plain; version=0.0.4", h["Content-Type"])
        m = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                m[k] = float(v)
        vc = 'method="tracecode.v1.VerifierService/VerifyCode"'
        self.assertGreaterEqual(m['tracesvc_rpc_calls_total{%s,code="OK"}' % vc], 2)
        self.assertGreaterEqual(m['tracesvc_rpc_calls_total{%s,code="PERMISSION_DENIED"}' % vc], 1)
        self.assertGreaterEqual(m['tracesvc_verdicts_total{verdict="GENUINE"}'], 1)
        self.assertGreaterEqual(m['tracesvc_verdicts_total{verdict="FORGED"}'], 1)
        count = m['tracesvc_rpc_latency_seconds_count{%s}' % vc]
        self.assertEqual(m['tracesvc_rpc_latency_seconds_bucket{%s,le="+Inf"}' % vc], count)
        self.assertLessEqual(m['tracesvc_rpc_latency_seconds_bucket{%s,le="0.001"}' % vc], count)
        self.assertEqual((m["tracesvc_redis_up"], m["tracesvc_replica_stale"]), (1, 0))
        self.assertGreater(m["tracesvc_replica_revision"], 0)
        # What runs, as --version says it.
        version = subprocess.run([F.binary("tracesvc"), "--version"], capture_output=True,
                                 text=True, check=True).stdout
        ver, commit, grpc_v, ssl_v, hiredis_v = re.match(
            r"tracesvc (\S+) \(commit (\S+); gRPC core (\S+), OpenSSL (\S+), hiredis (\S+)\)",
            version).groups()
        info = ('tracesvc_build_info{version="%s",commit="%s",grpc="%s",openssl="%s",'
                'redis_client="hiredis %s"}' % (ver, commit, grpc_v, ssl_v, hiredis_v))
        self.assertEqual(m.get(info), 1, [k for k in m if k.startswith("tracesvc_build_info")])
        self.assertNotEqual(commit, "unknown")  # built from a git tree
        # The process collector, under the names Prometheus clients use.
        self.assertGreater(m["process_resident_memory_bytes"], 1 << 20)
        self.assertGreater(m["process_open_fds"], 5)
        self.assertLessEqual(m["process_open_fds"], m["process_max_fds"])
        self.assertGreaterEqual(m["process_cpu_seconds_total"], 0)
        self.assertLess(abs(m["process_start_time_seconds"] - self.started), 120)
        # gRPC calls also under the gRPC ecosystem's names.
        lv = ('grpc_type="unary",grpc_service="tracecode.v1.VerifierService",'
              'grpc_method="VerifyCode"')
        self.assertEqual(m['grpc_server_handled_total{%s,grpc_code="OK"}' % lv],
                         m['tracesvc_rpc_calls_total{%s,code="OK"}' % vc])
        self.assertGreaterEqual(m['grpc_server_started_total{%s}' % lv],
                                m['grpc_server_handled_total{%s,grpc_code="OK"}' % lv])
        self.assertEqual(m['grpc_server_handling_seconds_count{%s}' % lv], count)
        # HTTP requests by listener, route and status (this test's own included).
        self.assertGreaterEqual(m.get('tracesvc_http_requests_total{listener="admin",'
                                      'route="/healthz",code="200"}', 0), 1)
        self.assertGreaterEqual(m.get('tracesvc_http_requests_total{listener="public",'
                                      'route="none",code="404"}', 0), 3)
        self.assertIn('tracesvc_http_request_duration_seconds_count{listener="admin",'
                      'route="/readyz"}', m)
        # Prometheus's own linter finds nothing wrong.
        promtool = os.path.join(F.ROOT, ".tools", "promtool")
        self.assertTrue(os.access(promtool, os.X_OK), "no .tools/promtool: run ./scripts/deps.sh")
        p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, b""))

    def test_access_log(self):
        # A line per call and per request, logfmt, saying who called what and
        # how it ended; a consumer's code never whole in it.
        _, _, codes = self.chain()
        self.ver.VerifyCode(V.VerifyCodeRequest(code=codes[3]), metadata=F.md("platform", "shop-l"))
        self.page("/C/%s?lang=en" % codes[3])
        self.get("/api/v1/scan/%s?device=d1" % codes[4])
        self.get("/readyz", port=self.svc.admin_port)
        path = os.path.join(WORK, "access.log")

        def lines():
            with open(path) as f:
                return f.read().splitlines()
        self.assertTrue(F.wait_for(lambda: any("route=/api/v1/scan/" in l for l in lines()), 5))
        pair = r'[a-z_]+=(?:"(?:[^"\\]|\\.)*"|[^\s"]+)'
        shape = re.compile(r'ts=\S+Z level=info msg="access"(?: %s)+$' % pair)
        self.assertEqual([l for l in lines() if not shape.match(l)], [])
        text = "\n".join(lines())
        self.assertRegex(text, r"proto=grpc method=/tracecode.v1.VerifierService/VerifyCode "
                               r"code=OK ms=\S+ role=platform subject=shop-l peer=\S+")
        self.assertRegex(text, r"proto=http listener=public method=GET route=/C/ status=200 "
                               r"ms=\S+ peer=127\.0\.0\.1:\d+ path=/C/%s\.\.\.(\n|$)"
                         % codes[3][:6])
        self.assertIn("proto=http listener=admin method=GET route=/readyz status=200", text)
        for c in codes:
            self.assertNotIn(c[:12], text)  # never more than six symbols of a code

    def test_cancelled_watches_are_counted(self):
        # Five watches the client cancels: counted as Canceled when they end,
        # and open streams go back to what they were.
        def metric(name):
            body = self.get("/metrics", port=self.svc.admin_port)[2].decode()
            for line in body.splitlines():
                if line.startswith(name + " "):
                    return float(line.rsplit(" ", 1)[1])
            return 0.0
        method = "tracecode.v1.VerifierService/WatchDelistings"
        lv = ('grpc_type="server_stream",grpc_service="tracecode.v1.VerifierService",'
              'grpc_method="WatchDelistings"')
        open_ = 'tracesvc_rpc_open_streams{method="%s"}' % method
        cancelled = 'grpc_server_handled_total{%s,grpc_code="Canceled"}' % lv
        open0, cancelled0 = metric(open_), metric(cancelled)
        calls = [self.ver.WatchDelistings(V.WatchDelistingsRequest(),
                                          metadata=F.md("platform", "shop-cancel"))
                 for _ in range(5)]
        self.assertTrue(F.wait_for(lambda: metric(open_) == open0 + 5, 10), metric(open_))
        self.assertTrue(F.wait_for(lambda: metric("tracesvc_delist_watchers") >= 5, 10))
        for c in calls:
            c.cancel()
        self.assertTrue(F.wait_for(lambda: metric(cancelled) == cancelled0 + 5, 10),
                        (metric(cancelled), cancelled0))
        self.assertEqual(metric(open_), open0)


if __name__ == "__main__":
    unittest.main(verbosity=2)

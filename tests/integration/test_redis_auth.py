#!/usr/bin/python3
"""tracesvc against a Redis that asks for credentials (issue 13, first
part): an ACL user and password in the URL (percent-encoded), the default
user's password from TRACESVC_REDIS_PASSWORD or from a file, and wrong
credentials refused at start. The password never reaches the log. Every
connection authenticates: the write pool, the change-stream tail (a second
node follows a change), the delisting hub (a watcher gets its notice), the
audit sequencer (a signed head appears).
"""
import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcfixture as F  # noqa: E402

WORK = F.workdir()
F.generate_stubs(os.path.join(WORK, "stubs"))

REG = F.md("regulator", "SAMR")
USER_PW = "p@ss:w/rd"        # needs percent-encoding in a URL
DEFAULT_PW = "def-pw-2026"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RedisAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        d = os.path.join(WORK, "redis")
        os.makedirs(d)
        cls.redis = subprocess.Popen(
            ["redis-server", "--port", str(cls.port), "--bind", "127.0.0.1", "--dir", d,
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--requirepass", DEFAULT_PW,
             "--user", "tcsvc", "on", ">" + USER_PW, "~*", "&*", "+@all"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            out = subprocess.run(["redis-cli", "-p", str(cls.port), "-a", DEFAULT_PW,
                                  "--no-auth-warning", "PING"], capture_output=True,
                                 text=True).stdout
            if out.strip() == "PONG":
                break
            time.sleep(0.02)
        cls.keys = F.keyring(WORK)

    @classmethod
    def tearDownClass(cls):
        cls.redis.terminate()
        cls.redis.wait(timeout=10)

    def node(self, name, url, env=None, extra=()):
        s = F.Service(WORK, name, url, self.keys, list(extra))
        old = dict(os.environ)
        os.environ.update(env or {})
        try:
            return s.start()
        finally:
            os.environ.clear()
            os.environ.update(old)

    def assert_secret_free(self, svc):
        log = svc.output()
        for secret in (USER_PW, DEFAULT_PW, "p%40ss%3Aw%2Frd"):
            self.assertNotIn(secret, log)

    def test_acl_user_in_the_url_every_connection(self):
        url = "redis://tcsvc:p%%40ss%%3Aw%%2Frd@127.0.0.1:%d" % self.port
        a = self.node("acl-a", url)
        b = self.node("acl-b", url)
        try:
            na, nb = F.Node(a.port), F.Node(b.port)
            F.every_connection_serves(self, na, nb, "CCC-AUTH-1", F.uscc(1))
        finally:
            self.assertEqual(a.stop(), 0)
            self.assertEqual(b.stop(), 0)
        self.assert_secret_free(a)
        self.assert_secret_free(b)

    def test_password_from_the_environment_or_a_file(self):
        url = "redis://127.0.0.1:%d" % self.port
        s = self.node("env", url, {"TRACESVC_REDIS_PASSWORD": DEFAULT_PW})
        try:
            F.Node(s.port).reg.UpsertManufacturer(F.mfr_req(credit_code=F.uscc(2), name="E"),
                                                  metadata=REG)
        finally:
            self.assertEqual(s.stop(), 0)
        path = os.path.join(WORK, "redis-password")
        with open(path, "w") as f:
            f.write(DEFAULT_PW + "\n")
        s = self.node("file", url, {"TRACESVC_REDIS_PASSWORD_FILE": path})
        try:
            F.Node(s.port).reg.UpsertManufacturer(F.mfr_req(credit_code=F.uscc(3), name="F"),
                                                  metadata=REG)
        finally:
            self.assertEqual(s.stop(), 0)
        self.assert_secret_free(s)

    def test_wrong_or_missing_credentials_are_refused_at_start(self):
        env = dict(os.environ)
        for url, want in (
                ("redis://tcsvc:nope@127.0.0.1:%d" % self.port,
                 "redis refused the credentials of user 'tcsvc'"),
                ("redis://127.0.0.1:%d" % self.port, "NOAUTH"),
                ("redis://tcsvc:bad%%zz@127.0.0.1:%d" % self.port, "cannot parse redis url "
                 "'redis://***@127.0.0.1")):
            p = subprocess.run([F.binary("tracesvc"), "--redis", url, "--keys", self.keys,
                                "--grpc", "127.0.0.1:0", "--insecure"], capture_output=True,
                               text=True, timeout=30, env=env)
            self.assertEqual(p.returncode, 1, url)
            self.assertIn(want, p.stderr)
            self.assertNotIn("nope", p.stderr)
            self.assertNotIn("bad%zz", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

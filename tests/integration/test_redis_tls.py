#!/usr/bin/python3
"""tracesvc to a Redis that speaks only TLS (rediss://), through the
store's TLS bridge (svc/store/tls.c: Debian 12's hiredis 0.14 has no TLS):
a CA, a server certificate and a client certificate made with openssl at
test time; Debian's redis-server with --tls-port and --tls-auth-clients
yes. Every connection goes over TLS and authenticates: the write pool, the
change-stream tail (a second node follows a change), the delisting hub (a
watcher gets its notice), the audit sequencer (a signed head). Refused at
start, with the reason: a server certificate from another CA, a name that
does not match, no client certificate, a plain Redis port.
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

PW = "tls-pw-2026"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def make_ca(d, name):
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + name)
    return key, crt


def make_cert(d, name, ca, san):
    key, csr, crt = (os.path.join(d, name + e) for e in (".key", ".csr", ".crt"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\n" % san)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
    openssl("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext)
    return key, crt


class RedisTLS(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = os.path.join(WORK, "pki")
        os.makedirs(d)
        cls.ca = make_ca(d, "ca")
        cls.other_ca = make_ca(d, "other-ca")
        cls.server = make_cert(d, "server", cls.ca, "IP:127.0.0.1,DNS:redis.test")
        cls.client = make_cert(d, "client", cls.ca, "DNS:tracesvc")
        cls.port, cls.plain_port = free_port(), free_port()
        rd = os.path.join(WORK, "redis")
        os.makedirs(rd)
        cls.redis = subprocess.Popen(
            ["redis-server", "--port", str(cls.plain_port), "--bind", "127.0.0.1",
             "--tls-port", str(cls.port), "--tls-cert-file", cls.server[1],
             "--tls-key-file", cls.server[0], "--tls-ca-cert-file", cls.ca[1],
             "--tls-auth-clients", "yes", "--requirepass", PW, "--dir", rd, "--save", "",
             "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            out = subprocess.run(["redis-cli", "-p", str(cls.plain_port), "-a", PW,
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

    def url(self, query="", host="127.0.0.1", port=None):
        return "rediss://:%s@%s:%d%s" % (PW, host, port or self.port, query)

    def query(self, ca=None, cert=True, sni=None):
        q = "?ca=" + (ca or self.ca[1])
        if cert:
            q += "&cert=%s&key=%s" % (self.client[1], self.client[0])
        if sni:
            q += "&sni=" + sni
        return q

    def node(self, name, url, env=None):
        s = F.Service(WORK, name, url, self.keys)
        old = dict(os.environ)
        os.environ.update(env or {})
        try:
            return s.start()
        finally:
            os.environ.clear()
            os.environ.update(old)

    def clients(self, port):
        """Connections Redis has on port, besides the one asking."""
        out = subprocess.run(["redis-cli", "-p", str(self.plain_port), "-a", PW,
                              "--no-auth-warning", "CLIENT", "LIST"], capture_output=True,
                             text=True).stdout
        return sum(1 for line in out.splitlines()
                   if "laddr=127.0.0.1:%d " % port in line and "cmd=client" not in line)

    def clients_over_tls(self):
        return self.clients(self.port)

    def clients_over_plain(self):
        return self.clients(self.plain_port)

    def test_every_connection_over_tls(self):
        tmp = os.path.join(WORK, "tmp")  # where the bridges put their sockets
        os.makedirs(tmp)
        a = self.node("tls-a", self.url(self.query()), {"TMPDIR": tmp})
        # the same from the environment, expecting the certificate's DNS name
        b = self.node("tls-b", self.url(), {
            "TMPDIR": tmp, "TRACESVC_REDIS_TLS_CA": self.ca[1],
            "TRACESVC_REDIS_TLS_CERT": self.client[1], "TRACESVC_REDIS_TLS_KEY": self.client[0],
            "TRACESVC_REDIS_TLS_SNI": "redis.test"})
        self.assertEqual(len(os.listdir(tmp)), 2)  # one private directory each
        try:
            na, nb = F.Node(a.port), F.Node(b.port)
            F.every_connection_serves(self, na, nb, "CCC-TLS-1", F.uscc(1))
            # The nodes' connections are on the TLS port: none is plain.
            self.assertGreaterEqual(self.clients_over_tls(), 4)  # pools, tails, hub
            self.assertEqual(self.clients_over_plain(), 0)
        finally:
            self.assertEqual(a.stop(), 0)
            self.assertEqual(b.stop(), 0)
        self.assertNotIn(PW, a.output() + b.output())
        self.assertEqual(os.listdir(tmp), [])  # the bridges cleaned up

    def test_refused_at_start_with_the_reason(self):
        for url, want in (
                (self.url(self.query(ca=self.other_ca[1])),
                 "the server's certificate was refused"),
                (self.url(self.query(sni="other.test")), "the server's certificate was refused"),
                (self.url(self.query(cert=False)), "redis ended the connection"),
                (self.url(self.query(), port=self.plain_port), "handshake failed"),
                (self.url("?ca=/nonexistent/ca.pem"), "cannot read the CA file"),
                (self.url("?ca=%s&cert=%s" % (self.ca[1], self.client[1])),
                 "a client certificate needs its key")):
            p = subprocess.run([F.binary("tracesvc"), "--redis", url, "--keys", self.keys,
                                "--grpc", "127.0.0.1:0", "--insecure"], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(p.returncode, 1, (url, p.stderr))
            self.assertIn(want, p.stderr, url)
            self.assertNotIn("waiting for redis", p.stderr, url)
            self.assertNotIn(PW, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
"""mTLS: tracesvc in its default TLS mode with client certificates made at
test time (openssl CLI). The certificate's OU is the role and its CN the
subject; a client certificate from another CA, or none, is refused."""
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcfixture as F  # noqa: E402

import grpc  # noqa: E402

WORK = F.workdir()
F.generate_stubs(os.path.join(WORK, "stubs"))

from tracecode.v1 import registry_pb2_grpc as RG  # noqa: E402
from tracecode.v1 import types_pb2 as T  # noqa: E402
from tracecode.v1 import verifier_pb2 as V  # noqa: E402
from tracecode.v1 import verifier_pb2_grpc as VG  # noqa: E402

PKI = os.path.join(WORK, "pki")


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_ca(name):
    key, crt = os.path.join(PKI, name + ".key"), os.path.join(PKI, name + ".crt")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + name)
    return key, crt


def make_cert(name, ca, subj, server=False):
    key, csr, crt = (os.path.join(PKI, name + ext) for ext in (".key", ".csr", ".crt"))
    ext = os.path.join(PKI, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n" if server else
                "extendedKeyUsage=clientAuth\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", subj)
    openssl("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext)
    return key, crt


def read(path):
    with open(path, "rb") as f:
        return f.read()


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(PKI)
        cls.ca = make_ca("test-ca")
        cls.other_ca = make_ca("other-ca")
        server = make_cert("server", cls.ca, "/CN=localhost", server=True)
        cls.platform = make_cert("platform", cls.ca, "/O=Shop A/OU=platform/CN=shop-a")
        cls.regulator = make_cert("regulator", cls.ca, "/OU=regulator/CN=SAMR")
        cls.norole = make_cert("norole", cls.ca, "/CN=someone")
        cls.stranger = make_cert("stranger", cls.other_ca, "/OU=regulator/CN=SAMR")
        cls.redis = F.Redis(WORK)
        cls.redis.start()
        keys = F.keyring(WORK)
        cls.svc = F.Service(WORK, "tls", cls.redis.url, keys,
                            ["--grpc", "127.0.0.1:0", "--tls-cert", server[1], "--tls-key",
                             server[0], "--client-ca", cls.ca[1]]).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.redis.stop()
        shutil.rmtree(WORK, ignore_errors=True)
        if rc != 0:
            raise AssertionError("tracesvc exited %s" % rc)

    def channel(self, client=None, root=None):
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(root or self.ca[1]),
            private_key=read(client[0]) if client else None,
            certificate_chain=read(client[1]) if client else None)
        return grpc.secure_channel("localhost:%d" % self.svc.port, creds)

    def test_identity_from_certificate(self):
        reg = RG.RegistryServiceStub(self.channel(self.regulator))
        out = reg.UpsertManufacturer(F.mfr_req(credit_code=F.uscc(1), name="T"),
                                     timeout=10).manufacturer
        self.assertEqual(out.credit_code, F.uscc(1))
        ver = VG.VerifierServiceStub(self.channel(self.platform))
        self.assertEqual(ver.VerifyCode(V.VerifyCodeRequest(code="x"), timeout=10).result.verdict,
                         T.VERDICT_MALFORMED)
        # Metadata cannot claim another role in TLS mode.
        with self.assertRaises(grpc.RpcError) as ctx:
            RG.RegistryServiceStub(self.channel(self.platform)).UpsertManufacturer(
                F.mfr_req(credit_code=F.uscc(2), name="n"),
                metadata=(("tc-role", "regulator"), ("tc-subject", "SAMR")), timeout=10)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("role platform may not call tracecode.v1.RegistryService",
                      ctx.exception.details())

    def test_certificate_without_role(self):
        with self.assertRaises(grpc.RpcError) as ctx:
            VG.VerifierServiceStub(self.channel(self.norole)).VerifyCode(
                V.VerifyCodeRequest(code="x"), timeout=10)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("the client certificate's OU is missing (one of manufacturer, platform, "
                      "regulator, certifier)", ctx.exception.details())

    def test_wrong_ca_and_no_certificate(self):
        for client in (self.stranger, None):
            with self.assertRaises(grpc.RpcError) as ctx:
                VG.VerifierServiceStub(self.channel(client)).VerifyCode(
                    V.VerifyCodeRequest(code="x"), timeout=5)
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_tls_needs_its_files(self):
        p = subprocess.run([F.binary("tracesvc"), "--redis", self.redis.url, "--keys",
                            os.path.join(WORK, "keys"), "--grpc", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("TLS needs --tls-cert, --tls-key and --client-ca", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
"""mTLS: tracesvc in its default TLS mode with client certificates made at
test time (openssl CLI). The certificate's OU is the role and its CN the
subject; a client certificate from another CA, or none, is refused."""
import os
import shutil
import signal
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


def write_crl(ca, path, revoked_certs):
    """A CRL signed by ca revoking revoked_certs (paths), written atomically."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    with open(ca[0], "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    with open(ca[1], "rb") as f:
        issuer = x509.load_pem_x509_certificate(f.read()).subject
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateRevocationListBuilder().issuer_name(issuer).last_update(now)
         .next_update(now + datetime.timedelta(days=1)))
    for c in revoked_certs:
        with open(c, "rb") as f:
            serial = x509.load_pem_x509_certificate(f.read()).serial_number
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                      .revocation_date(now).build())
    crl = b.sign(key, hashes.SHA256())
    with open(path + ".tmp", "wb") as f:
        f.write(crl.public_bytes(serialization.Encoding.PEM))
    os.replace(path + ".tmp", path)


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
        # Crafted subjects (issue 12): a role hidden in another attribute's
        # value, printed as "O=Shop A\,OU=regulator" or "CN=shop-a\,OU=regulator",
        # and two OUs.
        cls.in_o = make_cert("in-o", cls.ca, "/O=Shop A,OU=regulator/OU=platform/CN=shop-a")
        cls.in_cn = make_cert("in-cn", cls.ca, "/OU=platform/CN=shop-a,OU=regulator")
        cls.two_ou = make_cert("two-ou", cls.ca, "/OU=platform/OU=regulator/CN=shop-a")
        cls.revokee = make_cert("revokee", cls.ca, "/OU=platform/CN=shop-r")
        cls.crl = os.path.join(PKI, "clients.crl")
        write_crl(cls.ca, cls.crl, [])
        cls.redis = F.Redis(WORK)
        cls.redis.start()
        keys = F.keyring(WORK)
        cls.svc = F.Service(WORK, "tls", cls.redis.url, keys,
                            ["--grpc", "127.0.0.1:0", "--tls-cert", server[1], "--tls-key",
                             server[0], "--client-ca", cls.ca[1], "--client-crl",
                             cls.crl]).start()

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
        self.assertIn("the client certificate's subject has no OU (the role)",
                      ctx.exception.details())

    def test_wrong_ca_and_no_certificate(self):
        for client in (self.stranger, None):
            with self.assertRaises(grpc.RpcError) as ctx:
                VG.VerifierServiceStub(self.channel(client)).VerifyCode(
                    V.VerifyCodeRequest(code="x"), timeout=5)
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def call_as(self, client, fn="verify"):
        """(status code, details) of one call with client's certificate."""
        try:
            if fn == "verify":
                VG.VerifierServiceStub(self.channel(client)).VerifyCode(
                    V.VerifyCodeRequest(code="x"), timeout=10)
            else:
                RG.RegistryServiceStub(self.channel(client)).UpsertManufacturer(
                    F.mfr_req(credit_code=F.uscc(3), name="n"), timeout=10)
        except grpc.RpcError as e:
            return e.code(), e.details()
        return grpc.StatusCode.OK, ""

    def test_crafted_subjects_keep_their_true_role(self):
        # O="Shop A,OU=regulator": read attribute by attribute, the role is
        # platform; a regulator's call is refused as a platform's.
        self.assertEqual(self.call_as(self.in_o)[0], grpc.StatusCode.OK)
        code, msg = self.call_as(self.in_o, "registry")
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("role platform may not call", msg)
        # CN="shop-a,OU=regulator": a platform whose subject is not an id.
        code, msg = self.call_as(self.in_cn, "registry")
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("the client certificate's CN has ',' at offset 6", msg)
        # Two OUs: refused, not "the last one wins".
        code, msg = self.call_as(self.two_ou)
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("more than one OU (the role)", msg)

    def test_revoked_by_crl_reloaded_on_change_and_sighup(self):
        self.assertEqual(self.call_as(self.revokee)[0], grpc.StatusCode.OK)
        # The regulator revokes the certificate: the file changes, the node
        # notices by itself (it looks once a second).
        write_crl(self.ca, self.crl, [self.revokee[1]])
        self.assertTrue(F.wait_for(
            lambda: self.call_as(self.revokee)[0] == grpc.StatusCode.UNAUTHENTICATED, 10))
        code, msg = self.call_as(self.revokee)
        self.assertIn("(OU=platform, CN=shop-r) is revoked", msg)
        self.assertEqual(self.call_as(self.platform)[0], grpc.StatusCode.OK)  # others unaffected
        self.assertIn("client CRL %s in force: 1 certificates revoked" % self.crl,
                      self.svc.output())
        # A CRL that does not verify is not put in force: the list stays.
        with open(self.crl, "w") as f:
            f.write("not a CRL\n")
        self.svc.proc.send_signal(signal.SIGHUP)
        self.assertTrue(F.wait_for(lambda: "not reloaded, the previous list stays" in
                                   self.svc.output(), 10))
        self.assertEqual(self.call_as(self.revokee)[0], grpc.StatusCode.UNAUTHENTICATED)
        # Lifted, and put in force by SIGHUP.
        write_crl(self.ca, self.crl, [])
        self.svc.proc.send_signal(signal.SIGHUP)
        self.assertTrue(F.wait_for(lambda: self.call_as(self.revokee)[0] == grpc.StatusCode.OK,
                                   10))

    def test_tls_needs_its_files(self):
        p = subprocess.run([F.binary("tracesvc"), "--redis", self.redis.url, "--keys",
                            os.path.join(WORK, "keys"), "--grpc", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("TLS needs --tls-cert, --tls-key and --client-ca", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""Fixtures for the integration tests: a private redis-server and real
tracesvc processes, each in a temp dir, on free ports, stopped by PID; and
Python gRPC stubs generated from our proto (and gRPC's health/reflection
protos from Debian's grpc-proto) at test time.

Run with Debian's /usr/bin/python3 (python3-grpcio, python3-grpc-tools).
"""
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import grpc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GRPC_PROTO = "/usr/share/grpc-proto"


def binary(name):
    """A program of the build under test (TC_BUILD, default ROOT/build)."""
    return os.path.join(ROOT, os.environ.get("TC_BUILD", "build"), "bin", name)


def generate_stubs(dest):
    """Python stubs for tracecode.v1, and for gRPC health and reflection
    (copied under tcgrpc/ so they do not shadow the grpc package)."""
    from grpc_tools import protoc
    os.makedirs(dest, exist_ok=True)
    protos = sorted(os.path.join(ROOT, "proto", "tracecode", "v1", f)
                    for f in os.listdir(os.path.join(ROOT, "proto", "tracecode", "v1"))
                    if f.endswith(".proto"))
    args = ["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out=" + dest,
            "--grpc_python_out=" + dest] + protos
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed for tracecode.v1")
    gp = os.path.join(dest, "gp")
    for rel in ("grpc/health/v1/health.proto", "grpc/reflection/v1alpha/reflection.proto"):
        target = os.path.join(gp, "tc" + rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(os.path.join(GRPC_PROTO, rel), target)
    args = ["protoc", "-I", gp, "--python_out=" + dest, "--grpc_python_out=" + dest,
            "tcgrpc/health/v1/health.proto", "tcgrpc/reflection/v1alpha/reflection.proto"]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed for health/reflection")
    for d in ("tracecode", "tracecode/v1", "tcgrpc", "tcgrpc/health", "tcgrpc/health/v1",
              "tcgrpc/reflection", "tcgrpc/reflection/v1alpha"):
        open(os.path.join(dest, d, "__init__.py"), "a").close()
    sys.path.insert(0, dest)


class Redis:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "redis.sock")
        self.url = "unix:" + self.sock
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.sock, "--unixsocketperm", "700",
             "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            out = subprocess.run(["redis-cli", "-s", self.sock, "PING"], capture_output=True,
                                 text=True).stdout
            if out.strip() == "PONG":
                return
            time.sleep(0.01)
        raise RuntimeError("redis-server did not start")

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-s", self.sock] + list(args), capture_output=True,
                              text=True, check=True).stdout

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


class Service:
    """A tracesvc process; port 0 lets the kernel pick, the log says which."""

    def __init__(self, workdir, name, redis_url, keys, extra=()):
        self.log_path = os.path.join(workdir, name + ".log")
        self.cmd = [binary("tracesvc"),
                    "--redis", redis_url, "--keys", keys, "--threads", "2"] + list(extra)
        if "--grpc" not in extra:
            self.cmd += ["--grpc", "127.0.0.1:0", "--insecure"]
        self.proc = None
        self.port = None

    def start(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(1000):
            with open(self.log_path) as f:
                text = f.read()
            m = re.search(r"gRPC on \S+ port (\d+) ", text)
            a = re.search(r"admin-port (\d+)", text)
            if m and a and ("--http" not in self.cmd or "http-port" in text):
                self.port = int(m.group(1))
                self.admin_port = int(a.group(1))  # /metrics, /healthz, /readyz
                h = re.search(r"http-port (\d+)", text)
                self.http_port = int(h.group(1)) if h else None
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("tracesvc exited: " + text)
            time.sleep(0.01)
        raise RuntimeError("tracesvc did not start: " + self.output())

    def stop(self, sig=signal.SIGTERM):
        if not self.proc:
            return None
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=30)
        self.proc = None
        self.log.close()
        return rc

    def output(self):
        with open(self.log_path) as f:
            return f.read()


def workdir():
    return tempfile.mkdtemp(prefix="tc-it-")


def keyring(work):
    path = os.path.join(work, "keys")
    subprocess.run([binary("tracekeys"), "init", "--dir", path], check=True,
                   stdout=subprocess.DEVNULL)
    return path


def md(role, subject):
    return (("tc-role", role), ("tc-subject", subject))


USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def uscc(n, prefix="913100007"):
    """A unified social credit code (GB 32100) whose check character
    verifies: prefix, n in base 31 over the code's alphabet, the check."""
    body = ""
    for _ in range(17 - len(prefix)):
        body = USCC_ALPHABET[n % 31] + body
        n //= 31
    body = prefix + body
    weights = [pow(3, i, 31) for i in range(17)]
    total = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(body, weights))
    return body + USCC_ALPHABET[(31 - total % 31) % 31]


def gtin(body):
    """body (7, 11, 12 or 13 digits) with its GS1 check digit appended."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


class Node:
    """A channel to one tracesvc and a stub for each of its services (the
    stubs from generate_stubs, which must have run)."""

    def __init__(self, port, options=()):
        from tracecode.v1 import (audit_pb2_grpc, consumer_pb2_grpc, issuer_pb2_grpc,
                                  registry_pb2_grpc, verifier_pb2_grpc)
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % port, options=list(options))
        self.reg = registry_pb2_grpc.RegistryServiceStub(self.channel)
        self.iss = issuer_pb2_grpc.IssuerServiceStub(self.channel)
        self.ver = verifier_pb2_grpc.VerifierServiceStub(self.channel)
        self.audit = audit_pb2_grpc.AuditServiceStub(self.channel)
        self.con = consumer_pb2_grpc.ConsumerServiceStub(self.channel)


class ServiceCase(unittest.TestCase):
    """A test class with its own redis-server, keyring and one tracesvc
    (flags: the class's EXTRA; work dir: its WORK), stopped at the end;
    a node that does not exit 0 (a sanitizer report, a crash) fails it."""
    WORK = None
    EXTRA = ()

    @classmethod
    def setUpClass(cls):
        cls.redis = Redis(cls.WORK)
        cls.redis.start()
        cls.keys = keyring(cls.WORK)
        cls.svc = Service(cls.WORK, "a", cls.redis.url, cls.keys, list(cls.EXTRA)).start()
        cls.a = Node(cls.svc.port)

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.redis.stop()
        if rc != 0:
            raise AssertionError("tracesvc exited %s:\n%s" % (rc, cls.svc.output()[-4000:]))


_unique = itertools.count(1)


def unique(prefix):
    """prefix and a number not used before in this process."""
    return "%s%05d" % (prefix, next(_unique))


def chain(node, credit, number, quantity, maker="Acme", brand="Acme", model="PB"):
    """Through node, as regulator SAMR and then as the manufacturer: an
    active maker, a valid CCC certificate for category 0704, a product and
    a batch of MAC codes. Returns (batch id, codes)."""
    from tracecode.v1 import issuer_pb2 as I, registry_pb2 as R, types_pb2 as T
    reg = md("regulator", "SAMR")
    node.reg.UpsertManufacturer(R.UpsertManufacturerRequest(manufacturer=T.Manufacturer(
        credit_code=credit, name=maker, status=T.MANUFACTURER_STATUS_ACTIVE)), metadata=reg)
    node.reg.UpsertCertificate(R.UpsertCertificateRequest(certificate=T.Certificate(
        number=number, kind=T.CERTIFICATE_KIND_CCC, holder_credit_code=credit,
        category_codes=["0704"])), metadata=reg)
    mf = md("manufacturer", credit)
    p = node.iss.RegisterProduct(I.RegisterProductRequest(
        certificate_number=number, category_code="0704", brand=brand, model=model),
        metadata=mf).product
    codes, batch = [], None
    for m in node.iss.IssueCodes(I.IssueCodesRequest(product_id=p.product_id, quantity=quantity,
                                                     profile=T.CODE_PROFILE_MAC,
                                                     chunk_size=quantity),
                                 metadata=mf):
        codes += list(m.codes)
        if m.HasField("batch"):
            batch = m.batch.batch_id
    return batch, codes


def every_connection_serves(test, na, nb, number, credit):
    """Two nodes on one Redis: a chain written through na reaches nb's tail
    (nb verifies a code GENUINE), nb's delisting hub (a watcher there gets
    the notice of a revocation made through na), and na's audit sequencer
    (a signed head) - every kind of Redis connection a node makes."""
    from tracecode.v1 import audit_pb2 as A, registry_pb2 as R, types_pb2 as T
    from tracecode.v1 import verifier_pb2 as V
    reg, plat = md("regulator", "SAMR"), md("platform", "p")
    _, codes = chain(na, credit, number, 3)
    test.assertTrue(wait_for(lambda: nb.ver.VerifyCode(
        V.VerifyCodeRequest(code=codes[0]), metadata=plat).result.verdict ==
        T.VERDICT_GENUINE, 10))
    na.ver.RegisterListings(V.RegisterListingsRequest(bindings=[
        V.ListingBinding(listing_id="L1", code=codes[0])]), metadata=plat)
    watch = nb.ver.WatchDelistings(V.WatchDelistingsRequest(), metadata=plat, timeout=10)
    na.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
        number=number, status=T.CERTIFICATE_STATUS_REVOKED, reason="x"), metadata=reg)
    ev = next(e for e in watch if e.WhichOneof("event") == "notice")
    test.assertEqual(list(ev.notice.listing_ids), ["L1"])
    watch.cancel()
    test.assertTrue(wait_for(lambda: status_of(
        na.audit.GetTreeHead, A.GetTreeHeadRequest(), metadata=reg)[0] == grpc.StatusCode.OK,
        10))


def mfr_req(request_id="", **kw):
    """An UpsertManufacturerRequest for a Manufacturer of kw."""
    from tracecode.v1 import registry_pb2 as R, types_pb2 as T
    return R.UpsertManufacturerRequest(manufacturer=T.Manufacturer(**kw), request_id=request_id)


def cert_req(request_id="", **kw):
    """An UpsertCertificateRequest for a Certificate of kw."""
    from tracecode.v1 import registry_pb2 as R, types_pb2 as T
    return R.UpsertCertificateRequest(certificate=T.Certificate(**kw), request_id=request_id)


def import_stream(certs, request_id=""):
    """ImportCertificatesRequest messages for certs (request_id on the first)."""
    from tracecode.v1 import registry_pb2 as R
    for i, c in enumerate(certs):
        yield R.ImportCertificatesRequest(certificate=c, request_id=request_id if i == 0 else "")


def status_of(fn, *args, **kw):
    """Call fn; its status code and details (OK and "" when it succeeds)."""
    try:
        fn(*args, **kw)
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


def wait_for(pred, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


LOGFMT = re.compile(r'ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z '
                    r'level=(debug|info|warn|error) msg="(?:[^"\\\x00-\x1f]|\\.)*"$')


def logfmt_problems(text):
    """The lines of a tracesvc log that are not one logfmt event each."""
    return [line for line in text.splitlines() if not LOGFMT.match(line)]

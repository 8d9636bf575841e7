#!/usr/bin/python3
"""The two example clients a platform engineer copies (examples/python with
grpcio, examples/node with @grpc/grpc-js) against a real tracesvc and
redis-server: each verifies a batch (genuine codes, a code in its printed
form, a forged one) and watches delisting notices, acknowledging what it
receives. Node comes from the machine, its packages from the repository's
package-lock.json (scripts/deps.sh runs npm ci).
"""
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

from tracecode.v1 import registry_pb2 as R  # noqa: E402
from tracecode.v1 import types_pb2 as T  # noqa: E402
from tracecode.v1 import verifier_pb2 as V  # noqa: E402

REG = F.md("regulator", "SAMR")
PY = [sys.executable, os.path.join(F.ROOT, "examples", "python", "platform_client.py")]
NODE = [shutil.which("node") or "node", os.path.join(F.ROOT, "examples", "node",
                                                     "platform_client.js")]


class Examples(F.ServiceCase):
    WORK = WORK
    EXTRA = ("--heartbeat", "300")

    @classmethod
    def setUpClass(cls):
        if not os.path.isdir(os.path.join(F.ROOT, "node_modules", "@grpc", "grpc-js")):
            raise AssertionError("node_modules missing: run ./scripts/deps.sh (npm ci)")
        super().setUpClass()

    def run_client(self, client, platform, *args, stdin=None):
        return subprocess.run(client + ["--addr", "127.0.0.1:%d" % self.svc.port, "--insecure",
                                        "--platform", platform] + list(args),
                              input=stdin, capture_output=True, text=True, timeout=60)

    def verify_batch(self, client):
        n = int(F.unique("")[-5:])
        number = "CCC-EX-%d" % n
        _, codes = F.chain(self.a, F.uscc(n), number, 50)
        forged = codes[1][:20] + ("A" if codes[1][20] != "A" else "B") + codes[1][21:]
        printed = "-".join(codes[2][i:i + 4] for i in range(0, 34, 4)).lower()
        # All fifty genuine, from standard input: exit 0.
        p = self.run_client(client, "shop-ex", "verify", stdin="\n".join(codes) + "\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 50)
        self.assertTrue(all(line.split("\t")[1] == "VERDICT_GENUINE" for line in lines), lines)
        # A forged one among them: said, and exit 1; the printed form reads as genuine.
        p = self.run_client(client, "shop-ex", "verify", codes[0], forged, printed)
        self.assertEqual(p.returncode, 1, p.stderr)
        got = [line.split("\t") for line in p.stdout.splitlines()]
        self.assertEqual([g[1] for g in got],
                         ["VERDICT_GENUINE", "VERDICT_FORGED", "VERDICT_GENUINE"])
        self.assertIn("tag does not match", got[1][2])
        return number, codes

    def watch_notice(self, client):
        number, codes = self.verify_batch(client)
        plat = "shop-ex%d" % int(F.unique("")[-5:])
        self.a.ver.RegisterListings(V.RegisterListingsRequest(bindings=[
            V.ListingBinding(listing_id="L-1", code=codes[0]),
            V.ListingBinding(listing_id="L-2", code=codes[1])]), metadata=F.md("platform", plat))
        proc = subprocess.Popen(client + ["--addr", "127.0.0.1:%d" % self.svc.port, "--insecure",
                                          "--platform", plat, "watch", "--count", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # No wait for the client to connect: a watch without a cursor
            # starts from the oldest retained notice, so the notice arrives
            # whether the client was watching before the change or not.
            r = self.a.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
                number=number, status=T.CERTIFICATE_STATUS_REVOKED, reason="fire risk"),
                metadata=REG)
            self.assertEqual(r.notices, 1)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, 0, err)
        self.assertRegex(out, r"notice \d+-\d+ certificate %s status CERTIFICATE_STATUS_REVOKED "
                              r"listings (L-1,L-2|L-2,L-1) reason fire risk" % number)
        # The client acknowledged it: compliance shows it acked.
        from tracecode.v1 import audit_pb2 as A
        rep = self.a.audit.GetDelistingCompliance(A.GetDelistingComplianceRequest(
            platform_id=plat), metadata=REG)
        self.assertEqual((rep.notices, rep.acked), (1, 1))

    def test_python_client(self):
        self.watch_notice(PY)

    def test_node_client(self):
        self.watch_notice(NODE)

    def test_server_errors_exit_3(self):
        for client in (PY, NODE):
            p = subprocess.run(client + ["--addr", "127.0.0.1:%d" % self.svc.port, "--insecure",
                                         "--platform", "bad id", "verify", "ABC"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 3, client)
            self.assertIn("has ' ' at offset 3", p.stderr)

    def test_refuses_without_identity(self):
        for client in (PY, NODE):
            p = subprocess.run(client + ["--addr", "127.0.0.1:%d" % self.svc.port,
                                         "--platform", "x", "verify", "ABC"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2, client)
            self.assertIn("--insecure", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

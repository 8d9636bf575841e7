#!/usr/bin/python3
"""Descriptors and connections (issue 12), reproduced as found: with a low
`ulimit -n`, HTTP connections that send a byte now and then were never
timed out, took every descriptor, the gRPC listener stopped accepting and
the log grew by 123 MB of accept() warnings in 20 s.

Now: the HTTP server caps its connections (a quarter of the descriptor
limit at most), bounds the whole time to read a request's headers, backs
off when accept() fails and says so once per interval; gRPC keeps serving;
everything recovers by itself once the connections close.
"""
import os
import socket
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcfixture as F  # noqa: E402

import grpc  # noqa: E402

WORK = F.workdir()
F.generate_stubs(os.path.join(WORK, "stubs"))

from tcgrpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402


class Fds(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = F.Redis(WORK)
        cls.redis.start()
        cls.keys = F.keyring(WORK)

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()

    def start(self, nofile):
        s = F.Service(WORK, "fds%d" % nofile, self.redis.url, self.keys,
                      ["--http", "127.0.0.1:0"])
        s.cmd = ["prlimit", "--nofile=%d:%d" % (nofile, nofile)] + s.cmd
        return s.start()

    def grpc_ok(self, port):
        ch = grpc.insecure_channel("127.0.0.1:%d" % port)
        try:
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=3)
            return True
        except grpc.RpcError:
            return False
        finally:
            ch.close()

    def healthz(self, port, path="/healthz"):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
                return r.status
        except Exception as e:  # noqa: BLE001 - a status or a failure, both are answers
            return getattr(e, "code", None) or repr(e)

    def test_slow_http_connections_cannot_take_the_node(self):
        svc = self.start(256)  # at most 64 HTTP connections
        try:
            self.assertTrue(self.grpc_ok(svc.port))
            socks, until = [], time.time() + 5
            for _ in range(600):  # beyond the cap they wait in the kernel's backlog
                if time.time() > until:
                    break
                try:
                    s = socket.create_connection(("127.0.0.1", svc.http_port), timeout=0.05)
                    s.send(b"G")
                    socks.append(s)
                except OSError:
                    pass
            self.assertGreater(len(socks), 100)
            end = time.time() + 4
            while time.time() < end:  # a byte now and then: never a whole request
                for s in socks:
                    try:
                        s.send(b"E")
                    except OSError:
                        pass
                time.sleep(0.5)
            self.assertTrue(self.grpc_ok(svc.port), "gRPC stopped serving")
            # The headers' deadline is for the whole request, not per byte:
            # the first connections are ended within ~10 s of their accept.
            first = socks[0]
            first.settimeout(12)
            try:
                ended = first.recv(100) == b""
            except OSError:
                ended = True
            self.assertTrue(ended, "a connection feeding a byte at a time was never ended")
            for s in socks:
                s.close()
            self.assertTrue(F.wait_for(lambda: self.healthz(svc.admin_port) == 200, 5))
            self.assertTrue(self.healthz(svc.http_port, "/beacon.js") == 200)
            self.assertTrue(self.grpc_ok(svc.port))
            log = svc.output()
            self.assertLess(len(log), 4096, "the log grew: " + log[-500:])
        finally:
            self.assertEqual(svc.stop(), 0)

    def test_accept_failures_back_off_and_recover(self):
        svc = self.start(128)
        held = []
        try:
            # Raw TCP connections to gRPC (which has no cap of its own)
            # until the process is out of descriptors.
            until = time.time() + 5
            for _ in range(400):
                if time.time() > until:
                    break
                try:
                    held.append(socket.create_connection(("127.0.0.1", svc.port), timeout=0.1))
                except OSError:
                    break
            time.sleep(1)
            # HTTP cannot accept now: it pauses and says so once, not per try.
            for _ in range(20):
                try:
                    c = socket.create_connection(("127.0.0.1", svc.http_port), timeout=0.2)
                    c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
                    c.close()
                except OSError:
                    pass
            time.sleep(2)
            log = svc.output()
            lines = [x for x in log.splitlines() if "accept() failed" in x]
            self.assertGreaterEqual(len(lines), 1, log[-2000:])
            self.assertLessEqual(len(lines), 2, lines)
            self.assertIn("Too many open files", lines[0])
            self.assertLess(len(log), 8192)
            for s in held:
                s.close()
            held = []
            # HTTP serves again within seconds of the descriptors freeing up.
            # gRPC 1.51's own listener stops for good when its accept4 fails
            # (it logs "Failed accept4" and never re-arms): the node cannot
            # mend that, so /healthz must say it, for the orchestrator to
            # replace the node.
            self.assertTrue(F.wait_for(lambda: self.healthz(svc.http_port, "/beacon.js") == 200,
                                       10))
            self.assertTrue(F.wait_for(lambda: self.healthz(svc.admin_port) in (200, 503), 10))
            if not self.grpc_ok(svc.port):
                self.assertTrue(F.wait_for(lambda: self.healthz(svc.admin_port) == 503, 10))
                self.assertIn("the gRPC listener does not accept connections", svc.output())
            else:
                self.assertEqual(self.healthz(svc.admin_port), 200)
        finally:
            for s in held:
                s.close()
            self.assertEqual(svc.stop(), 0)
        # gRPC core's own complaints (a failed accept4) come as logfmt lines too.
        self.assertEqual(F.logfmt_problems(svc.output()), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)

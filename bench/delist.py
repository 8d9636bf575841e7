#!/usr/bin/python3
"""bench/delist.py - delisting latency across three tracesvc nodes.

One private redis-server (AOF, fsync always: the production setting) and
three tracesvc nodes on loopback. A platform watches on node C.

  1. N revocations, one at a time, each on node A, B or C in turn: the time
     from SetCertificateStatus returning to the watcher holding the notice
     (p50, p99, max), and from the call starting.
  2. One certificate with M bound listings revoked: how long the call takes,
     and until every notice (M / 10,000 of them) has reached the watcher.

The watcher is Python grpcio: its own receive path is inside the figures.
Usage: bench/delist.py [--revocations N] [--listings M]
"""
import argparse
import os
import queue
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import tcfixture as F  # noqa: E402

import grpc  # noqa: E402

WORK = F.workdir()
F.generate_stubs(os.path.join(WORK, "stubs"))
from tracecode.v1 import issuer_pb2 as I  # noqa: E402
from tracecode.v1 import registry_pb2 as R  # noqa: E402
from tracecode.v1 import types_pb2 as T  # noqa: E402
from tracecode.v1 import verifier_pb2 as V  # noqa: E402

REG = F.md("regulator", "SAMR")
MAKER = F.uscc(1)
MF = F.md("manufacturer", MAKER)
PLAT = "bench-shop"
PM = F.md("platform", PLAT)


def pct(v, p):
    v = sorted(v)
    return v[max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.4999)) - 1))]


def cert_with_codes(node, number, quantity):
    node.reg.UpsertCertificate(F.cert_req(number=number, kind=T.CERTIFICATE_KIND_CCC,
                                          holder_credit_code=MAKER, category_codes=["0704"]),
                               metadata=REG)
    p = node.iss.RegisterProduct(I.RegisterProductRequest(
        certificate_number=number, category_code="0704", brand="Bench", model="B"),
        metadata=MF).product
    codes = []
    for m in node.iss.IssueCodes(I.IssueCodesRequest(product_id=p.product_id, quantity=quantity,
                                                     profile=T.CODE_PROFILE_MAC, chunk_size=10000),
                                 metadata=MF, timeout=600):
        codes += list(m.codes)
    return codes


RETRIED = []  # RegisterListings calls a client had to retry, and why
CALLS = iter(range(1 << 62))  # request ids: one per request, never reused


def bind(node, pairs):
    """As a client should: each call with a request id, retried with the
    same id when Redis did not answer in time (an AOF rewrite can stall it
    for seconds with appendfsync always) - a retry applies once."""
    for i in range(0, len(pairs), 10000):
        req = V.RegisterListingsRequest(request_id="bench-bind-%d-%d" % (os.getpid(), next(CALLS)),
                                        bindings=[V.ListingBinding(listing_id=l, code=c)
                                                  for l, c in pairs[i:i + 10000]])
        for attempt in range(5):
            try:
                node.ver.RegisterListings(req, metadata=PM, timeout=600)
                break
            except grpc.RpcError as e:
                if e.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED,
                                    grpc.StatusCode.UNAVAILABLE) or attempt == 4:
                    raise
                RETRIED.append(e.code().name)
                time.sleep(0.5)


class Watcher(threading.Thread):
    def __init__(self, node):
        super().__init__(daemon=True)
        self.q = queue.Queue()
        self.call = node.ver.WatchDelistings(V.WatchDelistingsRequest(), metadata=PM)
        self.start()

    def run(self):
        try:
            for ev in self.call:
                if ev.WhichOneof("event") == "notice":
                    m = ev.notice
                    self.q.put((time.perf_counter(), m.certificate_number, len(m.listing_ids)))
        except grpc.RpcError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--revocations", type=int, default=1000)
    ap.add_argument("--listings", type=int, default=1000000)
    args = ap.parse_args()

    redis = F.Redis(WORK)
    redis.start()
    keys = F.keyring(WORK)
    svcs = [F.Service(WORK, n, redis.url, keys).start() for n in "abc"]
    a, b, c = nodes = [F.Node(s.port, options=[("grpc.max_receive_message_length", 64 << 20)])
                       for s in svcs]
    try:
        a.reg.UpsertManufacturer(F.mfr_req(credit_code=MAKER, name="Bench",
                                           status=T.MANUFACTURER_STATUS_ACTIVE), metadata=REG)
        # -- 1. N revocations --------------------------------------------------
        n = args.revocations
        t0 = time.time()
        pairs = []
        for i in range(n):
            pairs.append(("R%05d" % i, cert_with_codes(a, "RV%05d" % i, 1)[0]))
        bind(a, pairs)
        print("setup: %d certificates, each with one listing of %s, in %.1f s"
              % (n, PLAT, time.time() - t0))
        w = Watcher(c)
        time.sleep(0.5)
        sent, after_return, after_start, early = {}, [], [], 0
        for i in range(n):
            number = "RV%05d" % i
            start = time.perf_counter()
            nodes[i % 3].reg.SetCertificateStatus(R.SetCertificateStatusRequest(
                number=number, status=T.CERTIFICATE_STATUS_REVOKED, reason="bench"), metadata=REG)
            sent[number] = (start, time.perf_counter())
        got = 0
        while got < n:
            at, number, _ = w.q.get(timeout=30)
            start, ret = sent[number]
            after_start.append((at - start) * 1000)
            after_return.append(max(0.0, at - ret) * 1000)
            early += at < ret
            got += 1
        print("revocations: %d on nodes A/B/C in turn, watcher on C" % n)
        print("  SetCertificateStatus returned -> notice at watcher: p50 %.2f ms  p99 %.2f ms"
              "  max %.2f ms  (%d arrived before the call returned)"
              % (pct(after_return, 50), pct(after_return, 99), max(after_return), early))
        print("  SetCertificateStatus started  -> notice at watcher: p50 %.2f ms  p99 %.2f ms"
              % (pct(after_start, 50), pct(after_start, 99)))
        w.call.cancel()

        # -- 2. one certificate, M listings ------------------------------------
        m = args.listings
        if m:
            t0 = time.time()
            codes = cert_with_codes(a, "BIG00001", m)
            t1 = time.time()
            bind(a, [("B%07d" % i, code) for i, code in enumerate(codes)])
            t2 = time.time()
            del codes
            print("setup: %d codes issued in %.1f s, %d listings bound in %.1f s"
                  " (%d calls retried: %s)"
                  % (m, t1 - t0, m, t2 - t1, len(RETRIED), ", ".join(RETRIED) or "none"))
            w = Watcher(c)
            time.sleep(0.5)
            start = time.perf_counter()
            r = a.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
                number="BIG00001", status=T.CERTIFICATE_STATUS_REVOKED, reason="bench"), metadata=REG, timeout=120)
            ret = time.perf_counter()
            listings, first = 0, None
            while listings < m:
                at, number, k = w.q.get(timeout=120)
                if number != "BIG00001":
                    continue  # part 1's notices, from the start of the stream
                first = first or at
                listings += k
            print("one certificate with %d listings revoked: %d notices" % (m, r.notices))
            print("  SetCertificateStatus took %.0f ms; first notice at +%.0f ms, all %d listings"
                  " at +%.0f ms (from the call's start)"
                  % ((ret - start) * 1000, (first - start) * 1000, listings,
                     (at - start) * 1000))
            w.call.cancel()
    finally:
        for s in svcs:
            s.stop()
        redis.stop()


if __name__ == "__main__":
    main()

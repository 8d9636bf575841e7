#!/usr/bin/python3
"""Integration tests of tracesvc through Python grpcio (an independent gRPC
implementation): every implemented RPC, every verdict, input limits, roles
and identity, reflection and health without our proto files, a second node
following the change stream, Redis stopped and restarted, and a graceful
drain on SIGTERM. Each run has its own redis-server and tracesvc processes.
"""
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcfixture as F  # noqa: E402

import grpc  # noqa: E402

WORK = F.workdir()
F.generate_stubs(os.path.join(WORK, "stubs"))

from tracecode.v1 import issuer_pb2 as I  # noqa: E402
from tracecode.v1 import registry_pb2 as R  # noqa: E402
from tracecode.v1 import types_pb2 as T  # noqa: E402
from tracecode.v1 import verifier_pb2 as V  # noqa: E402

REG = F.md("regulator", "SAMR")
CERTIFIER = F.md("certifier", "CQC")
PLATFORM = F.md("platform", "shop-a")
_seq = itertools.count(1)


def unique(prefix):
    return "%s%05d" % (prefix, next(_seq))


class Service(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = F.Redis(WORK)
        cls.redis.start()
        cls.keys = F.keyring(WORK)
        cls.svc = F.Service(WORK, "a", cls.redis.url, cls.keys, ["--max-staleness", "1"]).start()
        cls.a = F.Node(cls.svc.port)

    @classmethod
    def tearDownClass(cls):
        rc = cls.svc.stop()
        cls.redis.stop()
        # A clean drain exits 0; a sanitizer report in tracesvc would not.
        if rc != 0:
            raise AssertionError("tracesvc exited %s:\n%s" % (rc, cls.svc.output()[-4000:]))

    # -- helpers ------------------------------------------------------------

    def maker(self, status=T.MANUFACTURER_STATUS_ACTIVE):
        credit = F.uscc(next(_seq))
        self.a.reg.UpsertManufacturer(F.mfr_req(credit_code=credit, name="Acme 电源",
                                                     status=status), metadata=REG)
        return credit

    def cert(self, holder, cats=("0704",), valid_until=0):
        number = unique("CCC2024")
        self.a.reg.UpsertCertificate(
            F.cert_req(number=number, kind=T.CERTIFICATE_KIND_CCC, holder_credit_code=holder,
                       category_codes=list(cats), valid_until_unix=valid_until),
            metadata=CERTIFIER)
        return number

    def product(self, holder, number, category="0704"):
        return self.a.iss.RegisterProduct(
            I.RegisterProductRequest(certificate_number=number, category_code=category,
                                     brand="Acme", model="PB-10000"),
            metadata=F.md("manufacturer", holder)).product

    def issue(self, holder, product_id, quantity=100, profile=T.CODE_PROFILE_MAC, request_id="", chunk=0,
              node=None):
        node = node or self.a
        batch, codes = None, []
        for m in node.iss.IssueCodes(
                I.IssueCodesRequest(product_id=product_id, quantity=quantity, profile=profile,
                                    request_id=request_id, chunk_size=chunk),
                metadata=F.md("manufacturer", holder)):
            if m.HasField("batch"):
                batch = m.batch
            self.assertEqual(m.first_serial, len(codes))
            codes += list(m.codes)
        return batch, codes

    def setup_chain(self, quantity=100, profile=T.CODE_PROFILE_MAC):
        holder = self.maker()
        number = self.cert(holder)
        p = self.product(holder, number)
        batch, codes = self.issue(holder, p.product_id, quantity, profile)
        return holder, number, p, batch, codes

    def verify(self, code, listing=None, view=T.VERIFY_VIEW_BASIC, node=None):
        node = node or self.a
        return node.ver.VerifyCode(V.VerifyCodeRequest(code=code, listing=listing, view=view),
                                   metadata=PLATFORM).result

    # -- registry -------------------------------------------------------------

    def test_registry_rpcs(self):
        holder = self.maker()
        number = self.cert(holder, cats=("0704", "1201"))
        c = self.a.reg.GetCertificate(R.GetCertificateRequest(number=number),
                                      metadata=REG).certificate
        self.assertEqual(c.status, T.CERTIFICATE_STATUS_VALID)
        self.assertEqual(list(c.category_codes), ["0704", "1201"])
        self.assertEqual(c.holder_credit_code, holder)
        r = self.a.reg.SetCertificateStatus(
            R.SetCertificateStatusRequest(number=number, status=T.CERTIFICATE_STATUS_SUSPENDED, reason="audit"),
            metadata=REG)
        self.assertEqual(r.certificate.status, T.CERTIFICATE_STATUS_SUSPENDED)
        self.assertEqual(r.certificate.status_reason, "audit")
        code, msg = F.status_of(self.a.reg.GetCertificate,
                                   R.GetCertificateRequest(number="NOPE-1"), metadata=REG)
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
        self.assertIn("NOPE-1", msg)
        code, msg = F.status_of(
            self.a.reg.SetCertificateStatus,
            R.SetCertificateStatusRequest(number="NOPE-2", status=T.CERTIFICATE_STATUS_REVOKED), metadata=REG)
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
        code, msg = F.status_of(
            self.a.reg.UpsertCertificate,
            F.cert_req(number=unique("X"), kind=T.CERTIFICATE_KIND_CCC,
                       holder_credit_code=F.uscc(999999), category_codes=["0704"]), metadata=REG)
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn(F.uscc(999999) + " is not a registered manufacturer", msg)

    def test_import_certificates(self):
        holder = self.maker()
        good = [T.Certificate(number=unique("IMP"), kind=T.CERTIFICATE_KIND_CCC, holder_credit_code=holder,
                              category_codes=["0704"]) for _ in range(5)]
        bad = [T.Certificate(number="has space", kind=T.CERTIFICATE_KIND_CCC, holder_credit_code=holder,
                             category_codes=["0704"]),
               T.Certificate(number=unique("IMP"), holder_credit_code=holder,
                             category_codes=["0704"]),
               T.Certificate(number=unique("IMP"), kind=T.CERTIFICATE_KIND_CCC, holder_credit_code=holder)]
        stream = [good[0], bad[0], good[1], bad[1], good[2], good[3], bad[2], good[4]]
        r = self.a.reg.ImportCertificates(F.import_stream(stream), metadata=CERTIFIER)
        self.assertEqual(r.imported, 5)
        self.assertEqual([x.index for x in r.rejected], [1, 3, 6])
        self.assertIn("number has ' '", r.rejected[0].reason)
        self.assertIn("certificate.kind 0 is not a CertificateKind", r.rejected[1].reason)
        self.assertIn("category_codes must hold 1 to 64", r.rejected[2].reason)
        for g in good:
            self.a.reg.GetCertificate(R.GetCertificateRequest(number=g.number), metadata=REG)
        empty = self.a.reg.ImportCertificates(F.import_stream([]), metadata=CERTIFIER)
        self.assertEqual(empty.imported, 0)

    # -- issuance -------------------------------------------------------------

    def test_register_product_rules(self):
        holder, other = self.maker(), self.maker()
        number = self.cert(holder)
        cases = [
            (other, number, "0704", "is not held by " + other),
            (holder, number, "9999", "does not cover category 9999"),
            (holder, "NOT-THERE", "0704", "NOT-THERE is not registered"),
        ]
        for who, num, cat, want in cases:
            code, msg = F.status_of(self.product, who, num, cat)
            self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, msg)
            self.assertIn(want, msg)
        self.a.reg.SetCertificateStatus(
            R.SetCertificateStatusRequest(number=number, status=T.CERTIFICATE_STATUS_REVOKED, reason="x"),
            metadata=REG)
        code, msg = F.status_of(self.product, holder, number, "0704")
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("is revoked", msg)

    def test_issue_codes_and_manifest(self):
        holder = self.maker()
        number = self.cert(holder)
        p = self.product(holder, number)
        batch, codes = self.issue(holder, p.product_id, quantity=25000, chunk=4096,
                                  request_id="order-77")
        self.assertEqual(len(codes), 25000)
        self.assertEqual(len(set(codes)), 25000)
        self.assertEqual(batch.quantity, 25000)
        self.assertEqual(batch.issuer_credit_code, holder)
        self.assertEqual(batch.certificate_number, number)
        # The same request again: the same batch and the same codes, no second
        # batch; the same id for another request: ALREADY_EXISTS naming it.
        again, codes2 = self.issue(holder, p.product_id, quantity=25000, chunk=4096,
                                   request_id="order-77")
        self.assertEqual(again.batch_id, batch.batch_id)
        self.assertEqual(codes2, codes)
        code, msg = F.status_of(self.issue, holder, p.product_id, quantity=24999, chunk=4096,
                                request_id="order-77")
        self.assertEqual(code, grpc.StatusCode.ALREADY_EXISTS)
        self.assertIn("request_id order-77 was used for another request", msg)
        # The manifest is signed by the key export-public publishes.
        got = self.a.iss.GetBatch(I.GetBatchRequest(batch_id=batch.batch_id),
                                  metadata=F.md("manufacturer", holder)).batch
        self.assertEqual(got.manifest, batch.manifest)
        self.assertIn(b"batch %d\n" % batch.batch_id, got.manifest)
        pub = json.loads(subprocess.run(
            [F.binary("tracekeys"), "export-public", "--dir",
             self.keys], capture_output=True, text=True, check=True).stdout)
        key = [k for k in pub["keys"] if k["kid"] == got.manifest_key_id][0]
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key["public"])).verify(
            got.manifest_signature, got.manifest)
        # Someone else's batch and product.
        other = self.maker()
        code, _ = F.status_of(self.a.iss.GetBatch, I.GetBatchRequest(batch_id=batch.batch_id),
                                 metadata=F.md("manufacturer", other))
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        code, _ = F.status_of(self.issue, other, p.product_id)
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)

    def test_issue_messages_fit_default_client_limits(self):
        """chunk_size 65,536 of SIG codes was an 8 MB message that a client
        with the default 4 MiB limit refused after the batch was stored:
        messages are now bounded by bytes too (1 MiB), both profiles."""
        holder = self.maker()
        p = self.product(holder, self.cert(holder))
        for profile, quantity in ((T.CODE_PROFILE_SIG, 20000), (T.CODE_PROFILE_MAC, 70000)):
            # A fresh channel with gRPC's default receive limit (4 MiB).
            n = F.Node(self.svc.port)
            sizes, got = [], 0
            for m in n.iss.IssueCodes(I.IssueCodesRequest(
                    product_id=p.product_id, quantity=quantity, profile=profile,
                    chunk_size=65536), metadata=F.md("manufacturer", holder)):
                self.assertEqual(m.first_serial, got)
                got += len(m.codes)
                sizes.append(m.ByteSize())
            n.channel.close()
            self.assertEqual(got, quantity)
            self.assertLessEqual(max(sizes), (1 << 20) + 4096, profile)
            self.assertGreater(len(sizes), 1, profile)

    def test_issue_limits(self):
        holder = self.maker()
        p = self.product(holder, self.cert(holder))
        for q, want in ((0, "quantity must be 1 to 10000000, not 0"),
                        (10000001, "quantity must be 1 to 10000000, not 10000001")):
            code, msg = F.status_of(self.issue, holder, p.product_id, quantity=q)
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn(want, msg)
        code, msg = F.status_of(self.issue, holder, p.product_id, chunk=65537)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("chunk_size must be at most 65536", msg)
        code, msg = F.status_of(self.issue, holder, p.product_id, request_id="x" * 65)
        self.assertIn("request_id is longer than 64 bytes", msg)
        code, msg = F.status_of(self.product, holder, "C" * 65)
        self.assertIn("certificate_number is longer than 64 bytes", msg)

    def test_sig_profile(self):
        _, _, _, batch, codes = self.setup_chain(quantity=5, profile=T.CODE_PROFILE_SIG)
        self.assertEqual(batch.profile, T.CODE_PROFILE_SIG)
        self.assertEqual(len(codes[0]), 120)
        self.assertEqual(self.verify(codes[4]).verdict, T.VERDICT_GENUINE)

    # -- verification: every verdict -------------------------------------------

    def test_verdicts(self):
        holder, number, p, batch, codes = self.setup_chain(quantity=100)
        v = self.verify(codes[7], view=T.VERIFY_VIEW_FULL)
        self.assertEqual(v.verdict, T.VERDICT_GENUINE)
        self.assertEqual((v.batch_id, v.serial), (batch.batch_id, 7))
        self.assertEqual(v.product.model, "PB-10000")
        self.assertEqual(v.issuer_name, "Acme 电源")
        self.assertEqual(v.certificate_number, number)
        self.assertGreater(v.as_of_revision, 0)
        self.assertFalse(v.stale)
        basic = self.verify(codes[7])
        self.assertFalse(basic.HasField("product"))
        self.assertEqual(basic.issuer_name, "")

        self.assertEqual(self.verify("nonsense").verdict, T.VERDICT_MALFORMED)
        tampered = codes[7][:20] + ("A" if codes[7][20] != "A" else "B") + codes[7][21:]
        self.assertEqual(self.verify(tampered).verdict, T.VERDICT_FORGED)
        # A genuine tag on a batch we never issued: mint locally with our keys.
        out = subprocess.run([F.binary("tracekeys"), "mint",
                              "--dir", self.keys, "--batch", "999999", "--count", "1"],
                             capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(self.verify(out).verdict, T.VERDICT_UNKNOWN_BATCH)
        out = subprocess.run([F.binary("tracekeys"), "mint",
                              "--dir", self.keys, "--batch", str(batch.batch_id), "--first", "100",
                              "--count", "1"], capture_output=True, text=True,
                             check=True).stdout.strip()
        v = self.verify(out)
        self.assertEqual(v.verdict, T.VERDICT_UNKNOWN_BATCH)
        self.assertIn("serial 100 is beyond", v.detail)

        r = self.a.iss.RecallBatch(I.RecallBatchRequest(batch_id=batch.batch_id, first_serial=10,
                                                        last_serial=19, reason="swelling"),
                                   metadata=F.md("manufacturer", holder))
        self.assertEqual(r.affected, 10)
        self.assertEqual(self.verify(codes[12]).verdict, T.VERDICT_RECALLED)
        self.assertEqual(self.verify(codes[20]).verdict, T.VERDICT_GENUINE)
        r = self.a.iss.RecallBatch(I.RecallBatchRequest(batch_id=batch.batch_id, first_serial=15,
                                                        last_serial=24, reason="more"),
                                   metadata=F.md("manufacturer", holder))
        self.assertEqual(r.affected, 5)

        mismatch = self.verify(codes[30], listing=T.Listing(listing_id="L1", brand="Other"))
        self.assertEqual(mismatch.verdict, T.VERDICT_LISTING_MISMATCH)
        self.assertIn("brand 'Other'", mismatch.detail)
        ok = self.verify(codes[30], listing=T.Listing(listing_id="L1", brand="ACME",
                                                      category_code="0704"))
        self.assertEqual(ok.verdict, T.VERDICT_GENUINE)

        for status, verdict in ((T.CERTIFICATE_STATUS_SUSPENDED, T.VERDICT_CERT_SUSPENDED), (T.CERTIFICATE_STATUS_REVOKED, T.VERDICT_CERT_REVOKED),
                                (T.CERTIFICATE_STATUS_EXPIRED, T.VERDICT_CERT_EXPIRED),
                                (T.CERTIFICATE_STATUS_CANCELLED, T.VERDICT_CERT_CANCELLED),
                                (T.CERTIFICATE_STATUS_VALID, T.VERDICT_GENUINE)):
            self.a.reg.SetCertificateStatus(
                R.SetCertificateStatusRequest(number=number, status=status, reason="r"),
                metadata=REG)
            v = self.verify(codes[40])
            self.assertEqual(v.verdict, verdict, v.detail)
        self.a.reg.UpsertManufacturer(F.mfr_req(credit_code=holder, name="Acme 电源",
                                                     status=T.MANUFACTURER_STATUS_SUSPENDED),
                                      metadata=REG)
        self.assertEqual(self.verify(codes[40]).verdict, T.VERDICT_ISSUER_SUSPENDED)

    def test_expired_by_date(self):
        holder = self.maker()
        number = self.cert(holder, valid_until=int(time.time()) + 3600)
        p = self.product(holder, number)
        _, codes = self.issue(holder, p.product_id, quantity=3)
        self.assertEqual(self.verify(codes[0]).verdict, T.VERDICT_GENUINE)
        self.a.reg.UpsertCertificate(
            F.cert_req(number=number, kind=T.CERTIFICATE_KIND_CCC, holder_credit_code=holder,
                          category_codes=["0704"], valid_until_unix=int(time.time()) - 60),
            metadata=CERTIFIER)
        v = self.verify(codes[0])
        self.assertEqual(v.verdict, T.VERDICT_CERT_EXPIRED)
        self.assertIn("expired on", v.detail)

    def test_verify_batch_and_stream(self):
        _, _, _, _, codes = self.setup_chain(quantity=300)
        items = [V.VerifyItem(code=c) for c in codes] + [V.VerifyItem(code="bad")]
        r = self.a.ver.VerifyBatch(V.VerifyBatchRequest(items=items, view=T.VERIFY_VIEW_FULL),
                                   metadata=PLATFORM)
        self.assertEqual([x.serial for x in r.results[:300]], list(range(300)))
        self.assertTrue(all(x.verdict == T.VERDICT_GENUINE for x in r.results[:300]))
        self.assertTrue(all(x.product.brand == "Acme" for x in r.results[:300]))
        self.assertEqual(r.results[300].verdict, T.VERDICT_MALFORMED)
        big = [V.VerifyItem(code=codes[0])] * 10001
        code, msg = F.status_of(self.a.ver.VerifyBatch, V.VerifyBatchRequest(items=big),
                                   metadata=PLATFORM)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("items holds 10001 codes, limit 10000", msg)
        code, msg = F.status_of(self.a.ver.VerifyBatch, V.VerifyBatchRequest(),
                                   metadata=PLATFORM)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        # Past the 4 MiB message bound: refused before it is decoded.
        huge = [V.VerifyItem(code="X" * 500)] * 9000
        code, msg = F.status_of(self.a.ver.VerifyBatch, V.VerifyBatchRequest(items=huge),
                                   metadata=PLATFORM)
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, msg)
        out = list(self.a.ver.VerifyStream(iter(V.VerifyStreamRequest(code=c) for c in codes),
                                           metadata=PLATFORM))
        self.assertEqual([x.result.serial for x in out], list(range(300)))

    # -- listings ------------------------------------------------------------------

    def bind(self, platform, pairs):
        return self.a.ver.RegisterListings(
            V.RegisterListingsRequest(bindings=[V.ListingBinding(listing_id=l, code=c)
                                                for l, c in pairs]),
            metadata=F.md("platform", platform)).results

    def test_register_listings(self):
        holder, number, p, batch, codes = self.setup_chain(quantity=10)
        a, b = unique("shopa"), unique("shopb")
        r = self.bind(a, [("L1", codes[0]), ("L2", codes[1])])
        self.assertEqual([(x.listing_id, x.verdict, x.other_listings) for x in r],
                         [("L1", T.VERDICT_GENUINE, 0), ("L2", T.VERDICT_GENUINE, 0)])
        # The same code on another platform: the classic copy, counted.
        r = self.bind(b, [("X9", codes[0])])
        self.assertEqual((r[0].other_listings, r[0].other_platforms), (1, 1))
        # Re-binding is idempotent; a URL form is the same code.
        r = self.bind(a, [("L1", "https://tc.samr.example/c/" + codes[0].lower())])
        self.assertEqual((r[0].verdict, r[0].other_listings, r[0].other_platforms),
                         (T.VERDICT_GENUINE, 1, 1))
        self.assertEqual(self.redis.cli("SCARD", "{tc}:code:" + codes[0]).strip(), "2")
        # Moving a listing to another code moves its index entries.
        self.bind(a, [("L2", codes[2])])
        self.assertEqual(self.redis.cli("SISMEMBER", "{tc}:code:" + codes[1],
                                        a + "\tL2").strip(), "0")
        listed = self.redis.cli("SMEMBERS", "{tc}:cert-listings:%s:%s" % (number, a)).split()
        self.assertEqual(sorted(listed), ["L1", "L2"])
        self.assertIn(a, self.redis.cli("SMEMBERS", "{tc}:cert-platforms:" + number).split())
        # A forged or malformed code is answered, not bound.
        forged = codes[3][:20] + ("A" if codes[3][20] != "A" else "B") + codes[3][21:]
        r = self.bind(a, [("L3", forged), ("L4", "junk"), ("L5", "1234")])
        self.assertEqual([x.verdict for x in r],
                         [T.VERDICT_FORGED, T.VERDICT_MALFORMED, T.VERDICT_MALFORMED])
        self.assertIn("bad symbol 'u' at offset 1", r[1].detail)
        self.assertIn("wrong length 4, want 34 or 120", r[2].detail)
        self.assertEqual(self.redis.cli("EXISTS", "{tc}:listing:%s:L3" % a).strip(), "0")
        # A revoked certificate's code is bound (delisting needs it) and says so.
        self.a.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
            number=number, status=T.CERTIFICATE_STATUS_REVOKED, reason="x"), metadata=REG)
        r = self.bind(a, [("L5", codes[4])])
        self.assertEqual(r[0].verdict, T.VERDICT_CERT_REVOKED)
        self.assertEqual(self.redis.cli("EXISTS", "{tc}:listing:%s:L5" % a).strip(), "1")
        # Limits and role.
        code, msg = F.status_of(self.bind, a, [("x" * 129, codes[0])])
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("bindings[0].listing_id is longer than 128 bytes", msg)
        code, msg = F.status_of(self.bind, a, [("L%d" % i, codes[0]) for i in range(10001)])
        self.assertIn("bindings holds 10001 listings; send 1 to 10000", msg)
        code, _ = F.status_of(self.a.ver.RegisterListings, V.RegisterListingsRequest(
            bindings=[V.ListingBinding(listing_id="L1", code=codes[0])]), metadata=REG)
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)

    def test_delisting_notices(self):
        holder, number, p, batch, codes = self.setup_chain(quantity=10)
        a, b = unique("shopa"), unique("shopb")
        self.bind(a, [("A1", codes[0]), ("A2", codes[1])])
        self.bind(b, [("B1", codes[2])])
        r = self.a.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
            number=number, status=T.CERTIFICATE_STATUS_REVOKED, reason="fire risk"), metadata=REG)
        self.assertEqual(r.notices, 2)  # one per platform, written with the change
        ids = self.redis.cli("--raw", "XREVRANGE", "{tc}:notices:" + a, "+", "-", "COUNT", "1")
        self.assertEqual(sorted(ids.strip().split("\n")[-2:]), ["A1", "A2"])  # in set order
        self.assertIn("fire risk", ids)
        self.assertNotIn("B1", ids)  # a platform sees only its own listings
        self.assertIn("B1", self.redis.cli("--raw", "XRANGE", "{tc}:notices:" + b, "-", "+"))
        # Revoked again: no change, no notice. Restored: a notice again.
        r = self.a.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
            number=number, status=T.CERTIFICATE_STATUS_REVOKED, reason="still"), metadata=REG)
        self.assertEqual(r.notices, 0)
        r = self.a.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
            number=number, status=T.CERTIFICATE_STATUS_VALID, reason="re-inspected"), metadata=REG)
        self.assertEqual(r.notices, 2)
        self.assertEqual(self.redis.cli("XLEN", "{tc}:notices:" + a).strip(), "2")

    def test_recall_notices(self):
        holder, number, p, batch, codes = self.setup_chain(quantity=10)
        a, b = unique("shopa"), unique("shopb")
        self.bind(a, [("A%d" % i, codes[i]) for i in range(5)])
        self.bind(b, [("B7", codes[7])])
        r = self.a.iss.RecallBatch(I.RecallBatchRequest(
            batch_id=batch.batch_id, first_serial=1, last_serial=3, reason="swelling"),
            metadata=F.md("manufacturer", holder))
        self.assertEqual((r.affected, r.notices), (3, 1))
        note = self.redis.cli("--raw", "XRANGE", "{tc}:notices:" + a, "-", "+")
        self.assertEqual(sorted(note.strip().split("\n")[-3:]), ["A1", "A2", "A3"])
        self.assertNotIn("A0", note)
        self.assertNotIn("A4", note)
        self.assertIn("swelling", note)
        self.assertEqual(self.redis.cli("XLEN", "{tc}:notices:" + b).strip(), "0")

    def test_notices_split_at_10000(self):
        holder = self.maker()
        number = self.cert(holder)
        prod = self.product(holder, number)
        _, codes = self.issue(holder, prod.product_id, quantity=10001, chunk=10001)
        shop = unique("shopbig")
        self.bind(shop, [("L%05d" % i, c) for i, c in enumerate(codes[:10000])])
        self.bind(shop, [("L10000", codes[10000])])
        r = self.a.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
            number=number, status=T.CERTIFICATE_STATUS_SUSPENDED, reason="audit"), metadata=REG)
        self.assertEqual(r.notices, 2)
        lens = self.redis.cli("--raw", "XRANGE", "{tc}:notices:" + shop, "-", "+")
        self.assertEqual(lens.count("L0"), 10000)  # L00000..L09999 in the first notice
        self.assertEqual(lens.count("L10000"), 1)

    # -- identity, roles, protocol ------------------------------------------------

    def test_roles_and_identity(self):
        code, msg = F.status_of(self.a.ver.VerifyCode, V.VerifyCodeRequest(code="x"))
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("metadata tc-role is missing (one of manufacturer, platform, regulator, "
                      "certifier)", msg)
        code, msg = F.status_of(self.a.ver.VerifyCode, V.VerifyCodeRequest(code="x"),
                                   metadata=(("tc-role", "platform"),))
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("metadata tc-subject is missing or empty", msg)
        # An unknown role is named, with the valid ones (metadata was sent).
        code, msg = F.status_of(self.a.ver.VerifyCode, V.VerifyCodeRequest(code="x"),
                                metadata=F.md("Regulator", "SAMR"))
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(msg, "unknown role 'Regulator' in metadata tc-role; valid roles: "
                              "manufacturer, platform, regulator, certifier")
        # A subject is never cut: too long, or outside its alphabet, refused.
        for subject, why in (("p" * 65, "longer than 64 bytes"),
                             ("shop a", "has ' ' at offset 4")):
            code, msg = F.status_of(self.a.ver.VerifyCode, V.VerifyCodeRequest(code="x"),
                                    metadata=F.md("platform", subject))
            self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED, subject)
            self.assertIn(why, msg)
        code, msg = F.status_of(self.a.ver.VerifyCode, V.VerifyCodeRequest(code="x"),
                                   metadata=F.md("manufacturer", "M1"))
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("role manufacturer may not call tracecode.v1.VerifierService", msg)
        code, _ = F.status_of(self.a.reg.UpsertManufacturer,
                                 F.mfr_req(credit_code="X1", name="n"), metadata=PLATFORM)
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        code, _ = F.status_of(self.a.iss.GetBatch, I.GetBatchRequest(batch_id=1),
                                 metadata=REG)
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        code, msg = F.status_of(self.a.reg.UpsertManufacturer,
                                   F.mfr_req(credit_code="X" * 33, name="n"), metadata=REG)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("manufacturer.credit_code must be an 18-character unified social credit "
                      "code (GB 32100), not 19 or more characters", msg)
        code, msg = F.status_of(self.a.reg.UpsertManufacturer,
                                   F.mfr_req(credit_code=F.uscc(7), name="n" * 201),
                                   metadata=REG)
        self.assertIn("manufacturer.name is longer than 200 bytes", msg)

    def test_hung_redis_never_slows_verification(self):
        """Found: with Redis stopped (SIGSTOP) and a write every half second,
        writes held the gRPC workers for their 2 s timeout and every
        VerifyCode took 2.0 s. Writes now have workers of their own."""
        _, _, _, _, codes = self.setup_chain(quantity=5)
        pending, lat = [], []
        self.redis.proc.send_signal(signal.SIGSTOP)
        try:
            end = time.time() + 4
            next_write = 0
            while time.time() < end:
                if time.time() >= next_write:
                    pending.append(self.a.reg.UpsertManufacturer.future(
                        F.mfr_req(credit_code=F.uscc(4444), name="w%d" % len(pending)),
                        metadata=REG, timeout=10))
                    next_write = time.time() + 0.5
                t0 = time.perf_counter()
                v = self.verify(codes[len(lat) % 5])
                lat.append(time.perf_counter() - t0)
                self.assertEqual(v.verdict, T.VERDICT_GENUINE)
        finally:
            self.redis.proc.send_signal(signal.SIGCONT)
        lat.sort()
        p99 = lat[int(len(lat) * 0.99)]
        self.assertGreater(len(pending), 6)
        self.assertLess(p99, 0.050, "VerifyCode p99 %.1f ms over %d calls while Redis hung"
                        % (p99 * 1000, len(lat)))
        # The writes end within their deadline, one way or the other, and
        # writes work again once Redis does.
        for f in pending:
            try:
                f.result()
            except grpc.RpcError as e:
                self.assertIn(e.code(), (grpc.StatusCode.DEADLINE_EXCEEDED,
                                         grpc.StatusCode.UNAVAILABLE), e.details())
        self.assertTrue(F.wait_for(lambda: F.status_of(
            self.a.reg.UpsertManufacturer, F.mfr_req(credit_code=F.uscc(4445), name="after"),
            metadata=REG)[0] == grpc.StatusCode.OK, 10))

    def test_no_silent_truncation(self):
        """Each string reached C as a NUL-terminated string and was cut at an
        embedded NUL (name 'ab\\0cd' stored as 'ab', 'GENUINE\\0junk' answered
        GENUINE, request id 'base-1\\0junk' replaying batch 'base-1'): now
        refused, naming the field, and nothing is written."""
        _, _, _, _, codes = self.setup_chain(quantity=2)
        rev = self.redis.cli("GET", "{tc}:rev")
        code, msg = F.status_of(self.a.reg.UpsertManufacturer,
                                F.mfr_req(credit_code=F.uscc(31337), name="ab\0cd"), metadata=REG)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(msg, "manufacturer.name has a NUL byte at byte 2; strings must be "
                              "UTF-8 without NUL")
        self.assertEqual(self.redis.cli("GET", "{tc}:rev"), rev)
        for method, req, field in (
                (self.a.ver.VerifyCode, V.VerifyCodeRequest(code=codes[0] + "\0junk"), "code"),
                (self.a.ver.VerifyBatch, V.VerifyBatchRequest(items=[
                    V.VerifyItem(code=codes[0]), V.VerifyItem(code=codes[1] + "\0")]),
                 "items[1].code"),
                (self.a.reg.SetCertificateStatus, R.SetCertificateStatusRequest(
                    number="X", status=T.CERTIFICATE_STATUS_VALID, request_id="base-1\0junk"),
                 "request_id")):
            code, msg = F.status_of(method, req,
                                    metadata=REG if field == "request_id" else PLATFORM)
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, field)
            self.assertTrue(msg.startswith(field + " has a NUL byte"), msg)
        # Bytes that are not UTF-8 in a string field (a buggy client's encoder).
        raw = self.a.channel.unary_unary("/tracecode.v1.VerifierService/VerifyCode")
        code, msg = F.status_of(raw, b"\x0a\x03\xff\xfeA", metadata=PLATFORM)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(msg, "code has a byte that is not UTF-8 at byte 0; strings must be "
                              "UTF-8 without NUL")
        raw = self.a.channel.unary_unary("/tracecode.v1.RegistryService/UpsertManufacturer")
        code, msg = F.status_of(raw, b"\x0a\x04\x12\x02\xc3\x28", metadata=REG)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("manufacturer.name has a byte that is not UTF-8 at byte 0", msg)
        # Names shown to consumers must read as stored: a right-to-left
        # override would make "Acme" render as another maker's name.
        for bad, cp in (("Acme\u202eEMCA", "U+202E"), ("Ac\u200bme", "U+200B"),
                        ("\u2067Acme", "U+2067"), ("Acme\u0085", "U+0085")):
            code, msg = F.status_of(self.a.reg.UpsertManufacturer,
                                    F.mfr_req(credit_code=F.uscc(31338), name=bad), metadata=REG)
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, cp)
            self.assertIn("manufacturer.name has the invisible or direction-changing character "
                          + cp, msg)
        self.assertEqual(self.redis.cli("GET", "{tc}:rev"), rev)
        # A subject one byte over the limit is refused, not cut to another's.
        code, msg = F.status_of(self.a.ver.VerifyCode, V.VerifyCodeRequest(code=codes[0]),
                                metadata=F.md("platform", "p" * 64 + "x"))
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)

    def test_contract_validation(self):
        """What the proto comments promise is what is checked."""
        ok = F.uscc(4242)
        bad_check = ok[:17] + ("0" if ok[17] != "0" else "1")
        for credit, why in (("ACME-1", "not 6 characters"),
                            (bad_check, "fails its check character"),
                            (ok[:5] + "I" + ok[6:], "has 'I' at offset 5"),
                            (ok[:10] + "o" + ok[11:], "has 'o' at offset 10")):
            code, msg = F.status_of(self.a.reg.UpsertManufacturer,
                                    F.mfr_req(credit_code=credit, name="n"), metadata=REG)
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, credit)
            self.assertIn(why, msg)
        # A misspelt enum number is refused, never read as the default.
        code, msg = F.status_of(self.a.reg.UpsertManufacturer,
                                F.mfr_req(credit_code=ok, name="n", status=7), metadata=REG)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("manufacturer.status 7 is not a ManufacturerStatus", msg)
        holder = self.maker()
        code, msg = F.status_of(self.a.reg.UpsertCertificate, F.cert_req(
            number=unique("C"), kind=9, holder_credit_code=holder, category_codes=["0704"]),
            metadata=REG)
        self.assertIn("certificate.kind 9 is not a CertificateKind", msg)
        for cat, why in (("7", "2 to 32 characters, not 1"), ("07 04", "has ' ' at offset 2"),
                         ("-704", "has '-' at offset 0"), ("ab", "has 'a' at offset 0")):
            code, msg = F.status_of(self.a.reg.UpsertCertificate, F.cert_req(
                number=unique("C"), kind=T.CERTIFICATE_KIND_CCC, holder_credit_code=holder,
                category_codes=["0704", cat]), metadata=REG)
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, cat)
            self.assertIn("certificate.category_codes[1]", msg)
            self.assertIn(why, msg)
        number = self.cert(holder)
        good = F.gtin("690123456789")
        for gtin, why in ((good[:-1] + str((int(good[-1]) + 1) % 10), "fails its GS1 check digit"),
                          ("1234567890", "8, 12, 13 or 14 digits, not 10"),
                          ("69012345678X", "digits only")):
            code, msg = F.status_of(self.a.iss.RegisterProduct, I.RegisterProductRequest(
                certificate_number=number, category_code="0704", brand="b", model="m",
                gtin=gtin), metadata=F.md("manufacturer", holder))
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, gtin)
            self.assertIn(why, msg)
        p = self.a.iss.RegisterProduct(I.RegisterProductRequest(
            certificate_number=number, category_code="0704", brand="b", model="m", gtin=good),
            metadata=F.md("manufacturer", holder)).product
        self.assertEqual(p.gtin, good)
        code, msg = F.status_of(self.a.iss.IssueCodes(I.IssueCodesRequest(
            product_id=p.product_id, quantity=1, profile=5),
            metadata=F.md("manufacturer", holder)).__next__)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("profile 5 is not a CodeProfile", msg)

    def test_unimplemented_and_health(self):
        call = self.a.channel.unary_unary("/tracecode.v1.AuditService/NoSuchMethod")
        code, msg = F.status_of(call, b"", metadata=REG)
        self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED)
        self.assertIn("/tracecode.v1.AuditService/NoSuchMethod", msg)
        from tcgrpc.health.v1 import health_pb2, health_pb2_grpc
        h = health_pb2_grpc.HealthStub(self.a.channel)
        self.assertEqual(h.Check(health_pb2.HealthCheckRequest()).status,
                         health_pb2.HealthCheckResponse.SERVING)
        self.assertEqual(h.Check(health_pb2.HealthCheckRequest(
            service="tracecode.v1.VerifierService")).status,
            health_pb2.HealthCheckResponse.SERVING)
        code, _ = F.status_of(h.Check, health_pb2.HealthCheckRequest(service="no.Such"))
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)

    def test_reflection_without_our_protos(self):
        """List services by reflection, then call VerifyCode with messages
        built from the descriptors the server sent, not from our .proto."""
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        from tcgrpc.reflection.v1alpha import reflection_pb2 as RP
        from tcgrpc.reflection.v1alpha import reflection_pb2_grpc as RPG
        stub = RPG.ServerReflectionStub(self.a.channel)
        reqs = [RP.ServerReflectionRequest(list_services=""),
                RP.ServerReflectionRequest(
                    file_containing_symbol="tracecode.v1.VerifierService"),
                RP.ServerReflectionRequest(file_containing_symbol="no.such.Symbol")]
        answers = list(stub.ServerReflectionInfo(iter(reqs)))
        names = [s.name for s in answers[0].list_services_response.service]
        for svc in ("tracecode.v1.VerifierService", "tracecode.v1.IssuerService",
                    "tracecode.v1.RegistryService", "tracecode.v1.ConsumerService",
                    "tracecode.v1.AuditService", "grpc.health.v1.Health"):
            self.assertIn(svc, names)
        self.assertEqual(answers[2].error_response.error_code, 5)
        pool = descriptor_pool.DescriptorPool()
        for raw in answers[1].file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
            if fd.name == "tracecode/v1/types.proto":
                pool.Add(fd)
        for raw in answers[1].file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
            if fd.name != "tracecode/v1/types.proto":
                pool.Add(fd)
        method = pool.FindServiceByName("tracecode.v1.VerifierService").methods_by_name[
            "VerifyCode"]
        if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4
            req_cls = message_factory.GetMessageClass(method.input_type)
            resp_cls = message_factory.GetMessageClass(method.output_type)
        else:  # Debian 12's protobuf 3.21
            factory = message_factory.MessageFactory(pool)
            req_cls = factory.GetPrototype(method.input_type)
            resp_cls = factory.GetPrototype(method.output_type)
        _, _, _, _, codes = self.setup_chain(quantity=2)
        call = self.a.channel.unary_unary("/tracecode.v1.VerifierService/VerifyCode",
                                          request_serializer=lambda m: m.SerializeToString(),
                                          response_deserializer=resp_cls.FromString)
        out = call(req_cls(code=codes[1]), metadata=PLATFORM).result
        self.assertEqual(out.serial, 1)
        result_type = method.output_type.fields_by_name["result"].message_type
        self.assertEqual(result_type.fields_by_name["verdict"].enum_type
                         .values_by_number[out.verdict].name, "VERDICT_GENUINE")

    def test_deadline(self):
        """Calls that run past their deadline end with DEADLINE_EXCEEDED and
        give their request slot back: more of them than the server arms
        IssueCodes slots (4 per worker, 2 workers), then a normal issuance
        still gets served."""
        holder = self.maker()
        p = self.product(holder, self.cert(holder))
        for _ in range(12):
            stream = self.a.iss.IssueCodes(I.IssueCodesRequest(product_id=p.product_id,
                                                               quantity=10000000,
                                                               chunk_size=1000),
                                           metadata=F.md("manufacturer", holder), timeout=0.3)
            with self.assertRaises(grpc.RpcError) as ctx:
                for _ in stream:
                    time.sleep(0.001)
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        # With a leaked slot this call would queue forever: bound it.
        got = [m for m in self.a.iss.IssueCodes(
            I.IssueCodesRequest(product_id=p.product_id, quantity=5),
            metadata=F.md("manufacturer", holder), timeout=10)]
        self.assertEqual(sum(len(m.codes) for m in got), 5)


class Nodes(unittest.TestCase):
    """A second node following the change stream; Redis stopped and back."""

    def test_second_node_and_redis_outage(self):
        work = F.workdir()
        redis = F.Redis(work)
        redis.start()
        keys = F.keyring(work)
        a = F.Service(work, "a", redis.url, keys, ["--max-staleness", "1"]).start()
        b = F.Service(work, "b", redis.url, keys, ["--max-staleness", "1"]).start()
        try:
            na, nb = F.Node(a.port), F.Node(b.port)
            t = Service("test_verdicts")
            t.a = na
            holder, number, p, batch, codes = t.setup_chain(quantity=10)
            vb = lambda: nb.ver.VerifyCode(V.VerifyCodeRequest(code=codes[3]), metadata=PLATFORM).result
            self.assertTrue(F.wait_for(lambda: vb().verdict == T.VERDICT_GENUINE))
            na.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
                number=number, status=T.CERTIFICATE_STATUS_REVOKED, reason="fire"), metadata=REG)
            self.assertTrue(F.wait_for(lambda: vb().verdict == T.VERDICT_CERT_REVOKED, 5))

            redis.stop()
            # Verification keeps answering from the replica, marked stale.
            self.assertTrue(F.wait_for(lambda: vb().stale, 5))
            self.assertEqual(vb().verdict, T.VERDICT_CERT_REVOKED)
            code, msg = F.status_of(na.reg.SetCertificateStatus, R.SetCertificateStatusRequest(
                number=number, status=T.CERTIFICATE_STATUS_VALID), metadata=REG)
            self.assertEqual(code, grpc.StatusCode.UNAVAILABLE)
            self.assertIn("registry unavailable, nothing was changed", msg)

            redis.start()
            self.assertTrue(F.wait_for(lambda: not vb().stale, 15))
            na.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
                number=number, status=T.CERTIFICATE_STATUS_VALID, reason="restored"), metadata=REG)
            self.assertTrue(F.wait_for(lambda: vb().verdict == T.VERDICT_GENUINE, 15))

            # A graceful drain: SIGTERM while a long stream is in flight.
            stream = na.iss.IssueCodes(I.IssueCodesRequest(product_id=p.product_id,
                                                           quantity=200000),
                                       metadata=F.md("manufacturer", holder))
            first = next(stream)
            self.assertEqual(len(first.codes), 8192)
            got = [len(first.codes)]
            killer = threading.Timer(0.05, lambda: a.proc.send_signal(signal.SIGTERM))
            killer.start()

            def ready():
                import urllib.error
                import urllib.request
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % a.admin_port,
                                                timeout=2) as r:
                        return r.status, r.read()
                except urllib.error.HTTPError as e:
                    return e.code, e.read()
                except OSError:
                    return None, b""
            # While the unread stream holds the drain, the admin listener
            # is still there and says why the node is out (not a refused
            # connection).
            self.assertTrue(F.wait_for(lambda: ready()[0] == 503, 5), ready())
            self.assertEqual(ready()[1], b"not ready: draining (SIGTERM)\n")
            for m in stream:
                got.append(len(m.codes))
            self.assertEqual(sum(got), 200000)
            self.assertEqual(a.proc.wait(timeout=30), 0)
            self.assertIn("draining", a.output())
            self.assertIn("drained: every gRPC call has ended", a.output())
            a.proc = None
            self.assertEqual(b.stop(), 0, b.output()[-4000:])
        finally:
            a.stop()
            b.stop()
            redis.stop()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)

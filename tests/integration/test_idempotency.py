#!/usr/bin/python3
"""Every write RPC honours request_id (API.md): the same request with the
same id from the same caller returns the first outcome and writes nothing
more - no second record, revision, notice or audit entry; another request
under a used id is ALREADY_EXISTS naming the id; another caller's ids are
its own. Each case is checked against what Redis holds (revision counter,
audit entries, notice streams), not only against the answers.
"""
import os
import sys
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
unique = F.unique


def next_seq():
    return int(unique("")[-5:])


class Idempotency(F.ServiceCase):
    WORK = WORK

    # -- what Redis holds ------------------------------------------------------

    def state(self, platform=None):
        """(revision, audit entries, notices on platform's stream)."""
        rev = int(self.redis.cli("GET", "{tc}:rev").strip() or 0)
        entries = int(self.redis.cli("HGET", "{tc}:audit:meta", "n").strip() or 0)
        notices = int(self.redis.cli("XLEN", "{tc}:notices:" + platform).strip()) \
            if platform else 0
        return rev, entries, notices

    def once(self, call, first, other, platform=None):
        """call(first) writes; call(first) again answers the same and writes
        nothing; call(other) under the same id is ALREADY_EXISTS."""
        before = self.state(platform)
        r1 = call(first)
        after = self.state(platform)
        self.assertNotEqual(after, before, "the first call wrote nothing")
        r2 = call(first)
        self.assertEqual(r2, r1, "a repeated request must answer as the first did")
        self.assertEqual(self.state(platform), after, "a repeated request wrote again")
        code, msg = F.status_of(call, other)
        self.assertEqual(code, grpc.StatusCode.ALREADY_EXISTS, msg)
        self.assertIn("request_id %s was used for another request" % first.request_id, msg)
        self.assertEqual(self.state(platform), after, "a refused request wrote")
        return r1

    def maker(self):
        credit = F.uscc(next_seq())
        self.a.reg.UpsertManufacturer(F.mfr_req(credit_code=credit, name="Acme"), metadata=REG)
        number = unique("CCC")
        self.a.reg.UpsertCertificate(F.cert_req(number=number, kind=T.CERTIFICATE_KIND_CCC,
                                                holder_credit_code=credit,
                                                category_codes=["0704"]), metadata=REG)
        return credit, number

    # -- RegistryService ---------------------------------------------------------

    def test_upsert_manufacturer(self):
        credit = F.uscc(next_seq())
        call = lambda q: self.a.reg.UpsertManufacturer(q, metadata=REG)  # noqa: E731
        self.once(call, F.mfr_req(request_id="m-1", credit_code=credit, name="Acme"),
                  F.mfr_req(request_id="m-1", credit_code=credit, name="Acme Renamed"))
        # Another caller's id space is its own.
        r = self.a.reg.UpsertManufacturer(
            F.mfr_req(request_id="m-1", credit_code=credit, name="Acme B"),
            metadata=F.md("regulator", "OTHER"))
        self.assertEqual(r.manufacturer.name, "Acme B")
        # An id outside its alphabet or length is refused, nothing written.
        for rid in ("has space", "x" * 65, "a\nb"):
            code, msg = F.status_of(call, F.mfr_req(request_id=rid, credit_code=credit, name="n"))
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, rid)
            self.assertIn("request_id", msg)

    def test_upsert_certificate_and_status(self):
        credit, number = self.maker()
        call = lambda q: self.a.reg.UpsertCertificate(q, metadata=REG)  # noqa: E731
        mk = lambda reason: F.cert_req(  # noqa: E731
            request_id="c-1", number=unique("CCC"), kind=T.CERTIFICATE_KIND_CCC,
            holder_credit_code=credit, category_codes=["0704"], status_reason=reason)
        self.once(call, mk("a"), mk("b"))
        # SetCertificateStatus writes notices: a retry must not write them again.
        _, codes = self.issue(credit, number, 3)
        plat = unique("shop")
        self.a.ver.RegisterListings(V.RegisterListingsRequest(
            bindings=[V.ListingBinding(listing_id="L1", code=codes[0])]),
            metadata=F.md("platform", plat))
        call = lambda q: self.a.reg.SetCertificateStatus(q, metadata=REG)  # noqa: E731
        r = self.once(call, R.SetCertificateStatusRequest(
            number=number, status=T.CERTIFICATE_STATUS_REVOKED, reason="fire", request_id="s-1"),
            R.SetCertificateStatusRequest(number=number, status=T.CERTIFICATE_STATUS_SUSPENDED,
                                          reason="fire", request_id="s-1"), platform=plat)
        self.assertEqual(r.notices, 1)
        self.assertEqual(self.state(plat)[2], 1)

    def test_import_certificates(self):
        credit, _ = self.maker()
        certs = [T.Certificate(number=unique("IMP"), kind=T.CERTIFICATE_KIND_CCC,
                               holder_credit_code=credit, category_codes=["0704"])
                 for _ in range(4)] + [T.Certificate(number="bad one")]
        call = lambda rid, cs: self.a.reg.ImportCertificates(  # noqa: E731
            F.import_stream(cs, request_id=rid), metadata=REG)
        before = self.state()
        r1 = call("imp-1", certs)
        after = self.state()
        self.assertEqual((r1.imported, len(r1.rejected)), (4, 1))
        self.assertEqual(after[0] - before[0], 4)
        r2 = call("imp-1", certs)
        self.assertEqual(r2, r1)
        self.assertEqual(self.state(), after)
        changed = list(certs)
        changed[2] = T.Certificate(number=certs[2].number, kind=T.CERTIFICATE_KIND_CCC,
                                   holder_credit_code=credit, category_codes=["0704"],
                                   status_reason="changed")
        code, msg = F.status_of(call, "imp-1", changed)
        self.assertEqual(code, grpc.StatusCode.ALREADY_EXISTS, msg)
        self.assertIn("certificate 2 differs", msg)
        self.assertEqual(self.state(), after)

    # -- IssuerService -------------------------------------------------------------

    def product(self, credit, number):
        return self.a.iss.RegisterProduct(I.RegisterProductRequest(
            certificate_number=number, category_code="0704", brand="B", model="M"),
            metadata=F.md("manufacturer", credit)).product.product_id

    def codes(self, credit, product_id, quantity, request_id=""):
        batch, codes = None, []
        for m in self.a.iss.IssueCodes(I.IssueCodesRequest(
                product_id=product_id, quantity=quantity, request_id=request_id),
                metadata=F.md("manufacturer", credit)):
            if m.HasField("batch"):
                batch = m.batch
            codes += list(m.codes)
        return batch, codes

    def issue(self, credit, number, quantity):
        return self.codes(credit, self.product(credit, number), quantity)

    def test_register_product_and_recall(self):
        credit, number = self.maker()
        mf = F.md("manufacturer", credit)
        call = lambda q: self.a.iss.RegisterProduct(q, metadata=mf)  # noqa: E731
        q = dict(certificate_number=number, category_code="0704", brand="B", request_id="p-1")
        r = self.once(call, I.RegisterProductRequest(model="M1", **q),
                      I.RegisterProductRequest(model="M2", **q))
        self.assertTrue(r.product.product_id)
        batch, _ = self.issue(credit, number, 100)
        call = lambda q: self.a.iss.RecallBatch(q, metadata=mf)  # noqa: E731
        r = self.once(call, I.RecallBatchRequest(batch_id=batch.batch_id, first_serial=0,
                                                 last_serial=9, reason="swelling",
                                                 request_id="r-1"),
                      I.RecallBatchRequest(batch_id=batch.batch_id, first_serial=0,
                                           last_serial=19, reason="swelling", request_id="r-1"))
        # The retry answers the first count, though nothing is newly recalled now.
        self.assertEqual(r.affected, 10)

    def test_issue_codes(self):
        credit, number = self.maker()
        pid = self.product(credit, number)
        before = self.state()
        b1, c1 = self.codes(credit, pid, 50, request_id="i-1")
        after = self.state()
        self.assertEqual(after[0] - before[0], 1)  # one batch record
        b2, c2 = self.codes(credit, pid, 50, request_id="i-1")
        self.assertEqual(b2, b1)
        self.assertEqual(c2, c1)
        self.assertEqual(self.state(), after)
        code, msg = F.status_of(self.codes, credit, pid, 51, request_id="i-1")
        self.assertEqual(code, grpc.StatusCode.ALREADY_EXISTS, msg)
        self.assertIn("request_id i-1 was used for another request", msg)
        self.assertEqual(self.state(), after)

    # -- VerifierService -----------------------------------------------------------

    def test_register_listings_and_ack(self):
        credit, number = self.maker()
        _, codes = self.issue(credit, number, 3)
        plat = unique("shop")
        pm = F.md("platform", plat)
        call = lambda q: self.a.ver.RegisterListings(q, metadata=pm)  # noqa: E731
        self.once(call, V.RegisterListingsRequest(
            bindings=[V.ListingBinding(listing_id="L1", code=codes[0])], request_id="l-1"),
            V.RegisterListingsRequest(
            bindings=[V.ListingBinding(listing_id="L1", code=codes[1])], request_id="l-1"))
        self.a.reg.SetCertificateStatus(R.SetCertificateStatusRequest(
            number=number, status=T.CERTIFICATE_STATUS_SUSPENDED, reason="x"), metadata=REG)
        nid = self.redis.cli("XRANGE", "{tc}:notices:" + plat, "-", "+").split()[0]
        call = lambda q: self.a.ver.AckDelisting(q, metadata=pm)  # noqa: E731
        self.once(call, V.AckDelistingRequest(notice_id=nid, listing_ids=["L1"],
                                              request_id="a-1"),
                  V.AckDelistingRequest(notice_id=nid, request_id="a-1"))


if __name__ == "__main__":
    unittest.main(verbosity=2)

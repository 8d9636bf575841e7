#!/usr/bin/env python3
"""A platform's client of tracecode, in Python (grpcio): verify a batch of
codes, and watch delisting notices (acknowledging each one).

    platform_client.py --addr HOST:PORT --platform ID [TLS options] verify CODE...
    platform_client.py --addr HOST:PORT --platform ID [TLS options] watch [--cursor C] [--count N]

Codes may also come on standard input (one per line, any printed form).
Identity: with --ca/--cert/--key, the client certificate names the caller
(OU=platform, CN=your platform id); with --insecure (a development node on
loopback) the metadata tc-role/tc-subject does.

Copy it: the stubs are generated from tracecode's .proto files at start
(grpcio-tools); in your own build, generate them once instead.
"""
import argparse
import os
import sys
import tempfile

import grpc

PROTO_DIR = os.environ.get(
    "TRACECODE_PROTO",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto"))


def load_stubs():
    from grpc_tools import protoc
    out = tempfile.mkdtemp(prefix="tracecode-stubs-")
    files = [os.path.join(PROTO_DIR, "tracecode", "v1", f)
             for f in ("types.proto", "verifier.proto")]
    if protoc.main(["protoc", "-I", PROTO_DIR, "--python_out=" + out,
                    "--grpc_python_out=" + out] + files) != 0:
        sys.exit("cannot generate stubs from " + PROTO_DIR)
    for d in ("tracecode", "tracecode/v1"):
        open(os.path.join(out, d, "__init__.py"), "a").close()
    sys.path.insert(0, out)
    from tracecode.v1 import types_pb2, verifier_pb2, verifier_pb2_grpc
    return types_pb2, verifier_pb2, verifier_pb2_grpc


def channel(args):
    if args.insecure:
        return grpc.insecure_channel(args.addr), (("tc-role", "platform"),
                                                  ("tc-subject", args.platform))
    def read(path):
        with open(path, "rb") as f:
            return f.read()
    creds = grpc.ssl_channel_credentials(read(args.ca), read(args.key), read(args.cert))
    return grpc.secure_channel(args.addr, creds), ()


def verify(stub, T, V, md, codes):
    """One VerifyBatch call per 10,000 codes; prints CODE<TAB>VERDICT[<TAB>detail].
    Returns 0 when every code is genuine, 1 otherwise."""
    rc = 0
    for i in range(0, len(codes), 10000):
        chunk = codes[i:i + 10000]
        resp = stub.VerifyBatch(V.VerifyBatchRequest(
            items=[V.VerifyItem(code=c) for c in chunk], view=T.VERIFY_VIEW_BASIC),
            metadata=md, timeout=30)
        for code, r in zip(chunk, resp.results):
            verdict = T.Verdict.Name(r.verdict)
            print("%s\t%s%s" % (code, verdict, "\t" + r.detail if r.detail else ""))
            if r.verdict != T.VERDICT_GENUINE:
                rc = 1
    return rc


def watch(stub, T, V, md, cursor, count):
    """Print each notice, acknowledge it, and resume from the last one seen
    when the node ends the stream (drain, failover)."""
    seen = 0
    while True:
        try:
            for ev in stub.WatchDelistings(V.WatchDelistingsRequest(cursor=cursor), metadata=md):
                if ev.WhichOneof("event") != "notice":
                    continue  # a heartbeat
                n = ev.notice
                print("notice %s certificate %s status %s listings %s reason %s" % (
                    n.notice_id, n.certificate_number, T.CertificateStatus.Name(n.new_status),
                    ",".join(n.listing_ids), n.reason), flush=True)
                # Take the listings down here, then acknowledge; the id makes a retry safe.
                stub.AckDelisting(V.AckDelistingRequest(notice_id=n.notice_id,
                                                        request_id="ack-" + n.notice_id),
                                  metadata=md, timeout=30)
                cursor = n.notice_id
                seen += 1
                if count and seen >= count:
                    return 0
        except grpc.RpcError as e:
            if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED):
                print("watch failed: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
                return 3
            print("watch ended (%s); resuming after %r" % (e.code().name, cursor),
                  file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--addr", required=True)
    ap.add_argument("--platform", required=True)
    ap.add_argument("--insecure", action="store_true")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify")
    v.add_argument("codes", nargs="*")
    w = sub.add_parser("watch")
    w.add_argument("--cursor", default="")
    w.add_argument("--count", type=int, default=0)
    args = ap.parse_args()
    if not args.insecure and not (args.ca and args.cert and args.key):
        ap.error("give --ca, --cert and --key, or --insecure for a development node")
    T, V, G = load_stubs()
    ch, md = channel(args)
    stub = G.VerifierServiceStub(ch)
    if args.cmd == "verify":
        codes = args.codes or [line.strip() for line in sys.stdin if line.strip()]
        try:
            return verify(stub, T, V, md, codes)
        except grpc.RpcError as e:
            print("verify failed: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
            return 3
    return watch(stub, T, V, md, args.cursor, args.count)


if __name__ == "__main__":
    sys.exit(main())

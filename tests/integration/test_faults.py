#!/usr/bin/python3
"""Faults of a real deployment (CTest label 'faults'), on the topology that
scripts/cluster.sh starts: a Redis primary with two replicas, three
Sentinels, three tracesvc nodes following the Sentinels. Every process is
real (Debian's redis-server and redis-sentinel), on loopback ports of this
run, stopped by PID; Sentinel's down-after-milliseconds is 1000 here.

  * kill -9 the primary under verify and write load on all nodes: no
    verification fails, writes fail UNAVAILABLE only until the nodes
    follow, every acknowledged write is there afterwards, and a watching
    platform gets each notice of an acknowledged change exactly once;
  * the primary demoted under the nodes (REPLICAOF): writes see READONLY,
    answered UNAVAILABLE (never INTERNAL), and recover once the Sentinels
    name the new primary;
  * the primary SIGSTOPped for 10 s under load: calls end within their
    deadlines, verification goes on, readiness and grpc.health say writes
    are off and come back, and all work resumes after SIGCONT;
  * kill -9 a node in the middle of a 1,000,000-code IssueCodes: the same
    request on another node returns the same batch and the same codes;
  * a single Redis turned replica under one node (no Sentinel): READONLY is
    UNAVAILABLE, and no connection that saw it is used again.
"""
import os
import random
import signal
import socket
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

from tcgrpc.health.v1 import health_pb2 as H, health_pb2_grpc as HG  # noqa: E402
from tracecode.v1 import audit_pb2 as A  # noqa: E402
from tracecode.v1 import issuer_pb2 as I  # noqa: E402
from tracecode.v1 import registry_pb2 as R  # noqa: E402
from tracecode.v1 import types_pb2 as T  # noqa: E402
from tracecode.v1 import verifier_pb2 as V  # noqa: E402

REG = F.md("regulator", "SAMR")
PLATFORM = "shop-f"
PLAT = F.md("platform", PLATFORM)
BUILD = os.path.join(F.ROOT, os.environ.get("TC_BUILD", "build"))
_seq = iter(range(7000, 100000))


def free_base():
    """A base port whose cluster ports (+0..2, +10..12, +20..22, +30..32)
    are all free on loopback now."""
    for _ in range(200):
        base = random.randrange(20000, 60000, 50)
        ok = True
        for off in (0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32, 35, 36, 37):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", base + off))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return base
    raise RuntimeError("no free port block")


class Cluster:
    def __init__(self, work, down_ms=1000):
        self.dir = os.path.join(work, "cluster")
        self.base = free_base()
        self.env = dict(os.environ, CLUSTER_DIR=self.dir, CLUSTER_PORT=str(self.base),
                        SENTINEL_DOWN_MS=str(down_ms), TC_BUILD=BUILD)

    def sh(self, *args):
        return subprocess.run([os.path.join(F.ROOT, "scripts", "cluster.sh")] + list(args),
                              env=self.env, capture_output=True, text=True, timeout=120)

    def up(self):
        r = self.sh("up")
        if r.returncode != 0:
            raise RuntimeError("cluster.sh up failed:\n%s%s" % (r.stdout, r.stderr))
        self.nodes = [F.Node(self.base + 20 + i) for i in range(3)]

    def down(self):
        self.sh("down")

    def pid(self, name):
        with open(os.path.join(self.dir, "pids", name + ".pid")) as f:
            return int(f.read())

    def running(self, name):
        """Alive and not a zombie (exited, not yet reaped)."""
        try:
            with open("/proc/%d/stat" % self.pid(name)) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, ValueError):
            return False

    def secret(self, name):
        with open(os.path.join(self.dir, "secrets", name)) as f:
            return f.read().strip()

    def cli(self, port, *args, sentinel=False):
        env = dict(os.environ, REDISCLI_AUTH=self.secret("sentinel" if sentinel else "redis"))
        return subprocess.run(["redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p",
                               str(port)] + [str(a) for a in args], env=env,
                              capture_output=True, text=True, timeout=10).stdout

    def primary(self):
        """The index of the Redis the Sentinels name as primary."""
        out = self.cli(self.base + 10, "SENTINEL", "get-master-addr-by-name", "tracecode",
                       sentinel=True).split()
        return int(out[1]) - self.base

    def role(self, i):
        return (self.cli(self.base + i, "ROLE").split() or ["down"])[0]

    def ready(self, i, query=""):
        import urllib.request
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz%s" % (self.base + 35 + i,
                                                                         query), timeout=3) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError as e:
            return 0, str(e)

    def revision(self, i):
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % (self.base + 35 + i),
                                    timeout=3) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("tracesvc_replica_revision "):
                    return int(line.split()[1])
        return -1

    def log(self, name):
        with open(os.path.join(self.dir, name + ".log")) as f:
            return f.read()

    def heal(self, timeout=90):
        """Every process running, the primary with two replicas, every node
        writable: the state each test starts from."""
        for name in ["redis0", "redis1", "redis2", "node0", "node1", "node2"]:
            if not self.running(name):
                self.sh("start", name)
        ok = F.wait_for(lambda: all(self.ready(i, "?writes=1")[0] == 200 for i in range(3))
                        and "connected_slaves:2" in self.cli(self.base + self.primary(),
                                                             "INFO", "replication"),
                        timeout)
        if not ok:
            raise AssertionError("the cluster did not heal: %s" % self.sh("status").stdout)


def mfr(credit, rid):
    return R.UpsertManufacturerRequest(manufacturer=T.Manufacturer(
        credit_code=credit, name="Fault Co", status=T.MANUFACTURER_STATUS_ACTIVE), request_id=rid)


class Load:
    """Verification and write load on every node, from threads, until
    stopped. Records every outcome with its time."""

    def __init__(self, cluster, codes, verify=True, write=True, timeout=3.0):
        self.c = cluster
        self.codes = codes
        self.timeout = timeout
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.verify, self.write = verify, write
        self.verify_ok = 0
        self.verified = []     # (time, node) of each genuine answer
        self.verify_bad = []   # (time, node, code or verdict, detail)
        self.acked = []        # (time, node, credit code)
        self.write_err = []    # (time, node, status code, detail)
        self.threads = []
        for i in range(3):
            if verify:
                self.threads.append(threading.Thread(target=self.verifier, args=(i,)))
            if write:
                self.threads.append(threading.Thread(target=self.writer, args=(i,)))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30)

    def verifier(self, i):
        node = self.c.nodes[i]
        while not self.stop_ev.is_set():
            code = random.choice(self.codes)
            t = time.time()
            try:
                r = node.ver.VerifyCode(V.VerifyCodeRequest(code=code), metadata=PLAT,
                                        timeout=self.timeout).result
                with self.lock:
                    if r.verdict == T.VERDICT_GENUINE:
                        self.verify_ok += 1
                        self.verified.append((time.time(), i))
                    else:
                        self.verify_bad.append((t, i, T.Verdict.Name(r.verdict), r.detail))
            except grpc.RpcError as e:
                with self.lock:
                    self.verify_bad.append((t, i, e.code(), e.details()))
            time.sleep(0.005)

    def writer(self, i):
        node = self.c.nodes[i]
        while not self.stop_ev.is_set():
            credit = F.uscc(next(_seq))
            t = time.time()
            try:
                node.reg.UpsertManufacturer(mfr(credit, "w-" + credit), metadata=REG,
                                            timeout=self.timeout)
                with self.lock:
                    self.acked.append((time.time(), i, credit))
            except grpc.RpcError as e:
                with self.lock:
                    self.write_err.append((t, i, e.code(), e.details()))
                time.sleep(0.05)
            time.sleep(0.02)

    def running(self, since=None, timeout=30.0):
        """Wait until every node has answered a verification genuine and
        acknowledged a write (those the load makes) after since (default:
        ever): the load is on, or back, everywhere."""
        since = since or 0

        def up():
            with self.lock:
                v = {n for t, n in self.verified if t > since}
                w = {n for t, n, _ in self.acked if t > since}
            return (not self.verify or len(v) == 3) and (not self.write or len(w) == 3)
        return F.wait_for(up, timeout)

    def last_error(self, i):
        with self.lock:
            return max([t for t, n, _, _ in self.write_err if n == i], default=0)

    def first_ack_after(self, i, t0):
        with self.lock:
            return min([t for t, n, _ in self.acked if n == i and t > t0], default=None)


class Watcher(threading.Thread):
    """A platform watching delisting notices through one node, resuming
    from its cursor after every break."""

    def __init__(self, node):
        super().__init__(daemon=True)
        self.node = node
        self.cursor = ""
        self.notices = []
        self.stop_ev = threading.Event()
        self.call = None

    def run(self):
        while not self.stop_ev.is_set():
            try:
                self.call = self.node.ver.WatchDelistings(
                    V.WatchDelistingsRequest(cursor=self.cursor), metadata=PLAT)
                for m in self.call:
                    if m.HasField("notice"):
                        self.notices.append(m.notice)
                        self.cursor = m.notice.notice_id
            except grpc.RpcError:
                time.sleep(0.2)

    def stop(self):
        self.stop_ev.set()
        if self.call:
            self.call.cancel()
        self.join(10)


class Faults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(WORK)
        cls.c.up()
        cls.n = cls.c.nodes
        # The codes verified under load: a certificate that never changes.
        _, cls.codes = F.chain(cls.n[0], F.uscc(next(_seq)), F.unique("CCC2026"), 200)

    @classmethod
    def tearDownClass(cls):
        logs = [cls.c.log("node%d" % i) for i in range(3)]
        cls.c.down()
        # Failovers, demotions, stops and drains: every line one logfmt event.
        for i, text in enumerate(logs):
            bad = F.logfmt_problems(text)
            if bad:
                raise AssertionError("node%d's log is not logfmt: %r" % (i, bad[:5]))

    def setUp(self):
        self.c.heal()

    def assert_no_failed_verification(self, load):
        self.assertGreater(load.verify_ok, 100)
        self.assertEqual(load.verify_bad, [], "verifications failed or were not GENUINE")

    def assert_acked_present(self, load):
        p = self.c.base + self.c.primary()
        missing = [credit for _, _, credit in load.acked
                   if self.c.cli(p, "EXISTS", "{tc}:mfr:" + credit).strip() != "1"]
        self.assertEqual(missing, [], "acknowledged writes lost")
        # and every node's replica has followed the new primary to its revision
        rev = int(self.c.cli(p, "GET", "{tc}:rev").strip())
        for i in range(3):
            self.assertTrue(F.wait_for(lambda: self.c.revision(i) >= rev, 10),
                            "node%d's replica stays behind revision %d (at %s); its log ends:\n%s"
                            % (i, rev, self.c.revision(i), self.c.log("node%d" % i)[-3000:]))

    def wait_writes_everywhere(self, load, t0, limit):
        """Each node acknowledges a write after t0 within limit seconds."""
        ok = F.wait_for(lambda: all(load.first_ack_after(i, t0) and
                                    load.first_ack_after(i, load.last_error(i))
                                    for i in range(3)), limit)
        self.assertTrue(ok, "writes did not come back on every node: %s" %
                        [(i, load.last_error(i) - t0) for i in range(3)])

    def test_1_kill_primary(self):
        old = self.c.primary()
        # Certificates with listings on the watching platform: suspending
        # one during the failover must reach it exactly once.
        certs = []
        for _ in range(6):
            number = F.unique("CCC2026")
            _, codes = F.chain(self.n[0], F.uscc(next(_seq)), number, 3)
            self.n[0].ver.RegisterListings(V.RegisterListingsRequest(bindings=[
                V.ListingBinding(listing_id="L-" + number, code=codes[0])]), metadata=PLAT)
            certs.append(number)
        watcher = Watcher(self.n[1])
        watcher.start()
        suspended = []
        with Load(self.c, self.codes) as load:
            self.assertTrue(load.running())
            t0 = time.time()
            os.kill(self.c.pid("redis%d" % old), signal.SIGKILL)
            # Suspensions during the failover, each retried with its
            # request id on the next node until acknowledged.
            for k, number in enumerate(certs):
                rid = "susp-" + number
                end = time.time() + 40
                while time.time() < end:
                    code, msg = F.status_of(self.n[k % 3].reg.SetCertificateStatus,
                                            R.SetCertificateStatusRequest(
                                                number=number,
                                                status=T.CERTIFICATE_STATUS_SUSPENDED,
                                                reason="failover test", request_id=rid),
                                            metadata=REG, timeout=3)
                    if code == grpc.StatusCode.OK:
                        suspended.append(number)
                        break
                    self.assertIn(code, (grpc.StatusCode.UNAVAILABLE,
                                         grpc.StatusCode.DEADLINE_EXCEEDED), msg)
                    k += 1
                    time.sleep(0.3)
                time.sleep(0.3)
            self.wait_writes_everywhere(load, t0, 30)
            self.assertTrue(load.running(since=time.time()))  # and on after it
        self.assertNotEqual(self.c.primary(), old, "the Sentinels did not promote a replica")
        self.assert_no_failed_verification(load)
        kinds = {code for _, _, code, _ in load.write_err}
        self.assertLessEqual(kinds, {grpc.StatusCode.UNAVAILABLE,
                                     grpc.StatusCode.DEADLINE_EXCEEDED},
                             load.write_err[:5])
        for i in range(3):
            self.assertLess(load.last_error(i) - t0, 30, "node%d kept failing writes" % i)
        self.assert_acked_present(load)
        self.assertEqual(sorted(suspended), sorted(certs))
        F.wait_for(lambda: len(watcher.notices) >= len(certs), 15)
        watcher.stop()
        got = sorted(n.certificate_number for n in watcher.notices
                     if n.new_status == T.CERTIFICATE_STATUS_SUSPENDED)
        self.assertEqual(got, sorted(certs), "each acknowledged suspension: one notice")
        for i in range(3):
            self.assertIn("the Sentinels name 127.0.0.1:%d as primary" %
                          (self.c.base + self.c.primary()), self.c.log("node%d" % i))

    def test_2_demoted_by_replicaof(self):
        old = self.c.primary()
        with Load(self.c, self.codes, verify=True, write=True) as load:
            self.assertTrue(load.running())
            t0 = time.time()
            # Behind the Sentinels' back, as an operator would move the
            # primary: FAILOVER pauses writes, lets a replica catch up,
            # makes it primary and the old one its replica (REPLICAOF). The
            # nodes still write to the old one, which now answers READONLY.
            self.assertTrue(F.wait_for(lambda: "OK" in self.c.cli(self.c.base + old, "FAILOVER"),
                                       10))
            ok = F.wait_for(lambda: any("READONLY" in d for _, _, _, d in load.write_err), 10)
            self.assertTrue(ok, "no write met the demoted primary")
            self.wait_writes_everywhere(load, t0, 75)
        self.assert_no_failed_verification(load)
        kinds = {code for _, _, code, _ in load.write_err}
        self.assertLessEqual(kinds, {grpc.StatusCode.UNAVAILABLE,
                                     grpc.StatusCode.DEADLINE_EXCEEDED}, load.write_err[:5])
        self.assertEqual(self.c.role(old), "slave")
        self.assert_acked_present(load)

    def test_3_sigstop_primary(self):
        p = self.c.primary()
        health = HG.HealthStub(self.n[2].channel)
        watch = health.Watch(H.HealthCheckRequest(service="tracecode.v1.RegistryService"),
                             timeout=60)
        seen = []

        def follow():
            try:
                for m in watch:
                    seen.append(m.status)
            except grpc.RpcError:
                pass  # cancelled at the end
        wt = threading.Thread(target=follow, daemon=True)
        wt.start()
        self.assertTrue(F.wait_for(lambda: seen == [H.HealthCheckResponse.SERVING], 5), seen)
        with Load(self.c, self.codes, timeout=1.5) as load:
            self.assertTrue(load.running())
            t0 = time.time()
            os.kill(self.c.pid("redis%d" % p), signal.SIGSTOP)
            try:
                # writes are off, verification is not
                self.assertTrue(F.wait_for(lambda: self.c.ready(2, "?writes=1")[0] == 503, 8))
                status, body = self.c.ready(2)
                self.assertEqual(status, 200, body)
                self.assertIn("writes not possible", body)
                self.assertEqual(health.Check(H.HealthCheckRequest(
                    service="tracecode.v1.VerifierService"), timeout=3).status,
                    H.HealthCheckResponse.SERVING)
                self.assertEqual(health.Check(H.HealthCheckRequest(
                    service="tracecode.v1.RegistryService"), timeout=3).status,
                    H.HealthCheckResponse.NOT_SERVING)
                # The Sentinels promote a replica while the old primary is still
                # stopped: every node's change stream follows the new one now,
                # not when the stopped one wakes (it never answers meanwhile).
                self.assertTrue(F.wait_for(lambda: self.c.primary() != p, 8))
                new = self.c.base + self.c.primary()
                self.assertTrue(F.wait_for(lambda: load.first_ack_after(0, t0 + 1), 8))
                rev = int(self.c.cli(new, "GET", "{tc}:rev").strip())
                for i in range(3):
                    self.assertTrue(F.wait_for(lambda: self.c.revision(i) >= rev, 8),
                                    "node%d's change stream waits for the stopped primary; its "
                                    "log ends:\n%s" % (i, self.c.log("node%d" % i)[-2000:]))
                time.sleep(max(0, t0 + 10 - time.time()))  # the rest of its 10 s
            finally:
                os.kill(self.c.pid("redis%d" % p), signal.SIGCONT)
            t1 = time.time()
            self.wait_writes_everywhere(load, t1, 60)
        # calls ended by their deadlines (1.5 s), the late ones included
        late = [e for e in load.write_err if e[0] > t0 and e[2] not in (
            grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)]
        self.assertEqual(late, [])
        self.assert_no_failed_verification(load)
        self.assertTrue(F.wait_for(lambda: seen[-1:] == [H.HealthCheckResponse.SERVING] and
                                   H.HealthCheckResponse.NOT_SERVING in seen, 10), seen)
        watch.cancel()
        self.assert_acked_present(load)

    def test_4_issue_retried_on_another_node(self):
        credit = F.uscc(next(_seq))
        number = F.unique("CCC2026")
        F.chain(self.n[0], credit, number, 1)
        mf = F.md("manufacturer", credit)
        pid = self.n[0].iss.RegisterProduct(I.RegisterProductRequest(
            certificate_number=number, category_code="0704", brand="Big", model="Run"),
            metadata=mf).product.product_id
        req = I.IssueCodesRequest(product_id=pid, quantity=1000000, profile=T.CODE_PROFILE_MAC,
                                  chunk_size=10000, request_id="big-" + pid)
        first, batch = [], None
        for m in self.n[0].iss.IssueCodes(req, metadata=mf, timeout=60):
            first += list(m.codes)
            if m.HasField("batch"):
                batch = m.batch.batch_id
            if len(first) >= 50000:
                break
        os.kill(self.c.pid("node0"), signal.SIGKILL)
        again, batch2 = [], None
        for m in self.n[1].iss.IssueCodes(req, metadata=mf, timeout=120):
            again += list(m.codes)
            if m.HasField("batch"):
                batch2 = m.batch.batch_id
        self.assertEqual(batch2, batch)
        self.assertEqual(len(again), 1000000)
        self.assertEqual(again[:len(first)], first)
        self.assertEqual(len(set(again)), 1000000)
        # and a third node answers the same
        tail = []
        for m in self.n[2].iss.IssueCodes(req, metadata=mf, timeout=120):
            tail += list(m.codes)
        self.assertEqual(tail[-1000:], again[-1000:])

    # --- keys: a rolling rotation and a compromise, on the same cluster ----

    def keydir(self, i):
        return os.path.join(self.c.dir, "node%d" % i, "keys")

    def list_keys(self, node=0):
        return self.n[node].reg.ListKeys(R.ListKeysRequest(), metadata=REG, timeout=5)

    def holders(self, kid):
        for k in self.list_keys().keys:
            if k.key_id == kid:
                return sorted(k.nodes_holding)
        return []

    def issue(self, node, mf, pid, n):
        """A batch of n MAC codes through node: (batch, key id, codes)."""
        codes, batch, kid = [], None, None
        for m in self.n[node].iss.IssueCodes(I.IssueCodesRequest(
                product_id=pid, quantity=n, profile=T.CODE_PROFILE_MAC, chunk_size=n),
                metadata=mf, timeout=30):
            codes += list(m.codes)
            if m.HasField("batch"):
                batch, kid = m.batch.batch_id, m.batch.key_id
        return batch, kid, codes

    def verdicts(self, node, codes):
        r = self.n[node].ver.VerifyBatch(V.VerifyBatchRequest(items=[
            V.VerifyItem(code=c) for c in codes]), metadata=PLAT, timeout=10)
        return [(T.Verdict.Name(x.verdict), x.detail) for x in r.results]

    def assert_genuine_everywhere(self, codes, step):
        for i in range(3):
            bad = [v for v in self.verdicts(i, codes) if v[0] != "VERDICT_GENUINE"]
            self.assertEqual(bad, [], "%s: node%d does not call its codes genuine" % (step, i))

    def product(self):
        credit, number = F.uscc(next(_seq)), F.unique("CCC2026")
        F.chain(self.n[0], credit, number, 1)
        mf = F.md("manufacturer", credit)
        pid = self.n[0].iss.RegisterProduct(I.RegisterProductRequest(
            certificate_number=number, category_code="0704", brand="Key", model="Roll"),
            metadata=mf).product.product_id
        return mf, pid

    def test_5_rolling_key_rotation(self):
        mf, pid = self.product()
        kid_before = self.issue(0, mf, pid, 1)[1]
        # every node is live in Redis (its heartbeat names its keys)
        self.assertTrue(F.wait_for(lambda: len(self.list_keys().nodes) == 3, 15),
                        self.list_keys().nodes)
        with Load(self.c, self.codes, write=False) as load:
            # 1. stage on node0's keyring: verify-only, node0 reloads by itself
            out = subprocess.run([os.path.join(BUILD, "bin", "tracekeys"), "stage", "--dir",
                                  self.keydir(0)], capture_output=True, text=True, check=True)
            kid = int(out.stdout.strip())
            self.assertIn("tracectl keys activate %d" % kid, out.stderr)
            self.assertTrue(F.wait_for(lambda: "node0" in self.holders(kid), 10))
            _, k, codes = self.issue(0, mf, pid, 50)
            self.assertEqual(k, kid_before, "a staged key must not issue")
            self.assert_genuine_everywhere(codes, "staged on node0")
            # 2. node1 gets the file and a SIGHUP
            name = "key-%03d" % kid
            subprocess.run(["cp", "-p", os.path.join(self.keydir(0), name), self.keydir(1)],
                           check=True)
            os.kill(self.c.pid("node1"), signal.SIGHUP)
            self.assertTrue(F.wait_for(lambda: self.holders(kid) == ["node0", "node1"], 10),
                            self.holders(kid))
            # by the signal, or by the directory change it saw first (a tick
            # can land between the copy and the signal)
            self.assertRegex(self.c.log("node1"), r"reloaded \((SIGHUP|its directory changed)\)")
            self.assert_genuine_everywhere(self.issue(1, mf, pid, 50)[2], "staged on node0, 1")
            # 3. activation refused while node2 lacks the key, naming it
            code, msg = F.status_of(self.n[1].reg.ActivateKey,
                                    R.ActivateKeyRequest(key_id=kid, request_id="act-%d" % kid),
                                    metadata=REG, timeout=5)
            self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, msg)
            self.assertIn("node2", msg)
            self.assertNotIn("node0", msg)
            # A forger's codes naming a key id nobody holds, for 10 s: each
            # makes node2 read its keyring again (at most once a second),
            # which must neither fill its log nor use up what lets a real
            # change be put in force (step 4 right after).
            forged = self.foreign_code(kid + 4)
            end = time.time() + 10
            while time.time() < end:
                self.assertEqual(self.verdicts(2, [forged])[0][0], "VERDICT_FORGED")
                time.sleep(0.4)
            self.assertNotIn("key id %d" % (kid + 4), self.c.log("node2"))
            # 4. node2 gets the file: its directory's time is put back, so only
            #    meeting the unknown key id makes it reload (SIGHUP comes later)
            st = os.stat(self.keydir(2))
            subprocess.run(["cp", "-p", os.path.join(self.keydir(0), name), self.keydir(2)],
                           check=True)
            os.utime(self.keydir(2), ns=(st.st_atime_ns, st.st_mtime_ns))
            # a code under the new key for an existing batch: once node2 holds
            # the key the tag verifies and the batch says 'issued under key N'
            minted = subprocess.run(
                [os.path.join(BUILD, "bin", "tracekeys"), "mint", "--dir", self.scratch_ring(kid),
                 "--batch", "1", "--count", "1"], capture_output=True, text=True, check=True)
            got = self.verdicts(2, [minted.stdout.split()[0]])[0]
            self.assertEqual(got[0], "VERDICT_UNKNOWN_BATCH", got)
            self.assertIn("a code named key id %d, not loaded yet" % kid, self.c.log("node2"))
            self.assertNotIn("not reloaded", self.c.log("node2"))
            os.kill(self.c.pid("node2"), signal.SIGHUP)
            self.assertTrue(F.wait_for(lambda: self.holders(kid) == ["node0", "node1", "node2"],
                                       10), self.holders(kid))
            # 5. activate: the deployment issues under the new key, on every node
            key = self.n[1].reg.ActivateKey(R.ActivateKeyRequest(
                key_id=kid, request_id="act-%d" % kid), metadata=REG, timeout=5).key
            self.assertEqual(key.state, T.KEY_STATE_ACTIVE)
            states = {k.key_id: k.state for k in self.list_keys(2).keys}
            self.assertEqual(states[kid], T.KEY_STATE_ACTIVE)
            self.assertEqual(states[kid_before], T.KEY_STATE_VERIFY_ONLY)
            for i in range(3):
                b, k, codes = self.issue(i, mf, pid, 50)
                self.assertEqual(k, kid, "node%d issues under key %d" % (i, k))
                self.assert_genuine_everywhere(codes, "activated, issued on node%d" % i)
            self.assertTrue(load.running(since=time.time()))
        self.assert_no_failed_verification(load)
        entries = [e for e in self.n[0].audit.QueryAudit(A.QueryAuditRequest(kind="key"),
                                                        metadata=REG, timeout=10)]
        self.assertTrue(any(b"activate\nkey %d" % kid in e.entry.body for e in entries),
                        [e.entry.body for e in entries])

    def foreign_code(self, kid):
        """A well-formed code under key id kid of a keyring nobody else holds."""
        d = os.path.join(self.c.dir, "foreign-%d" % kid)
        tk = os.path.join(BUILD, "bin", "tracekeys")
        if not os.path.isdir(d):
            subprocess.run([tk, "init", "--dir", d], check=True, capture_output=True)
            while "key %d (mac)" % kid not in subprocess.run(
                    [tk, "rotate", "--dir", d], check=True, capture_output=True,
                    text=True).stdout:
                pass
        return subprocess.run([tk, "mint", "--dir", d, "--batch", "1", "--count", "1"],
                              check=True, capture_output=True, text=True).stdout.split()[0]

    def scratch_ring(self, kid):
        """A copy of node0's keyring in which kid is the active MAC key (to
        mint codes under it without the service)."""
        d = os.path.join(self.c.dir, "scratch-%d" % kid)
        if not os.path.isdir(d):
            subprocess.run(["cp", "-rp", self.keydir(0), d], check=True)
            path = os.path.join(d, "key-%03d" % kid)
            with open(path) as f:
                text = f.read().replace("state verify-only", "state active")
            for name in os.listdir(d):  # the other mac keys verify only
                p = os.path.join(d, name)
                with open(p) as f:
                    t = f.read()
                if "kind mac" in t and "state active" in t:
                    with open(p, "w") as f:
                        f.write(t.replace("state active", "state verify-only"))
            with open(path, "w") as f:
                f.write(text)
        return d

    def test_6_compromise(self):
        mf, pid = self.product()
        early_batch, kid, early = self.issue(0, mf, pid, 20)
        t = int(time.time())  # `since` is in whole seconds: the next but one after the issue
        self.assertTrue(F.wait_for(lambda: int(time.time()) >= t + 2, 3))
        since = int(time.time())
        late_batch, kid2, late = self.issue(1, mf, pid, 20)
        self.assertEqual(kid2, kid)
        r = self.n[2].reg.CompromiseKey(R.CompromiseKeyRequest(
            key_id=kid, since_unix=since, reason="HSM backup stolen", request_id="cmp-%d" % kid),
            metadata=REG, timeout=5)
        self.assertEqual(r.key.state, T.KEY_STATE_COMPROMISED)
        self.assertGreaterEqual(r.batches_affected, 1)
        for i in range(3):
            self.assertTrue(F.wait_for(lambda: all(
                v[0] == "VERDICT_KEY_COMPROMISED" for v in self.verdicts(i, late)), 5),
                self.verdicts(i, late)[:2])
            self.assertEqual({v[0] for v in self.verdicts(i, early)}, {"VERDICT_GENUINE"})
        # nothing more is issued under it
        code, msg = F.status_of(lambda: list(self.n[0].iss.IssueCodes(I.IssueCodesRequest(
            product_id=pid, quantity=1, profile=T.CODE_PROFILE_MAC), metadata=mf, timeout=10)))
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, msg)
        self.assertIn("compromised", msg)
        listed = {k.key_id: k for k in self.list_keys(1).keys}
        self.assertEqual(listed[kid].compromised_since_unix, since)
        self.assertEqual(listed[kid].compromise_reason, "HSM backup stolen")
        # the same request again changes nothing; bad input is refused
        again = self.n[0].reg.CompromiseKey(R.CompromiseKeyRequest(
            key_id=kid, since_unix=since, reason="HSM backup stolen", request_id="cmp-%d" % kid),
            metadata=REG, timeout=5)
        self.assertEqual(again.key.compromised_since_unix, since)
        for bad, want in (
                (R.CompromiseKeyRequest(key_id=kid, since_unix=0, reason="x"), "INVALID_ARGUMENT"),
                # milliseconds by mistake: in the future, refused
                (R.CompromiseKeyRequest(key_id=kid, since_unix=since * 1000, reason="x"),
                 "INVALID_ARGUMENT"),
                (R.CompromiseKeyRequest(key_id=0, since_unix=since, reason="x"), "INVALID_ARGUMENT"),
                (R.CompromiseKeyRequest(key_id=200, since_unix=since, reason="x"),
                 "FAILED_PRECONDITION")):
            code, msg = F.status_of(self.n[0].reg.CompromiseKey, bad, metadata=REG, timeout=5)
            self.assertEqual(code.name, want, msg)
        listed = {k.key_id: k for k in self.list_keys(0).keys}
        self.assertEqual(listed[kid].compromised_since_unix, since, "a refused request changed it")
        code, _ = F.status_of(self.n[0].reg.CompromiseKey, R.CompromiseKeyRequest(
            key_id=kid, since_unix=since, reason="x"), metadata=F.md("certifier", "CQC"),
            timeout=5)
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)


class ReadOnlyAlone(unittest.TestCase):
    """One node on one Redis (no Sentinel) that turns replica."""

    def test_readonly_is_unavailable_and_not_pooled(self):
        a = F.Redis(os.path.join(WORK, "ra"))
        b = F.Redis(os.path.join(WORK, "rb"))
        a.start()
        b.start()
        keys = F.keyring(os.path.join(WORK, "ra"))
        svc = F.Service(os.path.join(WORK, "ra"), "ro", a.url, keys).start()
        try:
            node = F.Node(svc.port)
            for k in range(20):  # fill the pool
                node.reg.UpsertManufacturer(mfr(F.uscc(next(_seq)), ""), metadata=REG)
            # b follows a; then a follows b (made primary): a is read-only
            a_port = _free_port()
            a.cli("CONFIG", "SET", "port", str(a_port))
            b.cli("REPLICAOF", "127.0.0.1", str(a_port))
            self.assertTrue(F.wait_for(lambda: "master_link_status:up" in
                                       b.cli("INFO", "replication"), 10))
            b_port = _free_port()
            b.cli("CONFIG", "SET", "port", str(b_port))
            b.cli("REPLICAOF", "NO", "ONE")
            a.cli("REPLICAOF", "127.0.0.1", str(b_port))
            errors = [F.status_of(node.reg.UpsertManufacturer, mfr(F.uscc(next(_seq)), ""),
                                  metadata=REG) for _ in range(25)]
            for code, msg in errors:
                self.assertEqual(code, grpc.StatusCode.UNAVAILABLE, msg)
                self.assertIn("READONLY", msg)
            a.cli("REPLICAOF", "NO", "ONE")
            # every write succeeds at once: no connection that saw READONLY
            # was pooled again
            for _ in range(25):
                code, msg = F.status_of(node.reg.UpsertManufacturer, mfr(F.uscc(next(_seq)), ""),
                                        metadata=REG)
                self.assertEqual(code, grpc.StatusCode.OK, msg)
        finally:
            rc = svc.stop()
            a.stop()
            b.stop()
        self.assertEqual(rc, 0)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
"""A Redis that hangs without closing (SIGSTOP): the change stream's
watchdog reconnects every few seconds, and none of those reconnects may
pass for hearing from Redis - the replica's lag keeps growing, answers are
flagged stale past --max-staleness, and all comes back after SIGCONT.
"""
import os
import re
import signal
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcfixture as F  # noqa: E402

WORK = F.workdir()


class HungRedis(unittest.TestCase):
    def metric(self, svc, name):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % svc.admin_port,
                                    timeout=5) as r:
            m = re.search(r"^%s (\S+)$" % re.escape(name), r.read().decode(), re.M)
        return float(m.group(1))

    def test_lag_grows_while_redis_hangs(self):
        redis = F.Redis(WORK)
        redis.start()
        svc = F.Service(WORK, "a", redis.url, F.keyring(WORK), ["--max-staleness", "2"]).start()
        try:
            self.assertTrue(F.wait_for(lambda: self.metric(svc, "tracesvc_replica_lag_seconds")
                                       < 1.5, 10))
            redis.proc.send_signal(signal.SIGSTOP)
            t0 = time.time()
            try:
                # past the watchdog's 5 s, and a reconnect or two after it
                self.assertTrue(F.wait_for(lambda: "no answer from" in svc.output(), 10),
                                svc.output()[-2000:])
                time.sleep(max(0, t0 + 9 - time.time()))  # a duration: Redis stays hung
                lag = self.metric(svc, "tracesvc_replica_lag_seconds")
                self.assertGreaterEqual(lag, 8, "a reconnect to a hung Redis passed for news")
                self.assertEqual(self.metric(svc, "tracesvc_replica_stale"), 1)
            finally:
                redis.proc.send_signal(signal.SIGCONT)
            self.assertTrue(F.wait_for(lambda: self.metric(svc, "tracesvc_replica_stale") == 0,
                                       15))
        finally:
            self.assertEqual(svc.stop(), 0, svc.output()[-2000:])
            redis.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)

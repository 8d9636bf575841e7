"""test_package.py DEB - the .deb as an operator meets it, on this machine
(root; scripts/test.sh runs it on CI's fresh machine).

It installs the package with dpkg -i, checks what it put where (binaries
that run from /usr/bin, manual pages holding every option, the unit, the
conffile, the tracecode user and its keyring directory), verifies the unit
with systemd-analyze (and its sandbox's exposure score), then runs
/usr/bin/tracesvc the way the unit starts it - as the tracecode user, with
the installed environment file, no new privileges, no capabilities, umask
0077 - against a private redis-server, with mTLS, a keyring made by
tracekeys as that user, and checks that every system call it makes is one
the unit's SystemCallFilter allows (no systemd runs as PID 1 here, so the
unit itself cannot be started: strace stands in for the seccomp filter).
An upgrade keeps the operator's edited environment file; a purge removes
the package and keeps the keyring. Everything it made is removed at the end.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

DEB = None
ETC = "/etc/tracecode"
UNIT = "/usr/lib/systemd/system/tracesvc.service"
ENV_FILE = "/etc/default/tracecode"


def read(path):
    with open(path) as f:
        return f.read()


def run(*args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(list(args), **kw)


def expand_filter(group, seen=None):
    """The system calls a systemd syscall-filter group names, nested
    groups expanded (systemd-analyze syscall-filter lists them by name)."""
    seen = set() if seen is None else seen
    if group in seen:
        return set()
    seen.add(group)
    out = run("systemd-analyze", "syscall-filter", group, check=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        calls |= expand_filter(word, seen) if word.startswith("@") else {word}
    return calls


def strace_calls(path, program):
    """System call names from strace -f output, from program's execve on
    (what the wrapper did before, as root, is not the service's)."""
    calls, started = set(), False
    pat = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)(?:\(| resumed>)")
    with open(path) as f:
        for line in f:
            if not started:
                started = ('execve("%s"' % program) in line and "= 0" in line
                continue
            m = pat.match(line)
            if m:
                calls.add(m.group(1))
    return started, calls


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tc-pkg-")
        os.chmod(cls.dir, 0o755)  # the tracecode user reaches the Redis socket in it
        r = run("dpkg", "-i", DEB)
        if r.returncode != 0:
            raise RuntimeError("dpkg -i failed:\n" + r.stdout + r.stderr)

    @classmethod
    def tearDownClass(cls):
        run("dpkg", "--purge", "tracecode")
        shutil.rmtree(ETC, ignore_errors=True)
        run("userdel", "tracecode")
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_binaries_run_from_usr_bin(self):
        for prog in ("tracesvc", "tracectl", "tracekeys"):
            r = run("/usr/bin/" + prog, "--version")
            self.assertEqual(r.returncode, 0, prog + ": " + r.stderr)
            self.assertRegex(r.stdout, r"^%s \d+\.\d+\.\d+ " % prog)
        deps = run("dpkg-query", "-W", "-f=${Depends}", "tracecode").stdout
        for lib in ("libgrpc", "libhiredis", "libssl3", "libevent", "libprotobuf-c"):
            self.assertIn(lib, deps)  # from the binaries, by dpkg-shlibdeps

    def test_manual_pages_hold_every_option(self):
        # A minimized Debian image tells dpkg to skip /usr/share/man
        # (path-exclude): read the pages from the package then.
        unpacked = os.path.join(self.dir, "unpacked")
        run("dpkg-deb", "-x", DEB, unpacked, check=True)
        installed = os.path.exists("/usr/share/man/man8/tracesvc.8.gz")
        for prog, section in (("tracesvc", "8"), ("tracectl", "1"), ("tracekeys", "1")):
            path = "/usr/share/man/man%s/%s.%s.gz" % (section, prog, section)
            if installed:
                self.assertEqual(run("man", "-w", section, prog).stdout.strip(), path)
            else:
                path = unpacked + path
            roff = run("zcat", path).stdout
            lint = run("groff", "-man", "-ww", "-z", input=roff)
            self.assertEqual((lint.returncode, lint.stderr), (0, ""), prog)
            helptext = run("/usr/bin/" + prog, "--help").stdout
            options = set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]+)", helptext))
            self.assertGreater(len(options), 3, prog)
            for opt in options:
                self.assertIn("\\-\\-" + opt.replace("-", "\\-"), roff, prog + " --" + opt)
        page = ("" if installed else unpacked) + "/usr/share/man/man8/tracesvc.8.gz"
        text = run("man", "-l", page, env=dict(os.environ, MANWIDTH="200")).stdout
        self.assertIn("TRACESVC_KEYS_ALLOW_GROUP_READ", text)
        self.assertIn("SIGHUP", text)

    def test_unit_verifies_and_is_sandboxed(self):
        # A minimized image keeps dpkg from installing manual pages: then the
        # unit's man: reference cannot be looked up (the pages are checked
        # in the package by test_manual_pages_hold_every_option).
        man = [] if os.path.exists("/usr/share/man/man8/tracesvc.8.gz") else ["--man=no"]
        r = run("systemd-analyze", "verify", *man, UNIT)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        r = run("systemd-analyze", "security", "--offline=true", UNIT)
        m = re.search(r"Overall exposure level for tracesvc.service: ([0-9.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)
        unit = read(UNIT)
        for line in ("User=tracecode", "NoNewPrivileges=yes", "ProtectSystem=strict",
                     "Restart=on-failure", "EnvironmentFile=" + ENV_FILE,
                     "ExecStart=/usr/bin/tracesvc"):
            self.assertIn(line + "\n", unit)

    def test_user_directories_and_conffile(self):
        pw = run("getent", "passwd", "tracecode").stdout.strip().split(":")
        self.assertEqual(pw[6], "/usr/sbin/nologin")
        self.assertLess(int(pw[2]), 1000)  # a system user
        st = os.stat(ETC + "/keys")
        self.assertEqual((st.st_uid, st.st_mode & 0o7777), (int(pw[2]), 0o700))
        st = os.stat(ETC + "/tls")
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (0, int(pw[3]), 0o750))
        conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "tracecode").stdout
        self.assertIn(ENV_FILE, conffiles)

    def make_tls(self):
        pki = os.path.join(self.dir, "pki")
        os.makedirs(pki, exist_ok=True)

        def openssl(*a):
            run("openssl", *a, check=True)

        ca_key, ca = os.path.join(pki, "ca.key"), os.path.join(pki, "ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=test CA")
        for name, subj, ext in (("server", "/CN=localhost", "subjectAltName=IP:127.0.0.1"),
                                ("platform", "/OU=platform/CN=shop-a",
                                 "extendedKeyUsage=clientAuth")):
            extfile = os.path.join(pki, name + ".ext")
            with open(extfile, "w") as f:
                f.write(ext + "\n")
            key, csr, crt = (os.path.join(pki, name + e) for e in (".key", ".csr", ".pem"))
            openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", subj)
            openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                    "-out", crt, "-days", "2", "-extfile", extfile)
        # Where the installed environment file says, readable by the service.
        for src, dst in (("server.pem", "server.pem"), ("server.key", "server.key"),
                         ("ca.pem", "clients-ca.pem")):
            shutil.copy(os.path.join(pki, src), os.path.join(ETC, "tls", dst))
            os.chown(os.path.join(ETC, "tls", dst), 0, int(run("id", "-g", "tracecode").stdout))
            os.chmod(os.path.join(ETC, "tls", dst), 0o640)
        return pki

    def test_runs_as_the_unit_starts_it(self):
        # A private redis-server whose socket the tracecode user may use.
        sock = os.path.join(self.dir, "redis.sock")
        redis = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock,
                                  "--unixsocketperm", "777", "--dir", self.dir, "--save", "",
                                  "--daemonize", "no"], stdout=subprocess.DEVNULL)
        svc = None
        try:
            for _ in range(500):
                if run("redis-cli", "-s", sock, "PING").stdout.strip() == "PONG":
                    break
                time.sleep(0.01)
            # The keyring, made by tracekeys as the user the unit runs as.
            r = run("runuser", "-u", "tracecode", "--", "/usr/bin/tracekeys", "init", "--dir",
                    ETC + "/keys")
            self.assertEqual(r.returncode, 0, r.stderr)
            pki = self.make_tls()
            # The unit's user, environment file and command; the addresses
            # moved to this test's (ports the kernel picks, the private Redis).
            unit = read(UNIT)
            user = re.search(r"^User=(\S+)$", unit, re.M).group(1)
            exec_start = re.search(r"^ExecStart=(\S+)$", unit, re.M).group(1)
            env = {"PATH": "/usr/bin:/bin"}
            for line in read(ENV_FILE).splitlines():
                m = re.match(r"^([A-Z_]+)=(.*)$", line.strip())
                if m:
                    env[m.group(1)] = m.group(2)
            self.assertEqual(env["TRACESVC_KEYS"], ETC + "/keys")
            env.update(TRACESVC_REDIS="unix:" + sock, TRACESVC_GRPC="127.0.0.1:0",
                       TRACESVC_HTTP="127.0.0.1:0", TRACESVC_ADMIN="127.0.0.1:0",
                       TRACESVC_THREADS="2")
            trace = os.path.join(self.dir, "strace.txt")
            log_path = os.path.join(self.dir, "svc.log")
            log = open(log_path, "w")
            self.addCleanup(log.close)
            svc = subprocess.Popen(
                ["strace", "-f", "-qq", "-o", trace, "setpriv", "--reuid", user, "--regid", user,
                 "--init-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all",
                 "--", "sh", "-c", 'umask 0077; exec "$0"', exec_start],
                env=env, stdout=log, stderr=subprocess.STDOUT)
            text = ""
            for _ in range(3000):
                text = read(log_path)
                if "http-port" in text or svc.poll() is not None:
                    break
                time.sleep(0.01)
            ports = {k: int(v) for k, v in re.findall(r"(port|admin-port|http-port) (\d+)", text)}
            self.assertIn("http-port", ports, text)
            self.assertIn("mTLS", text)
            # Serves all three listeners: ready, a scan page, a gRPC call
            # over mTLS (a malformed code: answered, not genuine, exit 1).
            deadline = time.time() + 20
            while True:
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % ports["admin-port"],
                                                timeout=5) as resp:
                        self.assertEqual(resp.status, 200)
                        break
                except Exception:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.1)
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % ports["admin-port"],
                                        timeout=5) as resp:
                self.assertIn(b"tracesvc_build_info{", resp.read())
            r = run("/usr/bin/tracectl", "--addr", "127.0.0.1:%d" % ports["port"], "--ca",
                    os.path.join(pki, "ca.pem"), "--cert", os.path.join(pki, "platform.pem"),
                    "--key", os.path.join(pki, "platform.key"), "verify", "NOT-A-CODE")
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("MALFORMED", r.stdout)
            # SIGTERM, as systemctl stop sends it: drained, exit 0.
            pid = int(run("pgrep", "-u", user, "-f", "^" + exec_start).stdout.split()[0])
            os.kill(pid, signal.SIGTERM)
            self.assertEqual(svc.wait(timeout=30), 0, read(log_path))
            svc = None
            self.assertIn('msg="stopped"', read(log_path))
            # Every system call it made is one the unit's filter allows.
            started, calls = strace_calls(trace, exec_start)
            self.assertTrue(started, "no execve of " + exec_start + " in the trace")
            allowed = expand_filter("@system-service") - expand_filter("@privileged")
            self.assertGreater(len(calls), 20)
            print("\n  %d distinct system calls, all in @system-service and not @privileged"
                  % len(calls), file=sys.stderr)
            self.assertEqual(sorted(calls - allowed), [],
                             "system calls the unit's SystemCallFilter would refuse")
        finally:
            if svc:
                svc.kill()
                svc.wait()
            redis.terminate()
            redis.wait(timeout=10)

    def test_zz_upgrade_keeps_the_environment_and_purge_keeps_the_keyring(self):
        with open(ENV_FILE, "a") as f:
            f.write("TRACESVC_NODE_ID=edited-by-the-operator\n")
        r = run("dpkg", "-i", "--force-confold", DEB)  # an upgrade: same package again
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("edited-by-the-operator", read(ENV_FILE))
        os.makedirs(ETC + "/keys", exist_ok=True)
        with open(ETC + "/keys/key-999", "w") as f:  # stands for a real keyring
            f.write("x")
        r = run("dpkg", "--purge", "tracecode")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists("/usr/bin/tracesvc"))
        self.assertFalse(os.path.exists(ENV_FILE))
        self.assertTrue(os.path.exists(ETC + "/keys/key-999"))


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.path.exists(sys.argv[1]):
        sys.exit("usage: test_package.py PACKAGE.deb")
    if os.getuid() != 0:
        print("SKIP: installing a package needs root")
        sys.exit(77)
    if run("dpkg-query", "-W", "-f=${Status}", "tracecode").stdout.startswith("install ok"):
        print("SKIP: a tracecode package is installed on this machine; not touching it")
        sys.exit(77)
    DEB = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

#!/usr/bin/python3
"""tracesvc's command line, without Redis: --help and -h (stdout, exit 0)
from the one flag table, --version naming the build, values out of range
refused naming the flag or the environment variable they came from,
--insecure refused off loopback; the manual pages (--man) of all three
programs.
"""
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcfixture as F  # noqa: E402


class Flags(unittest.TestCase):
    def test_help_version_and_flag_errors(self):
        """One flag table: --help (stdout, exit 0) lists every flag with its
        range and default; --version names the build; a value out of range
        is refused naming the flag or the variable it came from."""
        exe = F.binary("tracesvc")
        for h in ("--help", "-h"):
            p = subprocess.run([exe, h], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0)
            self.assertEqual(p.stderr, "")
            for flag in ("--redis URL", "--max-staleness SECONDS", "--limit SCOPE:NAME=VALUE",
                         "--redis-start-timeout SECONDS", "[1..86400 seconds] (default 5)"):
                self.assertIn(flag, p.stdout)
        p = subprocess.run([exe, "--version"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^tracesvc \d+\.\d+\.\d+ \(commit \S+; gRPC core \S+, "
                                   r"OpenSSL \S+, hiredis \S+\)\n$")
        base = [exe, "--redis", "unix:/nonexistent", "--grpc", "127.0.0.1:0", "--keys", "/nonexistent"]
        p = subprocess.run(base + ["--heartbeat", "1"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--heartbeat '1' must be 50..600000 ms", p.stderr)
        env = dict(os.environ, TRACESVC_MAX_STALENESS="0")
        p = subprocess.run(base, capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 2)
        self.assertIn("TRACESVC_MAX_STALENESS '0' must be 1..86400 seconds", p.stderr)
        p = subprocess.run(base + ["--bogus"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage: tracesvc", p.stderr)

    def test_insecure_refuses_non_loopback(self):
        work = F.workdir()
        keys = F.keyring(work)
        p = subprocess.run([F.Service(work, "x", "unix:/nonexistent", keys).cmd[0], "--redis",
                            "unix:/nonexistent", "--keys", keys, "--grpc", "0.0.0.0:0",
                            "--insecure"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("'0.0.0.0:0' is not loopback", p.stderr)
        shutil.rmtree(work, ignore_errors=True)


    def test_keyring_as_a_kubernetes_secret(self):
        """A keyring laid out as a Kubernetes Secret volume (links to ..data,
        files readable by an fsGroup) is refused, naming the option; with
        --keys-allow-group-read it loads (the node then waits for Redis)."""
        work = F.workdir()
        keys = F.keyring(work)
        stamp = os.path.join(keys, "..2026_12_03_10_00_00.1")
        os.mkdir(stamp)
        for name in ("key-001", "key-002"):
            os.rename(os.path.join(keys, name), os.path.join(stamp, name))
            os.chmod(os.path.join(stamp, name), 0o440)
            os.symlink(os.path.join("..data", name), os.path.join(keys, name))
        os.symlink("..2026_12_03_10_00_00.1", os.path.join(keys, "..data"))
        base = [F.binary("tracesvc"), "--redis", "unix:" + os.path.join(work, "none.sock"),
                "--grpc", "127.0.0.1:0", "--insecure", "--keys", keys,
                "--redis-start-timeout", "1"]
        p = subprocess.run(base, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is a symbolic link (a Kubernetes Secret volume?)", p.stderr)
        self.assertIn("start with --keys-allow-group-read", p.stderr)
        self.assertEqual(F.logfmt_problems(p.stderr), [])
        p = subprocess.run(base + ["--keys-allow-group-read"], capture_output=True, text=True,
                           timeout=30)
        self.assertNotIn("keyring", p.stderr)  # loaded; what stops it is Redis
        self.assertIn("redis", p.stderr)
        env = dict(os.environ, TRACESVC_KEYS_ALLOW_GROUP_READ="1")
        p = subprocess.run(base, capture_output=True, text=True, timeout=30, env=env)
        self.assertNotIn("keyring", p.stderr)
        shutil.rmtree(work, ignore_errors=True)

    def test_manual_pages_from_the_option_tables(self):
        """--man writes each program's manual page from the table its --help
        comes from: it lints clean in groff and names every option --help
        does (the package installs these pages)."""
        for prog, section in (("tracesvc", "8"), ("tracectl", "1"), ("tracekeys", "1")):
            p = subprocess.run([F.binary(prog), "--man"], capture_output=True, text=True)
            self.assertEqual((p.returncode, p.stderr), (0, ""), prog)
            self.assertTrue(p.stdout.startswith(".TH %s %s " % (prog.upper(), section)), prog)
            lint = subprocess.run(["groff", "-man", "-ww", "-z"], input=p.stdout,
                                  capture_output=True, text=True)
            self.assertEqual((lint.returncode, lint.stderr), (0, ""), prog)
            helptext = subprocess.run([F.binary(prog), "--help"], capture_output=True,
                                      text=True).stdout
            options = set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]+)", helptext))
            self.assertGreater(len(options), 3, prog)
            for opt in options:
                self.assertIn("\\-\\-" + opt.replace("-", "\\-"), p.stdout, prog + " --" + opt)
        page = subprocess.run([F.binary("tracesvc"), "--man"], capture_output=True,
                              text=True).stdout
        for var in ("TRACESVC_REDIS", "TRACESVC_KEYS_ALLOW_GROUP_READ", "SIGHUP", "EXIT STATUS"):
            self.assertIn(var, page)
        self.assertNotIn("TRACESVC_LIMIT\n", page)  # --limit has no variable


if __name__ == "__main__":
    unittest.main(verbosity=2)

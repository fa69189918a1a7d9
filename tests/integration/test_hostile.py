#!/usr/bin/python3
"""Hostile inputs: each gets a clear per-input error or `unknown`, the run goes on, nothing
hangs and memory stays bounded. The README's matrix lists what each one gets."""
import io
import os
import resource
import subprocess
import sys
import unittest
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BINARY, EICAR, PssTestCase  # noqa: E402


class HostileInputsTest(PssTestCase):
    def analyze(self, *inputs, timeout=300, args=()):
        r, got = self.analyze_json(*args, *inputs, timeout=timeout)
        return r, {os.path.basename(k.rstrip("/")): v["analysis"] for k, v in got.items()}

    def test_zip_bomb_is_answered_and_memory_stays_bounded(self):
        # 1 GiB of zeros in one member, ~1 MiB compressed; clamd's limits stop it.
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            with z.open("zeros.bin", "w", force_zip64=True) as m:
                chunk = b"\0" * (1 << 20)
                for _ in range(1024):
                    m.write(chunk)
        bomb = self.write("bomb.zip", buf.getvalue())
        clean = self.write("clean.txt", b"clean")
        r, got = self.analyze(bomb, clean)  # a run that hangs fails in self.pss
        self.assertIn(got["bomb.zip"]["result"], ("benign", "unknown", "suspicious"), r)
        self.assertEqual(got["clean.txt"]["result"], "benign")
        self.assertLess(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, 1 << 20,
                        "a child used more than 1 GiB")  # KiB

    def test_a_file_over_clamds_limit_is_unknown_not_benign(self):
        big = os.path.join(self.tmp, "big.bin")
        with open(big, "wb") as f:
            f.truncate(150 << 20)  # over clamd's MaxFileSize (100M)
        r, got = self.analyze(big)
        self.assertEqual(got["big.bin"]["result"], "unknown", r)
        self.assertEqual(got["big.bin"]["error"],
                         "clamd did not scan it all: its MaxFileSize limit was exceeded")

    def test_sparse_2gb_file_is_refused_by_size(self):
        big = os.path.join(self.tmp, "sparse.bin")
        with open(big, "wb") as f:
            f.truncate(2 << 30)
        r, got = self.analyze(big, self.write("ok.txt", b"ok"), args=("--max-size", "512M"))
        self.assertEqual(got["sparse.bin"]["result"], "unknown")
        self.assertIn("larger than", got["sparse.bin"]["error"])
        self.assertEqual(got["ok.txt"]["result"], "benign")

    def test_fifo_device_symlink_loop_and_directory_are_errors_not_hangs(self):
        fifo = os.path.join(self.tmp, "fifo")
        os.mkfifo(fifo)
        loop = os.path.join(self.tmp, "loop")
        os.symlink(loop, loop)
        # Refused for what they are, before anything reads them: never a scan that times out
        # (a run that hangs fails in self.pss).
        r, got = self.analyze(fifo, "/dev/zero", loop, self.write("ok.txt", b"ok"))
        self.assertEqual(r.code, 2, r)
        for name, error in (("fifo", "not a regular file (FIFO)"),
                            ("zero", "not a regular file (character device)"),
                            ("loop", "Too many levels of symbolic links")):
            self.assertEqual(got[name]["result"], "unknown", (name, got[name]))
            self.assertIn(error, got[name]["error"], name)
        self.assertEqual(got["ok.txt"]["result"], "benign")

    def test_symlink_loop_inside_a_directory_does_not_loop_the_walk(self):
        d = os.path.join(self.tmp, "tree")
        os.makedirs(os.path.join(d, "sub"))
        os.symlink(d, os.path.join(d, "sub", "back"))
        self.write("tree/sub/eicar.com", EICAR)
        r, got = self.analyze(d)
        self.assertEqual(r.code, 1, r)
        self.assertEqual(got["eicar.com"]["result"], "malicious")

    def test_file_names_with_every_byte(self):
        d = os.path.join(self.tmp, "names")
        os.makedirs(d)
        names = []
        for b in range(1, 256):
            if b == ord("/"):
                continue
            name = bytes([b]) + b"-" + bytes([b])
            names.append(name)
            with open(os.path.join(os.fsencode(d), name), "wb") as f:
                f.write(EICAR if b == 0xFF else b"clean")
        proc = subprocess.run([BINARY, "analyze", "--format", "json", d], capture_output=True,
                              env=self.env, cwd=self.tmp, timeout=300)
        lines = [l for l in proc.stdout.splitlines() if l.strip()]
        self.assertEqual(len(lines), len(names), proc.stderr.decode(errors="replace")[-2000:])
        self.assertEqual(proc.returncode, 1)
        import json
        results = [json.loads(l)["analysis"]["result"] for l in lines]
        self.assertEqual(results.count("malicious"), 1)
        self.assertEqual(results.count("benign"), len(names) - 1)

    def test_a_directory_vanishing_mid_walk(self):
        d = os.path.join(self.tmp, "vanish")
        for i in range(300):
            self.write(f"vanish/d{i % 30}/f{i}.txt", b"clean %d" % i)
        import shutil
        proc = subprocess.Popen([BINARY, "analyze", "--format", "json", "--concurrency", "1", d],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                                cwd=self.tmp)
        first = proc.stdout.readline()  # the run is under way: the first answer is out
        shutil.rmtree(os.path.join(d, "d29"), ignore_errors=True)
        rest, err = proc.communicate(timeout=300)
        out = first + rest
        self.assertIn(proc.returncode, (0, 2), err)
        self.assertGreater(len(out.splitlines()), 250)  # the run went on

    def test_unreadable_file(self):
        if os.geteuid() == 0:
            path = self.write("noperm.txt", b"x")
            os.chmod(path, 0)
            # root reads anything: the file is simply scanned
            r, got = self.analyze(path)
            self.assertEqual(got["noperm.txt"]["result"], "benign")
        else:
            path = self.write("noperm.txt", b"x")
            os.chmod(path, 0)
            r, got = self.analyze(path)
            self.assertEqual(got["noperm.txt"]["result"], "unknown")
            self.assertIn("Permission denied", got["noperm.txt"]["error"])


if __name__ == "__main__":
    unittest.main(verbosity=2)

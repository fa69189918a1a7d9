"""Installing pssupervise: `meson install` into a DESTDIR, run from elsewhere without the source
tree; and the Debian package built by env/package, checked by lintian, installed with dpkg -i,
used from /usr/bin, and removed."""
import json
import os
import re
import shutil
import subprocess
import unittest

from common import BINARY, EICAR, PATIENCE, SOURCE_ROOT, PssTestCase

BUILD_DIR = os.path.dirname(BINARY)
COMMANDS = ["analyze", "engines", "worker", "webhook", "icap", "update", "commands"]
UNITS = ["pssupervise-worker@.service", "pssupervise-webhook.service", "pssupervise-icap.service"]


def build_option(name):
    out = subprocess.run(["meson", "introspect", "--buildoptions", BUILD_DIR], check=True,
                         capture_output=True, text=True).stdout
    return next(o["value"] for o in json.loads(out) if o["name"] == name)


class InstallTest(PssTestCase):
    def installed_run(self, exe, *args):
        # From a folder of its own, with no hint of where the source tree is.
        env = {k: v for k, v in self.env.items() if not k.startswith("PSS_ENGINES")}
        return subprocess.run([exe, *args], cwd=self.tmp, env=env, capture_output=True,
                              text=True, timeout=PATIENCE)

    def test_destdir_install_finds_its_engines_without_the_source_tree(self):
        dest = os.path.join(self.tmp, "dest")
        r = subprocess.run(["meson", "install", "-C", BUILD_DIR, "--destdir", dest,
                            "--no-rebuild", "--quiet"], capture_output=True, text=True,
                           timeout=PATIENCE)
        self.assertEqual(r.returncode, 0, r.stderr)
        prefix = build_option("prefix")
        root = dest + prefix
        exe = os.path.join(root, "bin", "pssupervise")
        self.assertTrue(os.access(exe, os.X_OK), exe)
        engines = os.path.join(root, "share", "pssupervise", "engines")
        self.assertTrue(os.path.isfile(os.path.join(engines, "clamav", "engine.json")))

        r = self.installed_run(exe, "-v", "engines")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(os.path.join(engines, "clamav"), r.stdout)
        self.assertNotIn(os.path.join(SOURCE_ROOT, "engines"), r.stdout)

        sample = self.write("eicar.com", EICAR)
        r = self.installed_run(exe, "--engine", "clamav", "analyze", sample)
        self.assertEqual(r.returncode, 1, r.stderr)  # malicious, by the installed database
        self.assertIn("malicious", r.stdout)

        # The man page has every command and the options of each.
        page = os.path.join(root, "share", "man", "man1", "pssupervise.1")
        with open(page) as f:
            text = f.read()
        for command in COMMANDS:
            self.assertIn(f'.SS "pssupervise {command}"', text)
        for option in ["\\-\\-cache", "\\-\\-body\\-limit", "\\-\\-on\\-unknown", "\\-\\-broker"]:
            self.assertIn(option, text)
        r = subprocess.run(["man", "--warnings", "-l", "-Tutf8", page], capture_output=True,
                           text=True, timeout=PATIENCE, env=dict(self.env, MANWIDTH="100"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.strip(), "", "the page has roff warnings")
        # Bold and underline come as overstrikes off a terminal ("p\bps\bs..."): drop them.
        self.assertIn("pssupervise icap", re.sub(".\b", "", r.stdout))

        units = os.path.join(dest, "lib", "systemd", "system") if prefix == "/usr" else \
            os.path.join(root, "lib", "systemd", "system")
        for unit in UNITS:
            with open(os.path.join(units, unit)) as f:
                text = f.read()
            self.assertIn(f"ExecStart={prefix}/bin/pssupervise", text)
            self.assertIn("Type=notify", text)
            self.assertIn("WatchdogSec=", text)
        self.assertTrue(os.path.isfile(os.path.join(dest, "etc", "default", "pssupervise")))


class PackageTest(PssTestCase):
    """Builds the .deb and installs it on this machine (as root), then removes it."""

    def setUp(self):
        super().setUp()
        self.assertEqual(os.geteuid(), 0, "dpkg -i needs root: run the tests as root")
        self.assertEqual(build_option("prefix"), "/usr",
                         f"{BUILD_DIR} must be configured with --prefix=/usr (env/build does)")

    def tearDown(self):
        subprocess.run(["dpkg", "--purge", "pssupervise"], capture_output=True, timeout=PATIENCE)
        super().tearDown()

    def dpkg_installed(self):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "pssupervise"],
                           capture_output=True, text=True)
        return r.returncode == 0 and "install ok installed" in r.stdout

    def test_build_lint_install_use_and_remove(self):
        # A run cut short (a killed CI job) may have left it installed: start from none.
        subprocess.run(["dpkg", "--purge", "pssupervise"], capture_output=True, timeout=PATIENCE)
        self.assertFalse(self.dpkg_installed(), "pssupervise cannot be purged from this machine")
        out = os.path.join(self.tmp, "out")
        r = subprocess.run([os.path.join(SOURCE_ROOT, "env", "package"), out],
                           capture_output=True, text=True, timeout=1800,
                           env=dict(self.env, PSS_PACKAGE_BUILD=BUILD_DIR))
        self.assertEqual(r.returncode, 0, r.stderr)
        deb = r.stdout.strip().splitlines()[-1]
        self.assertTrue(deb.endswith("_amd64.deb") and os.path.isfile(deb), deb)

        info = subprocess.run(["dpkg-deb", "--field", deb, "Depends", "Recommends"],
                              capture_output=True, text=True, check=True).stdout
        for dep in ["clamav-daemon", "libmagic1", "libcurl4", "adduser"]:
            self.assertIn(dep, info)
        self.assertIn("wine", info)

        lint = subprocess.run(["lintian", "--fail-on", "error", deb], capture_output=True,
                              text=True, timeout=1800)
        errors = [l for l in lint.stdout.splitlines() if l.startswith("E:")]
        self.assertEqual(errors, [], lint.stdout + lint.stderr)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)

        r = subprocess.run(["dpkg", "-i", deb], capture_output=True, text=True,
                           timeout=PATIENCE, env=dict(self.env, DEBIAN_FRONTEND="noninteractive"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(self.dpkg_installed())
        r = subprocess.run(["getent", "passwd", "pssupervise"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, "postinst did not create the user pssupervise")

        env = {k: v for k, v in self.env.items() if not k.startswith("PSS_ENGINES")}
        r = subprocess.run(["/usr/bin/pssupervise", "-v", "engines"], cwd=self.tmp, env=env,
                           capture_output=True, text=True, timeout=PATIENCE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("/usr/share/pssupervise/engines/clamav", r.stdout)
        sample = self.write("eicar.com", EICAR)
        r = subprocess.run(["/usr/bin/pssupervise", "--engine", "clamav", "analyze", sample],
                           cwd=self.tmp, env=env, capture_output=True, text=True,
                           timeout=PATIENCE)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("malicious", r.stdout)

        # Every unit passes systemd's own check, against the installed binary.
        for unit in UNITS:
            path = os.path.join("/lib/systemd/system", unit)
            self.assertTrue(os.path.isfile(path), path)
            r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True,
                               text=True, timeout=PATIENCE)
            self.assertEqual(r.returncode, 0, f"{unit}: {r.stdout}{r.stderr}")
        r = subprocess.run(["man", "-w", "pssupervise"], capture_output=True, text=True)
        self.assertEqual(r.stdout.strip(), "/usr/share/man/man1/pssupervise.1.gz")

        r = subprocess.run(["dpkg", "--purge", "pssupervise"], capture_output=True, text=True,
                           timeout=PATIENCE)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(self.dpkg_installed())
        for gone in ["/usr/bin/pssupervise", "/usr/share/pssupervise",
                     "/lib/systemd/system/pssupervise-webhook.service",
                     "/etc/default/pssupervise", "/usr/share/doc/pssupervise"]:
            self.assertFalse(os.path.exists(gone), f"{gone} left after dpkg --purge")


# What the units' hardening does to the filesystem and the user (env/systemd/hardening.conf),
# played without systemd: / read-only but the unit's folders (ProtectSystem=strict), /root
# hidden (ProtectHome), a private /tmp (PrivateTmp), User=pssupervise, NoNewPrivileges. $1: the
# unit's name, $2: the folder of its state, $3: the tree under test; the rest: the command.
HARDENED = r"""
set -e
unit=$1; state=$2; tree=$3; shift 3
mount --make-rprivate /
for d in "$state" /var/cache/pssupervise "/run/$unit"; do mount --bind "$d" "$d"; done
# The tree under test (source and build) may itself be under /tmp: kept visible in the
# private /tmp, as an installed binary's folders would be.
mount -t tmpfs tmpfs /mnt
mkdir /mnt/tree
mount --bind "$tree" /mnt/tree
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p "$tree"
mount --bind /mnt/tree "$tree"
mount -t tmpfs -o mode=0755 tmpfs /root
mount -o remount,bind,ro /
exec setpriv --reuid pssupervise --regid pssupervise --init-groups --no-new-privs env -i PATH=/usr/bin:/bin HOME="$state" XDG_STATE_HOME="$state" XDG_DATA_HOME="$state" XDG_CACHE_HOME=/var/cache XDG_CONFIG_HOME=/etc XDG_RUNTIME_DIR="/run/$unit" "$@"
"""


class HardeningTest(PssTestCase):
    def test_clamd_wine_and_yara_work_under_the_units_hardening(self):
        self.assertEqual(os.geteuid(), 0, "the hardening is played with mount namespaces: root")
        with open(os.path.join(SOURCE_ROOT, "env", "systemd", "hardening.conf")) as f:
            conf = f.read()
        for line in ["User=pssupervise", "ProtectSystem=strict", "ProtectHome=yes",
                     "PrivateTmp=yes", "NoNewPrivileges=yes"]:
            self.assertIn(line + "\n", conf)
        if subprocess.run(["getent", "passwd", "pssupervise"],
                          capture_output=True).returncode != 0:
            subprocess.run(["adduser", "--system", "--group", "--quiet", "--no-create-home",
                            "--home", "/var/lib/pssupervise", "pssupervise"], check=True)
        unit = "pssupervise-test-" + os.path.basename(self.tmp)
        state = os.path.join("/var/lib/pssupervise", unit)
        folders = [state, "/var/cache/pssupervise", os.path.join("/run", unit)]
        self.addCleanup(lambda: [shutil.rmtree(d, ignore_errors=True) for d in
                                 (state, os.path.join("/run", unit))])
        for d in folders:
            os.makedirs(d, exist_ok=True)
            shutil.chown(d, "pssupervise", "pssupervise")
        os.chmod(os.path.join("/run", unit), 0o700)
        for suffix in ["", "-wal", "-shm"]:  # the cache the units share: made anew here
            if os.path.exists("/var/cache/pssupervise/results.sqlite" + suffix):
                os.remove("/var/cache/pssupervise/results.sqlite" + suffix)
        # The samples where the service user can read them (/tmp is private to it).
        samples = os.path.join("/var/tmp", unit)
        self.addCleanup(shutil.rmtree, samples, True)
        os.makedirs(samples)
        for name, data in [("eicar.com", EICAR), ("clean.txt", b"hello\n")]:
            with open(os.path.join(samples, name), "wb") as f:
                f.write(data)
        os.chmod(samples, 0o755)
        tree = os.path.commonpath([SOURCE_ROOT, os.path.realpath(BUILD_DIR)])
        cmd = ["unshare", "--mount", "sh", "-c", HARDENED, "sh", unit, state, tree, BINARY,
               "--engine", "clamav,testvendor,yara", "analyze", samples]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)  # malicious found, no error
        lines = r.stdout.splitlines()
        for engine in ["clamav", "testvendor", "yara"]:
            self.assertIn(f"{samples}/eicar.com: {engine}: malicious", "\n".join(lines))
            self.assertIn(f"{samples}/clean.txt: {engine}: benign", lines)
        # The Wine prefix and the cache are where the unit lets them be.
        self.assertTrue(os.path.isdir(os.path.join(state, "pssupervise", "testvendor")))
        self.assertTrue(os.path.isfile("/var/cache/pssupervise/results.sqlite"))


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""livemig qemu-source / qemu-dest against two real QEMUs (TCG, 256 MiB in
a shared memory-backend-file in /dev/shm, no disk): migrations with none
and zstd over 1 and 4 channels, a destination killed mid-way, a device
state the destination cannot load, and the preconditions (exit 2).
Skipped (77) when qemu-system-x86_64 is missing."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

LIVEMIG = os.environ.get("LIVEMIG", "build/livemig")
QEMU = shutil.which("qemu-system-x86_64")
MIB = 1 << 20
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, flush=True)
    return cond


class Qmp:
    def __init__(self, path):
        for _ in range(100):
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.05)
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())
        self.run("qmp_capabilities")

    def run(self, cmd, **args):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.f.write(json.dumps(msg) + "\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError(cmd)
            m = json.loads(line)
            if "event" not in m:
                return m.get("return", m.get("error"))

    def status(self):
        return self.run("query-status")["status"]

    def close(self):
        self.s.close()


class Vm:
    """A QEMU with its RAM in /dev/shm/<tag>.ram and QMP at <dir>/<tag>.qmp
    for livemig (a QMP monitor serves one client at a time); the test's own
    is another one."""

    def __init__(self, d, tag, mem=256, share="on", incoming=False, extra=()):
        self.ram = "/dev/shm/livemig-test-%d-%s.ram" % (os.getpid(), tag)
        self.qmp_path = os.path.join(d, tag + ".qmp")
        cmd = [QEMU, "-accel", "tcg", "-m", "%dM" % mem, "-object",
               "memory-backend-file,id=mem0,size=%dM,mem-path=%s,share=%s" % (mem, self.ram, share),
               "-machine", "pc,memory-backend=mem0", "-display", "none", "-nodefaults",
               "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
               "-qmp", "unix:%s-test,server=on,wait=off" % self.qmp_path] + list(extra)
        if incoming:
            cmd += ["-incoming", "defer"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.qmp = Qmp(self.qmp_path + "-test")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if os.path.exists(self.ram):
            os.unlink(self.ram)


def sha(path, off=0, size=None):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(off)
        left = size
        while left is None or left > 0:
            b = f.read(MIB if left is None else min(MIB, left))
            if not b:
                break
            h.update(b)
            if left is not None:
                left -= len(b)
    return h.hexdigest()


def livemig(*args, env=None):
    return subprocess.Popen([LIVEMIG] + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_socket(path, proc, timeout=10):
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None and not os.path.exists(path):
        time.sleep(0.02)


def pair(d, tag, src_args=(), dst_args=(), env=None):
    """Starts qemu-dest, then qemu-source; returns both processes."""
    sock = os.path.join(d, tag + ".sock")
    dst = livemig("qemu-dest", "--qmp", os.path.join(d, "dst.qmp"), "--listen", "unix:" + sock,
                  "--json", os.path.join(d, tag + "-dst.json"), *dst_args, env=env)
    wait_socket(sock, dst)
    src = livemig("qemu-source", "--qmp", os.path.join(d, "src.qmp"), "--connect", "unix:" + sock,
                  "--json", os.path.join(d, tag + "-src.json"), *src_args)
    return src, dst


def migrate(d, method, channels):
    tag = "%s-%d" % (method, channels)
    src_vm, dst_vm = Vm(d, "src"), Vm(d, "dst", incoming=True)
    try:
        time.sleep(0.3)  # the BIOS runs a little: its memory is not all zero
        snap = os.path.join(d, "snap")
        env = dict(os.environ, LIVEMIG_X_RAM_SNAPSHOT=snap)
        src, dst = pair(d, tag, ("--set", "multifd-compression=" + method,
                                 "--set", "multifd-channels=%d" % channels), env=env)
        so, se = src.communicate(timeout=120)
        do, de = dst.communicate(timeout=120)
        if not check(src.returncode == 0 and dst.returncode == 0,
                     "%s: exit %d/%d\n%s\n%s" % (tag, src.returncode, dst.returncode, se, de)):
            return
        check(dst_vm.qmp.status() == "running", tag + ": destination QEMU running")
        check(src_vm.qmp.status() == "postmigrate", tag + ": source QEMU in postmigrate")
        # The destination's RAM when the device state had loaded (before it
        # ran) equals the source's, stopped since STOP.
        check(sha(snap + ".mem0") == sha(src_vm.ram), tag + ": RAM files byte-equal")
        os.unlink(snap + ".mem0")
        sj = json.load(open(os.path.join(d, tag + "-src.json")))
        dj = json.load(open(os.path.join(d, tag + "-dst.json")))
        q = sj["qemu"]
        check(sj["status"] == "completed" and sj["verify"]["match"] is True, tag + ": verified")
        check(sj["device-state"]["bytes"] > 0 and
              sj["device-state"]["bytes"] == dj["qemu"]["device-state-bytes"],
              tag + ": device-state bytes")
        check(q["mode"] == "stop-and-copy" and not q["shim"], tag + ": stop-and-copy")
        parts = q["downtime-parts"]
        check(set(parts) == {"final-ram-pass-ms", "verify-ms", "device-state-ms", "resume-ms"}
              and sum(parts.values()) == q["downtime-ms"], tag + ": downtime parts")
        exact = (dj["qemu"]["resume-us"] - q["stop-us"]) / 1000
        check(0 < exact <= q["downtime-ms"] + 1,
              "%s: STOP->RESUME %.1f ms within %d" % (tag, exact, q["downtime-ms"]))
        check(q["query-migrate"]["status"] == "completed", tag + ": QEMU's query-migrate")
        print("%s: ok, downtime %.1f ms, parts %s, device state %d bytes" %
              (tag, exact, parts, sj["device-state"]["bytes"]), flush=True)
    finally:
        src_vm.stop()
        dst_vm.stop()


def killed_destination(d):
    src_vm, dst_vm = Vm(d, "src"), Vm(d, "dst", incoming=True)
    try:
        # 64 MiB of data the guest never touches, sent at 16 MB/s: 4 s.
        with open(src_vm.ram, "r+b") as f:
            f.seek(128 * MIB)
            f.write(os.urandom(64 * MIB))
        before = sha(src_vm.ram, 128 * MIB, 64 * MIB)
        src, dst = pair(d, "kill", ("--set", "max-bandwidth=16M"))
        time.sleep(1.5)
        dst.kill()
        dst.wait()
        so, se = src.communicate(timeout=60)
        check(src.returncode == 1, "killed: source exit %d\n%s" % (src.returncode, se))
        check(src_vm.qmp.status() == "running", "killed: source QEMU running again")
        check(sha(src_vm.ram, 128 * MIB, 64 * MIB) == before, "killed: source RAM unchanged")
        check(dst_vm.qmp.status() == "inmigrate", "killed: destination QEMU still waiting")
    finally:
        src_vm.stop()
        dst_vm.stop()


def load_fails(d):
    """The source has a device the destination lacks: QEMU's load fails,
    after the source QEMU's migrate completed - it resumes from postmigrate."""
    src_vm = Vm(d, "src", extra=("-device", "virtio-rng-pci"))
    dst_vm = Vm(d, "dst", incoming=True)
    try:
        src, dst = pair(d, "load", (), ("--set", "net-timeout=2"))
        so, se = src.communicate(timeout=60)
        do, de = dst.communicate(timeout=60)
        check(src.returncode == 1 and dst.returncode == 1,
              "load: exit %d/%d\n%s\n%s" % (src.returncode, dst.returncode, se, de))
        check("device state" in se, "load: the source says why: " + se)
        check(src_vm.qmp.status() == "running", "load: source QEMU running again")
        dst_vm.proc.wait(timeout=10)
        check(dst_vm.proc.returncode is not None, "load: destination QEMU quit")
    finally:
        src_vm.stop()
        dst_vm.stop()


def preconditions(d):
    # A private (share=off) backend: livemig cannot see the guest's RAM.
    src_vm, dst_vm = Vm(d, "src", share="off"), Vm(d, "dst", incoming=True)
    try:
        src = livemig("qemu-source", "--qmp", src_vm.qmp_path, "--connect", "unix:/nonexistent")
        _, se = src.communicate(timeout=30)
        check(src.returncode == 2 and "is not shared" in se and se.count("\n") == 1,
              "share=off: exit %d: %s" % (src.returncode, se))
        check(src_vm.qmp.status() == "running", "share=off: source untouched")
    finally:
        src_vm.stop()
        dst_vm.stop()
    # Sizes differ.
    src_vm, dst_vm = Vm(d, "src"), Vm(d, "dst", mem=128, incoming=True)
    try:
        src, dst = pair(d, "size")
        _, se = src.communicate(timeout=60)
        _, de = dst.communicate(timeout=60)
        check(src.returncode == 2 and dst.returncode == 2 and "registered" in de,
              "sizes: exit %d/%d\n%s\n%s" % (src.returncode, dst.returncode, se, de))
        check(src_vm.qmp.status() == "running", "sizes: source QEMU running")
        check(dst_vm.qmp.status() == "inmigrate", "sizes: destination QEMU untouched")
    finally:
        src_vm.stop()
        dst_vm.stop()
    # The destination QEMU is not waiting for a migration.
    dst_vm = Vm(d, "dst")
    try:
        dst = livemig("qemu-dest", "--qmp", dst_vm.qmp_path, "--listen", "unix:/tmp/x-unused")
        _, de = dst.communicate(timeout=30)
        check(dst.returncode == 2 and "-incoming defer" in de and de.count("\n") == 1,
              "no -incoming: exit %d: %s" % (dst.returncode, de))
    finally:
        dst_vm.stop()


def main():
    if not QEMU:
        print("SKIP: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
        return 77
    with tempfile.TemporaryDirectory(prefix="livemig-qemu-") as d:
        preconditions(d)
        for method, channels in (("none", 1), ("zstd", 4), ("none", 4), ("zstd", 1)):
            migrate(d, method, channels)
        killed_destination(d)
        load_fails(d)
    print("failures:", failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

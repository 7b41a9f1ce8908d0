# SPDX-License-Identifier: MIT
"""Helpers for tests that run a real QEMU: the boot-sector test guest
(tests/qemu/boot.S) under TCG with its RAM in a shared file, started with or
without liblivemig-track.so, as a migration source or destination, and a
QMP client (plain JSON over the unix socket: greeting, qmp_capabilities,
commands, events).

Paths come from the environment (tests/integration/meson.build sets them):
LM_TRACK_LIB (liblivemig-track.so), LM_BOOT_IMG (boot.img)."""
import json
import os
import shutil
import socket
import struct
import subprocess
import time

QEMU = os.environ.get("LM_QEMU", "qemu-system-x86_64")
TRACK_LIB = os.environ.get("LM_TRACK_LIB", "build/liblivemig-track.so")
BOOT_IMG = os.environ.get("LM_BOOT_IMG", "build/tests/qemu/boot.img")
PAGE = 4096
MiB = 1 << 20

# Where boot.S keeps its parameters, and where each page's sweep counter is.
_HOT_START, _HOT_PAGES, _SPIN = 0x1F0, 0x1F4, 0x1F8
COUNTER_OFFSET = 0


def have_qemu():
    return shutil.which(QEMU) is not None


def boot_image(path, hot_start=16 * MiB, hot_pages=16384, spin=0):
    """A copy of boot.img at path with the guest's parameters patched in."""
    img = bytearray(open(BOOT_IMG, "rb").read())
    assert len(img) == 512 and img[510:] == b"\x55\xaa"
    struct.pack_into("<III", img, _HOT_START, hot_start, hot_pages, spin)
    with open(path, "wb") as f:
        f.write(img)
    return path


def hot_counters(ram_path, hot_start=16 * MiB, hot_pages=16384):
    """Each hot page's sweep counter, read from the RAM file."""
    with open(ram_path, "rb") as f:
        f.seek(hot_start)
        data = f.read(hot_pages * PAGE)
    return [struct.unpack_from("<I", data, i * PAGE + COUNTER_OFFSET)[0]
            for i in range(hot_pages)]


def wait_running(ram_path, timeout=20, hot_start=16 * MiB, hot_pages=16384):
    """Until the guest's first sweeps are in the RAM file (whatever the
    file held before)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        # Counters of a few recent sweeps everywhere (a file read of a
        # running guest may span several).
        c = hot_counters(ram_path, hot_start, hot_pages)
        if min(c) >= 2 and max(c) - min(c) < 64:
            return True
        time.sleep(0.1)
    return False


def consistent_sweep(counters):
    """A guest stopped mid-sweep n: n in the first pages, n - 1 after
    (or n everywhere, stopped between two sweeps)."""
    n = counters[0]
    k = next((i for i, c in enumerate(counters) if c != n), len(counters))
    return n >= 2 and all(c == n - 1 for c in counters[k:])


class QmpError(RuntimeError):
    pass


class Qmp:
    """A QMP client.  Every wait is bounded (timeout seconds)."""

    def __init__(self, path, timeout=10):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.settimeout(timeout)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.02)
        self.buf = b""
        self.events = []
        self.greeting = self._read()
        assert "QMP" in self.greeting, self.greeting
        self.execute("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QmpError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, cmd, **args):
        """Runs cmd; returns its "return" value, raises QmpError on "error".
        Events that arrive meanwhile are kept in self.events."""
        req = {"execute": cmd}
        if args:
            req["arguments"] = args
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
            elif "error" in r:
                raise QmpError("%s: %s" % (cmd, r["error"].get("desc")))
            elif "return" in r:
                return r["return"]

    def wait_event(self, name, timeout=10):
        """The first event called name (kept ones first), or TimeoutError."""
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no QMP event " + name)
            self.sock.settimeout(left)
            try:
                self.events.append(self._read())
            except socket.timeout:
                pass

    def status(self):
        return self.execute("query-status")["status"]

    def close(self):
        self.sock.close()


class Qemu:
    """The test guest under TCG: RAM in a shared file (ram_path, created
    here), the shim preloaded when track is true (tracking track_path,
    default ram_path).  incoming: a migration destination (-incoming defer).
    image: a file whose bytes the RAM starts with (the guest's boot code and
    hot set then write over theirs).  drive: false leaves the boot-sector
    guest's disk out (a guest booted another way, e.g. -kernel in extra).
    self.qmp is the test's QMP client; lm_qmp_path a second QMP socket for
    livemig (a monitor serves one client at a time).  Use as a context
    manager; exit quits QEMU (QMP quit, then kill after a bound) and removes
    the sockets (the RAM file is the caller's)."""

    def __init__(self, workdir, ram_path, ram_mb=256, track=True, hot_start=16 * MiB,
                 hot_pages=16384, spin=0, share="on", incoming=False, track_path=None,
                 image=None, extra=(), drive=True):
        self.ram_path, self.size = ram_path, ram_mb * MiB
        self.qmp_path = os.path.join(workdir, "qmp-%d.sock" % id(self))
        self.lm_qmp_path = self.qmp_path + "-livemig"
        disk = []
        if drive:
            img = boot_image(os.path.join(workdir, "boot-%d.img" % id(self)), hot_start,
                             hot_pages, spin)
            disk = ["-drive", "file=%s,format=raw" % img]
        # The shim resolves LIVEMIG_TRACK's paths once, at QEMU's first
        # mmap: the file must exist by then.
        if image:
            shutil.copyfile(image, ram_path)
        with open(ram_path, "r+b" if image else "wb") as f:
            f.truncate(self.size)
        env = dict(os.environ)
        if track:
            env["LD_PRELOAD"] = os.path.abspath(TRACK_LIB)
            env["LIVEMIG_TRACK"] = track_path or ram_path
        # -nodefaults: no VGA, whose 16 MiB of video RAM (not shared) QEMU
        # would carry in the device state.
        cmd = [QEMU, "-machine", "pc,memory-backend=mem0", "-nodefaults",
               "-object", "memory-backend-file,id=mem0,size=%dM,mem-path=%s,share=%s"
               % (ram_mb, ram_path, share),
               *disk, "-display", "none", "-accel", "tcg",
               "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
               "-qmp", "unix:%s,server=on,wait=off" % self.lm_qmp_path] + list(extra)
        if incoming:
            cmd += ["-incoming", "defer"]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        try:
            self.qmp = Qmp(self.qmp_path)
        except Exception:
            self.proc.kill()
            raise

    def ram_addr(self):
        """Where QEMU maps the RAM file (from /proc/PID/maps)."""
        with open("/proc/%d/maps" % self.pid) as f:
            for line in f:
                cols = line.split()
                if len(cols) >= 6 and cols[5] == self.ram_path and cols[1][3] == "s":
                    start, end = (int(x, 16) for x in cols[0].split("-"))
                    assert end - start == self.size, line
                    return start
        raise RuntimeError("QEMU does not map " + self.ram_path)

    def vcpu_tids(self):
        return [c["thread-id"] for c in self.qmp.execute("query-cpus-fast")]

    def stderr(self):
        """QEMU's stderr (after exit)."""
        return self.err

    def quit(self, timeout=10):
        try:
            self.qmp.execute("quit")
        except (QmpError, OSError):
            pass
        try:
            _, self.err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, self.err = self.proc.communicate()
        self.qmp.close()
        for p in (self.qmp_path, self.lm_qmp_path):
            if os.path.exists(p):
                os.unlink(p)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()

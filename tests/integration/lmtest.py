# SPDX-License-Identifier: MIT
"""Shared helpers for livemig's integration tests: processes with time-outs,
a free loopback port, test images, and an independent encoder of the wire
format (docs/wire-format.md) for feeding a destination bad input."""
import json
import os
import queue
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

LIVEMIG = os.environ.get("LIVEMIG", "build/livemig")
PAGE = 4096


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_dest(uri, *args, json_path=None, dump=None):
    cmd = [LIVEMIG, "dest", "--listen", uri, "--no-progress"]
    if json_path:
        cmd += ["--json", json_path]
    if dump:
        cmd += ["--dump", dump]
    cmd += list(args)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_listening(uri, p)
    return p


def wait_listening(uri, proc, timeout=10):
    """Polls until the destination accepts connections (without connecting
    for real when it is TCP: a probe connection would count as a channel), so
    we watch for the socket in /proc/net or the unix socket file."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return
        if uri.startswith("unix:"):
            if os.path.exists(uri[5:]):
                return
        else:
            port = int(uri.rsplit(":", 1)[1])
            with open("/proc/net/tcp") as f:
                for line in f.read().splitlines()[1:]:
                    cols = line.split()
                    if cols[3] == "0A" and int(cols[1].split(":")[1], 16) == port:
                        return
            if os.path.exists("/proc/net/tcp6"):
                with open("/proc/net/tcp6") as f:
                    for line in f.read().splitlines()[1:]:
                        cols = line.split()
                        if cols[3] == "0A" and int(cols[1].split(":")[1], 16) == port:
                            return
        time.sleep(0.02)
    raise RuntimeError("destination never listened on " + uri)


def finish(proc, timeout=120):
    """Waits with a time-out (a hang is a failure) and returns (rc, out, err)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return "HANG", out, err
    return proc.returncode, out, err


# What `livemig source` prints when its guest ran on after a failure with
# its memory exactly as it wrote it (every page's stamp checked), and when
# it stayed stopped (migrated, or outcome unknown).
GUEST_RAN_ON = "was running at the end; every page's stamp is intact"
GUEST_STOPPED = "was stopped at the end; every page's stamp is intact"


def run_source(uri, *args, timeout=120):
    cmd = [LIVEMIG, "source", "--connect", uri, "--no-progress"] + list(args)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def make_mixed_image(path, size, seed=7):
    """Text-like corpus pages, random pages and zero pages interleaved in runs
    of varying length (so packets mix all three), deterministic from seed."""
    rng = random.Random(seed)
    corpus = []
    for d in ("/usr/include", "/usr/share/common-licenses", "/usr/share/doc"):
        for root, _, files in sorted(os.walk(d)):
            for name in sorted(files):
                fp = os.path.join(root, name)
                if os.path.islink(fp) or not os.path.isfile(fp):
                    continue
                try:
                    with open(fp, "rb") as f:
                        corpus.append(f.read(1 << 20))
                except OSError:
                    pass
                if sum(map(len, corpus)) > (8 << 20):
                    break
    text = b"".join(corpus) or bytes(range(256)) * 4096
    pos = 0
    with open(path, "wb") as f:
        pages = size // PAGE
        i = 0
        while i < pages:
            kind = rng.random()
            run = min(rng.randint(1, 300), pages - i)
            if kind < 0.6:
                n = run * PAGE
                chunk = (text[pos:pos + n] if pos + n <= len(text)
                         else (text[pos:] + text)[:n])
                pos = (pos + n) % len(text)
                f.write(chunk)
            elif kind < 0.8:
                f.write(rng.randbytes(run * PAGE))
            else:
                f.write(bytes(run * PAGE))
            i += run


# ---- independent wire encoder ------------------------------------------------

def _crc32c_table():
    tab = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        tab.append(c)
    return tab


_TAB = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _TAB[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def hello(channel, nchannels, uuid=b"\x11" * 16, version=1, magic=0x4C4C484D, flags=0):
    body = struct.pack("<IHHHH16s8s", magic, version, channel, nchannels, flags, uuid, bytes(8))
    return body + struct.pack("<I", crc32c(body))


def msg(mtype, payload=b""):
    hdr = struct.pack("<IHHII", 0x544D4C4C, mtype, 0, len(payload), 0)
    crc = crc32c(payload, crc32c(hdr))
    return hdr[:12] + struct.pack("<I", crc) + payload


def params(nchannels, method=0, level=0, blocks=(("pc.ram", 1 << 20),), flags=0):
    """flags: bit 0 channel-recovery."""
    p = struct.pack("<HBBBBHII", nchannels, method, level, 1, 0, flags, PAGE, len(blocks))
    for name, size in blocks:
        p += struct.pack("<B", len(name)) + name.encode() + struct.pack("<Q", size)
    return p


def answer(data):
    """A receiver's answer to a RECONNECT hello (channel recovery), as
    (pass, seq, normal, zero); ValueError when it is malformed."""
    if len(data) != 40:
        raise ValueError("answer of %d bytes" % len(data))
    magic, npass, seq, normal, zero, reserved, crc = struct.unpack("<IIQQQII", data)
    if magic != 0x4E41524C or reserved or crc != crc32c(data[:36]):
        raise ValueError("bad answer magic, reserved bytes or CRC")
    return npass, seq, normal, zero


def packet(channel, seq, iteration, block, normal_idx, zero_idx, payload, method=0,
           flags=0, payload_len=None, version=1, magic=0x4B504D4C, fix_crc=True):
    plen = len(payload) if payload_len is None else payload_len
    hdr = struct.pack("<IBBHHHIQIIII20sI", magic, version, method, flags, channel, 0, block,
                      seq, iteration, len(normal_idx), len(zero_idx), plen, bytes(20), 0)
    idx = b"".join(struct.pack("<I", i) for i in list(normal_idx) + list(zero_idx))
    crc = crc32c(hdr, crc32c(idx, crc32c(payload))) if fix_crc else 0
    return hdr[:60] + struct.pack("<I", crc) + idx + payload


class Checker:
    def __init__(self, name):
        self.name = name
        self.failures = 0

    def check(self, cond, what):
        if not cond:
            self.failures += 1
            print("FAIL: %s: %s" % (self.name, what), file=sys.stderr)
        return cond

    def done(self):
        sys.exit(1 if self.failures else 0)


def info_json():
    out = subprocess.run([LIVEMIG, "info", "--json"], capture_output=True, check=True,
                         text=True).stdout
    return json.loads(out)


def load_json(path):
    with open(path) as f:
        return json.load(f)


def same_files(a, b):
    """Byte-for-byte comparison, 1 MiB at a time."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def tmpdir():
    return tempfile.mkdtemp(prefix="livemig-test-")


class Qmp:
    """A QMP client in a few lines: JSON values one per line.  A thread
    reads everything as it comes (a client that does not read is dropped):
    events into .events, answers into a queue."""

    def __init__(self, path, negotiate=True, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.timeout = timeout
        self.events = []
        self.answers = queue.Queue()
        self.closed = threading.Event()
        self.reader = threading.Thread(target=self._read_all, daemon=True)
        self.reader.start()
        self.greeting = self.answers.get(timeout=timeout)
        if negotiate:
            r = self.cmd("qmp_capabilities")
            assert r == {"return": {}}, r

    def _read_all(self):
        buf = b""
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    break
                buf += d
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    o = json.loads(line)
                    (self.events.append if "event" in o else self.answers.put)(o)
        except (OSError, ValueError):
            pass
        self.closed.set()

    def send(self, raw):
        self.s.sendall(raw if isinstance(raw, bytes) else json.dumps(raw).encode() + b"\n")

    def cmd(self, name, args=None, **extra):
        m = {"execute": name}
        if args is not None:
            m["arguments"] = args
        m.update(extra)
        self.send(m)
        return self.reply()

    def reply(self):
        return self.answers.get(timeout=self.timeout)

    def all_events(self):
        """Every event, once the server has closed the connection."""
        self.closed.wait(self.timeout)
        return list(self.events)

    def close(self):
        self.s.close()


def wait_path(path, proc, timeout=10):
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None and not os.path.exists(path):
        time.sleep(0.02)
    return os.path.exists(path)


def query(q):
    r = q.cmd("query-migrate")
    return r.get("return", {})


def statuses(events):
    return [e["data"]["status"] for e in events if e["event"] == "MIGRATION"]


def passes(events):
    return [e["data"]["pass"] for e in events if e["event"] == "MIGRATION_PASS"]

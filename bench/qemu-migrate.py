#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Migrate a QEMU guest whose RAM is a memory image, over loopback TCP with
multifd, and print one JSON object in livemig's `query-migrate` shape.

Source:      memory-backend-file,id=mem,mem-path=IMAGE,share=off,prealloc=on
             (a private copy-on-write mapping of the image, every page faulted in
             before the clock starts, like a running guest's resident RAM).
Destination: memory-backend-ram,id=mem (anonymous memory, as a real destination
             QEMU uses; QEMU madvises it MADV_HUGEPAGE), or --dest-mem shm:
             memory-backend-file on /dev/shm, share=on.
Both:        -machine pc,memory-backend=mem -m SIZE -accel tcg -S: the guest never
             runs, so its RAM is exactly the image and the destination can be
             compared with the image byte for byte.  The backend is the whole RAM
             block "mem" (QEMU maps it below and above 4 GiB with aliases, but
             migrates and stores it as one block), so the comparison covers all of
             it.

Python 3 standard library only.  Run as root (reads /proc/PID/mem of the
destination QEMU for --dest-mem anon).
"""

import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PAGE = 4096
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Fatal(Exception):
    pass


def log(msg):
    print("qemu-migrate: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- QMP client

class QMP:
    def __init__(self, path, proc, timeout):
        deadline = time.monotonic() + timeout
        self.sock = None
        while True:
            if proc.poll() is not None:
                raise Fatal("QEMU exited (status %s) before its QMP socket came up" % proc.returncode)
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                self.sock = s
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise Fatal("timed out connecting to QMP at %s" % path)
                time.sleep(0.05)
        self.proc = proc
        self.buf = b""
        self.events = []
        # The greeting arrives once QEMU's main loop runs (after prealloc).
        greeting = self._read(deadline)
        if "QMP" not in greeting:
            raise Fatal("bad QMP greeting: %r" % greeting)
        self.version = greeting["QMP"]["version"]
        self.cmd("qmp_capabilities")

    def _read(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Fatal("timed out waiting for QMP")
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                if self.proc.poll() is not None:
                    raise Fatal("QEMU exited (status %s)" % self.proc.returncode)
                continue
            if not data:
                raise Fatal("QMP connection closed (QEMU status %s)" % self.proc.poll())
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, timeout=60.0, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        deadline = time.monotonic() + timeout
        while True:
            r = self._read(deadline)
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise Fatal("QMP %s failed: %s" % (name, r["error"].get("desc", r["error"])))
            return r.get("return")

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


# ---------------------------------------------------------------- helpers

def parse_size(text):
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgGtT]?)(i?[bB])?\s*", str(text))
    if not m:
        raise argparse.ArgumentTypeError("bad size %r" % text)
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[m.group(2).lower()]


def cpu_seconds(pid):
    """utime+stime of all threads of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu():
    """(busy seconds, steal seconds) of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    busy = v[0] + v[1] + v[2] + v[5] + v[6]
    return busy / CLK_TCK, (v[7] if len(v) > 7 else 0) / CLK_TCK


def wait_quiet(max_wait, threshold, window=2.0):
    """Wait (up to max_wait s) for a window in which the whole machine used less
    than `threshold` CPUs; the QEMUs are idle (-S) then, so this is other jobs.
    Returns (seconds waited, achieved)."""
    t0 = time.monotonic()
    while True:
        b0 = machine_cpu()[0]
        time.sleep(window)
        load = (machine_cpu()[0] - b0) / window
        if load < threshold:
            return round(time.monotonic() - t0, 1), True
        if time.monotonic() - t0 > max_wait:
            log("machine still busy (%.2f CPUs in use by others) after %d s; measuring anyway"
                % (load, max_wait))
            return round(time.monotonic() - t0, 1), False


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def lo_counters():
    """(rx bytes, rx packets) of this network namespace's loopback."""
    with open("/proc/self/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                v = rest.split()
                return int(v[0]), int(v[1])
    return None


def loopback_up():
    """ifconfig lo up, standard library only (SIOCGIFFLAGS/SIOCSIFFLAGS)."""
    import fcntl
    import struct
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, 0x8913, ifr))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags | 0x1))
    finally:
        s.close()


NETNS_ENV = "QEMU_MIGRATE_IN_NETNS"


def maybe_enter_netns(a):
    """Re-run this script in a private network namespace (unshare -n), so that
    its loopback carries only this migration and its byte counters measure
    the bytes on the wire exactly (QEMU 7.2's ram.transferred counts
    uncompressed page bytes even with multifd compression)."""
    if os.environ.get(NETNS_ENV) == "1":
        loopback_up()
        return True
    if a.no_netns or a.src_netns or a.dst_netns or os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    try:
        ok = subprocess.run(["unshare", "-n", "true"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        ok = False
    if not ok:
        return False
    os.environ[NETNS_ENV] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp("unshare", ["unshare", "-n", "--", sys.executable, os.path.abspath(__file__)] + sys.argv[1:])


_libc = None


def _child_setup():
    # Die with this script even if it is SIGKILLed (PR_SET_PDEATHSIG = 1).
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


def find_ram_hva(pid, length):
    """Host address of the destination's anonymous RAM block: QEMU maps it as
    one rw mapping of exactly `length` bytes followed by a PROT_NONE guard."""
    cands = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            perms = parts[1]
            path = parts[5] if len(parts) > 5 else ""
            if hi - lo == length and perms.startswith("rw") and (path == "" or path.startswith("/memfd")):
                cands.append(lo)
    if len(cands) != 1:
        raise Fatal("cannot locate the destination RAM mapping of %d bytes (candidates: %s)"
                    % (length, [hex(c) for c in cands]))
    return cands[0]


def compare(image_path, other, offset, length, chunk=64 << 20):
    """Compare image_path[0:length] with file object `other` at `offset`."""
    t0 = time.monotonic()
    mismatched = 0
    first = None
    with open(image_path, "rb", buffering=0) as img:
        pos = 0
        while pos < length:
            n = min(chunk, length - pos)
            a = img.read(n)
            other.seek(offset + pos)
            b = other.read(n)
            if len(a) != n or len(b) != n:
                raise Fatal("short read while verifying at offset %d" % pos)
            if a != b:
                for p in range(0, n, PAGE):
                    if a[p:p + PAGE] != b[p:p + PAGE]:
                        mismatched += 1
                        if first is None:
                            first = pos + p
            pos += n
    return {
        "match": mismatched == 0,
        "bytes-compared": length,
        "mismatched-pages": mismatched,
        "first-mismatch-offset": first,
        "seconds": round(time.monotonic() - t0, 3),
    }


# ---------------------------------------------------------------- main work

class Run:
    def __init__(self, a, netns):
        self.a = a
        self.netns = netns
        self.procs = {}
        self.qmp = {}
        self.tmp = tempfile.mkdtemp(prefix="qemu-migrate.")
        self.shm = None

    def qemu_cmd(self, role, size):
        a = self.a
        m = "%dM" % (size >> 20) if size % (1 << 20) == 0 else "%dB" % size
        if role == "src":
            mem = ("memory-backend-file,id=mem,size=%d,mem-path=%s,share=off,prealloc=on,prealloc-threads=%d"
                   % (size, a.image, a.prealloc_threads))
        elif a.dest_mem == "shm":
            self.shm = "/dev/shm/qemu-migrate-dst.%d" % os.getpid()
            mem = "memory-backend-file,id=mem,size=%d,mem-path=%s,share=on" % (size, self.shm)
        else:
            mem = "memory-backend-ram,id=mem,size=%d" % size
        if role == "dst" and a.dest_prealloc:
            mem += ",prealloc=on,prealloc-threads=%d" % a.prealloc_threads
        qmp = os.path.join(self.tmp, role + ".qmp")
        cmd = [a.qemu, "-name", "qemu-migrate-" + role,
               "-accel", "tcg", "-machine", "%s,memory-backend=mem" % a.machine,
               "-object", mem, "-m", m, "-smp", "1",
               "-S", "-display", "none", "-nodefaults", "-no-user-config",
               "-chardev", "socket,id=qmp,path=%s,server=on,wait=off" % qmp,
               "-mon", "chardev=qmp,mode=control"]
        if role == "dst":
            cmd += ["-incoming", "defer"]
        if a.tls_psk:
            # QEMU's PSK credentials: DIR/keys.psk, the client as "qemu".
            cmd += ["-object", "tls-creds-psk,id=tls0,dir=%s,endpoint=%s"
                    % (a.tls_psk, "client" if role == "src" else "server")]
        return cmd, qmp

    def start(self, role, size):
        cmd, qmp = self.qemu_cmd(role, size)
        # ip netns exec and taskset exec QEMU: its pid stays the one /proc is read for.
        cpus = self.a.src_cpus if role == "src" else self.a.dst_cpus
        if cpus:
            cmd = ["taskset", "-c", cpus] + cmd
        ns = self.a.src_netns if role == "src" else self.a.dst_netns
        if ns:
            cmd = ["ip", "netns", "exec", ns] + cmd
        logf = open(os.path.join(self.tmp, role + ".log"), "wb")
        if self.a.verbose:
            log("%s: %s" % (role, " ".join(cmd)))
        self.procs[role] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                            start_new_session=True, preexec_fn=_child_setup)
        return qmp

    def log_tail(self, role):
        try:
            with open(os.path.join(self.tmp, role + ".log"), "rb") as f:
                return f.read()[-2000:].decode(errors="replace").strip()
        except OSError:
            return ""

    def cleanup(self):
        for role, q in list(self.qmp.items()):
            try:
                q.cmd("quit", timeout=5)
            except Exception:
                pass
            q.close()
        for role, p in self.procs.items():
            # A QEMU without QMP yet may be in prealloc, which ignores SIGTERM.
            waits = (5, 2) if role in self.qmp else (0.5, 2)
            try:
                p.wait(timeout=waits[0])
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    p.wait(timeout=waits[1])
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.shm:
            try:
                os.unlink(self.shm)
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def params(self, role):
        a = self.a
        p = {"multifd-channels": a.channels, "multifd-compression": a.compression}
        if a.zlib_level is not None:
            p["multifd-zlib-level"] = a.zlib_level
        if a.zstd_level is not None:
            p["multifd-zstd-level"] = a.zstd_level
        if role == "src":
            p["max-bandwidth"] = a.max_bandwidth
            p["downtime-limit"] = a.downtime_limit
        if a.tls_psk:
            p["tls-creds"] = "tls0"
        return p

    def run(self):
        a = self.a
        size = os.path.getsize(a.image)
        if size == 0 or size % PAGE:
            raise Fatal("image size %d is not a positive multiple of 4096" % size)

        t_launch = time.monotonic()
        qmp_path = {r: self.start(r, size) for r in ("src", "dst")}
        for r in ("src", "dst"):
            try:
                self.qmp[r] = QMP(qmp_path[r], self.procs[r], timeout=a.start_timeout)
            except Fatal as e:
                raise Fatal("%s QEMU: %s\n%s" % (r, e, self.log_tail(r)))
        launch_s = time.monotonic() - t_launch
        src, dst = self.qmp["src"], self.qmp["dst"]
        pid_src, pid_dst = self.procs["src"].pid, self.procs["dst"].pid

        caps = [{"capability": "multifd", "state": True}]
        if a.events:
            caps.append({"capability": "events", "state": True})
        for r, q in (("src", src), ("dst", dst)):
            q.cmd("migrate-set-capabilities", capabilities=caps)
            q.cmd("migrate-set-parameters", **self.params(r))
            got = q.cmd("query-migrate-parameters")
            for k, v in self.params(r).items():
                if got.get(k) != v:
                    raise Fatal("%s: parameter %s is %r, wanted %r" % (r, k, got.get(k), v))

        dst.cmd("migrate-incoming", uri="tcp:%s:%d" % (a.address, a.port))
        port = a.port
        if port == 0:
            addrs = dst.cmd("query-migrate").get("socket-address", [])
            port = next((int(x["port"]) for x in addrs if x.get("type") == "inet"), 0)
            if not port:
                raise Fatal("destination did not report its listening port")

        quiet = wait_quiet(a.wait_quiet, a.quiet_threshold) if a.wait_quiet > 0 else None
        rss_src_before = rss_kib(pid_src)
        lo0 = lo_counters() if self.netns else None
        c_src0, c_dst0 = cpu_seconds(pid_src), cpu_seconds(pid_dst)
        m0 = machine_cpu()
        t0 = time.monotonic()
        src.cmd("migrate", uri="tcp:%s:%d" % (a.address, port))

        deadline = t0 + a.timeout
        src_info = dst_info = None
        t_src = t_dst = c_src1 = c_dst1 = lo1 = None
        while src_info is None or dst_info is None:
            if time.monotonic() > deadline:
                raise Fatal("migration did not finish within %d s" % a.timeout)
            if src_info is None:
                info = src.cmd("query-migrate")
                st = info.get("status")
                if st in ("completed", "failed", "cancelled"):
                    c_src1, t_src = cpu_seconds(pid_src), time.monotonic()
                    src_info = info
                    if st != "completed":
                        raise Fatal("source migration %s: %s" % (st, info.get("error-desc", "")))
            if dst_info is None:
                info = dst.cmd("query-migrate")
                st = info.get("status")
                if st in ("completed", "failed", "cancelled"):
                    c_dst1, t_dst = cpu_seconds(pid_dst), time.monotonic()
                    dst_info = info
                    if st != "completed":
                        raise Fatal("destination migration %s: %s\n%s"
                                    % (st, info.get("error-desc", ""), self.log_tail("dst")))
            if src_info is None or dst_info is None:
                time.sleep(a.poll)

        lo1 = lo_counters() if self.netns else None
        m1 = machine_cpu()
        total_ms = src_info.get("total-time")
        if not total_ms:  # seen once on a loaded machine: completed, total-time 0
            raise Fatal("source reported completed with total-time %r: %s" % (total_ms, src_info))
        total_s = total_ms / 1000.0
        ram = src_info.get("ram", {})
        cpu = {
            "source-seconds": round(c_src1 - c_src0, 3),
            "destination-seconds": round(c_dst1 - c_dst0, 3),
        }
        cpu["source-percent"] = round(100.0 * cpu["source-seconds"] / total_s, 1)
        cpu["destination-percent"] = round(100.0 * cpu["destination-seconds"] / total_s, 1)
        cpu["total-seconds"] = round(cpu["source-seconds"] + cpu["destination-seconds"], 3)
        # Noise check: CPU the rest of the machine used meanwhile (other jobs,
        # this script's polling), and hypervisor steal.  The machine has
        # os.cpu_count() CPUs; a busy neighbour slows both QEMUs.
        cpu["other-seconds"] = round(max(0.0, (m1[0] - m0[0]) - cpu["total-seconds"]), 2)
        cpu["steal-seconds"] = round(m1[1] - m0[1], 2)
        cpu["machine-cpus"] = os.cpu_count()

        wire = {}
        if lo0 and lo1:
            wire_bytes = lo1[0] - lo0[0]
            wire = {
                "wire-bytes": wire_bytes,
                "wire-packets": lo1[1] - lo0[1],
                "wire-mbps": round(wire_bytes * 8 / total_s / 1e6, 1),
                "wire-gbytes-per-second": round(wire_bytes / total_s / 1e9, 4),
                "compression-ratio": round(ram.get("normal-bytes", 0) / max(1, wire_bytes), 4),
            }
        out = {
            "tool": "qemu",
            "qemu-version": "%d.%d.%d" % tuple(src.version["qemu"][k] for k in ("major", "minor", "micro")),
            "status": src_info.get("status"),
            "total-time": total_ms,
            "downtime": src_info.get("downtime"),
            "setup-time": src_info.get("setup-time"),
            "ram": ram,
            "cpu": cpu,
            "derived": {
                "gbytes-per-second": round(ram.get("transferred", 0) / total_s / 1e9, 4),
                "ram-gbytes-per-second": round(ram.get("total", 0) / total_s / 1e9, 4),
                "ram-mbps": round(ram.get("total", 0) * 8 / total_s / 1e6, 1),
                "wall-seconds-source": round(t_src - t0, 3),
                "wall-seconds-destination": round(t_dst - t0, 3),
                "launch-seconds": round(launch_s, 2),
                "source-rss-kib-before": rss_src_before,
                "destination-rss-kib-after": rss_kib(pid_dst),
                "netns": bool(self.netns),
                "quiet-wait": None if quiet is None else {"seconds": quiet[0], "achieved": quiet[1]},
                **wire,
            },
            "params": dict(self.params("src"), image=a.image, size=size, machine=a.machine,
                           **{"dest-mem": a.dest_mem, "dest-prealloc": a.dest_prealloc}),
        }

        if a.no_verify:
            out["verify"] = {"match": None, "skipped": True}
        else:
            if a.dest_mem == "shm":
                with open(self.shm, "rb", buffering=0) as f:
                    out["verify"] = compare(a.image, f, 0, size)
            else:
                hva = find_ram_hva(pid_dst, size)
                with open("/proc/%d/mem" % pid_dst, "rb", buffering=0) as f:
                    out["verify"] = compare(a.image, f, hva, size)
            out["verify"]["method"] = "destination RAM block 'mem' (%s) vs image" % a.dest_mem
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default="/var/tmp/lm-img-4g.bin", help="guest memory image (default %(default)s)")
    ap.add_argument("--channels", type=int, default=2, help="multifd-channels (default 2)")
    ap.add_argument("--compression", choices=("none", "zlib", "zstd"), default="none")
    ap.add_argument("--zlib-level", type=int, default=None, help="multifd-zlib-level (QEMU default 1)")
    ap.add_argument("--zstd-level", type=int, default=None, help="multifd-zstd-level (QEMU default 1)")
    ap.add_argument("--max-bandwidth", type=parse_size, default=1 << 40,
                    help="bytes/s (default 1 TiB/s = unlimited; QEMU's own default is 128 MiB/s)")
    ap.add_argument("--downtime-limit", type=int, default=300, help="ms (default 300, QEMU's default)")
    ap.add_argument("--machine", default="pc", help="QEMU machine type (default pc)")
    ap.add_argument("--dest-mem", choices=("anon", "shm"), default="anon",
                    help="destination RAM: anonymous memory-backend-ram (default) or a /dev/shm file")
    ap.add_argument("--dest-prealloc", action="store_true",
                    help="preallocate the destination RAM too (a real destination does not)")
    ap.add_argument("--prealloc-threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--port", type=int, default=0, help="TCP port (default 0: QEMU picks a free one)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds for the migration (default 1800)")
    ap.add_argument("--start-timeout", type=int, default=600, help="seconds for QEMU start incl. prealloc")
    ap.add_argument("--poll", type=float, default=0.1, help="query-migrate poll interval, s (default 0.1)")
    ap.add_argument("--wait-quiet", type=int, default=0, metavar="SEC",
                    help="before migrating, wait up to SEC s for the machine to be idle (shared machines)")
    ap.add_argument("--quiet-threshold", type=float, default=0.15, metavar="CPUS",
                    help="idle means other processes use fewer than this many CPUs (default 0.15)")
    ap.add_argument("--no-verify", action="store_true", help="skip the byte-for-byte check")
    ap.add_argument("--no-netns", action="store_true",
                    help="do not run in a private network namespace (then no wire byte count)")
    ap.add_argument("--src-netns", metavar="NS", help="run the source QEMU in network namespace NS "
                    "(ip netns exec; then no private namespace and no wire byte count)")
    ap.add_argument("--dst-netns", metavar="NS", help="likewise the destination QEMU")
    ap.add_argument("--address", default="127.0.0.1",
                    help="the destination's address the source connects to (default %(default)s)")
    ap.add_argument("--src-cpus", metavar="LIST", help="pin the source QEMU to these CPUs (taskset -c)")
    ap.add_argument("--dst-cpus", metavar="LIST", help="pin the destination QEMU to these CPUs")
    ap.add_argument("--events", action="store_true", help="enable the 'events' capability")
    ap.add_argument("--tls-psk", metavar="DIR",
                    help="TLS on every channel with PSK credentials DIR/keys.psk (identity qemu): "
                         "tls-creds-psk objects and the tls-creds parameter on both sides")
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64") or "qemu-system-x86_64")
    ap.add_argument("--json", metavar="FILE", help="also write the JSON to FILE")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if not os.path.isfile(a.image):
        ap.error("image %s not found (make one with bench/make-image.sh)" % a.image)
    if a.tls_psk:
        a.tls_psk = os.path.abspath(a.tls_psk)
        if not os.path.isfile(os.path.join(a.tls_psk, "keys.psk")):
            ap.error("--tls-psk %s: no keys.psk there (psktool -u qemu -p DIR/keys.psk)"
                     % a.tls_psk)
    if a.compression != "zlib" and a.zlib_level is not None:
        log("warning: --zlib-level has no effect with --compression %s" % a.compression)
    if a.compression != "zstd" and a.zstd_level is not None:
        log("warning: --zstd-level has no effect with --compression %s" % a.compression)

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    netns = maybe_enter_netns(a)
    run = Run(a, netns)
    rc = 0
    try:
        out = run.run()
        text = json.dumps(out, indent=2)
        print(text, flush=True)
        if a.json:
            with open(a.json, "w") as f:
                f.write(text + "\n")
        if out["verify"].get("match") is False:
            log("VERIFY FAILED: destination RAM differs from the image")
            rc = 3
    except Fatal as e:
        log("error: %s" % e)
        rc = 1
    except KeyboardInterrupt:
        log("interrupted; stopping QEMU")
        rc = 130
    finally:
        # Signals must not interrupt the cleanup itself.
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        run.cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main())

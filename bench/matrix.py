#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""livemig bench --matrix: the seeds' tables by one command.

Sweeps channels x methods x links (x dirty rates x TLS x images x zero-page
detection), every cell --repeat times, cells interleaved round-robin so
that drift on a shared machine hits all alike.  Every cell QEMU 7.2 can do
(none, zlib, zstd on an idle guest) also gets QEMU's own multifd migration
of the same image over the same link with the same pinning, in the same
round; which tool goes first alternates.  Writes to --out DIR:

  runs.jsonl   one JSON object per run (what the tables are made from)
  tables.md    medians in the seeds' layout, livemig / QEMU / ratio, the best
               method per cell, auto against the best fixed method
  machine.md   CPU model, cores, memory, kernel, versions, the command
  plots/       gnuplot SVG and PNG: total time and CPU against channels per
               method; for live runs each pass's dirty rate and remaining bytes

`--report DIR` remakes tables.md and the plots from DIR/runs.jsonl, and
`--readme FILE` also puts them in FILE between the two marker lines
"<!-- matrix results begin -->" and "<!-- matrix results end -->".
Links other than loopback, --pin and QEMU need root.
"""
import argparse
import datetime
import json
import mmap
import os
import platform
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import netlink  # noqa: E402 (next to this script, build tree or share/livemig)


def _qemu_migrate():
    """bench/qemu-migrate.py as a module (its QMP client)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("qemu_migrate",
                                                  os.path.join(HERE, "qemu-migrate.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

PAGE = 4096
QEMU_METHODS = ("none", "zlib", "zstd")
SPREAD_FLAG = 0.15
CLK_TCK = os.sysconf("SC_CLK_TCK")
CACHE = os.environ.get("CACHE_DIR", "/var/tmp/livemig-bench")
MARK_BEGIN, MARK_END = "<!-- matrix results begin -->", "<!-- matrix results end -->"

# The seeds' setups scaled to this machine (2 cores, 1 GiB guest); an option
# given on the command line wins over its scenario's value.
SCENARIOS = {
    "qpl": dict(fill="corpus", fill_ratio="0.9", methods="none,qpl,zstd", channels="2,4,8",
                link="loopback,1gbit", dest_prealloc=True),
    "uadk": dict(fill="random", fill_ratio="0.8", methods="none,uadk,zlib,zstd",
                 channels="2,4,8", link="1gbit"),
    "qatzip": dict(fill="corpus", fill_ratio="0.9", methods="qatzip,zlib,zstd,none",
                   channels="4,8,16", link="loopback"),
    "dsa": dict(fill="corpus", fill_ratio="0.5,0", methods="none", channels="2,8",
                link="loopback", zero_page="multifd,dsa"),
    "live": dict(fill="corpus", fill_ratio="0.9", methods="none,zstd,auto", channels="2",
                 link="1gbit", dirty_rate="64M", repeat=20),
}
DEFAULTS = dict(channels="2,4,8", link="loopback", dirty_rate="0", tls="off", repeat=3,
                fill="corpus", fill_ratio="0.9", mem="1G", zero_page="multifd",
                dest_prealloc=False)


class Usage(Exception):
    pass


def log(msg):
    print("matrix: " + msg, file=sys.stderr, flush=True)


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KMGT]?)(i?B)?", str(text), re.I)
    if not m:
        raise Usage("bad size %r (bytes, or with K/M/G/T)" % text)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2).upper()]


def plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def split(text):
    return [w for w in str(text).split(",") if w]


# ---------------------------------------------------------------- the sweep

def livemig_methods(livemig):
    """Every method livemig info lists, plus auto (listed or not)."""
    out = subprocess.run([livemig, "info", "--json"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    names = [m["name"] for m in json.loads(out)["methods"]]
    return names + ([] if "auto" in names else ["auto"])


def make_image(fill, ratio, size):
    """A cached guest image: RATIO of its pages corpus (bench/make-image.sh) or
    random, the rest zero, spread as make-image.sh spreads them."""
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, "matrix-%s-%s-%d.bin" % (fill, ratio, size))
    if os.path.exists(path) and os.path.getsize(path) == size:
        return path
    tmp = path + ".tmp"
    if fill == "corpus":
        r = subprocess.run([os.path.join(HERE, "make-image.sh"), tmp, str(size), str(ratio)],
                           stdout=subprocess.DEVNULL)
        if r.returncode:
            raise RuntimeError("make-image.sh %s %d %s failed" % (tmp, size, ratio))
    else:
        r = float(ratio)
        zero = bytes(PAGE)
        with open(tmp, "wb") as f:
            for i in range(size // PAGE):
                filled = -(-(i + 1) * r // 1) > -(-i * r // 1)
                f.write(os.urandom(PAGE) if filled else zero)
    os.rename(tmp, path)
    return path


def warm(nbytes):
    """Touch and free nbytes of memory once: on this VM the first touch of
    memory the hypervisor has not backed yet costs 4-5x, and the first run
    would pay it for the others."""
    m = mmap.mmap(-1, nbytes)
    for off in range(0, nbytes, PAGE):
        m[off] = 1
    m.close()


def read_through(path):
    """The image into the page cache (DAMON drops it within a minute), before
    every run of either tool, outside the timed part."""
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def machine_busy():
    """(busy CPU seconds, steal seconds) of the whole machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK, (v[7] if len(v) > 7 else 0) / CLK_TCK


def our_cpu():
    """CPU seconds of this script and every child it has waited for."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def prefix(link, side, pin):
    """The command prefix putting a side in its namespace and on its CPU."""
    cmd = []
    ns = link and (link.src_ns if side == "src" else link.dst_ns)
    if ns:
        cmd += ["ip", "netns", "exec", ns]
    if pin:
        cmd += ["taskset", "-c", "0" if side == "src" else "1"]
    return cmd


RUNNING = []  # the processes of the run under way, ended when interrupted


def start(cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    RUNNING.append(p)
    return p


def finish(p, bound, what):
    try:
        return p.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise RuntimeError("%s did not end within %d s (killed)" % (what, bound))
    finally:
        if p.returncode is not None:
            RUNNING.remove(p)


def stop_running():
    """SIGTERM (qemu-migrate.py quits its QEMUs on it), then SIGKILL after 10 s."""
    for p in RUNNING:
        p.terminate()
    for p in RUNNING:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    del RUNNING[:]


def run_livemig(a, cell, link, psk, tmp):
    """One livemig migration: a destination and a source process, each in its
    namespace and on its CPU.  The source's JSON."""
    sets = cell_sets(cell, psk)
    bound = ["--timeout", str(a.timeout)]
    rfd, wfd = os.pipe()
    dest = start(prefix(link, "dst", a.pin) + [
        a.livemig, "dest", "--listen", "tcp:%s:0" % (link.dst_addr if link else "127.0.0.1"),
        "--no-progress", "--ready-fd", str(wfd)] + sets + bound + (
            ["--mem", str(os.path.getsize(cell["image"])), "--prealloc"]
            if a.dest_prealloc else []), pass_fds=(wfd,),
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "dest.log"), "w"))
    os.close(wfd)
    uri = b""
    try:
        deadline = time.monotonic() + 60
        while not uri.endswith(b"\n") and time.monotonic() < deadline:
            if not select.select([rfd], [], [], 1)[0]:
                continue
            chunk = os.read(rfd, 512)
            if not chunk:
                break
            uri += chunk
    finally:
        os.close(rfd)
    if not uri.strip():
        dest.kill()
        finish(dest, 10, "the livemig destination")
        raise RuntimeError("the destination did not listen: " +
                           open(os.path.join(tmp, "dest.log")).read().strip()[-500:])
    sj = os.path.join(tmp, "source.json")
    src_cmd = prefix(link, "src", a.pin) + [
        a.livemig, "source", "--connect", uri.decode().strip(), "--no-progress",
        "--fill", "file:" + cell["image"], "--json", sj,
        "--set", "downtime-limit=%d" % a.downtime_limit] + sets + bound
    if cell["zero_page"] != "multifd":
        src_cmd += ["--set", "zero-page-detection=" + cell["zero_page"]]
        if cell["zero_page"] == "dsa":
            src_cmd += ["--set", "dsa-path=x-model"]
    if cell["dirty"] != "0":
        src_cmd += ["--dirty-rate", cell["dirty"]]
    src = start(src_cmd, stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(tmp, "source.log"), "w"))
    return wait_pair(a, src, dest, sj, tmp)


def cell_sets(cell, psk):
    """The --set options both sides of a livemig migration take."""
    sets = ["--set", "multifd-channels=%d" % cell["channels"],
            "--set", "multifd-compression=" + cell["method"]]
    return sets + (["--set", "tls-creds=psk:" + psk] if cell["tls"] == "psk" else [])


def wait_pair(a, src, dest, sj, tmp):
    """Waits for a livemig source, then its destination (ended when the source
    failed); the source's JSON (file sj), or RuntimeError."""
    src_rc = finish(src, a.timeout + 60, "the livemig source")
    if src_rc:
        dest.terminate()
    dest_rc = finish(dest, 60, "the livemig destination")
    if src_rc or dest_rc:
        raise RuntimeError("livemig failed (source exit %d, destination exit %d): %s" % (
            src_rc, dest_rc, open(os.path.join(tmp, "source.log")).read().strip()[-500:]))
    with open(sj) as f:
        return json.load(f)


def run_qemu(a, cell, link, psk, tmp):
    """One QEMU 7.2 multifd migration of the same image (bench/qemu-migrate.py)."""
    qj = os.path.join(tmp, "qemu.json")
    cmd = [sys.executable, os.path.join(HERE, "qemu-migrate.py"), "--image", cell["image"],
           "--channels", str(cell["channels"]), "--compression", cell["method"],
           "--downtime-limit", str(a.downtime_limit), "--json", qj,
           "--timeout", str(a.timeout)]
    if link:
        cmd += ["--src-netns", link.src_ns, "--dst-netns", link.dst_ns,
                "--address", link.dst_addr]
    else:
        cmd += ["--no-netns"]
    if a.pin:
        cmd += ["--src-cpus", "0", "--dst-cpus", "1"]
    if a.dest_prealloc:
        cmd += ["--dest-prealloc"]
    if cell["tls"] == "psk":
        cmd += ["--tls-psk", psk]
    with open(os.path.join(tmp, "qemu.log"), "w") as logf:
        p = start(cmd, stdout=subprocess.DEVNULL, stderr=logf)
        rc = finish(p, a.timeout + 600, "qemu-migrate.py")
    if rc:
        raise RuntimeError("qemu-migrate.py exit %d: %s" % (
            rc, open(os.path.join(tmp, "qemu.log")).read().strip()[-500:]))
    with open(qj) as f:
        return json.load(f)


def proc_cpu(pid):
    """utime + stime of every thread of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / CLK_TCK


def wait_listen(link, port, proc, bound=30):
    """Until something listens on port in the destination's namespace."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline and proc.poll() is None:
        out = subprocess.run(["ip", "netns", "exec", link.dst_ns, "ss", "-Hltn",
                              "sport = :%d" % port], capture_output=True, text=True).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise RuntimeError("livemig qemu-dest did not listen on port %d" % port)


def run_qemu_livemig(a, cell, link, psk, tmp):
    """QEMU with livemig carrying its RAM (livemig qemu-source / qemu-dest,
    docs/qemu.md): two QEMUs started with -S whose RAM is a share=on file in
    /dev/shm (the source's a copy of the image), stop-and-copy.  The
    source's JSON, with the QEMUs' own CPU added to each side."""
    size = os.path.getsize(cell["image"])
    ram = {r: "/dev/shm/lm-matrix-%d-%s.ram" % (os.getpid(), r) for r in ("src", "dst")}
    shutil.copyfile(cell["image"], ram["src"])
    vms = {}
    try:
        for r in ("src", "dst"):
            vms[r] = start(prefix(link, r, a.pin) + [
                shutil.which("qemu-system-x86_64"), "-accel", "tcg", "-m", "%dM" % (size >> 20),
                "-object", "memory-backend-file,id=mem0,size=%d,mem-path=%s,share=on" % (
                    size, ram[r]), "-machine", "pc,memory-backend=mem0", "-display", "none",
                "-nodefaults", "-S", "-qmp", "unix:%s/%s.qmp,server=on,wait=off" % (tmp, r),
                "-qmp", "unix:%s/%s-ctl.qmp,server=on,wait=off" % (tmp, r)] +
                (["-incoming", "defer"] if r == "dst" else []),
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, r + "-qemu.log"), "w"))
        deadline = time.monotonic() + 60
        while not all(os.path.exists("%s/%s.qmp" % (tmp, r)) for r in vms):
            if time.monotonic() > deadline or any(v.poll() is not None for v in vms.values()):
                raise RuntimeError("QEMU did not start: " + open(
                    os.path.join(tmp, "src-qemu.log")).read()[-300:])
            time.sleep(0.05)
        # qemu-source takes a running guest (a paused one ends in "no STOP
        # event"), not a prelaunch one: cont; the BIOS finds no boot device
        # and idles, having written a few pages.
        qm = _qemu_migrate()
        try:
            ctl = qm.QMP("%s/src-ctl.qmp" % tmp, vms["src"], 60)
            ctl.cmd("cont")
            ctl.close()
        except qm.Fatal as e:
            raise RuntimeError("source QEMU: %s" % e)
        c0 = {r: proc_cpu(v.pid) for r, v in vms.items()}
        sets = cell_sets(cell, psk)
        port = 20000 + os.getpid() % 20000
        sj = os.path.join(tmp, "source.json")
        dest = start(prefix(link, "dst", a.pin) + [
            a.livemig, "qemu-dest", "--qmp", "%s/dst.qmp" % tmp, "--listen",
            "tcp:%s:%d" % (link.dst_addr, port)] + sets, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(tmp, "dest.log"), "w"))
        wait_listen(link, port, dest)
        src = start(prefix(link, "src", a.pin) + [
            a.livemig, "qemu-source", "--qmp", "%s/src.qmp" % tmp, "--connect",
            "tcp:%s:%d" % (link.dst_addr, port), "--json", sj,
            "--set", "downtime-limit=%d" % a.downtime_limit] + sets,
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "source.log"), "w"))
        j = wait_pair(a, src, dest, sj, tmp)
        total = j["total-time"] / 1000
        for r, side in (("src", "source"), ("dst", "destination")):
            sec = (j["cpu"].get(side + "-seconds") or 0) + proc_cpu(vms[r].pid) - c0[r]
            j["cpu"][side + "-seconds"] = round(sec, 3)
            j["cpu"][side + "-percent"] = round(100 * sec / total, 1) if total else None
        j["downtime"] = j["qemu"]["downtime-ms"]  # STOP until the destination runs
        return j
    finally:
        for v in vms.values():
            v.kill()
            finish(v, 30, "QEMU")
        for f in ram.values():
            if os.path.exists(f):
                os.unlink(f)


def record(tool, cell, rnd, j, wire, wall, other, steal, a, link_desc):
    """The JSON line of one run: the figures the tables use, and the tool's
    own JSON under "raw"."""
    total = j["total-time"]
    cpu = j["cpu"]
    size = os.path.getsize(cell["image"])
    if wire is None:  # no namespace (not root): what the tool says it sent
        wire = j["ram"].get("transferred")
    verify = j.get("verify", {}).get("match")
    return {
        "tool": tool, "round": rnd, "ok": True,
        "cell": {k: v for k, v in cell.items() if k != "image"},
        "image": cell["image"], "image-bytes": size,
        "pinned": a.pin, "dest-prealloc": a.dest_prealloc, "link": link_desc,
        "total-ms": total, "downtime-ms": j.get("downtime"),
        "wire-bytes": wire,
        "mbps": round(wire * 8 / total / 1000, 1) if wire and total else None,
        "pages-per-second": round(size / PAGE / total * 1000) if total else None,
        "source-cpu-seconds": cpu.get("source-seconds"),
        "destination-cpu-seconds": cpu.get("destination-seconds"),
        "source-cpu-percent": cpu.get("source-percent"),
        "destination-cpu-percent": cpu.get("destination-percent"),
        "other-cpus": round(other / wall, 3) if wall else None,
        "steal-seconds": round(steal, 2),
        "verify": verify,
        "downtime-limit": a.downtime_limit,
        "raw": j,
    }


RUNNERS = {"livemig": run_livemig, "qemu": run_qemu, "qemu+livemig": run_qemu_livemig}
TOOL_NAMES = {"livemig": "livemig", "qemu": "QEMU 7.2", "qemu+livemig": "QEMU+livemig"}


def one_run(a, tool, cell, rnd, link, psk):
    read_through(cell["image"])
    b0, st0, us0, t0 = *machine_busy(), our_cpu(), time.monotonic()
    w0 = link.wire_bytes() if link else None
    with tempfile.TemporaryDirectory(prefix="lm-matrix-") as tmp:
        try:
            j = RUNNERS[tool](a, cell, link, psk, tmp)
        except (RuntimeError, OSError, ValueError, KeyError) as e:
            stop_running()  # what a failed run left
            return {"tool": tool, "round": rnd, "ok": False, "error": str(e),
                    "cell": {k: v for k, v in cell.items() if k != "image"},
                    "image": cell["image"], "pinned": a.pin}
    wall = time.monotonic() - t0
    b1, st1 = machine_busy()
    w1 = link.wire_bytes() if link else None
    if tool == "qemu":
        # Measured during the migration only (not QEMU's start and check).
        other, wall = j["cpu"]["other-seconds"], j["total-time"] / 1000
    else:
        other = max(0.0, (b1 - b0) - (our_cpu() - us0))
    desc = cell["link"] if cell["link"] == "loopback" else "veth, tbf " + cell["link"]
    return record(tool, cell, rnd, j, None if w0 is None else w1 - w0, wall, other, st1 - st0,
                  a, desc)


def sweep(a):
    """Every run, round-robin; returns the records written."""
    if a.image:
        images = {"given": a.image}
    else:
        size = parse_size(a.mem)
        images = {}
        for r in split(a.fill_ratio):
            images["%s %s %s" % (a.fill, r, a.mem)] = make_image(a.fill, r, size)
    cells = []
    for link in split(a.link):
        for tls in split(a.tls):
            for dirty in split(a.dirty_rate):
                for label, path in images.items():
                    for zp in split(a.zero_page):
                        for ch in [int(c) for c in split(a.channels)]:
                            for m in split(a.methods):
                                cells.append(dict(link=link, tls=tls, dirty=dirty, image=path,
                                                  fill=label, zero_page=zp, channels=ch,
                                                  method=m))

    def qemu_too(c):
        return (a.qemu and c["method"] in QEMU_METHODS and c["dirty"] == "0"
                and c["zero_page"] == "multifd")
    n = sum(1 + qemu_too(c) * (1 + a.qemu_livemig) for c in cells) * a.repeat
    log("%s x %s = %s; %s; %s" % (
        plural(len(cells), "cell"), plural(a.repeat, "round"), plural(n, "run"),
        "pinned: source on CPU 0, destination on CPU 1" if a.pin else "not pinned",
        "QEMU beside livemig for none/zlib/zstd" if a.qemu else "no QEMU"))
    warm(2 * max(os.path.getsize(p) for p in images.values()))
    links, psk = {}, None
    if "psk" in split(a.tls):
        psk = os.path.join(a.out, "psk")
        os.makedirs(psk, exist_ok=True)
        if not os.path.exists(os.path.join(psk, "keys.psk")):
            subprocess.run(["psktool", "-u", "qemu", "-p", os.path.join(psk, "keys.psk")],
                           check=True, stdout=subprocess.DEVNULL)
    records = []
    try:
        for i, l in enumerate(split(a.link)):
            if os.geteuid() != 0:
                links[l] = None
            elif l == "loopback":
                links[l] = netlink.Loopback(str(i))
            else:
                links[l] = netlink.Link(l, str(i))
        k, t0 = 0, time.monotonic()
        with open(os.path.join(a.out, "runs.jsonl"), "a") as out:
            for rnd in range(1, a.repeat + 1):
                for ci, cell in enumerate(cells):
                    tools = ["livemig"] + (["qemu"] if qemu_too(cell) else []) + (
                        ["qemu+livemig"] if qemu_too(cell) and a.qemu_livemig else [])
                    turn = (rnd + ci) % len(tools)  # each tool goes first in turn
                    tools = tools[turn:] + tools[:turn]
                    for tool in tools:
                        rec = one_run(a, tool, cell, rnd, links[cell["link"]], psk)
                        k += 1
                        out.write(json.dumps(rec) + "\n")
                        out.flush()
                        records.append(rec)
                        el = time.monotonic() - t0
                        eta = el / k * (n - k)
                        log("cell %d/%d round %d/%d, run %d/%d: %s %s %d ch %s: %s, ETA %dm%02ds" % (
                            ci + 1, len(cells), rnd, a.repeat, k, n, tool, cell["method"],
                            cell["channels"], cell["link"],
                            "%d ms" % rec["total-ms"] if rec["ok"] else "FAILED " + rec["error"],
                            eta // 60, eta % 60))
    finally:
        stop_running()
        for l in links.values():
            if l:
                l.close()
    return records


# ---------------------------------------------------------------- the report

def med(runs, key):
    v = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(v) if v else None


def fmt(v, f="%.0f"):
    return "-" if v is None else f % v


def group_key(c):
    return (c["link"], c["tls"], c["dirty"], c["fill"], c["zero_page"])


def title(key, varying):
    link, tls, dirty, fill, zp = key
    parts = ["link " + link]
    for name, v in (("tls", tls), ("dirty", dirty), ("fill", fill), ("zero-page", zp)):
        if name in varying or (name == "dirty" and dirty != "0") or (name == "tls" and tls != "off"):
            parts.append("%s %s" % (name, v))
    return ", ".join(parts)


def collect(records):
    """{(group key, method, channels, tool): [ok runs]} and the failures."""
    cells, failed = {}, []
    for r in records:
        if not r["ok"]:
            failed.append(r)
            continue
        c = r["cell"]
        cells.setdefault((group_key(c), c["method"], c["channels"], r["tool"]), []).append(r)
    return cells, failed


def layout(cells):
    """The groups (a table each per method), which group fields vary, the
    methods (auto last) and the channel counts."""
    groups = sorted({k[0] for k in cells})
    varying = {n for i, n in enumerate(("link", "tls", "dirty", "fill", "zero-page"))
               if len({g[i] for g in groups}) > 1}
    methods = sorted({k[1] for k in cells}, key=lambda m: (m == "auto", m))
    return groups, varying, methods, sorted({k[2] for k in cells})


def spread(runs):
    t = [r["total-ms"] for r in runs]
    m = statistics.median(t)
    return (max(t) - min(t)) / m if m else 0


def row(ch, tool, runs):
    s = spread(runs)
    return "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s%s | %s |" % (
        ch, tool, fmt(med(runs, "total-ms")), fmt(med(runs, "downtime-ms")),
        fmt(med(runs, "mbps")), fmt(med(runs, "pages-per-second")),
        fmt(med(runs, "source-cpu-percent")), fmt(med(runs, "destination-cpu-percent")),
        fmt(med(runs, "wire-bytes") and med(runs, "wire-bytes") / 2**20, "%.1f"),
        len(runs), "-" if len(runs) < 2 else fmt(100 * s),
        "" if len(runs) < 2 else " %" + (" **!**" if s > SPREAD_FLAG else ""),
        fmt(med(runs, "other-cpus"), "%.2f"))


def ratio(a, b, key):
    x, y = med(a, key), med(b, key)
    return "%.2fx" % (x / y) if x is not None and y else "-"


def tables(records):
    cells, failed = collect(records)
    groups, varying, methods, chans = layout(cells)
    any_run = next(iter(records), {})
    out = ["Medians of each cell's runs; spread = (max - min) / median of total time, "
           "**!** above %d %% (one run: no spread to see). Downtime = each tool's own "
           "figure (guest stopped to running at the destination); wire MiB = bytes the "
           "link's counters saw, headers and ACKs included. "
           "Network Mbit/s = bytes on the link x 8 / total time; "
           "pages/s = guest pages / total time; CPU %% = a side's CPU seconds / total time "
           "(100 %% = one core); others = CPUs the machine's other processes used during "
           "the run (of %d). %s." % (
               100 * SPREAD_FLAG, os.cpu_count(),
               "Sides pinned: source on CPU 0, destination on CPU 1"
               if any_run.get("pinned") else "Sides not pinned") + (
               " Destination memory preallocated before the migration (livemig and QEMU 7.2; "
               "not the third row's QEMUs)."
               if any_run.get("dest-prealloc") else ""), ""]
    for g in groups:
        for m in methods:
            if not any((g, m, ch, "livemig") in cells for ch in chans):
                continue
            out += ["#### %s, %s" % (m, title(g, varying)), "",
                    "| channels | tool | total time (ms) | downtime (ms) | network (Mbit/s) | "
                    "pages/s | source CPU % | dest CPU % | wire MiB | runs | spread | others |",
                    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for ch in chans:
                rows = {t: cells.get((g, m, ch, t)) for t in TOOL_NAMES}
                for t, runs in rows.items():
                    if runs:
                        out.append(row(ch, TOOL_NAMES[t], runs))
                q = rows["qemu"]
                for t in ("livemig", "qemu+livemig"):
                    if rows[t] and q:
                        out.append("| %s | %s/QEMU | %s | %s | %s | %s | %s | %s | %s | | | |" % (
                            ch, TOOL_NAMES[t], *(ratio(rows[t], q, k) for k in (
                                "total-ms", "downtime-ms", "mbps", "pages-per-second",
                                "source-cpu-percent", "destination-cpu-percent",
                                "wire-bytes"))))
            out.append("")
    out += summary(records)
    if failed:
        out += ["Failed runs:", ""] + ["- %s %s round %d: %s" % (
            r["tool"], json.dumps(r["cell"]), r["round"], r["error"]) for r in failed] + [""]
    return "\n".join(out)


def summary(records):
    """The best-methods table and, for live runs, the downtime table."""
    cells, failed = collect(records)
    groups, varying, methods, chans = layout(cells)
    ok = [r for r in records if r["ok"]]
    load = med(ok, "other-cpus")
    head = ["%d runs (%d failed); other processes used a median of %s of the %d CPUs "
            "during a run; %d of %d cells' spread above %d %%." % (
                len(records), len(failed), fmt(load, "%.2f"), os.cpu_count(),
                sum(spread(rs) > SPREAD_FLAG for rs in cells.values()), len(cells),
                100 * SPREAD_FLAG), ""]
    return (head + best_table(cells, groups, varying, chans) +
            live_table(cells, groups, varying, methods, chans))


def against(records, other, other_dir):
    """Each cell's median total time against the same cell in another run
    (the issue's reproducibility check): the cells that differ by more than
    the spread flag, or all agree."""
    mine, _ = collect(records)
    theirs, _ = collect(other)
    common = sorted(k for k in mine if k in theirs)
    out = ["#### Against %s" % other_dir, ""]
    if not common:
        return out + ["No cell in common.", ""]
    groups, varying, _, _ = layout(mine)
    off = []
    for k in common:
        x, y = med(mine[k], "total-ms"), med(theirs[k], "total-ms")
        if abs(x / y - 1) > SPREAD_FLAG:
            off.append("| %s | %s | %d | %s | %.0f | %.0f | %.2fx |" % (
                title(k[0], varying), k[1], k[2], TOOL_NAMES[k[3]], x, y, x / y))
    out.append("%d of %d cells' median total time within %d %% of %s's." % (
        len(common) - len(off), len(common), 100 * SPREAD_FLAG, other_dir))
    if off:
        out += ["", "| setting | method | channels | tool | this run (ms) | that run (ms) | "
                "ratio |", "|---|---|---:|---|---:|---:|---:|"] + off
    return out + [""]


def cpu_s(runs):
    v = [r["source-cpu-seconds"] + r["destination-cpu-seconds"] for r in runs
         if r.get("source-cpu-seconds") is not None and r.get("destination-cpu-seconds") is not None]
    return statistics.median(v) if v else None


def best_table(cells, groups, varying, chans):
    """Per link and channels: livemig's best fixed method against QEMU's best,
    and auto against livemig's best fixed method (the issue's acceptance)."""
    out = ["#### Best methods", "",
           "Per setting and channel count: livemig's fastest fixed method (median total time) "
           "against QEMU's fastest, and auto against livemig's fastest fixed method; CPU s = "
           "source + destination CPU seconds (medians); the last column is the fastest "
           "method's wire bytes x 8 / link rate, the time the link alone would need. "
           "- = not run (no QEMU cell, no auto cell, no link rate on loopback).", "",
           "| setting | channels | livemig best (ms) | QEMU best (ms) | livemig/QEMU | "
           "auto (ms) | auto/best | auto CPU s | best CPU s | best: wire bytes / link rate (ms) |",
           "|---|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for g in groups:
        for ch in chans:
            def best(tool, fixed=True):
                c = [(med(r, "total-ms"), m, r) for (gg, m, cc, t), r in cells.items()
                     if gg == g and cc == ch and t == tool and (m != "auto" or not fixed)]
                return min(c, key=lambda x: x[0]) if c else None
            lb, qb = best("livemig"), best("qemu")
            au = cells.get((g, "auto", ch, "livemig"))
            if not lb:
                continue
            rate = link_rate(g[0])
            floor = med(lb[2], "wire-bytes") * 8 / rate * 1000 if rate and med(
                lb[2], "wire-bytes") else None
            out.append("| %s | %d | %s %.0f | %s | %s | %s | %s | %s | %s | %s |" % (
                title(g, varying), ch, lb[1], lb[0], "%s %.0f" % (qb[1], qb[0]) if qb else "-",
                "%.2fx" % (lb[0] / qb[0]) if qb else "-",
                fmt(med(au, "total-ms")) if au else "-",
                "%.3fx" % (med(au, "total-ms") / lb[0]) if au else "-",
                fmt(cpu_s(au), "%.2f") if au else "-", fmt(cpu_s(lb[2]), "%.2f"),
                "%.0f (%.2fx)" % (floor, lb[0] / floor) if floor else "-"))
    return out + [""]


def link_rate(link):
    """bit/s of a tbf rate such as 1gbit, 100mbit, 10gbit; None for loopback."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kmg]?)bit", link.lower())
    return float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)] if m else None


def live_table(cells, groups, varying, methods, chans):
    """Downtime distribution of live runs (a dirtying guest)."""
    out = []
    for g in groups:
        if g[2] == "0":
            continue
        if not out:
            out = ["#### Downtime of live runs", "",
                   "| setting | method | channels | runs | downtime min / median / p90 / max (ms) "
                   "| downtime-limit (ms) | within limit | passes (median) |",
                   "|---|---|---:|---:|---|---:|---:|---:|"]
        for m in methods:
            for ch in chans:
                runs = cells.get((g, m, ch, "livemig"))
                if not runs:
                    continue
                d = sorted(r["downtime-ms"] for r in runs)
                lim = runs[0].get("downtime-limit")
                out.append("| %s | %s | %d | %d | %d / %.0f / %d / %d | %s | %d/%d | %.0f |" % (
                    title(g, varying), m, ch, len(d), d[0], statistics.median(d),
                    d[min(len(d) - 1, int(0.9 * len(d)))], d[-1], fmt(lim),
                    sum(x <= (lim or 1e18) for x in d), len(d),
                    statistics.median(len(r["raw"].get("iterations", [])) for r in runs)))
    return out + [""] if out else []


# ---------------------------------------------------------------- plots

def plots(records, outdir):
    """gnuplot SVG + PNG; the list of files written, [] without gnuplot."""
    gp = shutil.which("gnuplot")
    if not gp:
        log("no plots: gnuplot is not installed (apt-get install gnuplot-nox)")
        return []
    pdir = os.path.join(outdir, "plots")
    os.makedirs(pdir, exist_ok=True)
    cells, _ = collect(records)
    groups = sorted({k[0] for k in cells})
    written = []
    for gi, g in enumerate(groups):
        name = re.sub(r"[^A-Za-z0-9.]+", "-", "-".join(g)).strip("-")
        series = sorted({(m, t) for (gg, m, ch, t) in cells if gg == g})
        for what, label, f in (
                ("time", "total time (ms)", lambda rs: med(rs, "total-ms")),
                ("cpu", "CPU, source + destination (% of one core)",
                 lambda rs: (med(rs, "source-cpu-percent") or 0) +
                 (med(rs, "destination-cpu-percent") or 0))):
            dat = os.path.join(pdir, "%s-%s.dat" % (name, what))
            with open(dat, "w") as d:
                for m, t in series:
                    d.write("# %s %s\n" % (TOOL_NAMES[t], m))
                    for (gg, mm, ch, tt), rs in sorted(cells.items(), key=lambda x: x[0][2]):
                        if gg == g and mm == m and tt == t:
                            d.write("%d %s\n" % (ch, f(rs)))
                    d.write("\n\n")
            plot = ", ".join("'%s' index %d with linespoints title '%s %s'%s" % (
                dat, i, TOOL_NAMES[t], m, "" if t == "livemig" else " dashtype %d" % (
                    2 if t == "qemu" else 3)) for i, (m, t) in enumerate(series))
            written += gnuplot(gp, os.path.join(pdir, "%s-%s" % (name, what)),
                               "%s: %s" % (label, " ".join(g)), "channels", label, plot,
                               "set logscale x 2\n")
        if g[2] != "0":  # live: each pass of the median-time run of each cell
            dat = os.path.join(pdir, "%s-passes.dat" % name)
            keys = [k for k in cells if k[0] == g and k[3] == "livemig"]
            with open(dat, "w") as d:
                for k in keys:
                    rs = sorted(cells[k], key=lambda r: r["total-ms"])
                    it = rs[len(rs) // 2]["raw"].get("iterations", [])
                    d.write("# %s %d ch\n" % (k[1], k[2]))
                    for i, p in enumerate(it):
                        d.write("%d %d %d\n" % (i + 1, p.get("dirty-pages-rate", 0),
                                                p.get("pages", 0) * PAGE))
                    d.write("\n\n")
            for col, what, label in ((2, "dirty", "dirty rate (pages/s)"),
                                     (3, "remaining", "bytes remaining when the pass starts")):
                plot = ", ".join("'%s' index %d using 1:%d with linespoints title '%s %d ch'" % (
                    dat, i, col, k[1], k[2]) for i, k in enumerate(keys))
                written += gnuplot(gp, os.path.join(pdir, "%s-%s" % (name, what)),
                                   "%s per pass: %s" % (label, " ".join(g)), "pass", label, plot,
                                   "set xtics 1\n")
    return written


def gnuplot(gp, base, ttl, xl, yl, plot, extra):
    files = []
    for term, ext in (("svg size 800,500 dynamic", "svg"), ("pngcairo size 800,500", "png")):
        script = ("set terminal %s\nset output '%s.%s'\nset title \"%s\" noenhanced\n"
                  "set xlabel '%s'\nset ylabel '%s' noenhanced\nset key outside right noenhanced\n"
                  "set grid\nset yrange [0:*]\n%splot %s\n" % (term, base, ext, ttl, xl, yl,
                                                            extra, plot))
        r = subprocess.run([gp], input=script, capture_output=True, text=True, timeout=60)
        if r.returncode:
            log("gnuplot failed for %s.%s: %s" % (base, ext, r.stderr.strip()[-300:]))
        else:
            files.append("%s.%s" % (base, ext))
    return files


# ---------------------------------------------------------------- machine

def machine(a, argv):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) * 1024
    q = shutil.which("qemu-system-x86_64")
    qv = subprocess.run([q, "--version"], capture_output=True, text=True).stdout.split(
        "\n")[0] if q else "none"
    lv = subprocess.run([a.livemig, "--version"], capture_output=True, text=True).stdout.strip()
    return "\n".join([
        "- date: %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "- host: %s" % socket.gethostname(),
        "- CPU: %s, %d cores (os.cpu_count)" % (cpu, os.cpu_count()),
        "- memory: %.1f GiB" % (mem / 2**30),
        "- kernel: %s" % platform.release(),
        "- livemig: %s; QEMU: %s" % (lv or "?", qv if a.qemu else "not run (%s)" % (
            "--no-qemu" if a.no_qemu_asked else "needs root and qemu-system-x86_64")),
        "- swept: channels %s; methods %s; link %s; %s; zero-page %s; "
        "dirty-rate %s; tls %s; %s each%s" % (
            a.channels, a.methods, a.link, "image %s" % a.image if a.image else
            "fill %s, ratio %s, of %s" % (a.fill, a.fill_ratio, a.mem),
            a.zero_page, a.dirty_rate, a.tls, plural(a.repeat, "run"),
            "; scenario %s (its settings, options given win)" % a.scenario if a.scenario else ""),
        "- links: %s" % "; ".join(
            ("loopback = both sides in a network namespace of their own over 127.0.0.1"
             if os.geteuid() == 0 else "loopback = 127.0.0.1 in this network namespace")
            if l == "loopback" else
            "%s = the destination and the source in two network namespaces joined by a veth "
            "pair, both ends shaped with tc tbf rate %s burst 512kb latency 50ms" % (l, l)
            for l in split(a.link)),
        "- image: %s" % (a.image if a.image else
                         "made once per fill, ratio and size by bench/make-image.sh (corpus) "
                         "or random pages, kept in %s and reused" % CACHE),
        "- pinning: %s" % ("source on CPU 0, destination on CPU 1 (taskset)%s" % (
            ", QEMU the same" if a.qemu else "") if a.pin else "none"),
        "- destination memory: %s" % (
            "preallocated before the migration starts (livemig dest --mem SIZE --prealloc%s), "
            "not part of its time" % (", QEMU's memory backend prealloc=on" if a.qemu else "")
            if a.dest_prealloc else "faulted in as pages arrive"),
        "- command: `%s`" % " ".join(shlex.quote(w) for w in argv), ""])


def report(a, outdir):
    """tables.md and the plots from outdir/runs.jsonl (and --against, --readme)."""
    with open(os.path.join(outdir, "runs.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    if not records:
        raise Usage("%s/runs.jsonl has no runs" % outdir)
    cmp = []
    if a.against:
        with open(os.path.join(a.against, "runs.jsonl")) as f:
            cmp = against(records, [json.loads(line) for line in f if line.strip()], a.against)
    text = tables(records) + "\n" + "\n".join(cmp)
    with open(os.path.join(outdir, "tables.md"), "w") as f:
        f.write(text + "\n")
    files = plots(records, outdir)
    if a.readme:
        mpath = os.path.join(outdir, "machine.md")
        mach = open(mpath).read() if os.path.exists(mpath) else ""
        rel = os.path.relpath(outdir, os.path.dirname(os.path.abspath(a.readme)))
        section = "\n".join([MARK_BEGIN, "", "Made by `livemig bench --matrix --report %s%s "
                             "--readme %s` from `%s/`: every cell's table in its tables.md, "
                             "every run in runs.jsonl, plots in plots/." % (
                                 outdir, " --against " + a.against if a.against else "",
                                 a.readme, rel), "", mach] + summary(records) + cmp +
                            [MARK_END])
        body = open(a.readme).read() if os.path.exists(a.readme) else ""
        if MARK_BEGIN in body and MARK_END in body:
            body = body[:body.index(MARK_BEGIN)] + section + body[body.index(MARK_END) +
                                                                   len(MARK_END):]
        else:
            body = body.rstrip("\n") + "\n\n" + section + "\n"
        with open(a.readme, "w") as f:
            f.write(body)
    print(text)
    for p in files:
        log("plot %s" % p)
    return records


# ---------------------------------------------------------------- main

def options():
    ap = argparse.ArgumentParser(
        prog="livemig bench --matrix", description=__doc__.split("\n\n")[0],
        epilog="Scenarios (the seeds' setups scaled to 2 cores and a 1 GiB guest; docs/"
        "benchmarks.md): " + "; ".join("%s: %s" % (k, ", ".join(
            "%s=%s" % (o.replace("_", "-"), v) for o, v in s.items())) for k, s in
            SCENARIOS.items()))
    ap.add_argument("--channels", metavar="LIST", help="multifd-channels values (default 2,4,8)")
    ap.add_argument("--methods", metavar="LIST",
                    help="methods (default: every one `livemig info` lists, and auto)")
    ap.add_argument("--link", metavar="LIST", help="loopback and/or tbf rates such as 1gbit, "
                    "10gbit (default loopback); a rate puts the sides in two namespaces joined "
                    "by a shaped veth pair (root)")
    ap.add_argument("--dirty-rate", metavar="LIST",
                    help="a running guest dirtying RATE bytes/s (default 0: idle); "
                    "QEMU runs only idle")
    ap.add_argument("--tls", metavar="LIST", help="off and/or psk (default off)")
    ap.add_argument("--zero-page", metavar="LIST",
                    help="zero-page-detection: multifd and/or dsa (the DSA work-queue model, "
                    "dsa-path=x-model) (default multifd)")
    ap.add_argument("--repeat", type=int, metavar="R", help="runs of each cell (default 3)")
    ap.add_argument("--pin", action="store_true",
                    help="source on CPU 0, destination on CPU 1 (taskset), QEMU the same")
    ap.add_argument("--dest-prealloc", action=argparse.BooleanOptionalAction, default=None,
                    help="preallocate the destination's memory before each migration, outside "
                    "its time (livemig dest --mem --prealloc, QEMU prealloc=on), as the qpl "
                    "seed's -mem-prealloc; the third row's QEMUs are not")
    ap.add_argument("--image", metavar="FILE", help="the guest image (default: made, see --mem)")
    ap.add_argument("--mem", metavar="SIZE", help="size of the made image (default 1G)")
    ap.add_argument("--fill", choices=("corpus", "random"),
                    help="the made image's filled pages (default corpus: bench/make-image.sh)")
    ap.add_argument("--fill-ratio", metavar="LIST",
                    help="share of filled pages, the rest zero (default 0.9); a list makes one "
                    "image each")
    ap.add_argument("--downtime-limit", type=int, default=300, metavar="MS",
                    help="for both tools (default 300)")
    ap.add_argument("--timeout", type=int, default=900, metavar="S",
                    help="bound on one migration (default 900)")
    ap.add_argument("--scenario", choices=sorted(SCENARIOS),
                    help="the seeds' setups; options given still win")
    ap.add_argument("--no-qemu", dest="qemu", action="store_false", help="livemig only")
    ap.add_argument("--no-qemu-livemig", dest="qemu_livemig", action="store_false",
                    help="no third row of QEMU with livemig carrying its RAM (livemig "
                    "qemu-source/qemu-dest, stop-and-copy)")
    ap.add_argument("--out", metavar="DIR", help="results, a directory without runs.jsonl "
                    "(default bench/results/DATE-HOST, or ./results/DATE-HOST where there is "
                    "no bench/; -2, -3, ... when that holds runs)")
    ap.add_argument("--report", metavar="DIR", help="no runs: tables and plots from DIR/runs.jsonl")
    ap.add_argument("--readme", metavar="FILE", help="also put the results section into FILE")
    ap.add_argument("--against", metavar="DIR", help="with --report: each cell's median "
                    "total time against DIR's (a second run of the same matrix)")
    ap.add_argument("--livemig", default=os.environ.get("LIVEMIG", "livemig"),
                    help="the livemig binary (livemig bench --matrix passes itself)")
    return ap


def main(argv):
    ap = options()
    a = ap.parse_args(argv)
    try:
        if a.against and not a.report:
            raise Usage("--against DIR goes with --report DIR2 (tables of DIR2 against DIR)")
        if a.report:
            for d in [a.report] + ([a.against] if a.against else []):
                if not os.path.isfile(os.path.join(d, "runs.jsonl")):
                    raise Usage("%s: no runs.jsonl (a matrix's --out directory)" % d)
            report(a, a.report)
            return 0
        sc = SCENARIOS.get(a.scenario, {})
        for k, v in list(DEFAULTS.items()) + [("methods", None)]:
            if getattr(a, k) is None:
                setattr(a, k, sc.get(k, v))
        if a.methods is None:
            a.methods = ",".join(livemig_methods(a.livemig))
        if a.repeat < 1:
            raise Usage("--repeat must be at least 1")
        for ch in split(a.channels):
            if not ch.isdigit() or not 1 <= int(ch) <= 255:
                raise Usage("--channels %s: a whole number 1..255" % ch)
        if not a.image and parse_size(a.mem) == 0:
            raise Usage("--mem must be above 0")
        for l in split(a.link):
            if l != "loopback" and not link_rate(l):
                raise Usage("--link %s: loopback or a rate such as 1gbit, 100mbit" % l)
            if l != "loopback" and os.geteuid():
                raise Usage("--link %s needs root (network namespaces, tc)" % l)
        for t in split(a.tls):
            if t not in ("off", "psk"):
                raise Usage("--tls %s: off or psk" % t)
        for z in split(a.zero_page):
            if z not in ("multifd", "dsa"):
                raise Usage("--zero-page %s: multifd or dsa" % z)
        for d in split(a.dirty_rate):
            parse_size(d)
        known = livemig_methods(a.livemig)
        for m in split(a.methods):
            if m not in known:
                raise Usage("--methods %s: not one of %s" % (m, ",".join(known)))
        if a.pin and (os.cpu_count() < 2 or not shutil.which("taskset")):
            raise Usage("--pin needs 2 CPUs and taskset")
        if a.image and not os.path.isfile(a.image):
            raise Usage("--image %s: no such file" % a.image)
        a.no_qemu_asked = not a.qemu
        if a.qemu and (os.geteuid() or not shutil.which("qemu-system-x86_64")):
            log("no QEMU runs: they need root and qemu-system-x86_64")
            a.qemu = False
        if not shutil.which("gnuplot"):
            log("gnuplot is not installed: no plots (apt-get install gnuplot-nox)")
        if a.out and os.path.exists(os.path.join(a.out, "runs.jsonl")):
            raise Usage("--out %s already holds a matrix's runs (runs.jsonl): another "
                        "directory, or remove it" % a.out)
        if not a.out:  # a new directory: DATE-HOST, then DATE-HOST-2, ...
            base = os.path.join("bench" if os.path.isdir("bench") else ".", "results",
                                "%s-%s" % (datetime.date.today().isoformat(),
                                           socket.gethostname()))
            a.out, k = base, 2
            while os.path.exists(os.path.join(a.out, "runs.jsonl")):
                a.out, k = "%s-%d" % (base, k), k + 1
        os.makedirs(a.out, exist_ok=True)
    except Usage as e:
        log(str(e))
        return 2
    with open(os.path.join(a.out, "machine.md"), "w") as f:
        shown = [w for i, w in enumerate(argv) if w != "--livemig" and (
            i == 0 or argv[i - 1] != "--livemig") and not w.startswith("--livemig=")]
        f.write(machine(a, ["livemig", "bench", "--matrix"] + shown))

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    try:
        records = sweep(a)
    except KeyboardInterrupt:
        log("interrupted: links removed; runs so far in %s/runs.jsonl" % a.out)
        return 130
    report(a, a.out)
    log("results in %s" % a.out)
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Operating livemig (issue 12): exit status 2 for every usage error, nothing
started; a destination on port 0 says where it listens and bench uses it;
ram.remaining after the destination is killed mid-way; 1 ms and 4 ms
downtime limits complete with a nearly idle guest."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmtest as t  # noqa: E402

c = t.Checker("ops")
L = t.LIVEMIG
tmp = tempfile.mkdtemp(prefix="lm-ops-")


def run(*args, timeout=60):
    p = subprocess.run([L] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


# Usage errors: exit 2, a message naming the culprit, nothing started
# (nothing listens on port 1: a source that got as far as connecting
# would fail with 1).
usage = [
    (["source", "--connect", "udp:1.2.3.4:5", "--mem", "1M"], "tcp:HOST:PORT"),
    (["source", "--connect", "unix:/" + "x" * 200, "--mem", "1M"], "107"),
    (["dest", "--listen", "unix:/" + "x" * 200], "107"),
    (["source", "--connect", "tcp:127.0.0.1:1", "--mem", "1M", "--set",
      "multifd-compression=zstd", "--set", "compression-engine=zlib"], "compression-engine"),
    (["source", "--connect", "tcp:127.0.0.1:1", "--mem", "1M", "--set",
      "tls-psk-identity=a"], "tls-psk-identity needs tls-creds"),
    (["source", "--connect", "tcp:127.0.0.1:1", "--mem", "1M", "--set",
      "tls-hostname=a"], "tls-hostname needs tls-creds"),
    (["dest", "--listen", "tcp:127.0.0.1:0", "--set", "tls-authz=/x"], "tls-authz needs tls-creds"),
    (["dest", "--listen", "tcp:127.0.0.1:0", "--fill", "random"], "--fill is for"),
    (["dest", "--listen", "tcp:127.0.0.1:0", "--mem", "0"], "expected a size above 0"),
    (["dest", "--listen", "tcp:127.0.0.1:0", "--dirty-rate", "5"], "--dirty-rate is for"),
    (["dest", "--listen", "tcp:127.0.0.1:0", "--on-unknown", "stay"], "--on-unknown is for"),
    (["dest", "--listen", "tcp:127.0.0.1:0", "--frobnicate"], "unknown option"),
    (["source", "--connect", "tcp:127.0.0.1:1", "--mem", "0"], "--mem"),
    (["source", "--connect", "tcp:127.0.0.1:1", "--mem", "1M", "--json",
      "/nonexistent/x.json"], "/nonexistent/x.json"),
    (["bench", "--mem", "0"], "--mem"),
    (["bench", "--mem=1M", "--set=multifd-channels=0"], "multifd-channels"),
    (["bench", "--mem", "1M", "--fill", "sand"], "fill"),
    (["bench", "--mem", "1M", "--json", "/nonexistent/x.json"], "/nonexistent/x.json"),
    (["bench", "--prealloc"], "--prealloc is for"),
    # What getopt found wrong, in words.
    (["dest", "--listen", "tcp:127.0.0.1:0", "-v"], "unknown option '-v'"),
    (["dest", "--listen", "tcp:127.0.0.1:0", "-x", "foo"], "unknown option '-x'"),
    (["dest", "--listen", "tcp:127.0.0.1:0", "--verbose=1"], "--verbose takes no value"),
    (["dest", "--listen", "tcp:127.0.0.1:0", "--prealloc=no"], "--prealloc takes no value"),
    (["dest", "--listen", "tcp:127.0.0.1:0", "--no-progress=yes"], "--no-progress takes no value"),
    (["dest", "--listen"], "option '--listen' needs a value"),
    (["dest", "--d"], "ambiguous option '--d' (--dump? --dirty-rate?"),
    (["source", "--c", "x"], "ambiguous option '--c' (--connect? --cap? --control?)"),
    (["source", "--connect", "tcp:127.0.0.1:1", "--mem", "99999999T"], "'99999999T': too large"),
    # Above what one block holds, also where rounding up to pages would wrap.
    (["dest", "--listen", "tcp:127.0.0.1:0", "--mem", "16T"], "'16T': too large (at most 16 TiB"),
    (["dest", "--listen", "tcp:127.0.0.1:0", "--mem", "18446744073709551615"], "too large"),
    (["dest", "--listen", "tcp:127.0.0.1:0", "--set", "max-ram=abc"],
     "max-ram: 'abc' is not a size in bytes"),
    # More than max-ram, with or without --prealloc: refused before it
    # listens, not when a source comes.
    (["dest", "--listen", "tcp:127.0.0.1:0", "--mem", "64M", "--set", "max-ram=32M"],
     "--mem: the RAM registered (67108864 bytes) is more than max-ram (33554432 bytes)"),
    (["dest", "--listen", "tcp:127.0.0.1:0", "--mem", "64M", "--set", "max-ram=32M",
      "--prealloc"], "--mem: the RAM registered (67108864 bytes) is more than max-ram (33554432 bytes)"),
]
for args, word in usage:
    rc, out, err = run(*args, timeout=30)
    c.check(rc == 2 and word in err, "usage error %s: exit %s, %r" % (" ".join(args), rc, err))

# dest --mem SIZE --prealloc: its memory allocated and faulted in before it
# listens; the source must send that size, or both fail with the reason.
for src_mem, ok in (("8M", True), ("16M", False)):
    uri = "tcp:127.0.0.1:%d" % t.free_port()
    dump, sdump = os.path.join(tmp, "mem-dest.bin"), os.path.join(tmp, "mem-src.bin")
    d = t.start_dest(uri, "--mem", "8M", "--prealloc", dump=dump if ok else None)
    rc, out, err = t.run_source(uri, "--mem", src_mem, "--fill", "random", "--dump", sdump)
    drc, dout, derr = t.finish(d)
    if ok:
        c.check(rc == 0 and drc == 0 and t.same_files(sdump, dump),
                "dest --mem 8M --prealloc: exit %s/%s, same memory %s\n%s\n%s"
                % (rc, drc, rc == 0 and t.same_files(sdump, dump), err, derr))
    else:
        c.check(rc != 0 and drc != 0 and "registered" in err + derr,
                "dest --mem 8M, source 16M: exit %s/%s\n%s\n%s" % (rc, drc, err, derr))

# A size that is not a whole number of pages: rounded, with a notice.
rc, out, err = run("source", "--connect", "tcp:127.0.0.1:1", "--mem", "1000", "--set",
                   "net-timeout=1", "--no-progress")
c.check(rc == 1 and "not a whole number" in err and "4096" in err, "--mem 1000: %r" % err)

# SUBCOMMAND --help: that subcommand's options only.
rc, out, err = run("dest", "--help")
c.check(rc == 0 and "--listen" in out and "--connect" not in out and "--dirty-rate" not in out,
        "dest --help: its own options")
rc, out, err = run("source", "-h")
c.check(rc == 0 and "--connect" in out and "--listen" not in out and "--ready-fd" in out,
        "source -h: its own options")
rc, out, err = run("bench", "--help")
c.check(rc == 0 and "--uri" in out and not re.search(r"^  --prealloc\b", out, re.M),
        "bench --help")
# ... and no other subcommand's defaults (--mem's 4G is bench's).
mem_help = re.compile(r"^  --mem SIZE\n((?: {24}.*\n)+)", re.M)
for sub, says in (("source", None), ("bench", "default 4G")):
    rc, out, err = run(sub, "--help")
    m = mem_help.search(out)
    h = " ".join(m.group(1).split()) if m else ""
    c.check(m and (says in h if says else "default" not in h and "bench" not in out),
            "%s --help on --mem: %r" % (sub, h))
rc, out, err = run("dest", "--help")
c.check("source's connections have not all come" in " ".join(out.split()),
        "dest --help on --timeout")
# The whole tool's --help: the qemu commands take --control too.
rc, out, err = run("--help")
for sub in ("qemu-source", "qemu-dest"):
    m = re.search(r"livemig %s .*\n(?: {17}.*\n)*" % sub, out)
    c.check(m and "--control unix:PATH" in m.group(0), "--help: %s takes --control: %r"
            % (sub, m.group(0) if m else out[:300]))
rc, out, err = run("bench", "--mem=16M")
c.check(rc == 0 and "wire(Mbit/s)" in out, "bench's rate column says its unit: %r" % out[:200])

# Port 0: the destination prints the real port; a source can use it.
d = subprocess.Popen([L, "dest", "--listen", "tcp:127.0.0.1:0", "--no-progress"],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
line = d.stderr.readline()
m = re.search(r"listening on (tcp:127\.0\.0\.1:(\d+))", line)
c.check(m and int(m.group(2)) > 0, "dest on port 0 says where: %r" % line)
if m:
    rc, out, err = t.run_source(m.group(1), "--mem", "16M")
    c.check(rc == 0, "a source migrates to the printed port: %s %r" % (rc, err))
rc, out, err = t.finish(d, 30)
c.check(rc == 0, "dest on port 0 exits 0: %s" % rc)
rc, out, err = run("bench", "--mem=32M", "--uri", "tcp:127.0.0.1:0", timeout=120)
c.check(rc == 0 and "match" in out, "bench --uri tcp:127.0.0.1:0: %s %r" % (rc, err))

# ram.remaining after the destination is killed during pass 1: what was
# not sent, not 0; the destination's CPU is unknown (null), not 0.
port = t.free_port()
uri = "tcp:127.0.0.1:%d" % port
d = t.start_dest(uri)
js = os.path.join(tmp, "killed.json")
s = subprocess.Popen([L, "source", "--connect", uri, "--mem", "512M", "--fill", "random",
                      "--set", "max-bandwidth=64M", "--set", "net-timeout=2", "--no-progress",
                      "--json", js], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
time.sleep(1.5)
d.send_signal(signal.SIGKILL)
rc, out, err = t.finish(s, 60)
d.wait()
c.check(rc == 1, "source after the kill: exit 1 (%s)" % rc)
c.check(err.find("migration failed") >= 0 and (not out or err.find("migration failed") >= 0),
        "the error is printed: %r" % err)
try:
    st = json.load(open(js))
    ram = st["ram"]
    sent = (ram["normal"] + ram["duplicate"]) * t.PAGE
    c.check(st["status"] == "failed" and ram["remaining"] > 0 and
            ram["remaining"] >= ram["total"] - sent - 64 * 128 * t.PAGE,
            "remaining after a kill: %d of %d, %d sent" % (ram["remaining"], ram["total"], sent))
    c.check(st["cpu"]["destination-seconds"] is None, "destination CPU unknown: %r" % st["cpu"])
except (OSError, ValueError, KeyError) as e:
    c.check(False, "JSON after the kill: %s" % e)

# Downtime limits of 1 ms and 4 ms with a nearly idle guest (one page a
# second): they complete, in few passes.
for limit in (1, 4):
    port = t.free_port()
    uri = "tcp:127.0.0.1:%d" % port
    d = t.start_dest(uri)
    js = os.path.join(tmp, "limit%d.json" % limit)
    rc, out, err = t.run_source(uri, "--mem", "32M", "--dirty-rate", "4K", "--set",
                                "downtime-limit=%d" % limit, "--timeout", "30", "--json", js)
    drc, dout, derr = t.finish(d, 60)
    c.check(rc == 0 and drc == 0, "downtime-limit=%d: exit %s/%s %r" % (limit, rc, drc, err))
    try:
        st = json.load(open(js))
        c.check(st["status"] == "completed" and st["dirty-sync-count"] < 200,
                "downtime-limit=%d: %s after %d passes" % (limit, st["status"],
                                                          st["dirty-sync-count"]))
    except (OSError, ValueError, KeyError) as e:
        c.check(False, "JSON, downtime-limit=%d: %s" % (limit, e))

# The source fails while it connects (here: a source that connects its main
# channel, says it cannot open channel 2 and goes): the destination reports
# the source's own reason at once, not missing channels 30 s later.
port = t.free_port()
uri = "tcp:127.0.0.1:%d" % port
d = t.start_dest(uri)
main = socket.create_connection(("127.0.0.1", port))
main.sendall(t.hello(0, 2))
ch1 = socket.create_connection(("127.0.0.1", port))
ch1.sendall(t.hello(1, 2))
time.sleep(0.5)
why = b"channel 2: Connection refused (on the source, in phase setup)"
main.sendall(t.msg(6, struct.pack("<I", 111) + why))
t0 = time.time()
drc, dout, derr = t.finish(d, 40)
dt = time.time() - t0
main.close()
ch1.close()
c.check(drc == 1 and "source reported: " + why.decode() in derr and dt < 10,
        "source failing during setup: destination exit %s after %.1f s: %r" % (drc, dt, derr))

# A unix-socket source gives the guest's memory only to a listener of its
# own user (or root): a socket another user bound in its place is refused
# before a byte is sent (issue 10's attack: the path swapped by "nobody").
if os.geteuid() == 0:
    pub = tempfile.mkdtemp(prefix="lm-ops-uid-")
    os.chmod(pub, 0o777)
    path = os.path.join(pub, "mig.sock")
    fake = ("import os,socket,sys\n"
            "l=socket.socket(socket.AF_UNIX); l.bind(sys.argv[1]); os.chmod(sys.argv[1],0o777)\n"
            "l.listen(8); l.settimeout(20); print('listening', flush=True)\n"
            "a,_=l.accept(); a.settimeout(5)\n"
            "try:\n print('got', len(a.recv(4096)), flush=True)\nexcept OSError as e:\n print('got', 0)\n")
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    f = subprocess.Popen([py, "-c", fake, path], stdout=subprocess.PIPE, text=True,
                         preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
    f.stdout.readline()
    rc, out, err = run("source", "--connect", "unix:" + path, "--mem", "4M", "--no-progress")
    got = f.communicate(timeout=30)[0].strip()
    c.check(rc == 1 and "served by another user's process" in err and got == "got 0",
            "unix socket of another user: source exit %s, listener %r: %r" % (rc, got, err))
else:
    print("skip: the unix socket of another user needs root")

# The man page names every subcommand, every parameter and capability of
# the table with its values, every option of every subcommand and every
# exit status.
man = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                        "livemig.1")).read().replace("\\-", "-")
for p in t.info_json()["parameters"]:
    if not p["hidden"]:
        values = p["values"] + (" " + p["unit"] if p["unit"] else "")
        c.check('\n.BR "%s" = %s\n' % (p["name"], values) in man,
                "livemig.1 lists %s = %s" % (p["name"], values))
rc, out, err = run("frobnicate")
subs = re.search(r"\(([a-z, -]+);", err)
subs = subs.group(1).split(", ") if subs else []
c.check(len(subs) >= 7, "the subcommands, from the unknown command's message: %r" % err)
for sub in subs:
    c.check("\n.B %s\n" % sub in man, "livemig.1: subcommand %s" % sub)
    rc, out, err = run(sub, "--help")
    # dest, source, bench: a line per option; the others: their usage.
    for opt in set(re.findall(r"(--[a-z][a-z-]*)", out)):
        c.check(opt in man, "livemig.1 documents %s %s" % (sub, opt))
for code in ("0", "1", "2", "3"):
    c.check("\n.B %s\n" % code in man, "livemig.1: exit status %s" % code)

c.done()

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The CLI as a user meets it: usage errors before anything starts, clear
failures, cancel, max-bandwidth, parameter mismatch, bench."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmtest as t  # noqa: E402

c = t.Checker("cli")
L = t.LIVEMIG


def run(*args, timeout=60):
    p = subprocess.run([L] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


# Usage and help.
rc, out, err = run()
c.check(rc == 2 and "usage" in err, "no arguments: exit 2 with usage")
rc, out, err = run("--help")
c.check(rc == 0, "--help exits 0")
for word in ("multifd-channels", "multifd-compression", "multifd-zlib-level",
             "multifd-zstd-level", "zero-page-detection", "max-bandwidth", "downtime-limit",
             "--fill", "--fill-ratio", "--json", "--prealloc", "tcp:HOST:PORT", "unix:PATH"):
    c.check(word in out, "--help mentions " + word)
rc, out, err = run("frobnicate")
c.check(rc == 2 and "unknown command" in err, "unknown command")
rc, out, err = run("info")
c.check(rc == 0 and "zstd" in out and "zlib" in out and "not built" in out, "info")
# Where the tracking shim for QEMU is: the build tree's, next to livemig.
shim = os.path.join(os.path.dirname(os.path.realpath(L)), "liblivemig-track.so")
c.check("tracking shim (LD_PRELOAD into QEMU for uffd-remote): %s\n" % shim in out,
        "info names the shim %s: %s" % (shim, out[-200:]))
rc, out, err = run("info", "--json")
c.check(rc == 0 and json.loads(out)["track_shim"]["path"] == shim, "info --json: track_shim")

# Bad settings are refused before anything starts (no connection attempted:
# nothing listens on port 1).
for args, what in ((["--set", "multifd-channels=0"], "multifd-channels"),
                   (["--set", "multifd-channels=256"], "multifd-channels"),
                   (["--set", "multifd-compression=lzma"], "unknown method"),
                   (["--set", "multifd-zstd-level=20"], "multifd-zstd-level"),
                   (["--set", "multifd-zlib-level=x"], "multifd-zlib-level"),
                   (["--set", "no-such-thing=1"], "unknown parameter"),
                   (["--set", "max-bandwidth=fast"], "max-bandwidth"),
                   (["--set", "zero-page-detection=maybe"], "zero-page-detection"),
                   (["--set", "novalue"], "NAME=VALUE"),
                   (["--cap", "auto-converge=maybe"], "NAME=on|off"),
                   (["--cap", "teleport=on"], "unknown capability"),
                   (["--fill", "file:/nonexistent/x"], "/nonexistent/x"),
                   (["--fill", "sand"], "fill"),
                   (["--fill-ratio", "1.5"], "fill-ratio"),
                   (["--mem", "lots"], "--mem"),
                   # Numbers are whole: no space, sign, trailing junk or wrap.
                   (["--set", "multifd-channels= 4"], "multifd-channels"),
                   (["--set", "multifd-channels=4x"], "multifd-channels"),
                   (["--set", "max-bandwidth=10x"], "max-bandwidth"),
                   (["--set", "max-bandwidth=-1"], "max-bandwidth"),
                   (["--set", "downtime-limit=18446744073709551917"], "downtime-limit"),
                   (["--mem", "16M "], "--mem"),
                   (["--dirty-threads", "+4"], "--dirty-threads"),
                   (["--timeout", " 5"], "--timeout"),
                   (["--timeout", "5s"], "--timeout"),
                   (["--ready-fd", "3x"], "--ready-fd")):
    rc, out, err = run("source", "--connect", "tcp:127.0.0.1:1", "--mem", "16M", *args)
    c.check(rc == 2 and what in err, "source %s: exit %s, stderr %r" % (args, rc, err))
# A setting for the other side only is a usage error too.
rc, out, err = run("dest", "--listen", "tcp:127.0.0.1:%d" % t.free_port(),
                   "--set", "max-bandwidth=1G")
c.check(rc == 2 and "max-bandwidth applies to the source only" in err,
        "dest with max-bandwidth: %s %r" % (rc, err))
rc, out, err = run("source", "--connect", "tcp:127.0.0.1:1", "--mem", "16M",
                   "--set", "x-delay-channel=1:5")
c.check(rc == 2 and "x-delay-channel applies to the destination only" in err,
        "source with x-delay-channel: %s %r" % (rc, err))
rc, out, err = run("--help")
c.check("x-no-barrier" not in out and "source only" in out, "--help: hooks hidden, sides shown")
rc, out, err = run("source", "--connect", "tcp:127.0.0.1:1")
c.check(rc == 2 and "--mem" in err, "source without --mem")
rc, out, err = run("dest")
c.check(rc == 2 and "--listen" in err, "dest without --listen")
# An output file that cannot be written is a usage error before anything
# starts (the destination must not take a guest it cannot write), and
# nothing is left behind.
for side, where in (("dest", ["--listen", "tcp:127.0.0.1:%d" % t.free_port()]),
                    ("source", ["--connect", "tcp:127.0.0.1:1", "--mem", "4M"])):
    for opt in ("--dump", "--json"):
        rc, out, err = run(side, *where, opt, "/nonexistent-dir/x")
        c.check(rc == 2 and "%s /nonexistent-dir/x" % opt in err,
                "%s %s unwritable: %s %r" % (side, opt, rc, err))
probe = os.path.join(t.tmpdir(), "not-created.bin")
rc, out, err = run("source", "--connect", "tcp:127.0.0.1:1", "--mem", "4M", "--set",
                   "net-timeout=1", "--dump", probe)
c.check(rc == 1 and not os.path.exists(probe), "a checked --dump path is not left behind")
rc, out, err = run("dest", "--listen", "udp:1.2.3.4:5")
c.check(rc == 2 and "tcp:HOST:PORT" in err, "dest with a bad URI: %s %r" % (rc, err))

# Nothing listening: a clear error, exit 1.
port = t.free_port()
rc, out, err = run("source", "--connect", "tcp:127.0.0.1:%d" % port, "--mem", "16M")
c.check(rc == 1 and "cannot connect" in err, "connect refused: %s %r" % (rc, err))

# A destination set to other parameters than the source's refuses clearly.
uri = "tcp:127.0.0.1:%d" % t.free_port()
dest = t.start_dest(uri, "--set", "multifd-channels=3")
rc, out, err = t.run_source(uri, "--mem", "16M", "--fill", "random")
drc, dout, derr = t.finish(dest)
c.check(rc == 1 and drc == 1 and "3" in derr and "channels" in derr,
        "channel mismatch: %s %s %r" % (rc, drc, derr))
c.check("destination reported" in err, "source shows the destination's reason: %r" % err)

# max-bandwidth is honoured across all channels together.
uri = "tcp:127.0.0.1:%d" % t.free_port()
d = t.tmpdir()
sj = os.path.join(d, "s.json")
dest = t.start_dest(uri)
rc, out, err = t.run_source(uri, "--mem", "96M", "--fill", "random", "--fill-ratio", "1",
                            "--set", "max-bandwidth=32M", "--set", "multifd-channels=4",
                            "--json", sj)
t.finish(dest)
if c.check(rc == 0, "max-bandwidth run: %r" % err):
    s = t.load_json(sj)
    rate = s["ram"]["transferred"] / (s["total-time"] / 1000.0)
    cap = 32 << 20
    c.check(0.85 * cap <= rate <= 1.1 * cap,
            "max-bandwidth 32M: measured %.1f MiB/s" % (rate / 1048576))
    print("ok: max-bandwidth 32 MiB/s -> %.1f MiB/s on the wire" % (rate / 1048576))

# SIGINT on the source cancels: source exits 1 saying so, destination too.
uri = "tcp:127.0.0.1:%d" % t.free_port()
dest = t.start_dest(uri)
src = subprocess.Popen([L, "source", "--connect", uri, "--mem", "256M", "--fill", "random",
                        "--set", "max-bandwidth=16M"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
time.sleep(1.5)
src.send_signal(signal.SIGINT)
rc, out, err = t.finish(src, timeout=30)
drc, dout, derr = t.finish(dest, timeout=30)
c.check(rc == 1 and "cancel" in err, "SIGINT: source exit %s %r" % (rc, err))
c.check(drc == 1 and "cancel" in derr, "SIGINT: destination exit %s %r" % (drc, derr))

# bench prints one row and its JSON.
bj = os.path.join(d, "b.json")
rc, out, err = run("bench", "--mem", "64M", "--set", "multifd-compression=zstd", "--json", bj,
                   timeout=120)
c.check(rc == 0 and "match" in out and "total(ms)" in out, "bench: %s %r %r" % (rc, out, err))
if rc == 0:
    b = t.load_json(bj)
    c.check(b["verify"]["match"] is True and b["cpu"]["destination-seconds"] > 0, "bench json")
# bench gives its destination only the settings that apply there.
rc, out, err = run("bench", "--mem", "16M", "--set", "max-bandwidth=1G", "--set",
                   "multifd-compression=zstd", "--cap", "auto-converge=on", timeout=120)
c.check(rc == 0 and "match" in out, "bench with source-only settings: %s %r" % (rc, err))
rc, out, err = run("bench", "--set", "multifd-channels=999")
c.check(rc == 2 and "multifd-channels" in err, "bench with a bad setting: %s %r" % (rc, err))
# Abbreviated options (getopt takes unambiguous prefixes) are bench's own
# by their full names: --js is --json, --ur is --uri, neither forwarded.
bj2 = os.path.join(d, "b2.json")
rc, out, err = run("bench", "--me=16M", "--js", bj2, "--ur", "tcp:127.0.0.1:0", "--se",
                   "multifd-channels=3", timeout=120)
c.check(rc == 0 and "match" in out, "bench with abbreviated options: %s %r" % (rc, err))
if rc == 0:
    b = t.load_json(bj2)
    c.check(b["ram"]["total"] == 16 << 20 and b["parameters"]["multifd-channels"] == 3,
            "bench --js FILE: the source's JSON, its --me and --se: %r" % b.get("parameters"))
# An option of another subcommand names the ones it is for.
for args, word in ((["source", "--uri", "tcp:127.0.0.1:0"], "--uri is for bench only"),
                   (["dest", "--fill", "random"], "--fill is for source and bench only"),
                   (["bench", "--dump", "x"], "--dump is for dest and source only"),
                   (["bench", "--listen", "x"], "--listen is for dest only")):
    rc, out, err = run(*args)
    c.check(rc == 2 and word in err, "%s: %s %r" % (" ".join(args), rc, err))
# A port probe (connect, close) does not kill a waiting destination.
import socket  # noqa: E402
port = t.free_port()
uri = "tcp:127.0.0.1:%d" % port
dest = t.start_dest(uri)
socket.create_connection(("127.0.0.1", port)).close()
time.sleep(0.3)
rc, out, err = t.run_source(uri, "--mem", "16M", "--fill", "random")
drc, dout, derr = t.finish(dest)
c.check(rc == 0 and drc == 0, "port probe before the source: %s %s %r" % (rc, drc, derr))

# unix: never replaces a file that is not a stale socket.
keep = os.path.join(d, "keep.txt")
open(keep, "w").write("precious")
rc, out, err = run("dest", "--listen", "unix:" + keep)
c.check(rc == 1 and "not a socket" in err and open(keep).read() == "precious",
        "unix: over a regular file: %s %r" % (rc, err))
sock = os.path.join(d, "live.sock")
dest = t.start_dest("unix:" + sock)
rc, out, err = run("dest", "--listen", "unix:" + sock)
c.check(rc == 1 and "another process" in err, "unix: over a live socket: %s %r" % (rc, err))
rc, out, err = t.run_source("unix:" + sock, "--mem", "8M")
drc, dout, derr = t.finish(dest)
c.check(rc == 0 and drc == 0, "the first destination still works: %r" % derr)
c.check(not os.path.exists(sock), "the destination removes its socket file")

# An explicit level on the destination must match the source's.
uri = "tcp:127.0.0.1:%d" % t.free_port()
dest = t.start_dest(uri, "--set", "multifd-zstd-level=3")
rc, out, err = t.run_source(uri, "--mem", "16M", "--set", "multifd-compression=zstd")
drc, dout, derr = t.finish(dest)
c.check(rc == 1 and drc == 1 and "level 1" in derr and "set to 3" in derr,
        "zstd level mismatch: %s %s %r" % (rc, drc, derr))

# Cancel is prompt even behind a very slow max-bandwidth.
uri = "tcp:127.0.0.1:%d" % t.free_port()
dest = t.start_dest(uri)
src = subprocess.Popen([L, "source", "--connect", uri, "--mem", "16M", "--fill", "random",
                        "--set", "max-bandwidth=10K"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
time.sleep(1.0)
t0 = time.time()
src.send_signal(signal.SIGINT)
rc, out, err = t.finish(src, timeout=30)
t.finish(dest, timeout=30)
c.check(rc == 1 and time.time() - t0 < 3, "cancel behind max-bandwidth=10K took %.1f s"
        % (time.time() - t0))
c.done()

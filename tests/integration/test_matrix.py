#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""livemig bench --matrix (issue 13), small: a 64 MiB image, one round,
loopback, 2 channels, none and zstd, with QEMU 7.2 and QEMU with livemig
carrying its RAM beside livemig when QEMU is here and we are root.  Checks the JSON lines, the tables, the plots (SVG
parses, PNG is a PNG), --report remaking the same tables, --readme filling
its section, usage errors (exit 2, nothing run), bench --help naming the
matrix options, and as root: a shaped link's namespaces removed when the
sweep is interrupted."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmtest as t  # noqa: E402

c = t.Checker("matrix")
L = t.LIVEMIG
tmp = t.tmpdir()
img = os.path.join(tmp, "img.bin")
t.make_mixed_image(img, 64 << 20)
root = os.geteuid() == 0
qemu = root and shutil.which("qemu-system-x86_64") is not None


def matrix(*args, timeout=600):
    p = subprocess.run([L, "bench", "--matrix"] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def namespaces():
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


out = os.path.join(tmp, "out")
rc, so, se = matrix("--image", img, "--repeat", "1", "--link", "loopback", "--channels", "2",
                    "--methods", "none,zstd", "--out", out, *([] if qemu else ["--no-qemu"]))
c.check(rc == 0, "matrix run: exit %d\n%s" % (rc, se[-2000:]))

runs = []
try:
    with open(os.path.join(out, "runs.jsonl")) as f:
        runs = [json.loads(line) for line in f]
except (OSError, ValueError) as e:
    c.check(False, "runs.jsonl: %s" % e)
tools = ["livemig"] + (["qemu", "qemu+livemig"] if qemu else [])
want = {(t, m) for t in tools for m in ("none", "zstd")}
c.check({(r["tool"], r["cell"]["method"]) for r in runs} == want and len(runs) == len(want),
        "one run per tool and method: %s" % [(r["tool"], r["cell"]) for r in runs])
for r in runs:
    what = "%s %s" % (r["tool"], r["cell"]["method"])
    c.check(r["ok"] and r["verify"] is True, "%s ran and verified: %s" % (what, r.get("error")))
    c.check(r.get("total-ms", 0) > 0 and r.get("wire-bytes", 0) > 0 and r.get("mbps"),
            "%s: total time and bytes on the link" % what)
    c.check(r.get("pages-per-second") == round(16384 / r["total-ms"] * 1000),
            "%s: pages/s = pages / total time" % what)
    c.check(r.get("other-cpus") is not None and r.get("source-cpu-percent") is not None,
            "%s: other processes' load and CPU recorded" % what)
    c.check(r["cell"]["channels"] == 2 and r["cell"]["link"] == "loopback", "%s: cell" % what)
zstd = [r for r in runs if r["tool"] == "livemig" and r["cell"]["method"] == "zstd"]
none = [r for r in runs if r["tool"] == "livemig" and r["cell"]["method"] == "none"]
if zstd and none and root:
    # On the namespace's loopback: what the link carried, not what livemig says.
    c.check(zstd[0]["wire-bytes"] < none[0]["wire-bytes"] / 1.5,
            "zstd puts fewer bytes on the link than none: %d %d" % (
                zstd[0]["wire-bytes"], none[0]["wire-bytes"]))

try:
    tables = open(os.path.join(out, "tables.md")).read()
except OSError:
    tables = ""
for m in ("none", "zstd"):
    c.check("#### %s, link loopback" % m in tables, "a table for %s" % m)
c.check("| channels | tool | total time (ms) | downtime (ms) | network (Mbit/s) | pages/s | "
        "source CPU % | dest CPU %" in tables, "the seeds' columns")
c.check(tables.count("| 2 | livemig |") == 2, "a livemig row per method")
if qemu:
    for r in ("QEMU 7.2", "livemig/QEMU", "QEMU+livemig", "QEMU+livemig/QEMU"):
        c.check(tables.count("| 2 | %s |" % r) == 2, "a %s row per method" % r)
c.check("#### Best methods" in tables and "| link loopback | 2 |" in tables, "best methods")
mtext = open(os.path.join(out, "machine.md")).read() if os.path.isfile(
    os.path.join(out, "machine.md")) else ""
c.check("kernel:" in mtext and "- swept: channels 2; methods none,zstd; link loopback; image "
        in mtext, "machine.md: %r" % mtext)
# What did not run is not described as if it had.
c.check(("QEMU: not run" in mtext) != qemu, "machine.md, QEMU %s: %r" % (qemu, mtext))
c.check("tbf" not in mtext, "machine.md describes a shaped link that did not run: %r" % mtext)

# A directory that holds a sweep's runs is not written into again.
rc, so, se = matrix("--image", img, "--repeat", "1", "--channels", "2", "--methods", "none",
                    "--no-qemu", "--out", out)
c.check(rc == 2 and "already holds a matrix's runs" in se, "--out reused: %d %r" % (rc, se))
with open(os.path.join(out, "runs.jsonl")) as f:
    c.check(len(f.readlines()) == len(runs), "--out reused: runs.jsonl changed")

plots = sorted(os.listdir(os.path.join(out, "plots"))) if os.path.isdir(
    os.path.join(out, "plots")) else []
for what in ("time", "cpu"):
    for ext in ("svg", "png"):
        names = [p for p in plots if p.endswith("-%s.%s" % (what, ext))]
        if not c.check(len(names) == 1, "plot %s.%s in %s" % (what, ext, plots)):
            continue
        path = os.path.join(out, "plots", names[0])
        if ext == "svg":
            try:
                ET.parse(path)
            except ET.ParseError as e:
                c.check(False, "%s parses: %s" % (path, e))
        else:
            with open(path, "rb") as f:
                c.check(f.read(8) == b"\x89PNG\r\n\x1a\n", "%s is a PNG" % path)

# --report: the same tables from runs.jsonl alone; --readme: its section.
readme = os.path.join(tmp, "README.md")
with open(readme, "w") as f:
    f.write("# x\n\n<!-- matrix results begin -->\nold\n<!-- matrix results end -->\n\ntail\n")
os.rename(os.path.join(out, "tables.md"), os.path.join(tmp, "tables.first"))
rc, so, se = matrix("--report", out, "--readme", readme)
c.check(rc == 0 and open(os.path.join(out, "tables.md")).read() == tables,
        "--report remakes the tables: %d %s" % (rc, se[-500:]))
body = open(readme).read()
# --against: a run against itself agrees in every cell.
rc, so, se = matrix("--report", out, "--against", out)
n = len(want)
c.check(rc == 0 and "%d of %d cells' median total time within 15 %%" % (n, n) in so,
        "--against itself: %d %s" % (rc, so[-300:]))
c.check("old" not in body and "tail" in body and "#### Best methods" in body and
        "kernel:" in body, "--readme replaced its section:\n" + body[:500])

# Usage errors: exit 2, nothing run.
for args, culprit in ((["--tls", "rsa"], "--tls rsa"), (["--methods", "none,bzip"], "bzip"),
                      (["--link", "fast"], "--link fast"), (["--repeat", "0"], "--repeat"),
                      (["--image", "/nonexistent"], "/nonexistent")):
    bad = os.path.join(tmp, "bad")
    rc, so, se = matrix("--out", bad, "--image", img, *args)
    c.check(rc == 2 and culprit in se and not os.path.exists(os.path.join(bad, "runs.jsonl")),
            "usage error %s: %d %r" % (args, rc, se[-300:]))

p = subprocess.run([L, "bench", "--help"], capture_output=True, text=True, timeout=60)
c.check(p.returncode == 0 and "--uri" in p.stdout and "--matrix" in p.stdout and
        "--channels LIST" in p.stdout and "--scenario" in p.stdout, "bench --help")
# The man page documents every matrix option bench --help lists.
man = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                        "livemig.1")).read().replace("\\-", "-")
matrix_help = p.stdout[p.stdout.find("--matrix [OPTION]"):]
opts = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", matrix_help)) - {"--help", "--matrix"}
c.check(len(opts) > 15, "the matrix options in bench --help: %s" % sorted(opts))
for opt in sorted(opts):
    c.check(opt in man, "livemig.1 documents bench --matrix %s" % opt)

# Interrupted on a shaped link: its namespaces go, and so do the processes.
if root:
    before = namespaces()
    p = subprocess.Popen([L, "bench", "--matrix", "--image", img, "--link", "100mbit",
                          "--channels", "2", "--methods", "none", "--no-qemu", "--out",
                          os.path.join(tmp, "int")], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    made = False
    for _ in range(100):
        time.sleep(0.1)
        if "lmsa%d" % p.pid in namespaces():
            made = True
            break
    time.sleep(1.5)
    p.send_signal(signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    c.check(made and p.returncode == 130, "interrupted: %s %s" % (p.returncode, err[-300:]))
    c.check(namespaces() == before, "namespaces removed: %r" % namespaces())
    left = "".join(subprocess.run(["pgrep", "-f", pat], capture_output=True, text=True).stdout
                   for pat in ("file:" + img, "tcp:10.214.0.1:0 --no-progress --ready-fd"))
    c.check(not left.strip(), "no livemig left running: %r" % left)

shutil.rmtree(tmp, ignore_errors=True)
c.done()

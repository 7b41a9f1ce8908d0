#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Migrates a 256 MiB image of corpus, random and zero pages between two
livemig processes over loopback for one method and channels 1, 2 and 4, and
checks the destination's bytes independently of the built-in digest (the
destination dumps its RAM; we compare files), plus the statistics."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmtest as t  # noqa: E402

method = sys.argv[1] if len(sys.argv) > 1 else "none"
size = int(os.environ.get("LM_TEST_MEM", str(256 << 20)))
c = t.Checker("migrate-" + method)
d = t.tmpdir()
img = os.path.join(d, "image.bin")
t.make_mixed_image(img, size)

zero_pages = 0
with open(img, "rb") as f:
    while True:
        b = f.read(t.PAGE)
        if not b:
            break
        zero_pages += b == bytes(t.PAGE)


uris = [("tcp", lambda: "tcp:127.0.0.1:%d" % t.free_port())]
if method == "none":
    # Each transport once, on the cheapest method.
    uris.append(("unix", lambda: "unix:" + os.path.join(d, "mig.sock")))
    if os.path.exists("/proc/net/if_inet6"):
        uris.append(("tcp6", lambda: "tcp:[::1]:%d" % t.free_port()))

for channels in (1, 2, 4):
    for tname, mkuri in uris if channels == 2 else uris[:1]:
        name = "%s/%d channels/%s" % (method, channels, tname)
        uri = mkuri()
        sj, dj = os.path.join(d, "s.json"), os.path.join(d, "d.json")
        dump = os.path.join(d, "dest.bin")
        sets = ["--set", "multifd-channels=%d" % channels,
                "--set", "multifd-compression=" + method]
        dest = t.start_dest(uri, json_path=dj, dump=dump)
        rc, out, err = t.run_source(uri, "--fill", "file:" + img, "--json", sj, *sets)
        drc, dout, derr = t.finish(dest)
        if not c.check(rc == 0 and drc == 0, "%s: exit codes source %s dest %s\n%s\n%s"
                       % (name, rc, drc, err, derr)):
            continue
        c.check(t.same_files(img, dump), name + ": destination bytes differ from the image")
        s, dd = t.load_json(sj), t.load_json(dj)
        ram = s["ram"]
        pages = size // t.PAGE
        c.check(s["status"] == "completed" and dd["status"] == "completed", name + ": status")
        c.check(s["verify"]["match"] is True and dd["verify"]["match"] is True,
                name + ": verify.match")
        c.check(ram["normal"] + ram["duplicate"] == pages,
                "%s: normal %d + duplicate %d != %d pages"
                % (name, ram["normal"], ram["duplicate"], pages))
        c.check(ram["duplicate"] == zero_pages,
                "%s: duplicate %d, image has %d zero pages" % (name, ram["duplicate"], zero_pages))
        c.check(ram["total"] == size, name + ": ram.total")
        c.check(ram["transferred"] >= ram["payload-bytes"], name + ": transferred < payload")
        c.check(ram["normal-bytes"] == ram["normal"] * t.PAGE, name + ": normal-bytes")
        c.check(dd["ram"]["normal"] == ram["normal"] and
                dd["ram"]["duplicate"] == ram["duplicate"] and
                dd["ram"]["transferred"] == ram["transferred"],
                name + ": destination counts differ from the source's")
        comp = s["compression"]
        # Packet choices only the source's auto knows: null elsewhere.
        c.check(dd["compression"]["auto"] is None and
                (comp["auto"] is None) == (method != "auto"),
                name + ": compression.auto %s / %s" % (comp["auto"], dd["compression"]["auto"]))
        if method == "none":
            c.check(ram["payload-bytes"] == ram["normal-bytes"], name + ": raw payload size")
        elif method == "auto":
            # Loopback is faster than any compressor here: mostly raw.
            a = comp["auto"]
            c.check(a["none"] + a["lz4"] + a["zstd"] > 0, name + ": no auto choices counted")
        else:
            c.check(s["compression"]["ratio"] > 1.2,
                    "%s: compression ratio %.2f" % (name, s["compression"]["ratio"]))
        if method in ("lz4", "qpl", "qatzip", "uadk"):
            # One job per page (per packet for qatzip), each done once.
            jobs = comp["hw-jobs"] + comp["sw-jobs"]
            c.check(jobs == ram["normal"] if method != "qatzip" else 0 < jobs < ram["normal"],
                    "%s: %d jobs for %d pages" % (name, jobs, ram["normal"]))
            c.check(comp["engine"] != "" and comp["busy-retries"] == 0 and
                    comp["hw-errors"] == 0, name + ": engine counters %s" % comp)
            c.check(comp["raw-pages"] > 0, name + ": random pages were not sent raw")
        c.check(s["cpu"]["source-seconds"] > 0 and s["cpu"]["destination-seconds"] > 0,
                name + ": CPU seconds")
        c.check(s["parameters"]["multifd-channels"] == channels, name + ": channels")
        os.unlink(dump)
        print("ok: %s: %d ms, %.0f Mbit/s, ratio %.2f" % (name, s["total-time"], ram["mbps"],
                                                          s["compression"]["ratio"]))
os.unlink(img)
c.done()

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Live statistics that are true while a migration runs and after it ends
(issue 12, a new user's findings): ram.remaining goes down during every
pass, not only the first."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmtest as t  # noqa: E402
from lmtest import Qmp, query, wait_path  # noqa: E402

c = t.Checker("progress")
L = t.LIVEMIG
tmp = tempfile.mkdtemp(prefix="lm-prog-")
MiB = 1 << 20


def wait_for(q, cond, timeout):
    """Polls query-migrate until cond(st) holds; the last answer."""
    end = time.time() + timeout
    st = query(q)
    while time.time() < end and not cond(st):
        time.sleep(0.05)
        st = query(q)
    return st


# ---- a running guest that never converges (downtime-limit 1 ms) ------------
# 64 MiB at 16 MiB/s: pass 1 lasts 4 s; the guest writes a 32 MiB hot set
# at 32 MiB/s, so every later pass has about 32 MiB to send: 2 s each.
uri = "unix:" + os.path.join(tmp, "mig.sock")
cd, cs = os.path.join(tmp, "cd.sock"), os.path.join(tmp, "cs.sock")
dest_json = os.path.join(tmp, "dest.json")
dest = t.start_dest(uri, "--control", "unix:" + cd, json_path=dest_json)
src = subprocess.Popen([L, "source", "--connect", uri, "--no-progress", "--mem", "64M",
                        "--fill", "random", "--dirty-rate", "32M", "--dirty-hot", "32M",
                        "--set", "max-bandwidth=16M", "--set", "downtime-limit=1",
                        "--control", "unix:" + cs],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
c.check(wait_path(cs, src) and wait_path(cd, dest), "control sockets")
qs, qd = Qmp(cs), Qmp(cd)

# Pass 2 and 3: remaining goes down as pages go out.
for k in (2, 3):
    st = wait_for(qs, lambda st: st.get("dirty-sync-count", 0) >= k, 20)
    samples = []
    while len(samples) < 6:
        st = query(qs)
        if st.get("dirty-sync-count") != k:
            break
        samples.append(st["ram"]["remaining"])
        time.sleep(0.15)
    c.check(len(samples) >= 3 and all(b < a for a, b in zip(samples, samples[1:])),
            "pass %d: remaining goes down: %s" % (k, samples))

r = qs.cmd("migrate_cancel")
rc, out, err = t.finish(src, timeout=60)
t.finish(dest, timeout=60)
qs.close()
qd.close()

c.done()

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Prints one closing line over meson's test logs of the given build
directories, "N passed, N failed[, N skipped]", and exits 1 on any failure."""
import json
import os
import sys

passed = failed = skipped = 0
for build in sys.argv[1:]:
    path = os.path.join(build, "meson-logs", "testlog.json")
    if not os.path.exists(path):
        print("%s: no test log (the tests did not run)" % build)
        failed += 1
        continue
    for line in open(path):
        r = json.loads(line)
        res = r.get("result")
        if res in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif res == "SKIP":
            skipped += 1
        else:
            failed += 1
            print("failed: %s (%s) %s" % (r.get("name"), build, res))
tail = ", %d skipped" % skipped if skipped else ""
print("%d passed, %d failed%s" % (passed, failed, tail))
sys.exit(1 if failed else 0)

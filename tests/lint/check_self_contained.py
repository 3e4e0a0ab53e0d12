#!/usr/bin/env python3
"""Fails when a file of the project reads data from outside the repository (the developers'
folder named "shared" beside the clone, which a user's clone does not have). Every build and
test input must live in the repository; test data lives in tests/fixtures with its provenance."""
import os
import re
import subprocess
import sys

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
# A path that climbs out of the repository into the shared folder. Markdown may mention the
# folder (docs explain where fixtures came from); code, build and test files may not use it.
shared_dir = "/".join(["..", "shared"])  # spelled in pieces so that this file does not match itself
pattern = re.compile(re.escape(shared_dir) + r"\b|" + "VORO_" + "SHARED_DIR")

def project_files():
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard"],
                             check=True, capture_output=True, text=True).stdout
        return [f for f in out.splitlines() if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d, dirs, names in os.walk(root):
            dirs[:] = [x for x in dirs if not x.startswith(("build", ".git"))]
            files += [os.path.relpath(os.path.join(d, n), root) for n in names]
        return files

bad = []
checked = 0
for rel in project_files():
    if rel.startswith("tests/fixtures/") or rel.endswith(".md"):
        continue
    path = os.path.join(root, rel)
    if not os.path.isfile(path):
        continue
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if pattern.search(line):
                    bad.append(f"{rel}:{n}: {line.strip()}")
    except OSError as e:
        bad.append(f"{rel}: unreadable: {e}")
    checked += 1

if checked < 50:
    print(f"check_self_contained: only {checked} files found under {root}; wrong root?")
    sys.exit(1)
for b in bad:
    print(b)
print(f"check_self_contained: {checked} files checked, {len(bad)} read outside the repository")
sys.exit(1 if bad else 0)

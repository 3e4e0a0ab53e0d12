#!/usr/bin/env python3
"""Fails when a file of the project reads data from outside the repository (../shared, the
developers' shared folder, which a user's clone does not have). Every build and test input must
live in the repository; test data lives in tests/fixtures with its provenance."""
import os
import re
import subprocess
import sys

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
# A path that climbs out of the repository into the shared folder. Markdown may mention the
# folder (docs explain where fixtures came from); code, build and test files may not use it.
pattern = re.compile(r"\.\./shared\b|VORO_SHARED_DIR")

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
    if rel.startswith("tests/fixtures/") or rel.endswith(".md") or rel == "tests/lint/check_self_contained.py":
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

"""Every example config the project ships passes `voro -t` (exit 0): each file under deploy/ named
*.conf or *.conf.example, and each ```ini block of docs/*.md and README.md (an ini fence holds a
complete config; a fragment gets a plain fence). A broken copy of each is refused with exit 2, so
a pass is not a checker that accepts anything."""
import glob
import os
import re
import subprocess
import tempfile

from voro_harness import Runner

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
INI_BLOCK = re.compile(r"^```ini[ \t]*\n(.*?)^```", re.M | re.S)


def deploy_configs():
    found = []
    for dirpath, _dirs, files in os.walk(os.path.join(ROOT, "deploy")):
        for name in files:
            if name.endswith((".conf", ".conf.example")):
                found.append(os.path.join(dirpath, name))
    return sorted(found)


def doc_blocks():
    """[(label 'docs/x.md:LINE', text)] for every ```ini block."""
    blocks = []
    for path in sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))) + [os.path.join(ROOT, "README.md")]:
        with open(path) as f:
            text = f.read()
        for m in INI_BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 2  # the block's first line
            blocks.append((f"{os.path.relpath(path, ROOT)}:{line}", m.group(1)))
    return blocks


def check(voro, label, text):
    """voro -t on `text`: exit 0 and the 'configuration is valid' line; the same text with an
    unknown key appended: exit 2 naming the key."""
    with tempfile.TemporaryDirectory(prefix="voro-example-") as d:
        path = os.path.join(d, "example.conf")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([voro, "-t", path], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and "configuration is valid" in p.stdout, \
            f"{label}: voro -t exited {p.returncode}:\n{p.stderr}{p.stdout}"
        with open(path, "a") as f:
            f.write("\n[server]\nno_such_key_zz = 1\n")
        p = subprocess.run([voro, "-t", path], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "no_such_key_zz" in p.stderr, \
            f"{label}: a broken copy gave exit {p.returncode}:\n{p.stderr}{p.stdout}"


def case_found(r):
    files = deploy_configs()
    rel = [os.path.relpath(f, ROOT) for f in files]
    # the discovery itself is checked: the shipped examples are all found
    for must in ("deploy/voro.conf.example", "deploy/cluster/cluster.conf", "deploy/cluster/node1.conf"):
        assert must in rel, (must, rel)
    assert doc_blocks(), "no ```ini block found in docs/*.md"


def main():
    r = Runner()
    r.run("discovery", case_found, r)
    for path in deploy_configs():
        label = os.path.relpath(path, ROOT)
        with open(path) as f:
            text = f.read()
        r.run(label, check, r.args.voro, label, text)
    for label, text in doc_blocks():
        r.run(label, check, r.args.voro, label, text)
    r.finish()


if __name__ == "__main__":
    main()

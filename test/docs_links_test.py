"""The project's documentation stands on its own: README.md and docs/*.md
name no file outside the repository (no ../shared/, /work/...), and every
relative Markdown link points at a file that exists.

Usage: python3 docs_links_test.py SOURCE_ROOT
"""
import glob
import os
import re
import sys

root = sys.argv[1]
pages = [os.path.join(root, "README.md")] + \
    sorted(glob.glob(os.path.join(root, "docs", "*.md")))
bad = []
outside = re.compile(r"\.\./shared|/work/|steering repository")
link = re.compile(r"\]\(([^)\s]+)\)")
for page in pages:
    text = open(page, encoding="utf-8").read()
    for n, line in enumerate(text.splitlines(), 1):
        if outside.search(line):
            bad.append("%s:%d: names a file users do not have: %s"
                       % (page, n, line.strip()))
        for target in link.findall(line):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0]
            full = os.path.abspath(os.path.join(os.path.dirname(page), path))
            if not full.startswith(os.path.abspath(root)) or \
                    not os.path.exists(full):
                bad.append("%s:%d: broken link %s" % (page, n, target))
for b in bad:
    print("FAIL:", b, file=sys.stderr)
print("docs_links: %d pages, %d problems" % (len(pages), len(bad)))
sys.exit(1 if bad else 0)

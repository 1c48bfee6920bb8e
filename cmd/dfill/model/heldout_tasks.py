#!/usr/bin/env python3
"""Writes `line` infill tasks (the prefix/middle/suffix rows of
shared/benchmarks/README.md) from the standard-library packages the
embedded model was not trained on: the cursor sits after a line's
indentation and the middle is the rest of that line. Blank lines, comments
and lines of only brackets are skipped, as in go-humanevalx-infill.

    python3 heldout_tasks.py "$(go env GOROOT)/src" > /tmp/heldout.jsonl
    dfill bench infill --tasks /tmp/heldout.jsonl

A third argument skips that many tasks of the shuffled list first: the
calibration of the model's score is fitted on tasks 200 on, and the 200
before them are the held-out test (MODEL.md):

    python3 heldout_tasks.py "$(go env GOROOT)/src" 3000 200 > /tmp/fit.jsonl
"""
import json, os, random, sys

HELD_OUT = ["strings", "bufio", "encoding/csv", "text/tabwriter", "container/list"]  # engine/train.HeldOut
root, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200
skip = int(sys.argv[3]) if len(sys.argv) > 3 else 0
rng = random.Random(1)
tasks = []
for pkg in HELD_OUT:
    d = os.path.join(root, pkg)
    for name in sorted(os.listdir(d)):
        if not name.endswith(".go"):
            continue
        text = open(os.path.join(d, name), encoding="utf-8").read()
        lines = text.split("\n")
        off = 0
        for i, line in enumerate(lines):
            body = line.lstrip(" \t")
            if body and not body.startswith("//") and body.strip("{}()[] \t,;") and i > 0:
                start = off + len(line) - len(body)
                end = off + len(line)
                tasks.append({"id": f"{pkg}/{name}:{i+1}", "lang": "go", "kind": "line",
                              "prefix": text[:start], "middle": text[start:end], "suffix": text[end:]})
            off += len(line) + 1
rng.shuffle(tasks)
for t in tasks[skip:skip + n]:
    print(json.dumps(t))

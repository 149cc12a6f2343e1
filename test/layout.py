#!/usr/bin/env python3
"""Checks the source layout of src/ (README, "How the code is organised"):
no cycle between files, neither through #include nor through the calls the
object files make to each other (nm).  File size is not a rule: one
concept per file, whatever its length.

    python3 test/layout.py [src]       (after make: the .o files are read)

Prints what it found and exits non-zero on any violation.
"""
import glob
import os
import re
import subprocess
import sys


def cycles(graph):
    """The cycles of a directed graph, each as a list of nodes."""
    found, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                found.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return found


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else 'src'
    bad = 0
    files = sorted(glob.glob(os.path.join(src, '*.[ch]')))
    includes = {}
    for f in files:
        name = os.path.basename(f)
        text = open(f, encoding='utf-8').read()
        includes[name] = {h for h in re.findall(r'^#include "([^"]+)"', text, re.M)
                          if os.path.exists(os.path.join(src, h))}
    for c in cycles(includes):
        print('layout: include cycle: ' + ' -> '.join(c))
        bad += 1

    defined, used = {}, {}
    for o in sorted(glob.glob(os.path.join(src, '*.o'))):
        name = os.path.basename(o)[:-2] + '.c'
        out = subprocess.run(['nm', o], capture_output=True, text=True, check=True).stdout
        defined[name] = {l.split()[-1] for l in out.splitlines() if re.match(r'^\S+ [TDBR] ', l)}
        used[name] = {l.split()[-1] for l in out.splitlines() if re.match(r'^\s+U ', l)}
    if not defined:
        print('layout: no object files in %s: run make first' % src)
        return 1
    owner = {s: f for f, syms in defined.items() for s in syms}
    calls = {f: {owner[s] for s in syms if s in owner and owner[s] != f} for f, syms in used.items()}
    for c in cycles(calls):
        print('layout: call cycle between object files: ' + ' -> '.join(c))
        bad += 1
    for f in sorted(calls):
        print('layout: %s calls %s' % (f, ', '.join(sorted(calls[f])) or 'no other file'))
    print('layout: %d files, %d violations' % (len(files), bad))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""Checks the source layout of src/ against the README's "How the code is
organised": every source file is listed there once, under its concept, and
no file the table lists is missing; a file calls only files listed above it
(from the calls the object files make to each other, nm), so the calls form
a DAG; the headers include each other without a cycle.  File size is not a
rule: one concept per file, whatever its length.

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


def readme_table(path):
    """The (concept, file) rows of the README's "How the code is organised"
    table, in order."""
    text = open(path, encoding='utf-8').read()
    m = re.search(r'^## How the code is organised\n(.*?)(?=^## )', text, re.M | re.S)
    if not m:
        return []
    rows = []
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) >= 3 and cells[1].startswith('`'):
            rows.append((cells[0], cells[1].strip('`')))
    return rows


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else 'src'
    readme = os.path.join(os.path.dirname(os.path.abspath(src)), 'README.md')
    bad = 0
    files = sorted(glob.glob(os.path.join(src, '*.[ch]')))
    rows = readme_table(readme)
    order = [f for _, f in rows]
    concept, last = {}, ''
    for c, f in rows:
        last = c or last
        concept[f] = last
    listed = {os.path.basename(f) for f in files if f.endswith('.c')}
    for f in sorted(listed - set(order)):
        print('layout: %s is not in the README table "How the code is organised"' % f)
        bad += 1
    for f in sorted(set(order) - listed):
        print('layout: the README lists %s, which is not in %s' % (f, src))
        bad += 1
    for f in sorted({f for f in order if order.count(f) > 1}):
        print('layout: the README lists %s more than once' % f)
        bad += 1
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
        if not os.path.exists(os.path.join(src, name)):
            continue            # left by a build of another tree
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
        for g in sorted(calls[f]):
            if f in order and g in order and order.index(g) > order.index(f):
                print('layout: %s calls %s, which the README lists below it' % (f, g))
                bad += 1
    shown = ''
    for f in order + sorted(set(calls) - set(order)):
        if concept.get(f, '?') != shown:
            shown = concept.get(f, '?')
            print('layout: -- %s' % shown)
        print('layout:    %s calls %s' % (f, ', '.join(sorted(calls.get(f, ()))) or 'no other file'))
    print('layout: %d files, %d violations' % (len(files), bad))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())

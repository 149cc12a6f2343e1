#!/usr/bin/env python3
"""Checks claims of the documentation (README.md, doc/*.md) that no test of
the extension itself can see.

Review 21, finding 14: in 1.1 an empty release_expired_orders.worker_database
stopped the worker; in 1.2 it serves every database that has the extension.
No paragraph may still advise `worker_database = ''` to stop (or pause, or
turn off) a worker, and the advice around a data-only restore names the 1.2
way, deadline_worker = off for that database.

Usage: python3 test/doc_claims.py [checkout]; exits 1 on a failed claim.
"""
import glob
import os
import re
import sys

EMPTY_DATABASE = re.compile(r"worker_database\s*=\s*(''|\"\")")
STOP = re.compile(r"\b(stop|stops|stopping|pause|turn off|disable)\b", re.I)
DEADLINE_WORKER_OFF = re.compile(r"deadline_worker\s*=\s*off")


def paragraphs(path):
    """(first line number, text) of each paragraph or list item of path."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    start, buf = None, []
    for n, line in enumerate(lines, 1):
        item = re.match(r'\s*([-*]|\d+\.)\s', line)
        if not line.strip() or (item and buf):
            if buf:
                yield start, ' '.join(buf)
            start, buf = None, []
            if not line.strip():
                continue
        if start is None:
            start = n
        buf.append(line.strip())
    if buf:
        yield start, ' '.join(buf)


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
    docs = [os.path.join(top, 'README.md')] + sorted(glob.glob(os.path.join(top, 'doc', '*.md')))
    failures = []
    restore_advice = []
    for path in docs:
        for line, text in paragraphs(path):
            name = os.path.relpath(path, top)
            if EMPTY_DATABASE.search(text) and STOP.search(text):
                failures.append("%s:%d advises worker_database = '' to stop a worker, which in 1.2 "
                                "serves every database with the extension: %s" % (name, line, text[:160]))
            if 'data-only restore' in text and STOP.search(text):
                restore_advice.append((name, line, text))
    if not restore_advice:
        failures.append('no paragraph of the docs tells how to stop the worker around a data-only restore')
    for name, line, text in restore_advice:
        if not DEADLINE_WORKER_OFF.search(text):
            failures.append('%s:%d: the advice for a data-only restore does not name deadline_worker = off: %s'
                            % (name, line, text[:160]))
    for f in failures:
        print('doc_claims: ' + f)
    if not failures:
        print('doc_claims: ok (%d files, %d data-only restore paragraphs)' % (len(docs), len(restore_advice)))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())

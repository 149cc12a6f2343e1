#!/usr/bin/env python3
"""Makes sql/release_expired_orders--1.0--1.2.sql, the direct upgrade from
1.0 that ALTER EXTENSION ... UPDATE takes (the shortest path): the released
upgrade to 1.1 without its last block, which took back every grant made on
the extension's objects, then the upgrade from 1.1 to 1.2.

    python3 test/upgrade/direct.py           write the script
    python3 test/upgrade/direct.py --check   exit 1 when it is not up to date
"""
import os
import sys

SQL = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'sql')
REVOKE_BLOCK = '-- Default privileges of the installing role (Supabase grants ALL on new'

HEAD = '''-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\\echo Use "ALTER EXTENSION release_expired_orders UPDATE TO '1.2'" to load this file. \\quit

-- Upgrade from 1.0 straight to 1.2, the path ALTER EXTENSION ... UPDATE
-- takes from 1.0 (the shortest): the upgrade to 1.1 without its last
-- block, which took back every grant made on the extension's objects,
-- then the upgrade from 1.1 to 1.2.  Like that one, it never revokes a
-- privilege an operator gave (sql/upgrade.sql checks it).  Made by
-- test/upgrade/direct.py from the two scripts; do not edit.

-- ---- 1.0 to 1.1 ----
'''


def body(text):
    lines = text.split('\n')
    assert lines[0].startswith('-- complain') and lines[1].startswith('\\echo')
    return '\n'.join(lines[2:]).lstrip('\n')


def script():
    a = open(os.path.join(SQL, 'release_expired_orders--1.0--1.1.sql'), encoding='utf-8').read()
    b = open(os.path.join(SQL, 'release_expired_orders--1.1--1.2.sql'), encoding='utf-8').read()
    a = body(a[:a.index(REVOKE_BLOCK)]).rstrip('\n') + '\n'
    return HEAD + a + '\n-- ---- 1.1 to 1.2 ----\n' + body(b)


def main():
    path = os.path.join(SQL, 'release_expired_orders--1.0--1.2.sql')
    text = script()
    if '--check' in sys.argv[1:]:
        current = open(path, encoding='utf-8').read() if os.path.exists(path) else ''
        if current != text:
            print('direct.py: %s is not up to date: run python3 test/upgrade/direct.py' % path)
            return 1
        print('direct.py: %s is up to date' % os.path.basename(path))
        return 0
    open(path, 'w', encoding='utf-8').write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())

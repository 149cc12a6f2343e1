#!/usr/bin/python3
"""Generator of hostile applications for release_expired_orders (README, Security).

From a seed it draws an application (column types and nullability, triggers,
row-level security, deferred constraints, extreme data, payment windows, the
job's role, concurrent payments and purchases), runs the job against it in a
fresh schema, and checks invariants against a reference model of what the
application itself did.  See README.md next to this file.
"""
import argparse
import datetime
import fcntl
import math
import multiprocessing
import os
import random
import re
import sys
import time
import traceback
import uuid

import psycopg2
import psycopg2.extensions
from psycopg2.extensions import ISOLATION_LEVEL_AUTOCOMMIT

INT_MAX = 2147483647
ROLE_OWNER = 'reo_h_owner'      # owns the application's tables (not a superuser)
ROLE_JOB = 'reo_h_job'          # runs the job with grants, owns nothing
ROLE_SUPER = None               # the connecting superuser (filled in at start)
ROLE_PASSWORD = 'reo_h_pw'      # throwaway clusters only
LOCK_TIMEOUT_MS = 50
TIMEOUT_MIN = 30
# The DST ingredient: a POSIX zone 5 hours west of UTC with an hour of DST,
# made when the case runs so that its change (forward for 'spring', back
# for 'fall') was three days ago, and each change's two orders, as minutes
# of wall-clock time from the change's wall-clock time before it, with the
# instant the twin's deadline is put at by the CALL's timeout (minutes from
# the change).  A real zone's change moves a year away, past the longest
# timeout, and needs time zone data.
DST_ORDERS = {
    'spring': [('dst', 50), ('twin', 70)],      # in the skipped hour; 10 min after it
    'fall': [('dst', 30), ('twin', -30)],       # in the repeated hour; before it
}
DST_ANCHOR_MIN = {'spring': 10, 'fall': -15}
STATUS_KINDS = ['varchar', 'text', 'bpchar', 'domain', 'enum', 'citext']
LABELS = ['pending', 'paid', 'cancelled', 'expired', 'completed', 'refunded',
          'lottery_win', 'direct_buy', 'recharge', 'resale', 'resale_purchase',
          'alipay', 'bank_transfer', 'wallet', 'system_audit', 'sent', 'failed']
ORDER_TYPES = ['lottery_win', 'direct_buy', 'recharge', 'resale', 'resale_purchase']
METHODS = ['alipay', 'bank_transfer', 'wallet']
# SQLSTATEs a trigger raises, one or more per class; every one must fail
# only its order.
SQLSTATES = ['22012', '22003', '23505', '23514', '40001', '40P01', '42501',
             '42P01', '53200', '55P03', '57014', '58030', 'P0001', 'XX000']
# SQLSTATE classes whose errors, raised by the application's code, may end a
# run.  None: the job fails the order for an error of any class; only the
# server's own interrupts (a real cancel, statement_timeout) end a run.
LENIENT_CLASSES = ()
INVARIANTS = [
    'counters_match_audit',     # Δcounter = Σ audit deltas + the application's own changes
    'counters_match_model',     # ... = what the model says the released orders reserved
    'released_once',            # at most one release per order (per restore)
    'released_is_expired',      # an audited release left the order expired/cancelled/cancelled
    'no_paid_expired',          # a paid order is never expired
    'no_undue_released',        # an order that was not due/pending is never released
    'vetoed_not_released',      # an order the application refuses stays pending
    'due_released',             # an order the application lets go is released (bounded runs)
    'unreleased_explained',     # a due order left pending has an audit reason
    'run_not_failed',           # no run ends for everyone unless every order fails
    'held_not_blocking',        # orders held by a payment do not keep the others from release
    'no_hang',                  # every CALL returns within statement_timeout
    'functions_work',           # preview(), metrics, health() return
    'trigger_privilege',        # application code never runs as a superuser it is not
    'no_crash',                 # the bystander session survives
]


class Crash(Exception):
    pass


def q(v):
    """SQL literal."""
    if v is None:
        return 'NULL'
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


# ---------------------------------------------------------------- drawing

def draw_case(seed):
    r = random.Random(seed)
    c = {'seed': seed, 'schema': 'hc_%d' % seed}

    def uid():
        return str(uuid.UUID(int=r.getrandbits(128), version=4))

    # Columns: type kinds and nullability.
    kinds = {}
    plain = r.random() < 0.5     # half the cases keep the ORM's varchar/text
    for col in ['o.status', 'o.payment_status', 'o.fulfillment_status', 'o.type',
                'o.payment_method', 'n.type', 'n.status']:
        kinds[col] = (r.choice(['varchar', 'text']) if plain or r.random() < 0.6
                      else r.choice(STATUS_KINDS))
    for col in ['o.created_at', 'o.updated_at', 'p.updated_at', 'l.updated_at',
                'n.sent_at', 'n.created_at']:
        kinds[col] = r.choice(['timestamp(3)', 'timestamptz'])
    if r.random() < 0.85:   # mostly one convention for the two times of a notification
        kinds['n.created_at'] = kinds['n.sent_at']
    c['kinds'] = kinds
    nullable = {}
    for col in ['o.order_number', 'o.user_id', 'o.product_id', 'o.round_id', 'o.type',
                'o.payment_method', 'o.quantity', 'o.status', 'o.payment_status',
                'o.fulfillment_status', 'o.created_at', 'o.updated_at', 'o.notes',
                'p.stock', 'p.updated_at', 'l.sold_shares', 'l.total_shares', 'l.status',
                'l.updated_at', 'n.user_id', 'n.type', 'n.content', 'n.status',
                'n.sent_at', 'n.created_at']:
        default_null = col in ('o.product_id', 'o.round_id', 'o.notes', 'o.payment_method',
                               'p.stock', 'p.updated_at', 'l.updated_at', 'o.updated_at',
                               'o.status', 'o.payment_status', 'o.fulfillment_status',
                               'l.sold_shares', 'l.status', 'n.status', 'n.sent_at',
                               'n.created_at', 'o.created_at')
        nullable[col] = default_null if r.random() < 0.6 else (r.random() < 0.7)
    c['nullable'] = nullable
    c['citext'] = any(k == 'citext' for k in kinds.values())

    # The job's role.
    c['role'] = r.choice(['owner', 'job', 'super'])
    c['settings'] = {
        'chunk_size': r.choice([1, 2, 3, 1000, 1000]),
        'retry_backoff': '0' if r.random() < 0.85 else '15min',
        'write_notifications': 'on' if r.random() < 0.9 else 'off',
    }
    c['batch_limit'] = r.choice([1, 2, 5, 100, 100, 1000])

    # Products and rounds.
    prods = []
    for i in range(r.randint(1, 3)):
        stock = r.choice([100, 100, 5, 0, -5, INT_MAX - 3] + ([None] if nullable['p.stock'] else []))
        prods.append({'id': uid(), 'stock': stock})
    rounds = []
    for i in range(r.randint(0, 2)):
        sold = r.choice([500, 500, 50, 3, 0] + ([None] if nullable['l.sold_shares'] else []))
        rounds.append({'id': uid(), 'sold': sold, 'total': 1000, 'product': r.choice(prods)['id']})
    c['products'], c['rounds'] = prods, rounds
    c['missing_product'], c['missing_round'] = uid(), uid()

    # Orders.
    orders = []
    nord = r.randint(4, 14)
    for i in range(nord):
        o = {'id': uid(), 'i': i}
        o['order_number'] = 'H%d-%d' % (seed, i)
        if r.random() < 0.15:
            o['order_number'] += r.choice(["'q", '\\b', '\nnl', '"d', '\x01c'])
        if nullable['o.order_number'] and r.random() < 0.25:
            o['order_number'] = None
        o['user_id'] = None if (nullable['o.user_id'] and r.random() < 0.25) else uid()
        x = r.random()
        o['product_id'] = (r.choice(prods)['id'] if x < 0.7 else
                           c['missing_product'] if x < 0.8 else None)
        if o['product_id'] is None and not nullable['o.product_id']:
            o['product_id'] = prods[0]['id']
        x = r.random()
        o['round_id'] = (r.choice(rounds)['id'] if rounds and x < 0.5 else
                         c['missing_round'] if x < 0.6 else None)
        if o['round_id'] is None and not nullable['o.round_id']:
            o['round_id'] = c['missing_round']
        qs = [1, 1, 2, 3, 0, -2, INT_MAX]
        if nullable['o.quantity']:
            qs.append(None)
        o['quantity'] = r.choice(qs)
        o['type'] = r.choice(ORDER_TYPES)
        if nullable['o.type'] and r.random() < 0.1:
            o['type'] = None
        o['payment_method'] = r.choice(METHODS + [None]) if nullable['o.payment_method'] else r.choice(METHODS)
        st = ('pending', 'pending', 'pending')
        x = r.random()
        if x < 0.12:
            st = ('pending', 'paid', 'completed')      # paid: keeps status pending
        elif x < 0.17:
            st = ('expired', 'cancelled', 'cancelled')
        elif x < 0.2 and nullable['o.status']:
            st = (None, 'pending', 'pending')
        o['statuses'] = st
        x = r.random()
        if x < 0.6:
            o['age'] = r.choice([45, 90, 300, 2000, 700000])
        elif x < 0.8:
            o['age'] = r.choice([2, 10])
        else:
            o['age'] = r.choice(['-infinity', 'infinity', 'far_future', 'near_max', 'near_min']
                                + (['null'] if nullable['o.created_at'] else []))
        orders.append(o)
    c['orders'] = orders

    # Payment windows.
    c['windows'] = []
    if r.random() < 0.3:
        for t in r.sample(ORDER_TYPES, r.randint(1, 3)):
            m = r.choice([None, None, 'bank_transfer', 'alipay'])
            c['windows'].append((t, m, r.choice([15, 60, 1440, None])))
        # one row per (type, method)
        seen, w = set(), []
        for t, m, mins in c['windows']:
            if (t, m) not in seen:
                seen.add((t, m))
                w.append((t, m, mins))
        c['windows'] = w

    # Triggers.
    trig = []
    ntrig = r.choice([0, 1, 1, 2, 2, 3, 4])
    for k in range(ntrig):
        table = r.choice(['orders', 'orders', 'orders', 'products', 'lottery_rounds', 'notifications'])
        timing = r.choice(['BEFORE', 'AFTER'])
        level = 'ROW' if r.random() < 0.8 else 'STATEMENT'
        pred = r.choice(['all', 'some', 'some'])
        digits = ''.join(sorted(r.sample('0123456789abcdef', r.randint(3, 8))))
        t = {'k': k, 'table': table, 'timing': timing, 'level': level, 'pred': pred,
             'digits': digits, 'code': r.choice(SQLSTATES)}
        if table == 'orders' and level == 'ROW' and timing == 'BEFORE':
            opts = ['veto_null', 'veto_old', 'veto_statuses', 'set_qty', 'clear_product',
                    'clear_round', 'move_product', 'raise', 'raise', 'sleep']
        elif table == 'orders' and level == 'ROW':
            opts = ['raise', 'side_stock', 'noop']
        elif table == 'orders':
            opts = ['raise', 'noop'] if timing == 'AFTER' else ['raise_all', 'noop', 'sleep']
        elif table in ('products', 'lottery_rounds') and level == 'ROW' and timing == 'BEFORE':
            opts = ['skip', 'return_old', 'add', 'add', 'raise', 'sleep']
        elif table in ('products', 'lottery_rounds'):
            opts = ['raise', 'noop'] if level == 'ROW' else ['raise_all', 'noop']
        else:   # notifications
            opts = ['skip', 'raise', 'noop'] if level == 'ROW' else ['raise_all', 'noop']
            if timing == 'AFTER' and 'skip' in opts:
                opts.remove('skip')
        t['does'] = r.choice(opts)
        if t['does'] == 'set_qty':
            t['value'] = r.choice(['0', '-1', 'OLD.quantity * 2'] + (['NULL'] if nullable['o.quantity'] else []))
        if t['does'] == 'add':
            t['value'] = r.choice([1, -1, 7])
        if t['does'] == 'clear_product' and not nullable['o.product_id']:
            t['does'] = 'move_product'
        if t['does'] == 'clear_round' and not nullable['o.round_id']:
            t['does'] = 'noop'
        trig.append(t)
    c['triggers'] = trig
    c['priv_probe'] = r.random() < 0.5
    c['deferred'] = r.choice([None, None, 'trigger', 'unique'])
    c['deferred_digits'] = ''.join(sorted(r.sample('0123456789abcdef', 4)))

    # Row-level security: per table none / no policy / policy for the job role; FORCE.
    c['rls'] = {}
    for tb in ['orders', 'products', 'lottery_rounds', 'notifications']:
        x = r.random()
        mode = None if x < 0.85 else ('nopolicy' if x < 0.93 else 'policy')
        c['rls'][tb] = (mode, r.random() < 0.5)

    # The steps: app payments/purchases, held locks, runs in this session or in
    # fresh ones, restores; then the final runs (bounded).
    steps = []
    grow = random.Random(seed * 7919 + 1)    # drawn apart: earlier cases stay as they were
    for s in range(r.randint(1, 3)):
        x = r.random()
        if x < 0.25:
            steps.append(('pay', r.randint(1, 3)))
        elif x < 0.4:
            steps.append(('purchase',))
        if r.random() < 0.3:
            steps.append(('run', r.choice(['session', 'fresh']), r.choice(['hold_pay', 'hold_product', 'hold_orders', 'purchase_during'])))
        else:
            steps.append(('run', r.choice(['session', 'fresh', 'session']), None))
        if r.random() < 0.1:
            steps.append(('restore',))
        if grow.random() < 0.1:
            # the shop grows between two runs of a session that keeps its
            # plans, with nothing analyzing orders
            steps.append(('grow', grow.choice([500, 3000])))
    c['steps'] = steps
    c['no_autovacuum'] = any(st[0] == 'grow' for st in steps)
    # With windows, a case-insensitive (nondeterministic) collation on
    # orders.type, which the job must refuse.
    c['ci_type'] = (bool(c['windows']) and kinds['o.type'] in ('varchar', 'text', 'bpchar')
                    and grow.random() < 0.15)
    if c['ci_type']:
        # a window of one minute for the upper-case spelling of the type of a
        # young pending order, which no order has: under that collation it
        # would pass for the type's own window and release the order
        young = [o['type'] for o in orders if o['type'] and o['statuses'][0] == 'pending'
                 and o['age'] in (2, 10, 45)]
        t0 = young[0] if young else c['windows'][0][0]
        c['windows'].append((t0.upper(), None, 1))
    # The extension's SQL objects are still 1.0's in some databases: a
    # package replaced the library, and ALTER EXTENSION UPDATE has not run
    # there yet.  1.0 has no payment windows; its restore_order() and its
    # functions are 1.0's own SQL, which the library does not change.
    c['objects'] = '1.0' if grow.random() < 0.15 else 'current'
    if c['objects'] == '1.0':
        c['windows'] = []
        c['ci_type'] = False
        c['steps'] = [st for st in c['steps'] if st[0] != 'restore']
    # A created_at without time zone in a zone with DST, and two orders
    # created around a DST change (DST_ORDERS; the zone is made when the
    # case runs, dst_setup()): one in the hour the change skips or repeats,
    # which PostgreSQL reads as the later instant, and its twin just
    # outside.  The CALL's timeout makes the twin due and the other due
    # only in some 40 minutes: released now, it went early.  Their type has
    # no payment window of its own, so the timeout is theirs with windows
    # too.
    dst = random.Random(seed * 7919 + 2)
    c['dst'] = None
    if kinds['o.created_at'] == 'timestamp(3)' and dst.random() < 0.25:
        c['dst'] = dst.choice(['spring', 'fall'])
        free = [t for t in ORDER_TYPES if not any(w[0] == t for w in c['windows'])]
        if not free:
            c['windows'] = [w for w in c['windows'] if w[0] != ORDER_TYPES[0]]
            free = [ORDER_TYPES[0]]
        for i, (kind, minutes) in enumerate(DST_ORDERS[c['dst']]):
            o = {'id': str(uuid.UUID(int=dst.getrandbits(128), version=4)), 'i': nord + i,
                 'order_number': 'H%d-%s' % (seed, kind),
                 'user_id': str(uuid.UUID(int=dst.getrandbits(128), version=4)),
                 'product_id': dst.choice(prods)['id'],
                 'round_id': dst.choice(rounds)['id'] if rounds else c['missing_round'],
                 'quantity': 1, 'type': dst.choice(free),
                 'payment_method': dst.choice(METHODS), 'statuses': ('pending', 'pending', 'pending'),
                 'age': ('dst', kind, minutes)}
            orders.append(o)
    return c


# ---------------------------------------------------------------- building

def coltype(c, col):
    k = c['kinds'][col]
    if k == 'varchar':
        return 'varchar(50)'
    if k == 'bpchar':
        return 'char(20)'
    if k == 'domain':
        return c['schema'] + '.hdom'
    if k == 'enum':
        return c['schema'] + '.henum'
    return k


def nn(c, col):
    return '' if c['nullable'][col] else ' NOT NULL'


def ts_expr(c, col, age):
    tz = c['kinds'][col] == 'timestamptz'
    if age == 'null':
        return 'NULL'
    if isinstance(age, tuple):
        at = c['dst_base'] + datetime.timedelta(minutes=age[2])
        return q(at.strftime('%Y-%m-%d %H:%M:%S')) + '::' + c['kinds'][col]
    if isinstance(age, int):
        base = "now()" if tz else "(now() AT TIME ZONE %s)" % q(naive_zone(c))
        return "%s - interval '%d minutes'" % (base, age)
    lit = {'-infinity': '-infinity', 'infinity': 'infinity', 'far_future': '3000-01-01 00:00:00',
           'near_max': '294276-12-30 23:59:59', 'near_min': '4713-01-02 00:00:00 BC'}[age]
    if tz and age in ('far_future', 'near_max'):
        lit = lit + '+00'
    if tz and age == 'near_min':
        lit = '4713-01-02 00:00:00+00 BC'
    return q(lit) + '::' + c['kinds'][col]


def naive_zone(c):
    return c['dst_zone'] if c.get('dst') else 'UTC'


def posix_rule(t, west_h):
    """The POSIX rule "Jn/hh:mm:ss" of the instant t at west_h hours west of UTC."""
    loc = t - datetime.timedelta(hours=west_h)
    y = loc.year
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    jn = loc.timetuple().tm_yday - (1 if leap and loc.timetuple().tm_yday > 59 else 0)
    return 'J%d/%s' % (jn, loc.strftime('%H:%M:%S'))


def dst_setup(c):
    """The case's zone, its orders' wall-clock base and the CALL's timeout."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    change = now.replace(second=0, microsecond=0) - datetime.timedelta(days=3)
    half = datetime.timedelta(days=180)
    if any((x - datetime.timedelta(hours=h)).strftime('%m-%d') == '02-29'
           for x, h in ((change, 5), (change + half, 4), (change - half, 5))):
        change -= datetime.timedelta(days=1)
    if c['dst'] == 'spring':
        c['dst_zone'] = 'XST5XDT,%s,%s' % (posix_rule(change, 5), posix_rule(change + half, 4))
    else:
        c['dst_zone'] = 'XST5XDT,%s,%s' % (posix_rule(change - half, 5), posix_rule(change, 4))
    c['dst_base'] = change - datetime.timedelta(hours=5)
    anchor = change + datetime.timedelta(minutes=DST_ANCHOR_MIN[c['dst']])
    passed = (now - datetime.timedelta(minutes=1) - anchor).total_seconds()
    c['timeout'] = int(math.ceil(passed / 60))


def pred_sql(t, rec, col='id'):
    if t['pred'] == 'all':
        return 'true'
    return "right(%s.%s::text, 1) = ANY (%s::text[])" % (rec, col, q('{' + ','.join(t['digits']) + '}'))


def pred_py(t, ident):
    return t['pred'] == 'all' or ident[-1] in t['digits']


def build_sql(c, job_role):
    s = c['schema']
    out = []
    a = out.append
    a('CREATE SCHEMA %s AUTHORIZATION %s;' % (s, ROLE_OWNER))
    a('SET ROLE %s;' % ROLE_OWNER)
    a("SET search_path = %s, public;" % s)
    a("CREATE DOMAIN %s.hdom AS text CHECK (VALUE <> 'forbidden');" % s)
    a('CREATE TYPE %s.henum AS ENUM (%s);' % (s, ', '.join(q(x) for x in LABELS)))
    st = lambda col: coltype(c, col) + nn(c, col)
    if c.get('ci_type'):
        a("CREATE COLLATION %s.hci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);" % s)
        st = lambda col: coltype(c, col) + (' COLLATE %s.hci' % s if col == 'o.type' else '') + nn(c, col)
    a("""CREATE TABLE %s.orders (id uuid PRIMARY KEY, legacy_ref text,
  order_number varchar(50)%s UNIQUE, user_id uuid%s, channel text DEFAULT 'web',
  product_id uuid%s, round_id uuid%s, type %s, quantity integer%s DEFAULT 1,
  total_amount numeric(10,2) NOT NULL DEFAULT 1, status %s DEFAULT 'pending',
  payment_status %s DEFAULT 'pending', payment_method %s, fulfillment_status %s DEFAULT 'pending',
  notes text%s DEFAULT '', created_at %s%s DEFAULT now(), updated_at %s%s, grp integer);""" % (
        s, nn(c, 'o.order_number'), nn(c, 'o.user_id'), nn(c, 'o.product_id'), nn(c, 'o.round_id'),
        st('o.type'), nn(c, 'o.quantity'), st('o.status'), st('o.payment_status'),
        st('o.payment_method'), st('o.fulfillment_status'), nn(c, 'o.notes'),
        c['kinds']['o.created_at'], nn(c, 'o.created_at'), c['kinds']['o.updated_at'],
        nn(c, 'o.updated_at')))
    a('CREATE INDEX ON %s.orders (status, created_at);' % s)
    if c.get('no_autovacuum'):
        a('ALTER TABLE %s.orders SET (autovacuum_enabled = off);' % s)
    if c['windows'] or c['seed'] % 2:
        a("CREATE INDEX ON %s.orders (type, created_at, id) WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';" % s)
    else:
        a("CREATE INDEX ON %s.orders (created_at, id) WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';" % s)
    a("""CREATE TABLE %s.products (id uuid PRIMARY KEY, name text, stock integer%s DEFAULT 0,
  status varchar(20), updated_at %s%s);""" % (s, nn(c, 'p.stock'), c['kinds']['p.updated_at'], nn(c, 'p.updated_at')))
    a("""CREATE TABLE %s.lottery_rounds (id uuid PRIMARY KEY, product_id uuid NOT NULL, round_number integer,
  total_shares integer%s, sold_shares integer%s DEFAULT 0, status %s, updated_at %s%s);""" % (
        s, nn(c, 'l.total_shares'), nn(c, 'l.sold_shares'), 'varchar(20)' + nn(c, 'l.status'),
        c['kinds']['l.updated_at'], nn(c, 'l.updated_at')))
    a("""CREATE TABLE %s.notifications (id uuid PRIMARY KEY, user_id uuid%s, channel text, type %s,
  content text%s, status %s DEFAULT 'pending', error text, sent_at %s%s, created_at %s%s DEFAULT now());""" % (
        s, nn(c, 'n.user_id'), st('n.type'), nn(c, 'n.content'), st('n.status'),
        c['kinds']['n.sent_at'], nn(c, 'n.sent_at'), c['kinds']['n.created_at'], nn(c, 'n.created_at')))
    # The application's own log: counter changes its triggers make by
    # themselves, and who its code ran as.
    a('CREATE TABLE %s.hlog (kind text, id uuid, delta bigint, who name, super boolean);' % s)
    a('GRANT INSERT, SELECT ON %s.hlog TO PUBLIC;' % s)

    # Data.
    for p in c['products']:
        a('INSERT INTO %s.products (id, name, stock, status, updated_at) VALUES (%s, %s, %s, %s, %s);' % (
            s, q(p['id']), q('p'), q(p['stock']), q('active'),
            'now()' if True else 'NULL'))
    for rd in c['rounds']:
        a('INSERT INTO %s.lottery_rounds (id, product_id, round_number, total_shares, sold_shares, status, updated_at) VALUES (%s, %s, 1, %d, %s, %s, now());' % (
            s, q(rd['id']), q(rd['product']), rd['total'], q(rd['sold']), q('active')))
    rows = []
    for o in c['orders']:
        st3 = o['statuses']
        rows.append('(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %d)' % (
            q(o['id']), q(o['order_number']), q(o['user_id']), q(o['product_id']), q(o['round_id']),
            q(o['type']), q(o['payment_method']), q(o['quantity']), q(st3[0]), q(st3[1]), q(st3[2]),
            ts_expr(c, 'o.created_at', o['age']), 'now()' if not c['nullable']['o.updated_at'] else 'NULL',
            o['i'] if st3[0] == 'pending' else 1000 + o['i']))
    a('INSERT INTO %s.orders (id, order_number, user_id, product_id, round_id, type, payment_method, quantity, status, payment_status, fulfillment_status, created_at, updated_at, grp) VALUES %s;' % (
        s, ',\n'.join(rows)))

    # Triggers.
    for t in c['triggers']:
        a(trigger_sql(c, t))
    if c['priv_probe']:
        a("""CREATE FUNCTION %s.priv_probe() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  INSERT INTO %s.hlog (kind, who, super) SELECT 'priv', current_user, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user;
  RETURN NULL;
END $f$;
CREATE TRIGGER zz_priv_probe AFTER UPDATE ON %s.orders FOR EACH ROW WHEN (NEW.status::text = 'expired') EXECUTE FUNCTION %s.priv_probe();""" % (s, s, s, s))
    if c['deferred'] == 'trigger':
        a("""CREATE FUNCTION %s.deferred_check() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF NEW.status::text = 'expired' AND right(NEW.id::text, 1) = ANY (%s::text[]) THEN
    RAISE EXCEPTION 'order %% is held by a deferred rule', NEW.id USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $f$;
CREATE CONSTRAINT TRIGGER deferred_check AFTER UPDATE ON %s.orders DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION %s.deferred_check();""" % (s, q('{' + ','.join(c['deferred_digits']) + '}'), s, s))
    elif c['deferred'] == 'unique':
        # Orders whose id ends in one of the digits share their grp with an
        # already expired order: expiring them violates the deferred unique.
        a("""ALTER TABLE %s.orders ADD CONSTRAINT grp_status UNIQUE (grp, status) DEFERRABLE INITIALLY DEFERRED;""" % s)
        for o in c['orders']:
            if o['id'][-1] in c['deferred_digits'] and o['statuses'][0] == 'pending':
                a("INSERT INTO %s.orders (id, order_number, user_id, product_id, round_id, type, payment_method, quantity, status, payment_status, fulfillment_status, created_at, updated_at, notes, grp) VALUES (gen_random_uuid(), %s, gen_random_uuid(), %s, %s, 'direct_buy', 'wallet', 1, 'expired', 'cancelled', 'cancelled', now(), now(), '', %d);" % (
                    s, q('X%d-%d' % (c['seed'], o['i'])), q(c['products'][0]['id']), q(c['missing_round']), o['i']))

    # Row-level security.
    for tb, (mode, force) in c['rls'].items():
        if mode is None:
            continue
        a('ALTER TABLE %s.%s ENABLE ROW LEVEL SECURITY;' % (s, tb))
        if force:
            a('ALTER TABLE %s.%s FORCE ROW LEVEL SECURITY;' % (s, tb))
        if mode == 'policy':
            a('CREATE POLICY job_all ON %s.%s TO %s USING (true) WITH CHECK (true);' % (s, tb, job_role))
    # Grants for the job role that owns nothing.
    a('GRANT USAGE ON SCHEMA %s TO %s;' % (s, ROLE_JOB))
    a('GRANT SELECT, UPDATE ON %s.orders, %s.products, %s.lottery_rounds TO %s;' % (s, s, s, ROLE_JOB))
    a('GRANT SELECT, INSERT ON %s.notifications TO %s;' % (s, ROLE_JOB))
    a('RESET ROLE;')
    a('RESET search_path;')
    return '\n'.join(out)


def trigger_sql(c, t):
    s, k, tb = c['schema'], t['k'], t['table']
    fn = '%s.t%d_%s' % (s, k, tb)
    raise_ = "RAISE EXCEPTION 'hostile %s trigger %d' USING ERRCODE = %s;" % (tb, k, q(t['code']))
    jobflag = "coalesce(current_setting('reo_h.job', true), '') = 'on'"
    body = 'RETURN NEW;'
    when = ''
    trans = ''
    rec = 'OLD' if tb != 'notifications' else 'NEW'
    d = t['does']
    if tb == 'orders' and t['level'] == 'ROW':
        cond = "NEW.status::text = 'expired' AND " + pred_sql(t, 'OLD')
        act = {
            'veto_null': 'RETURN NULL;',
            'veto_old': 'RETURN OLD;',
            'veto_statuses': 'NEW.status := OLD.status; NEW.payment_status := OLD.payment_status; NEW.fulfillment_status := OLD.fulfillment_status; RETURN NEW;',
            'set_qty': 'NEW.quantity := %s; RETURN NEW;' % t.get('value'),
            'clear_product': 'NEW.product_id := NULL; RETURN NEW;',
            'clear_round': 'NEW.round_id := NULL; RETURN NEW;',
            'move_product': 'NEW.product_id := %s; RETURN NEW;' % q(c['products'][-1]['id']),
            'raise': raise_,
            'sleep': 'PERFORM pg_sleep(%f); RETURN NEW;' % (LOCK_TIMEOUT_MS * 1.5 / 1000.0),
            'side_stock': ("SELECT coalesce(stock, 0) INTO a FROM %s.products WHERE id = OLD.product_id FOR UPDATE;"
                           " IF FOUND THEN UPDATE %s.products SET stock = stock + 1 WHERE id = OLD.product_id RETURNING coalesce(stock, 0) INTO b;"
                           " INSERT INTO %s.hlog (kind, id, delta) VALUES ('stock', OLD.product_id, coalesce(b, a) - a); END IF;"
                           " RETURN NEW;") % (s, s, s),
            'noop': 'RETURN NEW;',
        }[d]
        body = 'IF %s THEN %s END IF; RETURN NEW;' % (cond, act)
    elif tb == 'orders':
        if d == 'raise':    # AFTER STATEMENT with its transition table
            trans = 'REFERENCING NEW TABLE AS nt'
            body = ("IF EXISTS (SELECT FROM nt WHERE nt.status::text = 'expired' AND %s) THEN %s END IF; RETURN NULL;"
                    % (pred_sql(t, 'nt'), raise_))
        elif d == 'raise_all':
            body = 'IF %s THEN %s END IF; RETURN NULL;' % (jobflag, raise_)
        elif d == 'sleep':
            body = 'IF %s THEN PERFORM pg_sleep(%f); END IF; RETURN NULL;' % (jobflag, LOCK_TIMEOUT_MS * 1.5 / 1000.0)
        else:
            body = 'RETURN NULL;'
    elif tb in ('products', 'lottery_rounds'):
        col = 'stock' if tb == 'products' else 'sold_shares'
        cond = jobflag + ' AND ' + pred_sql(t, 'OLD')
        if t['level'] == 'ROW':
            act = {
                'skip': 'RETURN NULL;',
                'return_old': 'RETURN OLD;',
                'add': 'NEW.%s := NEW.%s + %d; RETURN NEW;' % (col, col, t.get('value', 1)),
                'raise': raise_,
                'sleep': 'PERFORM pg_sleep(%f); RETURN NEW;' % (LOCK_TIMEOUT_MS * 1.5 / 1000.0),
                'noop': 'RETURN NEW;',
            }[d]
            body = 'IF %s THEN %s END IF; RETURN NEW;' % (cond, act)
        else:
            body = ('IF %s THEN %s END IF; RETURN NULL;' % (jobflag, raise_)) if d == 'raise_all' else 'RETURN NULL;'
    else:   # notifications, on INSERT
        if t['level'] == 'ROW':
            act = {'skip': 'RETURN NULL;', 'raise': raise_, 'noop': 'RETURN NEW;'}[d]
            body = 'IF %s THEN %s END IF; RETURN NEW;' % (jobflag + ' AND ' + pred_sql(t, 'NEW', 'user_id'), act)
        else:
            body = ('IF %s THEN %s END IF; RETURN NULL;' % (jobflag, raise_)) if d == 'raise_all' else 'RETURN NULL;'
    event = 'INSERT' if tb == 'notifications' else 'UPDATE'
    if trans and event == 'UPDATE':
        pass
    return ("CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $f$ DECLARE a bigint; b bigint; BEGIN %s END $f$;\n"
            "CREATE TRIGGER t%d_%s %s %s ON %s.%s %s FOR EACH %s EXECUTE FUNCTION %s();") % (
        fn, body, k, d, t['timing'], event, s, tb, trans, t['level'], fn)


# ---------------------------------------------------------------- the model

def window_of(c, o):
    """Minutes of the order's payment window, None = never, as the README's Payment windows say."""
    best = None
    for t, m, mins in c['windows']:
        if t == o['type'] and m is not None and m == o['payment_method']:
            return ('w', mins)
        if t == o['type'] and m is None:
            best = ('w', mins)
    return best or ('w', timeout_of(c))


def timeout_of(c):
    """The CALL's timeout: that of a DST case is set when the case runs."""
    return c.get('timeout', TIMEOUT_MIN)


def is_due(c, o):
    age = o['age']
    _, mins = window_of(c, o)
    if mins is None:
        return False
    if isinstance(age, tuple):
        return age[1] == 'twin'
    if age == '-infinity' or age == 'near_min':
        return True
    if isinstance(age, int):
        return age > mins + 5
    return False


def job_role_name(c):
    return {'owner': ROLE_OWNER, 'job': ROLE_JOB, 'super': ROLE_SUPER}[c['role']]


def rls_applies(c, tb):
    mode, force = c['rls'][tb]
    if mode is None or c['role'] == 'super':
        return False
    if c['role'] == 'owner':
        return force
    return True


class Model:
    """What the application did, and what the job must therefore do."""

    def __init__(self, c):
        self.c = c
        self.paid = set()             # orders the application paid (UPDATE returned a row)
        self.app_delta = {}           # counter id -> what the application itself moved
        self.refused = (any(rls_applies(c, tb) for tb in ('orders', 'products', 'lottery_rounds'))
                        or c.get('ci_type', False))
        prod_ids = {p['id'] for p in c['products']}
        self.prod_ids = prod_ids
        self.round_ids = {r['id'] for r in c['rounds']}
        self.fate = {}      # order id -> 'release' | 'veto' | 'fail' | 'maybe' | 'stay'
        self.lenient = set()
        trig = c['triggers']
        for o in c['orders']:
            f = 'release'
            eligible = o['statuses'] == ('pending', 'pending', 'pending') and is_due(c, o)
            if not eligible:
                self.fate[o['id']] = 'stay'
                continue
            qty = o['quantity']
            for t in trig:
                d, tb = t['does'], t['table']
                if tb == 'orders' and t['level'] == 'ROW':
                    if not pred_py(t, o['id']):
                        continue
                    if d in ('veto_null', 'veto_old', 'veto_statuses'):
                        f = 'veto' if f == 'release' else f
                    elif (d == 'set_qty' and 'OLD.quantity *' in (t.get('value') or '')
                          and qty is not None and abs(qty) > INT_MAX // 2 and f != 'veto'):
                        f = 'fail'      # the application's own doubling overflows (22003)
                    elif d == 'raise' and f != 'veto':
                        f = self._fail(f, t)
                elif tb == 'orders' and d == 'raise' and pred_py(t, o['id']):
                    f = self._fail(f, t) if f != 'veto' else f
                elif tb == 'orders' and d == 'raise_all':
                    f = self._fail(f, t) if f != 'veto' else f
                elif tb in ('products', 'lottery_rounds') and d in ('raise', 'raise_all'):
                    ref = o['product_id'] if tb == 'products' else o['round_id']
                    ids = self.prod_ids if tb == 'products' else self.round_ids
                    if d == 'raise_all':
                        # whether the counter statement runs at all for a
                        # chunk without such rows is the job's business
                        if f == 'release':
                            f = 'maybe'
                        if t['code'][:2] in LENIENT_CLASSES:
                            self.lenient.add(o['id'])
                        continue
                    if (ref in ids and qty is not None and qty > 0 and pred_py(t, ref)
                            and f != 'veto'):
                        # the order reserved from this row: changing it may fail,
                        # but an order-level trigger may have moved it away, and
                        # a BEFORE ROW trigger that skips the row, firing first,
                        # keeps the raising one from firing at all
                        skipped = any(u['table'] == tb and u['level'] == 'ROW' and u['timing'] == 'BEFORE'
                                      and u['does'] == 'skip' and pred_py(u, ref)
                                      and (t['timing'] == 'AFTER' or u['k'] < t['k']) for u in trig)
                        f = self._fail(f, t) if not (self._order_moves(o, tb) or skipped) else 'maybe'
            # The application's own trigger on orders moves the product's
            # stock by one (side_stock): that update fires the product's
            # triggers and may overflow, failing the order by the
            # application's doing, not the job's.
            if f == 'release' and o['product_id'] in prod_ids and any(
                    t['table'] == 'orders' and t['level'] == 'ROW' and t['does'] == 'side_stock'
                    and pred_py(t, o['id']) for t in trig):
                p = self._product_stock(o['product_id'])
                if (p is not None and p + self._due_qty(o['product_id']) > INT_MAX - 20) or any(
                        t['table'] == 'products' and t['does'] in ('raise', 'raise_all') for t in trig):
                    f = 'maybe'
            if f == 'release' and qty is not None and qty > 0:
                p = self._product_stock(o['product_id'])
                if p is not None and p + qty > INT_MAX:
                    f = 'fail'      # 22003: the increment overflows
                elif p is not None and p + self._due_qty(o['product_id']) > INT_MAX - 10:
                    f = 'maybe'     # overflows together with others (or after a trigger's extra)
            if c['deferred'] and o['id'][-1] in c['deferred_digits'] and f == 'release':
                f = 'fail'
            self.fate[o['id']] = f

    def _due_qty(self, pid):
        return sum(o['quantity'] for o in self.c['orders'] if o['product_id'] == pid and o['quantity']
                   and o['quantity'] > 0 and o['statuses'] == ('pending', 'pending', 'pending') and is_due(self.c, o))

    def _order_moves(self, o, tb):
        for t in self.c['triggers']:
            if t['table'] == 'orders' and t['level'] == 'ROW' and pred_py(t, o['id']) and (
                    t['does'] in ('set_qty', 'move_product') or
                    (t['does'] == 'clear_product' and tb == 'products') or
                    (t['does'] == 'clear_round' and tb == 'lottery_rounds')):
                return True
        return False

    def _fail(self, f, t):
        if t['code'][:2] in LENIENT_CLASSES:
            self.lenient_hit = True
        return 'fail' if f in ('release', 'fail') else f

    def _product_stock(self, pid):
        for p in self.c['products']:
            if p['id'] == pid:
                return p['stock'] if p['stock'] is not None else 0
        return None

    def counter_trigger_changes(self, tb, ident):
        """True when a BEFORE ROW trigger may change what the job's update moves."""
        for t in self.c['triggers']:
            if t['table'] == tb and t['level'] == 'ROW' and t['timing'] == 'BEFORE' and \
                    t['does'] in ('skip', 'return_old', 'add') and pred_py(t, ident):
                return True
        return False


# ---------------------------------------------------------------- running

class Worker:
    def __init__(self, idx, dsn_db, verbose=False):
        self.idx = idx
        self.db = dsn_db
        self.objects = 'current'
        self.verbose = verbose
        self.connect()

    def dbname(self):
        return self.db if self.objects == 'current' else self.db + '_v10'

    def use(self, objects):
        """Connect to the database whose extension objects are those of a case."""
        if objects != self.objects:
            self.objects = objects
            self.connect()

    def conn(self, user=None, autocommit=True):
        kw = {'dbname': self.dbname()}
        if user:
            kw['user'] = user
        if user in (ROLE_OWNER, ROLE_JOB):
            kw['password'] = ROLE_PASSWORD  # pg_virtualenv's clusters ask for one over TCP
        cn = psycopg2.connect(**kw)
        if autocommit:
            cn.set_isolation_level(ISOLATION_LEVEL_AUTOCOMMIT)
        return cn

    def connect(self):
        deadline = time.time() + 60
        while True:
            try:
                self.admin = self.conn()
                self.app = self.conn(ROLE_OWNER)
                self.holder = self.conn(ROLE_OWNER, autocommit=False)
                self.bystander = self.conn(ROLE_JOB)
                self.jobs = {'owner': self.conn(ROLE_OWNER), 'job': self.conn(ROLE_JOB),
                             'super': self.conn()}
                for cn in [self.admin, self.app, self.bystander] + list(self.jobs.values()):
                    cn.notices = _Trim()
                # the application's own sessions are not the job (role
                # settings of a case may say otherwise)
                for cn in (self.app, self.holder, self.admin):
                    with cn.cursor() as cur:
                        cur.execute("SET reo_h.job = 'off'; SET statement_timeout = '30s'")
                    if cn is self.holder:
                        cn.commit()
                time.sleep(0.2)
                if not self.alive():
                    raise psycopg2.OperationalError('server went away again')
                return
            except psycopg2.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    def alive(self):
        try:
            with self.bystander.cursor() as cur:
                cur.execute('SELECT 1')
            return True
        except psycopg2.Error:
            return False


class _Trim(list):
    def append(self, x):
        if len(self) < 50:
            list.append(self, x)


def sqlstate_of(e):
    return getattr(e, 'pgcode', None)


def run_case(w, seed, keep=False):
    c = draw_case(seed)
    if c['dst']:
        dst_setup(c)
    s = c['schema']
    res = {'seed': seed, 'checks': {k: 0 for k in INVARIANTS}, 'violations': [], 'crash': False,
           'notes': []}
    model = Model(c)
    role = job_role_name(c)

    def viol(inv, detail):
        res['violations'].append((inv, detail))

    def check(inv, ok, detail):
        res['checks'][inv] += 1
        if not ok:
            viol(inv, detail)

    w.use(c['objects'])
    a = w.admin.cursor()
    a.execute('DROP SCHEMA IF EXISTS %s CASCADE' % s)
    a.execute("SELECT coalesce(max(id), 0) FROM release_expired_orders.runs")
    first_run = a.fetchone()[0] + 1
    a.execute("SELECT coalesce(max(id), 0) FROM release_expired_orders.order_events")
    first_event = a.fetchone()[0] + 1   # (a case run again after a crash sees only its own)
    if c['citext']:
        a.execute("SELECT 1 FROM pg_extension WHERE extname = 'citext'")
        if not a.fetchone():
            c['kinds'] = {k: ('text' if v == 'citext' else v) for k, v in c['kinds'].items()}
    a.execute(build_sql(c, role))
    if c['objects'] != '1.0':
        a.execute('DELETE FROM release_expired_orders.payment_windows')
    if c['windows']:
        a.execute('INSERT INTO release_expired_orders.payment_windows (order_type, payment_method, timeout_minutes) VALUES ' +
                  ', '.join('(%s, %s, %s)' % (q(t), q(m), q(mi)) for t, m, mi in c['windows']))
    settings = {
        'release_expired_orders.app_schema': s,
        'release_expired_orders.lock_timeout': '%dms' % LOCK_TIMEOUT_MS,
        'release_expired_orders.retry_backoff': c['settings']['retry_backoff'],
        'release_expired_orders.chunk_size': str(c['settings']['chunk_size']),
        'release_expired_orders.write_notifications': c['settings']['write_notifications'],
        'release_expired_orders.naive_time_zone': naive_zone(c),
        'reo_h.job': 'on',
        'statement_timeout': '20s',
    }
    # pg_cron's sessions take their settings from the role and the database.
    a.execute('ALTER ROLE %s IN DATABASE %s RESET ALL' % (role, w.dbname()))
    for k, v in settings.items():
        a.execute('ALTER ROLE %s IN DATABASE %s SET %s = %s' % (role, w.dbname(), k, q(v)))
    jc = w.jobs[c['role']]
    jcur = jc.cursor()
    for k, v in settings.items():
        jcur.execute('SET %s = %s' % (k, q(v)))
    jcur.execute('SET search_path = %s, public' % s)
    app = w.app.cursor()
    app.execute('SET search_path = %s, public' % s)

    # -- the steps
    released_total = 0
    call_errors = []
    r = random.Random(seed * 7919 + 1)

    def pending_orders():
        a.execute("SELECT id::text FROM %s.orders WHERE payment_status::text = 'pending' ORDER BY id" % s)
        return [x[0] for x in a.fetchall()]

    def pay(oid, cur):
        cur.execute("UPDATE %s.orders SET payment_status = 'paid', fulfillment_status = 'completed' "
                    "WHERE id = %%s AND payment_status = 'pending' RETURNING id" % s, (oid,))
        return cur.rowcount == 1

    def purchase(cur):
        out = []
        if c['products']:
            p = r.choice(c['products'])['id']
            cur.execute('UPDATE %s.products t SET stock = t.stock - 2 FROM (SELECT id, stock FROM %s.products WHERE id = %%s FOR UPDATE) o '
                        'WHERE t.id = o.id RETURNING coalesce(t.stock, 0) - coalesce(o.stock, 0)' % (s, s), (p,))
            for (d,) in cur.fetchall():
                out.append((p, d))
        if c['rounds']:
            g = r.choice(c['rounds'])['id']
            cur.execute('UPDATE %s.lottery_rounds t SET sold_shares = t.sold_shares + 1 FROM (SELECT id, sold_shares FROM %s.lottery_rounds WHERE id = %%s FOR UPDATE) o '
                        'WHERE t.id = o.id RETURNING coalesce(t.sold_shares, 0) - coalesce(o.sold_shares, 0)' % (s, s), (g,))
            for (d,) in cur.fetchall():
                out.append((g, -d))     # shares: stored as minus what the application moved
        return out

    def note_app(changes):
        for ident, delta in changes:
            model.app_delta[ident] = model.app_delta.get(ident, 0) + delta

    def do_run(mode, batch):
        t0 = time.time()
        try:
            if mode == 'session':
                jcur.execute('CALL release_expired_orders(%d, %d)' % (timeout_of(c), batch))
            else:
                fc = w.conn(role)
                fc.notices = _Trim()
                try:
                    with fc.cursor() as fcur:
                        fcur.execute('CALL public.release_expired_orders(%d, %d)' % (timeout_of(c), batch))
                finally:
                    fc.close()
        except psycopg2.Error as e:
            if not w.alive():
                raise Crash(str(e))
            if sqlstate_of(e) == '57014' and 'statement timeout' in str(e):
                viol('no_hang', 'CALL hit statement_timeout (20s)')
            call_errors.append((sqlstate_of(e), str(e).strip().split('\n')[0]))
            if jc.status != psycopg2.extensions.STATUS_READY:
                jc.rollback()
        res['checks']['no_hang'] += 1
        if time.time() - t0 > 15:
            viol('no_hang', 'a CALL took %.1fs' % (time.time() - t0))

    has_side = any(t['does'] in ('side_stock', 'sleep') for t in c['triggers'])
    grown = 0
    for step in c['steps']:
        if step[0] == 'pay':
            pend = pending_orders()
            for oid in r.sample(pend, min(step[1], len(pend))):
                if pay(oid, app):
                    model.paid.add(oid)
        elif step[0] == 'purchase':
            note_app(purchase(app))
        elif step[0] == 'grow':
            # paid orders (status still 'pending'), created long ago: none
            # is due, and the model's orders are unchanged
            a.execute("INSERT INTO %s.orders (id, order_number, user_id, product_id, round_id, type, payment_method, "
                      "quantity, status, payment_status, fulfillment_status, created_at, updated_at, notes, grp) "
                      "SELECT gen_random_uuid(), 'G%d-%d-' || g, gen_random_uuid(), %s, %s, 'direct_buy', 'wallet', 1, "
                      "'pending', 'paid', 'completed', %s, now(), '', %d + g FROM generate_series(1, %d) g" % (
                          s, c['seed'], grown, q(c['products'][0]['id']), q(c['missing_round']),
                          ts_expr(c, 'o.created_at', 3 * TIMEOUT_MIN), 100000 + 10000 * grown, step[1]))
            grown += 1
        elif step[0] == 'restore':
            a.execute("SELECT DISTINCT order_id::text FROM release_expired_orders.order_events e JOIN %s.orders o ON o.id = e.order_id "
                      "WHERE e.outcome = 'released' AND o.status::text = 'expired' ORDER BY 1" % s)
            rel = [x[0] for x in a.fetchall()]
            if rel:
                oid = r.choice(rel)
                rc = w.conn()
                try:
                    rc.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_READ_COMMITTED)
                    with rc.cursor() as rcur:
                        rcur.execute('SET search_path = %s, public' % s)
                        rcur.execute("SET release_expired_orders.app_schema = %s" % q(s))
                        rcur.execute('SELECT * FROM release_expired_orders.restore_order(%s)', (oid,))
                        rcur.execute("UPDATE %s.orders SET payment_status = 'paid', fulfillment_status = 'completed' "
                                     "WHERE id = %%s AND payment_status = 'pending'" % s, (oid,))
                        ok = rcur.rowcount == 1
                    rc.commit()
                    if ok:
                        model.paid.add(oid)
                        res['notes'].append('restored %s' % oid)
                except psycopg2.Error as e:
                    rc.rollback()
                    res['notes'].append('restore refused: %s' % str(e).split('\n')[0])
                finally:
                    rc.close()
        elif step[0] == 'run':
            mode, conc = step[1], step[2]
            h = w.holder.cursor()
            held = []
            try:
                if conc == 'hold_pay':
                    pend = pending_orders()
                    if pend:
                        oid = r.choice(pend)
                        if pay(oid, h):
                            held.append(('pay', oid))
                elif conc == 'hold_product' and not has_side:
                    held.append(('purchase', purchase(h)))
                elif conc == 'hold_orders':
                    h.execute("SELECT id::text FROM %s.orders WHERE status::text = 'pending' ORDER BY created_at NULLS LAST LIMIT 2 FOR UPDATE" % s)
                    held.append(('hold', {x[0] for x in h.fetchall()}))
                nerr = len(call_errors)
                do_run(mode, c['batch_limit'])
                if conc in ('hold_orders', 'hold_pay') and len(call_errors) == nerr and not model.refused:
                    # orders a payment holds never keep the others from being released
                    heldset = set()
                    for kind, x in held:
                        heldset |= x if kind == 'hold' else {x}
                    a.execute("SELECT id::text, status::text FROM %s.orders" % s)
                    now_st = dict(a.fetchall())
                    free = [o for o in c['orders'] if model.fate[o['id']] == 'release'
                            and o['id'] not in heldset and o['id'] not in model.paid]
                    # an order that may be released ('maybe') can take the batch's place
                    contenders = [o for o in c['orders'] if model.fate[o['id']] in ('release', 'maybe')
                                  and o['id'] not in heldset and o['id'] not in model.paid]
                    if free and len(contenders) <= c['batch_limit']:
                        for o in free:
                            check('held_not_blocking', now_st.get(o['id']) == 'expired',
                                  'order %s is due and free, but a run while %d other order(s) were held left it %s' % (
                                      o['id'][-4:], len(heldset), now_st.get(o['id'])))
                if conc == 'purchase_during':
                    note_app(purchase(app))
            finally:
                w.holder.commit()
            for kind, x in held:
                if kind == 'pay':
                    model.paid.add(x)
                elif kind == 'purchase':
                    note_app(x)
    # The final runs: the bound within which every order the application
    # lets go must be released (failed orders are retried without backoff).
    for i in range(2):
        do_run('session', 1000)

    # -- the checks
    if not w.alive():
        raise Crash('bystander lost')
    res['checks']['no_crash'] += 1
    a.execute('SELECT id::text, status::text, payment_status::text, fulfillment_status::text FROM %s.orders' % s)
    db_orders = {x[0]: x[1:] for x in a.fetchall()}
    oid_list = [o['id'] for o in c['orders']]
    a.execute("SELECT order_id::text, outcome, coalesce(stock_delta, 0), coalesce(shares_delta, 0), "
              "product_id::text, round_id::text, sqlstate, run_id FROM release_expired_orders.order_events "
              "WHERE order_id = ANY (%s::uuid[]) AND id >= %s ORDER BY id", (oid_list, first_event))
    events = a.fetchall()
    a.execute("SELECT id, outcome, error, found, released, failed FROM release_expired_orders.runs "
              "WHERE id >= %s ORDER BY id", (first_run,))
    runs = a.fetchall()
    a.execute("SELECT id::text, stock FROM %s.products" % s)
    stock_now = dict(a.fetchall())
    a.execute("SELECT id::text, sold_shares FROM %s.lottery_rounds" % s)
    sold_now = dict(a.fetchall())
    a.execute("SELECT kind, id::text, delta, who, super FROM %s.hlog" % s)
    hlog = a.fetchall()

    ev_by = {}
    for e in events:
        ev_by.setdefault(e[0], []).append(e)
    by_o = {o['id']: o for o in c['orders']}

    # Counters: Δ = Σ audit + the application's own changes.
    for p in c['products']:
        pid = p['id']
        audit = sum(e[2] for e in events if e[4] == pid)
        own = model.app_delta.get(pid, 0) + sum(x[2] for x in hlog if x[0] == 'stock' and x[1] == pid)
        before = p['stock'] if p['stock'] is not None else 0
        now = stock_now.get(pid)
        now = now if now is not None else 0
        check('counters_match_audit', now - before == audit + own,
              'product %s: stock %s -> %s, audit %+d, application %+d' % (pid[-4:], p['stock'], stock_now.get(pid), audit, own))
        if not model.counter_trigger_changes('products', pid):
            # the model: each release gives back what the locked pre-update row reserved
            exp = 0
            for oid, evs in ev_by.items():
                o = by_o[oid]
                n_rel = sum(1 for e in evs if e[1] == 'released')
                n_res = sum(1 for e in evs if e[1] == 'restored')
                if o['product_id'] == pid and o['quantity'] is not None and o['quantity'] > 0:
                    exp += o['quantity'] * n_rel
                exp += sum(e[2] for e in evs if e[1] == 'restored' and e[4] == pid)
                _ = n_res
            check('counters_match_model', now - before == exp + own,
                  'product %s: stock %s -> %s, expected %+d from released orders' % (pid[-4:], p['stock'], stock_now.get(pid), exp + own))
    for g in c['rounds']:
        gid = g['id']
        audit = sum(e[3] for e in events if e[5] == gid)
        own = model.app_delta.get(gid, 0)
        before = g['sold'] if g['sold'] is not None else 0
        now = sold_now.get(gid)
        now = now if now is not None else 0
        # shares_delta is negative when shares go back; a purchase is -(-1)
        check('counters_match_audit', now - before == audit - own,
              'round %s: sold_shares %s -> %s, audit %+d, application %+d' % (gid[-4:], g['sold'], sold_now.get(gid), audit, -own))
        if not model.counter_trigger_changes('lottery_rounds', gid) and (g['sold'] or 0) > 50 + 3 * 3 + 10:
            exp = 0
            for oid, evs in ev_by.items():
                o = by_o[oid]
                n_rel = sum(1 for e in evs if e[1] == 'released')
                if o['round_id'] == gid and o['quantity'] is not None and 0 < o['quantity'] < 100:
                    exp -= o['quantity'] * n_rel
                elif o['round_id'] == gid and o['quantity'] is not None and o['quantity'] >= 100 and n_rel:
                    exp = None
                    break
                exp += sum(e[3] for e in evs if e[1] == 'restored' and e[5] == gid)
            if exp is not None:
                check('counters_match_model', now - before == exp - own,
                      'round %s: sold_shares %s -> %s, expected %+d from released orders' % (gid[-4:], g['sold'], sold_now.get(gid), exp - own))

    # Orders.
    failed_runs = [x for x in runs if x[1] == 'failed'] + call_errors
    for o in c['orders']:
        oid = o['id']
        evs = ev_by.get(oid, [])
        n_rel = sum(1 for e in evs if e[1] == 'released')
        n_res = sum(1 for e in evs if e[1] == 'restored')
        st = db_orders.get(oid)
        expired = st == ('expired', 'cancelled', 'cancelled')
        tag = 'order %s (%s)' % (oid[-4:], o['order_number'] and o['order_number'].encode('unicode_escape').decode())
        check('released_once', n_rel <= 1 + n_res, '%s released %d times (restored %d)' % (tag, n_rel, n_res))
        if n_rel > n_res:
            check('released_is_expired', expired, '%s audited released but is %s' % (tag, st))
        paid = oid in model.paid or o['statuses'][1] == 'paid'
        check('no_paid_expired', not (paid and st and st[0] == 'expired' and oid not in _restored(res)),
              '%s was paid but is %s' % (tag, st))
        fate = model.fate[oid]
        if fate == 'stay':
            check('no_undue_released', n_rel == 0 and not (expired and o['statuses'][0] != 'expired'),
                  '%s is not due (age %s, window %s) or not pending but was released' % (tag, o['age'], window_of(c, o)[1]))
            continue
        if fate == 'veto':
            check('vetoed_not_released', n_rel == 0 and not expired, '%s: the application vetoes its release, but it is %s (%d released rows)' % (tag, st, n_rel))
        if paid or oid in model.paid:
            continue
        reasons = [e for e in evs if e[1] in ('failed', 'vetoed')]
        if fate == 'release' and not model.refused and not failed_runs:
            check('due_released', expired and n_rel >= 1,
                  '%s is due and the application lets it go, but it is %s after the final runs (reasons: %s)' % (
                      tag, st, ', '.join('%s %s' % (e[1], e[6]) for e in reasons) or 'none'))
        elif not expired:
            explained = bool(reasons) or model.refused or (failed_runs and _lenient(c)) \
                or c['settings']['retry_backoff'] != '0' and bool(reasons)
            check('unreleased_explained', explained or bool(failed_runs),
                  '%s (fate %s) is due and pending with no audit reason' % (tag, fate))
    # Runs: none ends for everyone unless every order in it fails.
    all_fail = all(model.fate[o['id']] in ('fail', 'veto', 'stay', 'maybe') for o in c['orders']) \
        or all(model.fate[o['id']] == 'stay' or o['id'] in model.paid for o in c['orders'])
    for rid, outcome, error, found, rel, fail in runs:
        ok = outcome != 'failed' or model.refused or all_fail or _lenient(c)
        check('run_not_failed', ok, 'run %d failed: %s' % (rid, (error or '').split('\n')[0]))
    for code, msg in call_errors:
        ok = model.refused or all_fail or _lenient(c)
        check('run_not_failed', ok, 'CALL failed: %s %s' % (code, msg))
    check('run_not_failed', not any(x[1] == 'running' for x in runs), 'a run is still "running" after its CALL returned')
    if model.refused:
        for rid, outcome, error, *_ in runs:
            if outcome != 'failed':
                res['notes'].append('RLS applies to the job role but run %d is %s' % (rid, outcome))
    # Application code never runs as a superuser when the tables' owner is not one.
    for kind, ident, delta, who, sup in hlog:
        if kind == 'priv':
            check('trigger_privilege', not sup, 'application trigger ran as superuser %s (tables owned by %s, job run by %s)' % (who, ROLE_OWNER, role))
    # Functions and views that read the application's tables (1.0's are its
    # own SQL, as released).
    for sql in ([] if c['objects'] == '1.0' else [
                'SELECT count(*) FROM release_expired_orders.preview(%d, 1000)' % timeout_of(c),
                'SELECT count(*) FROM release_expired_orders.metrics',
                'SELECT count(*) FROM release_expired_orders.health()',
                'SELECT release_expired_orders.oldest_deadline()::text']):
        try:
            with w.jobs['super'].cursor() as cur:
                cur.execute('SET release_expired_orders.app_schema = %s' % q(s))
                cur.execute(sql)
                cur.fetchall()
            res['checks']['functions_work'] += 1
        except psycopg2.Error as e:
            if not w.alive():
                raise Crash('function crashed: ' + sql)
            if c.get('ci_type') and sqlstate_of(e) == '0A000' and 'nondeterministic collation' in str(e):
                res['checks']['functions_work'] += 1     # refused, as it must be
                continue
            check('functions_work', False, '%s: %s %s' % (sql.split(' FROM ')[-1], sqlstate_of(e), str(e).split('\n')[0]))
    res['call_errors'] = call_errors
    if c['objects'] != '1.0':
        a.execute('DELETE FROM release_expired_orders.payment_windows')
    if not keep and not res['violations']:
        a.execute('DROP SCHEMA %s CASCADE' % s)
    return res


def _restored(res):
    return {n.split()[1] for n in res['notes'] if n.startswith('restored ')}


def _lenient(c):
    return any(t['does'] in ('raise', 'raise_all') and t['code'][:2] in LENIENT_CLASSES for t in c['triggers'])


# ---------------------------------------------------------------- driver

def setup(dbs):
    global ROLE_SUPER
    cn = psycopg2.connect(dbname='postgres')
    cn.set_isolation_level(ISOLATION_LEVEL_AUTOCOMMIT)
    cur = cn.cursor()
    cur.execute('SELECT current_user')
    ROLE_SUPER = cur.fetchone()[0]
    for r in (ROLE_OWNER, ROLE_JOB):
        cur.execute('SELECT 1 FROM pg_roles WHERE rolname = %s', (r,))
        if not cur.fetchone():
            cur.execute('CREATE ROLE %s LOGIN' % r)
        cur.execute("ALTER ROLE %s PASSWORD %s" % (r, q(ROLE_PASSWORD)))
    for db, version in [(x, v) for x in dbs for v in ('current', '1.0')]:
        if version == '1.0':
            db += '_v10'
        cur.execute('DROP DATABASE IF EXISTS %s' % db)
        cur.execute('CREATE DATABASE %s' % db)
        d = psycopg2.connect(dbname=db)
        d.set_isolation_level(ISOLATION_LEVEL_AUTOCOMMIT)
        dc = d.cursor()
        dc.execute('SET client_min_messages = error')
        try:
            dc.execute('CREATE EXTENSION citext')
        except psycopg2.Error:
            pass
        dc.execute('CREATE EXTENSION release_expired_orders' +
                   (" VERSION '1.0'" if version == '1.0' else ''))
        for r in (ROLE_OWNER, ROLE_JOB):
            dc.execute('''GRANT EXECUTE ON PROCEDURE public.release_expired_orders(integer, integer, jsonb) TO %(r)s;
GRANT USAGE ON SCHEMA release_expired_orders TO %(r)s;
GRANT SELECT, INSERT, UPDATE ON release_expired_orders.runs TO %(r)s;
GRANT SELECT, INSERT ON release_expired_orders.order_events TO %(r)s;
GRANT EXECUTE ON FUNCTION release_expired_orders.purge_history(interval) TO %(r)s;''' % {'r': r})
        d.close()
    cn.close()


def worker_main(idx, db, seeds, queue, keep, super_role, lockfile):
    global ROLE_SUPER
    ROLE_SUPER = super_role
    w = Worker(idx, db)
    lk = open(lockfile, 'a')
    # the cases on 1.0's objects last: one change of database
    seeds = sorted(seeds, key=lambda sd: draw_case(sd)['objects'] == '1.0')
    for seed in seeds:
        res = None
        for attempt in range(3):
            # A case runs under a shared lock; its second attempt after a crash
            # runs alone (exclusive), so that a crash is blamed on its seed.
            fcntl.flock(lk, fcntl.LOCK_EX if attempt else fcntl.LOCK_SH)
            try:
                if not w.alive():
                    w.connect()     # a neighbour's crash while this one waited
                res = run_case(w, seed, keep)
                if attempt:
                    res['notes'].append('crash during the first attempt was collateral')
                break
            except (Crash, psycopg2.OperationalError, psycopg2.InterfaceError) as e:
                res = {'seed': seed, 'checks': {k: 0 for k in INVARIANTS}, 'violations': [
                    ('no_crash', 'server crashed or connection lost: %s' % str(e).strip().split('\n')[0])],
                    'crash': True, 'notes': []}
                res['checks']['no_crash'] = 1
                time.sleep(1.0)
                w.connect()
            except Exception as e:
                if isinstance(e, psycopg2.Error) and not w.alive():
                    res = {'seed': seed, 'checks': {k: 0 for k in INVARIANTS}, 'violations': [
                        ('no_crash', 'server crashed or connection lost: %s' % str(e).strip().split('\n')[0])],
                        'crash': True, 'notes': []}
                    res['checks']['no_crash'] = 1
                    time.sleep(1.0)
                    w.connect()
                    continue
                res = {'seed': seed, 'checks': {k: 0 for k in INVARIANTS}, 'violations': [
                    ('harness', 'harness error: %s' % traceback.format_exc().strip().split('\n')[-1])],
                    'trace': traceback.format_exc(),
                    'crash': False, 'notes': []}
                try:
                    w.connect()
                except Exception:
                    pass
                break
            finally:
                fcntl.flock(lk, fcntl.LOCK_UN)
        queue.put(res)
    queue.put(None)


def describe(c):
    out = ['seed %d: schema %s, job role %s, batch_limit %d, settings %s' % (
        c['seed'], c['schema'], c['role'], c['batch_limit'], c['settings'])]
    out.append('  column kinds: ' + ', '.join('%s=%s' % kv for kv in sorted(c['kinds'].items())))
    out.append('  nullable: ' + ', '.join(k for k, v in sorted(c['nullable'].items()) if v))
    for t in c['triggers']:
        out.append('  trigger %d: %s %s %s on %s, %s (pred %s%s, code %s%s)' % (
            t['k'], t['timing'], t['level'], t['does'], t['table'], '', t['pred'],
            '' if t['pred'] == 'all' else ' ' + t['digits'], t['code'],
            ', value %s' % t['value'] if 'value' in t else ''))
    out.append('  rls: %s; deferred: %s (%s); priv probe: %s; windows: %s; objects: %s' % (
        {k: v for k, v in c['rls'].items() if v[0]}, c['deferred'], c['deferred_digits'], c['priv_probe'], c['windows'],
        c['objects']))
    out.append('  steps: %s' % (c['steps'],))
    m = Model(c)
    for o in c['orders']:
        out.append('  order %s #%s prod=%s round=%s qty=%s st=%s age=%s type=%s/%s -> %s' % (
            o['id'][-4:], o['order_number'] and o['order_number'].encode('unicode_escape').decode(),
            _short(c, o['product_id']), _short(c, o['round_id']), o['quantity'], '/'.join(str(x) for x in o['statuses']),
            o['age'], o['type'], o['payment_method'], m.fate[o['id']]))
    return '\n'.join(out)


def _short(c, ident):
    if ident is None:
        return 'NULL'
    if ident in (c['missing_product'], c['missing_round']):
        return 'missing'
    return ident[-4:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, default=100)
    ap.add_argument('--start', type=int, default=1)
    ap.add_argument('--seed', type=int, help='one seed, verbose, schema kept')
    ap.add_argument('--ci', action='store_true', help='the fixed CI range: seeds 1..520')
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--keep', action='store_true')
    ap.add_argument('--server-log', help='server log to search for crashes')
    ap.add_argument('--db-prefix', default='reo_hostile')
    args = ap.parse_args()
    if args.ci:
        args.start, args.seeds = 1, 520
    if args.seed is not None:
        args.start, args.seeds, args.jobs, args.keep = args.seed, 1, 1, True
        print(describe(draw_case(args.seed)))
    seeds = list(range(args.start, args.start + args.seeds))
    dbs = ['%s_%d' % (args.db_prefix, i) for i in range(args.jobs)]
    log_offset = os.path.getsize(args.server_log) if args.server_log and os.path.exists(args.server_log) else 0
    setup(dbs)
    t0 = time.time()
    lockfile = os.path.join(os.environ.get('TMPDIR', '/tmp'), '%s.%d.lock' % (args.db_prefix, os.getpid()))
    queue = multiprocessing.Queue()
    procs = []
    for i, db in enumerate(dbs):
        p = multiprocessing.Process(target=worker_main, args=(i, db, seeds[i::args.jobs], queue, args.keep, ROLE_SUPER, lockfile))
        p.start()
        procs.append(p)
    done, results = 0, []
    while done < len(procs):
        res = queue.get()
        if res is None:
            done += 1
            continue
        results.append(res)
        for inv, detail in res['violations']:
            print('VIOLATION seed %d [%s] %s\n  reproduce: test/hostile/run.sh --seed %d' % (
                res['seed'], inv, detail, res['seed']), flush=True)
        if args.seed is not None:
            for n in res['notes']:
                print('  note: ' + n)
            for e in res.get('call_errors', []):
                print('  CALL error: %s %s' % e)
    for p in procs:
        p.join()
    try:
        os.unlink(lockfile)
    except OSError:
        pass
    elapsed = time.time() - t0
    signals = 0
    if args.server_log and os.path.exists(args.server_log):
        with open(args.server_log, 'rb') as f:
            f.seek(log_offset)
            signals = len(re.findall(rb'terminated by signal', f.read()))
    # the table
    for r in results:
        r['checks'].setdefault('harness', sum(1 for v in r['violations'] if v[0] == 'harness'))
        if args.seed is not None and 'trace' in r:
            print(r['trace'])
    checks = {k: sum(r['checks'][k] for r in results) for k in INVARIANTS + ['harness']
              if k != 'harness' or any(v[0] == 'harness' for r in results for v in r['violations'])}
    viols = {}
    for r in results:
        for inv, _ in r['violations']:
            viols[inv] = viols.get(inv, 0) + 1
    failed_cases = sorted(r['seed'] for r in results if r['violations'])
    crashes = sum(1 for r in results if r['crash'])
    print()
    print('%-24s %10s %10s %8s' % ('invariant', 'checks', 'violations', 'seeds'))
    for k in checks:
        seeds_k = sorted({r['seed'] for r in results for v in r['violations'] if v[0] == k})
        print('%-24s %10d %10d %8d%s' % (k, checks[k], viols.get(k, 0), len(seeds_k),
                                         ('  e.g. ' + ' '.join(map(str, seeds_k[:6]))) if seeds_k else ''))
    print('%-24s %10d' % ('combinations', len(results)))
    print('%-24s %10d' % ('invariant checks', sum(checks.values())))
    print('%-24s %10d' % ('violations', sum(viols.values())))
    print('%-24s %10d' % ('crashes', crashes))
    if args.server_log:
        print('%-24s %10d' % ('"terminated by signal"', signals))
    print('%-24s %10.1f s' % ('elapsed', elapsed))
    if failed_cases:
        print('failing seeds: ' + ' '.join(map(str, failed_cases[:200])))
    print('%d passed, %d failed' % (len(results) - len(failed_cases), len(failed_cases)))
    sys.exit(1 if failed_cases or signals else 0)


if __name__ == '__main__':
    main()

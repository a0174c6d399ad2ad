"""Drives a PostgreSQL server with psycopg 3 (autocommit, so it sends nothing but the statements
below): simple queries (one with several statements), an error, server-side binding (the
extended protocol), a prepared statement run twice, a pipeline, binary results. Prints what the
client saw, one JSON object per statement it ran, in order:
{"query": text as sent, "status": "OK"|"Error", "rows": [[...]] or null, "rowcount": n,
 "columns": [...], "code", "severity", "message" (errors), "protocol": "simple"|"extended"}."""
import json
import sys
import time
from decimal import Decimal

import psycopg

host, port = sys.argv[1], int(sys.argv[2])


def out(**kw):
    print(json.dumps(kw), flush=True)


def text(v):
    """A value as the server writes it in text format."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "t" if v else "f"
    return str(v)


def report(cur, query, protocol):
    rows = cur.fetchall() if cur.description else None
    out(
        query=query,
        status="OK",
        protocol=protocol,
        command=cur.statusmessage,
        rowcount=cur.rowcount,
        columns=[d.name for d in cur.description] if cur.description else [],
        rows=[[text(v) for v in r] for r in rows] if rows is not None else None,
    )


def failed(e, query, protocol):
    out(
        query=query,
        status="Error",
        protocol=protocol,
        code=e.sqlstate,
        severity=e.diag.severity,
        message=e.diag.message_primary,
    )


conninfo = f"host={host} port={port} user=postgres dbname=postgres application_name=pbtest"
deadline = time.time() + 20
while True:
    try:
        conn = psycopg.connect(conninfo, autocommit=True)
        break
    except psycopg.OperationalError:
        if time.time() > deadline:
            raise
        time.sleep(0.2)

cur = conn.cursor()

# Simple query protocol (no parameters).
for q in [
    "DROP TABLE IF EXISTS items",
    "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), added date)",
]:
    cur.execute(q)
    report(cur, q, "simple")

# Several statements in one Query: one result each (nextset), one ';' inside a literal.
multi = [
    "INSERT INTO items VALUES (1, 'pen', 1.50, '2024-01-31')",
    "INSERT INTO items VALUES (2, 'ink; blue', 2.25, NULL)",
    "UPDATE items SET price = 3.00 WHERE id = 2",
]
cur.execute("; ".join(multi))
for q in multi:
    report(cur, q, "simple")
    cur.nextset()

q = "SELECT id, name, price FROM items ORDER BY id"
cur.execute(q)
report(cur, q, "simple")

q = "SELECT * FROM no_such_table"
try:
    cur.execute(q)
except psycopg.Error as e:
    failed(e, q, "simple")

# Server-side binding: Parse/Bind/Describe/Execute/Sync.
cur.execute("SELECT name, added FROM items WHERE id = %s", (1,))
report(cur, "SELECT name, added FROM items WHERE id = $1", "extended")
cur.execute("UPDATE items SET name = %s WHERE id = %s", ("pencil", 1))
report(cur, "UPDATE items SET name = $1 WHERE id = $2", "extended")
try:
    cur.execute("SELECT 1 / %s", (0,))
except psycopg.Error as e:
    failed(e, "SELECT 1 / $1", "extended")

# A prepared statement: prepared once (Parse with a name, Sync), then run twice by Bind alone.
for i in (1, 2):
    cur.execute("SELECT price FROM items WHERE id = %s", (i,), prepare=True)
    report(cur, "SELECT price FROM items WHERE id = $1", "extended")

# Binary results.
bcur = conn.cursor(binary=True)
bcur.execute("SELECT id, name, price, added FROM items WHERE id = %s", (1,))
report(bcur, "SELECT id, name, price, added FROM items WHERE id = $1", "extended")

# A pipeline: three batches without waiting, one Sync.
with conn.pipeline():
    pcurs = []
    for i in (10, 20, 30):
        c = conn.cursor()
        c.execute("SELECT %s::int AS n", (i,))
        pcurs.append(c)
for c in pcurs:
    report(c, "SELECT $1::int AS n", "extended")

conn.close()

#!/usr/bin/env python3
"""Drives a MySQL/MariaDB server with mysql-connector-python (pure-Python protocol, text and
binary/prepared) and prints one JSON line per statement with what the client saw: the query
text, the column names and rows returned, affected rows, the insert id, or the error.

    client.py HOST PORT
"""
import json
import sys

import mysql.connector

host, port = sys.argv[1], int(sys.argv[2])
conn = mysql.connector.connect(host=host, port=port, user="root", use_pure=True, autocommit=True)


def report(kind, query, cur=None, error=None, params=None, rows=None):
    out = {"kind": kind, "query": query}
    if params is not None:
        out["params"] = [str(p) for p in params]
    if error is not None:
        out.update(errno=error.errno, sqlstate=error.sqlstate, msg=error.msg)
    elif cur is not None:
        out["rowcount"] = cur.rowcount
        out["lastrowid"] = cur.lastrowid
        if cur.description:
            out["fields"] = [d[0] for d in cur.description]
            out["rows"] = [[None if v is None else str(v) for v in r] for r in rows]
    print(json.dumps(out), flush=True)


def text(query):
    cur = conn.cursor()
    try:
        cur.execute(query)
    except mysql.connector.Error as e:
        report("text", query, error=e)
        return
    rows = cur.fetchall() if cur.description else None
    report("text", query, cur, rows=rows)
    cur.close()


def prepared(query, params):
    cur = conn.cursor(prepared=True)
    cur.execute(query, params)
    rows = cur.fetchall() if cur.description else None
    report("prepared", query, cur, params=params, rows=rows)
    # Closing sends COM_STMT_CLOSE.
    cur.close()


text("CREATE DATABASE pbtest")
# COM_INIT_DB: not a reported command.
conn.database = "pbtest"
text("CREATE TABLE pbtest.items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64), qty INT NULL)")
text("INSERT INTO pbtest.items (name, qty) VALUES ('apple', 3), ('pear', NULL), ('plum, red', 7)")
text("SELECT id, name, qty FROM pbtest.items ORDER BY id")
text("UPDATE pbtest.items SET qty = qty + 1 WHERE qty IS NOT NULL")
text("SELECT * FROM pbtest.nope")
text("SELECT seq FROM seq_1_to_50")
text("SELECT REPEAT('x', 2000) AS wide")
prepared("SELECT name, qty FROM pbtest.items WHERE id > ? AND name <> ?", (1, "pear"))
prepared("INSERT INTO pbtest.items (name, qty) VALUES (?, ?)", ("fig", -12))
text("DROP DATABASE pbtest")
conn.close()

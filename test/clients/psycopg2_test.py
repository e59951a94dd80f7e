"""test/clients/psycopg2_test.py -- licdata through psycopg2 (libpq), run by
psycopg2_test.sh against a cluster loaded with test/clients/fixture.sql.

The licensee bank_a connects with the purpose and consent reference as startup
options and reads pd.people through a named (server-side) cursor, a named
cursor closed early, COPY (query) TO STDOUT and COPY table (columns) TO STDOUT
with copy_expert, and a plain query; each statement carries a tag in a
comment.  The operator then runs licdata.flush() and compares, tag by tag, the
rows the client received with the rows of licdata.usage (one usage row per
statement).  Refusals arrive as psycopg2 errors with the LD SQLSTATE.

usage: psycopg2_test.py HOST PORT DBNAME LICENSEE OPERATOR
"""
import io
import sys

import psycopg2

host, port, dbname, licensee, operator = sys.argv[1:6]
failures = []


def check(cond, what):
    print(("ok: " if cond else "NOT OK: ") + what)
    if not cond:
        failures.append(what)


lic = psycopg2.connect(host=host, port=port, dbname=dbname, user=licensee,
                       options="-c licdata.purpose=credit_assessment -c licdata.consent_ref=PY-1")
op = psycopg2.connect(host=host, port=port, dbname=dbname, user=operator)
op.autocommit = True
received = {}

# 1. a named cursor, read to the end in batches of itersize
with lic.cursor(name="people_all") as cur:
    cur.itersize = 1000
    cur.execute("SELECT /* py:named */ person_id, id_number, name FROM pd.people")
    n = 0
    sample = None
    for row in cur:
        n += 1
        if sample is None:
            sample = row
received["py:named"] = n
lic.commit()
check(n == 37500, "named cursor: 37500 licensed rows received (got %d)" % n)
check(sample is not None and len(sample[1]) == 16 and not sample[1].startswith("1101"),
      "named cursor: id_number arrives pseudonymised (%r)" % (sample[1] if sample else None,))

# 2. a named cursor closed after two fetchmany(250)
cur = lic.cursor(name="people_part")
cur.execute("SELECT /* py:partial */ person_id, name FROM pd.people ORDER BY person_id")
got = len(cur.fetchmany(250)) + len(cur.fetchmany(250))
cur.close()
lic.commit()
received["py:partial"] = got
check(got == 500, "named cursor closed early: 500 rows received (got %d)" % got)

# 3. COPY (query) TO STDOUT
buf = io.StringIO()
with lic.cursor() as cur:
    cur.copy_expert("COPY (SELECT /* py:copyq */ person_id, name FROM pd.people WHERE region = 'bj') "
                    "TO STDOUT", buf)
lines = buf.getvalue().splitlines()
lic.commit()
received["py:copyq"] = len(lines)
check(len(lines) == 12500, "copy_expert COPY (query) TO STDOUT: 12500 lines (got %d)" % len(lines))

# 4. COPY table (columns) TO STDOUT -- served as COPY (SELECT cols FROM table)
buf = io.StringIO()
with lic.cursor() as cur:
    cur.copy_expert("COPY pd.people (person_id, region) TO STDOUT /* py:copyt */", buf)
lines = buf.getvalue().splitlines()
lic.commit()
received["py:copyt"] = len(lines)
check(len(lines) == 37500 and not any(l.endswith("\txj") for l in lines),
      "copy_expert COPY table (cols) TO STDOUT: 37500 lines, no row outside the licence (got %d)" % len(lines))

# 5. a plain query
with lic.cursor() as cur:
    cur.execute("SELECT /* py:plain */ person_id, birth FROM pd.people WHERE person_id <= 100")
    rows = cur.fetchall()
lic.commit()
received["py:plain"] = len(rows)
check(len(rows) == 75 and all(r[1].day == 1 for r in rows),
      "plain query: 75 rows, birth truncated to the month (got %d)" % len(rows))

# 6. refusals carry the LD SQLSTATEs
for sql, code in (("SELECT salary FROM pd.people LIMIT 1", "LD003"),
                  ("COPY pd.people TO STDOUT", "LD003"),
                  ("SELECT * FROM pd.tax_records", "LD005"),
                  ("SELECT * FROM pd.accounts", "LD006")):
    try:
        with lic.cursor() as cur:
            if sql.startswith("COPY"):
                cur.copy_expert(sql, io.StringIO())
            else:
                cur.execute(sql)
                cur.fetchall()
        got_code = None
    except psycopg2.Error as e:
        got_code = e.pgcode
    lic.rollback()
    check(got_code == code, "%s -> %s (got %s)" % (sql, code, got_code))
lic.close()

# 7. the usage rows agree with what the client received
with op.cursor() as cur:
    cur.execute("SELECT licdata.flush()")
    for tag, n in sorted(received.items()):
        cur.execute("SELECT count(*), coalesce(sum(rows), 0), array_agg(DISTINCT outcome), "
                    "array_agg(DISTINCT consent_ref) FROM licdata.usage "
                    "WHERE licensee = %s::regrole AND statement LIKE %s",
                    (licensee, "%" + tag + "%"))
        stmts, rows, outcomes, refs = cur.fetchone()
        check(stmts == 1 and rows == n and outcomes == ["ok"] and refs == ["PY-1"],
              "%s: one usage row, rows %d = %d received, outcome ok, consent PY-1 "
              "(usage rows %d, outcomes %s, refs %s)" % (tag, rows, n, stmts, outcomes, refs))
op.close()

if failures:
    print("psycopg2_test: %d failure(s)" % len(failures))
    sys.exit(1)
print("psycopg2_test: all checks passed")

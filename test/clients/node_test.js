// test/clients/node_test.js -- licdata through node-postgres (npm: pg, pg-cursor,
// pg-query-stream), run by node_test.sh against a cluster loaded with
// test/clients/fixture.sql.
//
// The licensee bank_a connects with purpose and consent reference in the
// startup options and reads pd.people by a plain query, a named prepared
// statement executed several times (extended protocol), pg-cursor (read in
// batches, and closed early) and pg-query-stream; every statement carries a
// tag in a comment.  The operator then runs licdata.flush() and compares, tag
// by tag, the rows the client received with licdata.usage.  Refusals arrive
// with err.code set to the LD SQLSTATE.
//
// usage: node node_test.js SOCKETDIR PORT DBNAME LICENSEE OPERATOR  (NODE_PATH: the modules)
'use strict';
const { Client } = require('pg');
const Cursor = require('pg-cursor');
const QueryStream = require('pg-query-stream');

const [host, port, database, licensee, operator] = process.argv.slice(2);
const failures = [];
function check(cond, what) {
  console.log((cond ? 'ok: ' : 'NOT OK: ') + what);
  if (!cond) failures.push(what);
}
function readCursor(cursor, n) {
  return new Promise((resolve, reject) => cursor.read(n, (err, rows) => (err ? reject(err) : resolve(rows))));
}
function closeCursor(cursor) {
  return new Promise((resolve, reject) => cursor.close((err) => (err ? reject(err) : resolve())));
}

async function main() {
  const lic = new Client({ host, port, database, user: licensee,
    options: '-c licdata.purpose=credit_assessment -c licdata.consent_ref=NODE-1' });
  const op = new Client({ host, port, database, user: operator });
  await lic.connect();
  await op.connect();
  const received = {};   // tag -> [statements, rows]

  // 1. a plain query (simple protocol)
  let r = await lic.query("SELECT /* node:plain */ person_id, name, birth FROM pd.people WHERE person_id <= 100");
  received['node:plain'] = [1, r.rows.length];
  check(r.rows.length === 75 && r.rows.every((x) => x.name.endsWith('*')),
    `plain query: 75 rows, names masked (got ${r.rows.length})`);

  // 2. a named prepared statement, executed 8 times with parameters
  let found = 0;
  for (let id = 1; id <= 8; id++) {
    r = await lic.query({ name: 'lookup', text: 'SELECT /* node:prepared */ person_id, id_number FROM pd.people WHERE person_id = $1', values: [id] });
    found += r.rows.length;
  }
  received['node:prepared'] = [8, found];
  check(found === 6, `prepared statement x8: 6 licensed rows found (ids 3, 7 are outside the row filter) (got ${found})`);

  // 3. pg-cursor read to the end in batches of 1000
  let cursor = lic.query(new Cursor('SELECT /* node:cursor */ person_id, id_number FROM pd.people'));
  let n = 0;
  for (;;) {
    const rows = await readCursor(cursor, 1000);
    if (rows.length === 0) break;
    n += rows.length;
  }
  await closeCursor(cursor);
  received['node:cursor'] = [1, n];
  check(n === 37500, `pg-cursor: 37500 rows in batches (got ${n})`);

  // 4. pg-cursor closed after 300 rows
  cursor = lic.query(new Cursor('SELECT /* node:cursor_early */ person_id FROM pd.people ORDER BY person_id'));
  n = (await readCursor(cursor, 100)).length + (await readCursor(cursor, 200)).length;
  await closeCursor(cursor);
  received['node:cursor_early'] = [1, n];
  check(n === 300, `pg-cursor closed early: 300 rows (got ${n})`);

  // 5. pg-query-stream
  n = await new Promise((resolve, reject) => {
    let count = 0;
    const stream = lic.query(new QueryStream("SELECT /* node:stream */ person_id, name FROM pd.people WHERE region = 'bj'", [], { batchSize: 500 }));
    stream.on('data', () => { count++; });
    stream.on('end', () => resolve(count));
    stream.on('error', reject);
  });
  received['node:stream'] = [1, n];
  check(n === 12500, `pg-query-stream: 12500 rows (got ${n})`);

  // 6. refusals carry the LD SQLSTATEs
  for (const [sql, code] of [['SELECT salary FROM pd.people LIMIT 1', 'LD003'],
    ['SELECT * FROM pd.tax_records', 'LD005'], ['SELECT * FROM pd.accounts', 'LD006']]) {
    let got = null;
    try { await lic.query(sql); } catch (e) { got = e.code; }
    check(got === code, `${sql} -> ${code} (got ${got})`);
  }
  await lic.end();

  // 7. usage rows agree with what the client received
  await op.query('SELECT licdata.flush()');
  for (const tag of Object.keys(received).sort()) {
    const [stmts, rows] = received[tag];
    const u = await op.query(
      `SELECT count(*)::int AS stmts, coalesce(sum(rows), 0)::int AS rows,
              array_agg(DISTINCT outcome) AS outcomes, array_agg(DISTINCT consent_ref) AS refs
         FROM licdata.usage WHERE licensee = $1::regrole AND statement LIKE $2`, [licensee, `%${tag} %`]);
    const x = u.rows[0];
    check(x.stmts === stmts && x.rows === rows && x.outcomes.join() === 'ok' && x.refs.join() === 'NODE-1',
      `${tag}: ${stmts} usage row(s), rows ${x.rows} = ${rows} received, outcome ok, consent NODE-1 ` +
      `(usage rows ${x.stmts}, outcomes ${x.outcomes}, refs ${x.refs})`);
  }
  await op.end();
}

main().then(() => {
  if (failures.length) {
    console.log(`node_test: ${failures.length} failure(s)`);
    process.exit(1);
  }
  console.log('node_test: all checks passed');
}, (err) => {
  console.log(`NOT OK: unexpected error: ${err.stack || err}`);
  process.exit(1);
});

// The floor for the queue drains in bench/run.mjs: the "30-line probe", bare node:sqlite with nothing of
// loki-mode, run by the same harness (8 processes, a start barrier, every claim's latency recorded).
// It uses what store/db.ts uses (WAL, synchronous=FULL, BEGIN IMMEDIATE, the same busy back-off with
// Atomics.wait) and the same transactions per task (claim; then complete-and-claim-next), so the ratio of the
// engine's drain to this one is what loki-mode itself adds: the audit entry and anchor, leases, JSON records.
// usage: node sqlite-claimer.mjs seed DB N        create DB with N pending tasks
//        node sqlite-claimer.mjs drain DB AGENT   print "ready", wait for a line, drain; print the same JSON line
//                                                 as tests/fixtures/queue-claimer.mjs
import { DatabaseSync } from 'node:sqlite';

const [mode, file, arg] = process.argv.slice(2);
const db = new DatabaseSync(file, { timeout: 0 });
const sleeper = new Int32Array(new SharedArrayBuffer(4));
function retryBusy(fn) {
  for (let wait = 0.02; ; wait = Math.min(wait * 2, 1)) {
    try {
      return fn();
    } catch (err) {
      if ((err.errcode & 0xff) !== 5) throw err;
      Atomics.wait(sleeper, 0, 0, wait * (0.5 + Math.random()));
    }
  }
}
function tx(fn) {
  retryBusy(() => db.exec('BEGIN IMMEDIATE'));
  try {
    const out = fn();
    retryBusy(() => db.exec('COMMIT'));
    return out;
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}
retryBusy(() => db.exec('PRAGMA journal_mode = WAL'));
db.exec('PRAGMA synchronous = FULL');

if (mode === 'seed') {
  db.exec(`CREATE TABLE tasks (id TEXT PRIMARY KEY, status TEXT NOT NULL, owner TEXT, seq INTEGER NOT NULL);
           CREATE INDEX tasks_claim ON tasks (seq) WHERE status = 'pending'`);
  const add = db.prepare("INSERT INTO tasks (id, status, seq) VALUES (?, 'pending', ?)");
  tx(() => {
    for (let i = 0; i < Number(arg); i++) add.run(`q${i}`, i);
  });
} else if (mode === 'drain') {
  const agent = arg;
  const claimNext = db.prepare(
    "UPDATE tasks SET status = 'claimed', owner = ? WHERE id = (SELECT id FROM tasks WHERE status = 'pending' ORDER BY seq LIMIT 1) RETURNING id",
  );
  const complete = db.prepare("UPDATE tasks SET status = 'done' WHERE id = ? AND owner = ?");
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause();
  const claimed = [];
  const latencies = [];
  let t0 = performance.now();
  let next = tx(() => claimNext.get(agent));
  latencies.push(performance.now() - t0);
  while (next) {
    claimed.push(next.id);
    const id = next.id;
    t0 = performance.now();
    next = tx(() => {
      complete.run(id, agent);
      return claimNext.get(agent);
    });
    latencies.push(performance.now() - t0);
  }
  process.stdout.write(`${JSON.stringify({ agent, claimed, latencies })}\n`);
}
db.close();

// An unmodified BullMQ application: a Queue, a Worker and QueueEvents (ioredis underneath),
// run through redcloak by tests/tests/bullmq.rs.
//
// Usage:
//   node app.mjs check HOST PORT MARKER  - jobs added and processed, a delayed job, retries with
//                                          backoff, a job that fails for good, completion
//                                          events; prints "ok" at the end
//   node app.mjs bench HOST PORT N       - N jobs added, then processed by a Worker
//                                          (concurrency 16); prints jobs added and processed
//                                          per second as JSON
//   node app.mjs scripts HOST PORT         - 20 clients x 500 runs of a read-increment-write
//                                          script (GET, tonumber + 1, SET) on one key; prints
//                                          runs per second and the final value as JSON
// For `bench` against Redis itself, REDIS_TLS_CA / REDIS_TLS_CERT / REDIS_TLS_KEY (files) and
// REDIS_PASSWORD make the connection mutual TLS with AUTH.
// Every job's data carries MARKER, so that the test can look for it in what Redis stores.
import { readFileSync } from 'node:fs';
import { Queue, Worker, QueueEvents } from 'bullmq';
import IORedis from 'ioredis';

const [mode, host, portText, extra] = process.argv.slice(2);
const connection = { host, port: Number(portText), maxRetriesPerRequest: null };
if (process.env.REDIS_TLS_CA) {
  connection.tls = {
    ca: readFileSync(process.env.REDIS_TLS_CA),
    cert: readFileSync(process.env.REDIS_TLS_CERT),
    key: readFileSync(process.env.REDIS_TLS_KEY),
    servername: 'localhost',
  };
  connection.password = process.env.REDIS_PASSWORD;
}
if (process.env.REDIS_DB) connection.db = Number(process.env.REDIS_DB);

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

function expect(cond, message) {
  if (!cond) fail(message);
}

// Resolves when `pred` holds, fails the run after `ms`.
function waitFor(pred, ms, what) {
  return new Promise((resolve) => {
    const started = Date.now();
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() - started > ms) fail(`timed out waiting for ${what}`);
      setTimeout(tick, 20);
    };
    tick();
  });
}

async function check(marker) {
  const name = 'rc-jobs';
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  await events.waitUntilReady();

  const completed = new Map();
  const failedForGood = new Map();
  events.on('completed', ({ jobId, returnvalue }) => completed.set(jobId, returnvalue));
  events.on('failed', ({ jobId, failedReason }) => failedForGood.set(jobId, failedReason));

  const attempts = new Map();
  const worker = new Worker(
    name,
    async (job) => {
      attempts.set(job.id, (attempts.get(job.id) ?? 0) + 1);
      if (job.name === 'flaky' && job.attemptsMade < 2) {
        throw new Error(`flaky failure ${job.attemptsMade} ${marker}`);
      }
      if (job.name === 'broken') {
        throw new Error(`always broken ${marker}`);
      }
      return { doubled: job.data.n * 2, note: `${marker}-result-${job.data.n}` };
    },
    { connection, concurrency: 4 },
  );
  await worker.waitUntilReady();

  // Plain jobs.
  const plain = [];
  for (let n = 0; n < 20; n++) {
    plain.push(await queue.add('plain', { n, secret: `${marker}-data-${n}` }));
  }
  const bulk = await queue.addBulk(
    [20, 21, 22].map((n) => ({ name: 'plain', data: { n, secret: `${marker}-bulk-${n}` } })),
  );
  plain.push(...bulk);

  // A delayed job: not processed before its delay.
  const delay = 1500;
  const delayed = await queue.add('plain', { n: 100, secret: `${marker}-delayed` }, { delay });
  expect((await delayed.getState()) === 'delayed', 'the delayed job is not in the delayed state');

  // Retries with backoff: fails twice, then succeeds.
  const flaky = await queue.add(
    'flaky',
    { n: 7, secret: `${marker}-flaky` },
    { attempts: 3, backoff: { type: 'exponential', delay: 200 } },
  );
  // Fails every time: ends failed after its attempts.
  const broken = await queue.add(
    'broken',
    { n: 8, secret: `${marker}-broken` },
    { attempts: 2, backoff: { type: 'fixed', delay: 100 } },
  );

  const all = [...plain, delayed, flaky];
  await waitFor(
    () => all.every((j) => completed.has(j.id)) && failedForGood.has(broken.id),
    60000,
    'every completion event',
  );

  for (const job of plain) {
    const rv = completed.get(job.id);
    const value = typeof rv === 'string' ? JSON.parse(rv) : rv;
    expect(value.doubled === job.data.n * 2, `job ${job.id}: wrong return value ${rv}`);
    expect(value.note === `${marker}-result-${job.data.n}`, `job ${job.id}: wrong note ${rv}`);
    const fresh = await queue.getJob(job.id);
    expect(fresh.data.secret === job.data.secret, `job ${job.id}: data came back as ${fresh.data.secret}`);
    expect((await fresh.getState()) === 'completed', `job ${job.id} is not completed`);
  }

  const d = await queue.getJob(delayed.id);
  expect((await d.getState()) === 'completed', 'the delayed job is not completed');
  expect(d.processedOn >= d.timestamp + delay, `the delayed job ran early: ${d.processedOn} < ${d.timestamp} + ${delay}`);

  const f = await queue.getJob(flaky.id);
  expect((await f.getState()) === 'completed', 'the flaky job is not completed');
  expect(f.attemptsMade === 3, `the flaky job made ${f.attemptsMade} attempts, not 3`);
  expect(attempts.get(flaky.id) === 3, `the worker ran the flaky job ${attempts.get(flaky.id)} times`);
  expect(f.stacktrace.length === 2, `the flaky job has ${f.stacktrace.length} stack traces, not 2`);

  const b = await queue.getJob(broken.id);
  expect((await b.getState()) === 'failed', 'the broken job is not failed');
  expect(b.attemptsMade === 2, `the broken job made ${b.attemptsMade} attempts, not 2`);
  expect(b.failedReason === `always broken ${marker}`, `the broken job failed with ${b.failedReason}`);
  expect(failedForGood.get(broken.id) === `always broken ${marker}`, 'no failed event for the broken job');

  const counts = await queue.getJobCounts('completed', 'failed', 'waiting', 'delayed', 'active');
  expect(counts.completed === plain.length + 2, `completed count ${JSON.stringify(counts)}`);
  expect(counts.failed === 1 && counts.waiting === 0 && counts.delayed === 0 && counts.active === 0,
    `counts ${JSON.stringify(counts)}`);

  await worker.close();
  await events.close();
  await queue.close();
  console.log(JSON.stringify(counts));
  console.log('ok');
}

async function bench(n) {
  const name = 'rc-bench';
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  await queue.obliterate({ force: true });

  const t0 = process.hrtime.bigint();
  // 8 producers adding one job at a time, as an application's request handlers would.
  let next = 0;
  const producer = async () => {
    while (next < n) {
      const i = next++;
      await queue.add('bench', { i, payload: `payload-${i}` }, { removeOnComplete: false });
    }
  };
  await Promise.all(Array.from({ length: 8 }, producer));
  const t1 = process.hrtime.bigint();

  let done = 0;
  const worker = new Worker(name, async (job) => job.data.i, { connection, concurrency: 16, autorun: false });
  worker.on('completed', () => { done++; });
  const t2 = process.hrtime.bigint();
  worker.run();
  await waitFor(() => done >= n, 600000, 'the benchmark jobs');
  const t3 = process.hrtime.bigint();
  await worker.close();
  await queue.close();
  const secs = (a, b) => Number(b - a) / 1e9;
  console.log(JSON.stringify({
    jobs: n,
    added_per_s: Math.round(n / secs(t0, t1)),
    processed_per_s: Math.round(n / secs(t2, t3)),
  }));
  console.log('ok');
}

async function scripts() {
  const body = "local v = tonumber(redis.call('GET', KEYS[1]) or '0') + 1; redis.call('SET', KEYS[1], v); return v";
  const clients = Array.from({ length: 20 }, () => {
    const c = new IORedis(connection);
    c.defineCommand('incrByScript', { numberOfKeys: 1, lua: body });
    return c;
  });
  await clients[0].del('rc-script-counter');
  const t0 = process.hrtime.bigint();
  await Promise.all(clients.map(async (c) => {
    for (let i = 0; i < 500; i++) await c.incrByScript('rc-script-counter');
  }));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const final = Number(await clients[0].get('rc-script-counter'));
  await Promise.all(clients.map((c) => c.quit()));
  expect(final === 10000, `the counter ended at ${final}`);
  console.log(JSON.stringify({ runs: 10000, runs_per_s: Math.round(10000 / secs), final }));
  console.log('ok');
}

try {
  if (mode === 'scripts') await scripts();
  else if (mode === 'check') await check(extra);
  else if (mode === 'bench') await bench(Number(extra));
  else fail(`unknown mode ${mode}`);
  process.exit(0);
} catch (e) {
  fail(e?.stack ?? String(e));
}

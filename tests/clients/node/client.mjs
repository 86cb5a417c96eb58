// An unmodified node-redis application, run through redcloak by tests/tests/clients.rs.
// Usage: node client.mjs HOST PORT PROTOCOL(2|3)
import assert from 'node:assert/strict';
import { createClient } from 'redis';

const [host, port, proto] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const url = `redis://${host}:${port}`;
const client = createClient({ url, RESP: proto });
client.on('error', (e) => { console.error('client error', e); process.exit(2); });
await client.connect();
const p = `node${proto}:`;

// strings
assert.equal(await client.set(p + 's', 'hello'), 'OK');
assert.equal(await client.get(p + 's'), 'hello');
assert.deepEqual(await client.mGet([p + 's', p + 'missing']), ['hello', null]);

// hashes
await client.hSet(p + 'h', { name: 'Ada', lang: 'en' });
const h = await client.hGetAll(p + 'h');
assert.deepEqual({ ...h }, { name: 'Ada', lang: 'en' });
assert.equal(await client.hGet(p + 'h', 'name'), 'Ada');

// lists
await client.rPush(p + 'l', ['a', 'b', 'c']);
assert.deepEqual(await client.lRange(p + 'l', 0, -1), ['a', 'b', 'c']);
assert.equal(await client.lPop(p + 'l'), 'a');

// pipeline (auto-pipelined batch) and transaction
const batch = [];
for (let i = 0; i < 100; i++) batch.push(client.set(`${p}k${i}`, `v${i}`), client.get(`${p}k${i}`));
const results = await Promise.all(batch);
assert.deepEqual(results.filter((_, i) => i % 2 === 1), [...Array(100).keys()].map((i) => `v${i}`));
const tx = await client.multi().set(p + 't', 'in-tx').get(p + 't').lRange(p + 'l', 0, -1).exec();
assert.deepEqual(tx, ['OK', 'in-tx', ['b', 'c']]);

// pub/sub
const sub = client.duplicate();
await sub.connect();
const received = new Promise((resolve) => sub.subscribe(p + 'chan', (message) => resolve(message)));
await new Promise((r) => setTimeout(r, 200));
assert.equal(await client.publish(p + 'chan', 'news!'), 1);
const timeout = new Promise((_, rej) => setTimeout(() => rej(new Error('no message within 5 s')), 5000).unref());
assert.equal(await Promise.race([received, timeout]), 'news!');
await sub.quit();

// a command computed on the value is emulated by redcloak; a refused one is a clean error
assert.equal(await client.incr(p + 'counter'), 1);
await assert.rejects(client.sendCommand(['OBJECT', 'ENCODING', p + 'counter']), /redcloak/);
await client.quit();
console.log('ok');

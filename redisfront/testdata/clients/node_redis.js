// node-redis (npm "redis") with its default settings against the kvstore
// front at 127.0.0.1:PORT; run by TestClientLibraries. Exits non-zero on
// the first reply that is not Redis'.
const assert = require('node:assert/strict');
const { createClient } = require('redis');

(async () => {
  const c = createClient({ url: 'redis://127.0.0.1:' + process.argv[2] });
  c.on('error', (e) => { console.error('client error', e); process.exit(1); });
  await c.connect();
  assert.equal(await c.ping(), 'PONG');
  assert.equal(await c.set('a', '1', { EX: 100 }), 'OK');
  assert.equal(await c.get('a'), '1');
  assert.equal(await c.ttl('a'), 100);
  assert.equal(await c.incr('n'), 1);
  assert.equal(Number(await c.incrByFloat('f', 1.5)), 1.5);
  assert.equal(await c.mSet({ k1: 'v1', k2: 'v2' }), 'OK');
  assert.deepEqual(await c.mGet(['k1', 'k2', 'none']), ['v1', 'v2', null]);
  assert.equal(await c.mSetNX({ k1: 'x', k3: 'y' }), 0);
  assert.equal(await c.getEx('a', { PERSIST: true }), '1');
  assert.equal(await c.ttl('a'), -1);
  assert.deepEqual(await c.multi().set('t', '1').incr('t').get('t').exec(), ['OK', 2, '2']);
  const keys = [];
  for await (const k of c.scanIterator({ MATCH: 'k*' })) keys.push(k);
  assert.deepEqual(keys.flat().sort(), ['k1', 'k2']);
  assert.match(await c.info('server'), /redis_version:7\./);
  assert.equal(await c.del(['k1', 'k2']), 2);
  assert.equal(await c.flushDb(), 'OK');
  assert.equal(await c.dbSize(), 0);
  await c.quit();
  console.log('ok');
})().catch((e) => { console.error(e); process.exit(1); });

// ioredis with its default settings against the kvstore front at
// 127.0.0.1:PORT; run by TestClientLibraries. Exits non-zero on the first
// reply that is not Redis'.
const assert = require('node:assert/strict');
const Redis = require('ioredis');

(async () => {
  const c = new Redis(Number(process.argv[2]), '127.0.0.1');
  assert.equal(await c.ping(), 'PONG');
  assert.equal(await c.set('a', '1', 'EX', 100), 'OK');
  assert.equal(await c.get('a'), '1');
  assert.equal(await c.ttl('a'), 100);
  assert.equal(await c.incr('n'), 1);
  assert.equal(await c.incrbyfloat('f', 1.5), '1.5');
  assert.equal(await c.mset('k1', 'v1', 'k2', 'v2'), 'OK');
  assert.deepEqual(await c.mget('k1', 'k2', 'none'), ['v1', 'v2', null]);
  assert.equal(await c.msetnx('k1', 'x', 'k3', 'y'), 0);
  assert.deepEqual((await c.pipeline().set('p', 1).incr('p').exec()).map((r) => r[1]), ['OK', 2]);
  assert.deepEqual(await c.multi().set('t', '1').incr('t').get('t').exec(), [[null, 'OK'], [null, 2], [null, '2']]);
  const keys = await new Promise((resolve, reject) => {
    const ks = [];
    c.scanStream({ match: 'k*' }).on('data', (d) => ks.push(...d)).on('end', () => resolve(ks)).on('error', reject);
  });
  assert.deepEqual(keys.sort(), ['k1', 'k2']);
  assert.equal(await c.set(Buffer.from([0xff, 0]), Buffer.from([0, 0xfe])), 'OK');
  assert.deepEqual(await c.getBuffer(Buffer.from([0xff, 0])), Buffer.from([0, 0xfe]));
  assert.match(await c.info('server'), /redis_version:7\./);
  assert.equal(await c.flushdb(), 'OK');
  assert.equal(await c.dbsize(), 0);
  c.disconnect();
  console.log('ok');
})().catch((e) => { console.error(e); process.exit(1); });

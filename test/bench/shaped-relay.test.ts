// The user-space slow link of the benches (test/helpers/shaped-relay.ts): a small message takes one round trip,
// a bulk transfer takes its size over the rate, and the counts are the bytes that crossed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { ShapedRelay } from '../helpers/shaped-relay.ts';

let echo: Server;
let port: number;
before(async () => {
  // Echoes a small message; answers 'ok' once a whole 256 KiB has arrived.
  echo = createServer((s) => {
    let got = 0;
    s.on('data', (d) => {
      got += d.length;
      if (d.length < 100) s.write(d);
      else if (got === 256 << 10) s.write('ok');
    });
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  port = (echo.address() as AddressInfo).port;
});
after(() => echo.close());

async function roundTrip(relayPort: number, payload: Buffer): Promise<number> {
  const s = connect({ host: '127.0.0.1', port: relayPort });
  await new Promise((r) => s.once('connect', r));
  const t0 = performance.now();
  s.write(payload);
  await new Promise((r) => s.once('data', r));
  const ms = performance.now() - t0;
  s.destroy();
  return ms;
}

test('a small message takes one RTT; 256 KiB at 2 Mbit/s takes about a second; bytes are counted', async () => {
  const relay = await ShapedRelay.start(port, { bitsPerSecond: 2e6, rttMs: 100 });
  try {
    const rtt = await roundTrip(relay.port, Buffer.from('ping'));
    // Never faster than the link (less a few ms: Node's timers run on whole milliseconds and may fire up to one early,
    // once each way); the upper bounds are loose: a loaded machine delays timers, it never speeds them up.
    assert.ok(rtt >= 96 && rtt < 1500, `rtt ${rtt} ms`);
    const bulk = Buffer.alloc(256 << 10, 7);
    const ms = await roundTrip(relay.port, bulk);
    const ideal = (bulk.length * 8) / 2e6 * 1000 + 100; // 1049 ms + one RTT
    assert.ok(ms >= ideal * 0.97 && ms < ideal * 2, `bulk ${ms} ms, ideal ${ideal} ms`);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(relay.bytesUp, 4 + bulk.length);
    assert.equal(relay.bytesDown, 4 + 2);
  } finally {
    await relay.close();
  }
});

test('bytes arrive in the order they were sent, however busy the event loop (small writes, a loaded tick)', async () => {
  // A sink that keeps everything it is sent.
  const got: Buffer[] = [];
  const sink = createServer((s) => s.on('data', (d) => got.push(d)));
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const relay = await ShapedRelay.start((sink.address() as AddressInfo).port, { bitsPerSecond: 10e6, rttMs: 40 });
  try {
    const s = connect({ host: '127.0.0.1', port: relay.port });
    s.setNoDelay(true);
    await new Promise((r) => s.once('connect', r));
    // A backlog first (128 KiB: ~100 ms of the link), then 600 numbered 64-byte writes, each in its own tick after a
    // busy wait of up to 1.5 ms: each takes ~0.05 ms of the link behind the one before, while the ticks' clocks lag
    // by different amounts.
    const sent: Buffer[] = [Buffer.alloc(128 << 10, 0xee)];
    s.write(sent[0]);
    for (let i = 0; i < 600; i++) {
      const b = Buffer.alloc(64, i % 251);
      b.writeUInt32BE(i, 0);
      sent.push(b);
      s.write(b);
      const until = performance.now() + Math.random() * 1.5;
      while (performance.now() < until) { /* a loaded tick */ }
      await new Promise((r) => setImmediate(r));
    }
    const all = Buffer.concat(sent);
    const end = Date.now() + 5000;
    while (Buffer.concat(got).length < all.length && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const out = Buffer.concat(got);
    assert.equal(out.length, all.length);
    assert.ok(out.equals(all), `reordered: first difference at byte ${out.findIndex((x, i) => x !== all[i])}`);
    s.destroy();
  } finally {
    await relay.close();
    sink.close();
  }
});

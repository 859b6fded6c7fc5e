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

// The usbredir byte stream without QEMU: hellos and the 64-bit id switch, packets cut anywhere, and malformed
// packets — each throws UsbredirProtocolError, and on a SPICE channel closes that channel only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { UsbredirChannel } from '../../src/spice/usbredir/channel.ts';
import { parseFilterRules, filterAllows } from '../../src/spice/usbredir/filter.ts';
import { UsbredirParser, UsbredirProtocolError } from '../../src/spice/usbredir/parser.ts';
import { HOST_CAPS, UsbredirType as T } from '../../src/spice/usbredir/protocol.ts';
import { readHello } from '../../src/spice/usbredir/codec.ts';
import { FakeWire, tick } from './helpers/fake.ts';
import { bulkHeader, control, frame, guestHello } from './helpers/usbredir-guest.ts';

const malformed = (f: () => unknown, re: RegExp) =>
  assert.throws(f, (e: Error) => e instanceof UsbredirProtocolError && re.test(e.message));

test('our hello: 12-byte header, version and the caps qemu-xhci needs (1, 2, 4, 5, 6)', () => {
  const p = new UsbredirParser();
  const hello = p.frame(T.HELLO, 0, new Uint8Array(64));
  assert.equal(hello.length, 12 + 64);
  assert.equal(p.headerSize, 12);
  assert.deepEqual([...HOST_CAPS].sort(), [1, 2, 4, 5, 6]);
});

test("QEMU's hello is read; ids become 64-bit once both announced cap 5", () => {
  const p = new UsbredirParser();
  const [h] = p.feed(guestHello());
  assert.equal(h!.type, T.HELLO);
  assert.equal(p.peer!.version, 'qemu usb-redir guest 7.2.22');
  assert.deepEqual(p.peer!.caps, [0, 1, 2, 4, 5, 6, 7]);
  assert.equal(p.headerSize, 16);
  assert.ok(p.has(6) && !p.has(0) && !p.has(7), 'only caps both sides have');
  const [c] = p.feed(frame(T.SET_CONFIGURATION, 2n ** 40n, Uint8Array.of(1)));
  assert.equal(c!.id, 2n ** 40n);
  // A guest without cap 5 keeps 32-bit ids.
  const q = new UsbredirParser();
  q.feed(guestHello([1, 4, 6]));
  assert.equal(q.headerSize, 12);
  assert.equal(q.feed(frame(T.GET_CONFIGURATION, 7, new Uint8Array(0), undefined, 12))[0]!.id, 7n);
});

test('packets cut at any byte boundaries come out whole and in order', () => {
  const stream = [
    guestHello(),
    frame(T.SET_CONFIGURATION, 1, Uint8Array.of(1)),
    frame(T.CONTROL_PACKET, 2, control(0x80, 6, 0x100, 0, 18)),
    frame(T.BULK_PACKET, 3, bulkHeader(0x02, 31), new Uint8Array(31).fill(7)),
    frame(T.BULK_PACKET, 4, bulkHeader(0x81, 200_000)),
  ];
  const all = Uint8Array.from(stream.flatMap((s) => [...s]));
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: all.length }), { maxLength: 12 }), (cuts) => {
    const p = new UsbredirParser();
    const points = [...new Set(cuts)].sort((a, b) => a - b);
    const got = [];
    let from = 0;
    for (const to of [...points, all.length]) {
      got.push(...p.feed(all.subarray(from, to)));
      from = to;
    }
    assert.deepEqual(got.map((g) => [g.type, g.id]), [[0, 0n], [6, 1n], [100, 2n], [101, 3n], [101, 4n]]);
    assert.equal(got[3]!.data.length, 31);
  }), { numRuns: 200 });
});

test('malformed packets are refused with a clear error', () => {
  const ready = () => {
    const p = new UsbredirParser();
    p.feed(guestHello());
    return p;
  };
  malformed(() => new UsbredirParser().feed(frame(T.RESET, 1, new Uint8Array(0), undefined, 12)), /reset before hello/);
  malformed(() => ready().feed(guestHello()), /second hello/);
  malformed(() => ready().feed(frame(T.SET_CONFIGURATION, 1, new Uint8Array(0))), /its header alone is 1/);
  malformed(() => ready().feed(frame(T.GET_CONFIGURATION, 1, Uint8Array.of(1, 2))), /expected 0/);
  malformed(() => ready().feed(frame(T.CONTROL_PACKET, 1, control(0x80, 6, 0x100, 0, 18), Uint8Array.of(1))),
    /control_packet IN 0x80: carries 1 data bytes/);
  malformed(() => ready().feed(frame(T.BULK_PACKET, 1, bulkHeader(0x02, 31), new Uint8Array(30))),
    /length 31 but 30 data bytes/);
  malformed(() => ready().feed(frame(T.CONTROL_PACKET, 1, control(0x00, 9, 1, 0, 0).fill(0x81, 0, 1))),
    /control packet on endpoint 0x81/);
  malformed(() => ready().feed(frame(T.DEVICE_CONNECT, 1, new Uint8Array(10))), /guest side, which never sends it/);
  const huge = frame(T.BULK_PACKET, 1, bulkHeader(0x02, 0));
  new DataView(huge.buffer).setUint32(4, 0xffffffff, true);
  malformed(() => ready().feed(huge.subarray(0, 16)), /4294967295 bytes/);
  const odd = guestHello();
  const oddHello = Uint8Array.from([...odd.subarray(0, 4), 66, 0, 0, 0, ...odd.subarray(8, 12 + 66)]);
  malformed(() => new UsbredirParser().feed(oddHello), /capability words of 2 bytes/);
  // Unknown types are skipped, as usbredirparser does.
  const p = ready();
  assert.deepEqual(p.feed(frame(77, 1, new Uint8Array(5))), []);
  assert.equal(p.skipped, 1);
});

test('filter rules: parsed, matched first-rule-wins, malformed ones refused', () => {
  const rules = parseFilterRules('0x08,-1,-1,-1,0|-1,0x1209,-1,-1,1\0');
  const stick = {
    speed: 2, deviceClass: 0, deviceSubclass: 0, deviceProtocol: 0, vendorId: 0x1209, productId: 1, bcdDevice: 0x100,
  };
  const storage = [{ number: 0, class: 8, subclass: 6, protocol: 0x50 }];
  assert.equal(filterAllows(rules, stick, storage), false);
  assert.equal(filterAllows(rules.slice(1), stick, storage), true);
  assert.equal(filterAllows([], stick, storage), false);
  assert.throws(() => parseFilterRules('1,2,3'), UsbredirProtocolError);
  assert.throws(() => parseFilterRules('a,b,c,d,e'), UsbredirProtocolError);
});

test('hello caps are read bit by bit', () => {
  assert.deepEqual(readHello(new Uint8Array(64), Uint8Array.of(0x05, 0, 0, 0x80)).caps, [0, 2, 31]);
});

test('a malformed packet on a usbredir channel closes that channel only, with UsbredirProtocolError', async () => {
  const opts = { maxMessageSize: 1 << 20, lookup: () => undefined };
  const badWire = new FakeWire();
  const goodWire = new FakeWire();
  const bad = new UsbredirChannel(9, 0, badWire.transport, badWire.queue, opts);
  const good = new UsbredirChannel(9, 1, goodWire.transport, goodWire.queue, opts);
  const closed: (Error | undefined)[] = [];
  bad.onClose((e) => closed.push(e));
  void bad.run();
  void good.run();
  await tick();
  assert.equal(badWire.messages()[0]![0], 101, 'our hello went out as SPICEVMC_DATA');
  for (const w of [badWire, goodWire]) w.push(101, guestHello());
  badWire.push(101, frame(T.SET_CONFIGURATION, 1, new Uint8Array(3)));
  goodWire.push(101, frame(T.GET_CONFIGURATION, 1, new Uint8Array(0)));
  await tick();
  await good.whenReady(100);
  assert.equal(bad.closed, true);
  assert.ok(badWire.closed);
  assert.ok(closed[0] instanceof UsbredirProtocolError, String(closed[0]));
  assert.match(closed[0]!.message, /set_configuration: 3 bytes, expected 1/);
  assert.equal(good.closed, false);
  await good.host.idle();
  assert.equal(goodWire.messages().length, 2, 'the other channel still answers (configuration_status)');
});

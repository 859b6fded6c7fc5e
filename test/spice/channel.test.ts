// Base-channel behaviour over a fake transport: acks, pings, LIST, NOTIFY, WAIT_FOR_CHANNELS, the
// message size bound, and the main/inputs/cursor channel messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { SpiceChannel } from '../../src/spice/channel.ts';
import { CursorChannel } from '../../src/spice/channels/cursor.ts';
import { InputsChannel, packScancode } from '../../src/spice/channels/inputs.ts';
import { MainChannel } from '../../src/spice/channels/main.ts';
import { SpiceProtocolError } from '../../src/spice/proto/errors.ts';
import { Reader } from '../../src/spice/proto/reader.ts';
import { Writer } from '../../src/spice/proto/writer.ts';
import { FakeWire, miniMessage, tick } from './helpers/fake.ts';
import { replayDisplay } from './helpers/replay.ts';

function main(
  wire: FakeWire,
  maxMessageSize = 1 << 20,
  lookup: (t: number, i: number) => SpiceChannel | undefined = () => undefined,
): MainChannel {
  return new MainChannel(1, 0, wire.transport, wire.queue, { maxMessageSize, lookup });
}

test('SET_ACK is answered with ACK_SYNC, then one ACK per window of messages', async () => {
  const wire = new FakeWire();
  void main(wire).run();
  wire.push(3, new Writer().u32(7).u32(2).finish()); // SET_ACK generation 7, window 2
  for (let i = 0; i < 5; i++) wire.push(106, new Writer().u32(i).finish()); // MULTI_MEDIA_TIME
  await tick();
  const msgs = wire.messages();
  assert.deepEqual(msgs[0]![0], 1);
  assert.equal(new Reader(msgs[0]![1]).u32(), 7);
  // SET_ACK itself counts: messages 1..6 → ACK after the 2nd, 4th, 6th
  assert.equal(msgs.filter(([t]) => t === 2).length, 3);
});

test('PING is answered with PONG carrying id and timestamp, not the payload', async () => {
  const wire = new FakeWire();
  void main(wire).run();
  wire.push(4, new Writer().u32(9).u64(123456789n).bytes(new Uint8Array(1000)).finish());
  await tick();
  const [[type, body]] = wire.messages() as [[number, Uint8Array]];
  assert.equal(type, 3);
  const r = new Reader(body);
  assert.deepEqual([r.u32(), r.u64(), r.remaining], [9, 123456789n, 0]);
});

test('INIT is answered with ATTACH_CHANNELS; CHANNELS_LIST, NAME, MOUSE_MODE and NOTIFY are reported', async () => {
  const wire = new FakeWire();
  const m = main(wire);
  const lists: unknown[] = [];
  const notes: string[] = [];
  m.onChannelsList((l) => lists.push(l));
  m.onNotify((n) => notes.push(n.message));
  void m.run();
  wire.push(103, new Writer().u32(77).u32(1).u32(1).u32(1).u32(0).u32(10).u32(5).u32(1 << 20).finish());
  wire.push(104, new Writer().u32(2).u8(2).u8(0).u8(3).u8(0).finish());
  wire.push(113, new Writer().u32(5).bytes(Uint8Array.of(0x51, 0x45, 0x4d, 0x55, 0)).finish());
  wire.push(105, new Writer().u16(3).u16(2).finish());
  const text = Uint8Array.of(0x68, 0x69);
  wire.push(7, new Writer().u64(0).u32(0).u32(0).u32(0).u32(2).bytes(text).finish());
  await tick();
  assert.equal(m.init?.sessionId, 77);
  assert.deepEqual(wire.messages().map(([t]) => t), [104]);
  assert.deepEqual(lists, [[{ type: 2, id: 0 }, { type: 3, id: 0 }]]);
  assert.equal(m.name, 'QEMU');
  assert.deepEqual(m.mouseMode, { supported: 3, current: 2 });
  assert.deepEqual(notes, ['hi']);
});

test('LIST sub-messages are dispatched in order', async () => {
  const wire = new FakeWire();
  const m = main(wire);
  void m.run();
  const a = new Writer().u16(106).u32(4).u32(11).finish();
  const b = new Writer().u16(106).u32(4).u32(22).finish();
  wire.push(8, new Writer().u16(2).u32(10).u32(10 + a.length).bytes(a).bytes(b).finish());
  await tick();
  assert.equal(m.multiMediaTime, 22);
});

test('a message larger than maxMessageSize closes the channel with SpiceProtocolError', async () => {
  const wire = new FakeWire();
  const m = main(wire, 100);
  let error: Error | undefined;
  m.onClose((e) => (error = e));
  const done = m.run();
  wire.queue.data(new Writer().u16(106).u32(0xfffffff0).finish());
  await done;
  assert.ok(error instanceof SpiceProtocolError);
  assert.ok(wire.closed);
});

test('WAIT_FOR_CHANNELS blocks until the sibling has processed the serial', async () => {
  const wireA = new FakeWire();
  const wireB = new FakeWire();
  const b = main(wireB);
  const a = main(wireA, 1 << 20, (t, i) => (t === 1 && i === 5 ? b : undefined));
  void a.run();
  void b.run();
  // wait for (1,5) serial 2; (9,9) unknown
  wireA.push(5, new Writer().u8(2).u8(1).u8(5).u64(2n).u8(9).u8(9).u64(1n).finish());
  wireA.push(106, new Writer().u32(1).finish());
  await tick();
  assert.equal(a.multiMediaTime, 0, 'still waiting');
  wireB.push(106, new Writer().u32(1).finish());
  await tick();
  assert.equal(a.multiMediaTime, 0, 'serial 1 is not enough');
  wireB.push(106, new Writer().u32(2).finish());
  await tick();
  await tick();
  assert.equal(a.multiMediaTime, 1);
});

test('inputs: scancodes packed as spice-gtk does, motion throttled until MOUSE_MOTION_ACK', async () => {
  assert.equal(packScancode(0x1e, false), 0x1e);
  assert.equal(packScancode(0x1e, true), 0x9e);
  assert.equal(packScancode(0xe048, false), 0x48e0);
  assert.equal(packScancode(0xe048, true), 0xc8e0);
  const wire = new FakeWire();
  const inputs = new InputsChannel(3, 0, wire.transport, wire.queue, {
    maxMessageSize: 1 << 20,
    lookup: () => undefined,
  });
  void inputs.run();
  const sent = Array.from({ length: 10 }, () => inputs.mouseMotion(1, -1, 0));
  assert.equal(sent.filter(Boolean).length, 8);
  wire.push(111);
  await tick();
  assert.ok(inputs.mouseMotion(1, 1, 0));
  inputs.keyPress(0x1c);
  const msgs = wire.messages();
  assert.deepEqual(msgs.slice(-2).map(([t, b]) => [t, new Reader(b).u32()]), [[101, 0x1c], [102, 0x9c]]);
  const motion = new Reader(msgs[0]![1]);
  assert.deepEqual([motion.i32(), motion.i32(), motion.u16()], [1, -1, 0]);
});

test('cursor: ALPHA shape decoded, cached and reused FROM_CACHE; MOVE and HIDE tracked', async () => {
  const wire = new FakeWire();
  const cursor = new CursorChannel(
    4,
    0,
    wire.transport,
    wire.queue,
    { maxMessageSize: 1 << 20, lookup: () => undefined },
    1 << 20,
  );
  void cursor.run();
  const shape = new Writer().u16(2).u64(5n).u8(0).u16(2).u16(1).u16(1).u16(0); // CACHE_ME, ALPHA 2×1, hot (1,0)
  shape.bytes(Uint8Array.of(10, 20, 30, 255, 1, 2, 3, 128));
  wire.push(103, new Writer().u16(3).u16(4).u8(1).bytes(shape.finish()).finish()); // SET at (3,4)
  await tick();
  assert.deepEqual([...cursor.state.shape!.image.data], [30, 20, 10, 255, 3, 2, 1, 128]);
  assert.equal(cursor.state.shape!.hotX, 1);
  wire.push(104, new Writer().u16(50).u16(60).finish());
  // FROM_CACHE
  wire.push(103, new Writer().u16(0).u16(0).u8(1).u16(4).u64(5n).u8(0).u16(2).u16(1).u16(1).u16(0).finish());
  wire.push(105);
  await tick();
  assert.equal(cursor.state.visible, false);
  assert.deepEqual([...cursor.state.shape!.image.data.subarray(0, 4)], [30, 20, 10, 255]);
});

test('fuzz: random message streams into a display channel end in a typed error, never a crash', async () => {
  const message = fc.tuple(
    fc.constantFrom(
      3,
      4,
      5,
      7,
      8,
      102,
      104,
      105,
      106,
      107,
      108,
      122,
      123,
      124,
      125,
      126,
      302,
      304,
      314,
      315,
      316,
      317,
      319,
    ),
    fc.uint8Array({ maxLength: 80 }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(message, { maxLength: 12 }), fc.uint8Array({ maxLength: 20 }), async (msgs, tail) => {
      const bytes = new Uint8Array([...msgs.flatMap(([t, b]) => [...miniMessage(t, b)]), ...tail]);
      const r = await replayDisplay(bytes, 13, 1 << 16);
      if (r.error) assert.ok(r.error instanceof SpiceProtocolError, String(r.error));
    }),
    { numRuns: 400 },
  );
});

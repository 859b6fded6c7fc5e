// Wire primitives and the link handshake: bounds-checked reads, constant tables, UTF-8, caps,
// SpiceLinkMess/Reply coding, link results as typed errors; fuzzed with fast-check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { capsFromBits, hasCap } from '../../src/spice/caps.ts';
import {
  SpiceLinkError,
  decodeLinkHeader,
  decodeLinkReply,
  encodeLinkMess,
  performLink,
} from '../../src/spice/link.ts';
import { ChannelType, DisplayMsg, LinkErr, nameOf, serverMsgName } from '../../src/spice/proto/constants.ts';
import { SpiceProtocolError } from '../../src/spice/proto/errors.ts';
import { Reader } from '../../src/spice/proto/reader.ts';
import { decodeUtf8, encodeUtf8 } from '../../src/spice/proto/utf8.ts';
import { Writer } from '../../src/spice/proto/writer.ts';
import { SpiceConnectionClosed } from '../../src/spice/transport.ts';
import { FakeWire } from './helpers/fake.ts';

test('Reader reads little-endian values and throws SpiceProtocolError past the end', () => {
  const w = new Writer(1).u8(1).u16(0x0203).u32(0x04050607).i32(-2).u64(0x0102030405060708n);
  const r = new Reader(w.finish());
  assert.deepEqual([r.u8(), r.u16(), r.u32(), r.i32(), r.u64()], [1, 0x0203, 0x04050607, -2, 0x0102030405060708n]);
  assert.equal(r.remaining, 0);
  assert.throws(() => r.u8(), SpiceProtocolError);
  assert.throws(() => new Reader(new Uint8Array(4)).at(5), SpiceProtocolError);
  assert.throws(() => new Reader(new Uint8Array(4)).count(2, 4), SpiceProtocolError);
});

test('Reader never throws anything but SpiceProtocolError', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 64 }),
      fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 20 }),
      (bytes, ops) => {
      const r = new Reader(bytes);
      try {
        for (const op of ops)
          [
            () => r.u8(),
            () => r.u16(),
            () => r.u32(),
            () => r.u64(),
            () => r.bytesView(r.u8()),
            () => r.at(r.u32()),
            () => r.count(r.u32(), 4),
          ][op]!();
      } catch (e) {
        assert.ok(e instanceof SpiceProtocolError, String(e));
      }
    },
    ),
  );
});

test('message names come from the constant tables', () => {
  assert.equal(serverMsgName(ChannelType.DISPLAY, DisplayMsg.DRAW_COPY), '304 DRAW_COPY');
  assert.equal(serverMsgName(ChannelType.DISPLAY, 4), '4 PING');
  assert.equal(nameOf(LinkErr, 7), 'PERMISSION_DENIED');
  assert.equal(nameOf(LinkErr, 99), '99');
});

test('UTF-8 round trip and malformed input', () => {
  fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (s) => {
    const clean = s.split('\0')[0]!;
    assert.equal(decodeUtf8(encodeUtf8(clean)), clean);
  }));
  assert.equal(decodeUtf8(Uint8Array.of(0x41, 0xc3)), 'A\ufffd');
  assert.equal(decodeUtf8(Uint8Array.of(0x41, 0, 0x42)), 'A');
});

test('caps are bit sets over u32 words', () => {
  const w = capsFromBits([0, 3, 33]);
  assert.deepEqual(w, [0b1001, 0b10]);
  assert.ok(hasCap(w, 33) && !hasCap(w, 1) && !hasCap(w, 64));
});

test('SpiceLinkMess: header, connection id, channel, caps at offset 18', () => {
  const b = encodeLinkMess({ connectionId: 42, channelType: 2, channelId: 0, channelCaps: [1, 6] });
  const r = new Reader(b);
  assert.deepEqual([r.u32(), r.u32(), r.u32(), r.u32()], [0x51444552, 2, 2, 18 + 8]);
  assert.deepEqual([r.u32(), r.u8(), r.u8(), r.u32(), r.u32(), r.u32()], [42, 2, 0, 1, 1, 18]);
  assert.deepEqual([r.u32(), r.u32()], [0b1011, 0b1000010]); // AUTH_SELECTION|AUTH_SPICE|MINI_HEADER; channel caps
});

function linkReply(error: number, commonCaps = [0b1011], channelCaps: number[] = []): Uint8Array {
  const body = new Writer()
    .u32(error)
    .bytes(new Uint8Array(162))
    .u32(commonCaps.length)
    .u32(channelCaps.length)
    .u32(178);
  for (const c of [...commonCaps, ...channelCaps]) body.u32(c);
  const b = body.finish();
  return new Writer().u32(0x51444552).u32(2).u32(2).u32(b.length).bytes(b).finish();
}

test('link reply errors and link results become SpiceLinkError with the reason', async () => {
  const params = {
    connectionId: 0,
    channelType: 1,
    channelId: 0,
    channelCaps: [],
    password: 'pw',
    channelLabel: 'main:0',
  };
  const run = async (serverBytes: Uint8Array) => {
    const wire = new FakeWire();
    wire.queue.data(serverBytes);
    const encryptTicket = async (_k: Uint8Array, p: Uint8Array) => {
      assert.deepEqual([...p], [0x70, 0x77, 0]); // "pw\0"
      return new Uint8Array(128);
    };
    return performLink(wire.transport, wire.queue, { ...params, encryptTicket });
  };
  await assert.rejects(
    run(linkReply(LinkErr.NEED_SECURED)),
    (e: SpiceLinkError) => e.reason === 'NEED_SECURED' && e.code === 5,
  );
  const result = new Writer().u32(LinkErr.PERMISSION_DENIED).finish();
  await assert.rejects(
    run(new Uint8Array([...linkReply(0), ...result])),
    (e: SpiceLinkError) => e.reason === 'PERMISSION_DENIED',
  );
  const ok = await run(new Uint8Array([...linkReply(0, [0b1011], [0x1052]), ...new Writer().u32(0).finish()]));
  assert.deepEqual(ok.channelCaps, [0x1052]);
  await assert.rejects(run(linkReply(0, [0b0011])), SpiceProtocolError); // no MINI_HEADER
  await assert.rejects(run(linkReply(0, [0b1001])), (e: SpiceLinkError) => e.reason === 'NO_COMPATIBLE_AUTH');
});

test('an over-long password is refused before anything is sent', async () => {
  const wire = new FakeWire();
  const p = performLink(wire.transport, wire.queue, {
    connectionId: 0, channelType: 1, channelId: 0, channelCaps: [], password: 'x'.repeat(61), channelLabel: 'main:0',
    encryptTicket: async () => new Uint8Array(128),
  });
  await assert.rejects(p, (e: SpiceLinkError) => e.reason === 'PASSWORD_TOO_LONG');
  assert.equal(wire.written.length, 0);
});

test('fuzz: arbitrary link replies end in a typed error or a link, never a crash or a hang', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.boolean(), async (bytes, validHeader) => {
      const wire = new FakeWire();
      const head = validHeader
        ? new Writer().u32(0x51444552).u32(2).u32(2).u32(bytes.length).finish()
        : new Uint8Array(0);
      wire.queue.data(new Uint8Array([...head, ...bytes]));
      wire.queue.closed();
      try {
        await performLink(wire.transport, wire.queue, {
          connectionId: 0, channelType: 1, channelId: 0, channelCaps: [], password: '', channelLabel: 'main:0',
          encryptTicket: async () => new Uint8Array(128),
        });
      } catch (e) {
        assert.ok(
          e instanceof SpiceProtocolError || e instanceof SpiceLinkError || e instanceof SpiceConnectionClosed,
          String(e),
        );
      }
    }),
    { numRuns: 300 },
  );
  assert.throws(
    () =>
      decodeLinkHeader(
        new Writer()
          .u32(0x51444552)
          .u32(2)
          .u32(2)
          .u32(1 << 30)
          .finish(),
      ),
    SpiceProtocolError,
  );
  assert.throws(() => decodeLinkReply(new Uint8Array(10)), SpiceProtocolError);
});

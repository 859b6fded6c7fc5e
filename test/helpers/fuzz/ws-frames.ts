// Fuzz inputs for an open WebSocket: after a real handshake (written by hand, so the frames after it can be
// anything), a run of frames that are valid, malformed (reserved bits, unknown opcodes, unmasked, fragmented control
// frames, lengths that lie, 64-bit lengths), or plain junk. Outcome: how the server ended the connection.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import fc from 'fast-check';

interface FrameOpts { fin?: boolean; rsv?: number; mask?: boolean; lie?: number }

function frame(opcode: number, payload: Buffer, o: FrameOpts = {}): Buffer {
  const fin = o.fin === false ? 0 : 0x80;
  const len = o.lie ?? payload.length;
  const mask = o.mask === false ? 0 : 0x80;
  let head: Buffer;
  if (len < 126) head = Buffer.from([fin | ((o.rsv ?? 0) << 4) | opcode, mask | len]);
  else if (len < 65536) {
    head = Buffer.from([fin | ((o.rsv ?? 0) << 4) | opcode, mask | 126, 0, 0]);
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = fin | ((o.rsv ?? 0) << 4) | opcode;
    head[1] = mask | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i % 4]!));
  return Buffer.concat([head, key, body]);
}

const payload = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc.string({ unit: 'grapheme', maxLength: 50 }).map((s) => Buffer.from(s)),
  fc.constantFrom(Buffer.from('REDQ\x02\x00\x00\x00\x02\x00\x00\x00\xff\xff\xff\xff', 'latin1'), Buffer.from([0xff, 0xfe, 0xfd])),
  fc.integer({ min: 60_000, max: 200_000 }).map((n) => Buffer.alloc(n, 0x61)),
);

export const wsFrame: fc.Arbitrary<Buffer> = fc.oneof(
  fc.tuple(fc.constantFrom(1, 2), payload).map(([op, p]) => frame(op, p)),
  fc.tuple(fc.integer({ min: 0, max: 15 }), payload, fc.integer({ min: 0, max: 7 }), fc.boolean(), fc.boolean())
    .map(([op, p, rsv, fin, mask]) => frame(op, p, { rsv, fin, mask })),
  fc.tuple(fc.constantFrom(8, 9, 10), payload)
    .map(([op, p]) => frame(op, p.subarray(0, 200), { fin: p.length % 2 === 0 })),
  fc.tuple(payload, fc.constantFrom(2 ** 31, 2 ** 40, 2 ** 53 - 1, 70_000)).map(([p, lie]) => frame(2, p, { lie })),
  fc.uint8Array({ minLength: 1, maxLength: 100 }).map((a) => Buffer.from(a)),
);

/** Opens a WebSocket by hand at `path` and writes `frames`; resolves with the HTTP status if refused, else how it ended
 * ('closed', 'open' if still open at the deadline, 'reset'), and how many frames were written. */
export function sendFrames(
  port: number, path: string, headers: string[], frames: Buffer[], deadlineMs = 1500,
): Promise<{ outcome: string; sent: number }> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let sent = 0;
    let done = false;
    const finish = (outcome: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ outcome, sent });
    };
    const timer = setTimeout(() => finish(upgraded ? 'open' : 'timeout'), deadlineMs);
    sock.on('connect', () => sock.write(
      `GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
      headers.map((h) => `${h}\r\n`).join('') + '\r\n',
    ));
    sock.on('data', async (d: Buffer) => {
      if (upgraded) return;
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = /^HTTP\/1\.1 (\d{3})/.exec(buf.toString('latin1', 0, 20))?.[1] ?? 'garbled';
      if (status !== '101') return finish(status);
      upgraded = true;
      for (const f of frames) {
        if (done || sock.destroyed) break;
        sock.write(f);
        sent++;
        if (sent % 8 === 0) await new Promise((r) => setImmediate(r));
      }
    });
    sock.on('error', () => finish(upgraded ? 'reset' : 'refused-reset'));
    sock.on('close', () => finish(upgraded ? 'closed' : 'closed-before-upgrade'));
  });
}

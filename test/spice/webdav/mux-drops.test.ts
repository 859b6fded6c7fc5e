// spice-webdavd's mux framing (frames cut anywhere, negative ids, n = 0 closes, replies ≤ 65535 bytes per frame) and
// the drop box the guest's fetch loop pulls dropped files from (poll, chunked GET, done/failed, cancel).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { DropBox, EMPTY_FS, FileTransferError, MuxParser, dropName, encodeMuxFrame, type FileSource } from './exports.ts';
import { Guest } from './harness.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('mux frames parse from a stream cut at every byte, keyed by signed 64-bit ids', () => {
  const frames = [
    encodeMuxFrame(-1n, Buffer.from('a')), encodeMuxFrame(0x7fff_ffff_ffff_ffffn, randomBytes(65535)),
    encodeMuxFrame(-0x8000_0000_0000_0000n, new Uint8Array(0)), encodeMuxFrame(42n, Buffer.from('xyz')),
  ];
  const all = Buffer.concat(frames);
  for (const step of [1, 7, 10, 11, 65545, all.length]) {
    const p = new MuxParser();
    const got = [];
    for (let at = 0; at < all.length; at += step) got.push(...p.push(all.subarray(at, at + step)));
    assert.deepEqual(got.map((f) => [f.id, f.data.length]),
      [[-1n, 1], [0x7fff_ffff_ffff_ffffn, 65535], [-0x8000_0000_0000_0000n, 0], [42n, 3]], `step ${step}`);
  }
  assert.throws(() => encodeMuxFrame(1n, new Uint8Array(65536)), RangeError);
});

test('connections: replies carry the id in frames of ≤ 64 KiB in all; n = 0 closes; unknown id with n = 0 ignored',
  async () => {
    const big = randomBytes(200_000);
    const fs = { ...EMPTY_FS,
      stat: async (p: readonly string[]) => ({ name: p[0] ?? '', type: p.length ? 'file' as const : 'dir' as const,
        size: p.length ? big.length : 0, mtimeMs: 0 }),
      read: async (_p: readonly string[], o: number, l: number) => big.subarray(o, o + l) };
    const g = new Guest(fs);
    let maxFrame = 0;
    const write = g.mux['_port'].write;
    g.mux['_port'].write = (b: Uint8Array) => {
      maxFrame = Math.max(maxFrame, b.length - 10);
      write(b);
    };
    g.close(99n); // unknown, ignored
    const [a, b] = await Promise.all([g.request(-5n, 'GET', '/f'), g.request(6n, 'GET', '/f')]);
    assert.equal(sha(a.body), sha(big));
    assert.equal(sha(b.body), sha(big));
    assert.equal(maxFrame, 65536 - 10, 'a full reply frame fills one 64 KiB port message');
    assert.equal(g.mux.connections, 2);
    g.close(-5n);
    assert.equal(g.mux.connections, 1);
    g.mux.reset();
    assert.equal(g.mux.connections, 0);
  });

function source(data: Buffer, name: string): FileSource {
  return { name, size: data.length, read: async (o, l) => data.subarray(o, o + l) };
}

test('drop box: the guest polls, fetches (chunked), confirms; a cancel breaks the stream; failures carry why',
  async () => {
    const box = new DropBox();
    const g = new Guest(EMPTY_FS, box.handle);
    assert.equal(box.ready, false);
    const data = randomBytes(1_000_000);
    const progress: number[] = [];
    // The guest polls first and waits; the offer wakes it.
    const poll = g.request(1n, 'GET', '/.oriel-drops/next');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(box.ready, true);
    const landed = box.offer(source(data, 'a/b\u0001.bin'), { onProgress: (p) => progress.push(p.sent) });
    const next = await poll;
    assert.equal(next.status, 200);
    const [id, size, name] = next.body.toString().trim().split('/');
    assert.equal(Number(size), data.length);
    assert.equal(name, dropName('a/b\u0001.bin'));
    assert.equal(name, 'a_b_.bin');
    const file = await g.request(2n, 'GET', `/.oriel-drops/${id}`);
    assert.equal(file.headers.get('transfer-encoding'), 'chunked');
    assert.equal(sha(file.body), sha(data));
    assert.equal((await g.request(3n, 'POST', `/.oriel-drops/${id}?status=done`, {}, 'a_b_ (1).bin')).status, 204);
    assert.equal(await landed, 'a_b_ (1).bin');
    assert.equal(progress.at(-1), data.length);
    assert.equal((await g.request(2n, 'GET', `/.oriel-drops/${id}`)).status, 404, 'a drop is fetched once');

    // Cancelled while the guest reads it: the chunked stream breaks, the offer rejects with 'cancelled'.
    const ac = new AbortController();
    const big = randomBytes(8 * 1024 * 1024);
    const offered = box.offer(source(big, 'big.bin'), {
      signal: ac.signal, onProgress: (p) => { if (p.sent > 1_000_000) ac.abort(); },
    });
    const offeredRejects = assert.rejects(offered,
      (e: FileTransferError) => e instanceof FileTransferError && e.code === 'cancelled');
    const n2 = await g.request(4n, 'GET', '/.oriel-drops/next');
    const id2 = n2.body.toString().split('/')[0];
    const r2 = await g.request(5n, 'GET', `/.oriel-drops/${id2}`);
    assert.equal(r2.broken, true);
    assert.ok(r2.body.length < big.length);
    await offeredRejects;

    // The guest reports a failure: its words reach the caller.
    const failed = assert.rejects(box.offer(source(Buffer.from('x'), 'c.txt')),
      (e: FileTransferError) => e.code === 'no-space' && /No space left/.test(e.message));
    const id3 = (await g.request(6n, 'GET', '/.oriel-drops/next')).body.toString().split('/')[0];
    await g.request(6n, 'GET', `/.oriel-drops/${id3}`);
    await g.request(6n, 'POST', `/.oriel-drops/${id3}?status=failed`, {}, 'curl: (23) No space left on device');
    await failed;
    // A change of the shared folder wakes a waiting poll at once (204): the guest reads OPTIONS again.
    const t0 = Date.now();
    const waiting = g.request(7n, 'GET', '/.oriel-drops/next');
    await new Promise((r) => setTimeout(r, 20));
    box.wake();
    assert.equal((await waiting).status, 204);
    assert.ok(Date.now() - t0 < 2000, 'answered before the poll\'s 10 s');
    // The channel goes away: pending drops fail at once.
    const pending = box.offer(source(Buffer.from('y'), 'd.txt'));
    box.reset();
    await assert.rejects(pending, (e: FileTransferError) => e.code === 'agent-gone');
  });

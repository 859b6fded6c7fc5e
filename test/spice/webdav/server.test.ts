// The WebDAV server of the SPICE core over a real folder (the Node backend), driven through the spice-webdavd mux as
// the guest would: path escapes ("..", encoded names, symbolic links) refused, read-only refusing writes with 403,
// byte ranges, PUT streamed in small frames (Content-Length and chunked) and a broken upload leaving the old file.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { nodeDavFs } from '../../../src/spice-node/webdav-fs.ts';
import { parseRange } from './exports.ts';
import { Guest } from './harness.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
let base: string;
let root: string;
let outside: string;

before(() => {
  base = mkdtempSync(join(tmpdir(), 'oriel-webdav-'));
  root = join(base, 'share');
  outside = join(base, 'secret');
  mkdirSync(join(root, 'sub dir'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, 'passwd'), 'top secret');
  writeFileSync(join(root, 'hello.txt'), 'hello, guest\n');
  writeFileSync(join(root, 'sub dir', 'ünï & <x>.bin'), randomBytes(1000));
  symlinkSync(outside, join(root, 'escape-dir'));
  symlinkSync(join(outside, 'passwd'), join(root, 'escape-file'));
  symlinkSync('hello.txt', join(root, 'inner-link'));
});
after(() => rmSync(base, { recursive: true, force: true }));

describe('webdav server', () => {
  test('OPTIONS, PROPFIND depth 0 and 1 with encoded hrefs, GET', async () => {
    const g = new Guest(await nodeDavFs(root));
    const o = await g.request(1n, 'OPTIONS', '/');
    assert.equal(o.status, 200);
    assert.match(o.headers.get('dav')!, /1, 2/);
    const d0 = await g.request(1n, 'PROPFIND', '/', { Depth: '0' });
    assert.equal(d0.status, 207);
    assert.equal(d0.body.toString().match(/<D:response>/g)!.length, 1);
    const d1 = await g.request(1n, 'PROPFIND', '/sub%20dir/', { Depth: '1' }, '<?xml version="1.0"?><propfind/>');
    assert.equal(d1.status, 207);
    const xml = d1.body.toString();
    assert.match(xml, /<D:href>\/sub%20dir\/<\/D:href>/);
    assert.match(xml, /<D:href>\/sub%20dir\/%C3%BCn%C3%AF%20&#38;%20%3Cx%3E\.bin<\/D:href>/);
    assert.match(xml, /<D:getcontentlength>1000<\/D:getcontentlength>/);
    const root1 = (await g.request(1n, 'PROPFIND', '/', { Depth: '1' })).body.toString();
    assert.doesNotMatch(root1, /escape/, 'links leaving the folder are not listed');
    assert.match(root1, /inner-link/);
    const get = await g.request(1n, 'GET', '/hello.txt');
    assert.equal(get.status, 200);
    assert.equal(get.body.toString(), 'hello, guest\n');
    assert.equal((await g.request(1n, 'GET', '/inner-link')).body.toString(), 'hello, guest\n');
    assert.equal((await g.request(1n, 'GET', '/nope')).status, 404);
  });

  test('paths outside the shared folder are refused: .., encoded .., encoded /, NUL, symbolic links', async () => {
    const g = new Guest(await nodeDavFs(root));
    for (const p of ['/../secret/passwd', '/%2e%2e/secret/passwd', '/sub%20dir/%2E%2E/%2E%2E/secret/passwd',
      '/..%2Fsecret%2Fpasswd', '/%2F..%2Fsecret', '/a%5C..%5C..%5Csecret', '/hello.txt%00.jpg',
      'http://localhost:9843/../secret/passwd']) {
      const r = await g.request(2n, 'GET', p);
      assert.ok(r.status === 403 || r.status === 400, `${p}: ${r.status}`);
      assert.doesNotMatch(r.body.toString(), /top secret/);
    }
    assert.equal((await g.request(2n, 'GET', '/%zz')).status, 400);
    for (const p of ['/escape-file', '/escape-dir/passwd']) {
      const r = await g.request(2n, 'GET', p);
      assert.equal(r.status, 403, p);
    }
    assert.equal((await g.request(2n, 'PROPFIND', '/escape-dir/', { Depth: '1' })).status, 403);
    assert.equal((await g.request(2n, 'PUT', '/escape-dir/new', {}, 'x')).status, 403);
    assert.equal((await g.request(2n, 'PUT', '/escape-file', {}, 'x')).status, 403);
    assert.equal((await g.request(2n, 'DELETE', '/escape-dir/passwd')).status, 403);
    const mv = await g.request(2n, 'MOVE', '/hello.txt', { Destination: 'http://localhost:9843/escape-dir/h' });
    assert.equal(mv.status, 403);
    const cp = await g.request(2n, 'COPY', '/hello.txt', { Destination: '/%2e%2e/secret/h' });
    assert.equal(cp.status, 403);
    assert.deepEqual(readdirSync(outside), ['passwd']);
    assert.equal(readFileSync(join(outside, 'passwd'), 'utf8'), 'top secret');
  });

  test('read-only: every write is 403 and nothing changes; reads work', async () => {
    const g = new Guest(await nodeDavFs(root, { readOnly: true }));
    const before = readdirSync(root).sort();
    const tries: [string, string, Record<string, string>, string?][] = [
      ['PUT', '/hello.txt', {}, 'overwritten'], ['PUT', '/new.txt', {}, 'x'], ['DELETE', '/hello.txt', {}],
      ['MKCOL', '/newdir', {}], ['MOVE', '/hello.txt', { Destination: '/moved.txt' }],
      ['COPY', '/hello.txt', { Destination: '/copied.txt' }], ['LOCK', '/locked.txt', {}, '<lockinfo/>'],
      ['PROPPATCH', '/hello.txt', {}, '<propertyupdate/>'],
    ];
    for (const [m, p, h, b] of tries) assert.equal((await g.request(3n, m, p, h, b)).status, 403, `${m} ${p}`);
    assert.deepEqual(readdirSync(root).sort(), before);
    assert.equal(readFileSync(join(root, 'hello.txt'), 'utf8'), 'hello, guest\n');
    assert.equal((await g.request(3n, 'GET', '/hello.txt')).status, 200);
  });

  test('GET with Range: 206 with Content-Range, suffix and open ranges, 416', async () => {
    const data = randomBytes(100_000);
    writeFileSync(join(root, 'range.bin'), data);
    const g = new Guest(await nodeDavFs(root));
    const r = await g.request(4n, 'GET', '/range.bin', { Range: 'bytes=1000-1999' });
    assert.equal(r.status, 206);
    assert.equal(r.headers.get('content-range'), 'bytes 1000-1999/100000');
    assert.deepEqual(r.body, data.subarray(1000, 2000));
    assert.deepEqual((await g.request(4n, 'GET', '/range.bin', { Range: 'bytes=-10' })).body, data.subarray(-10));
    assert.deepEqual((await g.request(4n, 'GET', '/range.bin', { Range: 'bytes=99990-' })).body, data.subarray(99990));
    const bad = await g.request(4n, 'GET', '/range.bin', { Range: 'bytes=100000-' });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers.get('content-range'), 'bytes */100000');
    const head = await g.request(4n, 'HEAD', '/range.bin');
    assert.equal(head.headers.get('content-length'), '100000');
    assert.deepEqual(parseRange('bytes=0-0,5-6', 10), undefined);
    assert.deepEqual(parseRange('items=1-2', 10), undefined);
  });

  test('PUT streamed in small frames (Content-Length and chunked), broken upload keeps the old file', async () => {
    const g = new Guest(await nodeDavFs(root));
    const data = randomBytes(3 * 1024 * 1024 + 17);
    g.send(5n, `PUT /sub%20dir/big.bin HTTP/1.1\r\nHost: x\r\nContent-Length: ${data.length}\r\n\r\n`);
    g.send(5n, data, 1000); // 3000+ frames of 1000 bytes
    assert.equal((await g.response(5n)).status, 201);
    assert.equal(sha(readFileSync(join(root, 'sub dir', 'big.bin'))), sha(data));

    const data2 = randomBytes(200_000);
    const chunked = 'PUT /sub%20dir/big.bin HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n';
    const parts: Buffer[] = [Buffer.from(chunked)];
    for (let at = 0; at < data2.length; at += 70_000) {
      const c = data2.subarray(at, at + 70_000);
      parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'));
    }
    parts.push(Buffer.from('0\r\n\r\n'));
    g.send(5n, Buffer.concat(parts), 777);
    assert.equal((await g.response(5n)).status, 204, 'replaced');
    assert.equal(sha(readFileSync(join(root, 'sub dir', 'big.bin'))), sha(data2));

    // The guest connection closes halfway through the body: the old file stays, no temporary file is left.
    g.send(6n, 'PUT /sub%20dir/big.bin HTTP/1.1\r\nContent-Length: 100000\r\n\r\n');
    g.send(6n, randomBytes(50_000));
    g.close(6n);
    for (let i = 0; i < 200 && readdirSync(join(root, 'sub dir')).some((n) => n.startsWith('.oriel-upload-')); i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(sha(readFileSync(join(root, 'sub dir', 'big.bin'))), sha(data2));
    assert.deepEqual(readdirSync(join(root, 'sub dir')).filter((n) => n.startsWith('.')), []);
    // A malformed request gets 400 on its connection; other connections go on.
    g.send(7n, 'NOT HTTP\r\n\r\n');
    assert.equal((await g.response(7n)).status, 400);
    assert.equal((await g.request(8n, 'GET', '/hello.txt')).status, 200);
  });

  test('MKCOL, COPY, MOVE (Overwrite), DELETE, LOCK/UNLOCK as davfs2 uses them', async () => {
    const g = new Guest(await nodeDavFs(root));
    assert.equal((await g.request(9n, 'MKCOL', '/d1')).status, 201);
    assert.equal((await g.request(9n, 'MKCOL', '/d1')).status, 405);
    assert.equal((await g.request(9n, 'MKCOL', '/nope/d2')).status, 409);
    assert.equal((await g.request(9n, 'PUT', '/nope/f', {}, 'x')).status, 409);
    const lock = await g.request(9n, 'LOCK', '/d1/new.txt', { Timeout: 'Second-60' }, '<lockinfo/>');
    assert.equal(lock.status, 201);
    assert.match(lock.headers.get('lock-token')!, /^<opaquelocktoken:/);
    assert.equal((await g.request(9n, 'PUT', '/d1/new.txt', {}, 'abc')).status, 204);
    assert.equal((await g.request(9n, 'UNLOCK', '/d1/new.txt', { 'Lock-Token': lock.headers.get('lock-token')! }))
      .status, 204);
    assert.equal((await g.request(9n, 'COPY', '/d1', { Destination: '/d2' })).status, 201);
    assert.equal(readFileSync(join(root, 'd2', 'new.txt'), 'utf8'), 'abc');
    assert.equal((await g.request(9n, 'COPY', '/d1', { Destination: '/d1/inside' })).status, 403);
    assert.equal((await g.request(9n, 'MOVE', '/d2/new.txt', { Destination: '/d1/new.txt', Overwrite: 'F' }))
      .status, 412);
    assert.equal((await g.request(9n, 'MOVE', '/d2/new.txt', { Destination: '/d1/new.txt' })).status, 204);
    assert.deepEqual(readdirSync(join(root, 'd2')), []);
    assert.equal((await g.request(9n, 'DELETE', '/d2')).status, 204);
    assert.equal((await g.request(9n, 'DELETE', '/d2')).status, 404);
    assert.equal((await g.request(9n, 'DELETE', '/')).status, 403);
    rmSync(join(root, 'd1'), { recursive: true });
  });
});

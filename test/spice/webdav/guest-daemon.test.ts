// The desktop image's WebDAV daemon (src/vm/images/webdavd/oriel-webdavd.c) on this host, no guest: compiled as the
// image builder does, run against a unix socket standing in for the virtio port. First the core's real WebDAV server
// and drop box behind the socket (drops land in the folder given as ~/Downloads with the same sha256, a name taken
// gets " (1)" after it, a file bigger than the free space is refused, TCP connections are relayed, and all of them
// close when the SPICE client goes away); then a hostile client: malformed answers and mux frames close that
// transfer, never the daemon, and no name leaves the folder.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { nodeFileSource } from '../../../src/spice-node/files.ts';
import { nodeDavFs } from '../../../src/spice-node/webdav-fs.ts';
import { buildWebdavd } from '../../../src/vm/images/webdavd.ts';
import {
  DropBox, FileTransferError, MuxParser, WebdavMux, WebdavServer, encodeMuxFrame, type FileSource,
} from './exports.ts';

const MiB = 2 ** 20;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
let dir: string;
let downloads: string;
let shareDir: string;
let portServer: Server;
let tcpPort: number;
let daemon: ChildProcess;
let log = '';
let onConn: (s: Socket) => void = (s) => s.destroy();
let current: Socket | undefined;

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; daemon log:\n${log}`);
    await sleep(20);
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'oriel-webdavd-'));
  downloads = join(dir, 'home', 'Downloads');
  shareDir = join(dir, 'share');
  mkdirSync(downloads, { recursive: true });
  mkdirSync(shareDir);
  const bin = join(dir, 'oriel-webdavd');
  await buildWebdavd(bin);
  const sock = join(dir, 'port.sock');
  portServer = createServer((s) => {
    current = s;
    onConn(s);
  });
  await new Promise<void>((r) => portServer.listen(sock, r));
  tcpPort = await freePort();
  const owner = `${process.getuid!()}:${process.getgid!()}`;
  daemon = spawn(bin, ['-p', sock, '-l', String(tcpPort), '-d', downloads, '-u', owner, '-s', join(dir, 'status')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  daemon.stderr!.on('data', (d) => (log += String(d)));
  daemon.on('exit', (c, s) => (log += `exited: ${c} ${s}\n`));
});

after(async () => {
  daemon?.kill();
  current?.destroy();
  await new Promise((r) => portServer?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

/** An HTTP exchange over a TCP connection to the daemon: the response head and body (Content-Length). */
async function tcpRequest(s: Socket, req: string): Promise<{ head: string; body: Buffer }> {
  let buf = Buffer.alloc(0);
  const onData = (d: Buffer) => (buf = Buffer.concat([buf, d]));
  s.on('data', onData);
  s.write(req);
  try {
    return await until('the relayed response', () => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const head = buf.subarray(0, end).toString('latin1');
      const len = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      return buf.length >= end + 4 + len ? { head, body: buf.subarray(end + 4, end + 4 + len) } : undefined;
    });
  } finally {
    s.off('data', onData);
  }
}

test('drops land in Downloads through the real drop box; TCP connections are relayed and closed with the client',
  async () => {
    const box = new DropBox();
    const server = new WebdavServer(await nodeDavFs(shareDir));
    server.special = box.handle;
    server.optionsHeaders = { 'X-Oriel-Share': 'folder' };
    onConn = (s) => {
      const mux = new WebdavMux({ write: (b) => s.write(b), buffered: () => s.writableLength },
        (st, sink) => server.serveConnection(st, sink));
      s.on('data', (d) => mux.data(d));
      s.on('close', () => (mux.reset(), box.reset()));
    };
    await until('the daemon polling for drops', () => (box.ready ? true : undefined));
    assert.equal(readFileSync(join(dir, 'status'), 'utf8').trim(), 'polling');

    const data = randomBytes(8 * MiB + 12345);
    writeFileSync(join(dir, 'a b.bin'), data);
    for (const expected of ['a b.bin', 'a b.bin (1)']) {
      const src = await nodeFileSource(join(dir, 'a b.bin'));
      let last = 0;
      assert.equal(await box.offer(src, { onProgress: (p) => (last = p.sent) }), expected);
      await src.close();
      assert.equal(last, data.length);
      assert.equal(sha(readFileSync(join(downloads, expected))), sha(data));
    }
    // Bigger than the free space: refused before any byte moves.
    const huge: FileSource = { name: 'huge.iso', size: 2 ** 50, read: async () => new Uint8Array(0) };
    await assert.rejects(box.offer(huge), (e: unknown) => e instanceof FileTransferError && e.code === 'no-space');
    assert.deepEqual(readdirSync(downloads).sort(), ['a b.bin', 'a b.bin (1)']);

    // A TCP client (davfs2's way): OPTIONS, then a file of many frames, on one connection.
    const big = randomBytes(3 * MiB);
    writeFileSync(join(shareDir, 'big.bin'), big);
    const s = connect(tcpPort, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    const opt = await tcpRequest(s, 'OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(opt.head, /^HTTP\/1\.1 200/);
    assert.match(opt.head, /X-Oriel-Share: folder/);
    const get = await tcpRequest(s, 'GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(sha(get.body), sha(big));
    // The SPICE client goes away: the relayed connection ends.
    const ended = new Promise((r) => s.once('close', r));
    current!.destroy();
    await ended;
  });

interface Req { id: bigint; method: string; target: string; body: string }

test('malformed answers and frames close the transfer, never the daemon; names stay inside Downloads', async () => {
  const reqs: Req[] = [];
  const closed = new Set<bigint>();
  let sock!: Socket;
  onConn = (s) => {
    sock = s;
    const p = new MuxParser();
    const pending = new Map<bigint, Buffer>();
    s.on('data', (d) => {
      for (const f of p.push(d)) {
        if (!f.data.length) {
          closed.add(f.id);
          continue;
        }
        const b = Buffer.concat([pending.get(f.id) ?? Buffer.alloc(0), f.data]);
        const end = b.indexOf('\r\n\r\n');
        const head = end < 0 ? '' : b.subarray(0, end).toString();
        const len = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (end < 0 || b.length < end + 4 + len) {
          pending.set(f.id, b);
          continue;
        }
        pending.delete(f.id);
        const [method, target] = head.split(' ');
        reqs.push({ id: f.id, method: method!, target: target!, body: b.subarray(end + 4).toString() });
      }
    });
  };
  const next = async (method: string, target: string): Promise<Req> => {
    const r = await until(`${method} ${target}`, () => reqs.shift(), 15_000);
    assert.equal(`${r.method} ${r.target}`, `${method} ${target}`);
    return r;
  };
  const send = (id: bigint, text: string | Buffer, piece = 65535) => {
    const b = Buffer.from(text);
    for (let at = 0; at < b.length; at += piece) sock.write(encodeMuxFrame(id, b.subarray(at, at + piece)));
  };
  const ok = (body: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const offer = async (text: string) => send((await next('GET', '/.oriel-drops/next')).id, ok(text));

  // A status line that is none: that poll is closed, the next one comes.
  let r = await next('GET', '/.oriel-drops/next');
  send(r.id, 'garbage\r\n\r\n');
  await until('the poll closed', () => (closed.has(r.id) ? true : undefined));
  // A name with a path and a control character: only its last component, cleaned, in Downloads. The response comes
  // one byte per frame, with frames of unknown connections (data, and n = 0) in between.
  await offer('7/5/../../etc/evil\x01name\n');
  r = await next('GET', '/.oriel-drops/7');
  for (const byte of Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n')) {
    send(r.id, Buffer.from([byte]));
    sock.write(encodeMuxFrame(999n, Buffer.from('junk')));
    sock.write(encodeMuxFrame(-5n, new Uint8Array(0)));
  }
  let rep = await next('POST', '/.oriel-drops/7?status=done');
  assert.equal(rep.body, 'evil_name');
  send(rep.id, 'HTTP/1.1 204 No Content\r\n\r\n');
  assert.equal(readFileSync(join(downloads, 'evil_name'), 'utf8'), 'hello');
  // A broken chunk, more bytes than offered, a head that never ends, a cut response: each fails with its reason.
  const bad: [string, (id: bigint) => void, RegExp][] = [
    ['x.bin', (id) => send(id, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), /malformed chunk/],
    ['y.bin', (id) => send(id, ok('0123456789')), /more bytes than announced/],
    ['z.bin', (id) => send(id, `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70_000)}`), /head too large/],
    ['w.bin', (id) => (send(id, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe'), sock.write(encodeMuxFrame(id,
      new Uint8Array(0)))), /closed the connection before the end/],
  ];
  let n = 8;
  for (const [name, answer, why] of bad) {
    await offer(`${n}/5/${name}\n`);
    r = await next('GET', `/.oriel-drops/${n}`);
    answer(r.id);
    rep = await next('POST', `/.oriel-drops/${n}?status=failed`);
    assert.match(rep.body, why);
    send(rep.id, 'HTTP/1.1 204 No Content\r\n\r\n');
    n++;
  }
  // ".." is no name: "file".
  await offer(`${n}/5/..\n`);
  r = await next('GET', `/.oriel-drops/${n}`);
  send(r.id, ok('hello'));
  rep = await next('POST', `/.oriel-drops/${n}?status=done`);
  assert.equal(rep.body, 'file');
  send(rep.id, 'HTTP/1.1 204 No Content\r\n\r\n');
  await next('GET', '/.oriel-drops/next');
  assert.equal(daemon.exitCode, null, log);
  assert.deepEqual(readdirSync(downloads).sort(), ['a b.bin', 'a b.bin (1)', 'evil_name', 'file']);
  assert.deepEqual(readdirSync(dir).sort(), ['a b.bin', 'home', 'oriel-webdavd', 'port.sock', 'share', 'status']);
  assert.ok(!existsSync(join(dir, 'etc')));
});

// OpenCL by API remoting (src/remoting): the helper's request decoder under random and hostile input (no QEMU),
// then a tiny-opencl guest whose clinfo lists the remoted host device and whose vector addition, SAXPY and matrix
// multiplication (oriel-cl-demo, the same binary run on the host directly) give the host's results.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Session } from '../../src/remoting/session.ts';
import { CL, FrameSplitter, Op, Reader, Writer, encodeRequest } from '../../src/remoting/protocol.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { ensureTinyOpenclImage } from '../helpers/images.ts';

const run = promisify(execFile);

/** Sends one request to a session; its status and result reader. */
function call(s: Session, op: number, args: Writer | Buffer, id = 7): { status: number; r: Reader } {
  const frame = encodeRequest(id, op, Buffer.isBuffer(args) ? args : args.done());
  const resp = s.handle(frame.subarray(4));
  assert.equal(resp.readUInt32LE(0), resp.length - 4, 'a whole frame');
  assert.equal(resp.readUInt32LE(4), id, 'the request id comes back');
  return { status: resp.readInt32LE(8), r: new Reader(resp.subarray(12)) };
}

describe('OpenCL remoting: the helper', () => {
  const s = new Session();
  after(() => s.close());
  let dev: bigint, ctx: bigint, queue: bigint, mem: bigint;

  test('a context, a queue and a buffer; bounds, kinds and sessions are checked', () => {
    const ids = call(s, Op.DEVICE_IDS, new Writer().u64(0xffffffffn));
    assert.equal(ids.status, CL.SUCCESS);
    assert.ok(ids.r.u32() >= 1);
    dev = ids.r.u64();
    ctx = call(s, Op.CREATE_CONTEXT, new Writer().u32(1).u64(dev)).r.u64();
    queue = call(s, Op.CREATE_QUEUE, new Writer().u64(ctx).u64(dev).u64(0n)).r.u64();
    const b = call(s, Op.CREATE_BUFFER, new Writer().u64(ctx).u64(1n).u64(64n).bytes(Buffer.alloc(0)));
    assert.equal(b.status, CL.SUCCESS);
    mem = b.r.u64();
    const write = (offset: bigint, n: number) =>
      call(s, Op.WRITE_BUFFER, new Writer().u64(queue).u64(mem).u64(offset).bytes(Buffer.alloc(n, 1))).status;
    assert.equal(write(0n, 64), CL.SUCCESS);
    assert.equal(write(1n, 64), CL.INVALID_VALUE, 'past the end');
    assert.equal(write(2n ** 64n - 1n, 8), CL.INVALID_VALUE, 'an offset that would wrap');
    const read = (offset: bigint, n: bigint) =>
      call(s, Op.READ_BUFFER, new Writer().u64(queue).u64(mem).u64(offset).u64(n)).status;
    assert.equal(read(60n, 8n), CL.INVALID_VALUE);
    assert.equal(read(0n, 64n), CL.SUCCESS);
    // A queue's token where a buffer's is due, a token of another session, a made-up one.
    assert.equal(call(s, Op.MEM_INFO, new Writer().u64(queue).u32(0x1102)).status, CL.INVALID_MEM_OBJECT);
    const foreign = (mem & ~(0xffffn << 48n)) | (((s.handles.session + 1n) & 0xffffn) << 48n);
    assert.equal(call(s, Op.MEM_INFO, new Writer().u64(foreign).u32(0x1102)).status, CL.INVALID_MEM_OBJECT);
    assert.equal(call(s, Op.MEM_INFO, new Writer().u64(mem).u32(0x1103)).status, CL.INVALID_VALUE, 'no host pointers');
  });

  test('sources that include files and options that name them are refused', () => {
    const prog = (src: string) => call(s, Op.CREATE_PROGRAM, new Writer().u64(ctx).bytes(Buffer.from(src)));
    assert.equal(prog('#include "/etc/passwd"\n').status, CL.INVALID_VALUE);
    assert.equal(prog('# /* x */ include </etc/shadow>\n').status, CL.INVALID_VALUE);
    assert.equal(prog('#\\\ninclude "x"\n').status, CL.INVALID_VALUE);
    const ok = prog('__kernel void k(__global int *a) { a[0] = 1; }');
    assert.equal(ok.status, CL.SUCCESS);
    const p = ok.r.u64();
    const build = (opts: string) => call(s, Op.BUILD_PROGRAM, new Writer().u64(p).bytes(Buffer.from(opts))).status;
    assert.equal(build('-I /etc'), CL.INVALID_BUILD_OPTIONS);
    assert.equal(build('-cl-std=CL1.2 -include /etc/passwd'), CL.INVALID_BUILD_OPTIONS);
    assert.equal(build(''), CL.SUCCESS);
  });

  test('fuzz: random and mutated requests get error codes, never a crash', () => {
    let seed = 0x2545f491;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    const valid = [
      encodeRequest(1, Op.READ_BUFFER, new Writer().u64(queue).u64(mem).u64(0n).u64(64n).done()),
      encodeRequest(2, Op.SET_KERNEL_ARG, new Writer().u64(mem).u32(0).u32(1).u64(8n).bytes(Buffer.alloc(8)).done()),
      encodeRequest(3, Op.ENQUEUE_KERNEL, Buffer.alloc(8 + 8 + 4 + 72)),
      encodeRequest(4, Op.CREATE_CONTEXT, new Writer().u32(1).u64(dev).done()),
    ].map((f) => f.subarray(4));
    const before = s.handles.count;
    for (let i = 0; i < 3000; i++) {
      let body: Buffer;
      if (i % 2) {
        body = Buffer.from(valid[rnd(valid.length)]!);
        for (let k = 1 + rnd(4); k > 0; k--) body[8 + rnd(body.length - 8)] = rnd(256);
        if (rnd(4) === 0) body = body.subarray(0, 8 + rnd(body.length - 8));
      } else {
        body = Buffer.alloc(8 + rnd(80));
        for (let k = 0; k < body.length; k++) body[k] = rnd(256);
        body.writeUInt16LE(rnd(26), 4);
      }
      const resp = s.handle(body);
      assert.ok(resp.length >= 12 && resp.readUInt32LE(0) === resp.length - 4);
      assert.ok(resp.readInt32LE(8) <= 0, 'a status is an OpenCL code');
    }
    assert.ok(s.handles.count - before < 1600, 'mutated requests make no more objects than they may');
    // The framing: a zero or oversized length is refused; split frames are joined.
    assert.throws(() => new FrameSplitter().push(Buffer.from([0, 0, 0, 0])));
    assert.throws(() => new FrameSplitter().push(Buffer.from([0xff, 0xff, 0xff, 0xff])));
    const f = new FrameSplitter();
    const frame = encodeRequest(9, Op.FINISH, new Writer().u64(queue).done());
    assert.deepEqual(f.push(frame.subarray(0, 5)), []);
    assert.equal(f.push(frame.subarray(5)).length, 1);
  });
});

describe('OpenCL remoting: a tiny-opencl guest', () => {
  let t: TestServer;
  let hostOut: string;
  const build = mkdtempSync(join(tmpdir(), 'oriel-ocl-'));

  before(async () => {
    await ensureTinyOpenclImage();
    // The same demo the image carries, run on the host against its OpenCL directly.
    await run('sh', [join(import.meta.dirname, '../../src/remoting/guest/build.sh'), build],
      { env: { ...process.env, NODE: process.execPath } });
    hostOut = (await run(join(build, 'oriel-cl-demo'), ['128'])).stdout;
    t = await startTestServer();
    const c = await t.admin.post('/api/vms', { name: 'ocl', image: 'tiny-opencl', memoryMiB: 192, opencl: true });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    assert.equal(c.body.opencl, true);
    assert.equal((await t.admin.post('/api/vms/ocl/start')).body.state, 'running');
  });
  after(async () => {
    rmSync(build, { recursive: true, force: true });
    await t?.destroy();
  });
  const exec = (argv: string[]) => t.admin.post('/api/vms/ocl/exec', { argv, timeoutSec: 60 });

  test('clinfo in the guest lists the remoted platform and the host device', async () => {
    const host = (await run('clinfo', ['-l'])).stdout;
    const device = host.match(/Device #0: (.+)/)![1]!.trim();
    const r = await exec(['clinfo', '-l']);
    assert.equal(r.body.exitCode, 0, JSON.stringify(r.body));
    assert.match(r.body.stdout, /Platform #0: Oriel remote: /);
    assert.ok(r.body.stdout.includes(device), r.body.stdout);
  });

  test("vector addition, SAXPY and a matrix multiplication give the host's results; errors come back", async () => {
    const r = await exec(['oriel-cl-demo', '128']);
    assert.equal(r.body.exitCode, 0, JSON.stringify(r.body));
    const lines = (out: string) => out.split('\n').filter((l) => /^(vadd|saxpy|matmul|badbuild|outofrange) /.test(l));
    assert.equal(lines(r.body.stdout).length, 5, r.body.stdout);
    assert.deepEqual(lines(r.body.stdout), lines(hostOut));
    assert.ok(r.body.stdout.includes(`badbuild ${CL.BUILD_PROGRAM_FAILURE}\n`));
    assert.ok(r.body.stdout.includes('buildlog present\n'));
  });
});

// OpenCL by API remoting (src/remoting): the helper's request decoder under random and hostile input and its
// zero-copy window (no QEMU), then two tiny-opencl guests at once: clinfo lists the remoted host device; vector
// addition, SAXPY, a 1024×1024 matrix multiplication and zero-copy buffers (oriel-cl-demo, the same binary run on the
// host directly) give the host's results; a token of one VM is refused in the other; hostile frames from a guest
// leave its helper running.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createServer } from 'node:net';
import { Session } from '../../src/remoting/session.ts';
import {
  CL, FrameSplitter, Op, Reader, Writer, encodeNotice, encodeRequest, encodeResponse,
} from '../../src/remoting/protocol.ts';
import { Window } from '../../src/remoting/window.ts';
import { othersReach } from '../../src/remoting/index.ts';
import { clApi } from '../../src/remoting/cl.ts';
import { vmPaths } from '../../src/vm/paths.ts';
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

const scratch = mkdtempSync(join(tmpdir(), 'oriel-ocl-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const build = join(scratch, 'build');
let built: Promise<unknown> | undefined;
/** The guest ICD and oriel-cl-demo, built for the host (build.sh), once. */
const buildGuest = () => (built ??= run('sh', [join(import.meta.dirname, '../../src/remoting/guest/build.sh'), build],
  { env: { ...process.env, NODE: process.execPath } }));

/** A 1 MiB window file, as the VM manager makes it. */
function windowFile(): Window {
  const f = join(scratch, 'window');
  const fd = openSync(f, 'w', 0o600);
  ftruncateSync(fd, 1 << 20);
  closeSync(fd);
  return Window.open(f);
}

describe('OpenCL remoting: the helper', () => {
  const win = windowFile();
  const s = new Session(clApi(), win);
  after(() => {
    s.close();
    win.close();
  });
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
    // HELLO: which helper and link (the notice's numbers: protocol.ts).
    s.link = 3;
    const hello = call(s, Op.HELLO, Buffer.alloc(0)).r;
    assert.deepEqual([hello.u64(), hello.u32()], [s.helper, 3]);
    assert.notEqual(new Session(clApi()).helper, s.helper);
  });

  test("a guest process's objects end when another process says HELLO (the port's next opener), not before", () => {
    const t = new Session(clApi());
    const ended: number[] = [];
    t.onProcessEnd = (n) => ended.push(n);
    try {
      const hello = (process?: bigint) =>
        call(t, Op.HELLO, process === undefined ? Buffer.alloc(0) : new Writer().u64(process));
      assert.equal(hello(0xa1n).status, CL.SUCCESS);
      const d = call(t, Op.DEVICE_IDS, new Writer().u64(0xffffffffn)).r;
      d.u32();
      const c = call(t, Op.CREATE_CONTEXT, new Writer().u32(1).u64(d.u64())).r.u64();
      const m = call(t, Op.CREATE_BUFFER, new Writer().u64(c).u64(1n).u64(1n << 20n).bytes(Buffer.alloc(0))).r.u64();
      const alive = (x: bigint) => call(t, Op.MEM_INFO, new Writer().u64(x).u32(0x1102)).status === CL.SUCCESS;
      assert.ok(alive(m));
      // The same process again (it reopened a broken port), and an ICD that does not say: nothing ends.
      hello(0xa1n);
      hello();
      assert.ok(alive(m));
      assert.deepEqual(ended, []);
      // Another process: the first one's context and buffer are released, its tokens refused from now on.
      hello(0xb2n);
      assert.deepEqual(ended, [2]);
      assert.ok(!alive(m), 'a token of the process before is refused');
      assert.equal(t.handles.count, 0);
      hello(0xc3n);
      assert.deepEqual(ended, [2], 'a process that held nothing ends quietly');
    } finally {
      t.close();
    }
  });

  test("a kernel's event, when asked for, is the host's: its profiling times come back; events are objects too", () => {
    const pq = call(s, Op.CREATE_QUEUE, new Writer().u64(ctx).u64(dev).u64(2n)).r.u64(); // PROFILING_ENABLE
    const src = '__kernel void one(__global int *a) { a[get_global_id(0)] = 1; }';
    const p = call(s, Op.CREATE_PROGRAM, new Writer().u64(ctx).bytes(Buffer.from(src))).r.u64();
    assert.equal(call(s, Op.BUILD_PROGRAM, new Writer().u64(p).bytes(Buffer.alloc(0))).status, CL.SUCCESS);
    const k = call(s, Op.CREATE_KERNEL, new Writer().u64(p).bytes(Buffer.from('one'))).r.u64();
    assert.equal(call(s, Op.SET_KERNEL_ARG, new Writer().u64(k).u32(0).u32(1).u64(8n)
      .bytes(new Writer().u64(mem).done())).status, CL.SUCCESS);
    const enqueue = (want?: number) => {
      const w = new Writer().u64(pq).u64(k).u32(1); // dims; then offset, global, local (3 each)
      for (const v of [0n, 0n, 0n, 16n, 0n, 0n, 0n, 0n, 0n]) w.u64(v);
      return call(s, Op.ENQUEUE_KERNEL, want === undefined ? w : w.u32(want));
    };
    const plain = enqueue();
    assert.deepEqual([plain.status, plain.r.more], [CL.SUCCESS, false], 'no event unless asked');
    assert.equal(enqueue(2).status, CL.INVALID_VALUE);
    const e = enqueue(1);
    assert.equal(e.status, CL.SUCCESS);
    const ev = e.r.u64();
    assert.equal(call(s, Op.FINISH, new Writer().u64(pq)).status, CL.SUCCESS);
    const prof = (param: number, token = ev) => call(s, Op.EVENT_PROFILING, new Writer().u64(token).u32(param));
    const start = prof(0x1282).r.u64(), end = prof(0x1283).r.u64();
    assert.ok(start > 0n && end >= start, `start ${start}, end ${end}`);
    assert.equal(prof(0x1290).status, CL.INVALID_VALUE, 'not a profiling param');
    assert.equal(prof(0x1282, k).status, CL.INVALID_EVENT, 'a kernel is no event');
    assert.equal(call(s, Op.RELEASE, new Writer().u64(ev)).status, CL.SUCCESS);
    assert.equal(prof(0x1282).status, CL.INVALID_EVENT, 'released');
    for (const t of [k, p, pq]) assert.equal(call(s, Op.RELEASE, new Writer().u64(t)).status, CL.SUCCESS);
  });

  test('zero copy: a window buffer is the window; ranges, maps and unmaps are checked', () => {
    const wb = (offset: bigint, size: bigint) =>
      call(s, Op.CREATE_BUFFER_WINDOW, new Writer().u64(ctx).u64(1n).u64(offset).u64(size));
    assert.equal(call(s, Op.WINDOW, Buffer.alloc(0)).r.u64(), 1n << 20n);
    const b = wb(4096n, 4096n);
    assert.equal(b.status, CL.SUCCESS);
    const wmem = b.r.u64();
    win.view(4096n, 4096).fill(0x42);
    const read = call(s, Op.READ_BUFFER, new Writer().u64(queue).u64(wmem).u64(0n).u64(4096n));
    assert.equal(read.status, CL.SUCCESS);
    assert.ok(read.r.bytes().every((x) => x === 0x42), 'the host buffer reads the window');
    const data = Buffer.alloc(16, 0x17);
    assert.equal(call(s, Op.WRITE_BUFFER, new Writer().u64(queue).u64(wmem).u64(32n).bytes(data)).status, CL.SUCCESS);
    assert.deepEqual(win.view(4096n + 32n, 16), data, 'a host write lands in the window');
    const map = (m: bigint, flags: bigint, off: bigint, n: bigint) =>
      call(s, Op.MAP_BUFFER, new Writer().u64(queue).u64(m).u64(flags).u64(off).u64(n)).status;
    const unmap = (m: bigint, off: bigint) => call(s, Op.UNMAP, new Writer().u64(queue).u64(m).u64(off)).status;
    assert.equal(map(wmem, 1n, 128n, 256n), CL.SUCCESS, 'mapped in place');
    assert.equal(unmap(wmem, 128n), CL.SUCCESS);
    assert.equal(unmap(wmem, 128n), CL.INVALID_VALUE, 'no longer mapped');
    assert.equal(unmap(wmem, 2n ** 63n), CL.INVALID_VALUE);
    assert.equal(map(wmem, 8n, 0n, 16n), CL.INVALID_VALUE, 'unknown map flags');
    assert.equal(map(wmem, 1n, 4090n, 16n), CL.INVALID_VALUE, 'past the buffer');
    assert.equal(map(mem, 1n, 0n, 16n), CL.INVALID_MEM_OBJECT, 'not a window buffer');
    assert.equal(wb((1n << 20n) - 4096n, 8192n).status, CL.INVALID_HOST_PTR, 'past the window');
    assert.equal(wb(2n ** 64n - 4096n, 8192n).status, CL.INVALID_HOST_PTR, 'a range that would wrap');
    assert.equal(wb(0n, 0n).status, CL.INVALID_BUFFER_SIZE);
    assert.equal(call(s, Op.RELEASE, new Writer().u64(wmem)).status, CL.SUCCESS);
    const none = new Session(clApi());
    assert.equal(call(none, Op.WINDOW, Buffer.alloc(0)).r.u64(), 0n, 'a VM without a window says so');
    none.close();
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
      encodeRequest(5, Op.CREATE_BUFFER_WINDOW, new Writer().u64(ctx).u64(1n).u64(8192n).u64(4096n).done()),
      encodeRequest(6, Op.MAP_BUFFER, new Writer().u64(queue).u64(mem).u64(1n).u64(0n).u64(64n).done()),
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
        body.writeUInt16LE(rnd(30), 4);
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

describe('OpenCL remoting: a call in flight when its helper is replaced (no QEMU)', () => {
  test('the guest ICD fails the call with CL_DEVICE_NOT_AVAILABLE and the program starts over', async () => {
    await buildGuest();
    const host = (await run(join(build, 'oriel-cl-demo'), ['recover', build], { timeout: 20_000 })).stdout;
    const hostVadd = host.match(/^vadd (\w+)$/m)?.[1];
    assert.ok(hostVadd, host);
    // The port as the ICD sees it: helper A's session until the 3rd kernel, whose answer never comes; then, as after a
    // restore, helper B's notice on the same stream, B answers from then on (the lost request too: skipped).
    const a = new Session(clApi());
    const b = new Session(clApi());
    let now = a;
    let kernels = 0;
    let cutAt = 0;
    const sock = join(scratch, 'port.sock');
    const server = createServer((c) => {
      const split = new FrameSplitter();
      c.write(encodeNotice(a.helper, 1));
      c.on('data', (d) => {
        for (const body of split.push(d)) {
          if (now === a && body.readUInt16LE(4) === Op.ENQUEUE_KERNEL && ++kernels === 3) {
            cutAt = Date.now();
            setTimeout(() => {
              now = b;
              c.write(encodeNotice(b.helper, 1));
              c.write(b.handle(body));
              c.write(encodeResponse(0, CL.INVALID_VALUE)); // a malformed notice: skipped too
            }, 300);
            continue;
          }
          c.write(now.handle(body));
        }
      });
    }).listen(sock);
    try {
      const env = { ...process.env, OCL_ICD_VENDORS: join(build, 'liboriel-opencl.so'),
        ORIEL_OPENCL_PORT: `unix:${sock}`, ORIEL_OPENCL_NO_WINDOW: '1' };
      const r = await run(join(build, 'oriel-cl-demo'), ['recover'], { env, timeout: 20_000 });
      const took = Date.now() - cutAt;
      assert.match(r.stdout, new RegExp(`^lost ${CL.DEVICE_NOT_AVAILABLE} after 2$`, 'm'), r.stdout);
      // The same result as the host's own OpenCL, by objects made afresh through helper B.
      assert.equal(r.stdout.match(/^recovered 0 vadd (\w+)$/m)?.[1], hostVadd, r.stdout);
      assert.ok(took < 5000, `answered ${took} ms after the cut`);
      assert.ok(b.handles.count >= 1, 'helper B served the new objects');
    } finally {
      server.close();
      a.close();
      b.close();
    }
  });
});

describe('OpenCL remoting: two tiny-opencl guests', () => {
  let t: TestServer;
  let hostOut: string;
  const dirs: Record<string, string> = {};
  const windows: Record<string, string> = {};

  before(async () => {
    await ensureTinyOpenclImage();
    // The same demo the image carries, run on the host against its OpenCL directly.
    await buildGuest();
    const host = run(join(build, 'oriel-cl-demo'), ['1024']);
    t = await startTestServer();
    for (const name of ['ocl', 'ocl2']) {
      const c = await t.admin.post('/api/vms',
        { name, image: 'tiny-opencl', memoryMiB: 160, opencl: true, openclWindowMiB: 64 });
      assert.equal(c.status, 201, JSON.stringify(c.body));
      assert.equal(c.body.opencl, true);
      assert.equal(c.body.openclWindowMiB, 64);
      dirs[name] = join(t.config.dataDir, 'vms', c.body.id);
      windows[name] = vmPaths(t.config.dataDir, c.body.id).openclWindow;
    }
    const started = await Promise.all(['ocl', 'ocl2'].map((n) => t.admin.post(`/api/vms/${n}/start`)));
    for (const r of started) assert.equal(r.body.state, 'running', JSON.stringify(r.body));
    hostOut = (await host).stdout;
  });
  after(async () => {
    await t?.destroy();
  });
  const operation = async (id: string) => {
    const op = (await t.admin.get(`/api/operations/${id}/wait?timeoutSec=120`)).body;
    assert.equal(op.status, 'succeeded', JSON.stringify(op));
    return op;
  };
  const exec = (vm: string, argv: string[]) => t.admin.post(`/api/vms/${vm}/exec`, { argv, timeoutSec: 90 });
  const lines = (out: string) =>
    out.split('\n').filter((l) => /^(vadd|saxpy|matmul|zerocopy|zeroread|usehostptr|badbuild|outofrange) /.test(l));

  test('clinfo in the guest lists the remoted platform and the host device', async () => {
    const host = (await run('clinfo', ['-l'])).stdout;
    const device = host.match(/Device #0: (.+)/)![1]!.trim();
    const r = await exec('ocl', ['clinfo', '-l']);
    assert.equal(r.body.exitCode, 0, JSON.stringify(r.body));
    assert.match(r.body.stdout, /Platform #0: Oriel remote: /);
    assert.ok(r.body.stdout.includes(device), r.body.stdout);
  });

  test("1024×1024 matmul, vector addition, SAXPY and zero-copy buffers give the host's results", async () => {
    const r = await exec('ocl', ['oriel-cl-demo', '1024']);
    assert.equal(r.body.exitCode, 0, JSON.stringify(r.body));
    assert.equal(lines(r.body.stdout).length, 8, r.body.stdout);
    assert.deepEqual(lines(r.body.stdout), lines(hostOut));
    assert.ok(r.body.stdout.includes(`badbuild ${CL.BUILD_PROGRAM_FAILURE}\n`));
    assert.ok(r.body.stdout.includes('buildlog present\n'));
    assert.ok(r.body.stdout.includes('usehostptr 1 '), 'a USE_HOST_PTR map is the caller\'s memory');
    assert.ok(r.body.stdout.includes('profile ok\n'), 'the matmul kernel\'s event has its profiling times');
    assert.ok(hostOut.includes('profile ok\n'), hostOut);
    // The zero-copy buffer's bytes, as the host kernel left them, are in the VM's window file: no copy on the port.
    const marked = Buffer.alloc(64);
    for (let i = 0; i < 16; i++) marked.writeInt32LE(i ^ 0x5a5a0000, 4 * i);
    assert.ok(readFileSync(windows.ocl!).subarray(0, 16 << 20).includes(marked), 'the window holds the buffer');
    assert.equal(statSync(windows.ocl!).mode & 0o777, 0o600);
  });

  test("two VMs at once: a token of one is refused in the other, and in its own once its process ended; each helper is sandboxed", async () => {
    const tok = await exec('ocl', ['oriel-cl-demo', 'token']); // exits holding its buffer
    const token = tok.body.stdout.match(/^token ([0-9a-f]+)$/m)?.[1];
    assert.ok(token, tok.body.stdout);
    const probe = async (vm: string) => (await exec(vm, ['oriel-cl-demo', 'probe', token])).body.stdout;
    const invalid = new RegExp(`^probe ${CL.INVALID_MEM_OBJECT}$`, 'm');
    const own = await probe('ocl');
    assert.match(own, /^self 0$/m, 'a process finds its own buffer by its token');
    assert.match(own, invalid, 'a later process of the same VM cannot use the ended one\'s');
    assert.match(readFileSync(join(dirs.ocl!, 'opencl.log'), 'utf8'), /before this one left [1-9]\d* objects: released/,
      'what the ended process held was released when the next one opened the port');
    assert.match(await probe('ocl2'), invalid, 'the other VM cannot');
    // Each helper is confined (bubblewrap, sandbox.ts): no network, none of the host's folders but what it needs.
    for (const vm of ['ocl', 'ocl2']) {
      const log = readFileSync(join(dirs[vm]!, 'opencl.log'), 'utf8');
      assert.match(log, /^sandbox: bubblewrap$/m, log);
      const [, root, net] = log.match(/sees \/ = (\S+); network: ([^;\s]+)/) ?? [];
      assert.equal(net, 'lo', log);
      for (const hidden of ['root', 'home', 'var', 'run', 'srv']) assert.ok(!root!.split(',').includes(hidden), root);
      // Its own host uid when the server is root (sandbox.test.ts checks what that uid can reach), and seccomp.
      const own = process.getuid?.() === 0 && othersReach(join(import.meta.dirname, '..', '..'));
      assert.match(log, own ? /^uid: \d+ \(its own\)$/m : /^uid: the server's/m, log);
      assert.match(log, /^seccomp: on$/m, log);
    }
  });

  test('hostile frames from the guest: the helper drops the link, stays up and serves the next program', async () => {
    const log = join(dirs.ocl2!, 'opencl.log');
    const dropped = () => (readFileSync(log, 'utf8').match(/dropping the link/g) ?? []).length;
    const before = dropped();
    // A frame with an unknown op, a length no frame may have, then (after the helper is back) a frame out of step and
    // half a frame.
    const script = 'for p in /sys/class/virtio-ports/*; do [ "$(cat $p/name)" = org.oriel.opencl.0 ] && d=/dev/${p##*/}; done; '
      + "printf '\\010\\000\\000\\000\\001\\000\\000\\000\\377\\377\\000\\000' > $d; "
      + "printf '\\377\\377\\377\\377junk' > $d; sleep 1; "
      // A frame whose reserved field is set: a stream out of step (the tail of a frame of before a restore).
      + "printf '\\010\\000\\000\\000\\002\\000\\000\\000\\001\\000\\001\\000' > $d; sleep 1; "
      + "printf '\\100\\000\\000\\000\\001\\000' > $d";
    const h = await exec('ocl2', ['sh', '-c', script]);
    assert.equal(h.body.exitCode, 0, JSON.stringify(h.body));
    for (let i = 0; i < 50 && dropped() < before + 3; i++) await new Promise((r) => setTimeout(r, 200));
    assert.equal(dropped(), before + 3, readFileSync(log, 'utf8'));
    assert.match(readFileSync(log, 'utf8'), /dropping the link: a frame out of step/);
    const r = await exec('ocl2', ['oriel-cl-demo', '64']);
    assert.equal(r.body.exitCode, 0, JSON.stringify(r.body));
    const zc = (out: string) => lines(out).filter((l) => /^(zerocopy|vadd|saxpy) /.test(l));
    assert.deepEqual(zc(r.body.stdout), zc(hostOut));
    const pids = new Set([...readFileSync(log, 'utf8').matchAll(/opencl-helper\[(\d+)\]/g)].map((m) => m[1]));
    assert.equal(pids.size, 1, 'one helper process all along');
  });

  test('a checkpoint of an --opencl VM restores its window; a call in flight then fails cleanly, old objects too',
    async (tc) => {
      const token = (await exec('ocl2', ['oriel-cl-demo', 'token'])).body.stdout.match(/^token ([0-9a-f]+)$/m)?.[1];
      assert.ok(token);
      // Vector additions from scratch in a loop (in the guest's background) from before the checkpoint until after
      // it: the helper holds their calls for the capture (its writes to the window would escape QEMU's write
      // tracking) and runs them after; all succeed. The loop runs until told to stop, so calls come during the
      // capture whatever its timing: the guest of the checkpoint's instant is waiting for one's answer.
      const log = join(dirs.ocl2!, 'opencl.log');
      const out = async () => (await exec('ocl2', ['cat', '/tmp/rec.out'])).body.stdout ?? '';
      const until = async (re: RegExp, ms: number) => {
        let o = '';
        for (const end = Date.now() + ms; Date.now() < end && !re.test(o);) {
          await new Promise((r) => setTimeout(r, 250));
          o = await out();
        }
        return o;
      };
      const bg = await exec('ocl2', ['sh', '-c', 'rm -f /tmp/stop; oriel-cl-demo recover /tmp/stop >/tmp/rec.out 2>&1 &']);
      assert.equal(bg.body.exitCode, 0, JSON.stringify(bg.body));
      const first = (await until(/^vadd \w+$/m, 30_000)).match(/^vadd (\w+)$/m)?.[1];
      assert.ok(first, await out());
      const take = await t.admin.post('/api/vms/ocl2/checkpoints', {});
      assert.equal(take.status, 202, JSON.stringify(take.body));
      const ckpt = await operation(take.body.id);
      assert.ok(!ckpt.log?.some((l: string) => /inexact/.test(l)), JSON.stringify(ckpt.log));
      await exec('ocl2', ['touch', '/tmp/stop']);
      const ran = await until(/^stopped after/m, 60_000);
      assert.ok(Number(ran.match(/^stopped after (\d+)$/m)?.[1]) >= 2, ran);
      assert.doesNotMatch(ran, /^(lost|failed) /m, 'held calls wait and succeed');
      const held = readFileSync(log, 'utf8').match(/holding requests[\s\S]*released: (\d+) requests waited/);
      assert.ok(held, readFileSync(log, 'utf8'));
      assert.ok(Number(held[1]) >= 1, `requests came during the capture and waited: ${held[0]}`);
      const marked = Buffer.alloc(64);
      for (let i = 0; i < 16; i++) marked.writeInt32LE(i ^ 0x5a5a0000, 4 * i);
      for (const mode of ['lazy', 'eager']) {
        const restore = await t.admin.post(`/api/vms/ocl2/checkpoints/${ckpt.result.id}/restore`, { mode });
        assert.equal(restore.status, 202, JSON.stringify(restore.body));
        const done = await operation(restore.body.id);
        const restored = Date.now();
        // The window file is made afresh at each start: the zero-copy bytes in it now came back with the checkpoint.
        assert.ok(readFileSync(windows.ocl2!).subarray(0, 16 << 20).includes(marked), JSON.stringify(done.result));
        // The restored guest is at the checkpoint's instant, mid-call: the new helper's notice fails that call
        // (CL_DEVICE_NOT_AVAILABLE) and the program makes its objects again and goes on, in the same process.
        const o = await until(/^recovered/m, 40_000);
        tc.diagnostic(`${mode} restore: "${o.split('\n').slice(-3).join(' | ')}" within ${Date.now() - restored} ms`);
        const helperLog = () => readFileSync(log, 'utf8').split('\n').slice(-12).join('\n');
        assert.match(o, new RegExp(`^lost ${CL.DEVICE_NOT_AVAILABLE} after \\d+$`, 'm'), `${o}\nhelper log:\n${helperLog()}`);
        assert.match(o, new RegExp(`^recovered 0 vadd ${first}$`, 'm'), o);
        assert.ok(Date.now() - restored < 40_000, `${mode}: no hang`);
      }
      const probe = (await exec('ocl2', ['oriel-cl-demo', 'probe', token])).body.stdout;
      assert.match(probe, new RegExp(`^probe ${CL.INVALID_MEM_OBJECT}$`, 'm'), 'a new helper session: old handles fail');
      const r = await exec('ocl2', ['oriel-cl-demo', '64']);
      assert.equal(r.body.exitCode, 0, JSON.stringify(r.body));
    });
});

// The OpenCL helper's confinement and holds, on the host alone (no QEMU: a unix socket stands in for the VM's port):
// the seccomp program's decisions (run through a small BPF interpreter), probes run by the helper's own recipe (its
// uid, what it can open, which system calls fail with EPERM, and the same probe without the filter as a control),
// and a real helper started as the server starts it: its processes' host uid is its own, it answers over the socket
// the server dialled for it and maps the window it was handed; a hold queues requests until the release (or until
// the hold's own limit), and nothing is lost.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  closeSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync,
  rmSync, statSync, writeFileSync,
} from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { othersReach, RemotingHelpers } from '../../src/remoting/index.ts';
import { inheritableFds } from '../../src/remoting/fd-hygiene.ts';
import { helperNproc } from '../../src/remoting/limits.ts';
import { closeFd, dupFd } from '../../src/remoting/unix.ts';
import { CL, FrameSplitter, NOTICE_ID, Op, Writer, encodeRequest } from '../../src/remoting/protocol.ts';
import {
  BWRAP, SANDBOX_TMP_BYTES, canDisableUserns, probeSandbox, sandboxArgs, spawnConfined,
} from '../../src/remoting/sandbox.ts';
import {
  CLONE_NS_FLAGS, EAFNOSUPPORT, ENOSYS, EPERM, LAST_KNOWN_NR, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, deniedSyscalls,
  seccompFilter,
} from '../../src/remoting/seccomp.ts';

const ROOT = process.getuid?.() === 0;
const CODE_ROOT = join(import.meta.dirname, '..', '..');
/** Helpers get a host uid of their own: the server is root, and such a uid can read Oriel's code where it is (a clone
 * under a folder closed to others keeps them on the server's uid, which the log says; index.ts chooseUid). */
const OWN_UIDS = ROOT && othersReach(CODE_ROOT);
const KOFFI = createRequire(import.meta.url).resolve('koffi');

/** Runs a classic BPF program over one struct seccomp_data (nr, arch, args) and returns its verdict. */
function runFilter(prog: Buffer, nr: number, arch: number, args: number[] = []): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(nr, 0);
  data.writeUInt32LE(arch, 4);
  args.forEach((a, i) => data.writeUInt32LE(a >>> 0, 16 + 8 * i));
  let acc = 0;
  for (let pc = 0; pc * 8 < prog.length; pc++) {
    const code = prog.readUInt16LE(pc * 8);
    const [jt, jf, k] = [prog[pc * 8 + 2]!, prog[pc * 8 + 3]!, prog.readUInt32LE(pc * 8 + 4)];
    if (code === 0x20) acc = data.readUInt32LE(k);
    else if (code === 0x06) return k;
    else if (code === 0x15) pc += acc === k ? jt : jf;
    else if (code === 0x35) pc += acc >= k ? jt : jf;
    else if (code === 0x45) pc += (acc & k) !== 0 ? jt : jf;
    else throw new Error(`unexpected BPF code ${code}`);
  }
  throw new Error('the program fell off its end');
}

test('the sandbox probe: this host\'s bwrap makes its namespaces; a missing or failing bwrap is said as such', () => {
  assert.deepEqual(probeSandbox(), { ok: true });
  assert.deepEqual(probeSandbox('/nonexistent/bwrap'), {
    ok: false, why: 'bubblewrap (/nonexistent/bwrap) is not installed',
  });
  // A bwrap that cannot run anything (as in a container without namespaces): here /bin/false stands in for it.
  const r = probeSandbox('/bin/false');
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.why : '', /^bubblewrap \(\/bin\/false\) cannot make its namespaces on this host \(exit 1\)$/);
});

describe('OpenCL helper: the seccomp program', () => {
  const x64 = 0xc000003e;
  const prog = seccompFilter('x64')!;
  const deny = SECCOMP_RET_ERRNO | EPERM;
  test('denied calls get EPERM, others pass; clone with a namespace flag is denied, clone3 is ENOSYS', () => {
    for (const [name, nr] of Object.entries(deniedSyscalls('x64')!)) assert.equal(runFilter(prog, nr, x64), deny, name);
    for (const nr of [0, 1, 9, 39, 202, 231]) assert.equal(runFilter(prog, nr, x64), SECCOMP_RET_ALLOW, `nr ${nr}`);
    assert.equal(runFilter(prog, 56, x64, [0x003d0f00]), SECCOMP_RET_ALLOW, 'clone of a thread');
    assert.equal(runFilter(prog, 56, x64, [0x11 | 0x10000000]), deny, 'clone into a new user namespace');
    assert.equal(runFilter(prog, 56, x64, [CLONE_NS_FLAGS & 0x40000000]), deny, 'clone into a new network namespace');
    assert.equal(runFilter(prog, 435, x64), SECCOMP_RET_ERRNO | ENOSYS);
  });
  test('numbers match the kernel headers; unknown numbers get ENOSYS; socket families are limited', () => {
    const header = (f: string, re: RegExp) => Object.fromEntries([...readFileSync(f, 'utf8').matchAll(re)]
      .map((m) => [m[1]!, Number(m[2])]));
    const x = header('/usr/include/x86_64-linux-gnu/asm/unistd_64.h', /#define __NR_(\w+) (\d+)/g);
    const g = header('/usr/include/asm-generic/unistd.h', /#define __NR(?:3264)?_(\w+) (\d+)/g);
    for (const [arch, h] of [['x64', x], ['arm64', g]] as const) {
      for (const [name, nr] of Object.entries(deniedSyscalls(arch)!)) {
        // Calls gone from the generic table (uselib, _sysctl, nfsservctl on aarch64) are allowed to be absent there.
        if (name in h || arch === 'x64') assert.equal(nr, h[name], `${arch} ${name}`);
      }
      assert.ok(Math.max(...Object.values(h).filter((n) => n < 1000)) <= LAST_KNOWN_NR, `${arch}: a newer header`);
    }
    for (const [name, nr] of [['clone', 56], ['clone3', 435], ['socket', 41], ['socketpair', 53]] as const) {
      assert.equal(x[name], nr, name);
    }
    assert.equal(runFilter(prog, LAST_KNOWN_NR + 1, x64), SECCOMP_RET_ERRNO | ENOSYS);
    assert.equal(runFilter(prog, x.mseal ?? 462, x64), SECCOMP_RET_ALLOW);
    for (const f of [1, 2, 10, 16]) assert.equal(runFilter(prog, x.socket!, x64, [f]), SECCOMP_RET_ALLOW, `family ${f}`);
    for (const f of [17, 38, 40]) {
      assert.equal(runFilter(prog, x.socket!, x64, [f]), SECCOMP_RET_ERRNO | EAFNOSUPPORT, `family ${f}`);
      assert.equal(runFilter(prog, x.socketpair!, x64, [f]), SECCOMP_RET_ERRNO | EAFNOSUPPORT, `family ${f}`);
    }
    assert.equal(runFilter(prog, x.modify_ldt!, x64), deny);
  });

  test('the architecture is checked: i386 calls and x32 numbers are denied whole', () => {
    assert.equal(runFilter(prog, 39, 0x40000003), deny, 'AUDIT_ARCH_I386');
    assert.equal(runFilter(prog, 0x40000000 + 39, x64), deny, 'x32');
    assert.equal(runFilter(seccompFilter('arm64')!, 117, 0xc00000b7), deny, 'ptrace on aarch64');
    assert.equal(runFilter(seccompFilter('arm64')!, 117, x64), deny, 'another arch on aarch64');
    assert.equal(seccompFilter('riscv64'), undefined, 'no table, no filter (and the log says so)');
  });
});

describe('OpenCL helper: confinement', () => {
  const data = mkdtempSync(join(tmpdir(), 'ot-ocl-sandbox-'));
  const vmId = 'a1b2c3d4e5f6';
  const vmDir = join(data, 'vms', vmId);
  const socket = join(vmDir, 'opencl.sock');
  const secret = join(data, 'oriel.db');
  const shm = mkdtempSync('/dev/shm/ot-ocl-');
  const window = join(shm, 'mine-opencl');
  const otherWindow = join(shm, 'other-opencl');
  let qemu: Server;
  const links: Socket[] = [];
  const helpers = new RemotingHelpers({ log: (m) => logged.push(m) });
  const logged: string[] = [];

  before(() => {
    mkdirSync(vmDir, { recursive: true, mode: 0o700 });
    writeFileSync(secret, 'the database', { mode: 0o600 });
    for (const f of [window, otherWindow]) {
      const fd = openSync(f, 'w', 0o600);
      ftruncateSync(fd, 1 << 20);
      closeSync(fd);
    }
  });
  after(async () => {
    helpers.stopAll();
    qemu?.close();
    for (const s of links) s.destroy();
    rmSync(data, { recursive: true, force: true });
    rmSync(shm, { recursive: true, force: true });
  });

  /** A node script run by the helper's recipe; prints what it could do as JSON. */
  const probeScript = `
    const fs = require('fs');
    const koffi = require(${JSON.stringify(KOFFI)});
    const syscall = koffi.load('libc.so.6').func('long syscall(long, long, long, long, long, long, long)');
    const call = (nr, a = 0, b = 0) => (syscall(nr, a, b, 0, 0, 0, 0) < 0 ? -koffi.errno() : 0);
    const open = (f) => { try { fs.readFileSync(f); return 'read'; } catch (e) { return e.code; } };
    const nr = ${JSON.stringify(deniedSyscalls() ?? {})};
    console.log(JSON.stringify({
      uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(),
      unshare: call(nr.unshare, 0x400), ptrace: call(nr.ptrace, 0), personality: call(nr.personality, 0xffffffff),
      clone3: call(435), bpf: call(nr.bpf, 0, 0),
      secret: open(${JSON.stringify(secret)}), window: open(${JSON.stringify(otherWindow)}),
      cwd: process.cwd(),
    }));`;
  const collect = (child: ReturnType<typeof spawn>) => new Promise<Record<string, any>>((ok, fail) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      try { ok(JSON.parse(out)); } catch { fail(new Error(`probe exited ${code}: ${out} ${err}`)); }
    });
  });
  const argv = [process.execPath, '-e', probeScript];
  /** The same without koffi: nothing of Oriel's folder (the uid alone may not reach it: a parent closed to others). */
  const plainProbe = `
    const open = (f) => { try { require('fs').readFileSync(f); return 'read'; } catch (e) { return e.code; } };
    console.log(JSON.stringify({
      uid: process.getuid(), secret: open(${JSON.stringify(secret)}), window: open(${JSON.stringify(otherWindow)}),
    }));`;
  const env = { PATH: '/usr/bin:/bin', HOME: '/tmp' };

  test('in the sandbox with the filter: denied calls fail with EPERM, the data dir and windows are not there', async () => {
    const uid = OWN_UIDS ? 1_500_000_123 : undefined;
    const c = spawnConfined({
      argv, env, codeRoot: CODE_ROOT, hide: [data], sandbox: true, uid, fds: [], stdout: 'pipe', stderr: 'pipe',
      cwd: '/',
    });
    assert.ok(c.bwrap && c.seccomp, 'bubblewrap and the filter are there');
    const r = await collect(c.child);
    if (uid !== undefined) assert.deepEqual([r.uid, r.gid, r.groups], [uid, uid, [uid]]);
    assert.equal(r.unshare, -EPERM, "unshare(CLONE_FILES)");
    assert.equal(r.ptrace, -EPERM, 'ptrace(PTRACE_TRACEME)');
    assert.equal(r.personality, -EPERM);
    assert.equal(r.bpf, -EPERM);
    assert.equal(r.clone3, -ENOSYS);
    assert.equal(r.secret, 'ENOENT', "Oriel's data dir is not in the sandbox");
    assert.equal(r.window, 'ENOENT', "another VM's window is not in the sandbox");
  });

  test("the sandbox's /tmp (a tmpfs, host memory) has a size cap: a file past it fails with ENOSPC", async () => {
    const mib = SANDBOX_TMP_BYTES >> 20;
    const write = (n: number) => new Promise<{ code: number | null; err: string }>((ok) => {
      const c = spawn(BWRAP, sandboxArgs({ codeRoot: CODE_ROOT, env, hide: [data],
        argv: ['/bin/sh', '-c', `head -c ${n}M /dev/zero > /tmp/fill && rm /tmp/fill`] }),
      { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr!.on('data', (d) => (err += d));
      c.on('exit', (code) => ok({ code, err }));
    });
    assert.equal((await write(mib - 8)).code, 0, 'under the cap');
    const over = await write(mib + 8);
    assert.notEqual(over.code, 0);
    assert.match(over.err, /No space left on device/);
  });

  test('control: the same sandbox without the filter lets unshare and ptrace through', async () => {
    const child = spawn(BWRAP, sandboxArgs({ codeRoot: CODE_ROOT, env, argv, hide: [data] }),
      { stdio: ['ignore', 'pipe', 'pipe'] });
    const r = await collect(child);
    assert.equal(r.unshare, 0);
    assert.equal(r.ptrace, 0);
    // bwrap --disable-userns (when it has it): even without the filter, no user namespace can be made inside.
    if (canDisableUserns()) {
      const u = spawn(BWRAP, sandboxArgs({ codeRoot: CODE_ROOT, env, argv: ['/usr/bin/unshare', '-U', '/bin/true'],
        hide: [data] }), { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      u.stderr!.on('data', (d) => (err += d));
      const code = await new Promise((ok) => u.on('exit', ok));
      assert.notEqual(code, 0);
      assert.match(err, /No space left on device/, 'ENOSPC: user namespaces are off in the sandbox');
    }
  });

  test("the helper's uid alone (no sandbox) can open neither the data dir nor another VM's window", async (t) => {
    if (!ROOT) {
      // Not root: helpers keep the server's uid; nothing to drop to (the server's log says so once).
      assert.equal(process.getuid?.() === 0, false);
      return;
    }
    const c = spawnConfined({
      argv: [process.execPath, '-e', plainProbe], env, codeRoot: CODE_ROOT, hide: [], sandbox: false,
      uid: 1_500_000_124, fds: [], stdout: 'pipe',
      stderr: 'pipe', cwd: '/',
    });
    const r = await collect(c.child);
    t.diagnostic(JSON.stringify(r));
    assert.equal(r.uid, 1_500_000_124);
    assert.equal(r.secret, 'EACCES');
    assert.equal(r.window, 'EACCES');
  });

  /** The frames QEMU's side of the port receives, one link at a time: answers, and the helper's notices apart. */
  let responses: Buffer<ArrayBufferLike>[] = [];
  const notices: Buffer[] = [];
  const sort = (frames: Buffer[], answers: Buffer[], heard = notices) => {
    for (const f of frames) (f.readUInt32LE(0) === NOTICE_ID ? heard : answers).push(f);
  };
  let link: Socket | undefined;
  let linked: Promise<void>;
  before(() => {
    linked = new Promise<void>((ok) => {
      qemu = createServer((s) => {
        links.push(s);
        link = s;
        const split = new FrameSplitter();
        s.on('data', (d) => sort(split.push(d), responses));
        ok();
      });
      qemu.listen(socket);
    });
  });
  const request = (id: number, op: number, args: Buffer<ArrayBufferLike> = Buffer.alloc(0)) =>
    link!.write(encodeRequest(id, op, args));
  const waitFor = async (n: number, ms: number) => {
    for (let i = 0; i < ms / 20 && responses.length < n; i++) await new Promise((r) => setTimeout(r, 20));
    return responses.length;
  };

  test('a helper started as the server starts it: its own uid, the window by fd, the port dialled for it', async () => {
    // A descriptor the server holds without close-on-exec (as if its own parent had left it open) never reaches it.
    const leaked = dupFd(openSync(secret, 'r'));
    assert.ok(leaked > 2 && inheritableFds().includes(leaked));
    try {
      helpers.start(vmId, { socket, dir: vmDir, window });
    } finally {
      closeFd(leaked);
    }
    await linked;
    request(1, Op.WINDOW);
    request(2, Op.DEVICE_IDS, new Writer().u64(0xffffffffn).done());
    assert.equal(await waitFor(2, 60_000), 2);
    assert.equal(responses[0]!.readInt32LE(4), CL.SUCCESS);
    assert.equal(responses[0]!.readBigUInt64LE(8), 1n << 20n, 'the window handed over as a descriptor is mapped');
    assert.equal(responses[1]!.readInt32LE(4), CL.SUCCESS, 'the host OpenCL answers under the filter');
    // First on the link, the helper's notice: which helper (random, not 0) and which of its links (protocol.ts).
    assert.equal(notices.length, 1);
    assert.equal(notices[0]!.length, 20);
    assert.notEqual(notices[0]!.readBigUInt64LE(8), 0n);
    assert.equal(notices[0]!.readUInt32LE(16), 1);
    const log = readFileSync(join(vmDir, 'opencl.log'), 'utf8');
    assert.match(log, /^sandbox: bubblewrap$/m);
    assert.match(log, /^seccomp: on$/m);
    // Every process of the helper (bwrap and the node inside it) runs as the helper's own host uid.
    const bwrapPid = helpers.pid(vmId)!;
    const family = [bwrapPid];
    for (let grew = true; grew;) {
      grew = false;
      for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x)).map(Number)) {
        let stat = '';
        try { stat = readFileSync(`/proc/${p}/stat`, 'utf8'); } catch { continue; }
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (family.includes(ppid) && !family.includes(p)) { family.push(p); grew = true; }
      }
    }
    assert.ok(family.length >= 2, 'bwrap and the helper');
    const uids = family.map((p) => readFileSync(`/proc/${p}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1]);
    // The helper's descriptors: stdio (pipes to the server), the two channels (4, 5; the window, 3, is closed once
    // mapped), the link to QEMU's port, and Node's own (pipes, epoll, eventfd, /dev/null, its loader's); no file,
    // such as the one leaked.
    const node = family.find((p) => {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      return cmd[0] !== BWRAP && cmd.some((a) => a.includes('helper-main'));
    })!;
    const fdDir = `/proc/${node}/fd`;
    const open = new Map(readdirSync(fdDir).map((fd) => [Number(fd), readlinkSync(join(fdDir, fd))]));
    const shown = JSON.stringify([...open]);
    const files = [...open].filter(([, to]) => to.startsWith('/') && to !== '/dev/null');
    assert.deepEqual(files, [], shown);
    assert.equal(open.get(0), '/dev/null');
    for (const fd of [1, 2]) assert.match(open.get(fd) ?? '', /^(pipe|socket):/, 'its output goes to the server (capped)');
    assert.match(readFileSync(`/proc/${node}/limits`, 'utf8'), OWN_UIDS ? new RegExp(`^Max processes +${helperNproc()} +${
      helperNproc()} `, 'm') : /^Max core file size +0 +0 /m);
    for (const fd of [4, 5]) assert.match(open.get(fd) ?? '', /^socket:/, shown);
    for (const [fd, to] of open) assert.match(to, /^(\/|socket:|pipe:|anon_inode:)/, `fd ${fd}`);
    assert.deepEqual(inheritableFds().filter((fd) => fd > 2), [], 'the server marked its own close-on-exec');
    if (OWN_UIDS) {
      const uid = helpers.uid(vmId)!;
      assert.ok(uid >= 1_500_000_000 && uid < 1_500_065_536, `uid ${uid}`);
      assert.match(log, new RegExp(`^uid: ${uid} \\(its own\\)$`, 'm'));
      assert.deepEqual(uids, family.map(() => String(uid)));
    } else {
      assert.equal(helpers.uid(vmId), undefined);
      assert.match(logged.join('\n'), ROOT ? /could not read Oriel's code/ : /does not run as root/);
    }
  });

  test('a hold queues requests until its release; nothing is lost, order is kept', async () => {
    responses = [];
    const release = await helpers.hold(vmId);
    for (let id = 10; id < 15; id++) request(id, Op.WINDOW);
    assert.equal(await waitFor(1, 600), 0, 'no answer while held');
    assert.equal(release(), undefined, 'an exact hold');
    release(); // a second call does nothing
    assert.equal(await waitFor(5, 10_000), 5);
    assert.deepEqual(responses.map((r) => r.readUInt32LE(0)), [10, 11, 12, 13, 14]);
    const log = readFileSync(join(vmDir, 'opencl.log'), 'utf8');
    assert.match(log, /released: 5 requests waited/);
  });

  test('a hold that is never released lifts itself after its limit', async () => {
    responses = [];
    const release = await helpers.hold(vmId, { maxMs: 400 });
    request(20, Op.WINDOW);
    assert.equal(await waitFor(1, 200), 0);
    assert.equal(await waitFor(1, 5_000), 1);
    await new Promise((r) => setTimeout(r, 100));
    assert.match(release() ?? '', /the OpenCL hold lifted itself after 0.4 s: .* may be inexact/);
    assert.match(readFileSync(join(vmDir, 'opencl.log'), 'utf8'), /hold \d+ outlived 400 ms: released/);
    // No helper for a VM: a hold is a no-op.
    assert.equal((await helpers.hold('ffffffffffff'))(), undefined);
  });

  test('a helper that starts while its VM is held starts held', async () => {
    const id = 'c0c0c0c0c0c0';
    const dir = join(data, 'vms', id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const got: Buffer[] = [];
    const heard: Buffer[] = [];
    let port: Socket | undefined;
    const server = createServer((s) => {
      port = s;
      links.push(s);
      const split = new FrameSplitter();
      s.on('data', (d) => sort(split.push(d), got, heard));
    });
    await new Promise<void>((ok) => server.listen(join(dir, 'opencl.sock'), ok));
    try {
      const release = await helpers.hold(id);
      helpers.start(id, { socket: join(dir, 'opencl.sock'), dir });
      for (let i = 0; i < 200 && !port; i++) await new Promise((r) => setTimeout(r, 50));
      port!.write(encodeRequest(30, Op.WINDOW, Buffer.alloc(0)));
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(got.length, 0, 'no answer while held');
      assert.equal(heard.length, 1, 'the notice of its link comes all the same');
      assert.equal(release(), undefined);
      for (let i = 0; i < 100 && !got.length; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(got.length, 1);
      assert.match(readFileSync(join(dir, 'opencl.log'), 'utf8'), /holding requests \(hold \d+\)[\s\S]*released: 1/);
    } finally {
      helpers.stop(id);
      server.close();
    }
  });

  test('root without bubblewrap: refused unless allowed; allowed, HOME is its private cache, removed by its uid', async () => {
    const dir = join(data, 'vms', 'b0b0b0b0b0b0');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const files = { socket: join(dir, 'opencl.sock'), dir };
    const said: string[] = [];
    const refusing = new RemotingHelpers({ sandbox: false, log: (m) => said.push(m) });
    if (!ROOT) {
      assert.equal(refusing.refusal(), undefined, 'not root: helpers keep the server\'s uid, no refusal');
      return;
    }
    assert.match(refusing.refusal() ?? '', /refused: the server runs as root and the sandbox is turned off/);
    refusing.start('b0b0b0b0b0b0', files);
    assert.equal(refusing.pid('b0b0b0b0b0b0'), undefined);
    assert.match(readFileSync(join(dir, 'opencl.log'), 'utf8'), /OpenCL helpers are refused/);
    assert.equal(said.length, 1);
    const allowed = new RemotingHelpers({ sandbox: false, allowUnsandboxed: true });
    allowed.start('b0b0b0b0b0b0', files);
    const pid = allowed.pid('b0b0b0b0b0b0')!;
    const uid = allowed.uid('b0b0b0b0b0b0')!;
    if (!othersReach(CODE_ROOT)) {
      // Unsandboxed, a uid of its own could not read Oriel's code here (a parent folder closed to others): the
      // helper keeps the server's uid, and its log says why.
      assert.equal(uid, undefined);
      assert.match(readFileSync(join(dir, 'opencl.log'), 'utf8'), /uid: the server's \(a helper's own uid could not read/);
      allowed.stop('b0b0b0b0b0b0');
      return;
    }
    assert.ok(pid && uid);
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const home = env.find((e) => e.startsWith('HOME='))!.slice(5);
    assert.ok(env.includes(`POCL_CACHE_DIR=${home}`), env.join(' '));
    assert.equal(statSync(home).uid, uid);
    assert.equal(statSync(home).mode & 0o777, 0o700);
    allowed.stop('b0b0b0b0b0b0');
    for (let i = 0; i < 100 && existsSync(home); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(existsSync(home), false, 'its scratch folder is gone');
  });
});

// The `oriel` command end to end: `oriel serve --demo` in its own process (what `npm start` runs), then the CLI
// against it, as a person would use them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTinyImage } from '../helpers/images.ts';
import { killVmsIn } from '../helpers/server.ts';

const BIN = join(import.meta.dirname, '../../bin/oriel.js');

interface Run { code: number; stdout: string; stderr: string }

describe('oriel CLI', () => {
  let dir: string;
  let server: ChildProcess;
  let url = '';
  let password = '';
  let env: NodeJS.ProcessEnv;

  const oriel = (args: string[], input?: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, [BIN, ...args], { env: { ...env, ...extraEnv } });
      let stdout = '', stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      p.stdin.end(input ?? '');
    });

  before(async () => {
    await ensureTinyImage();
    dir = mkdtempSync(join(tmpdir(), 'oc-'));
    env = {
      ...process.env,
      ORIEL_DATA_DIR: join(dir, 'data'),
      XDG_CONFIG_HOME: join(dir, 'config'),
      ORIEL_ACCEL: 'tcg',
      ORIEL_LOG_LEVEL: 'warn',
    };
    delete env.ORIEL_TOKEN;
    delete env.ORIEL_ADMIN_PASSWORD;
    server = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--demo', 'tiny'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    server.stderr!.on('data', (d) => (out += d));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not print its URL: ${out}`)), 30_000);
      server.stdout!.on('data', (d) => {
        out += d;
        const u = /running at (http:\S+)/.exec(out);
        const p = /admin password: (\S+)/.exec(out);
        if (u && p) {
          url = u[1]!;
          password = p[1]!;
          clearTimeout(timer);
          resolve();
        }
      });
    });
    env.ORIEL_URL = url;
  });

  after(async () => {
    await oriel(['vm', 'force-stop', 'demo']);
    await oriel(['vm', 'force-stop', 'c1']);
    server.kill('SIGTERM');
    if (server.exitCode === null && server.signalCode === null) await new Promise((r) => server.once('exit', r));
    killVmsIn(join(dir, 'data'));
    rmSync(dir, { recursive: true, force: true });
  });

  test('serve prints a generated admin password once; without a token the CLI says how to sign in', async () => {
    assert.match(password, /^[A-Za-z0-9_-]{20}$/);
    const r = await oriel(['vm', 'list']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /oriel login/);
  });

  test('login --password-stdin saves a token readable only by its owner', async () => {
    const bad = await oriel(['login', '--user', 'admin', '--password-stdin'], 'wrong-password\n');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /wrong user name or password \(HTTP 401\)/);
    const r = await oriel(['login', '--user', 'admin', '--password-stdin'], password + '\n');
    assert.equal(r.code, 0, r.stderr);
    const file = join(dir, 'config', 'oriel', 'credentials.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(JSON.parse(readFileSync(file, 'utf8'))[url], /^oriel_/);
  });

  test('the demo VM comes up and runs commands; exec passes the exit status through', async () => {
    let demo: { state: string; networks: { network: string; ip: string }[] } | undefined;
    const end = Date.now() + 120_000;
    while (Date.now() < end) {
      const r = await oriel(['vm', 'show', 'demo', '--json']);
      if (r.code === 0 && (demo = JSON.parse(r.stdout)).state === 'running') break;
      await new Promise((res) => setTimeout(res, 500));
    }
    assert.equal(demo?.state, 'running');
    const r = await oriel([
      'vm',
      'exec',
      'demo',
      '--',
      'sh',
      '-c',
      'echo hello from $(uname -s); echo warn >&2; exit 3',
    ]);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, 'hello from Linux\n');
    assert.equal(r.stderr, 'warn\n');
    const log = await oriel(['vm', 'log', 'demo']);
    assert.match(log.stdout, /ORIEL-READY/);
    // On the --nat network 'demo' made at start: the guest took its lease by DHCP.
    const card = demo!.networks[0]!;
    assert.equal(card.network, 'demo');
    assert.match(log.stdout, new RegExp(`oriel-tiny: eth0 ${card.ip.replace(/\./g, '\\.')}/24`));
    const net = JSON.parse((await oriel(['network', 'show', 'demo', '--json'])).stdout);
    assert.equal(net.nat, true);
  });

  test('vm create/list/show/stop/delete with --json, and clear errors', async () => {
    const bad = await oriel(['vm', 'create', 'c1', '--image', 'tiny', '--memory', '1']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /memory must be between 64 and \d+ MiB/);
    const nan = await oriel(['vm', 'create', 'c1', '--image', 'tiny', '--memory', 'lots']);
    assert.notEqual(nan.code, 0);
    assert.match(nan.stderr, /--memory must be a whole number/);
    const c = await oriel(['vm', 'create', 'c1', '--image', 'tiny', '--memory', '128', '--json']);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(JSON.parse(c.stdout).memoryMiB, 128);
    assert.equal(JSON.parse(c.stdout).hugepages, null, 'no choice: huge pages when possible');
    const odd = await oriel(['vm', 'create', 'h1', '--image', 'tiny', '--memory', '129', '--hugepages']);
    assert.match(odd.stderr, /with hugepages, memory must be a multiple of 2 MiB/);
    const h = await oriel(['vm', 'create', 'h1', '--image', 'tiny', '--memory', '128', '--hugepages', '--json']);
    assert.equal(JSON.parse(h.stdout).hugepages, true);
    assert.equal((await oriel(['vm', 'delete', 'h1'])).code, 0);
    const o = await oriel(['vm', 'create', 'h2', '--image', 'tiny', '--memory', '128', '--no-hugepages', '--json']);
    assert.equal(JSON.parse(o.stdout).hugepages, false);
    assert.equal((await oriel(['vm', 'delete', 'h2'])).code, 0);
    const list = JSON.parse((await oriel(['vm', 'list', '--json'])).stdout);
    assert.deepEqual(list.map((v: { name: string }) => v.name).sort(), ['c1', 'demo']);
    const table = await oriel(['vm', 'list']);
    assert.match(table.stdout, /^NAME\s+STATE\s+MEMORY/);
    assert.match(table.stdout, /c1\s+stopped\s+128 MiB/);
    const missing = await oriel(['vm', 'show', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no VM named 'nope' \(HTTP 404\)/);
    assert.equal((await oriel(['vm', 'delete', 'c1'])).code, 0);
  });

  test('users: create with --password-stdin, list, and the new user sees only their VMs', async () => {
    const r = await oriel(['user', 'create', 'carol', '--password-stdin'], 'carol-secret-1\n');
    assert.equal(r.code, 0, r.stderr);
    const users = JSON.parse((await oriel(['user', 'list', '--json'])).stdout);
    assert.deepEqual(users.map((u: { name: string }) => u.name), ['admin', 'carol']);
    const carolEnv = { XDG_CONFIG_HOME: join(dir, 'carol') };
    assert.equal((await oriel(['login', '--user', 'carol', '--password-stdin'], 'carol-secret-1', carolEnv)).code, 0);
    assert.deepEqual(JSON.parse((await oriel(['vm', 'list', '--json'], undefined, carolEnv)).stdout), []);
    const touch = await oriel(['vm', 'stop', 'demo'], undefined, carolEnv);
    assert.equal(touch.code, 1);
    assert.match(touch.stderr, /belongs to another user/);
  });

  test('image build shows progress and finishes at once when already built; image list', async () => {
    const r = await oriel(['image', 'build', 'tiny']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /image 'tiny' is built/);
    const list = JSON.parse((await oriel(['image', 'list', '--json'])).stdout);
    assert.equal(list.find((i: { name: string }) => i.name === 'tiny').built, true);
    const ops = JSON.parse((await oriel(['operation', 'list', '--json'])).stdout);
    assert.ok(
      ops.some((o: { kind: string; status: string }) => o.kind === 'image.build:tiny' && o.status === 'succeeded'),
    );
  });
});

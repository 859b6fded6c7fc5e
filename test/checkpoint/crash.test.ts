// Crash safety, the hard way: 20 trials in which a checkpoint is started and, at a random moment, either the Oriel
// server process or QEMU is killed with SIGKILL. After every trial the protected (earlier) checkpoint must verify
// and the VM must run again; after each ten, every checkpoint must verify. QEMU killed: the checkpoint fails, the VM
// is crashed and starts again. Oriel killed: the capture worker (a process of its own) finishes or aborts the
// checkpoint alone, the restarted server takes its outcome over (the operation ends succeeded or failed with a
// reason, never left running), and the VM was never stopped: no restart needed, the guest's counter keeps counting,
// `vm exec` answers. At the end the protected checkpoint, and one a worker finished alone, restore the guest exactly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, killVmsIn } from '../helpers/server.ts';
import { ensureTinyImage } from '../helpers/images.ts';

const BIN = join(import.meta.dirname, '../../bin/oriel.js');
const PASSWORD = 'crash-test-password';
const TRIALS = Number(process.env.ORIEL_CRASH_TRIALS ?? 20);

describe('checkpoints survive crashes', () => {
  let dir: string;
  let server: ChildProcess | undefined;
  let api: Client;
  let url = '';

  async function startServer(): Promise<void> {
    const env = {
      ...process.env,
      ORIEL_DATA_DIR: join(dir, 'data'),
      ORIEL_ADMIN_PASSWORD: PASSWORD,
      ORIEL_ACCEL: 'tcg',
      ORIEL_LOG_LEVEL: 'warn',
      ORIEL_PORT: url ? new URL(url).port : '0',
    };
    const p = spawn(process.execPath, [BIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stderr!.on('data', (d) => process.env.ORIEL_TEST_VERBOSE && process.stderr.write(d));
    server = p;
    let out = '';
    p.stderr!.on('data', (d) => (out += d));
    url = await new Promise<string>((resolve, reject) => {
      // A restarted server first waits for a capture worker the previous one left (it may be finishing alone).
      const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60_000);
      p.stdout!.on('data', (d) => {
        out += d;
        const m = /running at (http:\S+)/.exec(out);
        if (m) { clearTimeout(timer); resolve(m[1]!); }
      });
    });
    const login = await new Client(() => url).post('/api/auth/login', {
      username: 'admin',
      password: PASSWORD,
      tokenName: 'crash',
    });
    api = new Client(() => url, login.body.token);
  }

  async function killServer(): Promise<void> {
    const p = server!;
    p.kill('SIGKILL');
    if (p.exitCode === null && p.signalCode === null) await new Promise((r) => p.once('exit', r));
  }

  async function waitOp(id: string): Promise<{ status: string; error: string | null; result?: any; log: string[] }> {
    return (await api.get(`/api/operations/${id}/wait?timeoutSec=120`)).body;
  }

  const exec = async (script: string) =>
    (await api.post('/api/vms/c/exec', { argv: ['sh', '-c', script], timeoutSec: 90 })).body;

  before(async () => {
    await ensureTinyImage();
    dir = mkdtempSync(join(tmpdir(), 'ocr-'));
    await startServer();
    assert.equal((await api.post('/api/vms', { name: 'c', image: 'tiny', memoryMiB: 128 })).status, 201);
    assert.equal((await api.post('/api/vms/c/start')).body.state, 'running');
  });
  after(async () => {
    await api.post('/api/vms/c/force-stop').catch(() => undefined);
    if (server && server.exitCode === null) await killServer();
    killVmsIn(join(dir, 'data'));
    rmSync(dir, { recursive: true, force: true });
  });

  let good = '';
  /** How long an uninterrupted checkpoint takes here, from request to manifest (updated as the test goes). */
  let typicalMs = 2000;

  test('a checkpoint to protect', async () => {
    assert.equal(
      (
        await exec(
          'echo protected > /tmp/mark; echo protected | dd of=/dev/vda conv=sync oflag=direct 2>/dev/null; sync',
        )
      ).exitCode,
      0,
    );
    const op = await api.post('/api/vms/c/checkpoints', { label: 'good' });
    const done = await waitOp(op.body.id);
    assert.equal(done.status, 'succeeded', done.error ?? '');
    good = done.result.id;
    // A second (incremental) one: how long a checkpoint usually takes here now, to kill things within that time.
    const base = await waitOp((await api.post('/api/vms/c/checkpoints', { label: 'baseline' })).body.id);
    assert.equal(base.status, 'succeeded', base.error ?? '');
    typicalMs = Math.max(1000, base.result.durationMs);
  });

  // A counter in the guest (tmpfs), so a frozen guest shows even if something else still answers.
  const counter = async () => Number((await exec('cat /tmp/counter')).stdout.trim());
  const startCounter = () =>
    exec(
      '[ -f /tmp/counter.pid ] && kill -0 $(cat /tmp/counter.pid) 2>/dev/null || { (i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.1; done) >/dev/null 2>&1 & echo $! > /tmp/counter.pid; }; sleep 0.3',
    );

  /** Checkpoints a worker finished alone after its server was killed, with the mark they must restore. */
  const finishedByWorker: { id: string; mark: string }[] = [];

  async function trials(kill: 'oriel' | 'qemu', n: number): Promise<void> {
    const log: string[] = [];
    const outcomes = { succeeded: 0, failed: 0 };
    for (let i = 0; i < n; i++) {
      const killOriel = kill === 'oriel';
      if (killOriel) await startCounter();
      await exec(`echo trial-${i} > /tmp/mark; echo trial-${i} | dd of=/dev/vda conv=sync oflag=direct 2>/dev/null`);
      const op = await api.post('/api/vms/c/checkpoints', { label: `trial ${i}` });
      assert.equal(op.status, 202, JSON.stringify(op.body));
      // A random moment within a checkpoint's usual duration on this machine now (or a little after it).
      const delay = Math.floor(Math.random() * 1.2 * typicalMs);
      await sleep(delay);
      const what = `trial ${i} (${kill} killed after ${delay} ms)`;
      if (killOriel) {
        await killServer();
        await startServer();
        // The VM was never stopped: re-attached, running, and its guest is not frozen.
        const vm = (await api.get('/api/vms/c')).body;
        assert.equal(vm.state, 'running', `${what}: ${JSON.stringify(vm)}`);
        const c1 = await counter();
        await sleep(700);
        const c2 = await counter();
        assert.ok(c2 > c1, `${what}: the guest's counter moves on (${c1} → ${c2})`);
        // The interrupted operation ends, one way or the other, with a reason when it failed.
        const done = await waitOp(op.body.id);
        assert.ok(['succeeded', 'failed'].includes(done.status), `${what}: operation ${done.status}`);
        outcomes[done.status as 'succeeded' | 'failed']++;
        if (done.status === 'failed') {
          assert.match(done.error ?? '', /server stopped|capture worker|failed/, what);
        } else {
          const cp = (await api.get('/api/vms/c/checkpoints')).body.find(
            (c: { id: string }) => c.id === done.result.id,
          );
          assert.ok(cp, `${what}: the checkpoint the operation names is listed`);
          // Taken over by the restarted server: the worker ended this checkpoint after its server was gone.
          if (done.log.includes('the server restarted; the operation continues'))
            finishedByWorker.push({ id: cp.id, mark: `trial-${i}` });
        }
        log.push(
          `oriel@${delay}ms:${done.status}${done.log.includes('the server restarted; the operation continues') ? ' by worker' : ''}${done.error ? ` (${done.error.slice(0, 80)})` : ''}`,
        );
      } else {
        const pid = (await api.get('/api/vms/c')).body.pid;
        if (pid) process.kill(pid, 'SIGKILL');
        const done = await waitOp(op.body.id);
        outcomes[done.status === 'succeeded' ? 'succeeded' : 'failed']++;
        for (let k = 0; k < 50 && (await api.get('/api/vms/c')).body.state !== 'crashed'; k++) await sleep(100);
        let vm = (await api.get('/api/vms/c')).body;
        if (vm.state === 'crashed' || vm.state === 'stopped') vm = (await api.post('/api/vms/c/start')).body;
        assert.equal(vm.state, 'running', `${what}: ${JSON.stringify(vm)}`);
        log.push(`qemu@${delay}ms:${done.status}`);
      }
      // The protected checkpoint after every trial (every hash it names, its disk image); all of them after the
      // batch.
      const res = await waitOp((await api.post('/api/vms/c/checkpoints/verify', { id: good })).body.id);
      assert.equal(res.status, 'succeeded', `${what}: the protected checkpoint verifies: ${res.error}`);
      assert.deepEqual(res.result.checked, [good], `${what}: the protected checkpoint is still there`);
      const alive = await exec('true');
      assert.equal(alive.exitCode, 0, `${what}: the guest answers: ${JSON.stringify(alive)}`);
    }
    const all = await waitOp((await api.post('/api/vms/c/checkpoints/verify')).body.id);
    assert.equal(all.status, 'succeeded', `after ${n} ${kill} kills every checkpoint verifies: ${all.error}`);
    const listed = (await api.get('/api/vms/c/checkpoints')).body.map((c: { id: string }) => c.id);
    assert.deepEqual([...all.result.checked].sort(), [...listed].sort(), 'every listed checkpoint was checked');
    assert.ok(listed.includes(good), 'the protected checkpoint is among them');
    // Checkpoints keep working after all that.
    const after = await waitOp((await api.post('/api/vms/c/checkpoints', { label: 'after' })).body.id);
    assert.equal(after.status, 'succeeded', after.error ?? '');
    typicalMs = Math.max(1000, after.result.durationMs);
    console.log(
      `${kill} kills: ${log.join(' ')}; checkpoint operations ${outcomes.succeeded} succeeded, ${outcomes.failed} failed`,
    );
  }

  test(`${TRIALS / 2} checkpoints with QEMU killed at random moments never break the earlier one`, () =>
    trials('qemu', TRIALS / 2));

  test(`${TRIALS / 2} checkpoints with the Oriel server killed at random moments: the VM runs on, the checkpoint ends cleanly`, () =>
    trials('oriel', TRIALS / 2));

  test('the protected checkpoint, and one a worker finished alone, restore the guest exactly', async () => {
    if (!server || server.exitCode !== null || server.signalCode !== null) await startServer();
    const byWorker = finishedByWorker.at(-1);
    for (const [id, mark] of [...(byWorker ? [[byWorker.id, byWorker.mark]] : []), [good, 'protected']] as [
      string,
      string,
    ][]) {
      const op = await api.post(`/api/vms/c/checkpoints/${id}/restore`);
      const done = await waitOp(op.body.id);
      assert.equal(done.status, 'succeeded', done.error ?? '');
      const r = await exec('cat /tmp/mark; dd if=/dev/vda bs=512 count=1 iflag=direct 2>/dev/null | head -1');
      assert.equal(r.stdout, `${mark}\n${mark}\n`, `checkpoint ${id}`);
    }
  });
});

// The QMP client against real QEMU (TCG, no guest: `-machine none` starts at once), plus a fake server only for
// what QEMU cannot be made to do (leave a command unanswered, send a malformed line).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  QmpClient, QmpClosedError, QmpConnectError, QmpError, QmpProtocolError, QmpTimeoutError, type QmpEvent,
} from '../../../src/vm/qmp/index.ts';
import { Fixtures, fakeQmp, qemuVersion } from './helpers.ts';

/** How fast a dead QEMU must show: its socket closes when the kernel reaps its descriptors. */
const PROMPT_MS = 2000;

/** Resolves with how long `promise` took to settle (either way), for "rejects quickly" assertions. */
async function settleTime(promise: Promise<unknown>): Promise<number> {
  const t0 = Date.now();
  await promise.catch(() => undefined);
  return Date.now() - t0;
}

describe('QmpClient on a running QEMU', () => {
  const fx = new Fixtures();
  const sock = fx.socketPath();
  let qmp: QmpClient;

  before(async () => {
    fx.qemu(sock);
    qmp = await QmpClient.connect(sock, { retryUntilMs: 10_000 });
  });
  after(async () => {
    await qmp?.close();
    await fx.cleanup();
  });

  test('reads the greeting: version and capabilities', () => {
    const v = qemuVersion();
    assert.deepEqual({ major: qmp.version.major, minor: qmp.version.minor, micro: qmp.version.micro }, v);
    assert.equal(typeof qmp.version.package, 'string');
    assert.ok(qmp.capabilities.includes('oob'), `capabilities: ${qmp.capabilities.join(',')}`);
    assert.equal(qmp.isClosed, false);
  });

  test('query-status, typed and untyped', async () => {
    assert.deepEqual(await qmp.queryStatus(), { status: 'running', running: true, singlestep: false });
    const raw = await qmp.execute<{ status: string }>('query-status', {});
    assert.equal(raw.status, 'running');
  });

  test('an unknown command rejects with QmpError CommandNotFound', async () => {
    const err = await qmp.execute('no-such-command').then(() => assert.fail('resolved'), (e: unknown) => e);
    assert.ok(err instanceof QmpError);
    assert.equal(err.errorClass, 'CommandNotFound');
    assert.equal(err.command, 'no-such-command');
    assert.match(err.desc, /no-such-command/);
    assert.match(err.message, /^QMP no-such-command failed: CommandNotFound: /);
  });

  test('bad arguments reject with QmpError GenericError, and the client goes on', async () => {
    await assert.rejects(
      // @ts-expect-error: query-status takes no arguments; QEMU checks that too
      qmp.execute('query-status', { bogus: 1 }),
      (e: QmpError) => e.errorClass === 'GenericError' && /bogus/.test(e.desc),
    );
    await assert.rejects(
      // @ts-expect-error: screendump needs a filename
      qmp.execute('screendump', {}),
      (e: QmpError) => e.errorClass === 'GenericError' && /filename/.test(e.desc),
    );
    assert.equal((await qmp.queryStatus()).status, 'running');
  });

  test('concurrent commands each get their own reply, including a ~200 KB one split over many chunks', async () => {
    const [schema, status, hmp, version, name] = await Promise.all([
      qmp.execute<{ name: string; 'meta-type': string }[]>('query-qmp-schema'),
      qmp.queryStatus(),
      qmp.execute('human-monitor-command', { 'command-line': 'info version' }),
      qmp.execute('query-version'),
      qmp.execute<Record<string, never>>('query-name'),
    ]);
    assert.ok(JSON.stringify(schema).length > 100_000, 'the schema is large');
    assert.ok(schema.some((e) => e.name === 'screendump' && e['meta-type'] === 'command'));
    assert.equal(status.status, 'running');
    assert.match(hmp, new RegExp(`^${qmp.version.major}\\.${qmp.version.minor}\\.${qmp.version.micro}`));
    assert.equal(version.qemu.minor, qmp.version.minor);
    assert.deepEqual(name, {});
  });

  test('STOP and RESUME reach callbacks, every iterator, and waitForEvent', async () => {
    const seen: string[] = [];
    const off = qmp.onEvent((e) => seen.push(e.event));
    const it1 = qmp.events();
    const it2 = qmp.events();
    const resumed = qmp.waitForEvent('RESUME', { timeoutMs: 5000 });
    await qmp.execute('stop');
    assert.equal((await qmp.queryStatus()).status, 'paused');
    await qmp.execute('cont');
    const resume = await resumed;
    assert.equal(resume.event, 'RESUME');
    assert.ok(Math.abs(resume.timestamp.seconds - Date.now() / 1000) < 60, 'timestamp is the host clock');
    assert.ok(resume.timestamp.microseconds >= 0 && resume.timestamp.microseconds < 1e6);
    for (const it of [it1, it2]) {
      const names = [(await it.next()).value.event, (await it.next()).value.event];
      assert.deepEqual(names, ['STOP', 'RESUME']);
    }
    assert.deepEqual(seen, ['STOP', 'RESUME']);
    off();
    await qmp.execute('stop');
    await qmp.execute('cont');
    assert.deepEqual(seen, ['STOP', 'RESUME'], 'an unsubscribed callback hears nothing more');
    // it1 buffered the second STOP/RESUME; leaving the loop early unsubscribes it and ends it.
    for await (const e of it1) {
      assert.equal(e.event, 'STOP');
      break;
    }
    assert.deepEqual(await it1.next(), { value: undefined, done: true });
    await it2.return!();
  });

  test('an iterator sees only events raised after it was created', async () => {
    await qmp.execute('stop');
    const it = qmp.events();
    await qmp.execute('cont');
    assert.equal((await it.next()).value.event, 'RESUME');
    await it.return!();
  });

  test('waitForEvent applies its filter and times out with QmpTimeoutError', async () => {
    const never = qmp.waitForEvent('STOP', { timeoutMs: 300, filter: (e: QmpEvent) => e.data !== undefined });
    await qmp.execute('stop');
    await qmp.execute('cont');
    const err = await never.then(() => assert.fail('resolved'), (e: unknown) => e);
    assert.ok(err instanceof QmpTimeoutError);
    assert.equal(err.timeoutMs, 300);
    assert.match(err.message, /QMP wait for event STOP timed out after 300 ms/);
  });

  test('a second client gets no greeting while this one holds the socket: its handshake times out', async () => {
    await assert.rejects(QmpClient.connect(sock, { timeoutMs: 300 }), (e: QmpTimeoutError) =>
      e instanceof QmpTimeoutError && /handshake .* timed out after 300 ms/.test(e.message));
    assert.equal((await qmp.queryStatus()).status, 'running');
  });
});

describe('QmpClient and the life of the QEMU process', () => {
  const fx = new Fixtures();
  after(() => fx.cleanup());

  test('connect retries until QEMU has created its socket', async () => {
    const sock = fx.socketPath();
    const connecting = QmpClient.connect(sock, { retryUntilMs: 10_000 });
    await sleep(300);
    assert.equal(existsSync(sock), false);
    fx.qemu(sock);
    const qmp = await connecting;
    assert.equal((await qmp.queryStatus()).status, 'running');
    await qmp.close();
  });

  test('connect without retrying fails at once on a missing socket', async () => {
    const t0 = Date.now();
    await assert.rejects(QmpClient.connect(join(fx.dir, 'missing.sock')), (e: QmpConnectError) =>
      e instanceof QmpConnectError && e.code === 'ENOENT' && /missing\.sock/.test(e.message));
    assert.ok(Date.now() - t0 < 500);
  });

  test('SIGKILL: pending calls reject with QmpClosedError at once, closed resolves, iterators end', async () => {
    const sock = fx.socketPath();
    const q = fx.qemu(sock);
    const qmp = await QmpClient.connect(sock, { retryUntilMs: 10_000 });
    const it = qmp.events();
    // Frozen, QEMU cannot answer: the command is surely pending when it dies.
    process.kill(q.pid, 'SIGSTOP');
    const pending = qmp.queryStatus();
    const waiting = qmp.waitForEvent('SHUTDOWN', { timeoutMs: 60_000 });
    await sleep(100);
    process.kill(q.pid, 'SIGKILL');
    const took = await settleTime(pending);
    assert.ok(took < PROMPT_MS, `rejected after ${took} ms`);
    await assert.rejects(
      pending,
      (e: QmpClosedError) =>
        e instanceof QmpClosedError &&
        e.command === 'query-status' &&
        /QMP query-status failed: QEMU closed the QMP socket/.test(e.message),
    );
    await assert.rejects(waiting, QmpClosedError);
    await qmp.closed;
    assert.equal(qmp.isClosed, true);
    assert.deepEqual(await it.next(), { value: undefined, done: true });
    await assert.rejects(
      qmp.execute('cont'),
      (e: QmpClosedError) => e instanceof QmpClosedError && e.command === 'cont',
    );
    assert.equal((await q.exited).signal, 'SIGKILL');
  });

  test('quit: QEMU exits cleanly and the client closes', async () => {
    const sock = fx.socketPath();
    const q = fx.qemu(sock);
    const qmp = await QmpClient.connect(sock, { retryUntilMs: 10_000 });
    const shutdown = qmp.waitForEvent('SHUTDOWN');
    await qmp.quit();
    assert.equal(qmp.isClosed, true);
    assert.equal(((await shutdown).data as { reason?: string }).reason, 'host-qmp-quit');
    assert.deepEqual(await q.exited, { code: 0, signal: null }, q.stderr());
    await assert.rejects(qmp.quit(), QmpClosedError);
  });

  test('close() leaves QEMU running, fails later calls, and frees the socket for the next client', async () => {
    const sock = fx.socketPath();
    fx.qemu(sock);
    const first = await QmpClient.connect(sock, { retryUntilMs: 10_000 });
    await first.close();
    await assert.rejects(first.queryStatus(), (e: QmpClosedError) =>
      e instanceof QmpClosedError && /QMP query-status failed: the QMP client was closed/.test(e.message));
    await assert.rejects(first.waitForEvent('STOP'), QmpClosedError);
    const second = await QmpClient.connect(sock, { timeoutMs: 5000 });
    assert.equal((await second.queryStatus()).status, 'running');
    await second.close();
  });

  test('typed screendump writes a PNG (q35, CPU stopped with -S)', async () => {
    const sock = fx.socketPath();
    fx.qemu(sock, ['-machine', 'q35', '-S', '-vga', 'std']);
    const qmp = await QmpClient.connect(sock, { retryUntilMs: 10_000 });
    assert.deepEqual(await qmp.queryStatus(), { status: 'prelaunch', running: false, singlestep: false });
    const file = join(fx.dir, 'screen.png');
    assert.deepEqual(await qmp.execute('screendump', { filename: file, format: 'png' }), {});
    assert.deepEqual([...readFileSync(file).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    await qmp.quit();
  });
});

describe('QmpClient against a fake server (conditions QEMU does not produce)', () => {
  const fx = new Fixtures();
  after(() => fx.cleanup());

  test('an unanswered command times out; its late reply is dropped, not given to the next command', async () => {
    let held: unknown;
    const path = await fx.fakeServer((s) =>
      fakeQmp(s, (cmd, sock) => {
        if (cmd.execute === 'slow') held = cmd.id;
        else
          sock.write(
            `${JSON.stringify({ return: 'late', id: held })}\r\n${JSON.stringify({ return: 'mine', id: cmd.id })}\r\n`,
          );
      }),
    );
    const qmp = await QmpClient.connect(path);
    const err = await qmp.execute('slow', undefined, { timeoutMs: 50 }).then(
      () => assert.fail('resolved'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof QmpTimeoutError);
    assert.equal(err.command, 'slow');
    assert.equal(err.timeoutMs, 50);
    assert.equal(err.message, 'QMP command slow timed out after 50 ms');
    assert.equal(await qmp.execute('fast'), 'mine');
    assert.equal(qmp.isClosed, false);
    await qmp.close();
  });

  test('a malformed line rejects pending calls with QmpProtocolError and closes the client', async () => {
    const path = await fx.fakeServer((s) => fakeQmp(s, (_cmd, sock) => sock.write('{"return": {}, "id": \r\n')));
    const qmp = await QmpClient.connect(path);
    const it = qmp.events();
    await assert.rejects(qmp.execute('anything'), (e: QmpProtocolError) =>
      e instanceof QmpProtocolError && e.line === '{"return": {}, "id": \r' && /not JSON/.test(e.message));
    assert.equal(qmp.isClosed, true);
    await qmp.closed;
    assert.deepEqual(await it.next(), { value: undefined, done: true });
    await assert.rejects(
      qmp.execute('anything'),
      (e: QmpClosedError) => e instanceof QmpClosedError && e.cause instanceof QmpProtocolError,
    );
  });

  test('a server that does not greet first is refused', async () => {
    const path = await fx.fakeServer((s) => {
      s.on('error', () => undefined);
      s.write('{"return": {}}\r\n');
    });
    await assert.rejects(
      QmpClient.connect(path),
      (e: QmpProtocolError) => e instanceof QmpProtocolError && /greeting/.test(e.message),
    );
  });
});

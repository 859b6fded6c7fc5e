// The QMP transcript (src/vm/qmp/transcript.ts): off unless ORIEL_QMP_TRANSCRIPT=1; then every line sent and
// received lands in qmp-transcript.log beside the socket, in order, for failure artefacts (test/helpers/artifacts.ts).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { QmpClient } from '../../../src/vm/qmp/index.ts';
import { TRANSCRIPT_FILE } from '../../../src/vm/qmp/transcript.ts';
import { Fixtures, fakeQmp } from './helpers.ts';

const fx = new Fixtures();
const saved = process.env.ORIEL_QMP_TRANSCRIPT;
after(async () => {
  if (saved === undefined) delete process.env.ORIEL_QMP_TRANSCRIPT;
  else process.env.ORIEL_QMP_TRANSCRIPT = saved;
  await fx.cleanup();
});

const answering = () =>
  fx.fakeServer((s) => fakeQmp(s, (cmd, sock) => sock.write(`${JSON.stringify({ return: { n: 7 }, id: cmd.id })}\r\n`)));

test('with ORIEL_QMP_TRANSCRIPT=1 every line both ways is written, in order', async () => {
  process.env.ORIEL_QMP_TRANSCRIPT = '1';
  const path = await answering();
  const file = join(fx.dir, TRANSCRIPT_FILE);
  rmSync(file, { force: true });
  const qmp = await QmpClient.connect(path);
  assert.deepEqual(await qmp.execute('query-anything'), { n: 7 });
  await qmp.close();
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(' ').slice(2).join(' '));
  assert.equal(lines.length, 5, lines.join('\n'));
  assert.match(lines[0]!, /^<- \{"QMP": \{"version"/);
  assert.match(lines[1]!, /^-> \{"execute":"qmp_capabilities","id":1\}$/);
  assert.match(lines[2]!, /^<- \{"return":\{\},"id":1\}/);
  assert.match(lines[3]!, /^-> \{"execute":"query-anything","id":2\}$/);
  assert.match(lines[4]!, /^<- \{"return":\{"n":7\},"id":2\}/);
});

test('off by default: no file', async () => {
  delete process.env.ORIEL_QMP_TRANSCRIPT;
  const path = await answering();
  const file = join(fx.dir, TRANSCRIPT_FILE);
  rmSync(file, { force: true });
  const qmp = await QmpClient.connect(path);
  await qmp.execute('query-anything');
  await qmp.close();
  assert.equal(existsSync(file), false);
});

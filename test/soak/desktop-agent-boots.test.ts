// Soak tier (not part of `npm test`; run with `node scripts/run-tests.js test/soak`): boots the desktop image in ten
// fresh VMs one after another and checks, on every boot, that the SPICE agent is there when the ready marker is
// printed: capabilities exchanged at once, a small file arrives in ~/Downloads. An agent that starts on some boots
// only (a udev ordering race, seen before the image waited for its virtio-serial ports with path units) fails here.
// About 10 x 60 s under TCG on 2 cores.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeFileSource, openSpiceSession } from '../../src/spice-node/index.ts';
import { startDesktopVm } from '../helpers/desktop.ts';
import { killVmsIn, startTestServer } from '../helpers/server.ts';

const BOOTS = Number(process.env.ORIEL_SOAK_BOOTS ?? 10);
const ts = await startTestServer();
const dir = mkdtempSync(join(tmpdir(), 'osoak-'));
after(async () => {
  await killVmsIn(ts.config.dataDir);
  await ts.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test(`the SPICE agent is ready on ${BOOTS} boots out of ${BOOTS} of fresh desktop VMs`, { timeout: BOOTS * 360_000 }, async () => {
  const rows: string[] = [];
  for (let i = 1; i <= BOOTS; i++) {
    const name = `soak-${i}`;
    const vm = await startDesktopVm(ts, name, { boot: true });
    const session = await openSpiceSession({
      url: `${ts.url.replace('http', 'ws')}/api/vms/${name}/spice`,
      headers: { authorization: `Bearer ${ts.adminToken}` },
    });
    try {
      const t0 = Date.now();
      // The marker promises a running agent: its capabilities must come within seconds, not after a wait.
      await session.agent.whenReady(15_000);
      const agentMs = Date.now() - t0;
      assert.ok(session.agent.caps.size > 5, `boot ${i}: agent caps ${[...session.agent.caps]}`);
      const content = `boot ${i} ${randomBytes(6).toString('hex')}\n`;
      const file = join(dir, `boot-${i}.txt`);
      writeFileSync(file, content);
      const src = await nodeFileSource(file);
      try {
        await session.agent.files.send(src);
      } finally {
        await src.close();
      }
      const r = await vm.execAsUser(['cat', `/home/user/Downloads/boot-${i}.txt`]);
      assert.equal(r.stdout, content, `boot ${i}: the file arrived`);
      rows.push(`boot ${String(i).padStart(2)}: ready ${(vm.bootMs / 1000).toFixed(1)} s, agent capabilities ${agentMs} ms after connecting, file ok`);
    } finally {
      session.close();
      await ts.admin.post(`/api/vms/${name}/force-stop`);
      await ts.admin.delete(`/api/vms/${name}`);
    }
  }
  console.log(rows.join('\n'));
});

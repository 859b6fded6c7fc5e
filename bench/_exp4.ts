import { CheckpointService } from '../src/checkpoint/index.ts';
import { makeRig, bootTiny } from '../test/checkpoint/helpers.ts';
const rig = await makeRig();
const svc = new CheckpointService(rig.vms, { root: CheckpointService.defaultRoot(rig.dataDir), qemuImg: rig.qemuImg });
const sh = async (cmd: string) => { const r = await rig.vms.exec('b', ['sh', '-c', cmd], 600_000); if (r.exitCode) throw new Error(r.stderr); return r.stdout.trim(); };
try {
  await bootTiny(rig, 'b', 2048);
  await sh('mkdir -p /mnt && mount -t tmpfs -o size=700m t /mnt && dd if=/dev/urandom of=/mnt/p bs=1M count=512 2>/dev/null');
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    const marks: string[] = [];
    const progress = Object.assign((s: string) => marks.push(`${Math.round(performance.now() - t0)} ${s}`), {});
    const m = await svc.create('b', { progress });
    marks.push(`${Math.round(performance.now() - t0)} done (pause ${m.stats.pauseMs} ms, ${(m.stats.newBytes / 1e6).toFixed(1)} MB new)`);
    console.log(marks.join(' | '));
    await new Promise((r) => setTimeout(r, 2000));
  }
} finally { await rig.destroy(); }

// Diagnostic: is a precopy stream's last version of each page the source's RAM at the end of the migration?
// Tiny guest (TCG) with memcheck rewriting 24 MiB; a raw precopy (pause-before-switchover + auto-converge) into a
// file; at postmigrate (guest still stopped) pmemsave of all RAM; then compares, page by page, the stream's last
// version of each pc.ram page with the dump.
import { readFileSync, rmSync } from 'node:fs';
import { MigrationStreamParser, PAGE_SIZE } from '../src/checkpoint/stream/index.ts';
import { makeRig, bootTiny } from '../test/checkpoint/helpers.ts';
import { Memcheck } from '../test/checkpoint/memcheck.ts';

const MEM = 160;
const caps = process.argv[2] ?? 'auto-converge,pause-before-switchover';
const rounds = Number(process.argv[3] ?? 3);
const rig = await makeRig();
try {
  await bootTiny(rig, 'o', MEM);
  const mc = new Memcheck(rig.vms, 'o');
  await mc.start(24);
  for (let r = 0; r < rounds; r++) {
    const file = `/tmp/precopy-oracle-${process.pid}.stream`;
    const dump = `/tmp/precopy-oracle-${process.pid}.mem`;
    await rig.vms.withQmp('o', async (qmp) => {
      const want = caps.split(',').filter(Boolean);
      const all = ['auto-converge', 'pause-before-switchover'];
      await qmp.execute('migrate-set-capabilities', {
        capabilities: [...all.map((c) => ({ capability: c, state: want.includes(c) })), { capability: 'events', state: true }],
      });
      await qmp.execute('migrate-set-parameters', { 'downtime-limit': 5, 'max-bandwidth': 64 * 2 ** 30 });
      const events: string[] = [];
      const off = qmp.onEvent((e) => {
        if (e.event === 'MIGRATION') events.push((e.data as { status: string }).status);
        if (e.event === 'MIGRATION_PASS') events.push(`pass${(e.data as { pass: number }).pass}`);
      });
      await qmp.execute('migrate', { uri: `exec:cat > ${file}` });
      const until = async (s: string[]) => {
        for (;;) {
          const hit = events.find((e) => s.includes(e));
          if (hit) return hit;
          await new Promise((res) => setTimeout(res, 2));
        }
      };
      if (want.includes('pause-before-switchover')) {
        await until(['pre-switchover', 'failed']);
        await qmp.execute('migrate-continue', { state: 'pre-switchover' });
      }
      const end = await until(['completed', 'failed']);
      if (end !== 'completed') throw new Error(end);
      for (;;) {
        const st = await qmp.queryStatus();
        if (st.status === 'postmigrate') break;
        await new Promise((res) => setTimeout(res, 1));
      }
      await qmp.execute('pmemsave', { val: 0, size: MEM * 2 ** 20, filename: dump });
      await qmp.execute('cont');
      off();
      console.log('events', events.join(' '));
    }, { ownRunState: true });
    await new Promise((res) => setTimeout(res, 500));
    const mem = readFileSync(dump);
    const last = new Map<number, Buffer | null>();
    const count = new Map<number, number>();
    let ramBlock = -1;
    const p = new MigrationStreamParser({
      blocks: (b) => { ramBlock = b.findIndex((x) => x.id === 'pc.ram'); },
      page: (block, index, data) => {
        if (block !== ramBlock) return;
        last.set(index, data ? Buffer.from(data) : null);
        count.set(index, (count.get(index) ?? 0) + 1);
      },
    });
    const s = readFileSync(file);
    for (let i = 0; i < s.length; i += 65536) p.push(s.subarray(i, i + 65536));
    const parsed = p.end();
    let differ = 0, missing = 0, resent = 0;
    const examples: string[] = [];
    for (let i = 0; i < (MEM << 20) / PAGE_SIZE; i++) {
      if (i >= 0xa0 && i < 0x100) continue; // VGA window and ROMs overlay pc.ram there
      const want = mem.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
      if (!last.has(i)) { missing++; continue; }
      if ((count.get(i) ?? 0) > 1) resent++;
      const got = last.get(i)!;
      const same = got ? got.equals(want) : want.every((b) => b === 0);
      if (!same) {
        differ++;
        if (examples.length < 8) examples.push(`0x${i.toString(16)}(x${count.get(i)})`);
      }
    }
    console.log(
      `round ${r}: ${s.length} B, ram sections ${parsed.stats.ramSections}, end ${parsed.stats.sawEnd}, ` +
        `pages re-sent ${resent}, missing ${missing}, DIFFER ${differ} ${examples.join(' ')}`,
    );
    if (r === rounds - 1 && process.argv.includes('--qemu-load')) {
      // QEMU's own loader on the same stream: a fresh QEMU, kept from starting the guest (stop while inmigrate).
      await rig.vms.forceStop('o');
      await rig.vms.start('o', { incoming: {} });
      const loaded = `${dump}.loaded`;
      await rig.vms.withQmp('o', async (qmp) => {
        await qmp.execute('stop');
        await qmp.execute('migrate-incoming', { uri: `exec:cat ${file}` });
        for (;;) {
          const m = await qmp.execute<{ status: string }>('query-migrate');
          if (m.status === 'completed' || m.status === 'failed') break;
          await new Promise((res) => setTimeout(res, 50));
        }
        console.log('loaded', (await qmp.queryStatus()).status);
        await qmp.execute('pmemsave', { val: 0, size: MEM * 2 ** 20, filename: loaded });
      }, { ownRunState: true });
      const q = readFileSync(loaded);
      let vsOurs = 0, vsSource = 0;
      for (let i = 0; i < (MEM << 20) / PAGE_SIZE; i++) {
        if (i >= 0xa0 && i < 0x100) continue;
        const a = q.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
        const got = last.get(i);
        if (!(got ? got.equals(a) : a.every((b) => b === 0))) vsOurs++;
        if (!a.equals(mem.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE))) vsSource++;
      }
      console.log(`QEMU's own load of the stream: differs from the parser's last versions in ${vsOurs} pages, ` +
        `from the source RAM at postmigrate in ${vsSource} pages`);
      rmSync(loaded, { force: true });
    }
    rmSync(file, { force: true });
    rmSync(dump, { force: true });
    await new Promise((res) => setTimeout(res, 1000));
  }
} finally {
  await rig.destroy();
}

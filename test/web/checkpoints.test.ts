// The Checkpoints tab end to end: Debian's chromium (playwright-core) against a real server with a real tiny guest
// under TCG. Take a checkpoint from the page (live progress, then the row with its size and pause), one taken
// through the API appears live, the uPlot chart draws both, a schedule (a bad one is refused with the server's
// message) takes scheduled checkpoints and the prune dry run lists them, restore as a new VM (a taken name is
// refused) opens the new, running VM with the checkpoint's RAM, restore in place asks first, verify shows its
// result (all good, then a corrupted pack file), delete asks first. Saves docs/checkpoints.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../helpers/server.ts';
import { ensureTinyImage } from '../helpers/images.ts';
import { formatBytes } from '../../src/web/lib/format.ts';
import { DOCS, ensureWebBuild, launchChromium, signIn, until } from './helpers.ts';

const VM = 'cpweb';
const COPY = 'cpweb-copy';

interface Cp {
  id: string;
  kind: string;
  createdAt: string;
  parent: string | null;
  pauseMs: number | null;
  newBytes: number;
  diskBytes: number;
  diskMode: string | null;
  label?: string;
}

describe('web UI: checkpoints', () => {
  let t: TestServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  let first: Cp;
  let second: Cp;

  const exec = async (vm: string, script: string) => {
    const r = await t.admin.post(`/api/vms/${vm}/exec`, { argv: ['sh', '-c', script], timeoutSec: 60 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return (r.body as { stdout: string }).stdout;
  };
  const checkpoints = async (): Promise<Cp[]> => (await t.admin.get(`/api/vms/${VM}/checkpoints`)).body;
  const rowIds = (p: Page) =>
    p.$$eval('#checkpoint-timeline tbody tr[data-id]', (rows: any[]) => rows.map((r) => r.dataset.id as string));
  /** No checkpoint operation of the VM is running (the tab lists running ones). */
  const settled = (p: Page) => p.waitForSelector('.cp-ops', { state: 'detached', timeout: 90_000 });
  const openTab = async (p: Page) => {
    await p.goto(`${t.url}/vms/${VM}?tab=checkpoints`);
    await p.waitForSelector('#checkpoint-timeline');
  };

  before(async () => {
    await ensureTinyImage();
    ensureWebBuild();
    t = await startTestServer();
    assert.equal((await t.admin.post('/api/vms', { name: VM, image: 'tiny', memoryMiB: 160 })).status, 201);
    assert.equal((await t.admin.post(`/api/vms/${VM}/start`)).body.state, 'running');
    await exec(VM, 'true'); // booted to its shells
    browser = await launchChromium();
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await signIn(page, t.url, 'admin', ADMIN_PASSWORD);
    mkdirSync(DOCS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await t?.destroy();
  });

  test('take a checkpoint from the page: live progress, then its row with size, pause and disk', async () => {
    await openTab(page);
    await page.waitForSelector('#checkpoints-empty');
    await page.click('#tab-checkpoints'); // the tab is the selected one
    assert.equal(await page.getAttribute('#tab-checkpoints', 'aria-selected'), 'true');
    await exec(VM, 'echo one > /tmp/mark');
    await page.fill('#checkpoint-label', 'before the upgrade');
    await page.click('#checkpoint-take');
    // The operation shows while it runs (its stage from the server), then the checkpoint's row.
    await page.waitForSelector('[id^=checkpoint-op-][data-kind="checkpoint.create"][data-status=running]', {
      timeout: 10_000,
    });
    assert.equal(await page.isDisabled('#checkpoint-take'), true, 'one checkpoint at a time');
    await page.waitForSelector('#checkpoint-timeline tr[data-kind=manual]', { timeout: 90_000 });
    await page.waitForSelector(`.notice:has-text("Checkpoint of ${VM} taken: the guest paused")`);
    await settled(page);

    const list = await checkpoints();
    assert.equal(list.length, 1);
    first = list[0]!;
    assert.equal(first.label, 'before the upgrade');
    assert.equal(first.diskMode, 'full');
    assert.ok(first.newBytes > 100_000, `RAM written: ${first.newBytes}`);
    const row = `#checkpoint-${first.id}`;
    assert.equal(Number(await page.getAttribute(`${row} .cp-size`, 'data-bytes')), first.newBytes + first.diskBytes);
    assert.equal((await page.textContent(`${row} .cp-size`))!.trim(), formatBytes(first.newBytes + first.diskBytes));
    assert.ok(first.pauseMs !== null && first.pauseMs > 0);
    assert.equal(Number(await page.getAttribute(`${row} .cp-pause`, 'data-ms')), first.pauseMs);
    assert.match((await page.textContent(`${row} .cp-pause`))!, /^\d+(\.\d)? ms$/);
    assert.equal(await page.getAttribute(`${row} .cp-disk`, 'data-disk'), 'full');
    assert.match((await page.textContent(`${row} .cp-time`))!, /before the upgrade/);
    assert.equal((await page.textContent(`${row} .cp-parent`))!.trim(), '—');
    assert.equal(await page.isDisabled('#checkpoint-take'), false);
  });

  test('a checkpoint taken through the API appears live, with its parent; the plot draws every point', async () => {
    await exec(VM, 'echo two > /tmp/mark');
    const op = await t.admin.post(`/api/vms/${VM}/checkpoints`, { label: 'from the API' });
    assert.equal(op.status, 202);
    await until('the second row', async () => (await rowIds(page)).length === 2 || undefined, 90_000);
    second = (await checkpoints()).find((c) => c.id !== first.id)!;
    assert.deepEqual(await rowIds(page), [second.id, first.id], 'newest first');
    assert.equal(second.parent, first.id);
    const parentText = (await page.textContent(`#checkpoint-${second.id} .cp-parent`))!.trim();
    assert.equal(parentText, (await page.textContent(`#checkpoint-${first.id} .cp-time div`))!.trim());
    assert.equal(await page.getAttribute(`#checkpoint-${second.id} .cp-disk`, 'data-disk'), 'incremental');

    await page.waitForSelector('#checkpoint-plot[data-points="2"] canvas');
    // uPlot drew both series: pixels of the size (blue) and pause (orange) colours on its canvas.
    const counts = await until('plotted series', async () => {
      // A string, not a function: tsx would wrap a named inner function in a helper the page does not have.
      const c = (await page.evaluate(`(() => {
        const canvas = document.querySelector('#checkpoint-plot canvas');
        const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
        let size = 0, pause = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (data[i + 3] < 200) continue;
          if (Math.abs(data[i] - 0x24) < 40 && Math.abs(data[i + 1] - 0x63) < 40 && Math.abs(data[i + 2] - 0xeb) < 40) size++;
          if (Math.abs(data[i] - 0xd9) < 40 && Math.abs(data[i + 1] - 0x77) < 40 && Math.abs(data[i + 2] - 0x06) < 40) pause++;
        }
        return { size, pause, width: canvas.width };
      })()`)) as { size: number; pause: number; width: number };
      return c.size > 40 && c.pause > 40 ? c : undefined;
    }, 10_000);
    assert.ok(counts.width > 300, `canvas ${counts.width} px wide`);
  });

  test("schedule: a bad one shows the server's error; a good one is listed, takes scheduled checkpoints; the prune dry run lists them", async () => {
    await page.fill('#schedule-every', 'sometimes');
    await page.click('#schedule-save');
    await page.waitForSelector('#schedule-error');
    assert.match(
      (await page.textContent('#schedule-error'))!,
      /must be an interval \(30s, 5m, 2h, 1d\) or a cron expression/,
    );
    assert.equal((await t.admin.get(`/api/vms/${VM}/checkpoint-schedule`)).status, 404);

    // Every 4 s, keeping the last 2 scheduled ones: they come in live.
    await page.fill('#schedule-every', '4s');
    await page.fill('#schedule-keepLast', '2');
    await page.click('#schedule-save');
    await page.waitForSelector('#checkpoint-schedule[data-every="4s"]');
    assert.match((await page.textContent('#checkpoint-schedule-every'))!, /every 4 seconds/);
    assert.match((await page.textContent('#checkpoint-schedule-rules'))!, /keep last 2/);
    await page.waitForSelector('#checkpoint-timeline tr[data-kind=scheduled] ~ tr[data-kind=manual]', {
      timeout: 120_000,
    });
    await until(
      'two scheduled checkpoints',
      async () => (await page.$$('#checkpoint-timeline tr[data-kind=scheduled]')).length >= 2 || undefined,
      120_000,
    );

    // Hourly from now on: the schedule listed is the new one, and what the server stored.
    await page.fill('#schedule-every', '0 * * * *');
    await page.fill('#schedule-daily', '7');
    await page.click('#schedule-save');
    await page.waitForSelector('#checkpoint-schedule[data-every="0 * * * *"]');
    assert.match((await page.textContent('#checkpoint-schedule-rules'))!, /keep last 2, keep daily 7/);
    const s = (await t.admin.get(`/api/vms/${VM}/checkpoint-schedule`)).body;
    assert.equal(s.every, '0 * * * *');
    assert.deepEqual(s.rules, { keepLast: 2, daily: 7 });
    // Changed elsewhere (the CLI, another browser): the page follows through the event stream, no reload.
    const put = await t.admin.req('PUT', `/api/vms/${VM}/checkpoint-schedule`, {
      every: '0 */6 * * *',
      keepLast: 2,
      daily: 7,
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    await page.waitForSelector('#checkpoint-schedule[data-every="0 */6 * * *"]');
    // The form takes the new schedule in an effect, just after the list shows it.
    assert.equal(
      await until('the form follows the stored schedule', async () =>
        (await page.inputValue('#schedule-every')) === '0 */6 * * *' || undefined, 5000, 50),
      true,
    );
    await settled(page); // a scheduled run may have started before the change
    await until(
      'the list after the last run',
      async () => (await rowIds(page)).length === (await checkpoints()).length || undefined,
    );

    // Dry run with keep-last 1 and nothing else: every scheduled checkpoint but the newest would go, the manual
    // ones never. The rows are marked; nothing is deleted.
    await page.fill('#schedule-keepLast', '1');
    await page.fill('#schedule-daily', '');
    await page.click('#schedule-preview');
    await page.waitForSelector('#prune-preview');
    const all = await checkpoints();
    const sched = all.filter((c) => c.kind === 'scheduled').sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    assert.ok(sched.length >= 2);
    const expected = sched.slice(1).map((c) => c.id);
    assert.equal(Number(await page.getAttribute('#prune-preview', 'data-delete')), expected.length);
    const marked = await page.$$eval('#checkpoint-timeline tr.cp-would-prune', (rows: any[]) =>
      rows.map((r) => r.dataset.id as string),
    );
    assert.deepEqual(marked.sort(), [...expected].sort());
    assert.equal((await checkpoints()).length, all.length, 'a dry run deletes nothing');
    for (const b of await page.$$('.notice button')) await b.click().catch(() => undefined); // toasts off the picture
    await page.screenshot({ path: join(DOCS, 'checkpoints.png'), fullPage: true });
  });

  test('restore as a new VM: asks the name (a taken one is refused), goes to the new VM, which runs from the checkpoint', async () => {
    await openTab(page);
    await page.click(`#checkpoint-${first.id}-restore-as`);
    await page.waitForSelector('#restore-as-dialog');
    await page.fill('#restore-as-name', VM);
    await page.click('#restore-as-ok');
    await page.waitForSelector('#restore-as-error');
    assert.match((await page.textContent('#restore-as-error'))!, new RegExp(`a VM named '${VM}' already exists`));
    await page.fill('#restore-as-name', COPY);
    await page.click('#restore-as-ok');
    await page.waitForURL(new RegExp(`/vms/${COPY}$`));
    await page.waitForSelector(`#vm-${COPY}-state[data-state=running]`, { timeout: 120_000 });
    // The restore's operation is listed on the new VM's page, and the guest has the RAM of the first checkpoint.
    await page.waitForSelector('#operations .op[data-status=succeeded]', { timeout: 60_000 });
    assert.equal((await exec(COPY, 'cat /tmp/mark')).trim(), 'one');
    assert.equal((await exec(VM, 'cat /tmp/mark')).trim(), 'two', 'the original is untouched');
    assert.equal((await t.admin.post(`/api/vms/${COPY}/force-stop`)).status, 200);
    assert.equal((await t.admin.delete(`/api/vms/${COPY}`)).status, 204);
  });

  test('restore in place asks first and brings the RAM back; verify shows its result; delete asks first', async () => {
    await openTab(page);
    await page.click(`#checkpoint-${first.id}-restore`);
    await page.waitForSelector('#confirm-dialog');
    assert.match((await page.textContent('#confirm-dialog'))!, /is lost/);
    await page.click('#confirm-cancel');
    assert.equal((await exec(VM, 'cat /tmp/mark')).trim(), 'two', 'cancel changes nothing');

    await page.click(`#checkpoint-${first.id}-restore`);
    await page.click('#confirm-ok');
    await page.waitForSelector('[id^=checkpoint-op-][data-kind="checkpoint.restore"]', { timeout: 10_000 });
    await page.waitForSelector(`.notice:has-text("${VM} restored to the checkpoint of")`, { timeout: 90_000 });
    await settled(page);
    await page.waitForSelector(`#vm-${VM}-state[data-state=running]`, { timeout: 60_000 });
    assert.equal((await exec(VM, 'cat /tmp/mark')).trim(), 'one');

    await page.click('#checkpoint-verify-all');
    await page.waitForSelector('#checkpoint-verify-result[data-ok=true]', { timeout: 60_000 });
    const n = (await checkpoints()).length;
    assert.match(
      (await page.textContent('#checkpoint-verify-result'))!,
      new RegExp(`${n} checkpoints verified .*: every hash matches`),
    );
    assert.equal((await page.$$('#checkpoint-timeline .cp-verified')).length, n);

    await page.click(`#checkpoint-${second.id}-delete`);
    await page.click('#confirm-cancel');
    assert.ok((await checkpoints()).some((c) => c.id === second.id));
    await page.click(`#checkpoint-${second.id}-delete`);
    await page.click('#confirm-ok');
    await page.waitForSelector(`#checkpoint-${second.id}`, { state: 'detached' });
    assert.ok(!(await checkpoints()).some((c) => c.id === second.id));
    await page.waitForSelector('#checkpoint-plot[data-points]');
    assert.equal(Number(await page.getAttribute('#checkpoint-plot', 'data-points')), n - 1);
  });

  test('verify shows corruption: a flipped byte in a pack file marks the checkpoints that use it', async () => {
    const packs = (function walk(d: string): string[] {
      return readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(d, e.name)) : /pack/.test(e.name) ? [join(d, e.name)] : [],
      );
    })(join(t.config.dataDir, 'checkpoints')).sort((a, b) => statSync(b).size - statSync(a).size);
    assert.ok(packs.length > 0 && statSync(packs[0]!).size > 1_000_000, 'the first checkpoint\'s pack');
    const fd = openSync(packs[0]!, 'r+');
    const b = Buffer.alloc(1);
    const at = Math.floor(statSync(packs[0]!).size / 2);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);
    await page.click('#checkpoint-verify-all');
    await page.waitForSelector('#checkpoint-verify-result[data-ok=false]', { timeout: 60_000 });
    assert.match(
      (await page.textContent('#checkpoint-verify-result'))!,
      /Verify found corrupt data: .*corrupt checkpoints: /,
    );
    const broken = await page.$$eval('#checkpoint-timeline tr[data-id]:has(.cp-broken)', (rows: any[]) =>
      rows.map((r) => r.dataset.id as string),
    );
    assert.ok(broken.includes(first.id), `marked: ${broken.join(' ')}`);
  });

  test('a deletion elsewhere shows live; removing the schedule; no errors in the page', async () => {
    const victim = (await checkpoints()).find((c) => c.kind === 'scheduled')!;
    assert.equal((await t.admin.delete(`/api/vms/${VM}/checkpoints/${victim.id}`)).status, 204);
    await page.waitForSelector(`#checkpoint-${victim.id}`, { state: 'detached', timeout: 10_000 });
    await page.click('#schedule-remove');
    await page.waitForSelector('#checkpoint-schedule-none');
    assert.equal((await t.admin.get(`/api/vms/${VM}/checkpoint-schedule`)).status, 404);
    assert.deepEqual(pageErrors, []);
  });
});

// The real thing: Oriel's desktop guest (Debian, Xorg with the xf86-video-qxl driver, openbox, xterm) under QEMU
// -vga qxl (TCG), run by a real Oriel server (started from the saved desktop, test/helpers/desktop-snapshot.ts, so
// that the suite boots the desktop once), drawn by its X server through QXL's 2D commands, received by the Node SPICE
// client over the VM's loopback TCP SPICE with its password (as spice-server compresses for remote clients). Right
// after connecting, and again after commands run in the X session (a new root colour, a second xterm with colours,
// text scrolled through it, the window moved by the window manager), the client's framebuffer must equal QMP
// screendump pixel for pixel (spice-server renders the same commands into the guest's framebuffer with
// spice-common's canvas). The test also shows which drawing commands the guest used: each one that arrived was
// handled, none skipped. (test/vm/images/desktop.test.ts boots the desktop for real.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodePng, openSpiceSession, primarySurface } from '../../src/spice-node/index.ts';
import type { SpiceSession } from '../../src/spice/index.ts';
import { readSpiceEndpoint } from '../../src/vm/spice-endpoint.ts';
import { startDesktopVm, type DesktopVm } from '../helpers/desktop.ts';
import { killVmsIn, startTestServer, type TestServer } from '../helpers/server.ts';
import { waitForMatch, type CompareResult } from './helpers/compare.ts';
import { screendump, type Screen } from './helpers/qemu.ts';

const VM = 'draw';
let t: TestServer;
let vm: DesktopVm;
let g: Screen;
let dumps: string;

before(async () => {
  t = await startTestServer();
  vm = await startDesktopVm(t, VM);
  dumps = mkdtempSync(join(tmpdir(), 'oriel-desktop-draw-'));
  g = { dir: dumps, qmp: { execute: (c, a) => t.server.ctx.vms.qmp(VM).execute(c, a) } };
});
after(async () => {
  if (t) {
    await killVmsIn(t.config.dataDir);
    await t.destroy();
  }
});

/** A shell script as the desktop user, in the X session; rejects on a non-zero exit. */
async function runAsUser(script: string): Promise<string> {
  const r = await vm.execAsUser(['sh', '-c', script], { timeoutMs: 60_000 });
  if (r.exitCode !== 0) throw new Error(`guest: ${script} → ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

/** On a mismatch, keeps both pictures for a look (the path goes into the assertion message). */
async function saveMismatch(session: SpiceSession, what: string): Promise<string> {
  const dir = dumps;
  const s = primarySurface(session);
  if (s) writeFileSync(join(dir, `${what}-client.png`), encodePng({ width: s.width, height: s.height, data: s.data }));
  const ppm = await screendump(g);
  const rgba = new Uint8Array(ppm.width * ppm.height * 4);
  for (let i = 0, j = 0; i < ppm.rgb.length; i += 3, j += 4)
    rgba.set([ppm.rgb[i]!, ppm.rgb[i + 1]!, ppm.rgb[i + 2]!, 255], j);
  writeFileSync(join(dir, `${what}-screendump.png`), encodePng({ width: ppm.width, height: ppm.height, data: rgba }));
  return dir;
}

async function expectMatch(session: SpiceSession, what: string): Promise<CompareResult> {
  // The guest may still be drawing: retry until equal. Generous: two cores shared with other work.
  const cmp = await waitForMatch(session, g, 30_000);
  if (!cmp.equal)
    assert.fail(
      `${what}: ${cmp.differing} pixels differ (${cmp.width}×${cmp.height}), ${cmp.detail}; pictures in ${await saveMismatch(session, what)}`,
    );
  return cmp;
}

test(
  "desktop guest on qxl: Xorg's drawing commands render pixel-exact against screendump",
  { timeout: 600_000 },
  async (t0) => {
    let session: SpiceSession | undefined;
    try {
      const ep = readSpiceEndpoint(t.server.ctx.vms.paths(t.server.ctx.vms.records.byName(VM)!));
      assert.ok(ep, 'the VM has a TCP SPICE endpoint');
      session = await openSpiceSession({ host: '127.0.0.1', port: ep.port, password: ep.password });
      for (let i = 0; i < 100 && !session.display; i++) await sleep(50);
      const display = session.display!;
      assert.ok(display, 'display channel open');
      t0.diagnostic(`desktop ${vm.restored ? 'restored' : 'booted'} in ${Math.round(vm.bootMs / 1000)} s`);
      const first = await expectMatch(session, 'desktop');
      t0.diagnostic(
        `desktop ${first.width}×${first.height} equal; drawn so far ${JSON.stringify(display.displayStats.drawn)}`,
      );

      const before = { ...display.displayStats.drawn };
      // A new root colour (solid fills), a second terminal with colours, text scrolled through it (copies of its
      // contents up, new text), coloured text, then the window moved by the window manager (its contents copied, the
      // uncovered root repainted).
      await runAsUser("xsetroot -solid '#6a3d9a'");
      await runAsUser(
        "rm -f /tmp/tty2; setsid -f xterm -xrm 'XTerm*allowWindowOps: true' -bg '#203040' -fg '#e0d060' -geometry 48x12+320+220 -e sh -c 'tty > /tmp/tty2; exec sleep 1000000' > /dev/null 2>&1",
      );
      let tty = '';
      for (let i = 0; i < 240 && !tty; i++) {
        tty = (await runAsUser('cat /tmp/tty2 2>/dev/null || true')).trim();
        if (!tty) await sleep(500);
      }
      assert.match(tty, /^\/dev\/pts\/\d+$/, 'the second xterm runs');
      await runAsUser(
        `for i in $(seq 1 60); do echo "line $i of text scrolling through the second terminal"; done > ${tty}`,
      );
      await runAsUser(`printf '\\033[41;37m red \\033[42;30m green \\033[44;33m blue \\033[0m\\n' > ${tty}`);
      await runAsUser(`printf '\\033[3;60;80t' > ${tty}`); // xterm asks to move its window to (60, 80)
      await sleep(1000);
      const after = await expectMatch(session, 'after-commands');
      const drawn = display.displayStats.drawn;
      const delta = Object.fromEntries(Object.entries(drawn).map(([k, v]) => [k, v - (before[k] ?? 0)]));
      t0.diagnostic(`after commands (${after.width}×${after.height} equal): ${JSON.stringify(delta)}`);
      t0.diagnostic(
        `all drawing commands: ${JSON.stringify(drawn)}; images ${JSON.stringify(display.displayStats.decoded)}; skipped ${JSON.stringify(display.displayStats.skipped)}; surfaces now ${display.surfaces.size}`,
      );

      // What Xorg's qxl driver sends (xf86-video-qxl qxl_surface.c: solid fills, copies between surfaces and of
      // uploaded images, copy-bits for moves within a surface), all handled, nothing skipped.
      assert.ok((drawn.DRAW_FILL ?? 0) > 0, `DRAW_FILL used: ${JSON.stringify(drawn)}`);
      assert.ok((drawn.DRAW_COPY ?? 0) > 0, `DRAW_COPY used: ${JSON.stringify(drawn)}`);
      assert.ok(
        (delta.DRAW_FILL ?? 0) > 0 && (delta.DRAW_COPY ?? 0) > 0,
        `the commands drew: ${JSON.stringify(delta)}`,
      );
      // Moving a window copies its contents within the screen (the X server's CopyWindow → QXL copy-bits).
      assert.ok((delta.COPY_BITS ?? 0) > 0, `COPY_BITS used for the moved window: ${JSON.stringify(delta)}`);
      assert.deepEqual(display.displayStats.skipped, {}, 'no drawing command skipped');
      assert.deepEqual(session.display!.stats.ignored, {}, 'no display message ignored');
    } finally {
      session?.close();
    }
  },
);

// A second opinion: spice-gtk's spicy-screenshot (Debian spice-client-gtk; skipped when absent) and
// this client, one after the other against the same tiny guest over TCP (a photo-like picture as
// QUIC, then text over its top half as GLZ), must both produce exactly QMP screendump's picture.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { completePicture, openSpiceSession } from '../../src/spice-node/index.ts';
import { waitForMatch } from './helpers/compare.ts';
import { parsePpm, screendump } from './helpers/qemu.ts';
import { photo, startTinyGuest, textLike } from './helpers/tiny-guest.ts';

test(
  'spicy-screenshot (spice-gtk) and this client agree with screendump',
  async () => {
  // The reference client comes with the set-up (scripts/bootstrap.sh installs spice-client-gtk): missing, it fails.
  const spicy = spawnSync('spicy-screenshot', ['--version']);
  assert.equal(spicy.status, 0, `spicy-screenshot does not run (apt-get install spice-client-gtk): ${spicy.error ?? spicy.stderr}`);
  const g = await startTinyGuest({ tcp: true, vga: 'none', extraArgs: ['-device', 'VGA,xres=640,yres=480'] });
  try {
    await g.upload('photo', photo(640, 480));
    await g.upload('text', textLike(640, 480).subarray(0, 640 * 4 * 240)); // the top half: photo below
    const session = await openSpiceSession({ host: '127.0.0.1', port: g.q.spicePort });
    const first = await completePicture(session);
    assert.equal(first.completedBy, 'mark', 'the server marked the first picture complete');
    for (const picture of ['photo', 'text']) {
      await g.show(picture);
      const cmp = await waitForMatch(session, g.q);
      assert.ok(cmp.equal, `this client, ${picture}: ${cmp.differing} pixels differ, ${cmp.detail}`);
    }
    const decoded = session.display!.displayStats.decoded;
    assert.ok((decoded.quic ?? 0) > 0 && (decoded.glz_rgb ?? 0) > 0, JSON.stringify(decoded));
    session.close();

    const out = join(g.q.dir, 'spicy.ppm');
    await promisify(execFile)('spicy-screenshot', ['-h', '127.0.0.1', '-p', String(g.q.spicePort), '-o', out], {
      timeout: 30_000,
    });
    const theirs = parsePpm(readFileSync(out));
    const dump = await screendump(g.q);
    assert.deepEqual([theirs.width, theirs.height], [dump.width, dump.height]);
    let differing = 0;
    for (let i = 0; i < dump.rgb.length; i++) if (theirs.rgb[i] !== dump.rgb[i]) differing++;
    assert.equal(differing, 0, 'spicy-screenshot equals screendump');
  } finally {
    await g.stop();
  }
},
);

// index.html loads public/early-link.js, which opens a console page's main-channel WebSocket and sends its SPICE link
// message before the app's script arrives (console/transport.ts takes the socket over only if the bytes are what
// the core sends). They must be.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeLinkMess } from '../../src/spice/link.ts';
import { MAIN_CLIENT_CAPS } from '../../src/spice/channels/main.ts';
import { ChannelType } from '../../src/spice/proto/constants.ts';
import { consoleVmFor } from '../../src/api/console-page.ts';

const html = readFileSync(join(import.meta.dirname, '../../src/web/public/early-link.js'), 'utf8');

test("early-link.js's link message is the core's main-channel link message", () => {
  const m = /const link = new Uint8Array\(\[([\d,\s]+?),?\s*\]\)/.exec(html);
  assert.ok(m, 'early-link.js has the link bytes');
  const early = m[1]!.split(',').map(Number);
  const core = encodeLinkMess({ connectionId: 0, channelType: ChannelType.MAIN, channelId: 0,
    channelCaps: MAIN_CLIENT_CAPS });
  assert.deepEqual(early, [...core]);
});

test('the pages that start their console early: the console page and the console tab', () => {
  assert.equal(consoleVmFor('/vms/web1/console', ''), 'web1');
  assert.equal(consoleVmFor('/vms/a%20b', ''), 'a b');
  assert.equal(consoleVmFor('/vms/web1', '?tab=console'), 'web1');
  assert.equal(consoleVmFor('/vms/web1', '?tab=serial'), undefined);
  assert.equal(consoleVmFor('/', ''), undefined);
  assert.equal(consoleVmFor('/vms/%E0/console', ''), undefined);
});

// DisplayChannel.marked, which `oriel console screenshot` ends on (src/spice-node/client.ts completePicture): true
// only for a MARK that comes while a primary surface exists, false again when a primary surface is created or
// destroyed (a new picture gets its own MARK).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DisplayMsg } from '../../src/spice/proto/constants.ts';
import { miniMessage } from './helpers/fake.ts';
import { Body, play, surfaceCreate } from './helpers/draw-msgs.ts';

const MARK = miniMessage(DisplayMsg.MARK, new Uint8Array(0));
const destroy = (id: number) => miniMessage(DisplayMsg.SURFACE_DESTROY, new Body().u32(id).finish());

test('MARK marks the picture of the primary surface, and only that', async () => {
  assert.equal((await play(MARK)).display.marked, false, 'MARK before any surface');
  assert.equal((await play(MARK, surfaceCreate(0, 64, 48))).display.marked, false, 'surface after the MARK');
  assert.equal((await play(surfaceCreate(0, 64, 48), MARK)).display.marked, true);
  assert.equal(
    (await play(surfaceCreate(0, 64, 48), MARK, surfaceCreate(1, 8, 8, undefined, false))).display.marked,
    true,
    'an off-screen surface changes nothing',
  );
  assert.equal((await play(surfaceCreate(0, 64, 48), MARK, destroy(0))).display.marked, false, 'primary destroyed');
  assert.equal(
    (await play(surfaceCreate(0, 64, 48), MARK, destroy(0), surfaceCreate(0, 80, 60))).display.marked,
    false,
    'a new primary surface (mode change) waits for its own MARK',
  );
  assert.equal(
    (await play(surfaceCreate(0, 64, 48), MARK, destroy(0), surfaceCreate(0, 80, 60), MARK)).display.marked,
    true,
  );
});

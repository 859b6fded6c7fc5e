// Which cards of a real QEMU (7.2, no guest) have a peer, as `info network` says (src/vm/nic-links.ts): a restore
// waits for them before QEMU may send a frame (VmManager.waitCardsLinked).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { QmpClient } from '../../src/vm/qmp/index.ts';
import { peeredNetdevs } from '../../src/vm/nic-links.ts';
import { Fixtures } from './qmp/helpers.ts';

const fx = new Fixtures();
after(() => fx.cleanup());

test('a stream card has a peer once something is connected to its socket, not before', async () => {
  const sock = fx.socketPath();
  const nic = (i: number) => join(fx.dir, `nic${i}.sock`);
  fx.qemu(sock, ['-machine', 'q35', '-S', ...[0, 1].flatMap((i) => [
    '-netdev', `stream,id=net${i},server=on,addr.type=unix,addr.path=${nic(i)}`,
    '-device', `virtio-net-pci,netdev=net${i}`,
  ])]);
  const qmp = await QmpClient.connect(sock, { retryUntilMs: 10_000 });
  try {
    assert.deepEqual([...await peeredNetdevs(qmp)], [], 'no peer yet');
    const peer = createConnection(nic(1));
    try {
      const linked = await (async () => {
        for (let i = 0; i < 100; i++) {
          const p = await peeredNetdevs(qmp);
          if (p.size) return [...p];
          await new Promise((r) => setTimeout(r, 50));
        }
        return [];
      })();
      assert.deepEqual(linked, ['net1'], 'the card whose socket was dialled, only');
    } finally {
      peer.destroy();
    }
  } finally {
    await qmp.close();
  }
});

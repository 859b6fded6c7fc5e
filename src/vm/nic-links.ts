// Which of a QEMU's network cards have a peer now (the server's switch, src/network), as QEMU itself says in HMP
// `info network` (its NETDEV_STREAM_CONNECTED events reach only a QMP client that had negotiated when the card was
// linked, which a card linked while QEMU was still starting was not). QEMU 7.2 lists a stream netdev as
//   " \ net0: index=0,type=stream,"                        no peer
//   " \ net0: index=0,type=stream,unix:/path/to/nic0.sock"  a peer on the socket
import type { QmpClient } from './qmp/index.ts';

export async function peeredNetdevs(qmp: QmpClient): Promise<Set<string>> {
  const out = await qmp.execute('human-monitor-command', { 'command-line': 'info network' });
  const peered = new Set<string>();
  for (const m of out.matchAll(/^[\s\\]*([\w.-]+): index=\d+,type=stream,(unix:.*?)\r?$/gm)) peered.add(m[1]!);
  return peered;
}

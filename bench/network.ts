// Network benchmark, the switch alone (no QEMU): frames per second Oriel's switch forwards on this machine between
// two synthetic cards (unix sockets speaking QEMU's stream framing, as `-netdev stream,server=on` does), with every
// check it makes on a guest's frames (source MAC, IPv4 source, parsing), for small and full-size frames; and the
// round trip of one frame there and back (latency through the switch and the event loop).
// Guest-to-guest throughput and ping through QEMU (the switch beside QEMU's own -netdev socket and a Linux bridge):
// bench/network-guests.ts.
// Usage: node --import tsx bench/network.ts [frames=200000]
import { createServer, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Switch } from '../src/network/switch.ts';
import { gatewayMac, parseSubnet } from '../src/network/addresses.ts';
import { ethernet, ETHERTYPE_IPV4, ipNumber, udpPacket } from '../src/network/frames.ts';

const N = Number(process.argv[2] ?? 200_000);
const dir = mkdtempSync(join(tmpdir(), 'oriel-netbench-'));
const sw = new Switch();
sw.setNetwork({ id: 'b', name: 'bench', subnet: parseSubnet('10.99.0.0/24'), gatewayMac: gatewayMac('b'), nat: false,
  isolated: false }, new Map());

interface Card { sock: Socket; mac: string; ip: number; onFrames(n: number): void }
async function card(name: string, mac: string, ip: string): Promise<Card> {
  const c = { mac, ip: ipNumber(ip), onFrames: (_n: number) => undefined } as Card;
  let buf = Buffer.alloc(0);
  await new Promise<void>((resolve) => {
    createServer((s) => {
      c.sock = s;
      s.on('data', (d) => {
        buf = buf.length ? Buffer.concat([buf, d]) : d;
        let n = 0;
        let i = 0;
        while (buf.length - i >= 4 && buf.length - i >= 4 + buf.readUInt32BE(i)) { i += 4 + buf.readUInt32BE(i); n++; }
        buf = buf.subarray(i);
        if (n) c.onFrames(n);
      });
      resolve();
    }).listen(join(dir, `${name}.sock`), () =>
      sw.addPort('b', { id: name, vmName: name, mac, ip: c.ip, socketPath: join(dir, `${name}.sock`) }));
  });
  return c;
}

const a = await card('a', '02:0e:00:00:00:0a', '10.99.0.10');
const b = await card('b', '02:0e:00:00:00:0b', '10.99.0.11');
const frame = (from: Card, to: Card, size: number) => {
  const f = ethernet(to.mac, from.mac, ETHERTYPE_IPV4, udpPacket(from.ip, 9, to.ip, 9, Buffer.alloc(size - 42)));
  const h = Buffer.alloc(4);
  h.writeUInt32BE(f.length);
  return Buffer.concat([h, f]);
};
// Both learnt by the switch first.
a.sock.write(frame(a, b, 64));
b.sock.write(frame(b, a, 64));
await new Promise((r) => setTimeout(r, 200));

for (const size of [64, 1514]) {
  const one = frame(a, b, size);
  const batch = Buffer.concat(Array.from({ length: 256 }, () => one));
  // Frames the switch drops (its queue to a slow reader is capped) are counted, not waited for: the run ends when all
  // arrived or nothing arrived for 0.5 s.
  let got = 0;
  await new Promise((r) => setTimeout(r, 300)); // what the previous size left in flight
  let last = process.hrtime.bigint();
  const t0 = process.hrtime.bigint();
  const done = new Promise<void>((r) => {
    const idle = setInterval(() => {
      if (Number(process.hrtime.bigint() - last) > 5e8) { clearInterval(idle); r(); }
    }, 100);
    b.onFrames = (n) => {
      got += n;
      last = process.hrtime.bigint();
      if (got >= N) { clearInterval(idle); r(); }
    };
  });
  for (let sent = 0; sent < N; sent += 256) {
    if (!a.sock.write(batch)) await new Promise((r) => a.sock.once('drain', r));
  }
  await done;
  const s = Number(last - t0) / 1e9;
  console.log(`${String(size).padStart(5)} B frames: ${Math.round(got / s).toLocaleString('en')} frames/s forwarded, `
    + `${((got * size * 8) / s / 1e9).toFixed(2)} Gbit/s (${got} of ${N} in ${s.toFixed(2)} s${got < N ? `; ${N - got} dropped` : ''})`);
}

const rtts: number[] = [];
a.onFrames = () => undefined;
for (let i = 0; i < 2000; i++) {
  const t0 = process.hrtime.bigint();
  await new Promise<void>((r) => {
    b.onFrames = () => b.sock.write(frame(b, a, 64));
    a.onFrames = () => r();
    a.sock.write(frame(a, b, 64));
  });
  rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
}
rtts.sort((x, y) => x - y);
console.log(`round trip a→b→a (64 B): median ${rtts[1000]!.toFixed(0)} µs, p99 ${rtts[1980]!.toFixed(0)} µs`);
sw.close();
a.sock.destroy();
b.sock.destroy();
rmSync(dir, { recursive: true, force: true });
process.exit(0);

// The way out of a --nat network, without QEMU: a synthetic VM card on a unix socket sends UDP to a socket of this
// host; passt (the real one, as the network's uplink) carries it, the answer comes back translated to the VM.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Switch } from '../../src/network/switch.ts';
import { gatewayMac, gatewayOf, parseSubnet } from '../../src/network/addresses.ts';
import { ethernet, ETHERTYPE_IPV4, ipNumber, ipText, parseUdp, udpPacket } from '../../src/network/frames.ts';
import { PASST_MAC, PasstUplink } from '../../src/network/passt.ts';
import { Nat } from '../../src/network/nat.ts';

const dir = mkdtempSync(join(tmpdir(), 'oriel-nat-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('NAT maps flows both ways and nothing else comes in', () => {
  const nat = new Nat(ipNumber('10.9.0.1'));
  const out = ethernet('02:00:00:00:00:01', '02:00:00:00:00:02', ETHERTYPE_IPV4,
    udpPacket(ipNumber('10.9.0.5'), 4444, ipNumber('198.51.100.7'), 53, Buffer.from('q')));
  assert.ok(nat.outbound(out));
  const u = parseUdp(out)!;
  assert.equal(ipText(u.ip.src), '10.9.0.1');
  assert.notEqual(u.srcPort, 4444);
  const answer = ethernet('02:00:00:00:00:02', '02:00:00:00:00:01', ETHERTYPE_IPV4,
    udpPacket(ipNumber('198.51.100.7'), 53, ipNumber('10.9.0.1'), u.srcPort, Buffer.from('a')));
  assert.equal(ipText(nat.inbound(answer)!), '10.9.0.5');
  assert.equal(parseUdp(answer)!.dstPort, 4444);
  const stray = ethernet('02:00:00:00:00:02', '02:00:00:00:00:01', ETHERTYPE_IPV4,
    udpPacket(ipNumber('198.51.100.7'), 53, ipNumber('10.9.0.1'), 1234, Buffer.from('x')));
  assert.equal(nat.inbound(stray), undefined, 'no flow, no way in');
});

test('a VM on a --nat network reaches a UDP service of the host through passt', async (t) => {
  const hostIp = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  assert.ok(hostIp, 'this host has a non-loopback IPv4 address');
  const subnet = parseSubnet('10.79.0.0/24');
  const sw = new Switch();
  const gwMac = gatewayMac('nat1');
  sw.setNetwork({ id: 'nat1', name: 'out', subnet, gatewayMac: gwMac, nat: true, isolated: false }, new Map());
  const passt = new PasstUplink({
    natIp: gatewayOf(subnet), onLink: (s) => sw.setUplink('nat1', s, PASST_MAC), log: (m, e) => t.diagnostic(`${m} ${JSON.stringify(e)}`),
  });
  const echo = createSocket('udp4');
  echo.on('message', (m, r) => echo.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
  await new Promise<void>((r) => echo.bind(0, '0.0.0.0', r));
  const echoPort = echo.address().port;
  const vmMac = '02:0e:00:00:00:05';
  const vmIp = ipNumber('10.79.0.5');
  let sock: Socket | undefined;
  const got: Buffer[] = [];
  const server = createServer((s) => {
    sock = s;
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        got.push(buf.subarray(4, 4 + buf.readUInt32BE(0)));
        buf = buf.subarray(4 + buf.readUInt32BE(0));
      }
    });
  }).listen(join(dir, 'vm.sock'));
  t.after(() => { passt.stop(); sw.close(); echo.close(); server.close(); });
  sw.addPort('nat1', { id: 'vm/0', vmName: 'vm', mac: vmMac, ip: vmIp, socketPath: join(dir, 'vm.sock') });
  const deadline = Date.now() + 10_000;
  let reply: Buffer | undefined;
  while (!reply && Date.now() < deadline) {
    if (sock && sw.uplinkOf('nat1')?.connected) {
      const f = ethernet(gwMac, vmMac, ETHERTYPE_IPV4, udpPacket(vmIp, 5555, ipNumber(hostIp), echoPort, Buffer.from('hi')));
      const h = Buffer.alloc(4);
      h.writeUInt32BE(f.length);
      sock.write(Buffer.concat([h, f]));
    }
    await new Promise((r) => setTimeout(r, 300));
    reply = got.find((f) => parseUdp(f)?.dstPort === 5555);
  }
  assert.ok(reply, 'the echo came back');
  const u = parseUdp(reply)!;
  assert.equal(u.data.toString(), 'echo:hi');
  assert.equal(ipText(u.ip.dst), '10.79.0.5');
  assert.equal(ipText(u.ip.src), hostIp);
  assert.equal(sw.uplinkOf('nat1')!.flows, 1);
});

// The switch, its DHCP and DNS, with synthetic frames over real unix sockets: each "card" is a unix server speaking
// QEMU's stream framing (as `-netdev stream,server=on` does), and the switch dials it. No QEMU.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Switch } from '../../src/network/switch.ts';
import { gatewayMac, parseSubnet, gatewayOf } from '../../src/network/addresses.ts';
import { nicMac } from '../../src/vm/spec.ts';
import {
  ethernet, ETHERTYPE_ARP, ETHERTYPE_IPV4, ipNumber, ipText, macBytes, macText, parseIpv4, parseUdp, udpPacket,
  ipv4Packet, IP_PROTO_ICMP, checksum,
} from '../../src/network/frames.ts';
import { pcapHeader, pcapRecord, parsePcap } from '../../src/network/pcap.ts';

const dir = mkdtempSync(join(tmpdir(), 'oriel-switch-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A fake QEMU card: listens, collects the frames the switch sends, sends framed bytes. */
class Card {
  server: Server;
  sock?: Socket;
  frames: Buffer[] = [];
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  connected: Promise<void>;
  constructor(readonly path: string, readonly mac: string, readonly ip: number) {
    let ok!: () => void;
    this.connected = new Promise((r) => (ok = r));
    this.server = createServer((s) => {
      this.sock = s;
      s.on('data', (d) => {
        this.buf = Buffer.concat([this.buf, d]);
        while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readUInt32BE(0)) {
          const n = this.buf.readUInt32BE(0);
          this.frames.push(this.buf.subarray(4, 4 + n));
          this.buf = this.buf.subarray(4 + n);
          for (const w of this.waiters.splice(0)) w();
        }
      });
      ok();
    }).listen(path);
  }
  send(f: Buffer): void {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(f.length);
    this.sock!.write(Buffer.concat([h, f]));
  }
  raw(b: Buffer): void {
    this.sock!.write(b);
  }
  /** The next frame matching `pred`, within 2 s. */
  async next(pred: (f: Buffer) => boolean = () => true, ms = 2000): Promise<Buffer> {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (Date.now() > end) throw new Error(`no matching frame within ${ms} ms on ${this.mac}`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 50); });
    }
  }
  /** No frame matching `pred` arrives within `ms`. */
  async none(pred: (f: Buffer) => boolean = () => true, ms = 300): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    assert.equal(this.frames.filter(pred).length, 0, `unexpected frame on ${this.mac}`);
  }
  close(): void {
    this.sock?.destroy();
    this.server.close();
  }
}

const subnetA = parseSubnet('10.77.0.0/24');
const subnetB = parseSubnet('10.78.0.0/24');
const gwA = gatewayOf(subnetA);
const sw = new Switch();
sw.setNetwork({ id: 'na', name: 'lab', subnet: subnetA, gatewayMac: gatewayMac('na'), nat: false, isolated: false },
  new Map([['alpha', ipNumber('10.77.0.10')], ['beta', ipNumber('10.77.0.11')]]));
sw.setNetwork({ id: 'nb', name: 'other', subnet: subnetB, gatewayMac: gatewayMac('nb'), nat: false, isolated: false },
  new Map([['gamma', ipNumber('10.78.0.10')]]));
after(() => sw.close());

const cards: Record<string, Card> = {};
function card(name: string, net: string, ip: string): Card {
  const c = new Card(join(dir, `${name}.sock`), nicMac(`vm-${name}`, 0), ipNumber(ip));
  cards[name] = c;
  sw.addPort(net, { id: `${name}/0`, vmName: name, mac: c.mac, ip: c.ip, socketPath: c.path });

  return c;
}
const alpha = card('alpha', 'na', '10.77.0.10');
const beta = card('beta', 'na', '10.77.0.11');
const gamma = card('gamma', 'nb', '10.78.0.10');
after(() => Object.values(cards).forEach((c) => c.close()));

function udpFrame(from: Card, toMac: string, src: number, dst: number, sport: number, dport: number, d: Buffer) {
  return ethernet(toMac, from.mac, ETHERTYPE_IPV4, udpPacket(src, sport, dst, dport, d));
}

function dhcp(type: number, mac: string, requested?: number): Buffer {
  const b = Buffer.alloc(240);
  b[0] = 1; b[1] = 1; b[2] = 6;
  b.writeUInt32BE(0x1234abcd, 4);
  macBytes(mac).copy(b, 28);
  b.writeUInt32BE(0x63825363, 236);
  const opts = [53, 1, type];
  if (requested !== undefined) opts.push(50, 4, ...[24, 16, 8, 0].map((s) => (requested >>> s) & 255));
  return Buffer.concat([b, Buffer.from([...opts, 255])]);
}

function dhcpOptions(d: Buffer): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (let i = 240; i < d.length && d[i] !== 255; i += 2 + d[i + 1]!)
    m.set(d[i]!, d.subarray(i + 2, i + 2 + d[i + 1]!));
  return m;
}

function dnsQuery(name: string, type = 1): Buffer {
  const h = Buffer.from([0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  return Buffer.concat([h, ...labels, Buffer.from([0, 0, type, 0, 1])]);
}

const isUdpTo = (port: number) => (f: Buffer) => parseUdp(f)?.dstPort === port;

test('the switch dials every card', async () => {
  await Promise.all(Object.values(cards).map((c) => c.connected));
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(sw.portsOf('na').every((p) => p.connected));
});

test('DHCP gives each port its fixed lease, and a NAK for another address', async () => {
  alpha.send(udpFrame(alpha, 'ff:ff:ff:ff:ff:ff', 0, 0xffffffff, 68, 67, dhcp(1, alpha.mac)));
  const offer = parseUdp(await alpha.next(isUdpTo(68)))!;
  assert.equal(ipText(offer.data.readUInt32BE(16)), '10.77.0.10');
  const o = dhcpOptions(offer.data);
  assert.equal(o.get(53)![0], 2);
  assert.equal(ipText(o.get(1)!.readUInt32BE(0)), '255.255.255.0');
  assert.equal(ipText(o.get(6)!.readUInt32BE(0)), '10.77.0.1');
  assert.equal(o.get(12)!.toString(), 'alpha');
  assert.equal(o.get(3), undefined, 'no default route without --nat');
  alpha.send(udpFrame(alpha, 'ff:ff:ff:ff:ff:ff', 0, 0xffffffff, 68, 67, dhcp(3, alpha.mac, alpha.ip)));
  assert.equal(dhcpOptions(parseUdp(await alpha.next(isUdpTo(68)))!.data).get(53)![0], 5);
  alpha.send(udpFrame(alpha, 'ff:ff:ff:ff:ff:ff', 0, 0xffffffff, 68, 67, dhcp(3, alpha.mac, ipNumber('10.77.0.99'))));
  assert.equal(dhcpOptions(parseUdp(await alpha.next(isUdpTo(68)))!.data).get(53)![0], 6);
  // Nobody else hears the DHCP exchange, and no VM can act as a DHCP server.
  await beta.none(isUdpTo(67));
  beta.send(udpFrame(beta, 'ff:ff:ff:ff:ff:ff', beta.ip, 0xffffffff, 67, 68, Buffer.alloc(300)));
  await alpha.none(isUdpTo(68));
});

test('DNS answers VM names on the network, bare and with the network name', async () => {
  const ask = async (name: string) => {
    alpha.send(udpFrame(alpha, gatewayMac('na'), alpha.ip, gwA, 40000, 53, dnsQuery(name)));
    const r = parseUdp(await alpha.next(isUdpTo(40000)))!.data;
    return { rcode: r.readUInt16BE(2) & 15, answers: r.readUInt16BE(6), ip: r.readUInt32BE(r.length - 4) };
  };
  const b = await ask('beta');
  assert.deepEqual([b.rcode, b.answers, ipText(b.ip)], [0, 1, '10.77.0.11']);
  const bl = await ask('BETA.lab');
  assert.deepEqual([bl.rcode, ipText(bl.ip)], [0, '10.77.0.11']);
  const g = await ask('gamma');
  assert.equal(g.rcode, 3, 'a VM of another network is not known here');
});

test('unicast reaches only its port once learnt; broadcast floods the network, never another one', async () => {
  const arpReq = Buffer.alloc(28);
  arpReq.writeUInt16BE(1, 0); arpReq.writeUInt16BE(0x0800, 2); arpReq[4] = 6; arpReq[5] = 4; arpReq.writeUInt16BE(1, 6);
  macBytes(alpha.mac).copy(arpReq, 8); arpReq.writeUInt32BE(alpha.ip, 14); arpReq.writeUInt32BE(beta.ip, 24);
  alpha.send(ethernet('ff:ff:ff:ff:ff:ff', alpha.mac, ETHERTYPE_ARP, arpReq));
  await beta.next((f) => f.readUInt16BE(12) === ETHERTYPE_ARP);
  await gamma.none();
  // beta is not learnt yet by the switch until it sends: this frame floods (to alpha only, the other port).
  const hello = udpFrame(beta, alpha.mac, beta.ip, alpha.ip, 5000, 5001, Buffer.from('hello'));
  beta.send(hello);
  assert.deepEqual(await alpha.next(isUdpTo(5001)), hello);
  alpha.send(udpFrame(alpha, beta.mac, alpha.ip, beta.ip, 5001, 5000, Buffer.from('back')));
  assert.equal(parseUdp(await beta.next(isUdpTo(5000)))!.data.toString(), 'back');
  // A frame to gamma's MAC from alpha: gamma is on another network and never sees it.
  alpha.send(udpFrame(alpha, gamma.mac, alpha.ip, gamma.ip, 1, 2, Buffer.from('x')));
  await gamma.none();
});

test('spoofed MAC, spoofed IP, IPv6 and broken frames are dropped and counted', async () => {
  const before = sw.port('alpha/0')!;
  const fake = Buffer.from(udpFrame(alpha, beta.mac, alpha.ip, beta.ip, 1, 7777, Buffer.from('spoof')));
  macBytes('02:0e:de:ad:be:ef').copy(fake, 6);
  alpha.send(fake);
  alpha.send(udpFrame(alpha, beta.mac, ipNumber('10.77.0.200'), beta.ip, 1, 7777, Buffer.from('spoof')));
  const arp = Buffer.alloc(28);
  arp.writeUInt16BE(1, 0); arp.writeUInt16BE(0x0800, 2); arp[4] = 6; arp[5] = 4; arp.writeUInt16BE(2, 6);
  macBytes(alpha.mac).copy(arp, 8); arp.writeUInt32BE(beta.ip, 14); // "beta's address is at alpha's MAC"
  alpha.send(ethernet(beta.mac, alpha.mac, ETHERTYPE_ARP, arp));
  alpha.send(ethernet(beta.mac, alpha.mac, 0x86dd, Buffer.alloc(60)));
  alpha.send(Buffer.alloc(5)); // shorter than an Ethernet header
  alpha.send(ethernet(beta.mac, alpha.mac, ETHERTYPE_IPV4, Buffer.from([0x45, 0, 0xff, 0xff]))); // truncated IPv4
  await beta.none((f) => parseUdp(f)?.dstPort === 7777 || f.readUInt16BE(12) !== ETHERTYPE_IPV4);
  const now = sw.port('alpha/0')!;
  assert.equal(now.droppedSpoofed - before.droppedSpoofed, 3);
  assert.equal(now.droppedUnsupported - before.droppedUnsupported, 1);
  assert.equal(now.droppedMalformed - before.droppedMalformed, 2);
  assert.ok(now.rxFrames > 0 && now.txFrames > 0 && now.rxBytes > 0);
});

test('a broken stream closes only that link; the switch dials again and forwards', async () => {
  const connected = new Promise<void>((r) => beta.server.once('connection', () => r()));
  beta.raw(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3])); // length 4 GiB: QEMU would never send it
  await connected;
  await new Promise((r) => setTimeout(r, 50));
  const ping = Buffer.alloc(8);
  ping[0] = 8;
  ping.writeUInt16BE(checksum(ping), 2);
  beta.send(ethernet(gatewayMac('na'), beta.mac, ETHERTYPE_IPV4, ipv4Packet(beta.ip, gwA, IP_PROTO_ICMP, ping)));
  const reply = await beta.next((f) => parseIpv4(f)?.proto === IP_PROTO_ICMP);
  assert.equal(reply[parseIpv4(reply)!.payload], 0, 'echo reply from the gateway');
  assert.equal(macText(reply, 6), gatewayMac('na'));
});

test('capture sees the traffic; pcap records read back', async () => {
  const frames: Buffer[] = [];
  const stop = sw.capture('na', (f) => frames.push(f));
  alpha.send(udpFrame(alpha, beta.mac, alpha.ip, beta.ip, 9, 9, Buffer.from('captured')));
  await beta.next(isUdpTo(9));
  stop();
  assert.equal(frames.length, 1);
  const file = Buffer.concat([pcapHeader(), ...frames.map((f) => pcapRecord(f, Date.now()))]);
  const back = parsePcap(file);
  assert.equal(parseUdp(back[0]!.frame)!.data.toString(), 'captured');
});

test('a removed port is no longer dialled nor reached', async () => {
  sw.removePort('beta/0');
  await new Promise((r) => setTimeout(r, 100));
  beta.frames.length = 0;
  alpha.send(udpFrame(alpha, 'ff:ff:ff:ff:ff:ff', alpha.ip, 0xffffffff, 1, 3333, Buffer.from('bcast')));
  await beta.none();
  assert.equal(sw.port('beta/0'), undefined);
});

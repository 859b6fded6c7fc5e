// A network's way out: a stream link to passt. VM frames bound outside the subnet leave translated (nat.ts) from
// the gateway's address; passt's answers come back translated to the VM that started the flow. passt's ARP
// questions about the gateway's address are answered here; anything else passt sends is dropped.
import type { Socket } from 'node:net';
import { arpReply, ETHERTYPE_IPV4, macBytes, parseArp } from './frames.ts';
import { Nat, type Forward } from './nat.ts';
import { StreamLink } from './stream-link.ts';

const SWEEP_MS = 60_000;

export interface UplinkEvents {
  /** A translated frame for the VM holding `vmIp` (its destination MAC still to be set). */
  deliver(vmIp: number, f: Buffer): void;
}

export class Uplink {
  private readonly link: StreamLink;
  private readonly nat: Nat;
  private readonly sweeper: NodeJS.Timeout;
  sent = 0;
  received = 0;
  dropped = 0;

  constructor(
    sock: Socket, private readonly peerMac: string, private readonly natIp: number,
    private readonly ourMac: string, private readonly on: UplinkEvents,
  ) {
    this.nat = new Nat(natIp);
    this.link = new StreamLink(sock, {
      frame: (f) => this.fromPeer(f),
      malformed: () => this.dropped++,
      closed: () => undefined,
    });
    this.sweeper = setInterval(() => this.nat.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  get connected(): boolean {
    return this.link.isOpen;
  }

  setForwards(list: Forward[]): void {
    this.nat.setForwards(list);
  }

  get flows(): number {
    return this.nat.flows;
  }

  /** A VM's frame for outside the network (a copy is translated; the VM's own is left as it was). */
  send(vmFrame: Buffer): void {
    const f = Buffer.from(vmFrame);
    if (!this.nat.outbound(f)) {
      this.dropped++;
      return;
    }
    macBytes(this.peerMac).copy(f, 0);
    macBytes(this.ourMac).copy(f, 6);
    if (this.link.send(f)) this.sent++;
    else this.dropped++;
  }

  close(): void {
    clearInterval(this.sweeper);
    this.link.close();
  }

  private fromPeer(f: Buffer): void {
    try {
      const arp = parseArp(f);
      if (arp) {
        if (arp.op === 1 && arp.targetIp === this.natIp)
          this.link.send(arpReply(this.ourMac, this.natIp, arp.senderMac, arp.senderIp));
        return;
      }
      if (f.length < 34 || f.readUInt16BE(12) !== ETHERTYPE_IPV4) return;
      const vmIp = this.nat.inbound(f);
      if (vmIp === undefined) {
        this.dropped++;
        return;
      }
      this.received++;
      macBytes(this.ourMac).copy(f, 6);
      this.on.deliver(vmIp, f);
    } catch {
      this.dropped++;
    }
  }
}

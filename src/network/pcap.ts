// pcap files (the libpcap format Wireshark and tcpdump read): a global header, then a record per frame.
export const PCAP_LINKTYPE_ETHERNET = 1;
export const PCAP_SNAPLEN = 65_535 + 4096;

export function pcapHeader(): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeInt32LE(0, 8); // thiszone
  h.writeUInt32LE(0, 12); // sigfigs
  h.writeUInt32LE(PCAP_SNAPLEN, 16);
  h.writeUInt32LE(PCAP_LINKTYPE_ETHERNET, 20);
  return h;
}

export function pcapRecord(frame: Buffer, timeMs: number): Buffer {
  const r = Buffer.alloc(16);
  const sec = Math.floor(timeMs / 1000);
  r.writeUInt32LE(sec, 0);
  r.writeUInt32LE(Math.floor((timeMs - sec * 1000) * 1000), 4);
  const cap = Math.min(frame.length, PCAP_SNAPLEN);
  r.writeUInt32LE(cap, 8);
  r.writeUInt32LE(frame.length, 12);
  return Buffer.concat([r, frame.subarray(0, cap)]);
}

export interface PcapPacket {
  timeMs: number;
  frame: Buffer;
}

/** Reads a whole pcap file back (tests, and a check that what we write is what readers expect). */
export function parsePcap(b: Buffer): PcapPacket[] {
  if (b.length < 24 || b.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error('not a little-endian pcap file');
  if (b.readUInt32LE(20) !== PCAP_LINKTYPE_ETHERNET) throw new Error('not an Ethernet capture');
  const out: PcapPacket[] = [];
  for (let i = 24; i < b.length; ) {
    if (i + 16 > b.length) throw new Error(`truncated record header at byte ${i}`);
    const cap = b.readUInt32LE(i + 8);
    if (i + 16 + cap > b.length) throw new Error(`truncated record at byte ${i}`);
    const timeMs = b.readUInt32LE(i) * 1000 + b.readUInt32LE(i + 4) / 1000;
    out.push({ timeMs, frame: b.subarray(i + 16, i + 16 + cap) });
    i += 16 + cap;
  }
  return out;
}

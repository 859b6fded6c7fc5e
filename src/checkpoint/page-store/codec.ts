// The bytes of a stored object: its record (hash[32] codec u8 rawLen be32 storedLen be32 data[storedLen]), the two
// codecs (raw, deflateRaw), the test that skips deflating random-looking pages, and decoding with its hash check.
import { createHash } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';

export const HASH_BYTES = 32;
export const REC_HEADER = HASH_BYTES + 1 + 4 + 4;
export const CODEC_RAW = 0;
export const CODEC_DEFLATE = 1;

export const sha256 = (b: Buffer | Uint8Array): Buffer => createHash('sha256').update(b).digest();

export class ObjectCorruptError extends Error {
  override name = 'ObjectCorruptError';
}

const seen = new Uint8Array(256);
/**
 * True for data deflate could not make meaningfully smaller: a strided sample of 1024 bytes holds ≥ 240 distinct
 * values (random, encrypted or already compressed data: ~251; text, code, tables: far fewer) and the data does not
 * repeat itself at a short period (a repeated random block would look random byte by byte, yet deflate well).
 */
export function looksIncompressible(data: Buffer): boolean {
  if (data.length < 1024) return false;
  seen.fill(0);
  let distinct = 0;
  const step = data.length >> 10;
  for (let i = 0; i < data.length; i += step) {
    const v = data[i]!;
    if (seen[v] === 0) {
      seen[v] = 1;
      distinct++;
    }
  }
  if (distinct < 240) return false;
  for (const period of [8, 16, 32, 64, 128, 256, 512, 1024, 2048]) {
    if (period * 2 > data.length) break;
    if (data.compare(data, period, period + 32, 0, 32) === 0) return false;
  }
  return true;
}

export function decodeStored(data: Buffer, loc: { hash: Buffer; raw: number; codec: number }, what: string): Buffer {
  let out: Buffer;
  try {
    out = loc.codec === CODEC_DEFLATE ? inflateRawSync(data) : data;
  } catch (e) {
    throw new ObjectCorruptError(`${what}: cannot inflate: ${(e as Error).message}`);
  }
  if (out.length !== loc.raw || !sha256(out).equals(loc.hash))
    throw new ObjectCorruptError(`${what}: content does not match its hash`);
  return out;
}

/** A stored record read back from elsewhere (a pack downloaded from object storage): its fields, checked. */
export interface ParsedRecord { hash: Buffer; codec: number; raw: number; stored: Buffer }

/** The records laid end to end in `buf` (as `ObjectStore.record` gives them), each decoded and checked against its
 * hash; throws ObjectCorruptError naming `what` and the offset at the first one that is wrong. */
export function* checkedRecords(buf: Buffer, what: string): Generator<ParsedRecord> {
  let at = 0;
  while (at < buf.length) {
    const where = `${what} at byte ${at}`;
    if (at + REC_HEADER > buf.length) throw new ObjectCorruptError(`${where}: truncated record header`);
    const hash = Buffer.from(buf.subarray(at, at + HASH_BYTES));
    const codec = buf[at + HASH_BYTES]!;
    const raw = buf.readUInt32BE(at + HASH_BYTES + 1);
    const len = buf.readUInt32BE(at + HASH_BYTES + 5);
    if (codec !== CODEC_RAW && codec !== CODEC_DEFLATE) throw new ObjectCorruptError(`${where}: unknown codec ${codec}`);
    if (at + REC_HEADER + len > buf.length) throw new ObjectCorruptError(`${where}: truncated record`);
    const stored = buf.subarray(at + REC_HEADER, at + REC_HEADER + len);
    decodeStored(stored, { hash, raw, codec }, `${where} (object ${hash.toString('hex').slice(0, 16)}…)`);
    yield { hash, codec, raw, stored };
    at += REC_HEADER + len;
  }
}

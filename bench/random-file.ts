// A file of random bytes for the transfer benches, written in pieces; returns its sha256 (hex).
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';

const PIECE = 4 * 2 ** 20;

export async function writeRandom(path: string, n: number): Promise<string> {
  const h = createHash('sha256');
  const out = createWriteStream(path);
  for (let left = n; left > 0; ) {
    const b = randomBytes(Math.min(left, PIECE));
    h.update(b);
    if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
    left -= b.length;
  }
  await new Promise<void>((resolve, reject) => {
    out.once('error', reject);
    out.end(() => resolve());
  });
  return h.digest('hex');
}

// Pixel comparison of the client's primary surface against QMP screendump, retried until the
// display settles (QEMU refreshes every 30 ms; the guest may still be drawing).
import { setTimeout as sleep } from 'node:timers/promises';
import { primarySurface } from '../../../src/spice-node/index.ts';
import type { SpiceSession } from '../../../src/spice/index.ts';
import { screendump, type Screen } from './qemu.ts';

export interface CompareResult {
  equal: boolean;
  width: number;
  height: number;
  differing: number;
  detail: string;
}

export async function compareOnce(session: SpiceSession, q: Screen): Promise<CompareResult> {
  const ppm = await screendump(q);
  const s = primarySurface(session);
  if (!s) return { equal: false, width: ppm.width, height: ppm.height, differing: -1, detail: 'no primary surface' };
  if (s.width !== ppm.width || s.height !== ppm.height) {
    return {
      equal: false,
      width: ppm.width,
      height: ppm.height,
      differing: -1,
      detail: `size ${s.width}×${s.height} vs ${ppm.width}×${ppm.height}`,
    };
  }
  let differing = 0;
  let first = '';
  for (let i = 0, j = 0; i < ppm.rgb.length; i += 3, j += 4) {
    if (ppm.rgb[i] !== s.data[j] || ppm.rgb[i + 1] !== s.data[j + 1] || ppm.rgb[i + 2] !== s.data[j + 2]) {
      if (!differing) first = `first at (${(i / 3) % ppm.width}, ${Math.floor(i / 3 / ppm.width)})`;
      differing++;
    }
  }
  return { equal: differing === 0, width: ppm.width, height: ppm.height, differing, detail: first };
}

/** Retries until equal or `timeoutMs` passes; returns the last comparison. */
export async function waitForMatch(session: SpiceSession, q: Screen, timeoutMs = 8000): Promise<CompareResult> {
  const deadline = Date.now() + timeoutMs;
  let last: CompareResult;
  do {
    last = await compareOnce(session, q);
    if (last.equal) return last;
    await sleep(250);
  } while (Date.now() < deadline);
  return last;
}

/** PSNR in dB of the client's primary surface against screendump, RGB channels (Infinity if equal). */
export async function psnrOnce(session: SpiceSession, q: Screen): Promise<number> {
  const ppm = await screendump(q);
  const s = primarySurface(session);
  if (!s || s.width !== ppm.width || s.height !== ppm.height) return 0;
  let se = 0;
  for (let i = 0, j = 0; i < ppm.rgb.length; i += 3, j += 4) {
    for (let c = 0; c < 3; c++) se += (ppm.rgb[i + c]! - s.data[j + c]!) ** 2;
  }
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255 * ppm.rgb.length) / se);
}

/** Retries until the PSNR reaches `minDb` or `timeoutMs` passes; returns the best value seen. */
export async function waitForPsnr(
  session: SpiceSession,
  q: Screen,
  minDb: number,
  timeoutMs = 8000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let best = 0;
  do {
    best = Math.max(best, await psnrOnce(session, q));
    if (best >= minDb) return best;
    await sleep(250);
  } while (Date.now() < deadline);
  return best;
}

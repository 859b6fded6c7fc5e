// One chunk of an upload, streamed from the request to the image's file at its offset (never held in memory).
// Chunks come in order: each starts where the bytes received so far end, so an interrupted upload resumes from
// `receivedBytes` (what reached the file, counted even when the client went away mid-chunk). The last chunk makes
// the image ready once its format is known; a file that is no usable image is removed with its row.
import { createWriteStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { conflict, OrielError } from '../../errors.ts';
import { detectImage } from './detect.ts';
import type { UploadedImageRecord, UploadedImages } from './store.ts';

const busy = new Set<string>();

export const tooLarge = (m: string) => new OrielError(413, m, 'too_large');

/** Parses `Content-Range: bytes START-END/TOTAL` (or `bytes START-END/*`); undefined when absent. */
export function parseContentRange(h: string | undefined): { start: number; end: number; total?: number } | undefined {
  if (h === undefined) return undefined;
  const m = /^bytes (\d{1,16})-(\d{1,16})\/(\d{1,16}|\*)$/.exec(h.trim());
  if (!m) throw new OrielError(400, `Content-Range must read 'bytes START-END/TOTAL', not '${h.slice(0, 80)}'`, 'bad_request');
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw new OrielError(400, 'Content-Range: END is before START', 'bad_request');
  return { start, end, ...(m[3] !== '*' ? { total: Number(m[3]) } : {}) };
}

export interface Chunk {
  start: number;
  /** Bytes the request announces (Content-Length or the range), when it does. */
  length?: number;
  /** The whole file's size the request announces, checked against the upload's. */
  total?: number;
  body: Readable;
}

export async function receiveChunk(
  images: UploadedImages, img: UploadedImageRecord, chunk: Chunk, qemuImg: string,
): Promise<UploadedImageRecord> {
  if (img.state === 'ready') throw conflict(`image '${img.name}' is complete already`);
  if (chunk.total !== undefined && chunk.total !== img.sizeBytes)
    throw conflict(`image '${img.name}' was announced as ${img.sizeBytes} bytes, this chunk says ${chunk.total}`);
  if (chunk.start !== img.receivedBytes) {
    throw new OrielError(409, `the upload of '${img.name}' continues at byte ${img.receivedBytes}, `
      + `not ${chunk.start}`, 'wrong_offset');
  }
  const room = img.sizeBytes - img.receivedBytes;
  if (chunk.length !== undefined && chunk.length > room)
    throw tooLarge(`this chunk (${chunk.length} bytes) goes past the announced size of '${img.name}' (${room} bytes left)`);
  if (busy.has(img.id)) throw conflict(`another request is uploading to '${img.name}' right now`);
  busy.add(img.id);
  const out = createWriteStream(images.file(img), { flags: 'r+', start: chunk.start });
  try {
    let seen = 0;
    const cap = new Transform({
      transform(data: Buffer, _enc, cb) {
        seen += data.length;
        if (seen > room) cb(tooLarge(`the upload goes past the announced size of '${img.name}' (${img.sizeBytes} bytes)`));
        else cb(null, data);
      },
    });
    try {
      await pipeline(chunk.body, cap, out);
    } catch (e) {
      if (e instanceof OrielError) throw e;
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC')
        throw new OrielError(507, 'the server ran out of disk space: try again later', 'insufficient_storage');
      // The client went away or the file could not be written: what reached the file counts, the rest is resent.
      throw new OrielError(400, `the chunk ended early (${(e as Error).message}): resume at byte `
        + `${chunk.start + out.bytesWritten}`, 'interrupted');
    } finally {
      images.setReceived(img.id, chunk.start + out.bytesWritten);
    }
    const received = chunk.start + out.bytesWritten;
    if (received < img.sizeBytes) return { ...img, receivedBytes: received };
    try {
      const d = await detectImage(qemuImg, images.file(img));
      return images.setReady(img.id, d.kind, d.format, d.virtualSize);
    } catch (e) {
      images.remove(img);
      throw e;
    }
  } finally {
    busy.delete(img.id);
  }
}

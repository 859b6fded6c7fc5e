// SPICE image type ZLIB_GLZ_RGB (spice.proto `ZlibGlzRGBData` {glz_data_size u32, data_size u32,
// data}): a GLZ stream (glz.ts) deflated again with zlib framing (RFC 1950) when the server judged
// the link slow (spice-server image-encoders.cpp image_encoders_compress_glz, zlib wrap only if it
// shrinks the data; decoder spice-gtk src/decode-zlib.c). Inflated with fflate (pure ECMAScript).
import { unzlibSync } from 'fflate';
import { SpiceDecodeError } from '../proto/errors.ts';
import * as glz from './glz.ts';
import type { RgbaImage } from './types.ts';

/**
 * A bound on a GLZ stream for `maxPixels` pixels, checked before allocating the inflate buffer: the
 * 33-byte header plus 8 bytes per pixel, twice the worst case of all-literal runs (3 colour bytes,
 * 1 alpha byte and a control byte per 32 pixels).
 */
function maxGlzSize(maxPixels: number): number {
  return 33 + 8 * maxPixels;
}

export function decode(glzSize: number, data: Uint8Array, dict: glz.GlzWindow, maxPixels: number): RgbaImage {
  if (glzSize > maxGlzSize(maxPixels))
    throw new SpiceDecodeError('zlib_glz', `glz_data_size ${glzSize} exceeds what ${maxPixels} pixels can need`);
  let inflated: Uint8Array;
  try {
    inflated = unzlibSync(data, { out: new Uint8Array(glzSize) });
  } catch (e) {
    throw new SpiceDecodeError('zlib_glz', `inflate failed: ${(e as Error).message}`);
  }
  if (inflated.length !== glzSize)
    throw new SpiceDecodeError('zlib_glz', `inflated ${inflated.length} bytes, header says ${glzSize}`);
  return glz.decode(inflated, dict, maxPixels);
}

// SPICE image type JPEG_ALPHA (spice.proto `JPEGAlphaData` {flags u8, jpeg_size u32, data_size u32,
// data}): an RGBA bitmap sent as a JPEG of its colours followed by an LZ stream (type XXXA) of its
// alpha channel (spice-server server/image-encoders.cpp image_encoders_compress_jpeg; decoder
// spice-common common/canvas_base.c canvas_get_jpeg_alpha). Both are in stream row order: rows
// run bottom-up unless flags has TOP_DOWN (1), and the LZ header's top_down must agree.
import { SpiceDecodeError } from '../proto/errors.ts';
import * as jpeg from './jpeg.ts';
import * as lz from './lz.ts';
import { LzType } from './lz-core.ts';
import { flipRows, type RgbaImage } from './types.ts';

export const JPEG_ALPHA_TOP_DOWN = 1;

export function decode(flags: number, jpegSize: number, data: Uint8Array, maxPixels: number): RgbaImage {
  if (jpegSize > data.length)
    throw new SpiceDecodeError('jpeg_alpha', `jpeg_size ${jpegSize} beyond the ${data.length} data bytes`);
  const alphaStream = data.subarray(jpegSize);
  if (alphaStream.length < 28 || lz.readBe32(alphaStream, 8) !== LzType.XXXA) {
    throw new SpiceDecodeError('jpeg_alpha', 'alpha plane is not an LZ XXXA stream');
  }
  const topDown = (flags & JPEG_ALPHA_TOP_DOWN) !== 0;
  if ((lz.readBe32(alphaStream, 24) !== 0) !== topDown)
    throw new SpiceDecodeError('jpeg_alpha', 'alpha and JPEG row orders differ');
  const img = jpeg.decode(data.subarray(0, jpegSize), { maxPixels });
  const alpha = lz.decode(alphaStream, { maxPixels }); // comes back top-down whatever its header says
  if (alpha.width !== img.width || alpha.height !== img.height) {
    throw new SpiceDecodeError(
      'jpeg_alpha',
      `alpha ${alpha.width}×${alpha.height} for a ${img.width}×${img.height} JPEG`,
    );
  }
  if (!topDown) flipRows(img);
  for (let i = 3; i < img.data.length; i += 4) img.data[i] = alpha.data[i]!;
  return img;
}

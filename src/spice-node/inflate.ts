// fflate's unzlibSync (what src/spice/codecs/zlib-glz.ts inflates ZLIB_GLZ images with) on node:zlib, for the
// command's bundles: scripts/build-node.js resolves 'fflate' here. fflate builds its tables when loaded, several
// milliseconds of every command's start (a screenshot is timed from it); node:zlib's native inflate costs nothing
// until used. The same contract as far as zlib-glz.ts uses it: the zlib stream (RFC 1950) inflated, at most the
// length of `out` when given (more is an error), an error for a corrupt stream. test/spice/inflate.test.ts holds it
// against fflate.
import { inflateSync } from 'node:zlib';

export function unzlibSync(data: Uint8Array, opts: { out?: Uint8Array } = {}): Uint8Array {
  const out = inflateSync(data, opts.out ? { maxOutputLength: Math.max(1, opts.out.length) } : {});
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

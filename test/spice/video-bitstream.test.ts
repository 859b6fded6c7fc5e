// What the core knows of VP8/VP9/H.264 stream frames (codecs/video.ts) and how the display channel announces and
// prefers the host's video codecs; ORIEL_SPICE_VIDEO's values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { avcCodecString, isKeyFrame } from '../../src/spice/codecs/video.ts';
import { displayClientCaps, videoCodecPreference } from '../../src/spice/channels/display.ts';
import { DisplayCap, VideoCodec } from '../../src/spice/proto/constants.ts';
import { streamingVideoMode } from '../../src/vm/spice-endpoint.ts';

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s/g, ''), 'hex'));

test('key frames: VP8 frame tag and start code, VP9 frame_type, H.264 IDR', () => {
  // A VP8 key frame and a delta frame as spice-server's vp8enc sent them (32×240).
  assert.equal(isKeyFrame(VideoCodec.VP8, hex('300a009d012a2000f000390d00041c240c2c')), true);
  assert.equal(isKeyFrame(VideoCodec.VP8, hex('f10300e36b9fc8604faf104f4fb10a2fdebe')), false);
  // VP9: frame_marker 10, profile 0, show_existing 0, frame_type 0 (key) / 1 (inter).
  assert.equal(isKeyFrame(VideoCodec.VP9, hex('82 49 83 42 00')), true);
  assert.equal(isKeyFrame(VideoCodec.VP9, hex('86 00 40 00')), false);
  assert.equal(isKeyFrame(VideoCodec.VP9, hex('88 00')), false); // show_existing_frame
  // H.264 Annex B: AUD, SPS, PPS, IDR / AUD, non-IDR slice.
  const idr = hex('00000001 0910 00000001 67f4001f91 00000001 68eb 0000000165 88840');
  assert.equal(isKeyFrame(VideoCodec.H264, idr), true);
  assert.equal(isKeyFrame(VideoCodec.H264, hex('00000001 0930 00000001 419a2438')), false);
  assert.equal(avcCodecString(idr), 'avc1.F4001F');
  assert.equal(avcCodecString(hex('000001 6742c01e ab')), 'avc1.42C01E');
  assert.equal(avcCodecString(hex('00000001 419a')), undefined);
});

test('display caps and codec preference: the host codecs announced, MJPEG always last', () => {
  const caps = displayClientCaps([VideoCodec.VP8, VideoCodec.H264]);
  for (const c of [DisplayCap.MULTI_CODEC, DisplayCap.CODEC_MJPEG, DisplayCap.CODEC_VP8, DisplayCap.CODEC_H264])
    assert.ok(caps.includes(c));
  assert.ok(!caps.includes(DisplayCap.CODEC_VP9));
  assert.ok(!displayClientCaps().includes(DisplayCap.CODEC_VP8), 'MJPEG only without a host decoder');
  assert.deepEqual(videoCodecPreference([VideoCodec.H264, VideoCodec.VP8, VideoCodec.H264]),
    [VideoCodec.H264, VideoCodec.VP8, VideoCodec.MJPEG]);
  assert.deepEqual(videoCodecPreference([]), [VideoCodec.MJPEG]);
});

test('ORIEL_SPICE_VIDEO: off by default, filter or all, anything else refused', () => {
  assert.equal(streamingVideoMode(undefined), 'off');
  assert.equal(streamingVideoMode('all'), 'all');
  assert.equal(streamingVideoMode('filter'), 'filter');
  assert.throws(() => streamingVideoMode('yes'), /must be one of off, filter, all/);
});

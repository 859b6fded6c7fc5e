// Wire constants of the SPICE protocol, one table per enum with a name lookup so that errors and
// traces can say "DISPLAY 304 DRAW_COPY". Numbers: spice-protocol spice/enums.h and spice/protocol.h,
// which are generated from spice-common spice.proto (message numbering restarts where the .proto
// says `= N`; base-channel messages are shared by every channel).

export const LINK_MAGIC = 0x51444552; // "REDQ", spice/protocol.h SPICE_MAGIC
export const PROTOCOL_MAJOR = 2;
export const PROTOCOL_MINOR = 2;
/** DER SubjectPublicKeyInfo of a 1024-bit RSA key (spice/protocol.h SPICE_TICKET_PUBKEY_BYTES). */
export const TICKET_PUBKEY_BYTES = 162;
/** spice/protocol.h SPICE_MAX_PASSWORD_LENGTH. */
export const MAX_PASSWORD_LENGTH = 60;
/** SpiceMiniDataHeader {u16 type; u32 size}: messages once both sides announced CommonCap.MINI_HEADER. */
export const MINI_HEADER_SIZE = 6;
/** SpiceDataHeader {u64 serial; u16 type; u32 size; u32 sub_list}: messages without MINI_HEADER. */
export const DATA_HEADER_SIZE = 18;

export const ChannelType = {
  MAIN: 1, DISPLAY: 2, INPUTS: 3, CURSOR: 4, PLAYBACK: 5, RECORD: 6, TUNNEL: 7, SMARTCARD: 8,
  USBREDIR: 9, PORT: 10, WEBDAV: 11,
} as const;

/** spice.proto `enum32 link_err`. */
export const LinkErr = {
  OK: 0, ERROR: 1, INVALID_MAGIC: 2, INVALID_DATA: 3, VERSION_MISMATCH: 4, NEED_SECURED: 5,
  NEED_UNSECURED: 6, PERMISSION_DENIED: 7, BAD_CONNECTION_ID: 8, CHANNEL_NOT_AVAILABLE: 9,
} as const;

/** spice/protocol.h SPICE_COMMON_CAP_* (bit numbers). */
export const CommonCap = { PROTOCOL_AUTH_SELECTION: 0, AUTH_SPICE: 1, AUTH_SASL: 2, MINI_HEADER: 3 } as const;
export const MainCap = {
  SEMI_SEAMLESS_MIGRATE: 0, NAME_AND_UUID: 1, AGENT_CONNECTED_TOKENS: 2, SEAMLESS_MIGRATE: 3,
} as const;
export const DisplayCap = {
  SIZED_STREAM: 0, MONITORS_CONFIG: 1, COMPOSITE: 2, A8_SURFACE: 3, STREAM_REPORT: 4,
  LZ4_COMPRESSION: 5, PREF_COMPRESSION: 6, GL_SCANOUT: 7, MULTI_CODEC: 8, CODEC_MJPEG: 9,
  CODEC_VP8: 10, CODEC_H264: 11, PREF_VIDEO_CODEC_TYPE: 12, CODEC_VP9: 13, CODEC_H265: 14,
} as const;
export const InputsCap = { KEY_SCANCODE: 0 } as const;

/** spice.proto `channel BaseChannel`, server side. */
export const BaseMsg = {
  MIGRATE: 1, MIGRATE_DATA: 2, SET_ACK: 3, PING: 4, WAIT_FOR_CHANNELS: 5, DISCONNECTING: 6,
  NOTIFY: 7, LIST: 8,
} as const;
export const BaseMsgc = {
  ACK_SYNC: 1, ACK: 2, PONG: 3, MIGRATE_FLUSH_MARK: 4, MIGRATE_DATA: 5, DISCONNECTING: 6,
} as const;

export const MainMsg = {
  MIGRATE_BEGIN: 101, MIGRATE_CANCEL: 102, INIT: 103, CHANNELS_LIST: 104, MOUSE_MODE: 105,
  MULTI_MEDIA_TIME: 106, AGENT_CONNECTED: 107, AGENT_DISCONNECTED: 108, AGENT_DATA: 109,
  AGENT_TOKEN: 110, MIGRATE_SWITCH_HOST: 111, MIGRATE_END: 112, NAME: 113, UUID: 114,
  AGENT_CONNECTED_TOKENS: 115, MIGRATE_BEGIN_SEAMLESS: 116, MIGRATE_DST_SEAMLESS_ACK: 117,
  MIGRATE_DST_SEAMLESS_NACK: 118,
} as const;
export const MainMsgc = {
  CLIENT_INFO: 101, MIGRATE_CONNECTED: 102, MIGRATE_CONNECT_ERROR: 103, ATTACH_CHANNELS: 104,
  MOUSE_MODE_REQUEST: 105, AGENT_START: 106, AGENT_DATA: 107, AGENT_TOKEN: 108, MIGRATE_END: 109,
  MIGRATE_DST_DO_SEAMLESS: 110, MIGRATE_CONNECTED_SEAMLESS: 111, QUALITY_INDICATOR: 112,
} as const;

export const DisplayMsg = {
  MODE: 101, MARK: 102, RESET: 103, COPY_BITS: 104, INVAL_LIST: 105, INVAL_ALL_PIXMAPS: 106,
  INVAL_PALETTE: 107, INVAL_ALL_PALETTES: 108, STREAM_CREATE: 122, STREAM_DATA: 123,
  STREAM_CLIP: 124, STREAM_DESTROY: 125, STREAM_DESTROY_ALL: 126, DRAW_FILL: 302,
  DRAW_OPAQUE: 303, DRAW_COPY: 304, DRAW_BLEND: 305, DRAW_BLACKNESS: 306, DRAW_WHITENESS: 307,
  DRAW_INVERS: 308, DRAW_ROP3: 309, DRAW_STROKE: 310, DRAW_TEXT: 311, DRAW_TRANSPARENT: 312,
  DRAW_ALPHA_BLEND: 313, SURFACE_CREATE: 314, SURFACE_DESTROY: 315, STREAM_DATA_SIZED: 316,
  MONITORS_CONFIG: 317, DRAW_COMPOSITE: 318, STREAM_ACTIVATE_REPORT: 319, GL_SCANOUT_UNIX: 320,
  GL_DRAW: 321, QUALITY_INDICATOR: 322,
} as const;
export const DisplayMsgc = {
  INIT: 101, STREAM_REPORT: 102, PREFERRED_COMPRESSION: 103, GL_DRAW_DONE: 104,
  PREFERRED_VIDEO_CODEC_TYPE: 105,
} as const;

export const InputsMsg = { INIT: 101, KEY_MODIFIERS: 102, MOUSE_MOTION_ACK: 111 } as const;
export const InputsMsgc = {
  KEY_DOWN: 101, KEY_UP: 102, KEY_MODIFIERS: 103, KEY_SCANCODE: 104, MOUSE_MOTION: 111,
  MOUSE_POSITION: 112, MOUSE_PRESS: 113, MOUSE_RELEASE: 114,
} as const;

export const CursorMsg = {
  INIT: 101, RESET: 102, SET: 103, MOVE: 104, HIDE: 105, TRAIL: 106, INVAL_ONE: 107, INVAL_ALL: 108,
} as const;

/** spice.proto `enum8 image_type`. */
export const ImageType = {
  BITMAP: 0, QUIC: 1, LZ_PLT: 100, LZ_RGB: 101, GLZ_RGB: 102, FROM_CACHE: 103, SURFACE: 104,
  JPEG: 105, FROM_CACHE_LOSSLESS: 106, ZLIB_GLZ_RGB: 107, JPEG_ALPHA: 108, LZ4: 109,
} as const;
/** spice.proto `flags8 image_flags`. */
export const ImageFlags = { CACHE_ME: 1, HIGH_BITS_SET: 2, CACHE_REPLACE_ME: 4 } as const;
/** spice.proto `enum8 bitmap_fmt`. */
export const BitmapFmt = {
  INVALID: 0, '1BIT_LE': 1, '1BIT_BE': 2, '4BIT_LE': 3, '4BIT_BE': 4, '8BIT': 5, '16BIT': 6,
  '24BIT': 7, '32BIT': 8, RGBA: 9, '8BIT_A': 10,
} as const;
/** spice.proto `flags8 bitmap_flags`. */
export const BitmapFlags = { PAL_CACHE_ME: 1, PAL_FROM_CACHE: 2, TOP_DOWN: 4 } as const;
/** spice.proto `enum32 surface_fmt`. */
export const SurfaceFmt = { '1_A': 1, '8_A': 8, '16_555': 16, '16_565': 80, '32_xRGB': 32, '32_ARGB': 96 } as const;
export const SurfaceFlags = { PRIMARY: 1, STREAMING_MODE: 2 } as const;
/** spice.proto `enum8 image_compression` (DISPLAY PREFERRED_COMPRESSION). */
export const ImageCompression = { OFF: 1, AUTO_GLZ: 2, AUTO_LZ: 3, QUIC: 4, GLZ: 5, LZ: 6, LZ4: 7 } as const;
export const ClipType = { NONE: 0, RECTS: 1 } as const;
/** spice.proto `enum8 video_codec_type` (STREAM_CREATE codec_type, PREFERRED_VIDEO_CODEC_TYPE). */
export const VideoCodec = { MJPEG: 1, VP8: 2, H264: 3, VP9: 4, H265: 5 } as const;
export const BrushType = { NONE: 0, SOLID: 1, PATTERN: 2 } as const;
/** spice.proto `flags16 ropd`. */
export const Ropd = {
  INVERS_SRC: 1, INVERS_BRUSH: 2, INVERS_DEST: 4, OP_PUT: 8, OP_OR: 16, OP_AND: 32, OP_XOR: 64,
  OP_BLACKNESS: 128, OP_WHITENESS: 256, OP_INVERS: 512, INVERS_RES: 1024,
} as const;
export const MouseMode = { SERVER: 1, CLIENT: 2 } as const;
export const MouseButton = { LEFT: 1, MIDDLE: 2, RIGHT: 3, UP: 4, DOWN: 5, SIDE: 6, EXTRA: 7 } as const;
export const MouseButtonMask = { LEFT: 1, MIDDLE: 2, RIGHT: 4, UP: 8, DOWN: 16, SIDE: 32, EXTRA: 64 } as const;
export const KeyModifier = { SCROLL_LOCK: 1, NUM_LOCK: 2, CAPS_LOCK: 4 } as const;
/** spice.proto `enum8 cursor_type` and `flags16 cursor_flags`. */
export const CursorType = { ALPHA: 0, MONO: 1, COLOR4: 2, COLOR8: 3, COLOR16: 4, COLOR24: 5, COLOR32: 6 } as const;
export const CursorFlags = { NONE: 1, CACHE_ME: 2, FROM_CACHE: 4 } as const;

export type ConstTable = Readonly<Record<string, number>>;

/** The name of `value` in `table`, or the number itself when unknown. */
export function nameOf(table: ConstTable, value: number): string {
  for (const k in table) if (table[k] === value) return k;
  return String(value);
}

const channelMsgTables: Record<number, ConstTable> = {
  [ChannelType.MAIN]: MainMsg,
  [ChannelType.DISPLAY]: DisplayMsg,
  [ChannelType.INPUTS]: InputsMsg,
  [ChannelType.CURSOR]: CursorMsg,
};

/** "304 DRAW_COPY" for a server message on a channel type. */
export function serverMsgName(channelType: number, type: number): string {
  const table = type < 100 ? BaseMsg : channelMsgTables[channelType];
  return table ? `${type} ${nameOf(table, type)}` : String(type);
}

export function channelName(type: number): string {
  return nameOf(ChannelType, type).toLowerCase();
}

// Public surface of Oriel's isomorphic SPICE client core. Hosts (src/spice-node, the web console)
// inject a Connector (one byte transport per channel), a TicketEncryptor (RSA-OAEP SHA-1) and
// optionally a surface factory; everything else is plain ECMAScript.
export { SpiceSession, type SpiceSessionOptions, type ChannelError } from './session.ts';
export { SpiceChannel, type ChannelStats, type NotifyEvent } from './channel.ts';
export { MainChannel, type MainInit, type ChannelId, type MouseModeEvent } from './channels/main.ts';
export {
  DisplayChannel, displayClientCaps, videoCodecPreference, type SurfaceInfo, type InvalidateEvent, type MonitorHead,
  type DisplayStats,
} from './channels/display.ts';
export { StreamSet, type VideoStream, type StreamStats } from './channels/display-streams.ts';
export {
  annexBNals, avcCodecString, isKeyFrame, type StreamVideoDecoder, type VideoDecoderOutput, type VideoDecoders,
} from './codecs/video.ts';
export { InputsChannel, packScancode } from './channels/inputs.ts';
export { PortChannel, PortEvent } from './channels/port.ts';
export { PlaybackChannel, playbackClientCaps, type PcmChunk, type PlaybackOptions } from './channels/playback.ts';
export { RecordChannel, recordClientCaps, type RecordOptions } from './channels/record.ts';
export type { AudioCodecs, OpusDecoder, OpusEncoder } from './channels/audio-codec.ts';
export {
  AUDIO_CHANNELS, AUDIO_RATE, AudioMode, FRAMES_PER_PACKET, PlaybackCap, RecordCap,
  type AudioFormat, type PlaybackStart,
} from './channels/audio-wire.ts';
export { CursorChannel, type CursorShape, type CursorState } from './channels/cursor.ts';
export { SpiceLinkError, type LinkErrorReason, type TicketEncryptor } from './link.ts';
export { SpiceProtocolError, SpiceDecodeError, SpiceInputError } from './proto/errors.ts';
export { SCANCODES, scancodeOf } from './keymap.ts';
export { keystrokesForText, type Keystroke } from './keymap-us.ts';
export { SpiceConnectionClosed, type Transport, type TransportHandler, type Connector } from './transport.ts';
export { RgbaSurface, type Surface, type Rect } from './surface.ts';
export type { RgbaImage } from './codecs/types.ts';
export { nextEvent, type Disposable, type Event } from './emitter.ts';
export {
  ChannelType, ImageCompression, ImageType, KeyModifier, LinkErr, MouseButton, MouseButtonMask, MouseMode,
  SurfaceFmt, VideoCodec, nameOf,
} from './proto/constants.ts';
export { SpiceAgent, CLIENT_AGENT_CAPS, monitorSize, type AgentState, type AgentOptions } from './vdagent/agent.ts';
export { AgentClipboard, ClipboardError, type ClipboardContent, type GuestGrab } from './vdagent/clipboard.ts';
export {
  AgentFileTransfer,
  FileTransferError,
  type FileSource,
  type TransferProgress,
  type TransferErrorCode,
  type AbortSignalLike,
} from './vdagent/file-xfer.ts';
export { AgentCap, AgentMsg, ClipboardType, Selection, XferStatus, type MonitorConfig } from './vdagent/protocol.ts';
export { WebdavShare } from './webdav/share.ts';
export { WebdavServer, parseRange } from './webdav/server.ts';
export { WebdavMux, MuxParser, encodeMuxFrame, type MuxFrame, type MuxPort } from './webdav/mux.ts';
export { ByteStream, type ResponseSink } from './webdav/http.ts';
export {
  DavFsError, EMPTY_FS, type DavFs, type DavEntry, type DavPath, type DavWriter, type DavFsErrorCode,
} from './webdav/fs.ts';
export { DropBox, dropName } from './webdav/drops.ts';
export { sendFileToGuest, sendPath, type SendPath, type SendFileOptions } from './webdav/send-file.ts';
export {
  ConsoleController, type ConsoleControllerOptions, type ConsoleSession, type MouseModeName, type Size,
} from './console/controller.ts';
export {
  TYPE_PAUSE_MS, SEND_KEY_COMBOS, checkTypeable, parseKeyCombo, typeText, type TypeOptions,
} from './console/typing.ts';
export {
  completePicture, primarySurface, type CompletePicture, type PictureCompletion, type PictureOptions,
} from './console/picture.ts';
export {
  UsbredirChannel, UsbredirHost, UsbredirProtocolError, UsbDeviceRefused, MassStorageDevice, MemoryDisk, UsbStatus,
  WebUsbDevice, type BlockDevice, type UsbDevice, type WebUsbDeviceLike,
} from './usbredir/index.ts';
export { MAX_HEADS, describeHeads, headImage, headsMatch, sideBySide, type HeadSize } from './console/monitors.ts';

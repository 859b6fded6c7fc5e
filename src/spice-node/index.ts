export {
  completePicture,
  openSpiceSession,
  primarySurface,
  screenshotPng,
  settledDisplay,
  type CompletePicture,
  type HeadlessOptions,
  type PictureCompletion,
  type PictureOptions,
  type HeadlessTarget,
} from './client.ts';
export { nodeEncryptTicket } from './crypto.ts';
export { encodePng } from './png.ts';
export { socketTransport, tcpConnector, unixConnector } from './transport.ts';
export { ConsoleRefusedError } from './errors.ts';
export { wsConnector, wsTransport, type WsClientOptions } from './ws-transport.ts';
export { nodeFileSource, type NodeFileSource } from './files.ts';
export { nodeDavFs } from './webdav-fs.ts';
export { attachUsbDevice, attachUsbDisk, fileDisk, usbPorts, type AttachedDisk } from './usb-disk.ts';
export { HostUsbError, listHostUsb, openHostUsb, parseVidPid, type HostUsbInfo } from './usb-host.ts';

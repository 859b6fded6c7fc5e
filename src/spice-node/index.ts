export { openSpiceSession, primarySurface, screenshotPng, type HeadlessOptions, type HeadlessTarget } from './client.ts';
export { nodeEncryptTicket } from './crypto.ts';
export { encodePng } from './png.ts';
export { socketTransport, tcpConnector, unixConnector } from './transport.ts';

// What the WebDAV tests use from the core (the core's public surface plus the server's special-handler type).
export {
  MuxParser, WebdavMux, WebdavServer, encodeMuxFrame, DropBox, dropName, parseRange, EMPTY_FS, FileTransferError,
  type DavFs, type FileSource,
} from '../../../src/spice/index.ts';
export type { SpecialHandler } from '../../../src/spice/webdav/server.ts';

// QEMU 7.2 migration stream: streaming split (parser) and reassembly (writer).
export * from './format.ts';
export {
  MigrationStreamParser,
  parseStream,
  splitTail,
  type ParsedStream,
  type RamBlock,
  type StreamSink,
} from './parser.ts';
export { StreamBuilder, writeStream, type PageRecord, type StreamParts } from './writer.ts';
export { pageRecordHeader, ramStart } from './writer.ts';
export {
  MIG_CMD,
  RP_MSG,
  PostcopyPageEncoder,
  ReturnPathParser,
  adviseCommand,
  command,
  discardCommand,
  packagedCommand,
  pingCommand,
  postcopyEnd,
  postcopyPreamble,
  type PostcopyParts,
  type ReturnPathMessage,
} from './postcopy.ts';

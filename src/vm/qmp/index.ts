// The QMP client: typed, promise-based control of a QEMU process over its QMP unix socket.
export {
  QmpClient,
  type ConnectOptions,
  type ExecuteOptions,
  type QmpVersion,
  type WaitForEventOptions,
} from './client.ts';
export type { QmpEvent, QmpEventListener } from './events.ts';
export type {
  BlockInfo, QmpArgs, QmpCommandName, QmpCommands, QmpEmpty, QmpReturn, RunState, StatusInfo, VersionInfo,
} from './commands.ts';
export { QmpClosedError, QmpConnectError, QmpError, QmpProtocolError, QmpTimeoutError } from './errors.ts';

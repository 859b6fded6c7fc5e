// Arguments and returns of the QMP commands Oriel uses, as QEMU 7.2 describes them in its `query-qmp-schema`.
// Only these are typed; `QmpClient.execute` takes any other command untyped.

/** What a command without data returns: "an empty json-object" (qmp-spec.rst, "Success"). */
export type QmpEmpty = Record<string, never>;
/** The arguments of a command that takes none. */
type NoArgs = Record<string, never> | undefined;

/** QEMU's run state (`RunState`). */
export type RunState =
  | 'debug' | 'inmigrate' | 'internal-error' | 'io-error' | 'paused' | 'postmigrate' | 'prelaunch'
  | 'finish-migrate' | 'restore-vm' | 'running' | 'save-vm' | 'shutdown' | 'suspended' | 'watchdog'
  | 'guest-panicked' | 'colo';

/** `query-status` (`StatusInfo`). */
export interface StatusInfo {
  status: RunState;
  running: boolean;
  /** Deprecated by QEMU; still sent by 7.2. */
  singlestep?: boolean;
}

/** `query-version`, and the `version` member of the greeting (`VersionInfo`). */
export interface VersionInfo {
  qemu: { major: number; minor: number; micro: number };
  package: string;
}

/** One entry of `query-block` (`BlockInfo`); the members Oriel reads, QEMU sends more. */
export interface BlockInfo {
  device: string;
  qdev?: string;
  type: string;
  removable: boolean;
  locked: boolean;
  tray_open?: boolean;
  'io-status'?: 'ok' | 'failed' | 'nospace';
  inserted?: {
    file: string;
    'node-name'?: string;
    ro: boolean;
    drv: string;
    backing_file?: string;
    backing_file_depth: number;
    encrypted: boolean;
    image: {
      filename: string;
      format: string;
      'virtual-size': number;
      'actual-size'?: number;
      'backing-filename'?: string;
      'backing-filename-format'?: string;
      'dirty-flag'?: boolean;
    };
  };
}

/** Command name → its `arguments` and its `return`. */
export interface QmpCommands {
  qmp_capabilities: { args: { enable?: 'oob'[] } | undefined; ret: QmpEmpty };
  'query-status': { args: NoArgs; ret: StatusInfo };
  'query-version': { args: NoArgs; ret: VersionInfo };
  'query-block': { args: NoArgs; ret: BlockInfo[] };
  stop: { args: NoArgs; ret: QmpEmpty };
  cont: { args: NoArgs; ret: QmpEmpty };
  system_powerdown: { args: NoArgs; ret: QmpEmpty };
  system_reset: { args: NoArgs; ret: QmpEmpty };
  quit: { args: NoArgs; ret: QmpEmpty };
  /** Writes the display to `filename` (a path QEMU opens); `format` defaults to ppm. */
  screendump: { args: { filename: string; device?: string; head?: number; format?: 'ppm' | 'png' }; ret: QmpEmpty };
  /** Runs a human-monitor (HMP) command line; returns its output. */
  'human-monitor-command': { args: { 'command-line': string; 'cpu-index'?: number }; ret: string };
}

export type QmpCommandName = keyof QmpCommands;
export type QmpArgs<C extends QmpCommandName> = QmpCommands[C]['args'];
export type QmpReturn<C extends QmpCommandName> = QmpCommands[C]['ret'];

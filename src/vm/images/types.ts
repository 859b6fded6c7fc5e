// What an image builder produces (manifest.json in the image's folder) and what it is given to build one.

export type GuestExec = 'serial-shell' | 'guest-agent';
/** 'guest-agent': a virtio-serial port for qemu-guest-agent on a unix socket only the server opens;
 * 'spice-webdav': the SPICE WebDAV port (folder sharing through the SPICE client);
 * 'spice-audio': a sound card (HDA, speaker and microphone) whose audio goes through SPICE's sound channels. */
export type GuestDevice = 'guest-agent' | 'spice-webdav' | 'spice-audio';

export interface ImageManifest {
  name: string;
  /** Hex sha256 of the recipe: every input that changes the output (package versions, init script, builder version). */
  recipe: string;
  builtAt: string;
  /** Absolute folder holding the image's files. */
  dir: string;
  kernel?: string;
  initrd?: string;
  /** The whole kernel command line: the VM manager passes it as is and adds nothing. */
  append?: string;
  /** A qcow2 base disk; VMs always run a per-VM overlay on it, never the file itself. */
  disk?: string;
  /** Text the guest prints on its first serial port once it is ready (its command shell listens). */
  readyMarker?: string;
  /** How commands run in the guest: 'serial-shell' = the GuestShell protocol on the second serial port;
   * 'guest-agent' = qemu-guest-agent's guest-exec (guest-agent.ts). */
  exec?: GuestExec;
  /** The whole environment of commands run through the guest agent (it passes them no other). */
  execEnv?: Record<string, string>;
  /** The graphics card the guest is made for (what new VMs get unless they ask for another). */
  display?: 'std' | 'qxl';
  /** Devices the guest needs beyond every VM's (qemu-args.ts). */
  devices?: GuestDevice[];
  /** Defaults for new VMs of this image. */
  memoryMiB?: number;
  cpus?: number;
  sizeBytes: number;
}

export interface BuildContext {
  cacheDir: string;
  signal?: AbortSignal;
  progress?(done: number, total: number, stage: string): void;
  log?(line: string): void;
}

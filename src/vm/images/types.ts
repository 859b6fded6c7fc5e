// What an image builder produces (manifest.json in the image's folder) and what it is given to build one.

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
  /** How commands run in the guest: 'serial-shell' = the GuestShell protocol on the second serial port. */
  exec?: 'serial-shell';
  sizeBytes: number;
}

export interface BuildContext {
  cacheDir: string;
  signal?: AbortSignal;
  progress?(done: number, total: number, stage: string): void;
  log?(line: string): void;
}

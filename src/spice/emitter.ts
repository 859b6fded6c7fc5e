// Typed events and disposables (the xterm.js pattern: `onX` properties backed by an Emitter owned
// by the object that fires them).

export interface Disposable {
  dispose(): void;
}

export type Event<T> = (listener: (value: T) => void) => Disposable;

export class Emitter<T> {
  private readonly _listeners = new Set<(value: T) => void>();

  readonly event: Event<T> = (listener) => {
    this._listeners.add(listener);
    return { dispose: () => this._listeners.delete(listener) };
  };

  fire(value: T): void {
    for (const l of [...this._listeners]) l(value);
  }

  dispose(): void {
    this._listeners.clear();
  }
}

/** Resolves with the next value of `event` (for awaiting a state in tests and scripts). */
export function nextEvent<T>(event: Event<T>, filter: (v: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const d = event((v) => {
      if (!filter(v)) return;
      d.dispose();
      resolve(v);
    });
  });
}

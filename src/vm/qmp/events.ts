// Fan-out of QMP asynchronous events (qmp-spec.rst, "Asynchronous events") to callbacks, iterators and waiters.

/** An asynchronous event: `{"event", "data"?, "timestamp": {"seconds", "microseconds"}}`. */
export interface QmpEvent {
  event: string;
  /** Event-specific; absent for events without data (e.g. STOP). */
  data?: unknown;
  /** When QEMU raised it, relative to the Unix epoch; both -1 if QEMU could not read the host clock. */
  timestamp: { seconds: number; microseconds: number };
}

export type QmpEventListener = (event: QmpEvent) => void;

/** Delivers each event to every subscriber; `end()` tells them the connection is gone. */
export class EventHub {
  private readonly subscribers = new Set<{ onEvent: QmpEventListener; onEnd?: () => void }>();
  private ended = false;

  /** Calls `onEvent` for each event from now on, `onEnd` once when the hub ends (at once if it has). Returns the
   * unsubscribe function. */
  subscribe(onEvent: QmpEventListener, onEnd?: () => void): () => void {
    if (this.ended) {
      onEnd?.();
      return () => {};
    }
    const sub = { onEvent, onEnd };
    this.subscribers.add(sub);
    return () => void this.subscribers.delete(sub);
  }

  /** Delivers `event`. A throwing subscriber does not stop the others nor the reading of the socket: its error is
   * re-thrown on a microtask, where it is as visible as an EventEmitter listener's. */
  emit(event: QmpEvent): void {
    for (const sub of [...this.subscribers]) {
      try {
        sub.onEvent(event);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    const subs = [...this.subscribers];
    this.subscribers.clear();
    for (const sub of subs) sub.onEnd?.();
  }

  /** An iterator over the events from now on; it finishes after the hub ends and its buffered events are read.
   * `return()` (a `break` out of `for await`) unsubscribes and drops what is buffered. */
  iterate(): AsyncIterableIterator<QmpEvent> {
    const buffered: QmpEvent[] = [];
    const readers: ((r: IteratorResult<QmpEvent>) => void)[] = [];
    let done = false;
    const finish = () => {
      done = true;
      for (const read of readers.splice(0)) read({ value: undefined, done: true });
    };
    const unsubscribe = this.subscribe((event) => {
      const read = readers.shift();
      if (read) read({ value: event, done: false });
      else buffered.push(event);
    }, finish);
    const iterator: AsyncIterableIterator<QmpEvent> = {
      next: () => {
        if (buffered.length > 0) return Promise.resolve({ value: buffered.shift()!, done: false });
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => readers.push(resolve));
      },
      return: () => {
        unsubscribe();
        buffered.length = 0;
        finish();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }
}

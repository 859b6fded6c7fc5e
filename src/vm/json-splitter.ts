// Cuts qemu-guest-agent's byte stream into JSON texts: an object ends where its braces balance (braces inside
// strings do not count), and 0xFF, the agent's delimiter, drops whatever came before it (guest-agent.ts).
// The guest is not trusted, so the work and memory are bounded: each byte is looked at once, a message's pieces are
// joined once, when it is complete, and a message over `maxBytes` is skipped (its bytes not kept) to its end.
export const QGA_DELIM = 0xff;

export class JsonSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private skipping = false;

  constructor(
    private readonly onText: (text: string) => void,
    readonly maxBytes = 24 << 20,
  ) {}

  /** Forgets any partial message. */
  reset(): void {
    this.parts = [];
    this.size = 0;
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
    this.skipping = false;
  }

  push(chunk: Buffer): void {
    let start = this.depth > 0 ? 0 : -1; // where the message under way starts in this chunk
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (c === QGA_DELIM) {
        this.reset();
        start = -1;
      } else if (this.depth === 0) {
        if (c === 0x7b /* { */) {
          start = i;
          this.depth = 1;
        } // anything else between messages (whitespace, stray bytes) is dropped
      } else if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c /* \ */) this.escaped = true;
        else if (c === 0x22 /* " */) this.inString = false;
      } else if (c === 0x22) {
        this.inString = true;
      } else if (c === 0x7b) {
        this.depth++;
      } else if (c === 0x7d /* } */ && --this.depth === 0) {
        this.keep(chunk.subarray(start, i + 1));
        const whole = !this.skipping && Buffer.concat(this.parts, this.size);
        this.reset();
        start = -1;
        if (whole) this.onText(whole.toString('utf8'));
      }
    }
    if (this.depth > 0 && start >= 0) this.keep(chunk.subarray(start));
  }

  private keep(piece: Buffer): void {
    if (this.skipping) return;
    this.size += piece.length;
    if (this.size > this.maxBytes) {
      this.skipping = true;
      this.parts = [];
      return;
    }
    this.parts.push(piece);
  }
}

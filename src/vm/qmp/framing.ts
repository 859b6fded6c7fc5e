// QMP framing. "All interactions transmitted by the Server are json-objects, always terminating with CRLF"
// (qmp-spec.rst, "General Definitions"), so a line is a message; a socket chunk may end mid-line or hold several.

/** Cuts a stream of decoded text into lines. */
export class LineSplitter {
  /** Pieces of the line not yet ended, joined once its LF arrives (so a reply in many chunks costs O(size)). */
  private partial: string[] = [];

  /** Feeds one chunk; returns the lines it completes, without the LF, blank ones left out. A CR left at the end is
   * JSON whitespace, which JSON.parse accepts. */
  push(chunk: string): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', start)) {
      this.partial.push(chunk.slice(start, nl));
      const line = this.partial.join('');
      this.partial = [];
      if (line.trim() !== '') lines.push(line);
      start = nl + 1;
    }
    if (start < chunk.length) this.partial.push(chunk.slice(start));
    return lines;
  }
}

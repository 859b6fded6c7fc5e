// The CLI's usage and outcome errors: main.ts prints `oriel: MESSAGE` and exits with the code. Its own file (no
// imports) so the screenshot fast path (src/cli/screenshot.ts) reports errors as every command does without loading
// the API client.

export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

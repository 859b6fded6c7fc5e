// Loads the unit tier's test files into this one process (run by scripts/run-tests.js, with node's test reporters):
// node:test runs the tests each file registers, in order; a failure sets the exit code.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

for (const file of process.argv.slice(2)) await import(pathToFileURL(resolve(file)).href);

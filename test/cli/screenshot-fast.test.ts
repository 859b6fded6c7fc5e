// The fast path of `oriel console screenshot` (src/cli/screenshot.ts): which command lines it takes (the direct
// targets with --password/--timeout, spelled as commander takes them, and VM names with --timeout) and which it
// leaves to the full command, and its stamp check (src/cli/bundle-stamp.ts): current only while every file it was
// built from is as recorded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleIsCurrent, SCREENSHOT_STAMP } from '../../src/cli/bundle-stamp.ts';
import { parseScreenshotArgs } from '../../src/cli/screenshot.ts';

test('taken: a direct target and a file, --password and --timeout in both spellings, anywhere', () => {
  assert.deepEqual(parseScreenshotArgs(['spice+unix:///run/s.sock', 'out.png']), {
    target: 'spice+unix:///run/s.sock', file: 'out.png', o: { password: undefined, timeout: 20 },
  });
  assert.deepEqual(parseScreenshotArgs(['--password', '-x y', 'spice://h:5900', '--timeout=5', 'a.png']), {
    target: 'spice://h:5900', file: 'a.png', o: { password: '-x y', timeout: 5 },
  });
  assert.deepEqual(parseScreenshotArgs(['spice://h:1', 'a.png', '--password=', '--timeout', '7'])?.o,
    { password: '', timeout: 7 });
});

test('taken: a VM name (through the server) with --timeout', () => {
  assert.deepEqual(parseScreenshotArgs(['myvm', 'a.png', '--timeout', '9']), {
    target: 'myvm', file: 'a.png', o: { password: undefined, timeout: 9 },
  });
});

test('left to the full command: other schemes, a VM with --password, other options, help, bad values', () => {
  for (const args of [
    ['myvm', 'a.png', '--password', 'x'], // a password is for direct targets
    ['vnc://h:1', 'a.png'], // the full command explains the scheme
    ['http://h/x', 'a.png'],
    ['spice://h:1', 'a.png', '--size', '800x600'],
    ['spice://h:1', 'a.png', '--help'],
    ['spice://h:1', 'a.png', '-h'],
    ['spice://h:1', 'a.png', '--timeout', '0'],
    ['spice://h:1', 'a.png', '--timeout', 'x'],
    ['spice://h:1', 'a.png', '--password'],
    ['spice://h:1'],
    ['spice://h:1', 'a.png', 'extra'],
    ['spice://h:1', '--', 'a.png'],
  ]) assert.equal(parseScreenshotArgs(args), undefined, args.join(' '));
});

test('the stamp: current as built; not after an edit, a touch, a missing file or without a stamp', () => {
  const root = mkdtempSync(join(tmpdir(), 'oshot-'));
  try {
    mkdirSync(join(root, 'src'));
    mkdirSync(join(root, 'dist', 'node'), { recursive: true });
    const names = ['src/a.ts', 'src/b.ts'];
    for (const n of names) writeFileSync(join(root, n), `// ${n}\n`);
    const line = (n: string) => {
      const s = statSync(join(root, n));
      return `${n} ${s.size} ${s.mtimeMs}`;
    };
    assert.equal(bundleIsCurrent(root), false, 'no stamp');
    writeFileSync(join(root, SCREENSHOT_STAMP), JSON.stringify({ names, files: names.map(line).join('\n') }));
    assert.equal(bundleIsCurrent(root), true);
    const t = statSync(join(root, 'src/b.ts')).mtime;
    writeFileSync(join(root, 'src/b.ts'), '// edited\n');
    utimesSync(join(root, 'src/b.ts'), t, t); // same time, other size
    assert.equal(bundleIsCurrent(root), false, 'edited');
    writeFileSync(join(root, SCREENSHOT_STAMP), JSON.stringify({ names, files: names.map(line).join('\n') }));
    assert.equal(bundleIsCurrent(root), true);
    utimesSync(join(root, 'src/a.ts'), new Date(), new Date(Date.now() + 5000));
    assert.equal(bundleIsCurrent(root), false, 'touched');
    writeFileSync(join(root, SCREENSHOT_STAMP), JSON.stringify({ names, files: names.map(line).join('\n') }));
    rmSync(join(root, 'src/b.ts'));
    assert.equal(bundleIsCurrent(root), false, 'missing');
    writeFileSync(join(root, SCREENSHOT_STAMP), '{"names": 3}');
    assert.equal(bundleIsCurrent(root), false, 'malformed');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

// Debian packages for image builders: which version apt would pick, its .deb (downloaded once into a cache
// folder with `apt-get download`), and its files (`dpkg-deb -x`). Nothing is installed on the host.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface DebRecord {
  name: string;
  version: string;
  /** The Depends field as written, e.g. 'linux-image-6.1.0-56-amd64 (= 6.1.192-2)'. */
  depends: string;
}

let listsRefreshed = false;

function errText(e: unknown): string {
  const x = e as { stderr?: string | Buffer; message?: string };
  return (x.stderr?.toString().trim() || x.message || String(e)).split('\n').slice(-5).join('\n');
}

/**
 * The candidate records of packages (the versions `apt-get install` would take). Synchronous because recipe hashes
 * are. A package apt does not know makes it refresh its lists once (`apt-get update`; fresh machines have none).
 */
export function aptCandidates(names: string[]): DebRecord[] {
  const show = () =>
    execFileSync('apt-cache', ['show', '--no-all-versions', ...names], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  let text: string;
  try {
    text = show();
  } catch (first) {
    if (listsRefreshed) throw new Error(`apt-cache cannot find ${names.join(', ')}: ${errText(first)}`);
    listsRefreshed = true;
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      throw new Error(
        `apt-cache cannot find ${names.join(', ')}, and 'apt-get update' failed (needs root): ${errText(e)}`,
      );
    }
    try {
      text = show();
    } catch (e) {
      throw new Error(`apt-cache cannot find ${names.join(', ')} even after 'apt-get update': ${errText(e)}`);
    }
  }
  const records = text.split(/\n\n+/).filter((r) => r.trim()).map((r) => ({
    name: field(r, 'Package'),
    version: field(r, 'Version'),
    depends: field(r, 'Depends', ''),
  }));
  return names.map((n) => {
    const r = records.find((x) => x.name === n);
    if (!r) throw new Error(`apt-cache show printed no record for ${n}`);
    return r;
  });
}

function field(record: string, name: string, fallback?: string): string {
  const m = record.match(new RegExp(`^${name}: (.*)$`, 'm'));
  if (m) return m[1]!.trim();
  if (fallback !== undefined) return fallback;
  throw new Error(`apt record without ${name}:\n${record.slice(0, 200)}`);
}

/**
 * The .deb of name=version in debDir, downloaded unless already there. The download goes to a private folder
 * first and is moved in whole, so an interrupted one is never taken for a complete file.
 */
export async function fetchDeb(name: string, version: string, debDir: string, signal?: AbortSignal): Promise<string> {
  const fileName = `${name}_${version.replace(/:/g, '%3a')}_`; // apt's file naming: epoch colon escaped, then arch
  mkdirSync(debDir, { recursive: true });
  const have = readdirSync(debDir).find((f) => f.startsWith(fileName) && f.endsWith('.deb'));
  if (have) return join(debDir, have);
  const tmp = join(debDir, `.dl-${process.pid}-${Date.now()}`);
  mkdirSync(tmp);
  try {
    try {
      await run('apt-get', ['download', '-q', `${name}=${version}`], { cwd: tmp, signal, maxBuffer: 16 << 20 });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new Error(`apt-get download ${name}=${version} failed: ${errText(e)}`);
    }
    const got = readdirSync(tmp).find((f) => f.endsWith('.deb'));
    if (!got) throw new Error(`apt-get download ${name}=${version} succeeded but left no .deb`);
    renameSync(join(tmp, got), join(debDir, got));
    return join(debDir, got);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Unpacks a .deb's files (not its maintainer scripts) under destDir. */
export async function extractDeb(debPath: string, destDir: string, signal?: AbortSignal): Promise<void> {
  if (!existsSync(debPath)) throw new Error(`no such .deb: ${debPath}`);
  mkdirSync(destDir, { recursive: true });
  try {
    await run('dpkg-deb', ['-x', debPath, destDir], { signal });
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new Error(`dpkg-deb -x ${debPath} failed: ${errText(e)}`);
  }
}

export interface AptIndex {
  /** The archive's base URL, e.g. http://deb.debian.org/debian */
  site: string;
  /** The suite as written in sources (e.g. bookworm, bookworm-security). */
  release: string;
  component: string;
  /** The host's list file holding this index (compressed as apt keeps it). */
  file: string;
}

/** The binary package indexes (Packages files) apt on this host uses, as `apt-get indextargets` reports them. */
export async function aptPackageIndexes(arch = 'amd64'): Promise<AptIndex[]> {
  let out: string;
  try {
    ({ stdout: out } = await run(
      'apt-get',
      [
        'indextargets',
        '--format',
        '$(SITE)|$(RELEASE)|$(COMPONENT)|$(ARCHITECTURE)|$(FILENAME)',
        'Identifier: Packages',
      ],
      { maxBuffer: 1 << 20 },
    ));
  } catch (e) {
    throw new Error(`apt-get indextargets failed: ${errText(e)}`);
  }
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('|'))
    .filter((f) => f[3] === arch && existsSync(f[4]!))
    .map(([site, release, component, , file]) => ({
      site: site!,
      release: release!,
      component: component!,
      file: file!,
    }));
}

/**
 * The packages and versions `apt-get install --no-install-recommends NAMES` would install on an empty system, from
 * this host's package lists (a simulation against an empty dpkg status). Synchronous because recipe hashes are, and
 * slow (apt parses every list: 5-15 s here): callers cache the answer.
 */
export function aptClosure(names: string[]): { name: string; version: string }[] {
  const simulate = () =>
    execFileSync(
      'apt-get',
      [
        'install',
        '--simulate',
        '--no-install-recommends',
        '-o',
        'Dir::State::status=/dev/null',
        '-o',
        'Debug::NoLocking=1',
        '-o',
        'APT::Get::Show-Versions=0',
        ...names,
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 << 20 },
    );
  let text: string;
  try {
    text = simulate();
  } catch (first) {
    if (listsRefreshed) throw new Error(`apt-get cannot resolve ${names.join(' ')}: ${errText(first)}`);
    listsRefreshed = true;
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'pipe'] });
      text = simulate();
    } catch (e) {
      throw new Error(
        `apt-get cannot resolve ${names.join(' ')}, even after 'apt-get update' (needs root): ${errText(e)}`,
      );
    }
  }
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^Inst (\S+) \((\S+) /gm)) out.set(m[1]!, m[2]!);
  if (out.size === 0) throw new Error(`apt-get install --simulate printed no package to install:\n${text.slice(-500)}`);
  return [...out]
    .map(([name, version]) => ({ name, version }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// Issue 18, packaging: `npm pack` then `npm install -g` into an empty prefix gives working fcp and fcpd commands
// (a real push between them), their man pages and completion scripts, and nothing of tests or benchmarks; the
// man pages say what --help says; the systemd unit and the logrotate snippet pass their tools (skipped, with a
// note, where the tool is missing).
import { type ChildProcess, spawn, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { generatedDocs } from '../../src/cli/docs.js';
import { parseHelp } from '../../src/cli/man-page.js';
import { hermeticEnv, track } from '../helpers/cli.js';
import { freePort, HOST } from '../helpers/daemon.js';
import { eventually, killIfStill, readPid } from '../helpers/detached.js';
import { removeTree } from '../helpers/tree.js';
import { spawnSync } from '../helpers/sync.js';

/** The checkout: this file is dist/test/e2e/packaging.test.js. */
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string })
  .version;
const tmp = mkdtempSync(path.join(tmpdir(), 'fcp-e2e-packaging-'));
chmodSync(tmp, 0o755);
const prefix = path.join(tmp, 'prefix');
const bin = path.join(prefix, 'bin');
const installed = path.join(prefix, 'lib', 'node_modules', 'fcp');
let packed: string[] = [];
const children: ChildProcess[] = [];
const detachedPids = new Set<number>();

/** Our environment without npm's own variables (npm test sets some), the installed bin first on PATH. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(hermeticEnv()).filter(([k]) => !/^npm_/i.test(k)));
  const nodeDir = path.dirname(process.execPath);
  return { ...clean, PATH: `${bin}:${nodeDir}:${clean['PATH'] ?? '/usr/bin:/bin'}`, ...extra };
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 180_000, env: env(), ...opts });
  if (r.error !== undefined) throw r.error;
  return r;
}

function show(r: SpawnSyncReturns<string>): string {
  return `exit ${r.status}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).status === 0;
}

function skip(what: string): void {
  console.log(`  (skipped: ${what})`);
}

test.before(() => {
  // --ignore-scripts: the tarball of this build; `prepare` would rebuild dist/ under the running tests.
  const pack = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: REPO });
  assert.is(pack.status, 0, show(pack));
  const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  packed = info!.files.map((f) => f.path);
  // The bundles need nothing from the registry: the install must work offline.
  const install = run('npm', [
    'install',
    '-g',
    path.join(tmp, info!.filename),
    '--prefix',
    prefix,
    '--offline',
    '--no-audit',
    '--no-fund',
    '--ignore-scripts',
  ]);
  assert.is(install.status, 0, show(install));
});

test.after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const pid of detachedPids) killIfStill(pid, 'fcpd');
  await removeTree(tmp);
});

test('the tarball holds the commands, man pages, completion and packaging files; no tests or benchmarks', () => {
  for (const file of [
    'dist/bin/fcp.js',
    'dist/bin/fcp-main.cjs',
    'dist/bin/fcpd.js',
    // Marks the bundles beside it CommonJS (cli/build-fcpd-bundle.ts).
    'dist/bin/package.json',
    'man/fcp.1',
    'man/fcpd.8',
    'completion/fcp.bash',
    'completion/_fcp',
    'completion/fcpd.bash',
    'completion/_fcpd',
    'packaging/fcpd@.service',
    'packaging/fcpd.logrotate',
    'README.md',
    'package.json',
  ]) {
    assert.ok(packed.includes(file), `${file} missing from ${packed.join(' ')}`);
  }
  const stray = packed.filter(
    (f) => /^(test|bench|src|dist\/(test|bench|src))\//.test(f) || f.endsWith('.map'),
  );
  assert.equal(stray, [], 'no tests, benchmarks, sources or source maps');
});

test('installed: fcp --version, fcpd --help, and the man pages where man finds them', () => {
  const version = run(path.join(bin, 'fcp'), ['--version']);
  assert.is(version.status, 0, show(version));
  assert.is(version.stdout.trim(), VERSION);
  const help = run(path.join(bin, 'fcpd'), ['--help']);
  assert.is(help.status, 0, show(help));
  assert.match(help.stdout, /fcpd stop \[options\]/);
  assert.ok(existsSync(path.join(prefix, 'share/man/man1/fcp.1')), 'fcp.1 linked into share/man/man1');
  assert.ok(existsSync(path.join(prefix, 'share/man/man8/fcpd.8')), 'fcpd.8 linked into share/man/man8');
});

/** Starts the installed fcpd in the foreground and resolves with its port once it serves. */
function startInstalledDaemon(root: string): Promise<number> {
  const child = spawn(path.join(bin, 'fcpd'), ['--port', '0', '--bind', HOST, '--root', root], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: env(),
  });
  track(child);
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const port = /^fcpd listening on [\d.]+:(\d+)$/m.exec(out)?.[1];
      if (port !== undefined) resolve(Number(port));
    });
    child.once('exit', (code) => reject(new Error(`installed fcpd exited with ${code} before serving`)));
  });
}

test('installed: a real push from fcp to fcpd', async () => {
  const root = path.join(tmp, 'served');
  mkdirSync(root);
  const src = path.join(tmp, 'hello.txt');
  writeFileSync(src, 'hello from an installed fcp\n');
  const port = await startInstalledDaemon(root);
  const r = run(path.join(bin, 'fcp'), ['push', src, `${HOST}:${port}:got.txt`]);
  assert.is(r.status, 0, show(r));
  assert.is(await readFile(path.join(root, 'got.txt'), 'utf8'), 'hello from an installed fcp\n');
});

/** Options and descriptions of a man page, as groff renders it: one line each, no hyphenation. */
function renderedMan(file: string): string {
  const r = run('groff', ['-man', '-Tascii', '-rLL=3000n', '-rHY=0', '-P-cbou', file]);
  assert.is(r.status, 0, show(r));
  return r.stdout.replace(/\s+/g, ' ');
}

test('the man pages say what --help says', () => {
  // The pages in the checkout are those the built commands make now (npm run build writes them).
  for (const [file, text] of generatedDocs(path.join(REPO, 'dist/bin'))) {
    assert.is(readFileSync(path.join(REPO, file), 'utf8'), text, `${file} is stale: npm run build`);
  }
  if (!have('groff')) return skip('groff is not installed: the rendered pages were not read');
  const helps: Array<[string, string[][]]> = [
    ['share/man/man1/fcp.1', [['fcp', '--help']]],
    [
      'share/man/man8/fcpd.8',
      [
        ['fcpd', '--help'],
        ['fcpd', 'stop', '--help'],
      ],
    ],
  ];
  for (const [page, commands] of helps) {
    const man = renderedMan(path.join(prefix, page));
    for (const [cmd, ...args] of commands) {
      const help = run(path.join(bin, cmd!), args);
      for (const table of parseHelp(help.stdout).tables) {
        for (const { term, text } of table.entries) {
          assert.ok(man.includes(`${term} ${text}`), `${page} lacks "${term} ${text}" (${table.title})`);
        }
      }
    }
  }
});

test('bash completion from the package completes commands and options', () => {
  const complete = (words: string) =>
    run('bash', [
      '-c',
      `source "${installed}/completion/fcp.bash"; COMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); ` +
        '_fcp_yargs_completions; printf "%s\\n" "${COMPREPLY[@]}"',
    ]);
  const commands = complete('fcp pu');
  assert.is(commands.status, 0, show(commands));
  assert.equal(commands.stdout.split('\n').filter(Boolean), ['push', 'pull']);
  const options = complete('fcp push --conn');
  assert.equal(options.stdout.split('\n').filter(Boolean), ['--connections'], show(options));
  if (!have('zsh')) return skip('zsh is not installed: completion/_fcp was not loaded');
  const zsh = run('zsh', ['-n', path.join(installed, 'completion/_fcp')]);
  assert.is(zsh.status, 0, show(zsh));
});

test('packaging/fcpd@.service passes systemd-analyze verify', () => {
  if (!have('systemd-analyze')) return skip('systemd-analyze is not installed');
  const dir = path.join(tmp, 'units');
  mkdirSync(dir);
  // verify checks that ExecStart exists: point it at the installed fcpd.
  const unit = readFileSync(path.join(installed, 'packaging/fcpd@.service'), 'utf8');
  assert.match(unit, /^ExecStart=fcpd --user %i$/m);
  const file = path.join(dir, 'fcpd@fcptest.service');
  writeFileSync(file, unit.replace(/^ExecStart=fcpd /m, `ExecStart=${path.join(bin, 'fcpd')} `));
  const r = run('systemd-analyze', ['verify', '--man=no', file]);
  assert.is(r.status, 0, show(r));
  // verify exits 0 on directives it ignores; they are still mistakes.
  assert.is(r.stderr.trim(), '', show(r));
});

test('packaging/fcpd.logrotate rotates a detached fcpd log, and fcpd reopens it on the SIGHUP', async () => {
  if (!have('logrotate')) return skip('logrotate is not installed');
  const dir = path.join(tmp, 'logrotate');
  const logDir = path.join(dir, 'log');
  const runDir = path.join(dir, 'run');
  const root = path.join(dir, 'served');
  for (const d of [logDir, runDir, root]) mkdirSync(d, { recursive: true });
  const conf = path.join(dir, 'fcpd.logrotate');
  const snippet = readFileSync(path.join(installed, 'packaging/fcpd.logrotate'), 'utf8');
  writeFileSync(conf, snippet.replaceAll('/var/log/fcpd', logDir).replaceAll('/run/fcpd', runDir));
  const syntax = run('logrotate', ['-d', '-s', path.join(dir, 'state'), conf]);
  assert.is(syntax.status, 0, show(syntax));

  const log = path.join(logDir, 'fcpd.log');
  const pidFile = path.join(runDir, 'fcpd.pid');
  const port = await freePort();
  const started = run(path.join(bin, 'fcpd'), [
    '-d',
    '--port',
    String(port),
    '--bind',
    HOST,
    '--root',
    root,
    '--log-file',
    log,
    '--pid-file',
    pidFile,
  ]);
  const pid = readPid(pidFile);
  if (pid !== undefined) detachedPids.add(pid);
  assert.is(started.status, 0, show(started));
  try {
    const rotate = run('logrotate', ['-f', '-s', path.join(dir, 'state'), conf]);
    assert.is(rotate.status, 0, show(rotate));
    assert.ok(existsSync(`${log}.1`), 'the log was rotated');
    await eventually(
      10_000,
      'fcpd to reopen its log',
      async () => existsSync(log) && (await readFile(log, 'utf8')).includes('log reopened'),
    );
  } finally {
    if (pid !== undefined) process.kill(pid, 'SIGTERM');
  }
});

test.run();

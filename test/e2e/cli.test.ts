// The fcp and fcpd command lines as a user meets them: help, one clear `fcp:` line and the documented exit
// code for each bad input (never a stack trace), quiet mode, and a summary without progress escapes when
// stdout is a pipe.
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import { describeRun, parseSummary, type RunResult, runFcp, runFcpd, unprivileged } from '../helpers/cli.js';
import {
  freePort,
  HOST,
  type InProcessDaemon,
  spawnDaemon,
  startInProcessDaemon,
} from '../helpers/daemon.js';
import { buildTree, compareTrees, prng, removeTree } from '../helpers/tree.js';

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-cli-'));
chmodSync(tmp, 0o755);
const served = join(tmp, 'served');
mkdirSync(served);
const src = join(tmp, 'src');
const file = join(src, 'a.txt');
let daemon: InProcessDaemon | undefined;

function remote(p: string): string {
  if (daemon === undefined) throw new Error('daemon not started');
  return daemon.remote(p);
}

/** Exactly one line on stderr, starting with `prefix`, no stack trace, nothing on stdout, and `code`. */
function expectOneLineError(r: RunResult, code: number, pattern: RegExp, prefix = 'fcp: ', label = ''): void {
  const where = `${label}${label === '' ? '' : ': '}${describeRun(r)}`;
  assert.is(r.code, code, `exit code: ${where}`);
  assert.not.ok(r.timedOut, where);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, `one stderr line: ${where}`);
  assert.ok(lines[0]!.startsWith(prefix), `starts with "${prefix}": ${where}`);
  assert.ok(r.stderr.endsWith('\n'), `newline-terminated: ${where}`);
  assert.match(lines[0]!, pattern, where);
  assert.not.match(r.stderr, /\n\s+at .+:\d+:\d+/, `no stack trace: ${where}`);
  assert.is(r.stdout, '', `nothing on stdout: ${where}`);
}

test.before(async () => {
  await buildTree(src, [
    { kind: 'file', path: 'a.txt', size: 1234 },
    { kind: 'file', path: 'sub/b.bin', size: 70_000 },
    { kind: 'file', path: 'sub/c.ts', size: 10 },
  ]);
  daemon = await startInProcessDaemon({ root: served });
});

test.after(async () => {
  try {
    await daemon?.stop();
  } finally {
    await removeTree(tmp);
  }
});

const HELP: Array<{ bin: 'fcp' | 'fcpd'; args: string[]; mentions: string[] }> = [
  { bin: 'fcp', args: ['--help'], mentions: ['push', 'pull', 'Exit codes', 'Trailing slash'] },
  {
    bin: 'fcp',
    args: ['push', '--help'],
    mentions: ['--connections', '--checksum', '--include', '--exclude', '--regex', '--quiet', '--ssh-config'],
  },
  {
    bin: 'fcp',
    args: ['pull', '--help'],
    mentions: ['--connections', '--checksum', '--include', '--exclude', '--regex', '--quiet', '--verbose'],
  },
  {
    bin: 'fcpd',
    args: ['--help'],
    mentions: [
      '--port',
      '--root',
      '--bind',
      '--detach',
      '--max-sessions',
      '--max-connections',
      '--pid-file',
      'stop',
    ],
  },
  { bin: 'fcpd', args: ['stop', '--help'], mentions: ['--port', '--pid-file'] },
];

for (const h of HELP) {
  test(`${h.bin} ${h.args.join(' ')} exits 0 and names its options`, async () => {
    const r = h.bin === 'fcp' ? await runFcp(h.args) : await runFcpd(h.args);
    assert.is(r.code, 0, describeRun(r));
    assert.is(r.stderr, '', describeRun(r));
    for (const word of h.mentions) assert.ok(r.stdout.includes(word), `mentions ${word}: ${r.stdout}`);
  });
}

test('help piped at 80 columns: whole words, no yargs defaults for operands or --encryption, nothing of this machine', async () => {
  for (const args of [['--help'], ['push', '--help'], ['pull', '--help']]) {
    const r = await runFcp(args, { env: { COLUMNS: '80' } });
    assert.is(r.code, 0, describeRun(r));
    for (const line of r.stdout.split('\n')) assert.ok(line.length <= 80, `${args.join(' ')}: ${line}`);
    // Lines joined again: a phrase split mid-word (yargs' ESM build cut "rsy|nc") would not be found.
    const joined = r.stdout.replace(/\n\s*/g, ' ');
    const phrases = [
      '(fcpd --fingerprint)',
      'still authenticated (trusted networks only;',
      'over ssh it does not apply)',
    ];
    if (args[0] === '--help') phrases.push('(like rsync).', 'or the port is in use');
    for (const phrase of phrases) assert.ok(joined.includes(phrase), `${args.join(' ')}: "${phrase}"`);
    assert.not.match(r.stdout, /\[default: \[\]\]|\[array\]/, r.stdout);
    assert.not.match(r.stdout, /^\s+--encryption\b/m, r.stdout);
    assert.match(r.stdout, /--no-encryption/);
    assert.not.ok(r.stdout.includes(homedir()), `names this machine's ${homedir()}`);
  }
});

test('global options work before the command as after it', async () => {
  const r = await runFcp(['-v', '-q', 'push', file, remote('global-before.txt')]);
  assert.is(r.code, 0, describeRun(r));
  assert.is(r.stdout, '', describeRun(r));
  expectOneLineError(await runFcp(['-n', '0', 'pull', remote('x'), tmp]), EXIT.USAGE, /--connections/);
});

test('usage errors: one fcp: line on stderr and exit 1', async () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /command/],
    [['frobnicate'], /frobnicate/],
    [['push'], /argument/],
    [['push', file], /destination/],
    [['pull', remote('x')], /pull needs/],
    [['push', file, join(tmp, 'local-dest')], /not remote/],
    [['pull', join(tmp, 'local-src'), join(tmp, 'local-dest')], /not remote/],
    [['pull', remote('x'), remote('y')], /must be local/],
    [['push', file, remote('x'), remote('y')], /must be local/],
    [['push', '--bogus', file, remote('x')], /bogus/],
    [['pull', '--nope=1', remote('x'), tmp], /nope/],
    [['push', '-n', '0', file, remote('x')], /--connections/],
    [['push', '-n', '65', file, remote('x')], /--connections/],
    [['push', '--connections', 'many', file, remote('x')], /--connections/],
    [['push', '-n', '2.5', file, remote('x')], /--connections/],
    [['push', '-n', '-3', file, remote('x')], /--connections/],
    [['pull', '-n', '0', remote('x'), tmp], /--connections/],
    [['push', file, `${HOST}:99999:x`], /port/],
    [['push', file, remote('x'), '--regex', '('], /regex/],
    [['push', file, remote('x'), '--include', 'dir/'], /include/],
    [['push', file, remote('x'), '-F', join(tmp, 'no-such-ssh-config')], /ssh config/],
  ];
  for (const [args, pattern] of cases) {
    expectOneLineError(await runFcp(args), EXIT.USAGE, pattern, 'fcp: ', args.join(' '));
  }
});

test('a missing source is a path error (2) before anything connects', async () => {
  const port = await freePort();
  const r = await runFcp(['push', join(tmp, 'no-such-file'), `${HOST}:${port}:x`]);
  expectOneLineError(r, EXIT.PATH, /no-such-file/);
});

test('a repeatable option before the operands does not swallow them', async () => {
  // rsync users write the options first: `fcp push --include '*.ts' SRC HOST:DST`.
  const r = await runFcp(['push', '--include', '*.ts', `${src}/`, remote('before-operands')]);
  assert.is(r.code, 0, describeRun(r));
  const r2 = await runFcp(['pull', '--exclude', '*.bin', remote('before-operands/'), join(tmp, 'b-o')]);
  assert.is(r2.code, 0, describeRun(r2));
});

test('nothing listening, or a daemon that has stopped: exit 4', async () => {
  const port = await freePort();
  expectOneLineError(await runFcp(['push', file, `${HOST}:${port}:x`]), EXIT.CONNECT, /refused|connect/);
  expectOneLineError(await runFcp(['pull', `${HOST}:${port}:x`, tmp]), EXIT.CONNECT, /refused|connect/);

  const gone = await spawnDaemon({ root: served });
  const r = await runFcp(['push', file, gone.remote('was-up')]);
  assert.is(r.code, 0, describeRun(r));
  await gone.stop();
  expectOneLineError(await runFcp(['push', file, gone.remote('x')]), EXIT.CONNECT, /refused|connect/);
});

/** A TCP server that answers every connection with `reply(i)` and then closes it. */
async function startFakePeer(
  reply: (index: number) => Buffer,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let count = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.end(reply(count++));
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr !== null ? addr.port : 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function seededBytes(seed: number, n: number): Buffer {
  const next = prng(seed);
  const buf = Buffer.alloc(n);
  for (let i = 0; i < n; i++) buf[i] = next() & 0xff;
  return buf;
}

test('a peer speaking garbage: exit 5', async () => {
  const replies: Array<[string, () => Buffer]> = [
    ['random bytes', () => seededBytes(1234, 4096)],
    ['more random bytes', () => seededBytes(99, 100)],
    ['an HTTP server', () => Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')],
    ['an SSH server', () => Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')],
  ];
  for (const [what, reply] of replies) {
    const peer = await startFakePeer(reply);
    try {
      const r = await runFcp(['push', file, `${HOST}:${peer.port}:x`], { timeoutMs: 20_000 });
      expectOneLineError(r, EXIT.PROTOCOL, /./, 'fcp: ', `push to ${what}`);
      const p = await runFcp(['pull', `${HOST}:${peer.port}:x`, join(tmp, 'garbage-out')], {
        timeoutMs: 20_000,
      });
      expectOneLineError(p, EXIT.PROTOCOL, /./, 'fcp: ', `pull from ${what}`);
    } finally {
      await peer.close();
    }
  }
});

test('a destination the daemon cannot write: a path error (2) naming it, said once', async () => {
  const user = unprivileged();
  // Owned by root (or by us when not root, then made read-only): the daemon can read it, not write it.
  const root = join(tmp, 'read-only-root');
  mkdirSync(root);
  writeFileSync(join(root, 'existing.txt'), 'old\n');
  chmodSync(root, 0o555);
  const d = await spawnDaemon({ root, ...user });
  try {
    // The destination directory must be created and cannot be: the whole transfer is refused. The client
    // runs as the daemon's account, whose token is the only one it may use (spec/SECURITY.md §5.4).
    const r = await runFcp(['push', '-q', `${src}/`, d.remote('newdir')], user);
    expectOneLineError(r, EXIT.PATH, /^fcp: newdir: permission denied$/);
    // The destination exists and takes no file: said once for the directory (issue 15: it was one
    // "EACCES" line per file and exit 3).
    const f = await runFcp(['push', '-q', file, `${src}/sub/c.ts`, d.remote('')], user);
    expectOneLineError(f, EXIT.PATH, /cannot write in the destination directory .*: permission denied$/);
    assert.equal(await readdir(root), ['existing.txt']);
  } finally {
    await d.stop();
    chmodSync(root, 0o755);
  }
});

test('-q prints nothing on stdout; without it one summary line and no progress escapes on a pipe', async () => {
  const quiet = await runFcp(['push', '-q', `${src}/`, remote('quiet')]);
  assert.is(quiet.code, 0, describeRun(quiet));
  assert.is(quiet.stdout, '');
  assert.is(quiet.stderr, '');
  assert.equal(await compareTrees(src, join(served, 'quiet')), []);
  const quietPull = await runFcp(['pull', '--quiet', remote('quiet/'), join(tmp, 'quiet-back')]);
  assert.is(quietPull.code, 0, describeRun(quietPull));
  assert.is(quietPull.stdout, '');

  const loud = await runFcp(['push', `${src}/`, remote('loud')]);
  assert.is(loud.code, 0, describeRun(loud));
  assert.is(loud.stderr, '');
  assert.not.ok(loud.stdout.includes('\r'), JSON.stringify(loud.stdout));
  assert.not.ok(loud.stdout.includes('\x1b'), JSON.stringify(loud.stdout));
  const lines = loud.stdout.split('\n');
  assert.equal(lines.length, 2, JSON.stringify(loud.stdout));
  assert.is(lines[1], '');
  assert.equal(parseSummary(loud.stdout), { sent: 3, skipped: 0, failed: 0, bytes: '69.6 KiB' });
  assert.match(lines[0]!, /^fcp: 3 files sent, 0 skipped, 0 failed, 69\.6 KiB in \d+\.\d s \(.+\/s\)$/);
  assert.is(await readFile(join(served, 'loud', 'a.txt'), 'latin1'), await readFile(file, 'latin1'));
});

test('fcpd usage errors: one fcpd: line and exit 1', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--port', '70000', '--root', tmp], /--port/],
    [['--port', 'x', '--root', tmp], /--port/],
    [['--bogus'], /bogus/],
    [['--max-sessions', '0', '--root', tmp, '--port', '0'], /max-sessions/],
    [['-d', '--port', '0', '--root', tmp], /-d/],
  ];
  for (const [args, pattern] of cases) {
    expectOneLineError(await runFcpd(args), EXIT.USAGE, pattern, 'fcpd: ', args.join(' '));
  }
});

test.run();

import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/index.js';
import { type CommandDialer, commandDialer } from '../../src/transport/command-dial.js';

// The child-process transport (src/transport/command-dial.ts): a channel is a command's stdin and stdout,
// the child always ends with its channel, and close() ends what is left.

/** A child that echoes stdin to stdout; it exits when its stdin ends. */
const ECHO = ['-e', 'process.stdin.pipe(process.stdout)'];
/** A child that says why on stderr and exits 255 without a word on stdout, as ssh does. */
const FAILS = [
  '-e',
  'process.stderr.write("warning: junk\\nssh: Permission denied (publickey).\\n"); process.exit(255)',
];
/** A child that ignores SIGTERM and its stdin: only SIGKILL ends it. */
const STUBBORN = [
  '-e',
  'process.on("SIGTERM", () => {}); process.stdout.write("ready"); setInterval(() => {}, 1000)',
];

let dialer: CommandDialer | undefined;
test.after.each(() => dialer?.close());

function dialerOf(args: readonly string[], onStderr?: (line: string) => void): CommandDialer {
  dialer = commandDialer({ peerName: 'the test child', argv: () => [process.execPath, ...args], onStderr });
  return dialer;
}

/** This process's children, from /proc: the new one after open() is the channel's. */
function childPids(): number[] {
  const out: number[] = [];
  const tasks = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim();
  for (const pid of tasks === '' ? [] : tasks.split(' ')) out.push(Number(pid));
  return out;
}

test('bytes go through the child both ways; ending the channel ends the child', async () => {
  const before = childPids();
  const { channel, identity, resumption } = await dialerOf(ECHO).open(undefined);
  assert.is(channel.encrypted, true);
  assert.is(channel.binding.length, 0);
  assert.is(identity.hostKey(), undefined);
  assert.is(resumption(), undefined);
  const [pid] = childPids().filter((p) => !before.includes(p));
  assert.ok(pid !== undefined);
  const got: Buffer[] = [];
  channel.stream.on('data', (c: Buffer) => got.push(c));
  const payload = Buffer.alloc(1 << 20, 7);
  channel.stream.end(payload);
  await once(channel.stream, 'end');
  assert.ok(Buffer.concat(got).equals(payload));
  // The readable side ended only after the child exited: it is gone (and reaped) already.
  assert.not.ok(existsSync(`/proc/${pid}`));
});

test('a command that exits before answering: unanswered() names its status and last stderr line', async () => {
  const lines: string[] = [];
  const d = dialerOf(FAILS, (line) => lines.push(line));
  const { channel } = await d.open(undefined);
  channel.stream.resume();
  await once(channel.stream, 'end');
  assert.equal(lines, ['warning: junk', 'ssh: Permission denied (publickey).']);
  const e = d.unanswered(new FcpError('FCP_ERR_NET_CLOSED', 'closed')) as FcpError;
  assert.is(e.code, 'FCP_ERR_NET_CONNECT');
  assert.match(e.message, /exit status 255.*Permission denied \(publickey\)/);
});

test('a command that cannot run is FCP_ERR_NET_CONNECT naming it', async () => {
  dialer = commandDialer({ peerName: 'nowhere', argv: () => ['/nonexistent/fcp-no-such-command'] });
  try {
    await dialer.open(undefined);
    assert.unreachable('opened');
  } catch (err) {
    assert.is((err as FcpError).code, 'FCP_ERR_NET_CONNECT');
    assert.match((err as Error).message, /fcp-no-such-command/);
  }
});

test('close() kills a child that ignores SIGTERM and its stdin', async () => {
  const before = childPids();
  const { channel } = await dialerOf(STUBBORN).open(undefined);
  const [pid] = childPids().filter((p) => !before.includes(p));
  assert.ok(pid !== undefined);
  await once(channel.stream, 'data');
  const ended = once(channel.stream, 'end');
  dialer!.close();
  // The readable side ends once the child has exited and been reaped (after SIGKILL, 2 s on).
  await ended;
  assert.not.ok(existsSync(`/proc/${pid}`));
});

test.run();

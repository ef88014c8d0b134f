// `fcp -v` prints the stack of an internal error; that stack holds the error's message, which may be the
// text of a hostile peer's ABORT. It must reach the terminal escaped, like every other line fcp prints.
import net, { type AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { ERROR_CODES, MsgType } from '../../src/protocol/index.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import { describeRun, runFcp } from '../helpers/cli.js';
import { LOOPBACK, messageFrame } from '../helpers/raw-peer.js';

const HOSTILE = 'boom\x1b]0;PWNED-TITLE\x07\x1b[2J\x1b[31mred';
/** ESC, BEL and the C1 CSI: what a terminal acts on. */
const RAW_CONTROL = /[\x07\x1b\x9b]/;

let dir = '';

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'fcp-verbose-stack-'));
  await writeFile(path.join(dir, 'file'), 'x');
});

test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A plaintext fake daemon that answers the first bytes of every connection with ABORT(INTERNAL, text). */
async function abortingDaemon(text = HOSTILE): Promise<net.Server> {
  const hasher = await loadHasher();
  const abort = messageFrame(hasher, {
    type: MsgType.Abort,
    code: ERROR_CODES.FCP_ERR_INTERNAL.wire,
    text,
  });
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.end(abort));
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  return server;
}

/** `fcp push -v` of one file to `server`, with no retry. */
function pushVerbose(server: net.Server): ReturnType<typeof runFcp> {
  const port = (server.address() as AddressInfo).port;
  const args = ['push', '-v', '--no-encryption', '--retries', '0', path.join(dir, 'file')];
  return runFcp([...args, `${LOOPBACK}:${port}:/x`]);
}

test('-v prints an internal error stack with a peer ABORT text escaped', async () => {
  const server = await abortingDaemon();
  try {
    const r = await pushVerbose(server);
    assert.ok(r.stderr.includes('PWNED-TITLE'), describeRun(r));
    // The stack was printed (more than the one "fcp: ..." line), and nothing in it is a raw control.
    assert.ok(r.stderr.trimEnd().split('\n').length > 1, describeRun(r));
    assert.not.match(r.stderr, RAW_CONTROL, describeRun(r));
    assert.ok(r.stderr.includes('\\x1b]0;PWNED-TITLE\\x07'), describeRun(r));
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('-v: a newline in a peer ABORT text cannot start a line of its own in the printed stack', async () => {
  const server = await abortingDaemon('boom\nfcp: all 1 files verified: nothing went wrong');
  try {
    const r = await pushVerbose(server);
    assert.ok(r.stderr.trimEnd().split('\n').length > 1, describeRun(r));
    // The peer's second "line" must stay inside its own (escaped), never be a line fcp seems to print.
    assert.not.match(r.stderr, /^fcp: all 1 files verified/m, describeRun(r));
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test.run();

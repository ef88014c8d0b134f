// fcpd --serve-once as fcp over ssh starts it, without ssh: the built daemon in a child process, its
// bootstrap line parsed, then push and pull straight to its port (direct) and through `fcpd --stdio`
// children (carried), 8 connections, trees compared byte for byte; and its one-time secret: single use,
// a wrong one refused, SSH keys refused, a session all-TLS or all-relay.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import type { CommonOptions } from '../../src/client/options.js';
import { pull, push } from '../../src/client/transfer-client.js';
import { FcpError } from '../../src/protocol/errors.js';
import { ONE_TIME_ONLY, ONE_TIME_SPENT } from '../../src/security/daemon-auth.js';
import type { TransferEngine } from '../../src/transfer/engine.js';
import type { TransferEvent } from '../../src/transfer/events.js';
import type { DialedChannel, Dialer } from '../../src/transport/dialer.js';
import { tcpTlsDialer } from '../../src/transport/tcp-tls-dial.js';
import { HOST } from '../helpers/daemon.js';
import { rejection, tempDirs } from '../helpers/expect.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import {
  carriedOptions,
  directOptions,
  processesMentioning,
  relayDialer,
  type ServeOnceChild,
  serveOnceRegistry,
} from '../helpers/serve-once.js';
import { generateKey } from '../helpers/ssh-keys.js';
import { buildTree, compareTrees, mixedTree } from '../helpers/tree.js';

const MiB = 1 << 20;
const dirs = tempDirs('fcp-e2e-serve-once-');
const daemons = serveOnceRegistry();
test.after.each(() => daemons.cleanupAll());
test.after(() => dirs.removeAll());
const serveOnce = daemons.start;

/** A tree of small files plus one of several pieces, so that every connection carries data. */
async function sourceTree(name: string): Promise<string> {
  const src = join(dirs.make(), name);
  await buildTree(src, mixedTree({ seed: 17, smallFiles: 60, bigFileSize: 9 * MiB + 123 }));
  return src;
}

function noWarnings(): { warnings: FcpError[]; onWarning: (e: FcpError) => void } {
  const warnings: FcpError[] = [];
  return { warnings, onWarning: (e) => warnings.push(e) };
}

/** The daemon exited 0 after its session, its socket is gone, and nothing that used it still runs. */
async function endedClean(d: ServeOnceChild): Promise<void> {
  const { code, signal } = await d.exited();
  assert.is(code, 0, `exit ${code} ${signal}: ${d.stderr()}`);
  assert.is(d.stdout().split('\n').length, 2, 'one line on stdout, then nothing');
  assert.not.ok(existsSync(d.info.relay), 'relay socket removed');
  assert.equal(processesMentioning(d.info.relay), [], 'no relay left running');
  assert.not.ok(existsSync(join(d.home, 'client-known_hosts')), 'known_hosts untouched');
}

test('direct: push then pull, 8 connections each, to two serve-once daemons', async () => {
  const root = dirs.make();
  const src = await sourceTree('direct-src');
  const { warnings, onWarning } = noWarnings();
  const first = await serveOnce(root);
  const pushed = await directOptions(first, 8, onWarning);
  await push({ ...pushed, sources: [src], dest: 'got' });
  assert.equal(await compareTrees(src, join(root, 'got', 'direct-src')), []);
  await endedClean(first);
  const second = await serveOnce(root);
  const back = join(dirs.make(), 'back');
  const pulled = await directOptions(second, 8, onWarning);
  await pull({ ...pulled, source: 'got/direct-src/', dest: back });
  assert.equal(await compareTrees(src, back), []);
  await endedClean(second);
  assert.equal(warnings, []);
});

test('carried: push then pull through fcpd --stdio children, 8 connections each', async () => {
  const root = dirs.make();
  const src = await sourceTree('carried-src');
  const { warnings, onWarning } = noWarnings();
  const first = await serveOnce(root, { xdg: true });
  assert.ok(first.info.relay.startsWith(join(first.home, 'run', 'fcp')), first.info.relay);
  const pushed = await carriedOptions(first, 8, onWarning);
  let opened = 0;
  const counting = countingDialer(pushed.dialer, () => opened++);
  try {
    await push({ ...pushed.opts, dialer: counting, sources: [src], dest: 'got' });
  } finally {
    pushed.dialer.close();
  }
  assert.ok(opened >= 2, `${opened} relayed connections`);
  assert.equal(await compareTrees(src, join(root, 'got', 'carried-src')), []);
  await endedClean(first);
  const second = await serveOnce(root);
  const back = join(dirs.make(), 'back');
  const pulled = await carriedOptions(second, 8, onWarning);
  try {
    await pull({ ...pulled.opts, source: 'got/carried-src/', dest: back });
  } finally {
    pulled.dialer.close();
  }
  assert.equal(await compareTrees(src, back), []);
  await endedClean(second);
  assert.equal(warnings, []);
});

test('the secret is single use: a second login during the session is refused, the session unharmed', async () => {
  const root = dirs.make();
  const src = await sourceTree('single-src');
  const d = await serveOnce(root);
  // The first session goes through a proxy we can stall, so it is surely still running at the second login.
  const proxy = await startFaultProxy({ target: { host: HOST, port: d.info.port } });
  try {
    const { warnings, onWarning } = noWarnings();
    const opts = await directOptions(d, 4, onWarning);
    let granted: () => void = () => {};
    const engineRuns = new Promise<void>((resolve) => (granted = resolve));
    const first = push({
      ...opts,
      endpoint: { host: HOST, port: proxy.port },
      sources: [src],
      dest: 'got',
      onEngine: (_engine: TransferEngine) => {
        proxy.stall();
        granted();
      },
    });
    // Awaited below; if an assertion fails first, its rejection must not take the test process down.
    first.catch(() => {});
    await engineRuns;
    const again = await directOptions(d, 4, onWarning);
    const e = await rejection(push({ ...again, sources: [src], dest: 'other' }), 'FCP_ERR_AUTH_DENIED');
    assert.is(e.message, ONE_TIME_SPENT);
    proxy.resume();
    await first;
    assert.equal(await compareTrees(src, join(root, 'got', 'single-src')), []);
    assert.not.ok(existsSync(join(root, 'other')));
    assert.equal(warnings, []);
  } finally {
    await proxy.close();
  }
  await endedClean(d);
});

test('a wrong secret is refused and spends nothing: the right one then logs in', async () => {
  const root = dirs.make();
  const src = await sourceTree('wrong-src');
  const d = await serveOnce(root);
  const { onWarning } = noWarnings();
  const wrong = await directOptions(d, 2, onWarning, Buffer.alloc(16, 1));
  await rejection(push({ ...wrong, sources: [src], dest: 'wrong' }), 'FCP_ERR_AUTH_DENIED');
  assert.not.ok(existsSync(join(root, 'wrong')));
  const right = await directOptions(d, 2, onWarning);
  await push({ ...right, sources: [src], dest: 'right' });
  assert.equal(await compareTrees(src, join(root, 'right', 'wrong-src')), []);
  await endedClean(d);
});

test('an SSH key is refused at once, saying the daemon takes only its one-time secret', async () => {
  const root = dirs.make();
  const keys = dirs.make();
  const key = await generateKey(keys, 'ed25519', 'id_ed25519');
  const d = await serveOnce(root);
  const { onWarning } = noWarnings();
  const opts = await directOptions(d, 2, onWarning);
  const byKey: CommonOptions = {
    ...opts,
    security: {
      identityFile: key.path,
      knownHostsFile: join(keys, 'known_hosts'),
      agentSocket: undefined,
      homeDir: keys,
    },
  };
  const src = join(keys, 'src');
  mkdirSync(src);
  const e = await rejection(push({ ...byKey, sources: [src], dest: 'by-key' }), 'FCP_ERR_AUTH_DENIED');
  assert.is(e.message, ONE_TIME_ONLY);
  assert.not.ok(existsSync(join(root, 'by-key')));
  // The refusal spent nothing: the daemon still waits for its one login.
  assert.is(d.child.exitCode, null);
});

test('a session is all TLS or all relay: an ATTACH through the relay to a TLS session is refused', async () => {
  const root = dirs.make();
  const src = join(dirs.make(), 'mixed-src');
  const size = 24 * MiB + 5;
  await buildTree(src, [{ kind: 'file', path: 'big.bin', size }]);
  const log = join(dirs.make(), 'fcpd.log');
  const d = await serveOnce(root, { args: ['--log-file', log] });
  // The control connection over TLS, through a proxy that holds its data after the first pieces, so the
  // session is surely running when the others arrive; every later one through fcpd --stdio.
  const proxy = await startFaultProxy({ target: { host: HOST, port: d.info.port } });
  proxy.stall({ direction: 'up', afterBytes: 2 * MiB });
  const { onWarning } = noWarnings();
  const opts = await directOptions(d, 4, onWarning);
  const relay = relayDialer(d);
  const tls = tcpTlsDialer({ host: HOST, port: proxy.port }, true);
  let relayedClosed = 0;
  let allClosed: () => void = () => {};
  const relaysDone = new Promise<void>((resolve) => (allClosed = resolve));
  let first = true;
  const mixed: Dialer = {
    peerName: tls.peerName,
    open: async (resume, signal) => {
      if (first) {
        first = false;
        return tls.open(resume, signal);
      }
      const dialed = await relay.open(resume, signal);
      dialed.channel.stream.once('close', () => {
        if (++relayedClosed === 3) allClosed();
      });
      return dialed;
    },
    unanswered: (err) => tls.unanswered(err),
  };
  try {
    // Half the file written while the control connection is held: it went over relayed connections,
    // so their ATTACH was accepted.
    let written = 0;
    let carriedData: () => void = () => {};
    const attached = new Promise<string>((resolve) => (carriedData = () => resolve('attached')));
    const listener = (e: TransferEvent) => {
      if (e.type === 'data' && (written += e.bytes) > size / 2) carriedData();
    };
    const pushed = push({ ...opts, dialer: mixed, listeners: [listener], sources: [src], dest: 'got' });
    pushed.catch(() => {});
    // Refused, the three extra connections close while the session waits on the stalled control one.
    const first = await Promise.race([relaysDone.then(() => 'refused'), attached]);
    assert.is(first, 'refused', 'a relayed ATTACH joined a TLS session');
    proxy.resume();
    await pushed;
  } finally {
    relay.close();
    await proxy.close();
  }
  assert.equal(await compareTrees(src, join(root, 'got', 'mixed-src')), []);
  await endedClean(d);
  const lines = readFileSync(log, 'utf8');
  assert.match(lines, /a relayed connection: FCP_ERR_SESSION_UNKNOWN/, lines);
  // Written after the bootstrap line now (the client does not wait for it), still written.
  assert.match(lines, /serve-once: listening on [\d.:[\]]+:\d+ and /, lines);
});

/** `inner`, counting the channels it opens. */
function countingDialer(inner: Dialer, onOpen: () => void): Dialer {
  return {
    peerName: inner.peerName,
    open: (resume, signal): Promise<DialedChannel> => {
      onOpen();
      return inner.open(resume, signal);
    },
    unanswered: (err) => inner.unanswered(err),
  };
}

test.run();

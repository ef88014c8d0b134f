// Regression for issue 15, Security 1: an authenticated peer must not grow the receiver's per-session
// tables without bound. A pusher that announced 1-byte files and never sent their data grew fcpd by about
// 1 KiB an entry (63 -> 418 MiB after 400,000), held until the session ended; a hostile daemon could do the
// same to `fcp pull`. The receiver now holds at most LIST_WINDOW entries open, as the sender always did
// (spec/PROTOCOL.md §5.1), and ends a session that crosses it with FCP_ERR_PROTO_WINDOW.
//
// Each hostile case floods FILE_INFO frames (1-byte files, never followed by DATA) while its RawPeer reads
// the FILE_READY answers, samples the receiving process's VmRSS, and asserts: the receiver answered at most
// LIST_WINDOW of them and aborted with FCP_ERR_PROTO_WINDOW, and its RSS grew less than RSS_CEILING_MIB. The
// flood is sized so that the old code visibly grew (~90 MiB at FLOOD_ENTRIES) in a few seconds. A real
// push of more such files than the window must still work: fcp's own sender keeps the window.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import {
  ERROR_CODES,
  FileKind,
  LIST_WINDOW,
  type Message,
  MsgType,
  ReadyAction,
} from '../../src/protocol/index.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { describeRun, FCP_BIN, hermeticEnv, runFcp, track } from '../helpers/cli.js';
import { type ChildDaemon, spawnDaemon } from '../helpers/daemon.js';
import {
  LOOPBACK,
  messageFrame,
  openPush,
  RawListener,
  type RawPeer,
  serveSession,
} from '../helpers/raw-peer.js';

/** Entries a flood sends at most: the old receiver took every one (about 90 MiB). */
const FLOOD_ENTRIES = 100_000;
/** Entries per write. */
const BATCH = 2_000;
/**
 * How much the receiver's RSS may grow during a flood: LIST_WINDOW open entries, the frames read before the
 * abort and garbage not yet collected. Measured 21-26 MiB; the old code grew ~100 MiB by FLOOD_ENTRIES.
 */
const RSS_CEILING_MIB = 50;
/** Every wait is bounded by this. */
const WAIT_MS = 20_000;
/** The real push of more files than the window (last test). */
const PUSH_LIMIT_MS = 150_000;
const OLD_MTIME_NS = 1_500_000_000n * 1_000_000_000n;
const WINDOW_CODE = ERROR_CODES.FCP_ERR_PROTO_WINDOW.wire;

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-tables-'));
const served = join(tmp, 'served');
mkdirSync(served);
let daemon: ChildDaemon | undefined;

/** VmRSS of a live process in KiB; undefined once it is gone. */
function rssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** FILE_READY entries received, counted as messages arrive (each message once). */
class Answers {
  need = 0;
  total = 0;
  #seen = 0;

  update(received: readonly Message[]): void {
    for (; this.#seen < received.length; this.#seen++) {
      const m = received[this.#seen]!;
      if (m.type !== MsgType.FileReady) continue;
      this.total += m.entries.length;
      for (const e of m.entries) if (e.action === ReadyAction.Need) this.need++;
    }
  }
}

interface Flood {
  sent: number;
  answers: Answers;
  growthMiB: number;
}

function fileInfoFrames(peer: RawPeer, first: number, count: number): Buffer {
  const frames: Buffer[] = [];
  for (let id = first; id < first + count; id++) {
    frames.push(
      messageFrame(peer.hasher, {
        type: MsgType.FileInfo,
        id,
        kind: FileKind.File,
        mode: 0o644,
        size: 1n,
        mtimeNs: OLD_MTIME_NS,
        checksum: undefined,
        path: `f${id}`,
        linkTarget: '',
      }),
    );
  }
  return Buffer.concat(frames);
}

/**
 * Sends up to FLOOD_ENTRIES FILE_INFOs to `peer`, then waits until the receiver (process `pid`) answered
 * every one it sent or closed the connection, sampling the receiver's RSS after every batch and at the end.
 */
async function flood(peer: RawPeer, pid: number): Promise<Flood> {
  const answers = new Answers();
  const base = rssKiB(pid) ?? 0;
  let peak = base;
  const sample = () => {
    peak = Math.max(peak, rssKiB(pid) ?? 0);
  };
  let sent = 0;
  while (sent < FLOOD_ENTRIES && !peer.closed) {
    if (!(await peer.write(fileInfoFrames(peer, sent + 1, BATCH), WAIT_MS))) break;
    sent += BATCH;
    sample();
  }
  await peer.until(
    () => {
      answers.update(peer.received);
      return peer.closed || answers.total >= sent;
    },
    WAIT_MS,
    `answers to ${sent} entries or the end of the session`,
  );
  sample();
  return { sent, answers, growthMiB: (peak - base) / 1024 };
}

/** The verdict of a flood: stopped at the window with FCP_ERR_PROTO_WINDOW, memory within the ceiling. */
async function assertBounded(peer: RawPeer, f: Flood, who: string): Promise<void> {
  const what = `${who}: ${f.sent} entries sent, ${f.answers.need} NEEDed, RSS +${f.growthMiB.toFixed(1)} MiB`;
  assert.ok(f.answers.need <= LIST_WINDOW, `more than ${LIST_WINDOW} entries held open: ${what}`);
  const code = await peer.expectAbortAndClose(WAIT_MS).catch((err: Error) => err.message);
  assert.is(code, WINDOW_CODE, `${who} ends the session with FCP_ERR_PROTO_WINDOW: ${what}`);
  // And it closes with a FIN, not a reset: it reads and discards the flood until we close (spec/PROTOCOL.md
  // §2). A client that exited with the flood unread reset us, and our next write then failed (EPIPE) before
  // we had read the ABORT: the session ended without the reason.
  assert.is(peer.socketError, undefined, `${who} resets the connection instead of closing it: ${what}`);
  assert.ok(f.growthMiB < RSS_CEILING_MIB, `${who} grew past ${RSS_CEILING_MIB} MiB: ${what}`);
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('close', () => resolve());
  });
}

test.before(async () => {
  daemon = await spawnDaemon({ root: served });
});

test.after(async () => {
  await daemon?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

test('a pusher that floods FILE_INFO is stopped at the window and fcpd does not grow', async () => {
  const d = daemon!;
  const { peer } = await openPush(d.port, 'flood');
  try {
    const f = await flood(peer, d.child.pid!);
    await assertBounded(peer, f, 'fcpd');
  } finally {
    peer.destroy();
  }
  assert.match(d.stderr(), /session failed: FCP_ERR_PROTO_WINDOW/, d.stderr());
  // The daemon survives: a real push right after works.
  writeFileSync(join(tmp, 'after.txt'), 'after\n');
  const r = await runFcp(['push', join(tmp, 'after.txt'), d.remote('after.txt')]);
  assert.is(r.code, 0, describeRun(r));
});

test('a daemon that floods a pull with FILE_INFO is stopped at the window and fcp does not grow', async () => {
  const listener = await RawListener.listen();
  const dest = join(tmp, 'pulled-flood');
  const args = [FCP_BIN, 'pull', '-n', '1', '--retries', '0', `${LOOPBACK}:${listener.port}:/x`, dest];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: hermeticEnv() });
  track(child);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  child.stdout.resume();
  const hardKill = setTimeout(() => child.kill('SIGKILL'), 2 * WAIT_MS);
  try {
    const peer = await listener.accept();
    assert.is((await serveSession(peer)).type, MsgType.Pull);
    const f = await flood(peer, child.pid!);
    await assertBounded(peer, f, 'fcp');
    await exited(child);
    assert.is(child.exitCode, EXIT.PROTOCOL, stderr);
    assert.match(stderr, /unanswered/, stderr);
  } finally {
    clearTimeout(hardKill);
    await listener.close();
  }
});

test(
  'a real push of more 1-byte files than the window never trips it',
  async () => {
    // Every one of them is NEEDed and open until its FILE_DONE: the receiver sees the sender's whole window.
    const d = daemon!;
    const src = join(tmp, 'many');
    const files = LIST_WINDOW + 1808;
    for (let dir = 0; dir * 1000 < files; dir++) {
      mkdirSync(join(src, `d${dir}`), { recursive: true });
      for (let i = dir * 1000; i < Math.min(files, (dir + 1) * 1000); i++) {
        writeFileSync(join(src, `d${dir}`, `f${i}`), 'x');
      }
    }
    // 10,000 files took over 60 s on a 2-core box busy with other runs: the push gets PUSH_LIMIT_MS and the
    // test more, so a push that is slow or stuck is reported with its output, not as a bare test timeout.
    const r = await runFcp(['push', '-q', `${src}/`, d.remote('many')], { timeoutMs: PUSH_LIMIT_MS });
    assert.is(r.code, 0, describeRun(r));
    let count = 0;
    for (const dir of readdirSync(join(served, 'many')))
      count += readdirSync(join(served, 'many', dir)).length;
    assert.is(count, files);
  },
  { timeoutMs: PUSH_LIMIT_MS + WAIT_MS },
);

test.run();

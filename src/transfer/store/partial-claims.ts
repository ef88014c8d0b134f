/**
 * Who may use a resumable partial's names (`.NAME.fcp-part` and `.NAME.fcp-meta`, spec/PROTOCOL.md §7.1
 * "Overlapping sessions"): the one live session that claimed them. A second session receiving the same
 * destination meanwhile (overlapping cron runs, two pulls into one directory) must not resume, truncate or
 * unlink what the first is still writing; it writes a temporary of its own instead (temp-names.ts).
 *
 * A claim must die with its holder, or a kill -9 would leave the partial unresumable for ever. Sessions of one
 * process (a standing fcpd) see each other's claims in a set; separate processes (serve-once daemons, `fcp
 * pull`) on Linux through an abstract unix socket bound under a name derived from the directory's device and
 * inode and the partial's name: bind() is atomic, and the kernel frees the name when the process dies, however
 * it dies, leaving nothing on disk to go stale. Where there is no abstract namespace, or the bind fails for
 * another reason, only the process's own sessions are kept apart.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { basename, dirname } from 'node:path';

/** A held claim: release() lets the next session take the names (and resume the partial). */
export interface PartialClaim {
  release(): void;
}

const heldHere = new Set<string>();
const CROSS_PROCESS = process.platform === 'linux';

/**
 * Claims the names of the partial whose temporary is at `tempAbs`; undefined when another live session holds
 * them. A directory that cannot be looked at is not refused here: the open that follows reports it.
 */
export async function claimPartial(tempAbs: string): Promise<PartialClaim | undefined> {
  // Synchronous: a directory's stat is a few microseconds, a round trip to the thread pool ten times that.
  let dir;
  try {
    dir = statSync(dirname(tempAbs), { bigint: true });
  } catch {
    return { release: () => {} };
  }
  // The directory's identity, not its path: two processes may reach it by different paths.
  const key = `${dir.dev}:${dir.ino}/${basename(tempAbs)}`;
  if (heldHere.has(key)) return undefined;
  heldHere.add(key);
  const bound = CROSS_PROCESS ? await bindClaim(key) : undefined;
  if (bound === 'busy') {
    heldHere.delete(key);
    return undefined;
  }
  return {
    release: () => {
      bound?.close();
      heldHere.delete(key);
    },
  };
}

/** The abstract socket that holds `key` for this process; 'busy' when another process holds it. */
function bindClaim(key: string): Promise<Server | 'busy' | undefined> {
  const name = `\0fcp-partial-${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
  // Nobody has anything to say to a claim: a connection (anyone in this network namespace may try) is dropped.
  const server = createServer((conn) => conn.destroy());
  return new Promise((resolve) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      resolve(err.code === 'EADDRINUSE' ? 'busy' : undefined);
    });
    server.listen({ path: name }, () => {
      server.unref();
      resolve(server);
    });
  });
}

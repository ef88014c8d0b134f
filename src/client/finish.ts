/** The end of a push or pull: wait for the engine, then close every connection so nothing is cut off. */
import type { TransferEngine } from '../transfer/engine.js';
import type { FramedConn } from '../transport/framed-conn.js';
import type { ExtraConnections } from './extra-connections.js';

/** How long the last messages get to leave before the caller may exit the process. */
const FLUSH_TIMEOUT_MS = 2_000;

export async function finish(
  engine: TransferEngine,
  control: FramedConn,
  extra: ExtraConnections,
): Promise<void> {
  try {
    await engine.done;
  } finally {
    const extrasClosed = extra.close(FLUSH_TIMEOUT_MS);
    engine.closeAll();
    // The receiver's DONE is the last thing written: wait until it has left (TLS encrypts and writes it
    // asynchronously), so a process.exit right after cannot cut it off.
    await Promise.all([control.flushed(FLUSH_TIMEOUT_MS), extrasClosed, engine.cleanedUp()]);
  }
}

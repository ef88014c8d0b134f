/**
 * What the push and pull handlers share: what a granted session gives the engine it builds, and what a
 * handler hands back to the session.
 */
import type { FcpError } from '../protocol/index.js';
import type { EngineOptions, TransferEngine } from '../transfer/engine.js';
import type { ServedTree } from '../transfer/store/served-tree.js';

/** The engine options every session's engine gets, and the tree its paths are resolved in. */
export interface HandlerContext extends Pick<
  EngineOptions,
  'hasher' | 'control' | 'stats' | 'listeners' | 'idleTimeoutMs' | 'rateLimit'
> {
  readonly served: ServedTree;
  /** fcpd --fsync: every push is synced, whatever its client asked. */
  readonly fsync: boolean;
  /** Problems the pull's source expansion meets before the engine exists (logged as the engine's are). */
  readonly onWarning: (err: FcpError) => void;
}

/** A session's engine, ready for SESSION to be sent. */
export interface SessionEngine {
  readonly engine: TransferEngine;
  /** The TransferFlag bits SESSION carries. */
  readonly flags: number;
  /** Starts the engine once SESSION is on the wire (a sender's announcing); a receiver waits for the list. */
  readonly start?: () => void;
}

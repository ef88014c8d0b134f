/** The version/capability exchange that opens every connection (spec/PROTOCOL.md §3.1). */
import {
  Capability,
  FcpError,
  type HelloMsg,
  MsgType,
  PROTOCOL_VERSION_MAX,
  PROTOCOL_VERSION_MIN,
} from '../protocol/index.js';
import type { FramedConn } from './framed-conn.js';

/** Handshake steps must finish within this, or the connection is dropped (a silent peer holds nothing). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export const AGENT = `fcp/0.1.0 node/${process.versions.node}`;

export function ourHello(): HelloMsg {
  return {
    type: MsgType.Hello,
    versionMin: PROTOCOL_VERSION_MIN,
    versionMax: PROTOCOL_VERSION_MAX,
    capabilities:
      Capability.TlsDataUnsummed |
      Capability.ListBeforeSession |
      Capability.DryRun |
      Capability.Detach |
      Capability.AttachProven |
      Capability.Fsync,
    agent: AGENT,
  };
}

/**
 * Applies what both HELLOs of `conn`'s connection agreed on (we always offer every capability we know, so
 * the peer's bits decide).
 */
export function applyCapabilities(conn: FramedConn, theirs: HelloMsg): void {
  if ((theirs.capabilities & Capability.TlsDataUnsummed) !== 0) conn.omitDataChecksums();
  if ((theirs.capabilities & Capability.Detach) !== 0) detaching.add(conn);
  if ((theirs.capabilities & Capability.AttachProven) !== 0) provingAttach.add(conn);
}

/** Connections whose peer's HELLO offered AttachProven. */
const provingAttach = new WeakSet<FramedConn>();

/**
 * Whether `conn`'s peer offered AttachProven (§3.2): a daemon then answers ATTACH with its proof, and a
 * client requires one. An older peer's ATTACH carries none and would be refused with one.
 */
export function attachProven(conn: FramedConn): boolean {
  return provingAttach.has(conn);
}

/** Connections whose peer's HELLO offered Detach (kept here: framed-conn.ts knows no capability but one). */
const detaching = new WeakSet<FramedConn>();

/** Whether `conn`'s peer honours DETACH (§3.2): an older sender would take it for an unknown message. */
export function peerDetaches(conn: FramedConn): boolean {
  return detaching.has(conn);
}

/** Whether `hello` offers ListBeforeSession (ours always does): the push list may start before SESSION. */
export function listsBeforeSession(hello: HelloMsg): boolean {
  return (hello.capabilities & Capability.ListBeforeSession) !== 0;
}

/** Whether `hello` offers DryRun: the daemon serves dry-run sessions (an older one would write). */
export function servesDryRun(hello: HelloMsg): boolean {
  return (hello.capabilities & Capability.DryRun) !== 0;
}

/** Whether `hello` offers Fsync: the daemon syncs a push that asks for it (an older one would not). */
export function servesFsync(hello: HelloMsg): boolean {
  return (hello.capabilities & Capability.Fsync) !== 0;
}

/** The highest version both ends speak, or FCP_ERR_PROTO_VERSION naming both ranges. */
export function negotiateVersion(theirs: HelloMsg): number {
  const version = Math.min(theirs.versionMax, PROTOCOL_VERSION_MAX);
  if (version < theirs.versionMin || version < PROTOCOL_VERSION_MIN) {
    throw new FcpError(
      'FCP_ERR_PROTO_VERSION',
      `peer speaks protocol ${theirs.versionMin}-${theirs.versionMax}, we speak ${PROTOCOL_VERSION_MIN}-${PROTOCOL_VERSION_MAX}`,
    );
  }
  return version;
}

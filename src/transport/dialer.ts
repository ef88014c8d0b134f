/**
 * The contract every client-side transport implements: open a channel to the daemon, and say what the
 * channel itself proves about who answered. The client's handshake (client/session.ts) takes a `Dialer` and
 * never learns whether it got TCP+TLS (tcp-tls-dial.ts), plaintext TCP, or, later, an ssh child's stdio.
 */
import type { Channel } from './channel.js';

/**
 * What the channel proved about the daemon, beyond what the handshake proves itself (AUTH_CHALLENGE's
 * host proof and the known_hosts pin of its key, spec/SECURITY.md §4.2, which every transport gets).
 * TLS proves the certificate's key; plaintext proves nothing; an ssh channel's host was checked by ssh.
 */
export interface DaemonIdentity {
  /**
   * The host key (SPKI, DER) the channel authenticated, which AUTH_CHALLENGE must name too; undefined when
   * the channel proves no key of its own. Asked on the control connection only: a resumed TLS session
   * presents no certificate.
   */
  hostKey(): Uint8Array | undefined;
  /**
   * For a connection after the first (ATTACH): throws FCP_ERR_AUTH_HOST_PROOF unless the channel reached the
   * daemon whose host key `fingerprint` the control connection authenticated.
   */
  checkSameDaemon(fingerprint: string): void;
}

/** One open channel to the daemon, before HELLO. The caller checks who answered before it writes. */
export interface DialedChannel {
  readonly channel: Channel;
  readonly identity: DaemonIdentity;
  /**
   * What lets the session's next connection skip a full handshake (a TLS session ticket), or undefined.
   * Read once the session is granted: TLS 1.3 sends its tickets after the handshake.
   */
  resumption(): Buffer | undefined;
}

/** How to reach one daemon: opens as many channels to it as the session needs. */
export interface Dialer {
  /** The daemon as messages name it: `the daemon at example.org:7523`. */
  readonly peerName: string;
  /**
   * Opens a channel. `resume` is a previous channel's resumption(); aborting `signal` cancels the
   * channel at any time until it closes, with a proper close once it is open.
   */
  open(resume: Buffer | undefined, signal?: AbortSignal): Promise<DialedChannel>;
  /**
   * An error of the control connection's first exchange (the channel, then HELLO) as the user should see
   * it: a peer that never answers is not a daemon we reached (exit 4, not retried on the first attempt).
   */
  unanswered(err: unknown): unknown;
  /**
   * The most connections `--connections auto` should open through this transport, when a connection costs
   * more than its socket (carried over ssh: an ssh process on the client whose CPU the tuner cannot see);
   * undefined: the tuner's own cap. Asked once the first data is asked for (`needed`).
   */
  autoLimit?(needed: NeededSoFar): number | undefined;
  /**
   * How many connections `--connections auto` should start with through this transport, when that is not
   * the tuner's own start; undefined: the tuner's.
   */
  autoStart?(needed: NeededSoFar): number | undefined;
}

/** What the receiver had asked for when the session's extra connections were first opened. */
export interface NeededSoFar {
  /** File data to cross. */
  readonly bytes: number;
  /** The files holding it. */
  readonly files: number;
}

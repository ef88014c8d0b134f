/**
 * The session's connections besides the control one: when to open them, replacing the ones that die, and
 * attaching each with the proof of the session secret (spec/PROTOCOL.md §4.3, spec/SECURITY.md §6.4).
 */
import { performance } from 'node:perf_hooks';
import { FcpError, MsgType, type SessionMsg, toFcpError } from '../protocol/index.js';
import { attachProof, verifyAttachAnswer } from '../security/session-secret.js';
import type { Hasher } from '../transfer/checksum.js';
import type { TransferListener } from '../transfer/events.js';
import type { TransferEngine } from '../transfer/engine.js';
import type { FramedConn } from '../transport/framed-conn.js';
import { HANDSHAKE_TIMEOUT_MS } from '../transport/hello.js';
import type { Inbox } from '../transport/inbox.js';
import type { CommonOptions } from './options.js';
import { exchangeHello, openConn, type SessionLink } from './session.js';
import { AutoConnections, requestedConnections } from './auto-connections.js';

/**
 * The session's connections besides the control one, for one engine.
 *
 * They are opened the first time the files the receiver asked for (not merely listed: a re-run skips most)
 * hold more than one piece of data. Until then there is nothing for a second connection to carry in
 * parallel (a piece travels whole on one connection), and each costs a TLS handshake on both ends: a
 * one-file copy of a few KiB took 193 ms with its 7 extra connections and 183 ms without (README
 * "Connections"), and a no-change re-run of a tree opened all of them for nothing. A push lists before
 * SESSION, so they also wait for granted(). With `--connections auto` how many is decided as the transfer
 * goes (auto-connections.ts): more are attached while each step pays, and the newest are retired when one
 * did not (TransferEngine.retire: on a pull by DETACH, spec/PROTOCOL.md §3.2).
 *
 * When one dies mid-session its pieces are re-sent over the others (the engine does that); here a
 * replacement is attached so the transfer keeps its width. Bounded, so a link that kills every new
 * connection cannot make us reconnect forever.
 *
 * When the session ends, none is opened any more and those still on their way are cancelled with a FIN
 * (dial.ts), and the client waits for them to close before it exits: one cut off by the process's exit
 * mid-handshake was a reset the daemon logged as a failed TLS handshake (README: one line per session).
 */
export class ExtraConnections {
  readonly #opts: CommonOptions;
  #granted: Granted | undefined;
  #neededBytes = 0;
  #neededFiles = 0;
  #attached = false;
  #replacements = 0;
  #closing = false;
  /** Attaches on their way, each with what cancels it. */
  readonly #inFlight = new Map<Promise<void>, AbortController>();
  /** Extra connections attached and open, oldest first: a step that did not pay retires the newest. */
  readonly #open: FramedConn[] = [];
  /** `--connections auto`: what decides the count, and the timer that feeds it (auto-connections.ts). */
  #auto: AutoConnections | undefined;
  /** The shortest round trip an attach measured, in ms (Infinity while none did): the tuner's path RTT. */
  #rttMs = Infinity;

  constructor(opts: CommonOptions) {
    this.#opts = opts;
  }

  /** SESSION arrived and `engine` runs it. */
  granted(session: SessionMsg, link: SessionLink, engine: TransferEngine): void {
    const g = { session, link, engine };
    this.#granted = g;
    const max = Math.min(requestedConnections(this.#opts.connections), session.maxConnections);
    this.#replacements = 2 * max;
    this.#maybeAttach();
  }

  /**
   * `--connections auto`'s tuner, made when the first extra connections open. Carried over ssh each
   * connection is also an ssh process on this side and one ssh window: its transport may cap auto lower
   * and start it elsewhere, by what the receiver asked for so far (ssh-dialer.ts carriedAutoCount).
   */
  #autoFor(g: Granted): AutoConnections {
    const max = Math.min(requestedConnections(this.#opts.connections), g.session.maxConnections);
    const needed = { bytes: this.#neededBytes, files: this.#neededFiles };
    const autoMax = Math.min(max, g.link.dialer.autoLimit?.(needed) ?? max);
    const autoStart = g.link.dialer.autoStart?.(needed);
    return new AutoConnections(autoMax, autoStart, this.#opts.stats, {
      grow: (to) => this.#openUpTo(g, to),
      shrink: (to) => this.#retireDownTo(g, to),
      open: () => 1 + this.#open.length,
      // Counted as open only once attached: a carried one is an ssh login first (seconds on a busy client).
      opening: () => this.#inFlight.size,
      rttMs: () => (Number.isFinite(this.#rttMs) ? this.#rttMs : 0),
      notice: (text) => this.#opts.onNotice?.(text),
    });
  }

  /**
   * The engine's events this follows: 'needed' (the extra connections are opened once more than one piece
   * of data is to cross: a re-run that skips everything needs none) and 'connection-lost'.
   */
  readonly listener: TransferListener = (event) => {
    if (event.type === 'needed') {
      this.#neededBytes += event.bytes;
      this.#neededFiles++;
      this.#maybeAttach();
    } else if (event.type === 'connection-lost') this.#lost(event.error);
  };

  /** A data connection died and the session goes on without it: attach a replacement. */
  #lost(err: FcpError): void {
    const g = this.#granted;
    if (g === undefined || this.#closing || g.engine.finished || this.#replacements <= 0) return;
    this.#replacements--;
    this.#opts.onNotice?.(
      `a connection failed (${err.message}); its pieces go over the others, attaching a replacement`,
    );
    this.#attachOne(g).catch((err: unknown) => {
      // Cancelled because the session is over: nothing was lost. Otherwise the -v reader who was told of
      // the attempt hears how it ended; the transfer goes on over the others either way.
      if (this.#closing || g.engine.finished) return;
      this.#opts.onNotice?.(`could not attach the replacement connection: ${toFcpError(err).message}`);
    });
  }

  /** Opens the first ones once there is data for them; one that cannot be attached is reported. */
  #maybeAttach(): void {
    const g = this.#granted;
    if (this.#attached || this.#closing || g === undefined || g.engine.finished) return;
    if (this.#neededBytes <= g.session.pieceSize) return;
    this.#attached = true;
    if (this.#opts.connections === 'auto') {
      const auto = (this.#auto = this.#autoFor(g));
      this.#openUpTo(g, auto.target);
      auto.start();
    } else {
      const n = Math.min(this.#opts.connections, g.session.maxConnections);
      this.#opts.onNotice?.(`connections: ${n} (--connections ${this.#opts.connections})`);
      this.#openUpTo(g, n);
    }
  }

  /** Attaches as many as it takes to have `to` open or on their way, in parallel. */
  #openUpTo(g: Granted, to: number): void {
    let reported = false;
    const have = 1 + this.#open.length + this.#inFlight.size;
    for (let i = have; i < to; i++) {
      this.#attachOne(g).catch((err: unknown) => {
        // SESSION_UNKNOWN: a small transfer finished on the daemon before this connection arrived; had the
        // session died, the control connection says so.
        const e = toFcpError(err);
        if (g.engine.finished || reported || e.code === 'FCP_ERR_SESSION_UNKNOWN') return;
        reported = true;
        this.#opts.onWarning(new FcpError(e.code, `could not open an extra connection: ${e.message}`));
      });
    }
  }

  /**
   * Retires the newest until `to` are left: they finish what they carry and close cleanly. On a pull the
   * daemon decides what goes on each connection: it is asked to stop by DETACH, and a daemon too old to
   * offer it keeps them (false).
   */
  #retireDownTo(g: Granted, to: number): boolean {
    const surplus = this.#open.length + 1 - to;
    for (let i = 0; i < surplus; i++) {
      const conn = this.#open.at(-1);
      if (conn === undefined || !g.engine.retire(conn)) return false;
      this.#open.pop();
    }
    return true;
  }

  /** The session is over: opens nothing more, cancels what is on its way, and waits (bounded) for it. */
  async close(timeoutMs: number): Promise<void> {
    this.#closing = true;
    this.#auto?.end();
    for (const cancel of this.#inFlight.values()) cancel.abort();
    const settled = Promise.allSettled(this.#inFlight.keys());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([settled, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  #attachOne(g: Granted): Promise<void> {
    const cancel = new AbortController();
    const attempt = (async () => {
      const attached = await attachOne(this.#opts.hasher, g.session.sessionId, g.link, cancel.signal);
      const { conn, inbox } = attached;
      this.#rttMs = Math.min(this.#rttMs, attached.rttMs);
      if (this.#closing || g.engine.finished) {
        // Attached too late to carry anything: a proper close (TLS close_notify, then FIN).
        conn.end();
        return;
      }
      this.#open.push(conn);
      conn.onceClosed(() => {
        const i = this.#open.indexOf(conn);
        if (i >= 0) this.#open.splice(i, 1);
      });
      g.engine.addConnection(conn);
      inbox.handOver(g.engine);
    })();
    this.#inFlight.set(attempt, cancel);
    const forget = () => this.#inFlight.delete(attempt);
    attempt.then(forget, forget);
    return attempt;
  }
}

/**
 * A daemon that offered AttachProven on the control connection must prove the session secret in every
 * ATTACH answer: without that, a connection that reached someone else (a relay socket swapped on the remote
 * host, spec/SECURITY.md §14.4) would be handed file data. The control connection's HELLO decides, not this
 * one's, so an impostor cannot pass for an older daemon. Checked on every channel, TLS included: one HMAC,
 * and no trust in the channel.
 */
export function checkAttachAnswer(
  link: Pick<SessionLink, 'attachProven' | 'auth'>,
  channel: { readonly binding: Uint8Array; readonly peer: string },
  sessionId: Uint8Array,
  nonce: Uint8Array,
  ourProof: Uint8Array,
  theirs: Uint8Array | undefined,
): void {
  if (!link.attachProven) return;
  const secret = link.auth.sessionSecret;
  if (verifyAttachAnswer(secret, sessionId, nonce, channel.binding, ourProof, theirs)) return;
  throw new FcpError(
    'FCP_ERR_AUTH_HOST_PROOF',
    `${channel.peer} answered ATTACH without proof of the session secret: not our daemon; connection dropped`,
  );
}

interface Granted {
  session: SessionMsg;
  link: SessionLink;
  engine: TransferEngine;
}

/**
 * One extra connection: TLS resumed from the control connection (or the same host key), HELLO, ATTACH, and the
 * proof of the session secret bound to this connection's own channel (spec/SECURITY.md §6.4).
 * `rttMs`: the shorter of its two round trips (HELLO, the proof), on a connection with no data queued yet
 * (connection-tuner.ts judges by it whether a connection can be held back by its TCP window).
 */
async function attachOne(
  hasher: Hasher,
  sessionId: Uint8Array,
  link: SessionLink,
  signal: AbortSignal,
): Promise<{ conn: FramedConn; inbox: Inbox; rttMs: number }> {
  const ch = await openConn(link.dialer, hasher, link.resumption, signal);
  const { conn, inbox } = ch;
  try {
    ch.dialed.identity.checkSameDaemon(link.auth.hostFingerprint);
    const helloAt = performance.now();
    await exchangeHello(ch, { type: MsgType.Attach, sessionId });
    const helloMs = performance.now() - helloAt;
    const challenge = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'ATTACH_CHALLENGE');
    if (challenge.type !== MsgType.AttachChallenge)
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'expected ATTACH_CHALLENGE');
    const proof = attachProof(link.auth.sessionSecret, sessionId, challenge.nonce, ch.conn.channel.binding);
    const proofAt = performance.now();
    conn.send({ type: MsgType.AttachProof, proof });
    const msg = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'ATTACH');
    if (msg.type !== MsgType.Attach) throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'expected ATTACH');
    checkAttachAnswer(link, conn.channel, sessionId, challenge.nonce, proof, msg.proof);
    // On a pull the daemon may start sending DATA right behind its ATTACH: the inbox keeps it for the engine.
    return { conn, inbox, rttMs: Math.min(helloMs, performance.now() - proofAt) };
  } catch (err) {
    conn.destroy();
    throw err;
  }
}

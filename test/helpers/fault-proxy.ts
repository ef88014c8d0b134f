// A loopback TCP proxy that injects faults between an fcp client and daemon: exact-byte cuts, stalls,
// single-byte corruption, mass disconnects and refused connections. "up" is client -> target, "down" is
// target -> client. Every fault can be set before or during traffic, for all connections or for the Nth
// accepted one (0-based, counting only connections that were not refused).
import { EventEmitter } from 'node:events';
import net, { type AddressInfo, type Socket } from 'node:net';
import { resetSocket } from '../../bench/wan-proxy.js';

/** One direction of a proxied connection: 'up' is client -> target, 'down' is target -> client. */
export type Direction = 'up' | 'down';
/** Which directions a fault applies to. */
export type DirectionSelector = Direction | 'both';

/** Where the proxy forwards accepted connections. */
export interface ProxyTarget {
  host: string;
  port: number;
}

/**
 * Sees every chunk after faults are applied, just before it is written on. The chunk is valid only
 * during the call: copy it to keep it.
 */
export type ForwardTap = (connection: ProxyConnection, direction: Direction, chunk: Buffer) => void;

export interface FaultProxyOptions {
  target: ProxyTarget;
  /** Defaults to 127.0.0.1. */
  listenHost?: string;
  onForward?: ForwardTap;
}

/** Picks the connections and directions a fault applies to; no connection means every connection. */
export interface FaultScope {
  connection?: number;
  direction?: DirectionSelector;
}

export interface CutOptions {
  /** 'both' cuts when either direction reaches the count, each direction counted on its own. */
  direction: DirectionSelector;
  connection?: number;
}

export interface StallOptions extends FaultScope {
  /** Forward this many bytes of the direction first, then stall. Defaults to 0 (stall at once). */
  afterBytes?: number;
}

export interface FlipOptions {
  direction: DirectionSelector;
  connection?: number;
  /** Defaults to 0xff. */
  xor?: number;
}

export interface WaitOptions {
  /** Defaults to DEFAULT_WAIT_MS. */
  timeoutMs?: number;
}

export interface WaitForBytesOptions extends WaitOptions {
  /** Count only this connection; by default bytes of every connection are summed. */
  connection?: number;
}

/** A proxied connection as tests see it; the counts are live. */
export interface ProxyConnection {
  readonly index: number;
  /** Bytes forwarded client -> target (after faults). */
  readonly bytesUp: number;
  /** Bytes forwarded target -> client (after faults). */
  readonly bytesDown: number;
  /** Bytes the proxy holds for the direction: read but not yet handed to the kernel. */
  readonly bufferedUp: number;
  readonly bufferedDown: number;
  readonly open: boolean;
  /**
   * Why the direction is not forwarding, set by its pump the moment it stops reading: 'stall' at a stall
   * point, 'drain' while the target's kernel buffers are full; undefined while it forwards or has nothing
   * to forward. Lets a test assert "nothing more goes through" on a state instead of after a sleep.
   */
  waiting(direction: Direction): PumpWait;
  /** The first socket error seen on either side, if any. */
  readonly error: Error | undefined;
  /** Resolves when both sockets have closed; never rejects. */
  readonly closed: Promise<void>;
  /** Destroys both sockets now. */
  destroy(): void;
}

export interface FaultProxyEvents {
  connection: [connection: ProxyConnection];
  connectionClose: [connection: ProxyConnection];
  refused: [];
}

/** How long the wait helpers wait before rejecting, unless told otherwise. */
export const DEFAULT_WAIT_MS = 10_000;
/** How long close() waits for sockets to report closed before it gives up on them. */
const CLOSE_WAIT_MS = 2_000;

interface Scoped {
  connection: number | undefined;
  direction: DirectionSelector;
}
interface CutRule extends Scoped {
  bytes: number;
}
interface StallRule extends Scoped {
  afterBytes: number;
}
interface FlipRule extends Scoped {
  offset: number;
  xor: number;
}

function inScope(rule: Scoped, index: number, direction: Direction): boolean {
  if (rule.connection !== undefined && rule.connection !== index) return false;
  return rule.direction === 'both' || rule.direction === direction;
}

function checkCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  }
}

function checkConnection(connection: number | undefined): void {
  if (connection !== undefined) checkCount('connection', connection);
}

/** The fault table the pumps consult on every chunk, so rules added mid-transfer take effect at once. */
class FaultRules {
  cuts: CutRule[] = [];
  stalls: StallRule[] = [];
  flips: FlipRule[] = [];

  /** Byte count at which the direction is cut; Infinity when no rule applies. */
  cutLimit(index: number, direction: Direction): number {
    let limit = Number.POSITIVE_INFINITY;
    for (const rule of this.cuts) {
      if (inScope(rule, index, direction)) limit = Math.min(limit, rule.bytes);
    }
    return limit;
  }

  /** Byte count at which the direction stalls; Infinity when no rule applies. */
  stallLimit(index: number, direction: Direction): number {
    let limit = Number.POSITIVE_INFINITY;
    for (const rule of this.stalls) {
      if (inScope(rule, index, direction)) limit = Math.min(limit, rule.afterBytes);
    }
    return limit;
  }

  /** Returns `chunk`, or a corrupted copy when a flip falls inside [start, start + chunk.length). */
  corrupt(index: number, direction: Direction, start: number, chunk: Buffer): Buffer {
    let out = chunk;
    for (const rule of this.flips) {
      const at = rule.offset - start;
      if (at < 0 || at >= chunk.length || !inScope(rule, index, direction)) continue;
      // Copy so the reader's buffer is never modified (it may be shared with a tap).
      if (out === chunk) out = Buffer.from(chunk);
      out[at] = (out[at] ?? 0) ^ rule.xor;
    }
    return out;
  }
}

/** Why a pump has paused its source (see ProxyConnection.waiting). */
export type PumpWait = 'stall' | 'drain' | undefined;

interface PumpOwner {
  readonly index: number;
  cut(direction: Direction): void;
  forwarded(direction: Direction, chunk: Buffer): void;
  /** The pump paused its source, or went on again: wake the waiters. */
  waitChanged(): void;
}

/** Moves one direction's bytes from `source` to `dest`, applying faults and honouring backpressure. */
class Pump {
  readonly direction: Direction;
  forwarded = 0;
  readonly #source: Socket;
  readonly #dest: Socket;
  readonly #owner: PumpOwner;
  readonly #rules: FaultRules;
  // Chunks read but not yet written: the tail of a chunk split at a stall point, or data read while
  // stalled or waiting for 'drain'.
  #held: Buffer[] = [];
  #awaitingDrain = false;
  #waiting: PumpWait = undefined;
  #sourceEnded = false;
  #endSent = false;
  #stopped = false;

  constructor(direction: Direction, source: Socket, dest: Socket, owner: PumpOwner, rules: FaultRules) {
    this.direction = direction;
    this.#source = source;
    this.#dest = dest;
    this.#owner = owner;
    this.#rules = rules;
    source.on('data', this.#sourceOnData);
    source.on('end', this.#sourceOnEnd);
    dest.on('drain', this.#destOnDrain);
  }

  /** True once everything the source sent, and its end, has been handed to the destination. */
  get done(): boolean {
    return this.#endSent;
  }

  get waiting(): PumpWait {
    return this.#waiting;
  }

  get buffered(): number {
    let total = this.#dest.writableLength;
    for (const chunk of this.#held) total += chunk.length;
    return total;
  }

  stop(): void {
    this.#stopped = true;
    this.#held = [];
  }

  /** Re-evaluates the fault rules, e.g. after one was added or removed. */
  kick(): void {
    this.#flush();
  }

  readonly #sourceOnData = (chunk: Buffer): void => {
    if (this.#stopped) return;
    this.#held.push(chunk);
    this.#flush();
  };

  readonly #sourceOnEnd = (): void => {
    this.#sourceEnded = true;
    this.#flush();
  };

  readonly #destOnDrain = (): void => {
    this.#awaitingDrain = false;
    this.#flush();
  };

  #flush(): void {
    const index = this.#owner.index;
    while (!this.#stopped) {
      const cutAt = this.#rules.cutLimit(index, this.direction);
      if (this.forwarded >= cutAt) {
        this.#owner.cut(this.direction);
        return;
      }
      const stallAt = this.#rules.stallLimit(index, this.direction);
      if (this.forwarded >= stallAt || this.#awaitingDrain) {
        this.#source.pause();
        this.#setWaiting(this.forwarded >= stallAt ? 'stall' : 'drain');
        return;
      }
      const chunk = this.#held.shift();
      if (chunk === undefined) break;
      // Split at the next cut or stall point so the fault lands on that exact byte.
      const room = Math.min(cutAt, stallAt) - this.forwarded;
      if (room < chunk.length) {
        this.#held.unshift(chunk.subarray(room));
        this.#write(chunk.subarray(0, room));
      } else {
        this.#write(chunk);
      }
    }
    if (this.#stopped) return;
    this.#setWaiting(undefined);
    if (this.#sourceEnded) {
      if (!this.#endSent) {
        this.#endSent = true;
        this.#dest.end();
      }
      return;
    }
    this.#source.resume();
  }

  #setWaiting(why: PumpWait): void {
    if (this.#waiting === why) return;
    this.#waiting = why;
    this.#owner.waitChanged();
  }

  #write(chunk: Buffer): void {
    const out = this.#rules.corrupt(this.#owner.index, this.direction, this.forwarded, chunk);
    const ok = this.#dest.write(out);
    this.forwarded += out.length;
    this.#owner.forwarded(this.direction, out);
    if (!ok) this.#awaitingDrain = true;
  }
}

const noop = (): void => {};

class FaultConnection implements ProxyConnection, PumpOwner {
  readonly index: number;
  readonly closed: Promise<void>;
  #error: Error | undefined;
  #open = true;
  #cutting = false;
  #openSockets = 2;
  readonly #client: Socket;
  readonly #upstream: Socket;
  readonly #up: Pump;
  readonly #down: Pump;
  readonly #tap: ForwardTap | undefined;
  readonly #onProgress: () => void;
  #resolveClosed: () => void = noop;

  constructor(
    index: number,
    client: Socket,
    target: ProxyTarget,
    rules: FaultRules,
    tap: ForwardTap | undefined,
    onProgress: () => void,
  ) {
    this.index = index;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.#client = client;
    this.#tap = tap;
    this.#onProgress = onProgress;
    // allowHalfOpen so a FIN from one peer is forwarded as a FIN, not turned into a full close.
    this.#upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    client.setNoDelay(true);
    this.#upstream.setNoDelay(true);
    this.#up = new Pump('up', client, this.#upstream, this, rules);
    this.#down = new Pump('down', this.#upstream, client, this, rules);
    for (const [socket, other] of [
      [client, this.#upstream],
      [this.#upstream, client],
    ] as const) {
      socket.on('error', (err) => this.#socketOnError(other, err));
      socket.on('close', () => this.#socketOnClose(socket, other));
    }
  }

  get bytesUp(): number {
    return this.#up.forwarded;
  }

  get bytesDown(): number {
    return this.#down.forwarded;
  }

  get bufferedUp(): number {
    return this.#up.buffered;
  }

  get bufferedDown(): number {
    return this.#down.buffered;
  }

  get open(): boolean {
    return this.#open;
  }

  waiting(direction: Direction): PumpWait {
    return (direction === 'up' ? this.#up : this.#down).waiting;
  }

  waitChanged(): void {
    this.#onProgress();
  }

  get error(): Error | undefined {
    return this.#error;
  }

  destroy(): void {
    this.#stopPumps();
    this.#client.destroy();
    this.#upstream.destroy();
  }

  /** Destroys both sockets with a TCP RST, so each peer sees ECONNRESET rather than an orderly end. */
  reset(): void {
    this.#stopPumps();
    resetSocket(this.#client);
    resetSocket(this.#upstream);
  }

  kick(): void {
    this.#up.kick();
    this.#down.kick();
  }

  cut(direction: Direction): void {
    if (this.#cutting) return;
    this.#stopPumps();
    const [source, dest] =
      direction === 'up' ? [this.#client, this.#upstream] : [this.#upstream, this.#client];
    source.destroy();
    // The receiving peer must see exactly the prefix: end() queues a FIN behind it, and the socket is
    // destroyed only once that is flushed (however long a slow reader takes; close() still ends it).
    // Reading on meanwhile keeps the receive queue empty, since closing with unread data makes the
    // kernel send RST and drop whatever it has not sent yet.
    dest.on('data', noop);
    dest.resume();
    dest.end(() => dest.destroy());
  }

  forwarded(direction: Direction, chunk: Buffer): void {
    this.#tap?.(this, direction, chunk);
    this.#onProgress();
  }

  #stopPumps(): void {
    this.#cutting = true;
    this.#up.stop();
    this.#down.stop();
  }

  #socketOnError(other: Socket, err: Error): void {
    this.#error ??= err;
    if (this.#cutting) return;
    // Pass the failure on as a reset, the closest a proxy can get to forwarding an error.
    this.#stopPumps();
    resetSocket(other);
  }

  #socketOnClose(socket: Socket, other: Socket): void {
    // If the pump into this socket had more to deliver, its source now has nowhere to send to. A cut
    // or reset already decided the fate of both sockets.
    const into = socket === this.#client ? this.#down : this.#up;
    if (!this.#cutting && !into.done && !other.destroyed) {
      this.#stopPumps();
      other.destroy();
    }
    this.#openSockets -= 1;
    if (this.#openSockets > 0) return;
    this.#open = false;
    this.#resolveClosed();
  }
}

interface Waiter {
  ready: () => boolean;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** A running fault-injecting proxy; build one with {@link startFaultProxy}. */
export class FaultProxy extends EventEmitter<FaultProxyEvents> {
  readonly port: number;
  readonly #server: net.Server;
  readonly #rules: FaultRules;
  readonly #connections: FaultConnection[];
  #refused = 0;
  #refusing = false;
  #closing: Promise<void> | undefined;
  #waiters = new Set<Waiter>();

  private constructor(server: net.Server, options: FaultProxyOptions) {
    super();
    this.#server = server;
    this.#rules = new FaultRules();
    this.#connections = [];
    this.port = (server.address() as AddressInfo).port;
    server.on('connection', (socket) => this.#accept(socket, options.target, options.onForward));
  }

  /** Use {@link startFaultProxy}. */
  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    // allowHalfOpen so a FIN from the client is forwarded as a FIN, not turned into a full close.
    const server = net.createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, options.listenHost ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new FaultProxy(server, options);
  }

  /** Every accepted connection, in accept order (index i is at position i), open or closed. */
  get connections(): readonly ProxyConnection[] {
    return this.#connections;
  }

  /** Connections that still have a socket open. */
  get liveConnections(): ProxyConnection[] {
    return this.#connections.filter((connection) => connection.open);
  }

  /** How many connections were accepted and closed while refuseNew(true) was in force. */
  get refused(): number {
    return this.#refused;
  }

  /**
   * Once `bytes` bytes have passed in the direction, forwards exactly that prefix, then ends the
   * receiving side (it reads the prefix, then EOF) and destroys the sending side. A connection already
   * past the count is cut at once.
   */
  cutAfter(bytes: number, options: CutOptions): void {
    checkCount('bytes', bytes);
    checkConnection(options.connection);
    this.#rules.cuts.push({ bytes, direction: options.direction, connection: options.connection });
    this.#kick();
  }

  /** Stops forwarding and reading (sockets stay open) so the peers see a hang, until resume(). */
  stall(options: StallOptions = {}): void {
    const afterBytes = options.afterBytes ?? 0;
    checkCount('afterBytes', afterBytes);
    checkConnection(options.connection);
    this.#rules.stalls.push({
      afterBytes,
      direction: options.direction ?? 'both',
      connection: options.connection,
    });
    this.#kick();
  }

  /** Lifts every stall; held bytes are forwarded first. */
  resume(): void {
    this.#rules.stalls = [];
    this.#kick();
  }

  /** XORs the byte at `offset` of the direction's stream (counted from the connection's first byte). */
  flipByte(offset: number, options: FlipOptions): void {
    checkCount('offset', offset);
    checkConnection(options.connection);
    const xor = options.xor ?? 0xff;
    if (!Number.isInteger(xor) || xor < 1 || xor > 0xff)
      throw new RangeError(`xor must be 1..255, got ${xor}`);
    this.#rules.flips.push({ offset, xor, direction: options.direction, connection: options.connection });
  }

  /** Drops every cut, stall and flip rule; stalled connections resume. */
  clearFaults(): void {
    this.#rules.cuts = [];
    this.#rules.stalls = [];
    this.#rules.flips = [];
    this.#kick();
  }

  /** Destroys every live connection now; each peer sees its socket end. */
  cutAll(): void {
    for (const connection of this.#connections) {
      if (connection.open) connection.destroy();
    }
  }

  /** Resets every live connection now; each peer sees ECONNRESET. */
  resetAll(): void {
    for (const connection of this.#connections) {
      if (connection.open) connection.reset();
    }
  }

  /** While true, new connections are accepted and closed at once; they get no index. */
  refuseNew(refuse: boolean): void {
    this.#refusing = refuse;
  }

  /**
   * Resolves when `ready()` returns true, checked after every accept, close, forwarded chunk and change of
   * a direction's `waiting`.
   */
  waitFor(ready: () => boolean, what = 'condition', options: WaitOptions = {}): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new Error(`fault proxy closed; ${what}`));
    try {
      if (ready()) return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        ready,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          reject(new Error(`fault proxy: timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs),
      };
      this.#waiters.add(waiter);
    });
  }

  /** Resolves with the connections once at least `count` have been accepted. */
  async waitForConnections(count: number, options: WaitOptions = {}): Promise<readonly ProxyConnection[]> {
    await this.waitFor(() => this.#connections.length >= count, `${count} connection(s)`, options);
    return this.#connections;
  }

  /** Resolves once at least `count` accepted connections have fully closed. */
  waitForClosed(count: number, options: WaitOptions = {}): Promise<void> {
    const closed = (): number => this.#connections.filter((connection) => !connection.open).length;
    return this.waitFor(() => closed() >= count, `${count} closed connection(s)`, options);
  }

  /** Resolves once at least `count` connections have been refused. */
  waitForRefused(count: number, options: WaitOptions = {}): Promise<void> {
    return this.waitFor(() => this.#refused >= count, `${count} refused connection(s)`, options);
  }

  /** Resolves once `bytes` bytes have been forwarded in the direction. */
  waitForBytes(direction: Direction, bytes: number, options: WaitForBytesOptions = {}): Promise<void> {
    const counted = (connection: ProxyConnection): number =>
      direction === 'up' ? connection.bytesUp : connection.bytesDown;
    const total = (): number => {
      if (options.connection !== undefined) {
        const connection = this.#connections[options.connection];
        return connection === undefined ? 0 : counted(connection);
      }
      return this.#connections.reduce((sum, connection) => sum + counted(connection), 0);
    };
    const scope = options.connection === undefined ? '' : ` on connection ${options.connection}`;
    return this.waitFor(() => total() >= bytes, `${bytes} bytes ${direction}${scope}`, options);
  }

  /** Stops listening, destroys every connection and rejects pending waits. Safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  async #shutDown(): Promise<void> {
    const listening = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.cutAll();
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('fault proxy closed while waiting'));
    }
    this.#waiters.clear();
    // cutAll() lets a cut flush its prefix to a slow reader; closing does not wait for that. A socket
    // destroyed while still connecting has been seen to never report 'close', so the wait is bounded
    // too: a test's cleanup must not keep the runner alive.
    for (const connection of this.#connections) connection.destroy();
    const settled = Promise.all([listening, ...this.#connections.map((connection) => connection.closed)]);
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CLOSE_WAIT_MS);
      timer.unref();
    });
    await Promise.race([settled, bounded]);
    clearTimeout(timer);
  }

  #accept(socket: Socket, target: ProxyTarget, tap: ForwardTap | undefined): void {
    if (this.#refusing || this.#closing !== undefined) {
      socket.on('error', noop);
      socket.destroy();
      this.#refused += 1;
      this.emit('refused');
      this.#notify();
      return;
    }
    const connection = new FaultConnection(this.#connections.length, socket, target, this.#rules, tap, () =>
      this.#notify(),
    );
    this.#connections.push(connection);
    void connection.closed.then(() => {
      this.emit('connectionClose', connection);
      this.#notify();
    });
    this.emit('connection', connection);
    this.#notify();
  }

  #kick(): void {
    for (const connection of this.#connections) {
      if (connection.open) connection.kick();
    }
  }

  #notify(): void {
    for (const waiter of this.#waiters) {
      let ready: boolean;
      try {
        ready = waiter.ready();
      } catch (err) {
        this.#waiters.delete(waiter);
        clearTimeout(waiter.timer);
        waiter.reject(err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      if (!ready) continue;
      this.#waiters.delete(waiter);
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
  }
}

/** Starts a fault proxy listening on an ephemeral port and forwarding to `target`. */
export function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  return FaultProxy.start(options);
}

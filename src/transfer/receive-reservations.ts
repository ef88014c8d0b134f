/**
 * The receiver's path reservations: every path an entry in progress writes (its final name and the sink's
 * work names beside it) is held here, keyed by the checked wire path, so that two entries of one session
 * never write one path at once (STYLE rule 8; node-tar's path-reservations.ts). The second is refused.
 */
import { FcpError } from '../protocol/index.js';

export class PathReservations {
  readonly #held = new Set<string>();

  /** Reserves every path of `paths` or, if one is taken, none (FCP_ERR_PATH_DUPLICATE naming `wirePath`). */
  reserve(paths: readonly string[], wirePath: string): void {
    if (paths.some((p) => this.#held.has(p))) {
      throw new FcpError('FCP_ERR_PATH_DUPLICATE', undefined, { path: wirePath });
    }
    for (const p of paths) this.#held.add(p);
  }

  /**
   * FCP_ERR_PATH_DUPLICATE (naming `wirePath`) when `path` is held. An entry decided on the spot checks
   * this and holds nothing unless it goes on to write: a no-change re-run then adds nothing here.
   */
  checkFree(path: string, wirePath: string): void {
    if (this.#held.has(path)) throw new FcpError('FCP_ERR_PATH_DUPLICATE', undefined, { path: wirePath });
  }

  /** Holds `path` for its entry, which checkFree() found free, or which holds it already. */
  hold(path: string): void {
    this.#held.add(path);
  }

  release(path: string): void {
    this.#held.delete(path);
  }

  releaseAll(paths: readonly string[]): void {
    for (const p of paths) this.#held.delete(p);
  }
}

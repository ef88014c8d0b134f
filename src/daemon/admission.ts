/**
 * How many connections may be in their handshake at once (spec/SECURITY.md §10), like sshd's MaxStartups:
 * a total cap and a cap per source address, checked at accept. An address with an authenticated session gets
 * room for that session's own extra connections on top, so a client opening many ATTACH sockets at once is
 * not mistaken for a flood.
 */

/** Connections in their handshake at once, all addresses together. */
export const MAX_UNAUTHENTICATED = 128;
/**
 * Connections in their handshake at once from one address (plus its sessions' allowance): room for a script
 * starting a few dozen fcp runs at once, or users behind one NAT, while one address can never fill the total.
 */
export const MAX_UNAUTHENTICATED_PER_ADDRESS = 32;

export class Admission {
  readonly #total: number;
  readonly #perAddress: number;
  readonly #pending = new Map<string, number>();
  readonly #allowance = new Map<string, number>();
  #count = 0;

  constructor(total = MAX_UNAUTHENTICATED, perAddress = MAX_UNAUTHENTICATED_PER_ADDRESS) {
    this.#total = total;
    this.#perAddress = perAddress;
  }

  /** Connections now in their handshake. */
  get pending(): number {
    return this.#count;
  }

  /** Takes a handshake slot for `address`; false when a cap is reached (the caller closes the socket). */
  admit(address: string): boolean {
    const mine = this.#pending.get(address) ?? 0;
    const cap = this.#perAddress + (this.#allowance.get(address) ?? 0);
    if (this.#count >= this.#total || mine >= cap) return false;
    this.#pending.set(address, mine + 1);
    this.#count++;
    return true;
  }

  /** Gives the slot back: the connection authenticated, or closed. Call once per admitted connection. */
  release(address: string): void {
    const mine = this.#pending.get(address) ?? 0;
    if (mine <= 1) this.#pending.delete(address);
    else this.#pending.set(address, mine - 1);
    this.#count--;
  }

  /** An authenticated session from `address` may open `connections` more sockets; undo with revoke(). */
  grant(address: string, connections: number): void {
    this.#allowance.set(address, (this.#allowance.get(address) ?? 0) + connections);
  }

  revoke(address: string, connections: number): void {
    const left = (this.#allowance.get(address) ?? 0) - connections;
    if (left <= 0) this.#allowance.delete(address);
    else this.#allowance.set(address, left);
  }
}

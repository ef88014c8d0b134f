/**
 * A SINGLE_FILE session's list (spec/PROTOCOL.md §2 flags, §6.1): exactly one top-level entry, and not a
 * directory. The receiver writes that entry under the name the user gave, in the destination's parent
 * directory, so anything else the sender listed would land beside it: a hostile daemon answering
 * `fcp pull host:x ~/notes.txt` could add `.ssh/authorized_keys` and change the mode of `~` itself (the class
 * of scp's CVE-2019-6111). Any other entry is the peer breaking the protocol, and fatal. The one file may be
 * announced again under a new id after a retryable failure (§7.4), so later entries must name the same path;
 * two of them at once are refused like any two entries naming one path (the receiver's reservations).
 */
import { FcpError } from '../protocol/index.js';
import { ROOT_ENTRY } from './wire-path.js';

export class SingleFileList {
  /** The path of the list's file, once announced. */
  #path: string | undefined;

  /** Throws unless this entry is the list's one top-level file or link (or that file announced again). */
  admit(kind: 'dir' | 'file', path: string): void {
    if (kind === 'dir') throw refused(`a directory (${JSON.stringify(path)})`);
    if (path === ROOT_ENTRY || path.includes('/'))
      throw refused(`an entry below the top (${JSON.stringify(path)})`);
    if (this.#path !== undefined && path !== this.#path)
      throw refused(`a second entry (${JSON.stringify(path)})`);
    this.#path = path;
  }
}

function refused(what: string): FcpError {
  return new FcpError('FCP_ERR_PROTO_UNEXPECTED', `the peer listed ${what} in a single-file transfer`);
}

// Waiting for a partial's claim (src/transfer/store/partial-claims.ts) to be let go: a kept partial's claim
// goes once its descriptors are closed, a killed process's at once.
import { claimPartial } from '../../src/transfer/store/partial-claims.js';
import { waitUntil } from './reliability.js';

/** Resolves once this process could claim the partial whose temporary is `temp` (and lets it go again). */
export async function claimFreed(temp: string): Promise<void> {
  await waitUntil(
    async () => {
      const claim = await claimPartial(temp);
      claim?.release();
      return claim !== undefined;
    },
    `the claim on ${temp} to be let go`,
    10_000,
  );
}

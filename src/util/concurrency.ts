/**
 * Bounded concurrency over a list: the one copy of the worker loop the executor, inventory and
 * the runbooks use. The request budget paces the Azure calls in any case; these bound how many
 * are in flight (and how much memory a long list of pending work holds).
 */

/**
 * Runs `work` over `items` with at most `limit` calls in flight, each given the item and its
 * index. When a call rejects, no further item starts; the calls already running are awaited
 * (nothing is left running unobserved), then the first error is thrown.
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { readonly error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next;
      next += 1;
      try {
        await work(items[index] as T, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  // A limit that is not a positive number still runs the work, one item at a time.
  const width = Math.max(1, Math.min(Number.isFinite(limit) ? Math.floor(limit) : 1, items.length));
  await Promise.all(Array.from({ length: width }, worker));
  if (failure !== undefined) throw failure.error;
}

/**
 * Maps `items` through `work` with at most `limit` calls in flight; the results keep the order
 * of the items. Fails like {@link forEachLimited}: no new call after the first rejection, then
 * that error once the running calls have settled.
 */
export async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  await forEachLimited(items, limit, async (item, index) => {
    results[index] = await work(item, index);
  });
  return results;
}

/**
 * Draining an async iterable (an Azure SDK pager) into an array: the one copy every runbook and
 * inventory uses.
 */

/**
 * Drains `iterable` into an array, in order. With a `signal`, stops before taking the next item
 * once it has aborted and rejects with the signal's reason, so a cancelled run does not page on
 * through a large listing. (The SDK pagers also take the signal for their requests.)
 */
export async function collect<T>(iterable: AsyncIterable<T>, signal?: AbortSignal): Promise<T[]> {
  const items: T[] = [];
  signal?.throwIfAborted();
  for await (const item of iterable) {
    signal?.throwIfAborted();
    items.push(item);
  }
  return items;
}

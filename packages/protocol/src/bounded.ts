/**
 * Runs `fn` over `items` with at most `limit` calls in flight (at least
 * one), started in the items' order. Rejects with the first call that
 * rejects; the other lanes still run on through the items.
 */
export async function forEachBounded<T> (items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const it = items[Symbol.iterator]()
  const lane = async (): Promise<void> => {
    for (let next = it.next(); next.done !== true; next = it.next()) await fn(next.value)
  }
  await Promise.all(Array.from({ length: Math.max(1, limit) }, lane))
}

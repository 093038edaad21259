/**
 * Tells a periodic timer's tick that came late because our own event loop
 * was held up (a long synchronous task, GC, a stopped process): the bytes
 * that arrived meanwhile are not read yet (timers run before I/O), so a
 * remote's silence measured across the stall proves nothing.
 */
export class StallCheck {
  constructor (private readonly intervalMs: number, private tickedAt = 0) {}

  /** Counts from `now`, as if a tick came then. */
  reset (now: number): void {
    this.tickedAt = now
  }

  /** A tick at `now`: true when it came more than two intervals after the one before (or the reset). */
  stalled (now: number): boolean {
    const late = now - this.tickedAt > 2 * this.intervalMs
    this.tickedAt = now
    return late
  }
}

/** A token bucket: `burst` tokens, refilled at `perSecond`; take(n) spends n when there are that many. */
export class TokenBucket {
  private tokens: number
  private at: number

  constructor (private readonly burst: number, private readonly perSecond: number, private readonly now: () => number = Date.now) {
    this.tokens = burst
    this.at = now()
  }

  take (n = 1): boolean {
    const now = this.now()
    this.tokens = Math.min(this.burst, this.tokens + (now - this.at) * this.perSecond / 1000)
    this.at = now
    if (this.tokens < n) return false
    this.tokens -= n
    return true
  }
}

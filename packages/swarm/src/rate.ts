/** A token bucket: `burst` tokens, refilled at `perSecond`; take() spends one when there is one. */
export class TokenBucket {
  private tokens: number
  private at: number

  constructor (private readonly burst: number, private readonly perSecond: number, private readonly now: () => number = Date.now) {
    this.tokens = burst
    this.at = now()
  }

  take (): boolean {
    const now = this.now()
    this.tokens = Math.min(this.burst, this.tokens + (now - this.at) * this.perSecond / 1000)
    this.at = now
    if (this.tokens < 1) return false
    this.tokens--
    return true
  }
}

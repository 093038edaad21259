import { StallCheck } from './stall.js'
import type { SecretStream } from './types.js'

export interface LivenessHooks {
  /** Whether requests of ours are out: the remote owes us bytes. */
  owed: () => boolean
  /** When the last bytes of the protocol arrived (ms since the epoch). */
  lastReceivedAt: () => number
  /** The remote showed no life for `silentMs`, at least deadAfterMs. */
  dead: (silentMs: number) => void
  /** Makes the remote answer (a Ping): on TCP, which counts no packets, the only way to hear from a remote with nothing to send. */
  poke: () => void
}

/**
 * Tells a dead remote from a slow one while requests of ours are out on the
 * connection. On UDX (hyperswarm): the secret-stream keepalive sent every
 * third of deadAfterMs is acknowledged by a live remote's UDX stack, which
 * counts as a received packet. On TCP, which counts no packets: a Ping sent
 * as often, which a live remote answers (a Pong, or an older agent's
 * UNKNOWN_TYPE: any bytes will do). A remote that neither sends nor answers
 * anything for deadAfterMs is gone (killed, frozen, unplugged). UDX itself
 * would give up only after its retransmissions, ~15 s; TCP after minutes,
 * unless the remote's kernel resets it (a killed process).
 */
export class Liveness {
  private timer: NodeJS.Timeout | null = null
  /** When the remote last showed life, and the raw packet count then. */
  private heardAt = 0
  private packetsSeen = 0
  private readonly ticks: StallCheck
  private readonly intervalMs: number

  constructor (private readonly stream: SecretStream, private readonly deadAfterMs: number, private readonly hooks: LivenessHooks) {
    this.intervalMs = Math.floor(deadAfterMs / 3)
    this.ticks = new StallCheck(this.intervalMs)
  }

  /**
   * While watching: ms since the remote last showed life (sampled every
   * third of deadAfterMs); 0 otherwise. A transfer stops waiting on a source
   * silent for a second or so.
   */
  get silentMs (): number {
    return this.timer ? Date.now() - Math.max(this.heardAt, this.hooks.lastReceivedAt()) : 0
  }

  /** Packets the connection received, acknowledgements included: a UDX stream counts them; undefined on TCP (then only protocol bytes tell). */
  private get packetsReceived (): number | undefined {
    const n = this.stream.rawStream?.packetsReceived
    return typeof n === 'number' ? n : undefined
  }

  /** Starts watching, if not already, when a request of ours goes out. */
  watch (): void {
    if (this.timer) return
    this.heardAt = Date.now()
    this.ticks.reset(this.heardAt)
    this.packetsSeen = this.packetsReceived ?? 0
    this.prod()
    this.timer = setInterval(() => this.check(), this.intervalMs)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  /** Makes a live remote send something: the keepalive its UDX stack acknowledges, or on TCP a Ping. */
  private prod (): void {
    if (this.packetsReceived !== undefined) this.stream.sendKeepAlive?.()
    else this.hooks.poke()
  }

  private check (): void {
    const now = Date.now()
    // Our own event loop was held up: start the count again, not blame the remote.
    if (this.ticks.stalled(now)) this.heardAt = now
    const packets = this.packetsReceived ?? 0
    const heard = packets !== this.packetsSeen || this.hooks.lastReceivedAt() > this.heardAt
    if (heard) {
      this.packetsSeen = packets
      this.heardAt = now
      // Stops only once the remote showed life: a transfer that gave up on
      // a silent source (hedged its pieces elsewhere) must not make it look
      // fresh again when it next asks.
      if (!this.hooks.owed()) {
        this.stop()
        return
      }
    } else if (now - this.heardAt >= this.deadAfterMs) {
      this.stop()
      this.hooks.dead(now - this.heardAt)
      return
    }
    this.prod()
  }
}

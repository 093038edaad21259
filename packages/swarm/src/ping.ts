/**
 * Ping/Pong on a member connection: the round-trip time where the transport
 * has no measure of its own (a TCP connection to a static or exchanged
 * peer), and how far the remote's wall clock is from ours (LAN discovery's
 * tags rotate with the clock, so boxes whose clocks are more than an epoch
 * apart stop hearing each other).
 */
import { performance } from 'node:perf_hooks'
import type { PingMessage, PongMessage } from '@distswarm/protocol'
import { TokenBucket } from './rate.js'
import { StallCheck } from './stall.js'

/** A ping this often (and one as soon as the connection is ready). */
export const PING_INTERVAL_MS = 5_000
/**
 * A remote that answers pings but has sent nothing for this long is gone
 * (unplugged, partitioned, frozen) even with nothing of ours owed: the
 * connection is closed, so the box is dialled again once it is back
 * instead of meeting a TCP connection stuck in retransmission back-off
 * (our pings, unacknowledged meanwhile, back it off to tens of seconds).
 */
export const IDLE_DEAD_MS = 15_000
/** Pings unanswered in a row after which the remote is taken for an agent without Ping (it answers UNKNOWN_TYPE), and no longer asked. */
export const MAX_UNANSWERED = 3
/**
 * Round trips kept: RTT and clock offset come from the shortest of them. A
 * pong queued behind a transfer's data comes back late; the shortest round
 * trip is the path's, and its clock reading the least blurred (NTP's clock filter).
 */
const SAMPLES = 8
/** Pings answered from one remote: a burst of this many, refilled at PINGS_PER_S; the rest are ignored. */
const PING_BURST = 8
const PINGS_PER_S = 4

export interface PingerInit {
  send: (msg: PingMessage | PongMessage) => void
  /** A new round trip was measured; the estimates changed. */
  onSample?: () => void
  intervalMs?: number
  /** Ms since the remote last sent anything. With `dead`: the idle watch (IDLE_DEAD_MS). */
  silentMs?: () => number
  /** The remote, which answered pings before, sent nothing for `idleDeadMs`. */
  dead?: (silentMs: number) => void
  /** Default IDLE_DEAD_MS. */
  idleDeadMs?: number
  /** Wall clock (ms since the epoch) and a monotonic clock (ms), for tests. */
  now?: () => number
  monotonic?: () => number
}

interface Sample { rttMs: number, offsetMs: number }

export class Pinger {
  private readonly init: PingerInit
  private readonly now: () => number
  private readonly monotonic: () => number
  private readonly bucket: TokenBucket
  private timer: NodeJS.Timeout | null = null
  private nextId = 1
  private out: { id: number, sentAt: number, sentWall: number } | null = null
  private unanswered = 0
  private readonly samples: Sample[] = []
  private stopped = false
  private readonly ticks: StallCheck

  constructor (init: PingerInit) {
    this.init = init
    this.now = init.now ?? Date.now
    this.monotonic = init.monotonic ?? (() => performance.now())
    this.bucket = new TokenBucket(PING_BURST, PINGS_PER_S, this.now)
    this.ticks = new StallCheck(init.intervalMs ?? PING_INTERVAL_MS)
  }

  /** Sends the first ping, then one every interval. Idempotent. */
  start (): void {
    if (this.timer || this.stopped) return
    this.tick()
    this.timer = setInterval(() => this.tick(), this.init.intervalMs ?? PING_INTERVAL_MS)
    this.timer.unref()
  }

  stop (): void {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  /** The shortest recent round trip in ms (0.1 ms steps); null before the first pong. */
  get rttMs (): number | null {
    const best = this.best()
    return best ? Math.round(best.rttMs * 10) / 10 : null
  }

  /** How far the remote's clock is ahead of ours (negative: behind), in whole ms; null before the first pong. */
  get clockOffsetMs (): number | null {
    const best = this.best()
    return best ? Math.round(best.offsetMs) : null
  }

  /** The remote answers pings: false until its first pong. */
  get answered (): boolean {
    return this.samples.length > 0
  }

  private best (): Sample | null {
    let best: Sample | null = null
    for (const s of this.samples) if (!best || s.rttMs < best.rttMs) best = s
    return best
  }

  private tick (): void {
    // A tick held up by our own event loop: silence proves nothing now.
    const onTime = !this.ticks.stalled(this.monotonic())
    if (onTime && this.answered && this.init.silentMs && this.init.dead) {
      const silent = this.init.silentMs()
      if (silent >= (this.init.idleDeadMs ?? IDLE_DEAD_MS)) {
        this.stop()
        this.init.dead(silent)
        return
      }
    }
    if (this.out && ++this.unanswered >= MAX_UNANSWERED && !this.answered) {
      // An older agent: it answered each ping with UNKNOWN_TYPE. Stop asking.
      this.stop()
      return
    }
    const id = this.nextId++
    if (this.nextId > 0xffffffff) this.nextId = 1
    this.out = { id, sentAt: this.monotonic(), sentWall: this.now() }
    this.init.send({ type: 'ping', id, time: this.out.sentWall })
  }

  /**
   * A ping outside the schedule, only to make the remote answer (liveness.ts
   * on TCP): its answer is bytes from a live remote, not a sample.
   */
  poke (): void {
    const id = this.nextId++
    if (this.nextId > 0xffffffff) this.nextId = 1
    this.init.send({ type: 'ping', id, time: this.now() })
  }

  /** A ping from the remote: answered at once, unless it pings faster than anyone needs to. */
  onPing (msg: PingMessage): void {
    if (!this.bucket.take()) return
    this.init.send({ type: 'pong', id: msg.id, time: this.now() })
  }

  onPong (msg: PongMessage): void {
    const out = this.out
    if (!out || msg.id !== out.id) return // late, or not ours
    this.out = null
    this.unanswered = 0
    const rttMs = Math.max(0, this.monotonic() - out.sentAt)
    // The remote read its clock about halfway through the round trip.
    this.samples.push({ rttMs, offsetMs: msg.time - (out.sentWall + rttMs / 2) })
    if (this.samples.length > SAMPLES) this.samples.shift()
    this.init.onSample?.()
  }
}

import { afterEach, describe, expect, it, vi } from 'vitest'
import { connect } from 'node:net'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { decodeMessage, encodeMessage, FrameDecoder, PROTOCOL_VERSION, type Message, type PingMessage, type PongMessage } from '@distswarm/protocol'
import { createKeyPair, generateNetworkKey, membershipProof } from '../src/index.js'
import { IDLE_DEAD_MS, MAX_UNANSWERED, Pinger, PING_INTERVAL_MS } from '../src/ping.js'
import { captureLogger, MemorySource, startSwarm, tempDir, until } from './helpers.js'

/** A Pinger on clocks the test moves. */
function pinger () {
  const clock = { wall: 1_764_480_000_000, mono: 1000 }
  const sent: Array<PingMessage | PongMessage> = []
  const p = new Pinger({ send: (m) => sent.push(m), now: () => clock.wall, monotonic: () => clock.mono })
  return { p, sent, clock, pass: (ms: number) => { clock.wall += ms; clock.mono += ms } }
}

afterEach(() => { vi.useRealTimers() })

describe('Pinger', () => {
  it('measures the round trip and the remote clock, from the shortest recent round trip', () => {
    const { p, sent, clock, pass } = pinger()
    p.start()
    expect(p.rttMs).toBeNull()
    expect(p.clockOffsetMs).toBeNull()
    const first = sent[0] as PingMessage
    expect(first).toEqual({ type: 'ping', id: 1, time: clock.wall })
    // The remote, 90 s ahead, reads its clock 2 ms in; the pong is back after 4 ms.
    pass(2)
    const remote = clock.wall + 90_000
    pass(2)
    p.onPong({ type: 'pong', id: 1, time: remote })
    expect(p.rttMs).toBe(4)
    expect(p.clockOffsetMs).toBe(90_000)
    p.stop()
  })

  it('takes the shortest round trip of the recent ones: a pong queued behind a transfer does not count', () => {
    vi.useFakeTimers()
    const { p, sent, clock, pass } = pinger()
    p.start()
    pass(2)
    p.onPong({ type: 'pong', id: 1, time: clock.wall - 501 })
    vi.advanceTimersByTime(PING_INTERVAL_MS)
    pass(300) // stuck behind data
    p.onPong({ type: 'pong', id: (sent.at(-1) as PingMessage).id, time: clock.wall - 150 })
    expect(p.rttMs).toBe(2)
    expect(p.clockOffsetMs).toBe(-500)
    // A late pong, or one for a ping never sent, is ignored.
    p.onPong({ type: 'pong', id: 999, time: 0 })
    expect(p.rttMs).toBe(2)
    p.stop()
  })

  it('stops asking an older agent that never answers (it says UNKNOWN_TYPE)', () => {
    vi.useFakeTimers()
    const { p, sent } = pinger()
    p.start()
    vi.advanceTimersByTime(PING_INTERVAL_MS * (MAX_UNANSWERED + 5))
    expect(sent.filter((m) => m.type === 'ping')).toHaveLength(MAX_UNANSWERED)
    expect(p.rttMs).toBeNull()
  })

  it('closes on a remote that answered pings and then fell silent for IDLE_DEAD_MS (a cut link), not sooner', () => {
    vi.useFakeTimers()
    const clock = { mono: 1000, heard: 1000 }
    const deaths: number[] = []
    const sent: Array<PingMessage | PongMessage> = []
    const p = new Pinger({ send: (m) => sent.push(m), monotonic: () => clock.mono, silentMs: () => clock.mono - clock.heard, dead: (ms) => deaths.push(ms) })
    p.start()
    p.onPong({ type: 'pong', id: 1, time: Date.now() })
    // Silence from here; the ticks run on time.
    for (let t = PING_INTERVAL_MS; t < IDLE_DEAD_MS; t += PING_INTERVAL_MS) {
      clock.mono += PING_INTERVAL_MS
      vi.advanceTimersByTime(PING_INTERVAL_MS)
    }
    expect(deaths).toEqual([])
    clock.mono += PING_INTERVAL_MS
    vi.advanceTimersByTime(PING_INTERVAL_MS)
    expect(deaths).toEqual([IDLE_DEAD_MS])
    // Dead once: no more pings, no second verdict.
    const pings = sent.length
    clock.mono += 10 * PING_INTERVAL_MS
    vi.advanceTimersByTime(10 * PING_INTERVAL_MS)
    expect(sent.length).toBe(pings)
    expect(deaths).toHaveLength(1)
  })

  it('does not blame the remote for silence while our own event loop was held up, nor a remote that never answered', () => {
    vi.useFakeTimers()
    const clock = { mono: 1000 }
    const deaths: number[] = []
    const p = new Pinger({ send: () => {}, monotonic: () => clock.mono, silentMs: () => clock.mono - 1000, dead: (ms) => deaths.push(ms) })
    p.start()
    p.onPong({ type: 'pong', id: 1, time: Date.now() })
    // One tick comes 30 s late: what the remote sent meanwhile is not read yet.
    clock.mono += 30_000
    vi.advanceTimersByTime(PING_INTERVAL_MS)
    expect(deaths).toEqual([])
    p.stop()
    // A remote that never answered a ping is an older agent: no idle verdict.
    const q = new Pinger({ send: () => {}, monotonic: () => clock.mono, silentMs: () => 60_000, dead: (ms) => deaths.push(ms) })
    q.start()
    for (let i = 0; i < MAX_UNANSWERED + 2; i++) { clock.mono += PING_INTERVAL_MS; vi.advanceTimersByTime(PING_INTERVAL_MS) }
    expect(deaths).toEqual([])
    q.stop()
  })

  it('answers pings at once with its clock, a few a second at most', () => {
    const { p, sent, clock } = pinger()
    for (let id = 1; id <= 50; id++) p.onPing({ type: 'ping', id, time: 0 })
    const pongs = sent.filter((m) => m.type === 'pong')
    expect(pongs.length).toBeGreaterThanOrEqual(1)
    expect(pongs.length).toBeLessThanOrEqual(9)
    expect(pongs[0]).toEqual({ type: 'pong', id: 1, time: clock.wall })
  })
})

describe('ping between agents', () => {
  it('gives a TCP (static) peer a round-trip time and a clock offset, on both sides', async () => {
    const networkKey = generateNetworkKey()
    const a = await startSwarm([], { networkKey, source: new MemorySource(await tempDir()), name: 'a' })
    const b = await startSwarm([], { networkKey, source: new MemorySource(await tempDir()), name: 'b', staticPeers: [{ host: '127.0.0.1', port: a.dataPort! }] })
    await until(() => [a, b].every((s) => s.readyPeers()[0]?.rttMs != null), 15_000, 'a round trip on both sides')
    for (const s of [a, b]) {
      const [p] = s.readyPeers()
      expect(p!.transport).toBe('tcp')
      expect(p!.rttMs).toBeGreaterThanOrEqual(0)
      // one machine, one clock: apart by no more than the round trip
      expect(Math.abs(p!.clockOffsetMs!)).toBeLessThanOrEqual(Math.max(5, p!.rttMs!))
    }
    expect(a.problems()).toEqual([])
  })

  it('a member whose clock is minutes off: a warn line and a problem naming it', async () => {
    const networkKey = generateNetworkKey()
    const log = captureLogger()
    const a = await startSwarm([], { networkKey, source: new MemorySource(await tempDir()), name: 'a', logger: log })
    // A member 15 minutes ahead, over a real secret stream to a's data port, answering pings with its clock.
    const stream = new NoiseSecretStream(true, connect({ host: '127.0.0.1', port: a.dataPort! }), { keyPair: createKeyPair() })
    stream.on('error', () => {})
    expect(await stream.opened).toBe(true)
    const decoder = new FrameDecoder()
    const got: Message[] = []
    stream.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        const m = decodeMessage(f)
        got.push(m)
        if (m.type === 'ping') stream.write(encodeMessage({ type: 'pong', id: m.id, time: Date.now() + 15 * 60_000 }))
      }
    })
    stream.write(encodeMessage({
      type: 'hello', version: PROTOCOL_VERSION, name: 'ahead', dataPort: 0, dataOnly: false, seeder: false, proof: membershipProof(networkKey, stream.handshakeHash, stream.publicKey)
    }))
    await until(() => a.problems().some((p) => p.event === 'peer.clock-skew'), 15_000, 'the clock problem')
    const warned = log.lines.filter((l) => l.level === 'warn' && l.event === 'peer.clock-skew')
    expect(warned).toHaveLength(1)
    expect(warned[0]!.fields).toMatchObject({ address: '127.0.0.1', cause: expect.stringMatching(/clock is 900 s ahead of ours.*NTP/) })
    expect(a.readyPeers()[0]!.clockOffsetMs).toBeGreaterThan(14 * 60_000)
    stream.destroy()
  })
})

// Issue 16, swarming on loopback: downloaders serve each other the verified
// pieces of a file they are still downloading (PieceMap, then Requests), a
// partial holder whose relayed piece fails its hash is blamed and routed
// around, and piece maps that flood or name files no one holds are bounded.
import { describe, expect, it, onTestFinished } from 'vitest'
import { createHash } from 'node:crypto'
import { open, readFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { encodeMessage, toHex } from '@distswarm/protocol'
import { createKeyPair, DistSwarm, sourcesOf, type LocalFile, type PieceSource, type Sink } from '../src/index.js'
import { captureLogger, MemorySource, random, rawHello, rawPeer, startSwarm, tempDir, testnet, until } from './helpers.js'

const PIECE = 64 * 1024
const PIECES = 16

/** A MemorySource that answers HashRequests, as the store does. */
class HashingSource extends MemorySource {
  async hashPieces (blake2b: Uint8Array, offset: number, length: number, pieceSize: number): Promise<Buffer[] | undefined> {
    const file = this.get(blake2b)
    if (!file) return undefined
    const data = await readFile(file.path)
    const out: Buffer[] = []
    for (let at = offset; at < offset + length; at += pieceSize) out.push(createHash('blake2b512').update(data.subarray(at, Math.min(offset + length, at + pieceSize))).digest().subarray(0, 32))
    return out
  }
}

/**
 * A partial file as the store's Download keeps it: pieces written where
 * they belong, gaps allowed. `gate` may hold a write back (a test's way to
 * keep a downloader partial); `corrupt` flips the bytes it stores (a disk
 * that lies behind its owner's back).
 */
class FileSink implements Sink {
  readonly allowGaps = true
  written = 0
  count = 0
  readonly pieces = new Set<number>()
  gate: (offset: number) => Promise<void> | undefined = () => undefined
  corrupt = false
  /** The swarm said peers read from this partial file (so its final check must read it whole). */
  distrusted = false
  /** Bytes hashPieces() read back. */
  readBack = 0
  constructor (readonly tempPath: string, private readonly fh: FileHandle) {}

  static async create (dir: string, name: string): Promise<FileSink> {
    const path = join(dir, name)
    const fh = await open(path, 'w+')
    onTestFinished(() => fh.close())
    return new FileSink(path, fh)
  }

  async write (chunks: readonly Uint8Array[], offset: number): Promise<void> {
    await this.gate(offset)
    let data = Buffer.concat(chunks)
    if (this.corrupt) data = Buffer.from(data.map((b) => b ^ 0xff))
    await this.fh.write(data, 0, data.length, offset)
    this.written = Math.max(this.written, offset + data.length)
    this.pieces.add(offset / PIECE)
    this.count++
  }

  async truncate (offset: number): Promise<void> {
    await this.fh.truncate(offset)
    this.written = offset
  }

  distrust (): void {
    this.distrusted = true
  }

  /** Piece hashes of what the file holds (as the store's Download reads its partial file back). */
  async hashPieces (offset: number, length: number, pieceSize: number): Promise<Buffer[]> {
    this.readBack += length
    const data = Buffer.alloc(length)
    await this.fh.read(data, 0, length, offset)
    const out: Buffer[] = []
    for (let at = 0; at < length; at += pieceSize) out.push(createHash('blake2b512').update(data.subarray(at, Math.min(length, at + pieceSize))).digest().subarray(0, 32))
    return out
  }

  async bytes (): Promise<Buffer> {
    await this.fh.sync()
    return await readFile(this.tempPath)
  }
}

/** A write gate that holds every write for which `hold` says so, until open() is called. */
function gate (hold: (offset: number) => boolean): { fn: (offset: number) => Promise<void> | undefined, open: () => void } {
  let release!: () => void
  const opened = new Promise<void>((resolve) => { release = resolve })
  return { fn: (offset) => hold(offset) ? opened : undefined, open: () => release() }
}

/** A sink whose writes are held while `hold` says so of it, until hold.open(). */
async function heldSink (dir: string, name: string, hold: (sink: FileSink) => boolean): Promise<{ sink: FileSink, hold: ReturnType<typeof gate> }> {
  const sink = await FileSink.create(dir, name)
  const g = gate(() => hold(sink))
  sink.gate = g.fn
  return { sink, hold: g }
}

const from = (pieces: readonly PieceSource[], key: string): number => pieces.filter((p) => p.source === key).length

async function seeded (bootstrap: Awaited<ReturnType<typeof testnet>>, networkKey: Buffer, data: Buffer): Promise<{ seeder: DistSwarm, file: LocalFile }> {
  const source = new HashingSource(await tempDir())
  const file = await source.add('swarm.tar.xz', data)
  const seeder = await startSwarm(bootstrap, { networkKey, source, seeder: true, name: 'seeder', rangeSize: PIECE })
  return { seeder, file }
}

describe('swarming on loopback', () => {
  it('two partial holders relay verified pieces to each other, piece by piece; pieces written before anyone else wanted the file are checked from disk once someone does', { timeout: 90_000 }, async () => {
    const bootstrap = await testnet()
    const networkKey = Buffer.from(random(32))
    const data = random(PIECE * PIECES)
    const { seeder, file } = await seeded(bootstrap, networkKey, data)
    const hex = toHex(file.blake2b)
    const dir = await tempDir()
    // One piece in memory at a time, so what each holds is on disk (and in its map).
    const a = await startSwarm(bootstrap, { networkKey, source: new MemorySource(dir), name: 'a', rangeSize: PIECE, maxAhead: 1 })
    const b = await startSwarm(bootstrap, { networkKey, source: new MemorySource(dir), name: 'b', rangeSize: PIECE, maxAhead: 1 })
    await until(() => [a, b].every((s) => s.find({ blake2b: hex }).length === 1) && a.readyPeers().length === 2 && b.readyPeers().length === 2, 30_000, 'the three connected')

    // a gets half the file alone, and is held there: no one else wants the file, so nothing is hashed or offered.
    const { sink: sinkA, hold: holdA } = await heldSink(dir, 'a.part', (s) => s.count >= PIECES / 2)
    const downloadA = a.download(file, sinkA)
    await until(() => sinkA.count === PIECES / 2, 30_000, 'a to hold half the file')
    expect(b.partialHolders(hex)).toEqual([])
    expect(sinkA.readBack).toBe(0)

    // b starts (its first write held): a reads its half back, checks it and offers it.
    const sinkB = await FileSink.create(dir, 'b.part')
    const first = gate(() => true)
    const holdB = gate(() => sinkB.count >= PIECES - 1)
    sinkB.gate = async (offset) => { await first.fn(offset); await holdB.fn(offset) }
    const downloadB = b.download(file, sinkB)
    await until(() => b.partialHolders(hex).some((h) => h.pieces === PIECES / 2), 15_000, 'b to learn a\'s piece map')
    expect(sinkA.readBack).toBe(PIECES / 2 * PIECE)

    // b takes a's half from a (the seeder is not asked for pieces a partial holder has, unless it is slower), the rest from the seeder; its last write is held.
    first.open()
    await until(() => sinkB.count === PIECES - 1, 30_000, 'b to hold all but one piece')
    await until(() => a.partialHolders(hex).some((h) => h.pieces === PIECES - 1), 15_000, 'a to learn b\'s piece map')

    // a goes on: what it lacks, b has (but one piece), and b is asked first.
    holdA.open()
    const piecesA = await downloadA
    holdB.open()
    const piecesB = await downloadB

    expect((await sinkA.bytes()).equals(data)).toBe(true)
    expect((await sinkB.bytes()).equals(data)).toBe(true)
    const keyA = toHex(a.publicKey)
    const keyB = toHex(b.publicKey)
    expect(from(piecesA, keyB)).toBeGreaterThan(0)
    expect(from(piecesB, keyA)).toBeGreaterThan(0)
    // Only verified pieces were served, and counted (a hedge cancelled under way counts what it sent).
    expect(b.relayedBytes()).toBeGreaterThanOrEqual(from(piecesA, keyB) * PIECE)
    expect(a.relayedBytes()).toBeGreaterThanOrEqual(from(piecesB, keyA) * PIECE)
    expect(seeder.relayedBytes()).toBe(0)
    // Both partial files were read by the other: each download's final check is to read its file whole.
    expect([sinkA.distrusted, sinkB.distrusted]).toEqual([true, true])
    // Ended downloads withdraw their maps.
    await until(() => a.partialHolders(hex).length === 0 && b.partialHolders(hex).length === 0, 15_000, 'maps withdrawn')
  })

  it('does not wait for the piece hashes: the pieces that landed before them are checked when they come, then relayed', { timeout: 90_000 }, async () => {
    const bootstrap = await testnet()
    const networkKey = Buffer.from(random(32))
    const data = random(PIECE * PIECES)
    const source = new HashingSource(await tempDir())
    const file = await source.add('swarm.tar.xz', data)
    // The seeder's answer to the HashRequest is held back until the test lets it go.
    const answer = gate(() => true)
    const hashPieces = source.hashPieces.bind(source)
    source.hashPieces = async (...args) => { await answer.fn(0); return await hashPieces(...args) }
    await startSwarm(bootstrap, { networkKey, source, seeder: true, name: 'seeder', rangeSize: PIECE })
    const hex = toHex(file.blake2b)
    const dir = await tempDir()
    const a = await startSwarm(bootstrap, { networkKey, source: new MemorySource(dir), name: 'a', rangeSize: PIECE, maxAhead: 1 })
    const b = await startSwarm(bootstrap, { networkKey, source: new MemorySource(dir), name: 'b', rangeSize: PIECE, maxAhead: 1 })
    await until(() => [a, b].every((s) => s.find({ blake2b: hex }).length === 1) && b.readyPeers().length === 2, 30_000, 'the three connected')

    // b downloads it too (its writes held): a's pieces are worth checking as they land.
    const { sink: sinkB, hold: holdB } = await heldSink(dir, 'b.part', () => true)
    const downloadB = b.download(file, sinkB)
    await until(() => a.downloading(hex).includes(toHex(b.publicKey)), 15_000, 'a to learn that b downloads the file')

    const { sink: sinkA, hold: holdA } = await heldSink(dir, 'a.part', (s) => s.count >= PIECES / 2)
    const downloadA = a.download(file, sinkA)
    // Bytes flowed while the hashes were held back; nothing is offered to others unchecked.
    await until(() => sinkA.count === PIECES / 2, 30_000, 'a to hold half the file without the hashes')
    expect(b.partialHolders(hex)).toEqual([])
    answer.open()
    await until(() => b.partialHolders(hex).some((h) => h.pieces === PIECES / 2), 15_000, 'b to learn a\'s map of the pieces checked late')
    // Checked as they landed, not read back.
    expect(sinkA.readBack).toBe(0)
    holdA.open()
    holdB.open()
    await Promise.all([downloadA, downloadB])
    expect((await sinkA.bytes()).equals(data)).toBe(true)
    expect((await sinkB.bytes()).equals(data)).toBe(true)
  })

  it('blames a partial holder whose relayed piece fails its hash, and takes the piece elsewhere', { timeout: 90_000 }, async () => {
    const bootstrap = await testnet()
    const networkKey = Buffer.from(random(32))
    const data = random(PIECE * PIECES)
    const { file } = await seeded(bootstrap, networkKey, data)
    const hex = toHex(file.blake2b)
    const dir = await tempDir()
    const liar = await startSwarm(bootstrap, { networkKey, source: new MemorySource(dir), name: 'liar', rangeSize: PIECE, maxAhead: 1 })
    const b = await startSwarm(bootstrap, { networkKey, source: new MemorySource(dir), name: 'b', rangeSize: PIECE, maxAhead: 1 })
    await until(() => [liar, b].every((s) => s.find({ blake2b: hex }).length === 1) && b.readyPeers().length === 2, 30_000, 'connected')

    // b downloads it too, its first write held: the liar's pieces are checked as they land.
    const faults: Array<{ key: string, why: string }> = []
    const { sink: sinkB, hold: holdB } = await heldSink(dir, 'b.part', () => true)
    const downloadB = b.download(file, sinkB, { onFault: (key, why) => faults.push({ key, why }) })
    await until(() => liar.downloading(hex).includes(toHex(b.publicKey)), 15_000, 'the liar to learn that b downloads the file')

    // The liar's pieces matched their hashes as they arrived; its disk then keeps other bytes, which it serves.
    const { sink: sinkL, hold: holdL } = await heldSink(dir, 'liar.part', (s) => s.count >= PIECES / 2)
    sinkL.corrupt = true
    const downloadL = liar.download(file, sinkL).catch(() => [])
    await until(() => sinkL.count === PIECES / 2, 30_000, 'the liar to hold half')
    await until(() => b.partialHolders(hex).some((h) => h.pieces === PIECES / 2), 15_000, 'b to learn the liar\'s map')

    holdB.open()
    const pieces = await downloadB
    holdL.open()
    await downloadL

    const keyL = toHex(liar.publicKey)
    expect(faults.map((f) => f.key)).toEqual([keyL])
    expect(faults[0]!.why).toMatch(/did not match its piece hash/)
    expect(sourcesOf(pieces)).toEqual([toHex(b.readyPeers().find((p) => p.name === 'seeder')!.publicKey)])
    expect((await sinkB.bytes()).equals(data)).toBe(true)
    // The liar's partial file was read by b; b's own was read by no one, so its digests as the bytes landed stand.
    expect([sinkL.distrusted, sinkB.distrusted]).toEqual([true, false])
  })

  it('refuses a relay upload limit below 1 (ERR_INVALID_OPTION)', async () => {
    const init = { networkKey: random(32), keyPair: createKeyPair(), bootstrap: [], source: new MemorySource(await tempDir()), maxRelayUploads: 0 }
    expect(() => new DistSwarm(init)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }))
  })

  it('bounds piece maps: one for a file no member holds is ignored with a warning; a flood cuts the sender off', { timeout: 60_000 }, async () => {
    const bootstrap = await testnet()
    const networkKey = Buffer.from(random(32))
    const logger = captureLogger()
    const target = await startSwarm(bootstrap, { networkKey, source: new MemorySource(await tempDir()), logger, limits: { maxPieceMapDeltasPerSecond: 5 } })
    const raw = await rawPeer(bootstrap, target.topic)
    rawHello(raw.conn, networkKey)
    await until(() => target.readyPeers().length === 1, 15_000, 'the raw peer admitted')
    const digest = random(64)
    const map = (added: number[]): Buffer => encodeMessage({ type: 'piece-map', blake2b: digest, size: 8 * PIECE, pieceSize: PIECE, reset: false, have: Buffer.alloc(0), added })
    raw.conn.write(map([0]))
    await until(() => logger.lines.some((l) => l.event === 'relay.map-unknown-file'), 10_000, 'the warning')
    expect(target.partialHolders(toHex(digest))).toEqual([])
    expect(raw.isClosed()).toBe(false)
    // 5 a second, bursts of 10: a sender of 40 at once is over its budget.
    for (let i = 0; i < 40; i++) raw.conn.write(map([i % 8]))
    await until(() => raw.isClosed(), 10_000, 'the flooder cut off')
    expect(logger.lines.find((l) => l.event === 'peer.over-budget')?.fields.budget).toBe('piece-map-deltas')
  })
})

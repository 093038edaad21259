import { describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  buildSigningPayload, decodeMessage, encodeMessage, MAX_BUILD_BYTES, MAX_BUILDS_BATCH, MAX_FRAME_SIZE, toHex, type BuildsMessage, type Code
} from '@distswarm/protocol'
import { createKeyPair, generateNetworkKey, signBuild, topicOf, verifyBuild, type BuildAd, type KeyPair, type LocalFile } from '../src/index.js'
import { BUILD_OVERHEAD_BYTES, BuildBook, type BuildsLink } from '../src/builds.js'
import { BufferSink, captureLogger, MemorySource, random, rawHello, rawPeer, startSwarm, tempDir, testnet, until, type LogLine } from './helpers.js'

const CHOST = 'x86_64-pc-linux-gnu'
const blake2b = (data: Buffer): Buffer => createHash('blake2b512').update(data).digest()

/** A signed build of `cpv` (its file's bytes made up unless given), with a stanza as Portage writes it. */
function build (keyPair: KeyPair, cpv: string, use = '', extra: Record<string, string> = {}, data = random(64)): BuildAd {
  const fields = {
    CPV: cpv, BUILD_ID: '1', BUILD_TIME: '1767225600', USE: use, EAPI: '8', SLOT: '0', CHOST, SIZE: String(data.length),
    MD5: createHash('md5').update(data).digest('hex'), SHA1: createHash('sha1').update(data).digest('hex'), ...extra
  }
  return signBuild({ blake2b: blake2b(data), size: data.length, group: CHOST, fields }, keyPair)
}

/** Many builds, each with a long DESC so that they fill several messages. */
const many = (keyPair: KeyPair, n: number, desc = 0): BuildAd[] =>
  Array.from({ length: n }, (_, i) => build(keyPair, `dev-libs/lib${i}-1.0`, 'ssl', desc ? { DESC: 'd'.repeat(desc) } : {}))

const codes = (lines: LogLine[], event: string): unknown[] => lines.filter((l) => l.event === event).map((l) => l.fields.code)

describe('signBuild and verifyBuild', () => {
  const keyPair = createKeyPair()

  it('sign with the agent key, and the ad verifies, also after a trip over the wire (a relay)', () => {
    const ad = build(keyPair, 'dev-db/mariadb-11.4.5', '-minimal perl')
    expect(ad.builder.equals(keyPair.publicKey)).toBe(true)
    expect(ad.signature.byteLength).toBe(64)
    expect(verifyBuild(ad)).toBe(true)
    const relayed = decodeMessage(encodeMessage({ type: 'builds', reset: false, added: [ad], removed: [] }).subarray(4)) as BuildsMessage
    expect(relayed.added[0]).toEqual(ad)
    expect(verifyBuild(relayed.added[0]!)).toBe(true)
  })

  it('refuses an ad with any field changed, added or removed, another builder or a flipped signature bit', () => {
    const ad = build(keyPair, 'dev-db/mariadb-11.4.5', 'minimal')
    const flipped = Buffer.from(ad.signature)
    flipped[10]! ^= 1
    const tampered: BuildAd[] = [
      { ...ad, fields: { ...ad.fields, USE: '-minimal' } },
      { ...ad, fields: { ...ad.fields, PATH: 'dev-db/mariadb/mariadb-11.4.5-1.gpkg.tar' } },
      { ...ad, fields: Object.fromEntries(Object.entries(ad.fields).filter(([k]) => k !== 'MD5')) },
      { ...ad, size: ad.size + 1 },
      { ...ad, group: 'x86_64-native' },
      { ...ad, blake2b: random(64) },
      { ...ad, builder: createKeyPair().publicKey },
      { ...ad, signature: flipped }
    ]
    for (const t of tampered) expect(verifyBuild(t)).toBe(false)
    // Garbage is false, not an exception.
    expect(verifyBuild({ ...ad, builder: random(31) })).toBe(false)
    expect(verifyBuild({ ...ad, size: -1 })).toBe(false)
    expect(verifyBuild({} as BuildAd)).toBe(false)
  })

  it('refuses to sign an ad past a bound (ERR_BAD_BUILD), or with no key pair (ERR_INVALID_OPTION)', () => {
    expect(() => build(keyPair, 'a/b-1', '', { DESC: 'x'.repeat(MAX_BUILD_BYTES) })).toThrow(expect.objectContaining({ code: 'ERR_BAD_BUILD' }))
    expect(() => build(keyPair, 'a/b-1', '', { 'NOT A KEY': 'x' })).toThrow(expect.objectContaining({ code: 'ERR_BAD_BUILD' }))
    expect(() => signBuild({ blake2b: random(64), size: 1, group: CHOST, fields: {} }, { publicKey: random(32), secretKey: random(10) })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }))
  })
})

/** A connection that keeps what the book sends, as frames. */
class Link implements BuildsLink {
  readonly frames: Buffer[] = []
  closed = false
  constructor (readonly label: string, readonly publicKey: Buffer = random(32)) {}
  /** Set: the next sendBuilds reports a full buffer, and writable() waits for release(). */
  clogged = false
  private waiters: Array<() => void> = []
  sendBuilds (msg: Omit<BuildsMessage, 'type'>): boolean {
    this.frames.push(encodeMessage({ type: 'builds', ...msg }))
    return !this.clogged
  }

  writable (): Promise<void> { return new Promise((resolve) => this.waiters.push(resolve)) }
  release (): void { this.clogged = false; for (const w of this.waiters.splice(0)) w() }
  get messages (): BuildsMessage[] { return this.frames.map((f) => decodeMessage(f.subarray(4)) as BuildsMessage) }
}

function book (init: { maxBuilds?: number, maxBytes?: number, maxPoolBytes?: number } = {}) {
  const logger = captureLogger()
  let changes = 0
  const b = new BuildBook<Link>({ logger, maxBuilds: init.maxBuilds ?? 100_000, maxBytes: init.maxBytes ?? 1 << 30, maxPoolBytes: init.maxPoolBytes, changed: () => { changes++ } })
  return { book: b, lines: logger.lines, changes: () => changes }
}

/** Hands every message `from` sent so far to `to`, as coming from `as`. */
function deliver (from: Link, to: BuildBook<Link>, as: Link, since = 0): number {
  for (const m of from.messages.slice(since)) to.onMessage(as, m)
  return from.frames.length
}

describe('BuildBook', () => {
  const keyPair = createKeyPair()

  it('splits a large set into messages under the bounds, the first with reset; a change meanwhile follows as a delta', async () => {
    const ads = many(keyPair, 2500, 1000) // ~2.5 MiB of stanzas
    const { book: sender } = book()
    const { book: receiver } = book()
    const link = new Link('receiver')
    const from = new Link('sender', keyPair.publicKey)
    sender.set(ads)
    sender.attach(link)
    // While the full set goes out in batches, the set changes.
    const later = build(keyPair, 'dev-db/mariadb-11.4.5', 'minimal')
    sender.set([...ads.slice(1), later])
    await until(() => link.messages.some((m) => m.added.some((a) => a.fields.CPV === 'dev-db/mariadb-11.4.5')), 10_000, 'the delta')
    const messages = link.messages
    expect(messages.length).toBeGreaterThanOrEqual(3)
    expect(messages.map((m) => m.reset)).toEqual([true, ...messages.slice(1).map(() => false)])
    for (const f of link.frames) expect(f.byteLength).toBeLessThan(MAX_FRAME_SIZE)
    for (const m of messages) expect(m.added.length + m.removed.length).toBeLessThanOrEqual(MAX_BUILDS_BATCH)
    deliver(link, receiver, from)
    const rows = receiver.rows(() => true)
    expect(rows.map((r) => r.ad.fields.CPV).sort()).toEqual([...ads.slice(1), later].map((a) => a.fields.CPV).sort())
    expect(rows.every((r) => r.holders.length === 1 && r.holders[0] === from)).toBe(true)
  })

  it('waits for a backed-up connection to drain before the next batch', async () => {
    const { book: sender } = book()
    const link = new Link('slow reader')
    link.clogged = true
    sender.set(many(keyPair, 2000))
    sender.attach(link)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(link.frames).toHaveLength(1)
    link.release()
    await until(() => link.messages.reduce((n, m) => n + m.added.length, 0) === 2000, 5000, 'the rest')
  })

  it('sends an empty set as one reset message, and nothing more when the set does not change', async () => {
    const { book: sender } = book()
    const link = new Link('r')
    sender.attach(link)
    sender.set([])
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(link.messages).toEqual([{ type: 'builds', reset: true, added: [], removed: [] }])
    const ad = build(keyPair, 'a/b-1')
    sender.set([ad])
    sender.set([ad])
    await until(() => link.frames.length === 2, 5000, 'one delta')
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(link.messages.slice(1)).toEqual([{ type: 'builds', reset: false, added: [ad], removed: [] }])
    sender.set([])
    await until(() => link.frames.length === 3, 5000, 'the removal')
    expect(link.messages[2]).toEqual({ type: 'builds', reset: false, added: [], removed: [ad.blake2b] })
  })

  it('drops a forged entry (counted, a debug line), keeps the honest ones, and says when the builds changed', async () => {
    const { book: receiver, lines, changes } = book()
    const from = new Link('liar')
    const honest = build(keyPair, 'a/honest-1')
    const signed = build(keyPair, 'a/forged-1', 'minimal')
    const forged = { ...signed, fields: { ...signed.fields, USE: '-minimal' } }
    receiver.onMessage(from, { type: 'builds', reset: true, added: [honest, forged], removed: [] })
    expect(receiver.rows(() => true).map((r) => r.ad.fields.CPV)).toEqual(['a/honest-1'])
    expect(receiver.forged).toBe(1)
    expect(lines.filter((l) => l.event === 'builds.forged').map((l) => l.level)).toEqual(['debug'])
    await until(() => changes() === 1, 5000, 'the change event')
    // Without the check, the forged stanza is taken: the test must fail then.
    expect(receiver.holds(from, toHex(forged.blake2b))).toBe(false)
  })

  it('keeps at most maxBuilds of one peer and entries within the bounds; the rest are cut off with ERR_BUILDS_LIMIT and one warning', () => {
    const { book: receiver, lines } = book({ maxBuilds: 5 })
    const from = new Link('flood')
    const ads = many(keyPair, 8)
    receiver.onMessage(from, { type: 'builds', reset: true, added: ads, removed: [] })
    expect(receiver.rows(() => true)).toHaveLength(5)
    expect(receiver.refused).toBe(3)
    const warns = lines.filter((l) => l.level === 'warn')
    expect(warns.map((l) => [l.event, l.fields.code])).toEqual([['builds.cut-off', 'ERR_BUILDS_LIMIT' satisfies Code]])
    // A replacement of a kept build is no new build: it passes.
    const replaced = build(keyPair, ads[0]!.fields.CPV!, 'other', {}, random(64))
    receiver.onMessage(from, { type: 'builds', reset: false, added: [replaced], removed: [ads[0]!.blake2b] })
    expect(receiver.rows(() => true).map((r) => r.ad.fields.USE)).toContain('other')

    // An entry past a content bound (a sender's bug): ignored, the others kept.
    const { book: second, lines: lines2 } = book()
    const big = { ...build(keyPair, 'a/big-1'), fields: { CPV: 'a/big-1', DESC: 'x'.repeat(MAX_BUILD_BYTES) } }
    second.onMessage(from, { type: 'builds', reset: true, added: [big, ads[1]!], removed: [] })
    expect(second.rows(() => true).map((r) => r.ad.fields.CPV)).toEqual([ads[1]!.fields.CPV])
    expect(codes(lines2, 'builds.cut-off')).toEqual(['ERR_BUILDS_LIMIT'])

    // And the bytes of one peer's builds, together.
    const { book: third } = book({ maxBytes: 1000 })
    third.onMessage(from, { type: 'builds', reset: true, added: many(keyPair, 3, 400), removed: [] })
    expect(third.rows(() => true)).toHaveLength(1)
  })

  it('keeps the builds of all peers within the shared pool: past it new ones are ignored with ERR_BUILDS_LIMIT, shared ones cost nothing more, and a peer that leaves frees its part', () => {
    const ads = many(keyPair, 10)
    const each = buildSigningPayload(ads[0]!).byteLength + BUILD_OVERHEAD_BYTES
    // Room for 6 builds (they are all of one size): 4 of the first peer, 2 of the second, then full.
    const { book: receiver, lines } = book({ maxPoolBytes: 6 * each + each / 2 })
    const first = new Link('first')
    const second = new Link('second')
    receiver.onMessage(first, { type: 'builds', reset: true, added: ads.slice(0, 4), removed: [] })
    receiver.onMessage(second, { type: 'builds', reset: true, added: ads.slice(0, 8), removed: [] })
    // The second shares the first's 4 (no cost), takes 2 new ones, and is refused the last 2.
    expect(receiver.rows(() => true)).toHaveLength(6)
    expect(receiver.refused).toBe(2)
    expect(lines.filter((l) => l.level === 'warn').map((l) => [l.event, l.fields.code, l.fields.peer])).toEqual([['builds.cut-off', 'ERR_BUILDS_LIMIT', 'second']])
    // The second leaves: its 2 go, the first's 4 stay, and there is room for a third peer's 2 new ones.
    receiver.detach(second)
    receiver.onMessage(new Link('third'), { type: 'builds', reset: true, added: ads.slice(8, 10), removed: [] })
    expect(receiver.rows(() => true).map((r) => r.ad.fields.CPV).sort()).toEqual([...ads.slice(0, 4), ...ads.slice(8, 10)].map((a) => a.fields.CPV).sort())
    expect(receiver.refused).toBe(2)
  })

  it('advertises only ads that keep the bounds and verify, warning once per refused ad', async () => {
    const { book: sender, lines } = book({ maxBuilds: 3 })
    const good = build(keyPair, 'a/good-1')
    const signed = build(keyPair, 'a/bad-1')
    const forged = { ...signed, fields: { ...signed.fields, USE: 'evil' } }
    sender.set([good, forged, good])
    sender.set([good, forged])
    expect(sender.advertised).toBe(1)
    expect(codes(lines, 'builds.not-advertised')).toEqual(['ERR_BAD_SIGNATURE'])
    sender.set(many(keyPair, 5))
    expect(sender.advertised).toBe(3)
    expect(codes(lines, 'builds.too-many')).toEqual(['ERR_BUILDS_LIMIT'])
  })

  it('shows one row per file and builder: a second builder claiming the same file does not hide the first', () => {
    const { book: receiver } = book()
    const other = createKeyPair()
    const data = random(100)
    const honest = build(keyPair, 'a/b-1', '', {}, data)
    const claim = build(other, 'a/b-1', 'evil', {}, data)
    const builderLink = new Link('builder', keyPair.publicKey)
    const relay = new Link('relay')
    receiver.onMessage(builderLink, { type: 'builds', reset: true, added: [honest], removed: [] })
    receiver.onMessage(relay, { type: 'builds', reset: true, added: [claim], removed: [] })
    const rows = receiver.rows(() => true)
    expect(rows.map((r) => [toHex(r.ad.builder), r.holders.map((h) => h.label)]).sort()).toEqual([
      [toHex(keyPair.publicKey), ['builder']], [toHex(other.publicKey), ['relay']]
    ].sort())
    // The filter leaves peers out (the swarm's: ready and not banned).
    expect(receiver.rows((p) => p !== relay).map((r) => r.holders.map((h) => h.label))).toEqual([['builder']])
  })

  it('keeps the rows of every peer until the builds change, frozen so that no caller changes them for the others', () => {
    const { book: receiver } = book()
    const from = new Link('peer')
    receiver.onMessage(from, { type: 'builds', reset: true, added: many(keyPair, 3), removed: [] })
    const first = receiver.rows(() => true)
    expect(receiver.rows(() => true)).toEqual(first)
    expect(receiver.rows(() => true)[0]).toBe(first[0])
    expect(() => first[0]!.holders.push(from)).toThrow(TypeError)
    receiver.onMessage(from, { type: 'builds', reset: false, added: [], removed: [first[0]!.ad.blake2b] })
    expect(receiver.rows(() => true)).toHaveLength(2)
    // A filter that leaves a peer out is never served from (or into) the kept rows.
    expect(receiver.rows(() => false)).toEqual([])
    expect(receiver.rows(() => true)).toHaveLength(2)
  })
})

/** A source that serves a file by digest without listing it in its distfile inventory: a build. */
class BuildSource extends MemorySource {
  readonly builds = new Map<string, LocalFile>()
  async addBuild (name: string, data: Buffer): Promise<LocalFile> {
    const path = join(this.dir, name)
    await writeFile(path, data)
    const file = { name, path, size: data.length, blake2b: blake2b(data), sha512: Buffer.alloc(0) }
    this.builds.set(toHex(file.blake2b), file)
    return file
  }

  override get (d: Uint8Array): LocalFile | undefined { return super.get(d) ?? this.builds.get(toHex(d)) }

  async hashPieces (d: Uint8Array, offset: number, length: number, pieceSize: number): Promise<Buffer[] | undefined> {
    const file = this.get(d)
    if (!file) return undefined
    const data = await readFile(file.path)
    const pieces: Buffer[] = []
    for (let at = offset; at < offset + length; at += pieceSize) pieces.push(blake2b(data.subarray(at, Math.min(at + pieceSize, offset + length))).subarray(0, 32))
    return pieces
  }
}

describe('builds between swarms on a local testnet', () => {
  it('go in full on connect and as deltas after; download() fetches a build from a peer that advertises only the build', async () => {
    const bootstrap = await testnet()
    const networkKey = generateNetworkKey()
    const keyA = createKeyPair()
    const srcA = new BuildSource(await tempDir())
    const data = random(3 * 1024 * 1024 + 17)
    const file = await srcA.addBuild('mariadb-11.4.5-1.gpkg.tar', data)
    const mariadb = build(keyA, 'dev-db/mariadb-11.4.5', '-minimal', {}, data)
    const zlib = build(keyA, 'sys-libs/zlib-1.3.1', 'minizip')
    const a = await startSwarm(bootstrap, { networkKey, keyPair: keyA, source: srcA, name: 'a' })
    a.setBuilds([mariadb, zlib])
    const b = await startSwarm(bootstrap, { networkKey, source: new MemorySource(await tempDir()), name: 'b', rangeSize: 1024 * 1024 })
    let events = 0
    b.on('builds', () => { events++ })

    await until(() => b.builds().length === 2, 20_000, 'the full set at b')
    expect(events).toBeGreaterThan(0)
    const row = b.builds().find((r) => r.ad.fields.CPV === 'dev-db/mariadb-11.4.5')!
    expect(row.ad).toEqual(mariadb)
    expect(row.holders.map((p) => p.name)).toEqual(['a'])
    expect(b.buildHolders(toHex(file.blake2b)).map((p) => p.name)).toEqual(['a'])
    expect(b.buildHolders(toHex(random(64)))).toEqual([])

    // Not a distfile anywhere: only the build ad names the digest.
    expect(b.find({ blake2b: toHex(file.blake2b) })).toEqual([])
    const entry = { name: file.name, size: file.size, blake2b: file.blake2b, sha512: Buffer.alloc(0) }
    const sink = new BufferSink()
    await b.download(entry, sink)
    expect(blake2b(sink.bytes).equals(file.blake2b)).toBe(true)
    // …and asks it for piece hashes, as a diagnosis of a bad download would.
    const claims = await b.pieceHashes(entry, { offset: 0, length: file.size, pieceSize: 1024 * 1024 })
    expect([...claims.keys()]).toEqual([toHex(keyA.publicKey)])
    expect(claims.get(toHex(keyA.publicKey))).toHaveLength(4)

    // Deltas: one build goes, another comes.
    const openssl = build(keyA, 'dev-libs/openssl-3.3.2', 'asm')
    a.setBuilds([mariadb, openssl])
    await until(() => b.builds().some((r) => r.ad.fields.CPV === 'dev-libs/openssl-3.3.2') && b.builds().length === 2, 10_000, 'the delta at b')
    expect(b.builds().map((r) => r.ad.fields.CPV).sort()).toEqual(['dev-db/mariadb-11.4.5', 'dev-libs/openssl-3.3.2'])

    // A peer that leaves takes its builds along.
    await a.stop()
    await until(() => b.builds().length === 0, 10_000, 'the builds to go with a')
  })

  it('a large set arrives whole, split across frames', async () => {
    const bootstrap = await testnet()
    const networkKey = generateNetworkKey()
    const keyA = createKeyPair()
    const ads = many(keyA, 3000, 1000)
    const a = await startSwarm(bootstrap, { networkKey, keyPair: keyA, source: new MemorySource(await tempDir()), name: 'a' })
    a.setBuilds(ads)
    const b = await startSwarm(bootstrap, { networkKey, source: new MemorySource(await tempDir()), name: 'b' })
    await until(() => b.builds().length === 3000, 30_000, 'every build at b')
    const got = new Map(b.builds().map((r) => [toHex(r.ad.blake2b), r.ad]))
    for (const ad of ads) expect(got.get(toHex(ad.blake2b))?.signature.equals(ad.signature)).toBe(true)
    expect(a.buildCounts().advertised).toBe(3000)
  })

  it('a peer past the bounds has its excess builds cut off with ERR_BUILDS_LIMIT and a warning, and stays connected; a banned one has none', async () => {
    const bootstrap = await testnet()
    const networkKey = generateNetworkKey()
    const keyA = createKeyPair()
    const a = await startSwarm(bootstrap, { networkKey, keyPair: keyA, source: new MemorySource(await tempDir()), name: 'a' })
    a.setBuilds(many(keyA, 15))
    const logger = captureLogger()
    let banned = false
    const b = await startSwarm(bootstrap, { networkKey, source: new MemorySource(await tempDir()), name: 'b', logger, limits: { maxRemoteBuilds: 10 }, isBanned: () => banned })
    await until(() => b.builds().length === 10 && b.buildCounts().refused === 5, 20_000, 'ten builds at b')
    expect(logger.lines.filter((l) => l.level === 'warn' && l.event === 'builds.cut-off').map((l) => l.fields.code)).toEqual(['ERR_BUILDS_LIMIT'])
    expect(b.readyPeers().map((p) => p.name)).toEqual(['a'])
    // A banned peer's builds are not offered, even before its connection is gone.
    banned = true
    expect(b.builds()).toEqual([])
  })

  it("a relayed build keeps its builder's signature; a forged one is dropped and the sender stays connected", async () => {
    const bootstrap = await testnet()
    const networkKey = generateNetworkKey()
    const keyA = createKeyPair()
    const a = await startSwarm(bootstrap, { networkKey, keyPair: keyA, source: new MemorySource(await tempDir()), name: 'a' })
    const ad = build(keyA, 'dev-db/mariadb-11.4.5', 'minimal')
    a.setBuilds([ad])
    const b = await startSwarm(bootstrap, { networkKey, source: new MemorySource(await tempDir()), name: 'b' })
    await until(() => b.builds().length === 1, 20_000, 'the build at b')
    // b keeps a copy and advertises it; a stops advertising it.
    b.setBuilds(b.builds().map((r) => r.ad))
    a.setBuilds([])
    const c = await startSwarm(bootstrap, { networkKey, source: new MemorySource(await tempDir()), name: 'c' })
    await until(() => c.builds().length === 1 && c.builds()[0]!.holders.map((p) => p.name).join() === 'b' && c.readyPeers().length === 2, 20_000, 'the relayed build at c, from b only')
    const relayed = c.builds()[0]!.ad
    expect(relayed.builder.equals(keyA.publicKey)).toBe(true)
    expect(relayed.signature.equals(ad.signature)).toBe(true)
    expect(verifyBuild(relayed)).toBe(true)

    // A raw member relays the same build and a forgery of it (its USE changed, the signature kept).
    const raw = await rawPeer(bootstrap, topicOf(networkKey))
    rawHello(raw.conn, networkKey)
    // It reached one of the three: that one is the victim.
    const hasRaw = (s: typeof a): boolean => s.readyPeers().some((p) => p.name === 'raw')
    await until(() => [a, b, c].some(hasRaw), 20_000, 'the raw peer ready')
    const victim = [a, b, c].find(hasRaw)!
    const forged = build(keyA, 'dev-db/mariadb-11.4.5', 'minimal', {}, random(50))
    raw.conn.write(encodeMessage({ type: 'builds', reset: true, added: [ad, { ...forged, fields: { ...forged.fields, USE: '-minimal' } }], removed: [] }))
    await until(() => victim.buildCounts().forged === 1, 10_000, 'the forgery dropped')
    await until(() => victim.builds().some((r) => r.holders.some((p) => p.name === 'raw')), 10_000, 'the honest relay kept')
    expect(victim.builds().map((r) => r.ad.fields.USE)).toEqual(['minimal'])
    expect(raw.isClosed()).toBe(false)
  })
})

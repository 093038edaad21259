import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import {
  allocDataFrame, decodeMessage, encodeMessage, encodeFrame, FrameDecoder, MAX_DATA_CHUNK, MAX_FRAME_SIZE, MAX_INVENTORY_BATCH,
  MAX_REQUEST_LENGTH, MAX_BUILDS_BATCH, MAX_BUILD_BYTES, MAX_BUILD_FIELDS, buildProblem, buildSigningPayload, readInventory,
  type BuildEntry, type FileEntry, type Message, type ProtocolError, type RawEntry
} from '../src/index.js'
import * as wire from '../src/generated/distswarm.cjs'

function roundTrip (msg: Message): Message {
  const frames = new FrameDecoder().push(encodeMessage(msg))
  expect(frames).toHaveLength(1)
  return decodeMessage(frames[0]!)
}

function codeOf (fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return (err as ProtocolError).code
  }
  return undefined
}

const digest = () => randomBytes(64)

function build (over: Partial<BuildEntry> = {}): BuildEntry {
  return {
    blake2b: digest(), size: 4096, group: 'x86_64-pc-linux-gnu',
    fields: { CPV: 'dev-db/mariadb-11.4.5', BUILD_ID: '2', USE: 'minimal' },
    builder: randomBytes(32), signature: randomBytes(64), ...over
  }
}

describe('messages', () => {
  it('allocDataFrame, once filled, is byte for byte what encodeMessage gives', () => {
    for (const [id, offset, length] of [[0, 0, 0], [1, 0, 1], [0xffffffff, 2 ** 40, MAX_DATA_CHUNK], [300, 127, 128], [7, 2 ** 33 + 5, 16384]] as const) {
      const bytes = randomBytes(length)
      const { frame, body } = allocDataFrame(id, offset, length)
      bytes.copy(body)
      expect(frame.equals(encodeMessage({ type: 'data', id, offset, bytes }))).toBe(true)
    }
  })

  it('round-trips every message type', () => {
    const msgs: Message[] = [
      { type: 'hello', version: 1, proof: randomBytes(32), name: 'buildhost', dataPort: 40123, dataOnly: false, seeder: true },
      {
        type: 'inventory',
        reset: true,
        added: [
          { name: 'foo-1.0.tar.gz', size: 123456789, blake2b: digest(), sha512: digest() },
          { name: 'bar-2.tar.xz', size: 0, blake2b: digest(), sha512: Buffer.alloc(0) }
        ],
        removed: [digest()]
      },
      { type: 'request', id: 7, blake2b: digest(), offset: 2 ** 33, length: 4 << 20 },
      { type: 'data', id: 7, offset: 10, bytes: randomBytes(1000) },
      { type: 'cancel', id: 9 },
      { type: 'error', code: 'NOT_FOUND', id: 3, message: 'no such file' },
      { type: 'report', blake2b: digest() },
      { type: 'hash-request', id: 11, blake2b: digest(), offset: 4 << 20, length: 2 ** 33, pieceSize: 4 << 20 },
      { type: 'hashes', id: 11, hashes: [randomBytes(32), randomBytes(32)] },
      { type: 'peer-addresses', addresses: [{ publicKey: randomBytes(32), host: '10.77.0.11', port: 49738 }, { publicKey: randomBytes(32), host: 'fe80::1', port: 1 }] },
      { type: 'builds', reset: false, added: [build(), build({ fields: {} })], removed: [digest()] },
      { type: 'builds', reset: true, added: [], removed: [] },
      { type: 'ping', id: 1, time: Date.now() },
      { type: 'pong', id: 0xffffffff, time: 0 },
      { type: 'piece-map', blake2b: digest(), size: 2 ** 33 + 1, pieceSize: 4 << 20, reset: true, have: Buffer.from([0xff, 0x01]), added: [] },
      { type: 'piece-map', blake2b: digest(), size: 10 << 20, pieceSize: 4 << 20, reset: false, have: Buffer.alloc(0), added: [2, 0] }
    ]
    for (const msg of msgs) expect(roundTrip(msg)).toEqual(msg)
  })

  it('refuses an envelope with no known body as ERR_UNKNOWN_TYPE', () => {
    expect(codeOf(() => decodeMessage(Buffer.alloc(0)))).toBe('ERR_UNKNOWN_TYPE')
    // field 15, varint 1: a message type from a future version
    expect(codeOf(() => decodeMessage(Buffer.from([15 << 3, 1])))).toBe('ERR_UNKNOWN_TYPE')
  })

  it('refuses malformed protobuf as ERR_DECODE', () => {
    // field 3 (request), length-delimited, claims 100 bytes but has 2
    expect(codeOf(() => decodeMessage(Buffer.from([3 << 3 | 2, 100, 1, 2])))).toBe('ERR_DECODE')
    // an unterminated varint
    expect(codeOf(() => decodeMessage(Buffer.from([0x80, 0x80, 0x80])))).toBe('ERR_DECODE')
  })

  it('refuses messages that break a bound as ERR_BAD_MESSAGE', () => {
    const bad: Message[] = [
      { type: 'hello', version: 1, proof: randomBytes(31), name: 'x', dataPort: 0, dataOnly: false, seeder: false },
      { type: 'hello', version: 1, proof: randomBytes(32), name: 'x'.repeat(65), dataPort: 0, dataOnly: false, seeder: false },
      { type: 'hello', version: 1, proof: randomBytes(32), name: 'x', dataPort: 65536, dataOnly: false, seeder: false },
      { type: 'request', id: 1, blake2b: randomBytes(63), offset: 0, length: 1 },
      { type: 'request', id: 1, blake2b: digest(), offset: 0, length: 0 },
      { type: 'request', id: 1, blake2b: digest(), offset: 0, length: MAX_REQUEST_LENGTH + 1 },
      { type: 'data', id: 1, offset: 0, bytes: Buffer.alloc(MAX_DATA_CHUNK + 1) },
      { type: 'inventory', reset: false, added: [], removed: [randomBytes(10)] },
      { type: 'report', blake2b: randomBytes(32) },
      { type: 'hash-request', id: 1, blake2b: digest(), offset: 0, length: 1, pieceSize: 1024 },
      { type: 'hash-request', id: 1, blake2b: digest(), offset: 0, length: 2 ** 40, pieceSize: 1 << 20 },
      { type: 'hashes', id: 1, hashes: [randomBytes(64)] },
      { type: 'peer-addresses', addresses: [{ publicKey: randomBytes(31), host: '10.0.0.1', port: 1 }] },
      { type: 'peer-addresses', addresses: [{ publicKey: randomBytes(32), host: 'buildhost', port: 1 }] },
      { type: 'peer-addresses', addresses: [{ publicKey: randomBytes(32), host: '10.0.0.1', port: 0 }] },
      { type: 'peer-addresses', addresses: [{ publicKey: randomBytes(32), host: '10.0.0.1', port: 65536 }] },
      { type: 'peer-addresses', addresses: Array.from({ length: 65 }, () => ({ publicKey: randomBytes(32), host: '10.0.0.1', port: 1 })) },
      { type: 'ping', id: 1, time: 2 ** 60 },
      { type: 'pong', id: 2 ** 40, time: 1 },
      { type: 'piece-map', blake2b: randomBytes(63), size: 1 << 20, pieceSize: 1 << 16, reset: true, have: Buffer.alloc(0), added: [] },
      { type: 'piece-map', blake2b: digest(), size: 0, pieceSize: 1 << 16, reset: true, have: Buffer.alloc(0), added: [] },
      { type: 'piece-map', blake2b: digest(), size: 1 << 20, pieceSize: 1024, reset: true, have: Buffer.alloc(0), added: [] },
      { type: 'piece-map', blake2b: digest(), size: 2 ** 40, pieceSize: 1 << 16, reset: true, have: Buffer.alloc(0), added: [] },
      // 3 pieces: one byte of bitfield, bits past the third unset; indexes below 3.
      { type: 'piece-map', blake2b: digest(), size: 3 << 16, pieceSize: 1 << 16, reset: true, have: Buffer.from([0xe0, 0]), added: [] },
      { type: 'piece-map', blake2b: digest(), size: 3 << 16, pieceSize: 1 << 16, reset: true, have: Buffer.from([0xf0]), added: [] },
      { type: 'piece-map', blake2b: digest(), size: 3 << 16, pieceSize: 1 << 16, reset: false, have: Buffer.alloc(0), added: [3] },
      { type: 'piece-map', blake2b: digest(), size: 2 ** 30, pieceSize: 1 << 16, reset: false, have: Buffer.alloc(0), added: Array.from({ length: 1025 }, (_, i) => i) },
      {
        type: 'inventory',
        reset: false,
        added: [],
        removed: Array.from({ length: MAX_INVENTORY_BATCH + 1 }, () => Buffer.alloc(64))
      },
      { type: 'builds', reset: false, added: [build({ blake2b: randomBytes(32) })], removed: [] },
      { type: 'builds', reset: false, added: [build({ builder: randomBytes(33) })], removed: [] },
      { type: 'builds', reset: false, added: [build({ signature: Buffer.alloc(0) })], removed: [] },
      { type: 'builds', reset: false, added: [], removed: [randomBytes(63)] },
      { type: 'builds', reset: false, added: [build()], removed: Array.from({ length: MAX_BUILDS_BATCH }, () => Buffer.alloc(64)) }
    ]
    for (const msg of bad) expect(codeOf(() => decodeMessage(encodeMessage(msg).subarray(4)))).toBe('ERR_BAD_MESSAGE')
  })

  it.each(['../../etc/passwd', 'a/b', 'nul\u0000byte', '..', '.hidden', '', 'x'.repeat(256), 'tab\tname'])(
    'refuses the path-like or unsafe entry name %j',
    (name) => {
      const msg: Message = {
        type: 'inventory', reset: true, removed: [], added: [{ name, size: 1, blake2b: digest(), sha512: Buffer.alloc(0) }]
      }
      expect(codeOf(() => decodeMessage(encodeMessage(msg).subarray(4)))).toBe('ERR_BAD_MESSAGE')
    })
})

describe('readInventory (an Inventory frame read in place)', () => {
  const entry = (name: string, sha = true): FileEntry => ({ name, size: 4096, blake2b: digest(), sha512: sha ? digest() : Buffer.alloc(0) })
  const payload = (msg: Message): Buffer => encodeMessage(msg).subarray(4)
  const raw = (e: RawEntry) => ({
    name: e.name ?? e.buf.toString('utf8', e.nameAt, e.nameAt + e.nameLen),
    size: e.size,
    blake2b: Buffer.from(e.buf.subarray(e.blake2bAt, e.blake2bAt + 64)),
    sha512: e.sha512At < 0 ? Buffer.alloc(0) : Buffer.from(e.buf.subarray(e.sha512At, e.sha512At + 64))
  })

  it('reads what decodeMessage reads, in place and as objects, for ASCII and other names, with and without SHA512', () => {
    const msg: Message = { type: 'inventory', reset: true, added: [entry('a-1.tar.xz'), entry('b 2.zip', false), entry('naïve-1.0.tar.gz'), entry('日本語.tar')], removed: [digest(), digest()] }
    const inv = readInventory(payload(msg))!
    expect(inv.reset).toBe(true)
    expect([...inv.added]).toEqual(msg.added)
    expect([...inv.removed]).toEqual(msg.removed)
    const inPlace: FileEntry[] = []
    inv.eachAdded((e) => inPlace.push(raw(e)))
    expect(inPlace).toEqual(msg.added)
    // Only names that are not plain ASCII are decoded to a string to be checked.
    const decoded: Array<string | null> = []
    inv.eachAdded((e) => decoded.push(e.name))
    expect(decoded).toEqual([null, null, 'naïve-1.0.tar.gz', '日本語.tar'])
    const at: number[] = []
    inv.eachRemoved((buf, from) => at.push(buf.compare(msg.removed[at.length]!, 0, 64, from, from + 64)))
    expect(at).toEqual([0, 0])
  })

  it('leaves every other message to decodeMessage (null), and skips unknown fields beside an Inventory', () => {
    expect(readInventory(payload({ type: 'cancel', id: 7 }))).toBeNull()
    expect(readInventory(payload({ type: 'data', id: 1, offset: 0, bytes: Buffer.alloc(10) }))).toBeNull()
    expect(readInventory(Buffer.alloc(0))).toBeNull()
    const msg: Message = { type: 'inventory', reset: false, added: [entry('a-1.tar.xz')], removed: [] }
    // Envelope field 99 (varint) before it, field 100 (bytes) after it: a newer peer's additions.
    const withUnknown = Buffer.concat([Buffer.from([0x98, 0x06, 0x05]), payload(msg), Buffer.from([0xa2, 0x06, 0x02, 0x01, 0x02])])
    expect([...readInventory(withUnknown)!.added]).toEqual(msg.added)
    expect(decodeMessage(withUnknown)).toEqual(msg)
  })

  it('refuses what decodeMessage refuses, with the same code, before reading any entry', () => {
    const tooMany: Message = { type: 'inventory', reset: false, added: [], removed: Array.from({ length: MAX_INVENTORY_BATCH + 1 }, digest) }
    const badName: Message = { type: 'inventory', reset: false, added: [entry('ok.tar'), entry('../etc/passwd')], removed: [] }
    const shortDigest: Message = { type: 'inventory', reset: false, added: [{ ...entry('a.tar'), blake2b: Buffer.alloc(63) }], removed: [] }
    for (const msg of [tooMany, badName, shortDigest]) {
      const code = codeOf(() => decodeMessage(payload(msg)))
      expect(code).toBe('ERR_BAD_MESSAGE')
      expect(codeOf(() => readInventory(payload(msg)))).toBe(code)
    }
    // Cut short, the envelope holds no whole Inventory: left to decodeMessage, which refuses it.
    expect(readInventory(payload(badName).subarray(0, 60))).toBeNull()
    expect(codeOf(() => decodeMessage(payload(badName).subarray(0, 60)))).toBe('ERR_DECODE')
    // An entry cut short inside a whole Inventory is refused here.
    const cut = Buffer.from(payload(badName))
    cut[6] = cut[6]! - 10 // the low byte of the first entry's length (0x12 0x8f 0x01 after reset): its SHA512 now runs past its end
    expect(codeOf(() => readInventory(cut))).toBe('ERR_DECODE')
  })

  it('refuses, stricter than the generated decoder, a wrong wire type and an Inventory beside another body', () => {
    const inv = payload({ type: 'inventory', reset: false, added: [entry('a.tar')], removed: [] })
    // reset (field 1) sent as bytes: the generated decoder reads one byte of it as a bool.
    const wrongType = Buffer.from([0x12, 0x03, 0x0a, 0x01, 0x01])
    expect(codeOf(() => readInventory(wrongType))).toBe('ERR_DECODE')
    const twoBodies = Buffer.concat([payload({ type: 'cancel', id: 1 }), inv])
    expect(decodeMessage(twoBodies).type).toBe('inventory')
    expect(codeOf(() => readInventory(twoBodies))).toBe('ERR_BAD_MESSAGE')
  })
})

describe('build entries', () => {
  it('refuses a field key given twice as ERR_BAD_MESSAGE (the signed encoding has each key once)', () => {
    const e = build()
    const payload = wire.Envelope.encode({
      builds: { added: [{ ...e, fields: [{ key: 'USE', value: 'minimal' }, { key: 'USE', value: '-minimal' }] }] }
    })
    expect(codeOf(() => decodeMessage(payload))).toBe('ERR_BAD_MESSAGE')
  })

  it('keeps a key named __proto__ as data, not as the prototype of the fields', () => {
    const payload = wire.Envelope.encode({ builds: { added: [{ ...build(), fields: [{ key: '__proto__', value: 'x' }] }] } })
    const msg = decodeMessage(payload)
    if (msg.type !== 'builds') throw new Error('not builds')
    const fields = msg.added[0]!.fields
    expect(Object.getPrototypeOf(fields)).toBe(Object.prototype)
    expect(Object.keys(fields)).toEqual(['__proto__'])
    expect(fields['__proto__']).toBe('x')
  })

  it('writes the fields sorted by key, whatever order they were given in', () => {
    const e = build({ fields: { USE: 'a', CPV: 'b/c-1', BUILD_ID: '1' } })
    const env = wire.Envelope.decode(encodeMessage({ type: 'builds', reset: false, added: [e], removed: [] }).subarray(4))
    expect(env.builds!.added!.map((b) => b.fields!.map((f) => f.key))).toEqual([['BUILD_ID', 'CPV', 'USE']])
  })

  it('buildProblem names each bound an entry breaks, and passes a good one', () => {
    expect(buildProblem(build())).toBeNull()
    const many = Object.fromEntries(Array.from({ length: MAX_BUILD_FIELDS + 1 }, (_, i) => [`K${i}`, 'v']))
    for (const bad of [
      build({ blake2b: randomBytes(63) }), build({ builder: randomBytes(31) }), build({ signature: randomBytes(1) }),
      build({ size: -1 }), build({ size: 2 ** 41 }), build({ size: 1.5 }), build({ group: 'g'.repeat(129) }),
      build({ fields: many }), build({ fields: { 'A B': 'x' } }), build({ fields: { '': 'x' } }), build({ fields: { '9A': 'x' } }),
      build({ fields: { DESC: 'x'.repeat(MAX_BUILD_BYTES) } })
    ]) expect(buildProblem(bad)).toEqual(expect.any(String))
  })

  it('signs a canonical encoding: field order does not matter, every field and the builder do', () => {
    const e = build({ fields: { CPV: 'a/b-1', USE: 'x' } })
    const same = buildSigningPayload({ ...e, fields: { USE: 'x', CPV: 'a/b-1' } })
    expect(buildSigningPayload(e).equals(same)).toBe(true)
    expect(buildSigningPayload(e).subarray(0, 19).toString()).toBe('distswarm/build/v1\u0000')
    for (const other of [
      { ...e, size: e.size + 1 }, { ...e, group: 'other' }, { ...e, fields: { CPV: 'a/b-1', USE: 'y' } },
      { ...e, fields: { CPV: 'a/b-1' } }, { ...e, builder: randomBytes(32) }, { ...e, blake2b: digest() },
      // a value moved into the key must not sign the same bytes
      { ...e, fields: { CPV: 'a/b-1', USEx: '' } }
    ]) expect(buildSigningPayload(other).equals(buildSigningPayload(e))).toBe(false)
  })
})

describe('framing', () => {
  it('reassembles frames split at every byte boundary', () => {
    const a = encodeMessage({ type: 'cancel', id: 1 })
    const b = encodeMessage({ type: 'data', id: 2, offset: 0, bytes: randomBytes(300) })
    const stream = Buffer.concat([a, b])
    for (let cut = 0; cut <= stream.length; cut++) {
      const dec = new FrameDecoder()
      const frames = [...dec.push(stream.subarray(0, cut)), ...dec.push(stream.subarray(cut))]
      expect(frames.map((f) => decodeMessage(f))).toEqual([
        { type: 'cancel', id: 1 }, { type: 'data', id: 2, offset: 0, bytes: b.subarray(b.length - 300) }
      ])
      expect(dec.pending).toBe(0)
    }
  })

  it('rejects an oversized frame from its header alone, and stays failed', () => {
    const dec = new FrameDecoder(1024)
    const header = Buffer.alloc(4)
    header.writeUInt32BE(1025)
    expect(codeOf(() => dec.push(header))).toBe('ERR_FRAME_TOO_LARGE')
    expect(codeOf(() => dec.push(encodeFrame(Buffer.alloc(1))))).toBe('ERR_FRAME_TOO_LARGE')
    expect(dec.pending).toBe(0)
  })

  it('refuses to encode a frame over the limit', () => {
    expect(codeOf(() => encodeFrame(Buffer.alloc(MAX_FRAME_SIZE + 1)))).toBe('ERR_FRAME_TOO_LARGE')
  })

  it('fits a full inventory batch of maximal entries in one frame', () => {
    const added = Array.from({ length: MAX_INVENTORY_BATCH }, (_, i) => ({
      name: `${i}`.padStart(255, 'n'), size: 2 ** 40, blake2b: digest(), sha512: digest()
    }))
    const frame = encodeMessage({ type: 'inventory', reset: true, added, removed: [] })
    expect(frame.length).toBeLessThan(MAX_FRAME_SIZE)
  })
})

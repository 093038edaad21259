/**
 * Wire compatibility: frames that protocol version 1 put on the wire
 * (fixtures/wire/v1, committed once and never regenerated) must decode to
 * the same messages in every later version, and today's encoder must still
 * write them byte for byte. A newer peer's additions (fields, message types,
 * error codes) are ignored or answered, never a reason to drop it.
 * The rule for a version change: docs/protocol.md.
 */
import { describe, expect, it } from 'vitest'
import { readdirSync, readFileSync } from 'node:fs'
import {
  decodeMessage, encodeFrame, encodeMessage, FrameDecoder, MAX_FRAME_SIZE, PROTOCOL_VERSION, ProtocolError, type Message
} from '../src/index.js'

const DIR = new URL('./fixtures/wire/v1/', import.meta.url)
const seq = (n: number, start: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (start + i) & 0xff))

/** What each fixture holds, spelled out field by field. */
const GOLDEN: Record<string, Message> = {
  'hello': { type: 'hello', version: 1, proof: seq(32, 0), name: 'box-α', dataPort: 40123, dataOnly: false, seeder: true },
  'hello-data-link': { type: 'hello', version: 1, proof: seq(32, 0x80), name: '', dataPort: 0, dataOnly: true, seeder: false },
  'inventory': {
    type: 'inventory',
    reset: true,
    added: [
      { name: 'linux-6.6.tar.xz', size: 141_000_000_123, blake2b: seq(64, 1), sha512: seq(64, 2) },
      { name: 'a', size: 0, blake2b: seq(64, 3), sha512: Buffer.alloc(0) }
    ],
    removed: [seq(64, 4)]
  },
  'inventory-delta': { type: 'inventory', reset: false, added: [], removed: [seq(64, 5), seq(64, 6)] },
  'request': { type: 'request', id: 7, blake2b: seq(64, 7), offset: 2 ** 33 + 5, length: 1048576 },
  'data': { type: 'data', id: 7, offset: 2 ** 33 + 5, bytes: Buffer.from('distfile\u0000bytes\u00ff', 'latin1') },
  'cancel': { type: 'cancel', id: 0xffffffff },
  'error': { type: 'error', code: 'NOT_FOUND', id: 7, message: 'no such file: café.tar.gz' },
  'error-unknown-type': { type: 'error', code: 'UNKNOWN_TYPE', id: 0, message: 'unknown message type' },
  'report': { type: 'report', blake2b: seq(64, 8) },
  'hash-request': { type: 'hash-request', id: 9, blake2b: seq(64, 9), offset: 65536, length: 3 * 65536 + 1, pieceSize: 65536 },
  'hashes': { type: 'hashes', id: 9, hashes: [seq(32, 10), seq(32, 11), seq(32, 12), seq(32, 13)] },
  'peer-addresses': { type: 'peer-addresses', addresses: [{ publicKey: seq(32, 14), host: '192.0.2.7', port: 40123 }, { publicKey: seq(32, 15), host: 'fe80::1', port: 1 }] },
  'builds': {
    type: 'builds',
    reset: true,
    added: [{
      blake2b: seq(64, 16),
      size: 5_123_456,
      group: 'x86_64-pc-linux-gnu',
      // Sorted by key, as the wire carries them.
      fields: { BUILD_ID: '1', CPV: 'dev-db/mariadb-11.4.5', MD5: 'd41d8cd98f00b204e9800998ecf8427e', SIZE: '5123456', USE: '-minimal perl ü' },
      builder: seq(32, 17),
      signature: seq(64, 18)
    }],
    removed: [seq(64, 19)]
  },
  'ping': { type: 'ping', id: 3, time: 1764480000123 },
  'pong': { type: 'pong', id: 0xffffffff, time: Number.MAX_SAFE_INTEGER },
  // 131 MiB + 1 in 4 MiB pieces: 33 pieces, 5 bytes of bitfield (the last with bit 32 only).
  'piece-map': { type: 'piece-map', blake2b: seq(64, 20), size: 131 * 1048576 + 1, pieceSize: 4194304, reset: true, have: Buffer.from([0xa0, 0x00, 0xff, 0x01, 0x80]), added: [] },
  'piece-map-delta': { type: 'piece-map', blake2b: seq(64, 21), size: 131 * 1048576 + 1, pieceSize: 4194304, reset: false, have: Buffer.alloc(0), added: [32, 0, 300 % 33] }
}

function fixture (name: string): Buffer {
  return Buffer.from(readFileSync(new URL(`${name}.hex`, DIR), 'utf8').replace(/\s+/g, ''), 'hex')
}

/** The one frame a fixture holds, through the framing as a peer would read it. */
function payloadOf (frame: Buffer): Buffer {
  const frames = new FrameDecoder().push(frame)
  expect(frames).toHaveLength(1)
  return frames[0]!
}

function varint (n: number): Buffer {
  const out: number[] = []
  for (; n >= 0x80; n = Math.floor(n / 0x80)) out.push((n % 0x80) | 0x80)
  out.push(n)
  return Buffer.from(out)
}

function readVarint (b: Buffer, at: number): [value: number, next: number] {
  let value = 0
  for (let shift = 1; ; shift *= 0x80) {
    const byte = b[at++]!
    value += (byte & 0x7f) * shift
    if (byte < 0x80) return [value, at]
  }
}

const tag = (field: number, wireType: number): Buffer => varint(field * 8 + wireType)

/** Fields a newer version might add, of every wire type protobuf has (but the deprecated groups). */
const UNKNOWN_FIELDS = Buffer.concat([
  tag(100, 0), varint(2 ** 40 + 3), // varint
  tag(101, 1), Buffer.alloc(8, 0xee), // fixed64
  tag(102, 2), varint(5), Buffer.from('newer'), // length-delimited: a string, bytes or a nested message
  tag(103, 5), Buffer.alloc(4, 0xdd), // fixed32
  tag(15, 0), varint(1) // a low number too, in the range a next field would take
])

/** `payload` (an Envelope with one body) with `extra` appended inside the body, as a newer sender's message would carry it. */
function withFieldsInBody (payload: Buffer, extra: Buffer): Buffer {
  const [key, at] = readVarint(payload, 0)
  const [length, start] = readVarint(payload, at)
  expect(start + length).toBe(payload.length)
  const body = Buffer.concat([payload.subarray(start), extra])
  return Buffer.concat([varint(key), varint(body.length), body])
}

describe('wire golden corpus, protocol version 1', () => {
  it('holds one fixture for each golden message, and covers every message type', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.hex')).map((f) => f.slice(0, -4)).sort()
    expect(files).toEqual(Object.keys(GOLDEN).sort())
    const types = new Set(Object.values(GOLDEN).map((m) => m.type))
    expect([...types].sort()).toEqual(['builds', 'cancel', 'data', 'error', 'hash-request', 'hashes', 'hello', 'inventory', 'peer-addresses', 'piece-map', 'ping', 'pong', 'report', 'request'])
    expect(PROTOCOL_VERSION).toBe(1)
  })

  for (const [name, msg] of Object.entries(GOLDEN)) {
    describe(name, () => {
      it('decodes to the same message, field by field', () => {
        const frame = fixture(name)
        expect(frame.readUInt32BE(0)).toBe(frame.length - 4)
        expect(decodeMessage(payloadOf(frame))).toEqual(msg)
      })

      it('is what today\'s encoder writes, byte for byte', () => {
        expect(encodeMessage(msg).toString('hex')).toBe(fixture(name).toString('hex'))
      })

      it('decodes the same with fields a newer version added, inside the message and beside it', () => {
        const payload = payloadOf(fixture(name))
        expect(decodeMessage(withFieldsInBody(payload, UNKNOWN_FIELDS))).toEqual(msg)
        expect(decodeMessage(Buffer.concat([payload, UNKNOWN_FIELDS]))).toEqual(msg)
        expect(decodeMessage(Buffer.concat([UNKNOWN_FIELDS, payload]))).toEqual(msg)
      })
    })
  }

  it('ignores unknown fields in a nested FileEntry too', () => {
    // inventory-delta carries no entries: build one whose entry has a field a newer version added.
    const entry = Buffer.concat([tag(1, 2), varint(1), Buffer.from('z'), tag(3, 2), varint(64), seq(64, 1), UNKNOWN_FIELDS])
    const inventory = Buffer.concat([tag(1, 0), varint(0), tag(2, 2), varint(entry.length), entry])
    const payload = Buffer.concat([tag(2, 2), varint(inventory.length), inventory])
    expect(decodeMessage(payload)).toEqual({ type: 'inventory', reset: false, added: [{ name: 'z', size: 0, blake2b: seq(64, 1), sha512: Buffer.alloc(0) }], removed: [] })
  })

  it('reads an error code a newer version added as UNSPECIFIED, keeping its id and message', () => {
    const payload = withFieldsInBody(payloadOf(fixture('error')), Buffer.alloc(0))
    // Field 1 of the ErrorReply (code) is the first in its body: NOT_FOUND (5) becomes 42.
    const [key, at] = readVarint(payload, 0)
    const [, start] = readVarint(payload, at)
    expect(payload.subarray(start, start + 2)).toEqual(Buffer.from([0x08, 5]))
    const body = Buffer.concat([Buffer.from([0x08, 42]), payload.subarray(start + 2)])
    expect(decodeMessage(Buffer.concat([varint(key), varint(body.length), body]))).toEqual({ ...GOLDEN.error, code: 'UNSPECIFIED' })
  })

  it('refuses a message type it lacks with ERR_UNKNOWN_TYPE, which a peer answers (see docs/protocol.md)', () => {
    // Envelope field 99 (far past the last type, Pong = 13: one a newer version adds), and an envelope with no body at all.
    for (const payload of [Buffer.concat([tag(99, 2), varint(3), Buffer.from([0x08, 0x01, 0x10])]), Buffer.concat([tag(99, 2), varint(0)]), Buffer.alloc(0), UNKNOWN_FIELDS]) {
      let err: unknown
      try {
        decodeMessage(payload)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(ProtocolError)
      expect((err as ProtocolError).code).toBe('ERR_UNKNOWN_TYPE')
    }
    // The frame around it is read like any other: the stream goes on after it.
    const unknown = encodeFrame(Buffer.concat([tag(99, 2), varint(0)]))
    const frames = new FrameDecoder(MAX_FRAME_SIZE).push(Buffer.concat([unknown, fixture('cancel')]))
    expect(frames).toHaveLength(2)
    expect(decodeMessage(frames[1]!)).toEqual(GOLDEN.cancel)
  })
})

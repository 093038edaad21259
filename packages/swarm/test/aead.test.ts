import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import sodium from 'sodium-native'
import { open, recordCipher, seal } from '../src/aead.js'

const SIZES = [0, 1, 17, 4096, 65_536, 1_048_579]

function sodiumSeal (key: Buffer, nonce: Buffer, aad: Buffer, plain: Buffer): { body: Buffer, tag: Buffer } {
  const body = Buffer.from(plain)
  const tag = Buffer.alloc(16)
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(body, tag, body, aad, null, nonce, key)
  return { body, tag }
}

describe('the data link record cipher', () => {
  it('RFC 8439 §2.8.2: the test vector seals to its ciphertext and tag, and opens again', () => {
    const key = Buffer.from('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f', 'hex')
    const nonce = Buffer.from('070000004041424344454647', 'hex')
    const aad = Buffer.from('50515253c0c1c2c3c4c5c6c7', 'hex')
    const plain = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
    const body = Buffer.from(plain)
    const tag = Buffer.alloc(16)
    expect(seal(key, nonce, aad, body, tag)).toBe(true)
    expect(body.subarray(0, 16).toString('hex')).toBe('d31a8d34648e60db7b86afbc53ef7ec2')
    expect(tag.toString('hex')).toBe('1ae10b594f09e26a7e902ecbd0600691')
    expect(open(key, nonce, aad, body, tag)).toBe(true)
    expect(body.equals(plain)).toBe(true)
  })

  it('puts the same bytes on the wire as libsodium, and each opens what the other sealed', () => {
    const key = randomBytes(32)
    const nonce = randomBytes(12)
    const aad = randomBytes(4)
    for (const size of SIZES) {
      const plain = randomBytes(size)
      const theirs = sodiumSeal(key, nonce, aad, plain)
      const body = Buffer.from(plain)
      const tag = Buffer.alloc(16)
      expect(seal(key, nonce, aad, body, tag)).toBe(true)
      expect(body.equals(theirs.body), `${size} bytes`).toBe(true)
      expect(tag.equals(theirs.tag), `${size} bytes`).toBe(true)
      expect(open(key, nonce, aad, theirs.body, theirs.tag)).toBe(true)
      expect(theirs.body.equals(plain)).toBe(true)
    }
  })

  it('refuses a record whose tag, body, header or nonce was changed', () => {
    const key = randomBytes(32)
    const nonce = randomBytes(12)
    const aad = randomBytes(4)
    const plain = randomBytes(70_000)
    const { body, tag } = sodiumSeal(key, nonce, aad, plain)
    const flip = (b: Buffer, i: number): Buffer => { const c = Buffer.from(b); c[i]! ^= 1; return c }
    expect(open(key, nonce, aad, Buffer.from(body), flip(tag, 3))).toBe(false)
    expect(open(key, nonce, aad, flip(body, 69_999), Buffer.from(tag))).toBe(false)
    expect(open(key, nonce, flip(aad, 0), Buffer.from(body), Buffer.from(tag))).toBe(false)
    expect(open(key, flip(nonce, 11), aad, Buffer.from(body), Buffer.from(tag))).toBe(false)
    expect(open(flip(key, 0), nonce, aad, Buffer.from(body), Buffer.from(tag))).toBe(false)
    expect(open(key, nonce, aad, Buffer.from(body), Buffer.from(tag))).toBe(true)
  })

  // The addon is built by `npm run build` where a C compiler and Node's headers are; CI installs the compiler, so there it must be built.
  const addon = recordCipher.implementation === 'openssl'
  const required = process.env.CI === 'true'
  it.skipIf(!addon && !required)(`OpenSSL's addon is what seals, and refuses arguments of the wrong size or kind${addon || required ? '' : ` (skipped: the addon is not built: ${recordCipher.reason})`}`, () => {
    expect(recordCipher.implementation, recordCipher.reason).toBe('openssl')
    const raw = createRequire(import.meta.url)('../dist/aead.node') as { seal: (...a: unknown[]) => boolean }
    const ok = [randomBytes(32), randomBytes(12), randomBytes(4), randomBytes(10), Buffer.alloc(16)]
    expect(raw.seal(...ok)).toBe(true)
    expect(() => raw.seal(randomBytes(31), ...ok.slice(1))).toThrow(RangeError)
    expect(() => raw.seal(ok[0], randomBytes(24), ...ok.slice(2))).toThrow(RangeError)
    expect(() => raw.seal(...ok.slice(0, 4), Buffer.alloc(15))).toThrow(RangeError)
    expect(() => raw.seal(...ok.slice(0, 3), 'text', ok[4])).toThrow(TypeError)
    expect(() => raw.seal(...ok.slice(0, 4))).toThrow(TypeError)
    expect(() => raw.seal(...ok.slice(0, 3), new Uint16Array(5), ok[4])).toThrow(TypeError)
  })
})

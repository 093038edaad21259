import { describe, expect, it } from 'vitest'
import { assertValidName, isValidName, parseHexDigest, type ProtocolError } from '../src/index.js'

describe('names', () => {
  it('accepts real distfile names', () => {
    for (const n of ['linux-6.6.tar.xz', 'firefox-128.0esr.source.tar.xz', 'go1.22.src.tar.gz', 'a', 'x'.repeat(255), 'ünïcode-1.0.zip']) {
      expect(isValidName(n)).toBe(true)
    }
  })

  it('rejects path-like and control names with ERR_INVALID_NAME', () => {
    for (const n of ['../../etc/passwd', 'a/b', '/abs', '..', '.', '', '.partial', 'a\u0000b', 'a\nb', 'é'.repeat(128)]) {
      expect(isValidName(n)).toBe(false)
      expect(() => assertValidName(n)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_NAME' }))
    }
  })

  it('parses hex digests in either case, refuses anything else', () => {
    const hex = 'AB'.repeat(64)
    expect(parseHexDigest(hex).toString('hex')).toBe(hex.toLowerCase())
    for (const bad of ['ab'.repeat(63), 'zz'.repeat(64), 'ab'.repeat(65), '']) {
      let code: string | undefined
      try { parseHexDigest(bad) } catch (e) { code = (e as ProtocolError).code }
      expect(code).toBe('ERR_INVALID_DIGEST')
    }
  })
})

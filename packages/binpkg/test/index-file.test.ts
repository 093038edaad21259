import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { buildFromStanza, readPackagesIndex, writePackagesIndex, valueProblem, type Fields } from '../src/index.js'

const PORTAGE_WRITTEN = `ARCH: amd64
CHOST: x86_64-pc-linux-gnu
PACKAGES: 2
PROFILE: default/linux/amd64/23.0
TIMESTAMP: 1764460800
VERSION: 0

BUILD_ID: 1
BUILD_TIME: 1764460000
CPV: dev-db/mariadb-11.4.5
DEFINED_PHASES: compile configure install
EAPI: 8
IUSE: minimal +server test
KEYWORDS: amd64 ~arm64
MD5: 0123456789abcdef0123456789abcdef
MTIME: 1764460001
PATH: dev-db/mariadb/mariadb-11.4.5-1.gpkg.tar
SHA1: 0123456789abcdef0123456789abcdef01234567
SIZE: 10240
USE: server

BUILD_ID: 2
CPV: app-misc/hello-2.12-r1
MTIME: 1764460002
PATH: app-misc/hello/hello-2.12-r1-2.gpkg.tar
SIZE: 20480
USE:

`

function codeOf (fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}

describe('readPackagesIndex', () => {
  it('reads what Portage writes: header, stanzas, an empty value', () => {
    const idx = readPackagesIndex(PORTAGE_WRITTEN)
    expect(idx.header.TIMESTAMP).toBe('1764460800')
    expect(idx.header.CHOST).toBe('x86_64-pc-linux-gnu')
    expect(idx.stanzas.map((s) => s.CPV)).toEqual(['dev-db/mariadb-11.4.5', 'app-misc/hello-2.12-r1'])
    expect(idx.stanzas[1]!.USE).toBe('')
    expect(idx.problems).toEqual([])
    const b = buildFromStanza(idx.stanzas[0]!)
    expect(b).toMatchObject({ buildId: 1, size: 10240, format: 'gpkg', parsed: { category: 'dev-db', pn: 'mariadb', pvr: '11.4.5', pf: 'mariadb-11.4.5' } })
    expect(buildFromStanza(idx.stanzas[1]!).parsed).toMatchObject({ pn: 'hello', pvr: '2.12-r1' })
  })

  it('refuses a file it cannot use as a whole, with ERR_PACKAGES_INVALID', () => {
    expect(codeOf(() => readPackagesIndex(''))).toBe('ERR_PACKAGES_INVALID')
    expect(codeOf(() => readPackagesIndex('\nCPV: a/b-1\n'))).toBe('ERR_PACKAGES_INVALID')
    expect(codeOf(() => readPackagesIndex('VERSION: 0\n\nCPV: a/b-1\n'))).toBe('ERR_PACKAGES_INVALID') // no TIMESTAMP
    expect(codeOf(() => readPackagesIndex('TIMESTAMP: 1\nVERSION: 1\n\n'))).toBe('ERR_PACKAGES_INVALID')
    expect(codeOf(() => readPackagesIndex('TIMESTAMP: 1\n\n'))).toBe('ERR_PACKAGES_INVALID') // no VERSION
    expect(codeOf(() => readPackagesIndex('TIMESTAMP: 1\nTIMESTAMP: 2\nVERSION: 0\n\n'))).toBe('ERR_PACKAGES_INVALID')
    expect(codeOf(() => readPackagesIndex(Buffer.alloc(100, 0x41), { maxBytes: 10 }))).toBe('ERR_PACKAGES_INVALID')
  })

  it('skips a broken stanza with its reason and keeps the others', () => {
    const head = 'TIMESTAMP: 1\nVERSION: 0\n\n'
    const good = 'CPV: a/good-1\nSIZE: 1\n\n'
    const cases: Array<[string, RegExp]> = [
      ['CPV: a/dup-1\nSIZE: 1\nSIZE: 2\n\n', /SIZE twice/],
      [`CPV: a/huge-1\nDESC: ${'x'.repeat(70_000)}\n\n`, /DESC: a value of 70000/],
      ['CPV: a/ctl-1\nDESC: a\rb\n\n', /control character/],
      ['SIZE: 1\nUSE: x\n\n', /no CPV/],
      ['CPV: a/key-1\nBAD KEY: 1\n\n', /not a plain name/]
    ]
    for (const [stanza, why] of cases) {
      const idx = readPackagesIndex(head + stanza + good)
      expect(idx.stanzas.map((s) => s.CPV)).toEqual(['a/good-1'])
      expect(idx.problems).toHaveLength(1)
      expect(idx.problems[0]!.reason).toMatch(why)
    }
    const latin1 = Buffer.concat([Buffer.from(head + 'CPV: a/enc-1\nDESC: caf'), Buffer.from([0xe9]), Buffer.from('\n\n' + good)])
    const idx = readPackagesIndex(latin1)
    expect(idx.stanzas.map((s) => s.CPV)).toEqual(['a/good-1'])
    expect(idx.problems[0]).toMatchObject({ cpv: 'a/enc-1', reason: 'a line that is not UTF-8' })
  })

  it('bounds the number of stanzas', () => {
    const text = 'TIMESTAMP: 1\nVERSION: 0\n\n' + Array.from({ length: 10 }, (_, i) => `CPV: a/b-${i + 1}\nSIZE: 1\n\n`).join('')
    const idx = readPackagesIndex(text, { maxStanzas: 4 })
    expect(idx.stanzas).toHaveLength(4)
    expect(idx.problems.at(-1)!.reason).toMatch(/more than 4 stanzas/)
  })
})

describe('buildFromStanza', () => {
  const base: Fields = { CPV: 'dev-db/mariadb-11.4.5', SIZE: '10', PATH: 'dev-db/mariadb/mariadb-11.4.5-1.gpkg.tar' }
  it.each([
    [{ PATH: '../../etc/shadow.gpkg.tar' }, /".." segment/],
    [{ PATH: 'a/../b.gpkg.tar' }, /".." segment/],
    [{ PATH: '/etc/passwd.gpkg.tar' }, /absolute/],
    [{ PATH: 'a//b.gpkg.tar' }, /"" segment/],
    [{ PATH: 'a/b.zip' }, /neither/],
    [{ CPV: 'not-a-cpv' }, /category\/name-version/],
    [{ CPV: 'a/b' }, /category\/name-version/],
    [{ SIZE: '-1' }, /SIZE/],
    [{ SIZE: '' }, /no SIZE/],
    [{ BUILD_ID: '1e3' }, /BUILD_ID/],
    [{ MD5: 'zz' }, /MD5/],
    [{ SHA1: '0123' }, /SHA1/]
  ])('refuses %j with ERR_BAD_BUILD', (change, why) => {
    let err: { code?: string, message?: string } = {}
    try {
      buildFromStanza({ ...base, ...change })
    } catch (e) {
      err = e as typeof err
    }
    expect(err.code).toBe('ERR_BAD_BUILD')
    expect(err.message).toMatch(why)
  })

  it('takes the old layout path when there is no PATH', () => {
    expect(buildFromStanza({ CPV: 'app-misc/hello-2.12', SIZE: '1' })).toMatchObject({ path: 'app-misc/hello-2.12.tbz2', format: 'xpak', buildId: null })
  })
})

describe('writePackagesIndex', () => {
  it('refuses a value that would inject a line, with ERR_PACKAGES_VALUE', () => {
    expect(codeOf(() => writePackagesIndex({ TIMESTAMP: '1', VERSION: '0' }, [{ CPV: 'a/b-1', USE: 'x\nPATH: /etc/shadow' }]))).toBe('ERR_PACKAGES_VALUE')
    expect(codeOf(() => writePackagesIndex({ 'A: B': '1' }, []))).toBe('ERR_PACKAGES_VALUE')
  })

  it('writes what it reads back the same (any valid keys and values)', () => {
    const key = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,10}$/)
    const value = fc.string({ maxLength: 40 }).filter((v) => valueProblem(v) === null)
    const stanza = fc.dictionary(key, value, { maxKeys: 8 }).map((d) => ({ ...d, CPV: 'a/b-1' }))
    fc.assert(fc.property(fc.array(stanza, { maxLength: 5 }), (stanzas) => {
      const text = writePackagesIndex({ TIMESTAMP: '5', VERSION: '0' }, stanzas)
      const back = readPackagesIndex(text)
      expect(back.problems).toEqual([])
      expect(back.stanzas).toEqual(stanzas.map((s) => Object.fromEntries(Object.entries(s).filter(([, v]) => v !== ''))))
    }), { numRuns: 300 })
  })

  it('survives any bytes: a result or ERR_PACKAGES_INVALID, never anything else', () => {
    const line = fc.oneof(
      fc.constantFrom('', 'TIMESTAMP: 1', 'VERSION: 0', 'CPV: a/b-1', 'SIZE: 3', 'PATH: ../x', 'USE: a b'),
      fc.string({ maxLength: 30 }),
      fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b).toString('latin1'))
    )
    fc.assert(fc.property(fc.array(line, { maxLength: 30 }), fc.boolean(), (lines, binary) => {
      const text = lines.join('\n')
      const data = binary ? Buffer.from(text, 'latin1') : Buffer.from(text)
      let idx
      try {
        idx = readPackagesIndex(data)
      } catch (err) {
        expect((err as { code?: string }).code).toBe('ERR_PACKAGES_INVALID')
        return
      }
      for (const s of [idx.header, ...idx.stanzas]) {
        for (const v of Object.values(s)) expect(valueProblem(v)).toBeNull()
      }
      // Whatever it kept can be written and read back.
      const again = readPackagesIndex(writePackagesIndex(idx.header, idx.stanzas.map((s) => ({ ...s }))))
      expect(again.stanzas.length).toBeLessThanOrEqual(idx.stanzas.length)
    }), { numRuns: Number(process.env.DISTSWARM_FUZZ_RUNS ?? 2000) })
  })
})

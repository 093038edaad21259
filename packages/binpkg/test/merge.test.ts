import { describe, expect, it } from 'vitest'
import { BinhostIndex, readPackagesIndex, type OfferedBuild } from '../src/index.js'
import { portageRead } from './fixtures.js'

const CHOST = 'x86_64-pc-linux-gnu'
const A = 'a'.repeat(64)
const B = 'b'.repeat(64)
const C = 'c'.repeat(64)

function offer (digestChar: string, builder: string, fields: Record<string, string>, group = CHOST): OfferedBuild {
  return {
    blake2b: digestChar.repeat(128),
    builder,
    group,
    fields: {
      CPV: 'dev-db/mariadb-11.4.5',
      BUILD_ID: '1',
      BUILD_TIME: '1764460000',
      CHOST,
      EAPI: '8',
      IUSE: 'minimal test',
      KEYWORDS: 'amd64',
      MD5: '0'.repeat(32),
      SHA1: '1'.repeat(40),
      MTIME: '1764460001',
      PATH: 'dev-db/mariadb/mariadb-11.4.5-1.gpkg.tar',
      SIZE: '100',
      USE: '-minimal',
      ...fields
    }
  }
}

describe('BinhostIndex', () => {
  it('keeps two builds of one CPV apart: own BUILD_IDs and PATHs, each its own USE', () => {
    const idx = new BinhostIndex({ chost: CHOST, group: CHOST, trust: new Set([A, B]) })
    const merged = idx.merge([offer('1', A, { USE: '' }), offer('2', B, { USE: 'minimal' })], 1000)
    const read = portageRead(merged.text)
    expect(read.header).toMatchObject({ VERSION: '0', TIMESTAMP: '1000', PACKAGES: '2', CHOST })
    expect(read.packages.map((p) => p.USE ?? '')).toEqual(['', 'minimal'])
    const ids = read.packages.map((p) => p.BUILD_ID)
    const paths = read.packages.map((p) => p.PATH)
    expect(new Set(ids).size).toBe(2)
    expect(new Set(paths).size).toBe(2)
    for (const p of read.packages) {
      expect(p.PATH).toBe(`dev-db/mariadb/mariadb-11.4.5-${p.BUILD_ID}.gpkg.tar`)
      expect(merged.builds.get(p.PATH!)).toMatchObject({ cpv: 'dev-db/mariadb-11.4.5', size: 100, md5: '0'.repeat(32) })
      for (const k of ['SIZE', 'MTIME', 'MD5', 'SHA1', 'EAPI', 'IUSE', 'KEYWORDS']) expect(p[k]).toBeTruthy()
    }
    expect(readPackagesIndex(merged.text).problems).toEqual([])
  })

  it('offers only trusted builders, this CHOST and this group, and says why not', () => {
    const idx = new BinhostIndex({ chost: CHOST, group: 'native-a', trust: new Set([A, B]) })
    const merged = idx.merge([
      offer('1', A, {}, 'native-a'),
      offer('2', C, {}, 'native-a'),
      offer('3', B, { CHOST: 'aarch64-unknown-linux-gnu' }, 'native-a'),
      offer('4', B, {}, 'native-b')
    ], 1000)
    expect(portageRead(merged.text).packages).toHaveLength(1)
    expect(merged.skipped.map((s) => s.reason)).toEqual([
      'builder not in binpkg-trust',
      `CHOST aarch64-unknown-linux-gnu, not ${CHOST}`,
      'group native-b, not native-a'
    ])
    const all = new BinhostIndex({ chost: CHOST, group: 'native-a', trust: 'all-members' })
    expect(portageRead(all.merge([offer('2', C, {}, 'native-a')]).text).packages).toHaveLength(1)
  })

  it('stays one valid document whatever a peer sends: injected lines, bad paths, fetch commands', () => {
    const idx = new BinhostIndex({ chost: CHOST, group: CHOST, trust: 'all-members' })
    const merged = idx.merge([
      offer('1', A, { USE: 'x\nPATH: /etc/shadow' }),
      offer('2', A, { PATH: '../../../etc/passwd.gpkg.tar' }),
      offer('3', A, { CPV: 'dev-db/mariadb' }),
      offer('4', A, { FETCHCOMMAND: 'rm -rf /', RESUMECOMMAND: 'x', BASE_URI: 'http://evil/', DESC: 'ok' }),
      { ...offer('5', A, {}), blake2b: 'not-hex' }
    ], 1000)
    const read = portageRead(merged.text)
    expect(read.packages).toHaveLength(1)
    expect(read.packages[0]).not.toHaveProperty('FETCHCOMMAND')
    expect(read.packages[0]).not.toHaveProperty('RESUMECOMMAND')
    expect(read.packages[0]).not.toHaveProperty('BASE_URI')
    expect(read.packages[0]!.DESC).toBe('ok')
    expect(merged.text).not.toContain('/etc/shadow')
    expect(merged.skipped).toHaveLength(4)
    expect(readPackagesIndex(merged.text).problems).toEqual([])
  })

  it('keeps TIMESTAMP while the content is the same and moves it forward when it changes', () => {
    const idx = new BinhostIndex({ chost: CHOST, group: CHOST, trust: 'all-members' })
    const one = [offer('1', A, {})]
    expect(idx.merge(one, 1000).timestamp).toBe(1000)
    expect(idx.merge(one, 2000).timestamp).toBe(1000)
    // Past Portage's If-Modified-Since (cached TIMESTAMP + 5 s), however soon the content changes.
    expect(idx.merge([...one, offer('2', B, {})], 1000).timestamp).toBe(1006)
    expect(idx.merge(one, 5000).timestamp).toBe(5000)
  })

  it('gives the same document (one Buffer) while the content is the same, a new one when it changes', () => {
    const idx = new BinhostIndex({ chost: CHOST, group: CHOST, trust: 'all-members' })
    const one = [offer('1', A, {})]
    const first = idx.merge(one, 1000)
    expect(idx.merge(one, 2000).body).toBe(first.body)
    const two = idx.merge([...one, offer('2', B, {})], 3000)
    expect(two.body).not.toBe(first.body)
    expect(readPackagesIndex(two.body).stanzas).toHaveLength(2)
    expect(two.text).toBe(two.body.toString())
  })

  it('gives the same file offered by two holders one stanza, and stable BUILD_IDs', () => {
    const idx = new BinhostIndex({ chost: CHOST, group: CHOST, trust: 'all-members' })
    const a = idx.merge([offer('1', A, {}), offer('1', B, {}), offer('2', B, { USE: 'minimal' })], 1000)
    const b = new BinhostIndex({ chost: CHOST, group: CHOST, trust: 'all-members' }).merge([offer('2', B, { USE: 'minimal' }), offer('1', B, {})], 1000)
    expect(portageRead(a.text).packages).toHaveLength(2)
    expect(a.text).toBe(b.text)
  })

  it('skips a build advertised at another size than its SIZE: a download of it could never be served', () => {
    const idx = new BinhostIndex({ chost: CHOST, group: CHOST, trust: 'all-members' })
    const merged = idx.merge([{ ...offer('1', A, {}), size: 99 }, { ...offer('2', A, { USE: 'minimal' }), size: 100 }, offer('3', A, { USE: 'test' })], 1000)
    expect(portageRead(merged.text).packages.map((p) => p.USE)).toEqual(['minimal', 'test'])
    expect(merged.skipped).toEqual([{ cpv: 'dev-db/mariadb-11.4.5', builder: A, blake2b: '1'.repeat(128), reason: 'advertised at 99 bytes, its SIZE says 100' }])
  })

  it('refuses a CHOST or group that is not one word, with ERR_PACKAGES_VALUE', () => {
    expect(() => new BinhostIndex({ chost: 'x\nVERSION: 9', group: 'g', trust: 'all-members' })).toThrow(expect.objectContaining({ code: 'ERR_PACKAGES_VALUE' }))
    expect(() => new BinhostIndex({ chost: 'x', group: '', trust: 'all-members' })).toThrow(expect.objectContaining({ code: 'ERR_PACKAGES_VALUE' }))
  })
})

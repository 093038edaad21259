/**
 * The fuzzed properties of binpkg: the `Packages` reader (a builder's index,
 * read from disk or a peer) and the binhost's merged index (what Portage on
 * a client reads from the gateway). Data, like the protocol's properties, so
 * the shared runner (packages/protocol/test/runner.ts) runs them at any
 * scale and replays a saved failing input.
 */
import { deepStrictEqual, equal, ok } from 'node:assert/strict'
import fc from 'fast-check'
import { BinhostIndex, readPackagesIndex, valueProblem, writePackagesIndex, type Fields, type OfferedBuild } from '../src/index.js'
import type { FuzzProperty } from '../../protocol/test/runner.js'

const CHOST = 'x86_64-pc-linux-gnu'
/** Keys the merge may write: the builder's keys it passes through, and its own. */
const MERGED_KEYS = new Set([
  'BDEPEND', 'BUILD_TIME', 'CHOST', 'CPV', 'DEFINED_PHASES', 'DEPEND', 'DESC', 'EAPI', 'IDEPEND', 'IUSE', 'KEYWORDS',
  'LICENSE', 'MD5', 'MTIME', 'PDEPEND', 'PROPERTIES', 'PROVIDES', 'RDEPEND', 'REPO', 'REQUIRES', 'RESTRICT', 'SHA1',
  'SIZE', 'SLOT', 'USE', 'BUILD_ID', 'PATH'
])
/** Only these builders are trusted in the merge property; 'c' is a member that is not. */
const TRUSTED = new Set(['a', 'b'])

/**
 * A `Packages` document read by Portage's rules (PackageIndex in
 * getbinpkg.py), written apart from ours: Python reads the file in text
 * mode, so `\r\n`, `\r` and `\n` all end a line; the first `:` splits a
 * line and one character after it is dropped; a later key wins; a blank
 * line ends a block; the first empty block ends the file (a stanza after it
 * is never seen); a stanza without CPV is passed over.
 */
export function portageReading (bytes: Buffer): { header: Fields, stanzas: Fields[] } {
  // Portage decodes with errors='replace': the same U+FFFD that TextDecoder gives.
  const lines = bytes.toString('utf8').split(/\r\n|\r|\n/)
  let at = 0
  const block = (): Fields => {
    const d: Fields = {}
    while (at < lines.length) {
      const line = lines[at++]!
      if (line === '') break
      const colon = line.indexOf(':')
      if (colon !== -1) d[line.slice(0, colon)] = line.slice(colon + 2)
    }
    return d
  }
  const header = block()
  const stanzas: Fields[] = []
  for (;;) {
    const d = block()
    if (Object.keys(d).length === 0) break
    if (d.CPV) stanzas.push(d)
  }
  return { header, stanzas }
}

const plain = (f: Fields): Fields => Object.fromEntries(Object.entries(f))
const withoutEmpty = (f: Fields): Fields => Object.fromEntries(Object.entries(f).filter(([, v]) => v !== ''))

/** Characters that break line-based formats, or look as if they might, with ordinary ones. */
const trickyChar = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('a', 'Z', '0', ' ', ':', ': ', '-', '/', '.', '=', '_') },
  { weight: 3, arbitrary: fc.constantFrom('\n', '\r', '\r\n', '\t', '\u0000', '\u000b', '\u000c', '\u001f', '\u007f', '\u0085', '\u2028', '\u2029', '\ufeff', '\ufffd', '\ud800', 'é', '😀') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) }
)
const trickyText = fc.string({ unit: trickyChar, maxLength: 12 })
/** A value: mostly ordinary, sometimes tricky, sometimes empty or over a small limit. */
const value = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: fc.constantFrom(...'abcxyz019 ./_+-'), maxLength: 20 }) },
  { weight: 3, arbitrary: trickyText },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', ' x', 'x ', 'a: b', 'CPV: evil/x-1', 'x\nPATH: /etc/shadow', 'x\r\nCPV: evil/x-1') }
)
const key = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...MERGED_KEYS, 'FETCHCOMMAND', 'RESUMECOMMAND', 'PACKAGES', 'TIMESTAMP', 'VERSION', 'repository', 'REPO') },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...'AZaz_'), fc.string({ unit: fc.constantFrom(...'AZaz09_'), maxLength: 8 })).map(([a, b]) => a + b) },
  { weight: 1, arbitrary: trickyText }
)

/** One line of a Packages file as a peer or a broken disk may give it. */
const line = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('', 'TIMESTAMP: 1', 'VERSION: 0', 'VERSION: 1', 'CPV: a/b-1', 'CPV: dev-libs/foo-1.2-r3', 'CPV:', 'SIZE: 3', 'PATH: ../x', 'USE: a b', 'PACKAGES: 2', '\r', ' ', 'CPV: a/b-1\r') },
  { weight: 4, arbitrary: fc.tuple(key, value).map(([k, v]) => `${k}: ${v}`) },
  { weight: 1, arbitrary: trickyText },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b).toString('latin1')) }
)
/** A whole file: lines joined by a newline (sometimes CRLF), as UTF-8 or byte for byte (latin1), sometimes over a tiny limit. */
const packagesFile = fc.record({
  lines: fc.array(line, { maxLength: 40 }),
  crlf: fc.boolean(),
  binary: fc.boolean(),
  limits: fc.option(fc.record({ maxValue: fc.integer({ min: 0, max: 12 }), maxKeys: fc.integer({ min: 1, max: 4 }), maxStanzas: fc.integer({ min: 1, max: 3 }), maxBytes: fc.integer({ min: 0, max: 400 }) }), { freq: 4 })
}).map(({ lines, crlf, binary, limits }) => {
  const text = lines.join(crlf ? '\r\n' : '\n')
  return { data: binary ? Buffer.from(text, 'latin1') : Buffer.from(text), limits: limits ?? undefined }
})

/** Lower-case hex of `n` random bytes (a byte array is far quicker to draw than a string matching a pattern). */
const hex = (n: number): fc.Arbitrary<string> => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString('hex'))
/** 128 hex digits; the first 7 (the merge's BUILD_ID) often shared, so that IDs collide. */
const digest = fc.tuple(fc.constantFrom('0000000', '0000001', 'abcdef0', 'fffffff'), hex(64), fc.boolean())
  .map(([head, h, shared]) => shared ? head + h.slice(7) : h)
const cpv = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom('dev-libs/foo-1.0', 'dev-libs/foo-1.0-r1', 'app-misc/bar-2.3_rc1', 'a/b-1', 'sys-apps/portage-3.0.66') },
  { weight: 1, arbitrary: fc.constantFrom('', 'foo', 'a/b', '../a/b-1', 'a/b-1/../../c', 'a b/c-1', 'a/b-1\nPATH: x') },
  { weight: 1, arbitrary: trickyText }
)
const path = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.constantFrom('dev-libs/foo/foo-1.0-1.gpkg.tar', 'a/b/b-1-3.xpak', 'x.tbz2', 'a/b-1.tbz2') },
  { weight: 1, arbitrary: fc.constantFrom('', '/etc/shadow', '../../x.gpkg.tar', 'a//b.gpkg.tar', 'a/./b.xpak', 'a\\b.xpak', 'a/b.tar', 'a\u0000.xpak') },
  { weight: 1, arbitrary: trickyText }
)
const number = fc.oneof(fc.nat().map(String), fc.constantFrom('', '-1', '1e3', '0x10', '9'.repeat(16), ' 5'), trickyText)
const fields: fc.Arbitrary<Fields> = fc.record({
  CPV: fc.option(cpv, { nil: undefined, freq: 12 }),
  CHOST: fc.option(fc.constantFrom(CHOST, CHOST, CHOST, 'aarch64-unknown-linux-gnu', ''), { nil: undefined, freq: 12 }),
  SIZE: fc.option(number, { nil: undefined, freq: 12 }),
  PATH: path,
  BUILD_ID: fc.option(number, { nil: undefined }),
  MTIME: fc.option(number, { nil: undefined }),
  BUILD_TIME: fc.option(number, { nil: undefined }),
  MD5: fc.option(fc.oneof(hex(16), hex(16).map((h) => h.toUpperCase()), trickyText), { nil: undefined }),
  SHA1: fc.option(fc.oneof(hex(20), trickyText), { nil: undefined }),
  extra: fc.dictionary(key, value, { maxKeys: 6 })
}).map(({ extra, ...known }) => {
  const out: Fields = { ...extra }
  for (const [k, v] of Object.entries(known)) if (v !== undefined) out[k] = v
  return out
})
const offer: fc.Arbitrary<OfferedBuild> = fc.record({
  blake2b: fc.oneof({ weight: 12, arbitrary: digest }, { weight: 1, arbitrary: fc.constantFrom('', 'A'.repeat(128), 'g'.repeat(128), '0'.repeat(64)) }),
  builder: fc.constantFrom('a', 'b', 'c'),
  group: fc.constantFrom(CHOST, CHOST, CHOST, 'other'),
  fields
})
/** Offers with the same files held by several peers (the same digest twice). */
const offers = fc.array(offer, { maxLength: 12 }).chain((list) => fc.tuple(
  fc.constant(list),
  fc.array(fc.nat({ max: Math.max(0, list.length - 1) }), { maxLength: list.length === 0 ? 0 : 3 })
)).map(([list, again]) => [...list, ...again.map((i) => ({ ...list[i]!, builder: 'b' }))])

/** Every fuzzed property of binpkg; names are stable, as saved regressions refer to them. */
export const BINPKG_PROPERTIES: readonly FuzzProperty[] = [
  {
    group: 'readPackagesIndex',
    name: 'reads any bytes into an index or ERR_PACKAGES_INVALID, and what it keeps writes back as one document Portage reads the same',
    weight: 4,
    input: packagesFile,
    check: ({ data, limits }: { data: Buffer, limits: { maxValue: number, maxKeys: number, maxStanzas: number, maxBytes: number } | undefined }) => {
      let idx
      try {
        idx = readPackagesIndex(data, limits)
      } catch (err) {
        equal((err as { code?: string }).code, 'ERR_PACKAGES_INVALID', `not ERR_PACKAGES_INVALID: ${String(err)}`)
        return
      }
      ok(/^\d+$/.test(idx.header.TIMESTAMP ?? ''), 'a header without a TIMESTAMP was taken')
      ok(Number(idx.header.VERSION) <= 0, 'a header above VERSION 0 was taken')
      for (const s of [idx.header, ...idx.stanzas]) {
        for (const [k, v] of Object.entries(s)) equal(valueProblem(v, limits?.maxValue), null, `kept ${k}: ${JSON.stringify(v)}`)
        if (limits) ok(Object.keys(s).length <= limits.maxKeys, 'more keys than allowed')
      }
      if (limits) ok(idx.stanzas.length + idx.problems.length <= limits.maxStanzas + 1, 'more stanzas than allowed')
      for (const s of idx.stanzas) ok(s.CPV !== undefined && s.CPV !== '', 'a stanza without CPV was kept')
      // Written again (as a builder would after reading), it is one document, to us and to Portage alike.
      const text = Buffer.from(writePackagesIndex(idx.header, idx.stanzas.map(plain)))
      const again = readPackagesIndex(text)
      deepStrictEqual(again.problems, [])
      deepStrictEqual(again.stanzas.map(plain), idx.stanzas.map((s) => withoutEmpty(s)))
      const portage = portageReading(text)
      deepStrictEqual(portage.stanzas, idx.stanzas.map((s) => withoutEmpty(s)))
      deepStrictEqual(portage.header, withoutEmpty(plain(idx.header)))
    }
  },
  {
    group: 'BinhostIndex',
    name: 'merges any offered stanzas into one document Portage reads whole: every build once, its own PATH and BUILD_ID, no line a value could add',
    weight: 2,
    input: fc.tuple(offers, fc.boolean(), fc.integer({ min: 0, max: 2 ** 31 })),
    check: ([list, all, now]: [OfferedBuild[], boolean, number]) => {
      const index = new BinhostIndex({ chost: CHOST, group: CHOST, trust: all ? 'all-members' : TRUSTED, header: { ARCH: 'amd64' } })
      const merged = index.merge(list, now)
      const bytes = Buffer.from(merged.text)
      // Every line a key and a value, or the blank line that ends a block; never two blank lines in a row.
      for (const l of merged.text.split('\n').slice(0, -1)) ok(l === '' || /^[A-Z_][A-Z0-9_]*: [^\r\n]*$/.test(l), `a line that is no KEY: value: ${JSON.stringify(l)}`)
      ok(merged.text.endsWith('\n\n') && !merged.text.includes('\n\n\n'), 'an empty block would end Portage\'s reading early')
      const ours = readPackagesIndex(bytes)
      deepStrictEqual(ours.problems, [])
      const portage = portageReading(bytes)
      deepStrictEqual(portage.stanzas, ours.stanzas.map(plain))
      deepStrictEqual(portage.header, plain(ours.header))
      equal(portage.header.PACKAGES, String(portage.stanzas.length))
      equal(portage.header.TIMESTAMP, String(merged.timestamp))
      equal(portage.header.CHOST, CHOST)
      equal(portage.stanzas.length, merged.builds.size)
      const ids = new Set<string>()
      for (const s of portage.stanzas) {
        const build = merged.builds.get(s.PATH!)
        ok(build !== undefined, `PATH ${s.PATH} is not one of the merge's builds`)
        equal(build.cpv, s.CPV)
        equal(String(build.buildId), s.BUILD_ID)
        ok(all || TRUSTED.has(build.builder), `a build of untrusted ${build.builder}`)
        ok(!ids.has(`${s.CPV} ${s.BUILD_ID}`), `BUILD_ID ${s.BUILD_ID} twice for ${s.CPV}`)
        ids.add(`${s.CPV} ${s.BUILD_ID}`)
        for (const k of Object.keys(s)) ok(MERGED_KEYS.has(k), `key ${k} passed through`)
        ok(/^\d+$/.test(s.MTIME ?? ''), 'a stanza without MTIME')
      }
      // The same offers in another order, on a fresh index at the same time: the same document.
      const again = new BinhostIndex({ chost: CHOST, group: CHOST, trust: all ? 'all-members' : TRUSTED, header: { ARCH: 'amd64' } }).merge([...list].reverse(), now)
      equal(again.text, merged.text)
      // Merged again unchanged: TIMESTAMP stays; Portage re-reads only when it grows.
      equal(index.merge(list, now + 100).timestamp, merged.timestamp)
    }
  }
]

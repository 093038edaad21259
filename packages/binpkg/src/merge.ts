/**
 * The binhost's index: the builds this box may take from its peers, merged
 * into one Packages document Portage reads as a binrepo. Only trusted
 * builders, only this box's CHOST and compatibility group; every PATH and
 * BUILD_ID of the gateway's own making, so two builds of one CPV (other USE)
 * are two instances and never overwrite each other in a client's PKGDIR.
 */
import { createHash } from 'node:crypto'
import { isHexDigest } from '@distswarm/protocol'
import { buildFromStanza, type Build } from './build.js'
import { BinpkgError } from './errors.js'
import { block, valueProblem, type Fields } from './index-file.js'

/** A build a peer (or this box) offers, with the BLAKE2B of its file. */
export interface OfferedBuild {
  /** BLAKE2B-512 of the package file, lower-case hex: its address in the swarm. */
  blake2b: string
  /** Public key (hex) of the box that built and indexed it. */
  builder: string
  /** The builder's compatibility group (`binpkg-group`). */
  group: string
  /** The stanza as the builder's Packages has it, header CHOST filled in. */
  fields: Fields
  /**
   * The size its advertisement gives, which a download of it is checked
   * against; absent for this box's own builds (their files were checked against SIZE).
   */
  size?: number
}

export type Trust = 'all-members' | ReadonlySet<string>

export interface MergeInit {
  chost: string
  group: string
  trust: Trust
  /** Extra header keys (ARCH, …), validated like any value. */
  header?: Fields
}

export interface MergedBuild {
  blake2b: string
  builder: string
  cpv: string
  buildId: number
  size: number
  md5: string | null
  sha1: string | null
}

export interface Skipped { cpv: string, builder: string, blake2b: string, reason: string }

export interface MergedIndex {
  /** The document, UTF-8: what the gateway sends (the only copy held). */
  body: Buffer
  /** The document as a string, decoded from body at each read: for tests and small indexes. */
  readonly text: string
  /** Header TIMESTAMP, seconds. */
  timestamp: number
  /** By the gateway PATH of each stanza. */
  builds: Map<string, MergedBuild>
  skipped: Skipped[]
}

/** Stanza keys passed through from a builder; PATH and BUILD_ID are the gateway's, fetch commands are never taken. */
const PASSED_KEYS = new Set([
  'BDEPEND', 'BUILD_TIME', 'CHOST', 'CPV', 'DEFINED_PHASES', 'DEPEND', 'DESC', 'EAPI', 'IDEPEND', 'IUSE', 'KEYWORDS',
  'LICENSE', 'MD5', 'MTIME', 'PDEPEND', 'PROPERTIES', 'PROVIDES', 'RDEPEND', 'REPO', 'REQUIRES', 'RESTRICT', 'SHA1',
  'SIZE', 'SLOT', 'USE'
])
/** BUILD_IDs come from the digest: stable across restarts and peers, below 2^28. */
const BUILD_ID_HEX = 7
/**
 * Portage asks for Packages with If-Modified-Since = its cached TIMESTAMP + 5 s
 * (bintree.py, TIMESTAMP_TOLERANCE): a changed index must be stamped past
 * that, or a client that read the old one within those seconds keeps it.
 */
const PORTAGE_TIMESTAMP_TOLERANCE = 5

function trusted (trust: Trust, builder: string): boolean {
  return trust === 'all-members' || trust.has(builder)
}

/** Every key a served stanza may have, in the order a Packages file lists them: the passed ones and the gateway's own. */
const STANZA_KEYS = [...new Set([...PASSED_KEYS, 'BUILD_ID', 'MTIME', 'PATH'])].sort()

/** Why a builder's stanza cannot be served (a value that would break the index), or null. */
function stanzaProblem (fields: Fields): string | null {
  for (const k of PASSED_KEYS) {
    const v = fields[k]
    if (v === undefined || !Object.hasOwn(fields, k)) continue
    const problem = valueProblem(v)
    if (problem !== null) return `${k}: ${problem}`
  }
  return null
}

/** A stanza the gateway serves: the builder's fields it passes, and its own BUILD_ID, PATH and MTIME. */
interface Served {
  merged: MergedBuild
  fields: Fields
  path: string
  /** Portage's next run crashes on a stanza without MTIME, or with one that is not a whole number. */
  mtime: string
}

/** The value of `key` in the served stanza, '' when it has none (left out, as an empty value is). */
function servedValue (s: Served, key: string): string {
  if (key === 'BUILD_ID') return String(s.merged.buildId)
  if (key === 'PATH') return s.path
  if (key === 'MTIME') return s.mtime
  return Object.hasOwn(s.fields, key) ? s.fields[key]! : ''
}

/** Bytes of a served stanza: `KEY: value` lines and the blank line after. */
function stanzaBytes (s: Served): number {
  let n = 1
  for (const key of STANZA_KEYS) {
    const v = servedValue(s, key)
    if (v !== '') n += key.length + 3 + Buffer.byteLength(v)
  }
  return n
}

/** Writes a served stanza into `out` at `at`; returns the offset after it. */
function writeStanza (s: Served, out: Buffer, at: number): number {
  for (const key of STANZA_KEYS) {
    const v = servedValue(s, key)
    if (v === '') continue
    at += out.write(key, at, 'latin1')
    out[at++] = 0x3a // ':'
    out[at++] = 0x20
    at += out.write(v, at)
    out[at++] = 0x0a
  }
  out[at++] = 0x0a
  return at
}

export function gatewayPath (build: Build, buildId: number): string {
  const { category, pn, pf } = build.parsed
  return `${category}/${pn}/${pf}-${buildId}.${build.format === 'gpkg' ? 'gpkg.tar' : 'xpak'}`
}

/**
 * Keeps the header TIMESTAMP steady while the content stays the same, and
 * moves it forward (never back) when it changes: Portage re-reads a binhost
 * only when TIMESTAMP grows.
 */
export class BinhostIndex {
  private readonly init: MergeInit
  private lastBody: string | null = null
  private lastTimestamp = 0
  /** The document of the last merge: given again while the content stays the same (one copy, and the gateway's gzip of it stays good). */
  private lastDocument: Buffer | null = null

  constructor (init: MergeInit) {
    for (const [k, v] of Object.entries(init.header ?? {})) {
      const problem = valueProblem(v)
      if (problem !== null) throw BinpkgError.VALUE(k, problem)
    }
    for (const [k, v] of [['chost', init.chost], ['group', init.group]] as const) {
      if (v === '' || valueProblem(v) !== null || /\s/.test(v)) throw BinpkgError.VALUE(k, `${JSON.stringify(v)} is not a single word`)
    }
    this.init = init
  }

  /** Merges `offers` into one index; `nowSeconds` stamps it when its content changed. */
  merge (offers: Iterable<OfferedBuild>, nowSeconds = Math.floor(Date.now() / 1000)): MergedIndex {
    const { chost, group, trust } = this.init
    const skipped: Skipped[] = []
    const byDigest = new Map<string, { offer: OfferedBuild, build: Build }>()
    for (const offer of offers) {
      const cpv = offer.fields.CPV ?? ''
      const skip = (reason: string): void => { skipped.push({ cpv, builder: offer.builder, blake2b: offer.blake2b, reason }) }
      if (!trusted(trust, offer.builder)) { skip('builder not in binpkg-trust'); continue }
      if (offer.group !== group) { skip(`group ${offer.group}, not ${group}`); continue }
      if ((offer.fields.CHOST ?? '') !== chost) { skip(`CHOST ${offer.fields.CHOST ?? '(none)'}, not ${chost}`); continue }
      if (!isHexDigest(offer.blake2b)) { skip('no BLAKE2B digest'); continue }
      // The same file from two holders is one instance.
      if (byDigest.has(offer.blake2b)) continue
      let build: Build
      try {
        build = buildFromStanza(offer.fields)
      } catch (err) {
        skip((err as Error).message)
        continue
      }
      // Clients check the file against SIZE: a download of another size could never be served.
      if (offer.size !== undefined && offer.size !== build.size) { skip(`advertised at ${offer.size} bytes, its SIZE says ${build.size}`); continue }
      byDigest.set(offer.blake2b, { offer, build })
    }

    const taken = new Map<string, Set<number>>()
    const builds = new Map<string, MergedBuild>()
    const served: Served[] = []
    // Digest order makes BUILD_ID collisions resolve the same way every time.
    for (const digest of [...byDigest.keys()].sort()) {
      const { offer, build } = byDigest.get(digest)!
      const ids = taken.get(build.cpv) ?? new Set<number>()
      let buildId = parseInt(digest.slice(0, BUILD_ID_HEX), 16) || 1
      while (ids.has(buildId)) buildId++
      const problem = stanzaProblem(offer.fields)
      if (problem !== null) {
        skipped.push({ cpv: build.cpv, builder: offer.builder, blake2b: digest, reason: BinpkgError.BAD_BUILD(build.cpv, problem).message })
        continue
      }
      const path = gatewayPath(build, buildId)
      ids.add(buildId)
      taken.set(build.cpv, ids)
      const merged = { blake2b: digest, builder: offer.builder, cpv: build.cpv, buildId, size: build.size, md5: build.md5, sha1: build.sha1 }
      const buildTime = offer.fields.BUILD_TIME ?? ''
      // A builder's BUILD_TIME of "-1", "1.5" or "1e400" would make "-1", "1.5", "Infinity".
      served.push({ merged, fields: offer.fields, path, mtime: String(build.mtime ?? (/^\d{1,15}$/.test(buildTime) ? Number(buildTime) : 0)) })
      builds.set(path, merged)
    }
    served.sort((a, b) => a.merged.cpv < b.merged.cpv ? -1 : a.merged.cpv > b.merged.cpv ? 1 : a.merged.buildId - b.merged.buildId)

    // The stanzas are written straight into the one Buffer that is sent: no string per stanza, none of the whole
    // (tens of MB for 50 000 builds), so a merge leaves little garbage behind. Room for the header is kept in front.
    let bytes = 0
    for (const s of served) bytes += stanzaBytes(s)
    const headerRoom = Buffer.byteLength(block({ ...this.init.header, CHOST: chost, PACKAGES: '9'.repeat(20), TIMESTAMP: '9'.repeat(20), VERSION: '0' }))
    const out = Buffer.allocUnsafe(headerRoom + bytes)
    let at = headerRoom
    for (const s of served) at = writeStanza(s, out, at)
    const digest = createHash('sha256').update(out.subarray(headerRoom)).update(JSON.stringify(this.init.header ?? {})).digest('hex')
    const previous = this.lastDocument
    const same = previous !== null && digest === this.lastBody
    if (!same) {
      this.lastBody = digest
      this.lastTimestamp = Math.max(nowSeconds, this.lastTimestamp + PORTAGE_TIMESTAMP_TOLERANCE + 1)
    }
    const header: Fields = {
      ...this.init.header,
      CHOST: chost,
      PACKAGES: String(served.length),
      TIMESTAMP: String(this.lastTimestamp),
      VERSION: '0'
    }
    let document: Buffer
    if (same) {
      document = previous
    } else {
      const head = Buffer.from(block(header))
      const start = headerRoom - head.byteLength
      head.copy(out, start)
      document = this.lastDocument = out.subarray(start)
    }
    return {
      body: document,
      get text () { return document.toString() },
      timestamp: this.lastTimestamp,
      builds,
      skipped
    }
  }
}

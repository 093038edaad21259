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
import { valueProblem, writePackagesIndex, type Fields } from './index-file.js'

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
  text: string
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

/** The stanza the gateway serves for `build`, or why not. */
function stanzaFor (build: Build, fields: Fields, buildId: number, path: string): Fields {
  const out: Fields = {}
  for (const [k, v] of Object.entries(fields)) {
    if (!PASSED_KEYS.has(k)) continue
    const problem = valueProblem(v)
    if (problem !== null) throw BinpkgError.BAD_BUILD(build.cpv, `${k}: ${problem}`)
    out[k] = v
  }
  out.BUILD_ID = String(buildId)
  out.PATH = path
  // Portage's next run crashes on a stanza without MTIME, or with one that is not a whole number
  // (a builder's BUILD_TIME of "-1", "1.5" or "1e400" made "-1", "1.5", "Infinity").
  out.MTIME = String(build.mtime ?? (/^\d{1,15}$/.test(fields.BUILD_TIME ?? '') ? Number(fields.BUILD_TIME) : 0))
  return out
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
      try {
        byDigest.set(offer.blake2b, { offer, build: buildFromStanza(offer.fields) })
      } catch (err) {
        skip((err as Error).message)
      }
    }

    const taken = new Map<string, Set<number>>()
    const builds = new Map<string, MergedBuild>()
    const stanzas: Fields[] = []
    // Digest order makes BUILD_ID collisions resolve the same way every time.
    for (const digest of [...byDigest.keys()].sort()) {
      const { offer, build } = byDigest.get(digest)!
      const ids = taken.get(build.cpv) ?? new Set<number>()
      let buildId = parseInt(digest.slice(0, BUILD_ID_HEX), 16) || 1
      while (ids.has(buildId)) buildId++
      const path = gatewayPath(build, buildId)
      let stanza: Fields
      try {
        stanza = stanzaFor(build, offer.fields, buildId, path)
      } catch (err) {
        skipped.push({ cpv: build.cpv, builder: offer.builder, blake2b: digest, reason: (err as Error).message })
        continue
      }
      ids.add(buildId)
      taken.set(build.cpv, ids)
      stanzas.push(stanza)
      builds.set(path, { blake2b: digest, builder: offer.builder, cpv: build.cpv, buildId, size: build.size, md5: build.md5, sha1: build.sha1 })
    }
    stanzas.sort((a, b) => a.CPV! < b.CPV! ? -1 : a.CPV! > b.CPV! ? 1 : Number(a.BUILD_ID) - Number(b.BUILD_ID))

    const body = writePackagesIndex({}, stanzas)
    const digest = createHash('sha256').update(body).update(JSON.stringify(this.init.header ?? {})).digest('hex')
    if (digest !== this.lastBody) {
      this.lastBody = digest
      this.lastTimestamp = Math.max(nowSeconds, this.lastTimestamp + PORTAGE_TIMESTAMP_TOLERANCE + 1)
    }
    const header: Fields = {
      ...this.init.header,
      CHOST: chost,
      PACKAGES: String(stanzas.length),
      TIMESTAMP: String(this.lastTimestamp),
      VERSION: '0'
    }
    // The header is written apart: writePackagesIndex({}, …) began the body with an empty header block.
    const text = writePackagesIndex(header, []) + body.slice(1)
    return { text, timestamp: this.lastTimestamp, builds, skipped }
  }
}

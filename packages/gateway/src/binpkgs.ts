/**
 * The binhost under `/binpkgs/`: the merged `Packages` index Portage reads as
 * a binrepo (and its gzip), and the package files at the PATHs that index
 * names. As for distfiles, no part of a URL becomes a filesystem path: a
 * PATH is only a key the source looks up in its index.
 */
import { promisify } from 'node:util'
import { gzip as gzipCallback } from 'node:zlib'
import type { ServedFile } from './serve.js'

const gzip = promisify(gzipCallback)

/**
 * The merged index now (as text, or already encoded: a large index is best
 * held once, as the bytes sent), or why this box serves no builds.
 */
export type BinhostIndexAnswer = { text: string, timestamp: number } | { body: Buffer, timestamp: number } | { unavailable: string }

/** The document of an answer that has one. */
export type IndexDocument = string | Buffer

/** What the binhost needs from the agent (`agent.binhost()`). */
export interface BinhostSource {
  /** The merged Packages document now (header TIMESTAMP in seconds), or why this box serves no builds. Memory only. */
  index: () => BinhostIndexAnswer
  /** The verified file this box holds for a PATH of the index, else undefined. Memory only. */
  local: (path: string) => ServedFile | undefined
  /**
   * Fetches the build at PATH from the peers holding it, verifies it
   * (BLAKE2B, SIZE, MD5, SHA1), keeps it and resolves to the file. Rejects
   * with a DistswarmError: ERR_NOT_FOUND when PATH is not in the index.
   */
  fetch: (path: string) => Promise<ServedFile>
}

export type BinpkgsRequest =
  | { kind: 'index', gzip: boolean }
  | { kind: 'package', path: string }
  | { kind: 'bad', status: 400 | 404, reason: string }

/** Longest PATH segment: a file name on Linux. */
const MAX_SEGMENT = 255
/** A category, package name or file name as the binhost makes them: no leading dot, nothing but Portage's name characters. */
const SEGMENT = /^[A-Za-z0-9_+][A-Za-z0-9+_.-]*$/
const PACKAGE_FILE = /\.(gpkg\.tar|xpak|tbz2)$/
// eslint-disable-next-line no-control-regex
const HOSTILE = /[\u0000-\u001f\u007f\\/]/

/**
 * Reads the path after `/binpkgs/` (still percent-encoded, no query).
 * Segments are split before decoding, so an encoded slash stays inside its
 * segment and is refused there. A path that tries to leave the binhost
 * (`..`, an empty segment, NUL, a backslash) is a 400; a harmless path that
 * is no index and no package of this binhost's making is a 404.
 */
export function parseBinpkgsPath (rest: string): BinpkgsRequest {
  if (rest === 'Packages') return { kind: 'index', gzip: false }
  if (rest === 'Packages.gz') return { kind: 'index', gzip: true }
  const parts: string[] = []
  for (const raw of rest.split('/')) {
    let part: string
    try {
      part = decodeURIComponent(raw)
    } catch {
      return { kind: 'bad', status: 400, reason: 'malformed percent-encoding' }
    }
    parts.push(part)
  }
  if (parts.length === 1 && parts[0] === '') return { kind: 'bad', status: 404, reason: 'no listing here: Portage reads /binpkgs/Packages' }
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..') return { kind: 'bad', status: 400, reason: `a path with a ${JSON.stringify(part)} segment` }
    if (HOSTILE.test(part)) return { kind: 'bad', status: 400, reason: 'a path with a control character, an encoded slash or a backslash' }
    if (part.length > MAX_SEGMENT) return { kind: 'bad', status: 400, reason: `a path segment over ${MAX_SEGMENT} characters` }
  }
  if (parts.length !== 3 || !parts.every((p) => SEGMENT.test(p)) || !PACKAGE_FILE.test(parts[2]!)) {
    return { kind: 'bad', status: 404, reason: 'not found: neither Packages nor a CATEGORY/PN/PF-BUILD_ID.gpkg.tar path of this binhost' }
  }
  return { kind: 'package', path: parts.join('/') }
}

/**
 * The encoded body of the last index served, and its gzip: computed once per
 * document, however many clients ask (a merged index of 50 000 builds is
 * tens of MB; Portage asks for Packages.gz first).
 */
export class IndexBodies {
  /** The last document: a string and its encoding, or an encoded one held weakly (its owner keeps it while it is current). */
  private text: string | null = null
  private encoded: WeakRef<Buffer> | null = null
  private plain: Buffer = Buffer.alloc(0)
  private gz: Promise<Buffer> | null = null

  private current (doc: IndexDocument): void {
    if (typeof doc === 'string' ? doc === this.text : this.encoded?.deref() === doc) return
    if (typeof doc === 'string') {
      this.text = doc
      this.encoded = null
      this.plain = Buffer.from(doc)
    } else {
      // An encoded document is sent as it is: no second copy, and none kept once its owner let it go.
      this.text = null
      this.encoded = new WeakRef(doc)
      this.plain = Buffer.alloc(0)
    }
    this.gz = null
  }

  body (doc: IndexDocument): Buffer {
    if (typeof doc !== 'string') return doc
    this.current(doc)
    return this.plain
  }

  gzip (doc: IndexDocument): Promise<Buffer> {
    this.current(doc)
    if (this.gz === null) {
      const p = this.gz = gzip(this.body(doc))
      // A failed gzip is tried again by the next client.
      p.catch(() => { if (this.gz === p) this.gz = null })
    }
    return this.gz
  }
}

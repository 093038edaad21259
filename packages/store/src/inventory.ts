/**
 * What this box holds, in memory: every indexed file by path, by digest and
 * by name, and the 'added'/'removed' events peers are told from. No I/O.
 */
import { EventEmitter } from 'node:events'
import { toHex, type FileEntry } from '@distswarm/protocol'
import type { HashedFile } from './pool.js'
import type { StatKey } from './scan.js'

/** A file this box holds: an inventory entry plus where it lies. */
export interface LocalFile extends FileEntry {
  path: string
}

/** A file of the cache dir, for the quota. */
export interface CacheFile extends LocalFile {
  /** ms since the epoch: the later of its last use (Store.touch) and its mtime */
  usedAt: number
}

export interface StoreEvents {
  /** Content this box did not hold, or held content now advertised under another name. */
  added: [LocalFile]
  /** Content this box no longer holds: every file with that BLAKE2B is gone or changed. */
  removed: [LocalFile]
}

/** One indexed file and the stat it was hashed at. */
export interface Tracked {
  file: LocalFile
  hex: string
  /** Index of its dir in the store's dirs: an earlier dir's copy is advertised first. */
  dir: number
  stat: StatKey
}

const hexOf = (blake2b: Uint8Array | string): string => typeof blake2b === 'string' ? blake2b : toHex(blake2b)
const inodeKey = (stat: StatKey): string => `${stat.dev}:${stat.ino}`

export class Inventory extends EventEmitter<StoreEvents> {
  private readonly files = new Map<string, Tracked>()
  /** Paths of each digest, the advertised one first: earlier dir, then name. */
  private readonly holders = new Map<string, string[]>()
  private readonly names = new Map<string, Set<string>>()
  /** A tracked path by "dev:ino": a hard link of a known file (portage-fetch links cache files into DISTDIR) is not read again. */
  private readonly byInode = new Map<string, string>()
  /** Files that could not be read (EACCES, EIO), with the stat they failed at: rescans skip them until they change or have an fs event. */
  private readonly failed = new Map<string, StatKey>()
  private readonly changed: () => void

  /** `changed` is called whenever what the hash index should record changes. */
  constructor (changed: () => void) {
    super()
    this.changed = changed
  }

  /** Distinct contents. */
  get size (): number {
    return this.holders.size
  }

  /** Indexed files, one per path. */
  get paths (): number {
    return this.files.size
  }

  tracked (path: string): Tracked | undefined {
    return this.files.get(path)
  }

  /** The tracked file at the dev/inode of `stat`, if any (its own stat may differ). */
  linked (stat: StatKey): Tracked | undefined {
    return this.files.get(this.byInode.get(inodeKey(stat)) ?? '')
  }

  /** Every tracked file, in no order. */
  all (): IterableIterator<Tracked> {
    return this.files.values()
  }

  /** The tracked files of one dir. */
  * inDir (dir: number): Generator<Tracked> {
    for (const t of this.files.values()) if (t.dir === dir) yield t
  }

  /** One entry per content: the file advertised for it. */
  * entries (): Generator<LocalFile> {
    for (const paths of this.holders.values()) yield this.files.get(paths[0]!)!.file
  }

  /** Paths holding this content, the advertised one first. */
  holdersOf (blake2b: Uint8Array | string): readonly string[] {
    return this.holders.get(hexOf(blake2b)) ?? []
  }

  get (blake2b: Uint8Array | string): LocalFile | undefined {
    const path = this.holders.get(hexOf(blake2b))?.[0]
    return path === undefined ? undefined : this.files.get(path)?.file
  }

  /** The files of that name, one per content. */
  findByName (name: string): LocalFile[] {
    const byHex = new Map<string, LocalFile>()
    for (const path of this.names.get(name) ?? []) {
      const t = this.files.get(path)!
      if (!byHex.has(t.hex)) byHex.set(t.hex, t.file)
    }
    return [...byHex.values()]
  }

  /** A file that could not be read at this stat: left alone until it changes. */
  setFailed (path: string, stat: StatKey): void {
    this.failed.set(path, stat)
  }

  failedAt (path: string): StatKey | undefined {
    return this.failed.get(path)
  }

  clearFailed (path: string): void {
    this.failed.delete(path)
  }

  /** Records `path` with the given digests; `changed` when the index file does not have it yet. */
  put (dir: number, name: string, path: string, h: HashedFile, changed: boolean): void {
    const hex = toHex(h.blake2b)
    this.failed.delete(path)
    if (changed) this.changed()
    const old = this.files.get(path)
    if (old?.hex === hex) {
      this.unlinkInode(old)
      old.stat = h.stat
      this.byInode.set(inodeKey(h.stat), path)
      return
    }
    // Same name, new content: the old digest goes first, then the new one comes.
    if (old) this.forget(path)
    const t: Tracked = { file: { name, size: h.size, blake2b: h.blake2b, sha512: h.sha512, path }, hex, dir, stat: h.stat }
    this.files.set(path, t)
    this.byInode.set(inodeKey(h.stat), path)
    let paths = this.names.get(name)
    if (!paths) this.names.set(name, paths = new Set())
    paths.add(path)
    const holders = this.holders.get(hex)
    if (!holders) {
      this.holders.set(hex, [path])
      this.emit('added', t.file)
      return
    }
    let i = 0
    while (i < holders.length && ranksBefore(this.files.get(holders[i]!)!, t)) i++
    holders.splice(i, 0, path)
    // Peers know the content already; they only need to hear of a new name.
    if (i === 0 && this.files.get(holders[1]!)!.file.name !== name) this.emit('added', t.file)
  }

  forget (path: string): void {
    this.failed.delete(path)
    const t = this.files.get(path)
    if (!t) return
    this.changed()
    this.files.delete(path)
    this.unlinkInode(t)
    const paths = this.names.get(t.file.name)
    paths?.delete(path)
    if (paths?.size === 0) this.names.delete(t.file.name)
    const holders = this.holders.get(t.hex)!
    const i = holders.indexOf(path)
    holders.splice(i, 1)
    if (holders.length === 0) {
      this.holders.delete(t.hex)
      this.emit('removed', t.file)
    } else if (i === 0) {
      const next = this.files.get(holders[0]!)!.file
      if (next.name !== t.file.name) this.emit('added', next)
    }
  }

  private unlinkInode (t: Tracked): void {
    const key = inodeKey(t.stat)
    if (this.byInode.get(key) === t.file.path) this.byInode.delete(key)
  }
}

function ranksBefore (a: Tracked, b: Tracked): boolean {
  return a.dir < b.dir || (a.dir === b.dir && a.file.name < b.file.name)
}

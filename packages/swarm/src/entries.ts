import { toHex, type FileEntry } from '@distswarm/protocol'

interface Shared {
  hex: string
  entry: FileEntry
  refs: number
}

/**
 * One copy of each remote file entry, shared by every peer that advertises
 * it: the boxes of a LAN hold mostly the same distfiles, so ten peers of
 * 70 000 entries each are far fewer than 700 000 distinct ones. The shared
 * copy owns its digests (copied out of the frame they arrived in, which can
 * then be freed), and its hex key is one string for all peers' maps.
 */
export class EntryPool {
  private readonly byHex = new Map<string, { hex: string, shared: Shared[] }>()
  /** The entries of each name: one index for all peers, each of which checks it holds the entry. */
  private readonly byName = new Map<string, Shared | Shared[]>()

  /** Distinct entries held. */
  get size (): number {
    let n = 0
    for (const v of this.byHex.values()) n += v.shared.length
    return n
  }

  /** The shared copy of `e` and its hex key, counted once more. Release it when done. */
  acquire (e: FileEntry): { hex: string, entry: FileEntry } {
    const key = toHex(e.blake2b)
    let slot = this.byHex.get(key)
    if (!slot) this.byHex.set(key, slot = { hex: key, shared: [] })
    // Same content under another name, or another SHA512 claim: its own entry.
    let s = slot.shared.find(({ entry }) => entry.name === e.name && entry.size === e.size && entry.sha512.equals(e.sha512))
    if (!s) {
      slot.shared.push(s = { hex: slot.hex, entry: { name: e.name, size: e.size, blake2b: Buffer.from(e.blake2b), sha512: Buffer.from(e.sha512) }, refs: 0 })
      const named = this.byName.get(e.name)
      this.byName.set(e.name, named === undefined ? s : Array.isArray(named) ? [...named, s] : [named, s])
    }
    s.refs++
    return { hex: slot.hex, entry: s.entry }
  }

  release (hex: string, entry: FileEntry): void {
    const slot = this.byHex.get(hex)
    const i = slot?.shared.findIndex((s) => s.entry === entry) ?? -1
    if (!slot || i === -1) return
    const s = slot.shared[i]!
    if (--s.refs > 0) return
    slot.shared.splice(i, 1)
    if (slot.shared.length === 0) this.byHex.delete(hex)
    const named = this.byName.get(entry.name)
    const rest = Array.isArray(named) ? named.filter((n) => n !== s) : []
    if (rest.length === 0) this.byName.delete(entry.name)
    else this.byName.set(entry.name, rest.length === 1 ? rest[0]! : rest)
  }

  /** Every entry of this name that some peer holds, with its hex key. */
  named (name: string): ReadonlyArray<{ hex: string, entry: FileEntry }> {
    const named = this.byName.get(name)
    return named === undefined ? [] : Array.isArray(named) ? named : [named]
  }
}

/**
 * Test helpers (import from `@distswarm/binpkg/testing`): a real-format PKGDIR, gpkg
 * files as tar archives with the gpkg layout, the Packages index Portage
 * writes, and a reader of Portage's own rules for checking a merged index.
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

export interface FixtureBuild {
  cpv: string
  buildId: number
  use: string
  /** Extra stanza keys. */
  extra?: Record<string, string>
  /** Bytes of payload in image.tar (random, so every build differs). */
  payload?: number
}

export interface WrittenBuild { cpv: string, buildId: number, path: string, size: number, md5: string, sha1: string, blake2b: string, stanza: Record<string, string> }

/** Writes `${PKGDIR}/cat/pn/${PF}-${BUILD_ID}.gpkg.tar`: an uncompressed tar holding `${PF}-${BUILD_ID}/gpkg-1`, metadata.tar and image.tar. */
export async function writeGpkg (pkgdir: string, b: FixtureBuild): Promise<WrittenBuild> {
  const [category, pf] = b.cpv.split('/') as [string, string]
  const pn = pf.replace(/-[0-9].*$/, '')
  const dir = join(pkgdir, category, pn)
  await mkdir(dir, { recursive: true })
  const name = `${pf}-${b.buildId}`
  const work = join(pkgdir, '.work', name)
  await mkdir(join(work, name, 'meta'), { recursive: true })
  await mkdir(join(work, name, 'image', 'usr', 'bin'), { recursive: true })
  await writeFile(join(work, name, 'gpkg-1'), '')
  await writeFile(join(work, name, 'meta', 'USE'), b.use + '\n')
  await writeFile(join(work, name, 'image', 'usr', 'bin', pn), randomBytes(b.payload ?? 4096))
  execFileSync('tar', ['-C', join(work, name), '-cf', join(work, name, 'metadata.tar'), 'meta'])
  execFileSync('tar', ['-C', join(work, name), '-cf', join(work, name, 'image.tar'), 'image'])
  const rel = `${category}/${pn}/${name}.gpkg.tar`
  execFileSync('tar', ['-C', work, '-cf', join(pkgdir, rel), `${name}/gpkg-1`, `${name}/metadata.tar`, `${name}/image.tar`])
  const bytes = await readFile(join(pkgdir, rel))
  const st = await stat(join(pkgdir, rel))
  const h = (algo: string): string => createHash(algo).update(bytes).digest('hex')
  const stanza: Record<string, string> = {
    BUILD_ID: String(b.buildId),
    BUILD_TIME: String(Math.floor(st.mtimeMs / 1000)),
    CPV: b.cpv,
    DEFINED_PHASES: 'compile configure install',
    EAPI: '8',
    IUSE: 'minimal test',
    KEYWORDS: 'amd64',
    LICENSE: 'GPL-2',
    MD5: h('md5'),
    MTIME: String(Math.floor(st.mtimeMs / 1000)),
    PATH: rel,
    RDEPEND: 'sys-libs/zlib',
    SHA1: h('sha1'),
    SIZE: String(st.size),
    SLOT: '0',
    USE: b.use,
    ...b.extra
  }
  return { cpv: b.cpv, buildId: b.buildId, path: rel, size: st.size, md5: h('md5'), sha1: h('sha1'), blake2b: h('blake2b512'), stanza }
}

/** Writes PKGDIR/Packages as Portage does (sorted keys, header first), by rename. */
export async function writePackages (pkgdir: string, builds: Array<Record<string, string>>, header: Record<string, string> = {}): Promise<void> {
  const head: Record<string, string> = { ARCH: 'amd64', CHOST: 'x86_64-pc-linux-gnu', PACKAGES: String(builds.length), TIMESTAMP: String(Math.floor(Date.now() / 1000)), VERSION: '0', ...header }
  const block = (f: Record<string, string>): string => Object.keys(f).sort().filter((k) => f[k] !== '').map((k) => `${k}: ${f[k]}\n`).join('') + '\n'
  const text = block(head) + builds.map((s) => {
    // Portage leaves out a key equal to the header's value.
    const copy = { ...s }
    if (copy.CHOST === head.CHOST) delete copy.CHOST
    return block(copy)
  }).join('')
  await writeFile(join(pkgdir, '.Packages.tmp'), text)
  await rename(join(pkgdir, '.Packages.tmp'), join(pkgdir, 'Packages'))
}

/**
 * Reads an index the way Portage's binhost client does (a reader of its own
 * rules, apart from ours): the first ':' splits, one character after it is
 * dropped, a blank line ends the header and each stanza, stanzas without CPV
 * are dropped; VERSION must be <= 0 and TIMESTAMP present.
 */
export function portageRead (text: string): { header: Record<string, string>, packages: Array<Record<string, string>> } {
  const lines = text.split('\n')
  let i = 0
  const block = (): Record<string, string> => {
    const d: Record<string, string> = {}
    for (; i < lines.length; i++) {
      const line = lines[i]!
      if (line === '') { i++; break }
      const at = line.indexOf(':')
      if (at === -1) continue
      d[line.slice(0, at)] = line.slice(at + 2)
    }
    return d
  }
  const header = block()
  if (!(Number(header.VERSION) <= 0)) throw new Error(`VERSION ${header.VERSION}`)
  if (!header.TIMESTAMP) throw new Error('no TIMESTAMP')
  const packages: Array<Record<string, string>> = []
  while (i < lines.length) {
    const d = block()
    if (Object.keys(d).length === 0) break
    if (d.CPV) packages.push(d)
  }
  return { header, packages }
}

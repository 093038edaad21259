import { mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { LogFields, Logger } from '@distswarm/protocol'
import { PkgdirIndex, type LocalBuild } from '../src/index.js'
import { writeGpkg, writePackages } from './fixtures.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!()
})

async function tempPkgdir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'distswarm-pkgdir-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function recordingLogger (lines: string[]): Logger {
  const at = (level: string) => (event: string, fields?: LogFields): void => { lines.push(`${level} ${event} ${JSON.stringify(fields ?? {})}`) }
  const logger: Logger = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), child: () => logger }
  return logger
}

async function started (pkgdir: string, lines: string[] = []): Promise<PkgdirIndex> {
  const idx = new PkgdirIndex({ pkgdir, logger: recordingLogger(lines), settleMs: 50 })
  await idx.start()
  cleanups.push(() => idx.stop())
  return idx
}

describe('PkgdirIndex', () => {
  it('indexes the listed gpkg files with their BLAKE2B, MD5 and SHA1, CHOST from the header', async () => {
    const pkgdir = await tempPkgdir()
    const a = await writeGpkg(pkgdir, { cpv: 'dev-db/mariadb-11.4.5', buildId: 1, use: 'server' })
    const b = await writeGpkg(pkgdir, { cpv: 'dev-db/mariadb-11.4.5', buildId: 2, use: 'minimal server' })
    await writeGpkg(pkgdir, { cpv: 'app-misc/unlisted-1', buildId: 1, use: '' })
    await writePackages(pkgdir, [a.stanza, b.stanza])
    const idx = await started(pkgdir)
    const got = [...idx.builds].sort((x, y) => x.build.path < y.build.path ? -1 : 1)
    expect(got.map((g) => [g.build.path, g.blake2b, g.md5, g.sha1, g.fields.CHOST])).toEqual([
      [a.path, a.blake2b, a.md5, a.sha1, 'x86_64-pc-linux-gnu'],
      [b.path, b.blake2b, b.md5, b.sha1, 'x86_64-pc-linux-gnu']
    ])
  })

  it('skips, with a logged reason, a stanza whose file is missing, of another size or other bytes, or outside PKGDIR', async () => {
    const pkgdir = await tempPkgdir()
    const outside = await tempPkgdir()
    const good = await writeGpkg(pkgdir, { cpv: 'app-misc/good-1', buildId: 1, use: '' })
    const short = await writeGpkg(pkgdir, { cpv: 'app-misc/short-1', buildId: 1, use: '' })
    await truncate(join(pkgdir, short.path), short.size - 512)
    const changed = await writeGpkg(pkgdir, { cpv: 'app-misc/changed-1', buildId: 1, use: '' })
    await writeFile(join(pkgdir, changed.path), Buffer.alloc(changed.size, 1))
    const far = await writeGpkg(outside, { cpv: 'app-misc/far-1', buildId: 1, use: '' })
    await symlink(join(outside, far.path), join(pkgdir, 'far.gpkg.tar'))
    const gone = { ...good.stanza, CPV: 'app-misc/gone-1', PATH: 'app-misc/gone/gone-1-1.gpkg.tar' }
    const lines: string[] = []
    await writePackages(pkgdir, [good.stanza, short.stanza, changed.stanza, { ...far.stanza, PATH: 'far.gpkg.tar' }, gone, { ...good.stanza, CPV: 'app-misc/evil-1', PATH: '../evil.gpkg.tar' }])
    const idx = await started(pkgdir, lines)
    expect(idx.builds.map((b) => b.build.cpv)).toEqual(['app-misc/good-1'])
    const why = lines.filter((l) => l.startsWith('warn pkgdir.build-skipped')).join('\n')
    expect(why).toMatch(/short-1.*SIZE says/)
    expect(why).toMatch(/changed-1.*does not match its MD5/)
    expect(why).toMatch(/far-1.*not a regular file/)
    expect(why).toMatch(/gone-1.*missing/)
    expect(why).toMatch(/evil-1.*\\"..\\" segment/)
  })

  it('offers nothing, and says why, when Packages is refused as a whole', async () => {
    const pkgdir = await tempPkgdir()
    const lines: string[] = []
    await writeFile(join(pkgdir, 'Packages'), 'VERSION: 7\n\n')
    const idx = await started(pkgdir, lines)
    expect(idx.builds).toEqual([])
    expect(lines.join('\n')).toMatch(/warn pkgdir.index-refused .*VERSION/)
  })

  it('follows Portage rewriting Packages after a build', async () => {
    const pkgdir = await tempPkgdir()
    const a = await writeGpkg(pkgdir, { cpv: 'app-misc/a-1', buildId: 1, use: '' })
    await writePackages(pkgdir, [a.stanza])
    const idx = await started(pkgdir)
    expect(idx.builds).toHaveLength(1)
    const b = await writeGpkg(pkgdir, { cpv: 'app-misc/b-1', buildId: 1, use: '' })
    const changed = new Promise<LocalBuild[]>((resolve) => idx.once('change', resolve))
    await writePackages(pkgdir, [a.stanza, b.stanza])
    const now = await Promise.race([changed, new Promise<null>((resolve) => setTimeout(() => resolve(null), 20_000))])
    expect(now?.map((x) => x.build.cpv).sort()).toEqual(['app-misc/a-1', 'app-misc/b-1'])
  })

  it('refuses a relative pkgdir at construction, with ERR_INVALID_OPTION', () => {
    expect(() => new PkgdirIndex({ pkgdir: 'var/cache/binpkgs' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }))
  })
})

import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { gzipSync } from 'node:zlib'
import {
  ManifestIndex, parseManifest, watchRepos, type ManifestEntry, type ManifestProblem, type ManifestWatchOptions
} from '../src/manifest.js'

let root: string
beforeEach(async () => { root = await mkdtemp(join(tmpdir(), 'distswarm-manifest-')) })
afterEach(async () => { await rm(root, { recursive: true, force: true }) })

const hex = (algo: string, data: Buffer): string => createHash(algo).update(data).digest('hex')

/** A distfile with real BLAKE2B and SHA512 digests of random bytes. */
function distfile (name: string, data = randomBytes(64 + Math.floor(Math.random() * 256))): ManifestEntry & { data: Buffer } {
  return { name, size: data.length, blake2b: hex('blake2b512', data), sha512: hex('sha512', data), data }
}

/** The entry without the test's bytes, as the parser returns it. */
function entry ({ data: _, ...e }: ManifestEntry & { data?: Buffer }): ManifestEntry {
  return e
}

/** A DIST line as ::gentoo writes it: hash names sorted, BLAKE2B and SHA512. */
function dist (e: ManifestEntry): string {
  return `DIST ${e.name} ${e.size} BLAKE2B ${e.blake2b} SHA512 ${e.sha512}`
}

async function put (path: string, content: string | Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, content)
}

/** Problems without their wording, which may change. */
function codes (problems: readonly ManifestProblem[]): Array<Pick<ManifestProblem, 'file' | 'line' | 'code'>> {
  return problems.map(({ file, line, code }) => ({ file, line, code }))
}

describe('parseManifest', () => {
  it('reads DIST lines in the real format and ignores every other line type', () => {
    const tar = distfile('tar-1.35.tar.xz')
    const patches = distfile('tar-1.35-patches-2.tar.bz2')
    const text = [
      'AUX tar-1.35-fix.patch 1234 BLAKE2B ' + 'a'.repeat(128) + ' SHA512 ' + 'b'.repeat(128),
      dist(tar),
      '',
      'EBUILD tar-1.35.ebuild 4321 BLAKE2B ' + 'c'.repeat(128) + ' SHA512 ' + 'd'.repeat(128),
      'MISC metadata.xml 500 BLAKE2B ' + 'e'.repeat(128) + ' SHA512 ' + 'f'.repeat(128),
      'MANIFEST app-arch/Manifest.gz 99 BLAKE2B ' + '0'.repeat(128) + ' SHA512 ' + '1'.repeat(128),
      'DATA x 1 BLAKE2B ' + '2'.repeat(128),
      'TIMESTAMP 2024-05-01T00:00:00Z',
      'DISTFOO not-a-dist-line',
      '   ',
      // Tabs, extra blanks and a CRLF end, which str.split() in Portage takes too.
      `  DIST\t${patches.name}  ${patches.size} BLAKE2B ${patches.blake2b}\tSHA512 ${patches.sha512}\r`,
      ''
    ].join('\n')
    const { entries, problems } = parseManifest(text, 'app-arch/tar/Manifest')
    expect(problems).toEqual([])
    expect(entries).toEqual([entry(tar), entry(patches)])
  })

  it('keeps the SHA256, WHIRLPOOL and unknown hashes of old entries under other', () => {
    const f = distfile('old-1.0.tar.gz')
    const sha256 = hex('sha256', f.data)
    const whirlpool = 'AB'.repeat(64)
    const text = [
      `DIST ${f.name} ${f.size} BLAKE2B ${f.blake2b} SHA256 ${sha256} SHA512 ${f.sha512} WHIRLPOOL ${whirlpool}`,
      `DIST older.tar.gz 10 SHA256 ${sha256.toUpperCase()}`,
      `DIST newer.tar.gz 11 BLAKE2B ${f.blake2b} STRANGE00 abcd`
    ].join('\n')
    const { entries, problems } = parseManifest(text, 'Manifest')
    expect(problems).toEqual([])
    expect(entries).toEqual([
      { ...entry(f), other: { SHA256: sha256, WHIRLPOOL: whirlpool.toLowerCase() } },
      { name: 'older.tar.gz', size: 10, blake2b: null, sha512: null, other: { SHA256: sha256 } },
      { name: 'newer.tar.gz', size: 11, blake2b: f.blake2b, sha512: null, other: { STRANGE00: 'abcd' } }
    ])
    expect('other' in parseManifest(dist(f), 'M').entries[0]!).toBe(false)
  })

  it('skips each malformed DIST line as a problem with its line number, and reads the rest', () => {
    const good = distfile('good.tar.gz')
    const b2 = good.blake2b!
    const bad: Array<[string, ManifestProblem['code']]> = [
      ['DIST', 'ERR_TOO_FEW_FIELDS'],
      ['DIST a.tar.gz 12', 'ERR_TOO_FEW_FIELDS'],
      ['DIST a.tar.gz 12 BLAKE2B', 'ERR_TOO_FEW_FIELDS'],
      [`DIST a.tar.gz 12 BLAKE2B ${b2} SHA512`, 'ERR_ODD_HASH_FIELDS'],
      [`DIST a.tar.gz -1 BLAKE2B ${b2}`, 'ERR_BAD_SIZE'],
      [`DIST a.tar.gz 1.5 BLAKE2B ${b2}`, 'ERR_BAD_SIZE'],
      [`DIST a.tar.gz 0x10 BLAKE2B ${b2}`, 'ERR_BAD_SIZE'],
      [`DIST a.tar.gz 1e3 BLAKE2B ${b2}`, 'ERR_BAD_SIZE'],
      [`DIST a.tar.gz 9007199254740992 BLAKE2B ${b2}`, 'ERR_BAD_SIZE'],
      [`DIST a.tar.gz 12 BLAKE2B ${b2.slice(2)}`, 'ERR_BAD_HASH'],
      [`DIST a.tar.gz 12 BLAKE2B ${b2}00`, 'ERR_BAD_HASH'],
      [`DIST a.tar.gz 12 SHA512 ${b2.slice(64)}`, 'ERR_BAD_HASH'],
      [`DIST a.tar.gz 12 SHA256 ${b2}`, 'ERR_BAD_HASH'],
      [`DIST a.tar.gz 12 WHIRLPOOL ${b2.slice(64)}`, 'ERR_BAD_HASH'],
      [`DIST a.tar.gz 12 BLAKE2B g${b2.slice(1)}`, 'ERR_BAD_HASH'],
      ['DIST a.tar.gz 12 NEWHASH abc', 'ERR_BAD_HASH'],
      [`DIST a.tar.gz 12 blake2b ${b2}`, 'ERR_BAD_HASH'],
      [`DIST a.tar.gz 12 BLAKE2B ${b2} BLAKE2B ${b2}`, 'ERR_DUPLICATE_HASH'],
      [`DIST .hidden.tar.gz 12 BLAKE2B ${b2}`, 'ERR_INVALID_NAME'],
      [`DIST .. 12 BLAKE2B ${b2}`, 'ERR_INVALID_NAME'],
      [`DIST ../../etc/passwd 12 BLAKE2B ${b2}`, 'ERR_INVALID_NAME'],
      [`DIST a\u0001b.tar.gz 12 BLAKE2B ${b2}`, 'ERR_INVALID_NAME'],
      [`DIST ${'x'.repeat(256)} 12 BLAKE2B ${b2}`, 'ERR_INVALID_NAME']
    ]
    // Good lines first, between the bad ones and last: line n + 1 is bad[n / 2].
    const lines = [dist(good)]
    for (const [line] of bad) lines.push(line, dist(good))
    const { entries, problems } = parseManifest(lines.join('\n'), 'cat/pkg/Manifest')
    expect(entries).toEqual([entry(good)])
    expect(codes(problems)).toEqual(bad.map(([, code], i) => ({ file: 'cat/pkg/Manifest', line: 2 * i + 2, code })))
    for (const p of problems) expect(p.reason.length).toBeLessThan(200)
  })

  it('merges a name listed twice when the lines agree, and reports a contradiction', () => {
    const f = distfile('twice.tar.gz')
    const g = distfile('other.tar.gz')
    const sha256 = hex('sha256', f.data)
    const text = [
      dist(f),
      dist(f),
      `DIST ${f.name} ${f.size} SHA256 ${sha256} SHA512 ${f.sha512}`,
      `DIST ${f.name} ${f.size + 1} BLAKE2B ${f.blake2b}`,
      `DIST ${f.name} ${f.size} BLAKE2B ${g.blake2b}`,
      `DIST ${f.name} ${f.size} WHIRLPOOL ${'0'.repeat(128)}`
    ].join('\n')
    const { entries, problems } = parseManifest(text, 'M')
    expect(entries).toEqual([{ ...entry(f), other: { SHA256: sha256 } }])
    // Without a hash in common, nothing shows two lines are the same file.
    expect(codes(problems)).toEqual([4, 5, 6].map((line) => ({ file: 'M', line, code: 'ERR_CONFLICT' })))
  })

  it('never throws, whatever the text', () => {
    const words = ['DIST', 'BLAKE2B', 'SHA512', '12', '-', 'a.tar', 'ab'.repeat(64), '\n', ' ', '\t', '\r', '\u0000', '\uFEFF', '\uD800']
    for (let i = 0; i < 300; i++) {
      let text = ''
      for (let j = 0; j < 40; j++) text += words[Math.floor(Math.random() * words.length)]! + (Math.random() < 0.7 ? ' ' : '')
      const { entries, problems } = parseManifest(text, 'fuzz')
      for (const e of entries) expect(e.blake2b ?? e.sha512 ?? e.other).toBeTruthy()
      for (const p of problems) expect(p.line).toBeGreaterThan(0)
    }
    expect(parseManifest('', 'empty')).toEqual({ entries: [], problems: [] })
  })
})

describe('ManifestIndex', () => {
  it('loads <repo>/<category>/<package>/Manifest and nothing else', async () => {
    const repo = join(root, 'gentoo')
    const outside = join(root, 'outside')
    const tar = distfile('tar-1.35.tar.xz')
    const gzip = distfile('gzip-1.13.tar.xz')
    const shared = distfile('llvm-project-18.1.8.src.tar.xz')
    const foo = distfile('foo-2.tar.gz')
    const ignored = (name: string): string => dist(distfile(name))

    await put(join(repo, 'app-arch/tar/Manifest'), `${dist(tar)}\n${dist(shared)}\n`)
    await put(join(repo, 'app-arch/tar/tar-1.35.ebuild'), 'EAPI=8\n')
    await put(join(repo, 'app-arch/gzip/Manifest'), `${dist(shared)}\n\n${dist(gzip)}\n`)
    await put(join(repo, 'dev-libs/foo/Manifest'), `EBUILD foo-2.ebuild 10 BLAKE2B ${'0'.repeat(128)}\n\nDIST foo-2.tar.gz 12 BLAKE2B ${'0'.repeat(128)} SHA512\n${dist(foo)}\n`)
    await mkdir(join(repo, 'virtual/libc'), { recursive: true }) // a package without distfiles: no Manifest
    await mkdir(join(repo, 'dev-libs/dir/Manifest'), { recursive: true })
    // Not package Manifests: the repo's own, compressed ones, metadata, profiles, dot-dirs.
    await put(join(repo, 'Manifest'), `${ignored('top.tar.gz')}\n`)
    await put(join(repo, 'Manifest.gz'), gzipSync(`${ignored('topgz.tar.gz')}\n`))
    await put(join(repo, 'app-arch/Manifest.gz'), gzipSync(`${ignored('catgz.tar.gz')}\n`))
    await put(join(repo, 'metadata/md5-cache/Manifest'), `${ignored('md5-cache.tar.gz')}\n`)
    await put(join(repo, 'metadata/timestamp.chk'), 'Wed, 01 May 2024 00:00:00 +0000\n')
    await put(join(repo, 'profiles/base/Manifest'), `${ignored('profile.tar.gz')}\n`)
    await put(join(repo, 'eclass/x/Manifest'), `${ignored('eclass.tar.gz')}\n`)
    await put(join(repo, '.git/objects/Manifest'), `${ignored('git.tar.gz')}\n`)
    await put(join(repo, 'app-arch/.hidden/Manifest'), `${ignored('hidden.tar.gz')}\n`)
    await put(join(repo, 'app-arch/README'), 'a file where a package dir could be\n')
    // Symlinks could lead out of the repo: never followed.
    await put(join(outside, 'pkg/Manifest'), `${ignored('outside.tar.gz')}\n`)
    await symlink(join(outside, 'pkg'), join(repo, 'app-arch/linked'))
    await symlink(outside, join(repo, 'net-misc'))
    await mkdir(join(repo, 'app-arch/evil'))
    await symlink(join(outside, 'pkg/Manifest'), join(repo, 'app-arch/evil/Manifest'))

    const index = await ManifestIndex.load([repo])
    expect([...index.names()].sort()).toEqual([foo, gzip, shared, tar].map((f) => f.name).sort())
    expect(index.size).toBe(4)
    expect(index.repos).toEqual([repo])
    expect(index.get(tar.name)).toEqual([entry(tar)])
    expect(index.get(shared.name)).toEqual([entry(shared)]) // in two packages, kept once
    expect(index.get('top.tar.gz')).toEqual([])
    expect(index.has(foo.name)).toBe(true)
    expect(index.has('outside.tar.gz')).toBe(false)
    expect(index.conflicts).toBe(0)
    expect(codes(index.problems)).toEqual([
      { file: join(repo, 'app-arch/evil/Manifest'), line: 0, code: 'ERR_NOT_A_FILE' },
      { file: join(repo, 'dev-libs/dir/Manifest'), line: 0, code: 'ERR_NOT_A_FILE' },
      { file: join(repo, 'dev-libs/foo/Manifest'), line: 3, code: 'ERR_ODD_HASH_FIELDS' }
    ])
    expect(index.problemCount).toBe(3)
  })

  it('keeps both entries of a name two repos disagree on, in repo order, and merges agreeing ones', async () => {
    const gentoo = join(root, 'gentoo')
    const overlay = join(root, 'overlay')
    const theirs = distfile('conflict-1.0.tar.gz')
    const ours = distfile('conflict-1.0.tar.gz')
    const old = distfile('old-2.0.tar.bz2')
    const sha256 = hex('sha256', old.data)
    await put(join(gentoo, 'app-misc/conflict/Manifest'), `${dist(theirs)}\n${dist(old)}\n`)
    await put(join(overlay, 'app-misc/conflict/Manifest'), `${dist(ours)}\n`)
    await put(join(overlay, 'app-misc/old/Manifest'), `DIST ${old.name} ${old.size} SHA256 ${sha256} SHA512 ${old.sha512}\n`)

    const index = await ManifestIndex.load([gentoo, overlay])
    expect(index.size).toBe(2)
    expect(index.conflicts).toBe(1)
    expect(index.get(theirs.name)).toEqual([entry(theirs), entry(ours)])
    expect(index.get(old.name)).toEqual([{ ...entry(old), other: { SHA256: sha256 } }])
    expect(index.problems).toEqual([])

    const reversed = await ManifestIndex.load([overlay, gentoo])
    expect(reversed.get(theirs.name)).toEqual([entry(ours), entry(theirs)])
  })

  it('records a missing repo as a problem and loads the others', async () => {
    const repo = join(root, 'gentoo')
    const f = distfile('here.tar.gz')
    await put(join(repo, 'app-misc/here/Manifest'), dist(f))
    const missing = join(root, 'no-such-repo')
    const index = await ManifestIndex.load([missing, repo])
    expect(index.get(f.name)).toEqual([entry(f)])
    expect(codes(index.problems)).toEqual([{ file: missing, line: 0, code: 'ERR_NO_REPO' }])
    expect((await ManifestIndex.load([])).size).toBe(0)
  })

  it('keeps the first maxProblems problems and counts the rest', async () => {
    const repo = join(root, 'gentoo')
    await put(join(repo, 'app-misc/bad/Manifest'), 'DIST a\nDIST b\nDIST c\nDIST d\nDIST e\n')
    const index = await ManifestIndex.load([repo], { maxProblems: 2 })
    expect(index.problems.map((p) => p.line)).toEqual([1, 2])
    expect(index.problemCount).toBe(5)
  })

  it('skips a Manifest larger than maxManifestBytes', async () => {
    const repo = join(root, 'gentoo')
    const small = distfile('small.tar.gz')
    const big = distfile('big.tar.gz')
    await put(join(repo, 'app-misc/small/Manifest'), dist(small))
    await put(join(repo, 'app-misc/big/Manifest'), `${dist(big)}\n${dist(distfile('big2.tar.gz'))}\n`)
    const index = await ManifestIndex.load([repo], { maxManifestBytes: dist(small).length })
    expect([...index.names()]).toEqual([small.name])
    expect(codes(index.problems)).toEqual([{ file: join(repo, 'app-misc/big/Manifest'), line: 0, code: 'ERR_TOO_LARGE' }])
  })

  it('gives the same index whatever the read concurrency', async () => {
    const repos = [join(root, 'a'), join(root, 'b')]
    for (let i = 0; i < 60; i++) {
      const repo = repos[i % 2]!
      // Every 7th package lists a name another package lists with other content.
      const name = i % 7 === 0 ? 'clash.tar.gz' : `p${i}.tar.gz`
      await put(join(repo, `cat-${i % 5}`, `pkg-${i}`, 'Manifest'), `${dist(distfile(name))}\nDIST bad${i}\n`)
    }
    const one = await ManifestIndex.load(repos, { concurrency: 1 })
    const many = await ManifestIndex.load(repos, { concurrency: 64 })
    expect(one.get('clash.tar.gz')).toHaveLength(9)
    expect([...many.names()]).toEqual([...one.names()])
    expect(many.get('clash.tar.gz')).toEqual(one.get('clash.tar.gz'))
    expect(many.problems).toEqual(one.problems)
    expect(one.problemCount).toBe(60)
  })

  it('stops a load when its signal aborts', async () => {
    const repo = join(root, 'gentoo')
    await put(join(repo, 'app-misc/x/Manifest'), dist(distfile('x.tar.gz')))
    await expect(ManifestIndex.load([repo], { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' })
  })
})

describe('watchRepos', () => {
  async function setup (opts: ManifestWatchOptions = {}) {
    const repo = join(root, 'gentoo')
    const a = distfile('a-1.tar.gz')
    await put(join(repo, 'app-misc/a/Manifest'), `${dist(a)}\n`)
    await put(join(repo, 'dev-libs/b/Manifest'), `${dist(distfile('b-1.tar.gz'))}\n`)
    await put(join(repo, 'net-misc/c/Manifest'), `${dist(distfile('c-1.tar.gz'))}\n`)
    await put(join(repo, 'metadata/timestamp.chk'), 'Wed, 01 May 2024 00:00:00 +0000\n')
    const index = await ManifestIndex.load([repo])
    // Checks only when the test asks, unless it sets a short interval.
    const watcher = watchRepos(index, { intervalMs: 3_600_000, ...opts })
    onTestFinished(() => watcher.stop())
    return { repo, a, index, watcher }
  }

  it('reloads when a package Manifest changes, and only then', async () => {
    const { repo, a, index, watcher } = await setup()
    const reloads: ManifestIndex[] = []
    watcher.on('reload', (next) => reloads.push(next))
    expect(await watcher.check()).toBe(false)
    expect(watcher.index).toBe(index)

    const added = distfile('a-2.tar.gz')
    await writeFile(join(repo, 'app-misc/a/Manifest'), `${dist(a)}\n${dist(added)}\n`)
    expect(await watcher.check()).toBe(true)
    expect(reloads).toHaveLength(1)
    expect(reloads[0]).toBe(watcher.index)
    expect(watcher.index.get(added.name)).toEqual([entry(added)])
    expect(index.get(added.name)).toEqual([]) // the old index is left as it was
    expect(await watcher.check()).toBe(false)

    // A new package dir, then a sync that only shows in the repo's timestamp.
    const d = distfile('d-1.tar.gz')
    await put(join(repo, 'dev-libs/d/Manifest'), dist(d))
    expect(await watcher.check()).toBe(true)
    expect(watcher.index.get(d.name)).toEqual([entry(d)])
    await writeFile(join(repo, 'metadata/timestamp.chk'), 'Thu, 02 May 2024 00:00:00 +0000\n')
    expect(await watcher.check()).toBe(true)
    expect(reloads).toHaveLength(3)
  })

  it('does not reload for problems that stay as they were', async () => {
    const repo = join(root, 'gentoo')
    await put(join(root, 'outside/Manifest'), dist(distfile('outside.tar.gz')))
    await mkdir(join(repo, 'app-misc/link'), { recursive: true })
    await symlink(join(root, 'outside/Manifest'), join(repo, 'app-misc/link/Manifest'))
    await mkdir(join(repo, 'app-misc/dir/Manifest'), { recursive: true })
    await mkdir(join(repo, 'app-misc/none'), { recursive: true })
    await mkdir(join(repo, 'empty-category'), { recursive: true })
    const index = await ManifestIndex.load([repo, join(root, 'missing')])
    expect(index.problems.map((p) => p.code)).toEqual(['ERR_NO_REPO', 'ERR_NOT_A_FILE', 'ERR_NOT_A_FILE'])
    const watcher = watchRepos(index, { intervalMs: 3_600_000 })
    onTestFinished(() => watcher.stop())
    expect(await watcher.check()).toBe(false)
    expect(await watcher.check()).toBe(false)
    // The missing repo appears: its first sync.
    await put(join(root, 'missing/app-misc/x/Manifest'), dist(distfile('x.tar.gz')))
    expect(await watcher.check()).toBe(true)
    expect(watcher.index.has('x.tar.gz')).toBe(true)
  })

  it('stats only about statsPerCheck Manifests per check, in turn', async () => {
    const { repo, watcher } = await setup({ statsPerCheck: 1 })
    const e = distfile('e-1.tar.gz')
    await writeFile(join(repo, 'net-misc/c/Manifest'), dist(e))
    // net-misc is the last of three categories: one category per check.
    expect(await watcher.check()).toBe(false)
    expect(await watcher.check()).toBe(false)
    expect(await watcher.check()).toBe(true)
    expect(watcher.index.get(e.name)).toEqual([entry(e)])
  })

  it('checks by itself every intervalMs and stops when closed', async () => {
    const { repo, watcher } = await setup({ intervalMs: 10 })
    const e = distfile('e-1.tar.gz')
    await writeFile(join(repo, 'dev-libs/b/Manifest'), dist(e))
    const [next] = await once(watcher, 'reload', { signal: AbortSignal.timeout(10_000) }) as [ManifestIndex]
    expect(next.get(e.name)).toEqual([entry(e)])
    watcher.stop()
    expect(watcher.stopped).toBe(true)
    await writeFile(join(repo, 'dev-libs/b/Manifest'), '')
    expect(await watcher.check()).toBe(false)
    expect(watcher.index).toBe(next)
  })
})

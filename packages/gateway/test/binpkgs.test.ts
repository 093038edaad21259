/**
 * The binhost under /binpkgs/ against a source built from the real binpkg
 * library: a BinhostIndex merged over the offers of fixture builders, and
 * real gpkg files on disk (this box's, and a "peer's" copied in when
 * fetched, after a BLAKE2B check). Clients are real: fetch(), curl, and wget
 * run as Portage's FETCHCOMMAND. The three-agent version: test/e2e/binpkgs.test.ts.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { gunzipSync } from 'node:zlib'
import { describe, expect, it, onTestFinished } from 'vitest'
import { BinhostIndex, type MergedIndex, type OfferedBuild } from '@distswarm/binpkg'
import { DistswarmError } from '@distswarm/protocol'
import { Gateway, parseBinpkgsPath, type BinhostSource, type GatewaySource, type ServedFile } from '../src/index.js'
import { get, raw } from './raw.js'
// The binpkg package's own fixtures: a real-format PKGDIR and a reader of Portage's rules.
import { portageRead, writeGpkg, type WrittenBuild } from '@distswarm/binpkg/testing'

const run = promisify(execFile)
const CHOST = 'x86_64-pc-linux-gnu'
const ALICE = 'a1'.repeat(32)
const BOB = 'b0'.repeat(32)
const MALLORY = 'ee'.repeat(32)
const hash = (algo: string, data: Buffer): string => createHash(algo).update(data).digest('hex')

interface Fixture {
  url: string
  gateway: Gateway
  /** this box's verified files (the build cache) */
  cache: string
  /** the peers' PKGDIR */
  pkgdir: string
  builds: Record<'minimal' | 'full' | 'untrusted' | 'foreign', WrittenBuild>
  merged: () => MergedIndex
  /** offers one more build and merges again, at `now` (seconds; default 10 s after the last TIMESTAMP) */
  add: (build: WrittenBuild, now?: number) => void
  fetches: () => number
  /** makes the peer holding `build` serve other bytes */
  lie: (build: WrittenBuild) => Promise<void>
  setUnavailable: (why: string | null) => void
}

function offer (b: WrittenBuild, builder: string, chost = CHOST): OfferedBuild {
  return { blake2b: b.blake2b, builder, group: chost, fields: { ...b.stanza, CHOST: chost } }
}

/** `encoded`: the binhost answers with the encoded document (as the agent does), else with its text. */
async function fixture (encoded = false): Promise<Fixture> {
  const root = await mkdtemp(join(tmpdir(), 'gw-binpkgs-'))
  onTestFinished(() => rm(root, { recursive: true, force: true }))
  const pkgdir = join(root, 'pkgdir')
  const cache = join(root, 'cache')
  await mkdir(cache)
  const builds = {
    full: await writeGpkg(pkgdir, { cpv: 'dev-db/mariadb-11.4.5', buildId: 1, use: 'amd64 -minimal', payload: 200_000 }),
    minimal: await writeGpkg(pkgdir, { cpv: 'dev-db/mariadb-11.4.5', buildId: 2, use: 'amd64 minimal', payload: 100_000 }),
    untrusted: await writeGpkg(pkgdir, { cpv: 'app-misc/evil-1.0', buildId: 1, use: 'amd64' }),
    foreign: await writeGpkg(pkgdir, { cpv: 'sys-libs/zlib-1.3.1', buildId: 1, use: 'arm64' })
  }
  const offers: OfferedBuild[] = [
    offer(builds.full, ALICE),
    // BUILD_ID 1 at Alice and at Bob: the gateway's own BUILD_IDs keep them apart.
    offer({ ...builds.minimal, stanza: { ...builds.minimal.stanza, BUILD_ID: '1' } }, BOB),
    offer(builds.untrusted, MALLORY),
    offer(builds.foreign, ALICE, 'aarch64-unknown-linux-gnu')
  ]
  const index = new BinhostIndex({ chost: CHOST, group: CHOST, trust: new Set([ALICE, BOB]), header: { ARCH: 'amd64' } })
  let merged = index.merge(offers)
  // Alice's build is on this box; Bob's only at Bob.
  const held = new Map<string, ServedFile>()
  const fullPath = join(cache, `${builds.full.blake2b}.gpkg.tar`)
  await copyFile(join(pkgdir, builds.full.path), fullPath)
  held.set(builds.full.blake2b, { path: fullPath, size: builds.full.size, name: builds.full.path, blake2b: builds.full.blake2b })
  const lies = new Map<string, Buffer>()
  let fetchCount = 0
  let unavailable: string | null = null
  const binhost: BinhostSource = {
    index: () => unavailable !== null ? { unavailable } : encoded ? { body: merged.body, timestamp: merged.timestamp } : { text: merged.text, timestamp: merged.timestamp },
    local: (path) => {
      const b = merged.builds.get(path)
      return b === undefined ? undefined : held.get(b.blake2b)
    },
    fetch: async (path) => {
      fetchCount++
      const b = merged.builds.get(path)
      if (b === undefined) throw new DistswarmError('ERR_NOT_FOUND', `${path} is not in the index`)
      const source = [...Object.values(builds)].find((w) => w.blake2b === b.blake2b)!
      const bytes = lies.get(b.blake2b) ?? await readFile(join(pkgdir, source.path))
      // Verified before it is kept, as the agent does: nothing unverified is served.
      if (bytes.length !== b.size || hash('blake2b512', bytes) !== b.blake2b || hash('md5', bytes) !== b.md5 || hash('sha1', bytes) !== b.sha1) {
        throw new DistswarmError('ERR_VERIFY_FAILED', `the peer's copy of ${path} does not match its BLAKE2B, SIZE, MD5 and SHA1`)
      }
      const file = join(cache, `${b.blake2b}.gpkg.tar`)
      await writeFile(`${file}.tmp`, bytes)
      await rename(`${file}.tmp`, file)
      const served = { path: file, size: b.size, name: path, blake2b: b.blake2b }
      held.set(b.blake2b, served)
      return served
    }
  }
  const source: GatewaySource = { local: () => undefined, held: () => false, fetch: async () => { throw new Error('no distfiles here') }, status: () => ({}), binhost }
  const gateway = new Gateway({ host: '127.0.0.1', port: 0, source })
  await gateway.start()
  onTestFinished(() => gateway.stop())
  return {
    url: gateway.url!,
    gateway,
    cache,
    pkgdir,
    builds,
    merged: () => merged,
    add: (build, now = merged.timestamp + 10) => { offers.push(offer(build, ALICE)); merged = index.merge(offers, now) },
    fetches: () => fetchCount,
    lie: async (build) => { lies.set(build.blake2b, Buffer.alloc(build.size, 0x55)) },
    setUnavailable: (why) => { unavailable = why }
  }
}

/** The PATH the served index gives the build with this USE. */
function pathOf (text: string, use: string): string {
  const p = portageRead(text).packages.find((s) => s.USE === use)
  if (!p?.PATH) throw new Error(`no stanza with USE ${use}`)
  return p.PATH
}

/** Portage's default FETCHCOMMAND, run without a shell as Portage does. */
async function wgetAsPortage (uri: string, distdir: string, file: string): Promise<{ code: number, stderr: string }> {
  try {
    const r = await run('wget', ['-t', '3', '-T', '60', '--passive-ftp', '-O', join(distdir, file), uri])
    return { code: 0, stderr: r.stderr }
  } catch (err) {
    return { code: (err as { code: number }).code, stderr: (err as { stderr: string }).stderr }
  }
}

async function curl (args: string[]): Promise<{ status: number, body: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-curl-'))
  try {
    const out = join(dir, 'body')
    const r = await run('curl', ['-sS', '-o', out, '-w', '%{http_code}', ...args])
    return { status: Number(r.stdout), body: await readFile(out).catch(() => Buffer.alloc(0)) }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}


// Each fixture writes gpkg archives with tar: seconds on a loaded machine.
describe('/binpkgs/Packages', { timeout: 60_000 }, () => {
  it('is a merged index a reader of Portage\'s rules takes: both USE instances with their own PATH, no untrusted or foreign build', async () => {
    const fx = await fixture()
    const r = await fetch(`${fx.url}/binpkgs/Packages`)
    expect(r.status).toBe(200)
    const text = await r.text()
    expect(text).toBe(fx.merged().text)
    const { header, packages } = portageRead(text)
    expect([header.VERSION, header.TIMESTAMP, header.CHOST, header.PACKAGES]).toEqual(['0', String(fx.merged().timestamp), CHOST, '2'])
    expect(packages.map((p) => [p.CPV, p.USE]).sort()).toEqual([['dev-db/mariadb-11.4.5', 'amd64 -minimal'], ['dev-db/mariadb-11.4.5', 'amd64 minimal']])
    const [a, b] = packages
    expect(a!.PATH).not.toBe(b!.PATH)
    expect(a!.BUILD_ID).not.toBe(b!.BUILD_ID)
    for (const p of packages) for (const key of ['SIZE', 'MD5', 'SHA1', 'MTIME', 'EAPI', 'IUSE', 'KEYWORDS']) expect(p[key], key).toBeTruthy()
    expect(text).not.toContain('evil')
    expect(text).not.toContain('sys-libs/zlib-1.3.1')
    expect(Date.parse(r.headers.get('last-modified')!)).toBe(fx.merged().timestamp * 1000)

    const head = await fetch(`${fx.url}/binpkgs/Packages`, { method: 'HEAD' })
    expect([head.status, head.headers.get('content-length'), await head.text()]).toEqual([200, String(Buffer.byteLength(text)), ''])
  })

  it('answers If-Modified-Since with 304 until the content changes, then with the new index (curl -z, as Portage\'s urllib asks)', async () => {
    const fx = await fixture()
    const first = fx.merged().timestamp
    const since = new Date(first * 1000).toUTCString()
    expect((await curl(['-z', since, `${fx.url}/binpkgs/Packages`])).status).toBe(304)
    expect((await curl(['-z', new Date((first + 5) * 1000).toUTCString(), `${fx.url}/binpkgs/Packages`])).status).toBe(304)
    expect((await curl(['-z', new Date((first - 1) * 1000).toUTCString(), `${fx.url}/binpkgs/Packages`])).status).toBe(200)
    expect((await fetch(`${fx.url}/binpkgs/Packages.gz`, { headers: { 'if-modified-since': since } })).status).toBe(304)

    const added = await writeGpkg(fx.pkgdir, { cpv: 'dev-libs/libfoo-2.0', buildId: 1, use: 'amd64' })
    fx.add(added)
    expect(fx.merged().timestamp).toBeGreaterThan(first + 5)
    const r = await curl(['-z', since, `${fx.url}/binpkgs/Packages`])
    expect(r.status).toBe(200)
    const { header, packages } = portageRead(r.body.toString())
    expect(header.TIMESTAMP).toBe(String(fx.merged().timestamp))
    expect(packages.map((p) => p.CPV)).toContain('dev-libs/libfoo-2.0')
  })

  it('a change in the same second still reaches Portage, whose If-Modified-Since is its cached TIMESTAMP + 5 s', async () => {
    const fx = await fixture()
    const first = fx.merged().timestamp
    // bintree.py: _timestamp_to_http(TIMESTAMP + TIMESTAMP_TOLERANCE), TIMESTAMP_TOLERANCE = 5
    const portage = new Date((first + 5) * 1000).toUTCString()
    expect((await fetch(`${fx.url}/binpkgs/Packages`, { headers: { 'if-modified-since': portage } })).status).toBe(304)
    fx.add(await writeGpkg(fx.pkgdir, { cpv: 'dev-libs/libbar-1.0', buildId: 1, use: 'amd64' }), first)
    const r = await fetch(`${fx.url}/binpkgs/Packages`, { headers: { 'if-modified-since': portage } })
    expect(r.status).toBe(200)
    expect(portageRead(await r.text()).packages.map((p) => p.CPV)).toContain('dev-libs/libbar-1.0')
  })

  it('serves Packages.gz as the gzip of Packages; an agent without builds answers 503 with why, and a clean 404 for the .gz', async () => {
    // The same from a binhost that answers with the encoded document (the agent's), before and after a change.
    const enc = await fixture(true)
    for (const round of [0, 1]) {
      if (round === 1) enc.add(enc.builds.untrusted)
      const gz = await curl([`${enc.url}/binpkgs/Packages.gz`])
      expect(gz.status).toBe(200)
      expect(gunzipSync(gz.body).toString()).toBe(enc.merged().text)
      expect((await curl([`${enc.url}/binpkgs/Packages`])).body.toString()).toBe(enc.merged().text)
    }

    const fx = await fixture()
    const gz = await curl([`${fx.url}/binpkgs/Packages.gz`])
    expect(gz.status).toBe(200)
    expect(gunzipSync(gz.body).toString()).toBe(fx.merged().text)
    const compressed = await curl(['--compressed', `${fx.url}/binpkgs/Packages.gz`])
    expect(compressed.body.equals(gz.body)).toBe(true)

    fx.setUnavailable('no CHOST known: set --chost')
    const plain = await fetch(`${fx.url}/binpkgs/Packages`)
    expect([plain.status, await plain.text()]).toEqual([503, 'this box serves no builds: no CHOST known: set --chost\n'])
    const noGz = await fetch(`${fx.url}/binpkgs/Packages.gz`)
    expect(noGz.status).toBe(404)
    expect(await noGz.text()).toContain('no CHOST known')
    expect((await fetch(`${fx.url}/binpkgs/${pathOf(fx.merged().text, 'amd64 -minimal')}`)).status).toBe(503)
  })

  it('a gateway without a binhost answers 404 under /binpkgs/, and a bad binhost is ERR_INVALID_OPTION', async () => {
    const source: GatewaySource = { local: () => undefined, held: () => false, fetch: async () => { throw new Error('no') }, status: () => ({}) }
    const g = new Gateway({ host: '127.0.0.1', port: 0, source })
    await g.start()
    onTestFinished(() => g.stop())
    for (const path of ['Packages', 'Packages.gz', 'dev-db/mariadb/mariadb-11.4.5-1.gpkg.tar']) {
      expect((await fetch(`${g.url}/binpkgs/${path}`)).status, path).toBe(404)
    }
    const err = (() => { try { return new Gateway({ source: { ...source, binhost: { index: () => ({ unavailable: 'x' }) } as unknown as BinhostSource } }) } catch (e) { return e } })()
    expect((err as DistswarmError).code).toBe('ERR_INVALID_OPTION')
    expect((err as DistswarmError).message).toContain('source.binhost')
  })
})

describe('/binpkgs/<PATH>', { timeout: 60_000 }, () => {
  it('wget as Portage\'s FETCHCOMMAND downloads both instances with the SIZE, MD5 and SHA1 of their stanzas: one held here, one fetched from its peer', async () => {
    const fx = await fixture()
    const text = await (await fetch(`${fx.url}/binpkgs/Packages`)).text()
    const distdir = await mkdtemp(join(tmpdir(), 'gw-pkgdir-'))
    onTestFinished(() => rm(distdir, { recursive: true, force: true }))
    for (const [use, build] of [['amd64 -minimal', fx.builds.full], ['amd64 minimal', fx.builds.minimal]] as const) {
      const stanza = portageRead(text).packages.find((p) => p.USE === use)!
      const file = `${stanza.PATH!.split('/').pop()!}.__download__`
      const r = await wgetAsPortage(`${fx.url}/binpkgs/${stanza.PATH!}`, distdir, file)
      expect(r.code, r.stderr).toBe(0)
      const bytes = await readFile(join(distdir, file))
      expect(bytes.equals(await readFile(join(fx.pkgdir, build.path)))).toBe(true)
      expect([String(bytes.length), hash('md5', bytes), hash('sha1', bytes)]).toEqual([stanza.SIZE, stanza.MD5, stanza.SHA1])
    }
    // Alice's build was here; Bob's was fetched once, then kept.
    expect(fx.fetches()).toBe(1)
    const again = await wgetAsPortage(`${fx.url}/binpkgs/${pathOf(text, 'amd64 minimal')}`, distdir, 'again')
    expect(again.code).toBe(0)
    expect(fx.fetches()).toBe(1)
  })

  it('resumes with Range (wget -c as RESUMECOMMAND, curl -r), and shares one fetch among concurrent clients', async () => {
    const fx = await fixture()
    const path = pathOf(fx.merged().text, 'amd64 minimal')
    const whole = await readFile(join(fx.pkgdir, fx.builds.minimal.path))
    const answers = await Promise.all(Array.from({ length: 6 }, async () => fetch(`${fx.url}/binpkgs/${path}`)))
    for (const r of answers) expect(Buffer.from(await r.arrayBuffer()).equals(whole)).toBe(true)
    expect(fx.fetches()).toBe(1)

    const part = await curl(['-r', '100-199', `${fx.url}/binpkgs/${path}`])
    expect([part.status, part.body.equals(whole.subarray(100, 200))]).toEqual([206, true])
    const dir = await mkdtemp(join(tmpdir(), 'gw-resume-'))
    onTestFinished(() => rm(dir, { recursive: true, force: true }))
    await writeFile(join(dir, 'f'), whole.subarray(0, 5000))
    await run('wget', ['-c', '-t', '3', '-T', '60', '--passive-ftp', '-O', join(dir, 'f'), `${fx.url}/binpkgs/${path}`])
    expect((await readFile(join(dir, 'f'))).equals(whole)).toBe(true)
  })

  it('a PATH not in the index is a 404 (wget fails, as Portage expects), a lying peer a 502 with the reason and no byte of the file', async () => {
    const fx = await fixture()
    const dir = await mkdtemp(join(tmpdir(), 'gw-miss-'))
    onTestFinished(() => rm(dir, { recursive: true, force: true }))
    const missing = await wgetAsPortage(`${fx.url}/binpkgs/dev-db/mariadb/mariadb-11.4.5-999.gpkg.tar`, dir, 'x')
    expect(missing.code).not.toBe(0)
    expect(missing.stderr).toContain('404')
    expect((await fetch(`${fx.url}/binpkgs/app-misc/evil/evil-1.0-1.gpkg.tar`)).status).toBe(404)

    await fx.lie(fx.builds.minimal)
    const r = await fetch(`${fx.url}/binpkgs/${pathOf(fx.merged().text, 'amd64 minimal')}`)
    const text = await r.text()
    expect(r.status).toBe(502)
    expect(text).toContain('ERR_VERIFY_FAILED')
    expect(text.length).toBeLessThan(400)
    expect((await readdir(fx.cache)).filter((f) => !f.startsWith(fx.builds.full.blake2b))).toEqual([])
  })

  it('refuses hostile paths with 400 (.., %2e%2e, encoded slash, absolute, NUL, backslash, overlong) and touches nothing', async () => {
    const fx = await fixture()
    await writeFile(join(dirname(fx.cache), 'secret'), 'secret')
    const bad = [
      '/binpkgs/../../etc/passwd',
      '/binpkgs/..',
      '/binpkgs/%2e%2e/%2e%2e/secret',
      '/binpkgs/%2E%2E/secret',
      '/binpkgs/dev-db/mariadb/..%2f..%2fsecret',
      '/binpkgs/%2fetc%2fpasswd',
      '/binpkgs//etc/passwd',
      '/binpkgs/dev-db//mariadb-1.gpkg.tar',
      '/binpkgs/dev-db/mariadb/mariadb-11.4.5-1.gpkg.tar%00.txt',
      '/binpkgs/%00',
      '/binpkgs/..%5c..%5csecret',
      '/binpkgs/dev-db/./x.gpkg.tar',
      '/binpkgs/%zz',
      `/binpkgs/dev-db/mariadb/${'a'.repeat(300)}.gpkg.tar`
    ]
    for (const path of bad) {
      const r = await raw(fx.url, get(path))
      expect(r.status, path).toBe(400)
      expect(r.text, path).not.toContain('secret\n')
    }
    expect((await raw(fx.url, get(`/binpkgs/${'x/'.repeat(600)}`))).status).toBe(414)
    expect((await raw(fx.url, Buffer.from('GET /binpkgs/Packages\0 HTTP/1.1\r\nHost: localhost\r\n\r\n'))).status).toBe(400)
    // Harmless but not this binhost's: 404.
    for (const path of ['/binpkgs/', '/binpkgs', '/binpkgs/Packages.bz2', '/binpkgs/dev-db/mariadb', '/binpkgs/dev-db/mariadb/mariadb.ebuild', '/binpkgs/.hidden']) {
      const status = (await raw(fx.url, get(path))).status
      expect(status === 404 || status === 400, `${path}: ${status}`).toBe(true)
    }
    expect((await raw(fx.url, get('/binpkgs/Packages.bz2'))).status).toBe(404)
    expect(fx.fetches()).toBe(0)
    expect((await readdir(fx.cache)).length).toBe(1)
  })

  it('parses paths as the binhost makes them and nothing else', () => {
    expect(parseBinpkgsPath('Packages')).toEqual({ kind: 'index', gzip: false })
    expect(parseBinpkgsPath('Packages.gz')).toEqual({ kind: 'index', gzip: true })
    expect(parseBinpkgsPath('dev-db/mariadb/mariadb-11.4.5-1.gpkg.tar')).toEqual({ kind: 'package', path: 'dev-db/mariadb/mariadb-11.4.5-1.gpkg.tar' })
    expect(parseBinpkgsPath('dev-libs/libxml2/libxml2-2.12.6-r1-7.xpak')).toEqual({ kind: 'package', path: 'dev-libs/libxml2/libxml2-2.12.6-r1-7.xpak' })
    expect(parseBinpkgsPath('dev-db/mari%61db/mariadb-11.4.5-1.gpkg.tar')).toEqual({ kind: 'package', path: 'dev-db/mariadb/mariadb-11.4.5-1.gpkg.tar' })
    expect(parseBinpkgsPath('a/b/c/d.gpkg.tar').kind).toBe('bad')
    expect(parseBinpkgsPath('dev-db/mariadb/.x.gpkg.tar').kind).toBe('bad')
  })
})

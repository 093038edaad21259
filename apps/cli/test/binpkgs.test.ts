/**
 * `distswarm binpkgs`, `portage-config --binrepos` and the builds line of
 * `status` against a stand-in agent socket. With real agents:
 * test/e2e/binpkgs.test.ts.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { BuildInfo, BuildsResult } from '@distswarm/agent'
import { paintFor } from '../src/format.js'
import { run } from '../src/main.js'
import { useColumn } from '../src/commands/binpkgs.js'
import { fakeAgent, tempDir, testIO, type Request } from './fake-agent.js'

const build = (over: Partial<BuildInfo>): BuildInfo => ({
  cpv: 'dev-db/mariadb-11.4.5',
  buildId: 1,
  path: 'dev-db/mariadb/mariadb-11.4.5-1.gpkg.tar',
  use: 'amd64 elibc_glibc',
  size: 50 * 1024 * 1024,
  blake2b: 'ab'.repeat(64),
  builder: 'cd'.repeat(32),
  builderName: 'buildhost',
  holders: ['buildhost'],
  trusted: true,
  skipped: null,
  ...over
})

const RESULT: BuildsResult = {
  chost: 'x86_64-pc-linux-gnu',
  group: 'x86_64-pc-linux-gnu',
  unavailable: null,
  builds: [
    build({ buildId: 1234, use: 'amd64 elibc_glibc server' }),
    build({ buildId: 5678, use: 'amd64 elibc_glibc minimal', path: 'dev-db/mariadb/mariadb-11.4.5-5678.gpkg.tar', builderName: 'laptop', holders: ['laptop', 'this box'] }),
    build({ cpv: 'app-misc/evil-1.0', buildId: 1, path: null, use: 'amd64', builder: 'ee'.repeat(32), builderName: null, trusted: false, skipped: 'builder not in binpkg-trust' })
  ]
}

const answer = (result: BuildsResult, status: object = {}) => (req: Request) =>
  req.method === 'binpkgs' ? { result } : req.method === 'status' ? { result: status } : { result: [] }

/** A terminal for the colour paths. */
const tty = (t: ReturnType<typeof testIO>): ReturnType<typeof testIO> => {
  Object.assign(t.io.stdout, { isTTY: true })
  return t
}

describe('distswarm binpkgs', () => {
  it('lists each build with its BUILD_ID, USE, size, builder and holders, and why one is not served', async () => {
    const agent = await fakeAgent(answer(RESULT))
    const t = testIO()
    expect(await run(['binpkgs', '--control', agent.path], t.io), t.err()).toBe(0)
    const lines = t.out().split('\n')
    expect(lines[0]).toBe('binhost: CHOST x86_64-pc-linux-gnu, group x86_64-pc-linux-gnu; 2 of 3 builds served')
    expect(lines[1]).toMatch(/^CPV +BUILD_ID +USE +SIZE +BUILDER +HOLDERS +SERVED$/)
    expect(lines[2]).toMatch(/^dev-db\/mariadb-11\.4\.5 +1234 +amd64 elibc_glibc server -minimal +50\.0 MiB +buildhost +buildhost +yes$/)
    expect(lines[3]).toMatch(/^dev-db\/mariadb-11\.4\.5 +5678 +amd64 elibc_glibc minimal -server +50\.0 MiB +laptop +laptop, this box +yes$/)
    expect(lines[4]).toMatch(/^app-misc\/evil-1\.0 +1 +amd64 .* eeeeeeeeeeee \(untrusted\) .* no: builder not in binpkg-trust$/)
    expect(agent.requests.map((r) => [r.method, r.params])).toEqual([['binpkgs', {}]])
  })

  it('passes ATOM on, prints the JSON document with --json, and refuses an ATOM with operators or spaces (exit 2)', async () => {
    const agent = await fakeAgent(answer(RESULT))
    const t = testIO()
    expect(await run(['binpkgs', 'dev-db/mariadb', '--json', '--control', agent.path], t.io), t.err()).toBe(0)
    expect(JSON.parse(t.out())).toEqual(RESULT)
    expect(agent.requests.map((r) => r.params)).toEqual([{ atom: 'dev-db/mariadb' }])
    for (const bad of ['>=dev-db/mariadb-11', 'dev-db/mariadb 11', 'a/b/c', '']) {
      const b = testIO()
      expect(await run(['binpkgs', bad, '--control', agent.path], b.io), bad).toBe(2)
      expect(b.err()).toContain('ATOM must be')
    }
    expect(agent.requests.length).toBe(1)
  })

  it('says why the binhost serves nothing, and "no builds" for an empty network', async () => {
    const agent = await fakeAgent(answer({ chost: null, group: null, unavailable: 'no CHOST known: set --chost', builds: [] }))
    const t = testIO()
    expect(await run(['binpkgs', '--control', agent.path], t.io)).toBe(0)
    expect(t.out()).toBe("this box's binhost serves no builds: no CHOST known: set --chost\nno builds\n")
  })

  it('highlights on a terminal the USE flags that differ between instances of one CPV, and keeps the columns aligned', async () => {
    const agent = await fakeAgent(answer(RESULT))
    const t = tty(testIO())
    expect(await run(['binpkgs', '--control', agent.path], t.io)).toBe(0)
    const lines = t.out().split('\n')
    expect(lines[2]).toContain('\x1b[33m\x1b[1mserver\x1b[22m\x1b[39m')
    expect(lines[2]).toContain('\x1b[33m\x1b[1m-minimal\x1b[22m\x1b[39m')
    expect(lines[2]).not.toContain('\x1b[1mamd64')
    // Colour codes take no columns: SIZE starts at one column in both rows.
    const plain = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '')
    expect(plain(lines[2]!).indexOf('50.0 MiB')).toBe(plain(lines[3]!).indexOf('50.0 MiB'))
    const paint = paintFor({ isTTY: true }, {})
    expect(useColumn([build({ use: 'a b' })], paint)).toEqual(['a b'])
  })
})

describe('distswarm portage-config --binrepos', () => {
  it('prints the binrepos.conf section for the gateway the agent reports, signed by default, --unsigned for builds nobody signed', async () => {
    const agent = await fakeAgent(answer(RESULT, { cacheDir: '/var/cache/distswarm', url: 'http://0.0.0.0:49999' }))
    const t = testIO()
    expect(await run(['portage-config', '--binrepos', '--control', agent.path], t.io), t.err()).toBe(0)
    const text = t.out()
    expect(text).toMatch(/^\[distswarm\]\nsync-uri = http:\/\/127\.0\.0\.1:49999\/binpkgs\npriority = 10\nverify-signature = true\n$/m)
    expect(text).toContain('/etc/portage/binrepos.conf/distswarm.conf')
    expect(text).toContain('binpkg-signing')
    expect(text.split('\n').filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('['))).toEqual([
      'sync-uri = http://127.0.0.1:49999/binpkgs', 'priority = 10', 'verify-signature = true'
    ])
    const u = testIO()
    expect(await run(['portage-config', '--binrepos', '--unsigned', '--control', agent.path], u.io)).toBe(0)
    expect(u.out()).toContain('\nverify-signature = false\n')

    const wrong = testIO()
    expect(await run(['portage-config', '--unsigned', '--control', agent.path], wrong.io)).toBe(2)
    expect(wrong.err()).toContain('--unsigned goes with --binrepos')

    // The make.conf lines point at it.
    const m = testIO()
    expect(await run(['portage-config', '--control', agent.path], m.io)).toBe(0)
    expect(m.out()).toContain('distswarm portage-config --binrepos > /etc/portage/binrepos.conf/distswarm.conf')
  })

  it('without an agent: the default address and a note; with the gateway off: a note how to turn it on', async () => {
    const none = testIO({ XDG_RUNTIME_DIR: '/nonexistent-distswarm-test', XDG_CONFIG_HOME: '/nonexistent-distswarm-test' })
    expect(await run(['portage-config', '--binrepos', '--control', '/nonexistent-distswarm-test/control.sock'], none.io)).toBe(0)
    expect(none.out()).toContain('sync-uri = http://127.0.0.1:49740/binpkgs\n')
    expect(none.out()).toContain('# No agent answered')
    const off = await fakeAgent(answer(RESULT, { cacheDir: '/var/cache/distswarm', url: null }))
    const t = testIO()
    expect(await run(['portage-config', '--binrepos', '--control', off.path], t.io)).toBe(0)
    expect(t.out()).toContain('http = "off"')
  })
})

describe('distswarm init and binpkg-trust', () => {
  it('a new network on a box with a PKGDIR offers this box\'s key in the join line; init --join --binpkg-trust KEY writes it', async () => {
    const dir = await tempDir()
    const env = { XDG_RUNTIME_DIR: dir, XDG_CONFIG_HOME: dir, XDG_STATE_HOME: dir, XDG_CACHE_HOME: dir, HOME: dir }
    const state = join(dir, 'state')
    const pkgdir = join(dir, 'binpkgs')
    await mkdir(pkgdir)
    const t = testIO(env)
    expect(await run(['init', '--config', join(dir, 'a.toml'), '--state-dir', state, '--pkgdir', pkgdir, '--bootstrap', '10.0.0.1:49737'], t.io), t.err()).toBe(0)
    const identity = JSON.parse(await readFile(join(state, 'identity.json'), 'utf8')) as { publicKey: string }
    expect(t.out()).toContain(`--binpkg-trust ${identity.publicKey}`)
    const key = /init --join ([0-9a-f]{64})/.exec(t.out())![1]!

    const j = testIO(env)
    expect(await run(['init', '--join', key, '--config', join(dir, 'b.toml'), '--state-dir', join(dir, 'state-b'), '--bootstrap', '10.0.0.1:49737', '--binpkg-trust', identity.publicKey, '--json'], j.io), j.err()).toBe(0)
    expect((JSON.parse(j.out()) as { joined: boolean }).joined).toBe(true)
    expect(await readFile(join(dir, 'b.toml'), 'utf8')).toMatch(new RegExp(`^binpkg-trust = \\[\\s*"${identity.publicKey}"\\s*\\]`, 'm'))
  })
})

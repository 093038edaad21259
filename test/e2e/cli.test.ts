/**
 * The CLI as people and scripts meet it, against real agents: every query
 * command's --json carries the fields docs/cli.md documents (and no
 * undocumented one), people's output has no escape codes off a terminal or
 * under NO_COLOR, fetch draws progress from the agent's transfers on a
 * terminal, and portage-fetch's fallback downloads show in status.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { LsResult, PeerInfo, StatusResult, WhereResult } from '@distswarm/agent'
import { cli, cliJson, cliTTY, localNet, tempDir, waitFor, writeRandomFile } from '../harness.js'
import { digestsOf, distfile } from '../gentoo.js'

const MiB = 1024 * 1024
const ESC = '\x1b'
const DOCS = join(dirname(fileURLToPath(import.meta.url)), '../../docs/cli.md')

/** The fields docs/cli.md lists for a command: path → may be absent (its type ends in ?). */
async function documented (command: string): Promise<Map<string, boolean>> {
  const text = await readFile(DOCS, 'utf8')
  const section = text.split(/^## /m).find((s) => s.startsWith(`${command}\n`))
  if (!section) throw new Error(`docs/cli.md has no section ${command}`)
  const fields = new Map<string, boolean>()
  // the type column may hold an escaped bar: string\|null
  for (const m of section.matchAll(/^\| `([^`]+)` \| ((?:\\\||[^|])+?) \|/gm)) fields.set(m[1]!, m[2]!.trim().endsWith('?'))
  return fields
}

/** Every field path of a JSON value, as docs/cli.md writes them: `a.b`, `a[]`, `a[].b`. */
function paths (value: unknown, prefix = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    out.add(`${prefix}[]`)
    for (const v of value) paths(v, `${prefix}[]`, out)
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      const p = prefix ? `${prefix}.${k}` : k
      if (!Array.isArray(v)) out.add(p)
      paths(v, p, out)
    }
  }
  return out
}

/** The JSON has every documented field (inside arrays, when they have elements) and none undocumented. */
async function expectDocumented (command: string, json: unknown): Promise<void> {
  const docs = await documented(command)
  const actual = paths(json)
  expect([...actual].filter((p) => !docs.has(p)), `${command}: fields not in docs/cli.md`).toEqual([])
  const missing = [...docs].filter(([p, optional]) => {
    if (optional || actual.has(p)) return false
    // a field of array elements can only be seen when the array has some
    const arrays = [...p.matchAll(/\[\]/g)].map((m) => p.slice(0, m.index + 2))
    return arrays.every((a) => [...actual].some((x) => x.startsWith(`${a}.`) || (x === a && a === p)))
  }).map(([p]) => p)
  expect(missing, `${command}: documented fields missing from --json`).toEqual([])
}

describe('distswarm for people and scripts', () => {
  it('query commands: --json has the documented fields; tables without escape codes off a terminal and under NO_COLOR', async () => {
    const net = await localNet()
    const aDirs = await net.dirs('a')
    const small = distfile('small-1.tar.gz')
    await writeFile(join(aDirs.distdir, small.name), small.data)
    await writeRandomFile(join(aDirs.distdir, 'big-1.tar.xz'), 3 * MiB)
    const bDirs = await net.dirs('b')
    await writeRandomFile(join(bDirs.distdir, 'own-1.zip'), 5000)
    const [a, b] = await Promise.all([net.startAgent({ name: 'a' }), net.startAgent({ name: 'b' })])
    await waitFor(async () => {
      const r = await cli(['where', small.name, '--control', b.control, '--json'])
      return r.code === 0 && (JSON.parse(r.stdout) as WhereResult).remote.length === 1
    }, 30_000, 'b to see a\'s files')
    const ctl = ['--control', b.control]

    const fetched = await cli(['fetch', small.name, 'nobody-has-9.tar.gz', ...ctl, '--json'])
    expect(fetched.code).toBe(1) // one of the two is on no peer
    const outcomes = JSON.parse(fetched.stdout) as unknown[]
    expect(outcomes).toMatchObject([{ ok: true, result: { source: 'swarm', size: small.data.length } }, { ok: false, error: { code: 'ERR_NOT_FOUND' } }])
    await expectDocumented('fetch', outcomes)

    const status = await cliJson<StatusResult>(['status', ...ctl])
    await expectDocumented('status', status)
    expect(status.traffic).toMatchObject({ fetchedFromPeers: small.data.length, fetchedUpstream: 0, upstreamFiles: 0 })
    expect(status.transfers).toEqual([])
    // a served b the small file's bytes (at least: a piece may be asked twice)
    expect((await cliJson<StatusResult>(['status', '--control', a.control])).traffic.servedToPeers).toBeGreaterThanOrEqual(small.data.length)

    const peers = await cliJson<PeerInfo[]>(['peers', ...ctl])
    await expectDocumented('peers', peers)
    expect(peers).toHaveLength(1)
    // met over the DHT: a hyperswarm (UDX) connection, which measures its round trips
    expect(peers[0]!.rttMs).toEqual(expect.any(Number))
    expect(Date.parse(peers[0]!.lastSeenAt)).toBeGreaterThanOrEqual(Date.parse(peers[0]!.connectedAt))

    const mine = await cliJson<LsResult>(['ls', ...ctl])
    await expectDocumented('ls', mine)
    expect(mine.peer).toBeNull()
    expect(mine.files.map((f) => [f.name, f.where])).toEqual([['own-1.zip', 'distdir'], [small.name, 'cache']])
    const theirs = await cliJson<LsResult>(['ls', '--peer', peers[0]!.publicKey.slice(0, 8), ...ctl])
    await expectDocumented('ls', theirs)
    expect(theirs.peer).toEqual({ name: 'a', publicKey: peers[0]!.publicKey })
    expect(theirs.files.map((f) => [f.name, f.where, f.path])).toEqual([['big-1.tar.xz', 'peer', null], [small.name, 'peer', null]])
    expect((await cliJson<LsResult>(['ls', '--peer', 'a', ...ctl])).peer?.name).toBe('a')
    const noPeer = await cli(['ls', '--peer', 'nobody', ...ctl])
    expect(noPeer.code).toBe(1)

    await expectDocumented('where', await cliJson<WhereResult>(['where', small.name, ...ctl]))
    await expectDocumented('verify', await cliJson(['verify', ...ctl]))
    await expectDocumented('gc', await cliJson(['gc', '--dry-run', ...ctl]))

    // For people: tables, no escape codes when stdout is a pipe
    const human: Record<string, string> = {}
    for (const args of [['status'], ['peers'], ['ls'], ['ls', '--peer', 'a'], ['where', small.name], ['fetch', small.name], ['verify'], ['gc', '--dry-run']]) {
      const r = await cli([...args, ...ctl], { env: { NO_COLOR: '' } })
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0)
      expect(r.stdout + r.stderr, args.join(' ')).not.toContain(ESC)
      human[args.join(' ')] = r.stdout
    }
    expect(human.peers).toMatch(/^NAME +KEY +ADDRESS +PATH +FILES +SENT +RECEIVED +RTT +FAULTS +CONNECTED +LAST SEEN\n/)
    expect(human.peers).toMatch(/^a +[0-9a-f]{12} +127\.0\.0\.1:\d+ +(tcp|hyperswarm) +2 +.*(ms|-) +0 +(just now|\d+ s ago) +(just now|\d+ s ago)$/m)
    expect(human.ls).toMatch(/^own-1\.zip +4\.9 KiB +distdir /m)
    expect(human.ls).toMatch(/^small-1\.tar\.gz +\d+\.\d KiB +cache /m)
    expect(human['ls --peer a']).toMatch(/^big-1\.tar\.xz +3\.0 MiB +peer /m)
    expect(human.status).toMatch(/^traffic +0 B served to peers, \d+\.\d KiB fetched from peers, 0 B upstream/m)
    expect(human[`fetch ${small.name}`]).toMatch(/already here/)

    // On a terminal: colour, unless NO_COLOR says no
    for (const args of [['peers'], ['status'], ['ls']]) {
      const plain = cliTTY([...args, ...ctl], { env: { NO_COLOR: '1' } })
      expect(await plain.exited).toBe(0)
      expect(plain.output(), args.join(' ')).not.toContain(ESC)
      const coloured = cliTTY([...args, ...ctl], { env: { NO_COLOR: '' } }) // empty counts as unset (no-color.org)
      expect(await coloured.exited).toBe(0)
      expect(coloured.output(), args.join(' ')).toContain(`${ESC}[1m`)
    }
  })

  it('fetch on a terminal draws a progress bar from the transfer the agent lists in status', async () => {
    const net = await localNet()
    const seed = await net.dirs('seeder')
    await writeRandomFile(join(seed.distdir, 'slow-1.tar.xz'), 8 * MiB)
    // The seeder is frozen for seconds below: --dead-peer-ms keeps the box from taking it for dead (over TCP too, since pings tell).
    const [seeder, box] = await Promise.all([net.startAgent({ name: 'seeder' }), net.startAgent({ name: 'box', args: ['--dead-peer-ms', '120000'] })])
    await waitFor(async () => (await cli(['where', 'slow-1.tar.xz', '--control', box.control])).code === 0, 30_000, 'box to see the file')

    // The seeder holds still: the transfer stays in flight, at 0 bytes, until it goes on.
    const stopped = (on: boolean): void => { seeder.child.kill(on ? 'SIGSTOP' : 'SIGCONT') }
    stopped(true)
    onTestFinished(() => stopped(false))
    const fetch = cliTTY(['fetch', 'slow-1.tar.xz', '--control', box.control], { env: { NO_COLOR: '' } })
    await waitFor(async () => (await box.status()).transfers.length === 1, 30_000, 'the transfer to show in status')
    const status = await cliJson<StatusResult>(['status', '--control', box.control])
    await expectDocumented('status', status)
    expect(status.transfers).toMatchObject([{ name: 'slow-1.tar.xz', size: 8 * MiB, bytesDone: 0, sources: [{ name: 'seeder', holds: 'whole' }] }])
    expect((await cli(['status', '--control', box.control])).stdout).toMatch(/slow-1\.tar\.xz +0 B +8\.0 MiB +0% +.* seeder\n/)
    await waitFor(() => /slow-1\.tar\.xz +\[-+\] +0 B \/ 8\.0 MiB +- \/s +ETA -/.test(fetch.output()), 30_000, 'a progress bar')
      .catch((err: Error) => { throw new Error(`${err.message}; the terminal got ${JSON.stringify(fetch.output())}`) })

    stopped(false)
    expect(await fetch.exited).toBe(0)
    expect(fetch.output()).toMatch(/slow-1\.tar\.xz +8\.0 MiB +.*fetched in .* \(.*\/s\)/)
    expect((await box.status()).transfers).toEqual([])
  })

  it('portage-fetch reports what its fallback downloaded upstream; status sums it', async () => {
    const net = await localNet()
    const box = await net.startAgent({ name: 'box' })
    const root = await tempDir()
    const up = distfile('up-1.tar.gz')
    const src = join(root, 'mirror-copy')
    await writeFile(src, up.data)
    const distdir = join(root, 'distdir')
    await mkdir(distdir)
    const portageFetch = (fallback: string) => cli([
      'portage-fetch', '--control', box.control, '--fallback', fallback,
      `http://127.0.0.1:1/${up.name}`, distdir, `${up.name}.__download__`, digestsOf(up)
    ])
    const ok = await portageFetch(`cp ${src} \${DISTDIR}/\${FILE}`)
    expect(ok.code, ok.stderr).toBe(0)
    expect((await box.status()).traffic).toMatchObject({ fetchedUpstream: up.data.length, upstreamFiles: 1 })
    // a failed fallback downloaded nothing: nothing reported
    expect((await portageFetch('false')).code).toBe(1)
    const status = await cliJson<StatusResult>(['status', '--control', box.control])
    expect(status.traffic).toMatchObject({ fetchedUpstream: up.data.length, upstreamFiles: 1 })
    expect((await cli(['status', '--control', box.control])).stdout).toMatch(/upstream \(1 file by portage-fetch\)/)
  })

  it('portage-config writes into FETCHCOMMAND the socket it reached, also when DISTSWARM_CONTROL or the config file named it', async () => {
    const net = await localNet()
    const box = await net.startAgent({ name: 'box' })
    const root = await tempDir()
    const config = join(root, 'distswarm.toml')
    await writeFile(config, `control = "${box.control}"\n`)
    const fetchCommand = (text: string): string | undefined => /^FETCHCOMMAND="(.*)"$/m.exec(text)?.[1]
    for (const [args, env] of [[[], { DISTSWARM_CONTROL: box.control }], [['--config', config], {}]] as const) {
      const r = await cli(['portage-config', ...args], { env })
      expect(r.code, r.stderr).toBe(0)
      expect(fetchCommand(r.stdout)).toContain(` portage-fetch --control ${box.control} `)
      expect(r.stdout).toContain(`PORTAGE_RO_DISTDIRS="${box.cacheDir}"`)
    }
  })
})

/**
 * Setting up real boxes: `distswarm init` / `init --join`, the config file,
 * seed mode and log levels, each through the real binary.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { lstat, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { ControlClient, type FetchResult, type StatusResult, type WhereResult } from '@distswarm/agent'
import type { LocalNet } from '@distswarm/localnet'
import { cli, cliJson, localNet, tempDir, waitFor } from '../harness.js'
import { distfile } from '../gentoo.js'

interface Box { config: string, state: string, cache: string, control: string, distdir: string }

async function box (root: string, name: string): Promise<Box> {
  const dir = join(root, name)
  await mkdir(join(dir, 'distfiles'), { recursive: true })
  return { config: join(dir, 'etc', 'distswarm.toml'), state: join(dir, 'state'), cache: join(dir, 'cache'), control: join(dir, 'control.sock'), distdir: join(dir, 'distfiles') }
}

/** init's flags that keep a box's files under its temp dir. */
const where = (b: Box): string[] => ['--config', b.config, '--state-dir', b.state, '--cache-dir', b.cache, '--control', b.control, '--distdir', b.distdir]

async function status (control: string): Promise<StatusResult> {
  const c = await ControlClient.connect(control)
  try {
    return await c.call('status', {})
  } finally {
    c.close()
  }
}

/** Starts `distswarm ARGS…` (an agent) on the net and resolves once it answers on `control`. */
async function startWith (net: LocalNet, label: string, args: string[], control: string): Promise<{ log: string[], stop: () => Promise<void> }> {
  const proc = net.spawn(label, args)
  await waitFor(async () => {
    if (proc.child.exitCode !== null) throw new Error(`${label} exited ${proc.child.exitCode}: ${proc.log.join('\n')}`)
    return status(control).then(() => true, () => false)
  }, 30_000, `${label} to answer`)
  return proc
}

/** Every entry under `dirs`, with what a write would change: mode, size, mtime, ctime. */
async function snapshot (dirs: string[]): Promise<string[]> {
  const out: string[] = []
  const walk = async (root: string, dir: string): Promise<void> => {
    const st = await lstat(dir)
    out.push(`${relative(root, dir)} ${st.mode} ${st.size} ${st.mtimeMs} ${st.ctimeMs}`)
    if (!st.isDirectory()) return
    for (const name of (await readdir(dir)).sort()) await walk(root, join(dir, name))
  }
  for (const d of dirs) await walk(d, d)
  return out
}

describe('distswarm init', () => {
  it('makes a new network; init --join with the printed command makes a second box of it; the two agents meet and share a file', async () => {
    // the temp dir first: cleanups run in reverse, so the agents stop before their dirs go
    const root = await tempDir()
    const net = await localNet()
    const [a, b] = [await box(root, 'a'), await box(root, 'b')]

    const first = await cli(['init', ...where(a), '--name', 'a', '--bootstrap', net.bootstrap!, '--json'])
    expect(first.code, first.stderr).toBe(0)
    const made = JSON.parse(first.stdout) as { config: string, stateDir: string, join: string[] }
    expect(made).toMatchObject({ config: a.config, stateDir: a.state })
    const [, flag, key] = made.join
    expect([made.join[0], flag]).toEqual(['init', '--join'])
    expect(key).toMatch(/^[0-9a-f]{64}$/)
    expect(made.join.slice(3)).toEqual(['--bootstrap', net.bootstrap])
    expect((await stat(a.config)).mode & 0o777).toBe(0o600)
    expect((await stat(a.state)).isDirectory()).toBe(true)

    const second = await cli([...made.join, ...where(b), '--name', 'b', '--json'])
    expect(second.code, second.stderr).toBe(0)
    expect(await readFile(b.config, 'utf8')).toContain(`network-key = "${key}"`)
    expect((await stat(b.config)).mode & 0o777).toBe(0o600)

    const f = distfile('init-1.0.tar.xz')
    await writeFile(join(a.distdir, f.name), f.data)
    // Nothing but the config file: no key, no bootstrap on the command line or in the environment.
    await Promise.all([
      startWith(net, 'a', ['agent', '--config', a.config], a.control),
      startWith(net, 'b', ['agent', '--config', b.config], b.control)
    ])
    await waitFor(async () => (await status(b.control)).peers === 1, 30_000, 'the two boxes to meet')
    await waitFor(async () => (await cliJson<WhereResult>(['where', f.name, '--control', b.control])).remote.length === 1, 15_000, "a's file to show at b")
    const [r] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', f.name, '--control', b.control])
    expect((await readFile(r!.result.path)).equals(f.data)).toBe(true)
    // The query commands find each agent from its config file alone, as `distswarm agent --config` did.
    const peers = await cliJson<Array<{ name: string }>>(['peers', '--config', b.config])
    expect(peers.map((p) => p.name)).toEqual(['a'])
    expect((await cliJson<StatusResult>(['status', '--config', a.config])).name).toBe('a')
    expect((await cli(['ls', '--config', a.config])).stdout).toContain(f.name)

    // doctor on b, once its make.conf has the lines portage-config prints: every check passes
    const portageDir = join(root, 'b', 'portage')
    await mkdir(portageDir)
    const doctor = ['doctor', '--config', b.config, '--portage-dir', portageDir, '--portage-user', 'root', '--json']
    const before = await cli(doctor)
    expect(before.code).toBe(1)
    expect(JSON.parse(before.stdout)).toMatchObject({ ok: false, checks: expect.arrayContaining([expect.objectContaining({ name: 'make-conf', status: 'fail' })]) })
    const conf = await cli(['portage-config', '--config', b.config])
    expect(conf.code, conf.stderr).toBe(0)
    await writeFile(join(portageDir, 'make.conf'), conf.stdout)
    const after = await cli(doctor)
    const report = JSON.parse(after.stdout) as { ok: boolean, checks: Array<{ name: string, status: string }> }
    expect(report.checks.filter((c) => c.status !== 'ok'), after.stdout).toEqual([])
    expect(after.code).toBe(0)
  })

  it('init --bootstrap with an address of this box prints how to run the bootstrap node here; with another box\'s, not', async () => {
    const root = await tempDir()
    const here = await cli(['init', ...where(await box(root, 'here')), '--bootstrap', '127.0.0.1:40999'])
    expect(here.code, here.stderr).toBe(0)
    expect(here.stdout).toContain("This box runs the network's bootstrap node")
    expect(here.stdout).toMatch(/^ {2}distswarm bootstrap --host 127\.0\.0\.1 --port 40999$/m)
    // 192.0.2.1: TEST-NET-1, no box's address (init only writes a file: nothing is sent)
    const elsewhere = await cli(['init', ...where(await box(root, 'elsewhere')), '--bootstrap', '192.0.2.1:49737'])
    expect(elsewhere.code, elsewhere.stderr).toBe(0)
    expect(elsewhere.stdout).not.toContain('bootstrap node')
    expect(elsewhere.stdout).not.toContain('distswarm bootstrap')
  })

  it('refuses to overwrite a config without --force; --force replaces it and its key', async () => {
    const b = await box(await tempDir(), 'a')
    const args = [...where(b), '--bootstrap', '127.0.0.1:49737']
    expect((await cli(['init', ...args])).code).toBe(0)
    const before = await readFile(b.config, 'utf8')
    const again = await cli(['init', ...args])
    expect(again.code).toBe(2)
    expect(again.stderr).toContain('--force')
    expect(await readFile(b.config, 'utf8')).toBe(before)
    expect((await cli(['init', ...args, '--force'])).code).toBe(0)
    const after = await readFile(b.config, 'utf8')
    const keyOf = (text: string): string | undefined => /^network-key = "(\w+)"$/m.exec(text)?.[1]
    expect(keyOf(after)).toMatch(/^[0-9a-f]{64}$/)
    expect(keyOf(after)).not.toBe(keyOf(before))
  })

  it("on a box with a PKGDIR, offers its key for binpkg-trust in the join line, and init --join writes it", async () => {
    const root = await tempDir()
    const [a, b] = [await box(root, 'a'), await box(root, 'b')]
    const pkgdir = join(root, 'a', 'binpkgs')
    await mkdir(pkgdir)
    const first = await cli(['init', ...where(a), '--pkgdir', pkgdir, '--bootstrap', '127.0.0.1:49737', '--json'])
    expect(first.code, first.stderr).toBe(0)
    const made = JSON.parse(first.stdout) as { builder: string, join: string[] }
    // The key the agent will sign its builds with: its identity, made now in its state dir.
    const identity = JSON.parse(await readFile(join(a.state, 'identity.json'), 'utf8')) as { publicKey: string }
    expect(made.builder).toBe(identity.publicKey)
    expect(made.join.slice(-2)).toEqual(['--binpkg-trust', identity.publicKey])
    const second = await cli([...made.join, ...where(b), '--json'])
    expect(second.code, second.stderr).toBe(0)
    expect(await readFile(b.config, 'utf8')).toContain(`binpkg-trust = [ "${identity.publicKey}" ]`)
    // Without a PKGDIR (and none at Portage's default place on this machine), nothing is offered.
    const plain = await cli(['init', ...where(await box(root, 'c')), '--bootstrap', '127.0.0.1:49737', '--json'])
    const portageDefault = await stat('/var/cache/binpkgs').then(() => true, () => false)
    if (!portageDefault) expect(JSON.parse(plain.stdout)).toMatchObject({ builder: null })
  })

  it('writes nothing for a value the agent would refuse', async () => {
    const b = await box(await tempDir(), 'a')
    const r = await cli(['init', ...where(b), '--join', 'abc', '--bootstrap', '127.0.0.1:49737'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('network-key (--join)')
    await expect(stat(b.config)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})

describe('the config file', () => {
  it('an agent refuses an unknown key or a bad value at start, naming it and its file:line', async () => {
    const b = await box(await tempDir(), 'a')
    expect((await cli(['init', ...where(b), '--bootstrap', '127.0.0.1:49737'])).code).toBe(0)
    const text = await readFile(b.config, 'utf8')
    const lineCount = text.split('\n').length // the text ends in a newline: the next line's number
    await writeFile(b.config, `${text}colour = "blue"\n`)
    const unknown = await cli(['agent', '--config', b.config])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain(`colour (${b.config}:${lineCount})`)

    const lines = text.split('\n')
    const at = lines.indexOf('# data-port = 49738')
    expect(at).toBeGreaterThan(0)
    lines[at] = 'data-port = -1'
    await writeFile(b.config, lines.join('\n'))
    const bad = await cli(['agent', '--config', b.config])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain(`data-port (${b.config}:${at + 1})`)
    // a flag wins over the file, and is named as the origin
    const overridden = await cli(['agent', '--config', b.config, '--data-port', '70000'])
    expect(overridden.stderr).toContain('data-port (--data-port)')
  })
})

describe('seed mode', () => {
  it('a seed serves its distdirs, extra read-only ones too, never fetches, writes nothing under them; log levels filter', async () => {
    const net = await localNet()
    const seeder = await net.dirs('seeder')
    const readOnly = await tempDir('distswarm-ro-')
    const [own, extra, elsewhere] = [distfile('own-1.0.tar.xz'), distfile('mirror-2.0.tar.xz'), distfile('elsewhere-3.0.tar.xz')]
    await writeFile(join(seeder.distdir, own.name), own.data)
    await writeFile(join(readOnly, extra.name), extra.data)
    await writeFile(join((await net.dirs('laptop')).distdir, elsewhere.name), elsewhere.data)
    const before = await snapshot([seeder.distdir, readOnly])

    const seed = await startWith(net, 'seeder', [
      'seed', '--config', '/dev/null', '--name', 'seeder', '--bootstrap', net.bootstrap!, '--distdir', seeder.distdir, '--distdir', readOnly,
      '--cache-dir', seeder.cacheDir, '--state-dir', seeder.stateDir, '--control', seeder.control, '--network-key', net.networkKey,
      '--log-level', 'debug'
    ], seeder.control)
    // This box's own settings do not reach a LocalNet agent.
    process.env.DISTSWARM_SEED = 'true'
    onTestFinished(() => { delete process.env.DISTSWARM_SEED })
    const laptop = await net.startAgent({ name: 'laptop', args: ['--log-level', 'error'] })

    expect(await cliJson<StatusResult>(['status', '--control', seeder.control])).toMatchObject({ seed: true, files: 2 })
    expect((await laptop.status()).seed).toBe(false)
    // It serves: the laptop fetches both files from it.
    await waitFor(async () => (await cliJson<WhereResult>(['where', extra.name, '--control', laptop.control])).remote.length === 1, 30_000, 'the seed\'s files to show at the laptop')
    const fetched = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', own.name, extra.name, '--control', laptop.control])
    expect(fetched.map((o) => o.ok)).toEqual([true, true])
    expect((await readFile(fetched[1]!.result.path)).equals(extra.data)).toBe(true)

    // It never fetches, not even a file a peer offers.
    await waitFor(async () => (await cliJson<WhereResult>(['where', elsewhere.name, '--control', seeder.control])).remote.length === 1, 15_000, 'the laptop\'s file to show at the seed')
    const refused = await cli(['fetch', elsewhere.name, '--control', seeder.control, '--json'])
    expect(refused.code).toBe(1)
    expect((JSON.parse(refused.stdout) as Array<{ ok: boolean, error: { code: string } }>)[0]).toMatchObject({ ok: false, error: { code: 'ERR_SEED_ONLY' } })
    expect((await status(seeder.control)).fetches).toMatchObject({ completed: 0, inFlight: 0 })
    await seed.stop()
    await laptop.stop()

    expect(await snapshot([seeder.distdir, readOnly])).toEqual(before)
    const lineFormat = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn |info |debug) distswarm:[\w:]+ \S/
    expect(seed.log.filter((l) => !lineFormat.test(l))).toEqual([])
    expect(seed.log.some((l) => / info {2}distswarm:cli agent\.ready .*seed=true/.test(l))).toBe(true)
    expect(seed.log.some((l) => / debug distswarm:store /.test(l))).toBe(true)
    // --log-level error: nothing went wrong, so not a line
    expect(laptop.log).toEqual([])
  })
})

/**
 * `distswarm doctor` on boxes set up right and set up wrong: a stand-in
 * agent socket, a real DHT bootstrap node on 127.0.0.1, a make.conf in a temp
 * dir, and `nobody` as Portage's user (every box has one).
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { chmod, mkdir, readFile, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startBootstrapNode, type PeerInfo, type StatusResult } from '@distswarm/agent'
import { run } from '../src/main.js'
import { bakedControl, clockCheck, readMakeConf, type Check } from '../src/commands/doctor.js'
import { fakeAgent, tempDir, testIO } from './fake-agent.js'

const KEY = 'ab'.repeat(32)

/** A box: its config, cache dir, Portage dir and the agent socket, set up as the README says unless `opts` says otherwise. */
async function box (opts: { peers?: number, bootstrap?: string, readable?: boolean, makeConf?: boolean, clockOffsetMs?: number }) {
  const dir = await tempDir()
  const cacheDir = join(dir, 'cache')
  await mkdir(cacheDir)
  const agent = await fakeAgent((req) => req.method === 'status'
    ? { result: { name: 'box', control: agent.path, cacheDir, peers: opts.peers ?? 1 } satisfies Partial<StatusResult> }
    : req.method === 'peers'
      ? { result: Array.from({ length: opts.peers ?? 1 }, (_, i) => ({ name: `peer${i}`, address: `10.77.0.${11 + i}:49738`, clockOffsetMs: i === 0 ? opts.clockOffsetMs ?? 12 : 3 } satisfies Partial<PeerInfo>)) }
      : { result: null })
  const config = join(dir, 'distswarm.toml')
  await writeFile(config, `network-key = "${KEY}"\nbootstrap = ["${opts.bootstrap}"]\ncontrol = "${agent.path}"\ncache-dir = "${cacheDir}"\n`)
  const portage = join(dir, 'portage')
  await mkdir(portage)
  if (opts.makeConf !== false) {
    const t = testIO()
    expect(await run(['portage-config', '--config', config], t.io)).toBe(0)
    await writeFile(join(portage, 'make.conf'), `CFLAGS="-O2"\n${t.out()}`)
  }
  // the temp dirs are 0700: open the way for Portage's user, as /run and /var/cache are
  if (opts.readable !== false) {
    for (const d of [dir, join(agent.path, '..'), cacheDir]) await chmod(d, 0o755)
    await chmod(agent.path, 0o666)
  }
  return { argv: ['doctor', '--config', config, '--portage-dir', portage, '--portage-user', 'nobody', '--json'], agent, portage, config }
}

async function doctor (argv: string[]): Promise<{ code: number, ok: boolean, checks: Map<string, Check> }> {
  const t = testIO()
  const code = await run(argv, t.io)
  const { ok, checks } = JSON.parse(t.out()) as { ok: boolean, checks: Check[] }
  return { code, ok, checks: new Map(checks.map((c) => [c.name, c])) }
}

async function bootstrapNode (): Promise<string> {
  const node = await startBootstrapNode({ host: '127.0.0.1', port: 0, storageNodes: 0 })
  onTestFinished(() => node.destroy())
  const { host, port } = node.address()
  return `${host}:${port}`
}

describe('distswarm doctor', () => {
  it('passes every check on a box set up as the README says, exit 0', async () => {
    const b = await box({ bootstrap: await bootstrapNode() })
    const before = b.agent.connections
    const r = await doctor(b.argv)
    // status and peers on one control connection
    expect(b.agent.connections - before).toBe(1)
    expect(b.agent.requests.slice(-2).map((q) => q.method)).toEqual(['status', 'peers'])
    expect([...r.checks.values()].filter((c) => c.status !== 'ok')).toEqual([])
    expect([...r.checks.keys()]).toEqual(['config', 'agent', 'socket-access', 'cache-dir', 'make-conf', 'bootstrap', 'peers', 'clock'])
    expect(r.checks.get('clock')?.detail).toMatch(/^within 0 s of 1 peer's clock; no file from the future/)
    expect(r).toMatchObject({ code: 0, ok: true })
    // for people: one line a check
    const t = testIO()
    expect(await run(b.argv.filter((a) => a !== '--json'), t.io)).toBe(0)
    expect(t.out()).toMatch(/^ok +config +.*readable and valid$/m)
  })

  it('names each problem with its fix in one line, and exits 1', async () => {
    // nothing answers on the bootstrap address; dirs closed to nobody; no make.conf lines; no peers
    const b = await box({ bootstrap: '127.0.0.1:9', readable: false, makeConf: false, peers: 0 })
    const r = await doctor(b.argv)
    expect(r).toMatchObject({ code: 1, ok: false })
    const failed = [...r.checks.values()].filter((c) => c.status === 'fail')
    expect(failed.map((c) => c.name)).toEqual(['socket-access', 'cache-dir', 'make-conf', 'bootstrap', 'peers'])
    for (const c of failed) expect(c.fix, c.name).toMatch(/^[^\n]+$/)
    expect(r.checks.get('socket-access')?.detail).toMatch(/^nobody cannot pass /)
    expect(r.checks.get('make-conf')?.fix).toContain('distswarm portage-config >>')
    expect(r.checks.get('bootstrap')?.detail).toContain('127.0.0.1:9')

    // no agent on the socket, no config file
    const gone = await doctor(['doctor', '--config', join(await tempDir(), 'none.toml'), '--control', join(await tempDir(), 'none.sock'), '--portage-dir', b.portage, '--json'])
    expect(gone.code).toBe(1)
    expect(gone.checks.get('config')).toMatchObject({ status: 'fail', fix: expect.stringContaining('distswarm init') })
    expect(gone.checks.get('agent')).toMatchObject({ status: 'fail', fix: expect.stringContaining('start it') })
    expect(gone.checks.get('peers')?.status).toBe('skip')
  })

  it('checks make.conf against the agent Portage will reach: the --control baked in', async () => {
    const b = await box({ bootstrap: '127.0.0.1:9' })
    const conf = await readMakeConf(b.portage, ['FETCHCOMMAND'])
    expect(bakedControl(conf!.values.get('FETCHCOMMAND')!)).toBe(b.agent.path)
    expect(bakedControl('wget -O "${DISTDIR}/${FILE}" "${URI}"')).toBeNull()
    expect(bakedControl('/usr/bin/node /x/distswarm.js portage-fetch "${URI}"')).toBe('')
    // make.conf names another socket: the agent check reaches nobody there
    const text = await readFile(join(b.portage, 'make.conf'), 'utf8')
    await writeFile(join(b.portage, 'make.conf'), text.replaceAll(b.agent.path, '/nonexistent/control.sock'))
    const r = await doctor(b.argv)
    expect(r.checks.get('agent')).toMatchObject({ status: 'fail', detail: expect.stringContaining("/nonexistent/control.sock (FETCHCOMMAND's)") })
    expect(r.checks.get('make-conf')?.detail).toContain("FETCHCOMMAND's --control /nonexistent/control.sock is not the agent's socket")
  })

  it('checks the clock against the peers\' (measured by ping) and against files that cannot be from the future', async () => {
    // a peer 15 min ahead: this box is behind
    const b = await box({ bootstrap: await bootstrapNode(), clockOffsetMs: 15 * 60_000 })
    const r = await doctor(b.argv)
    expect(r).toMatchObject({ code: 1, ok: false })
    expect(r.checks.get('clock')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/900 s behind peer0's \(10\.77\.0\.11:49738\)/), fix: expect.stringContaining('NTP') })
    expect([...r.checks.values()].filter((c) => c.status === 'fail').map((c) => c.name)).toEqual(['clock'])

    // no peer to compare with, but a config file written an hour from now: the clock is behind
    const future = await box({ bootstrap: await bootstrapNode(), peers: 0 })
    const hour = new Date(Date.now() + 3600_000)
    await utimes(future.config, hour, hour)
    const f = await doctor(future.argv)
    expect(f.checks.get('clock')).toMatchObject({ status: 'fail', detail: expect.stringContaining(`${future.config} was modified at`) })

    // the check on its own: within a minute is fine; an older agent's peers carry no offset
    expect(await clockCheck([{ clockOffsetMs: -59_000 } as PeerInfo], [])).toMatchObject({ status: 'ok' })
    expect(await clockCheck([{ clockOffsetMs: -61_000, name: 'nas', address: null } as PeerInfo], [])).toMatchObject({ status: 'fail', detail: expect.stringContaining("61 s ahead of nas's") })
    expect(await clockCheck([{ name: 'old' } as PeerInfo], [])).toMatchObject({ status: 'ok', detail: expect.stringContaining('no peer to compare with') })
  })
})

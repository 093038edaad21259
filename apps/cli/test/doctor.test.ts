/**
 * `distswarm doctor` on boxes set up right and set up wrong: a stand-in
 * agent socket, a real DHT bootstrap node on 127.0.0.1, a make.conf in a temp
 * dir, and `nobody` as Portage's user (every box has one).
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startBootstrapNode, type StatusResult } from '@distswarm/agent'
import { run } from '../src/main.js'
import { bakedControl, readMakeConf, type Check } from '../src/commands/doctor.js'
import { fakeAgent, tempDir, testIO } from './fake-agent.js'

const KEY = 'ab'.repeat(32)

/** A box: its config, cache dir, Portage dir and the agent socket, set up as the README says unless `opts` says otherwise. */
async function box (opts: { peers?: number, bootstrap?: string, readable?: boolean, makeConf?: boolean }) {
  const dir = await tempDir()
  const cacheDir = join(dir, 'cache')
  await mkdir(cacheDir)
  const agent = await fakeAgent((req) => req.method === 'status'
    ? { result: { name: 'box', control: agent.path, cacheDir, peers: opts.peers ?? 1 } satisfies Partial<StatusResult> }
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
    const r = await doctor(b.argv)
    expect([...r.checks.values()].filter((c) => c.status !== 'ok')).toEqual([])
    expect([...r.checks.keys()]).toEqual(['config', 'agent', 'socket-access', 'cache-dir', 'make-conf', 'bootstrap', 'peers'])
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
})

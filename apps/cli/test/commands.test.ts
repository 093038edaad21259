/**
 * Commands against a stand-in agent socket: where they look for the agent
 * (--control, DISTSWARM_CONTROL, the config file), what they print for a
 * reply, and what they do with a reply no agent should send.
 */
import { describe, expect, it } from 'vitest'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Agent, ControlClient, resolveConfig, type FetchResult, type StatusResult } from '@distswarm/agent'
import { exitCodeOf } from '../src/command.js'
import { movedText } from '../src/format.js'
import { run } from '../src/main.js'
import { reachableAt } from '../src/commands/query.js'
import { fakeAgent, tempDir, testIO, type Request } from './fake-agent.js'

const KEY = 'ab'.repeat(32)

const STATUS: StatusResult = {
  name: 'box', seed: false, publicKey: 'cd'.repeat(32), network: 'ef'.repeat(8), dhtAddress: '0.0.0.0:40001', dataPort: 49738,
  control: '/run/distswarm/control.sock', metricsAddress: null,
  httpAddress: '127.0.0.1:49740',
  url: 'http://127.0.0.1:49740/', cacheDir: '/var/cache/distswarm', distdirs: ['/var/cache/distfiles'],
  files: 0, bytes: 0, cache: { bytes: 0, maxBytes: null }, peers: 0, fetches: { inFlight: 0, completed: 0, failed: 0, bytesFetched: 0 },
  transfers: [], traffic: { servedToPeers: 0, fetchedFromPeers: 0, fetchedUpstream: 0, upstreamFiles: 0 },
  manifest: { repos: [], names: 0, problems: 0 }, problems: [], uptimeMs: 1000
}

const answerStatus = (status: object = STATUS) => (req: Request) => req.method === 'status' ? { result: status } : { result: [] }

describe('where a command finds the agent', () => {
  it("query commands take --config and the config file's control socket; --control and DISTSWARM_CONTROL win over it", async () => {
    const inFile = await fakeAgent(answerStatus())
    const dir = await tempDir()
    const config = join(dir, 'distswarm.toml')
    await writeFile(config, `network-key = "${KEY}"\ncontrol = "${inFile.path}"\n`)
    for (const cmd of [['peers'], ['status'], ['ls']]) {
      const t = testIO()
      expect(await run([...cmd, '--config', config, '--json'], t.io), `${cmd.join(' ')}: ${t.err()}`).toBe(0)
    }
    // peers asks for the status too (its problems)
    expect(inFile.requests.map((r) => r.method)).toEqual(['peers', 'status', 'status', 'ls'])
    // DISTSWARM_CONFIG names the file as --config does
    expect(await run(['peers'], testIO({ DISTSWARM_CONFIG: config }).io)).toBe(0)
    expect(inFile.requests).toHaveLength(6)

    const flagged = await fakeAgent(answerStatus())
    expect(await run(['peers', '--config', config, '--control', flagged.path], testIO().io)).toBe(0)
    expect(await run(['peers', '--config', config], testIO({ DISTSWARM_CONTROL: flagged.path }).io)).toBe(0)
    expect(flagged.requests).toHaveLength(4)
    expect(inFile.requests).toHaveLength(6)
  })

  it('a config file that is missing or names no usable socket is a configuration error (exit 2), named', async () => {
    const dir = await tempDir()
    const t = testIO()
    expect(await run(['peers', '--config', join(dir, 'nope.toml')], t.io)).toBe(2)
    expect(t.err()).toMatch(/^distswarm peers: .*nope\.toml/)
    const relative = join(dir, 'relative.toml')
    await writeFile(relative, 'control = "run/control.sock"\n')
    const r = testIO()
    expect(await run(['status', '--config', relative], r.io)).toBe(2)
    expect(r.err()).toContain(`control (${relative}:1)`)
  })

  it('usage errors read as one clean line naming the flag (exit 2)', async () => {
    const cases: Array<[string[], string]> = [
      [['peers', '--frob'], 'distswarm peers: unknown option --frob (peers takes --control, --config, --json, --help)\n'],
      [['status', '-x'], 'distswarm status: unknown option -x (status takes --control, --config, --json, --help)\n'],
      [['peers', '--control'], 'distswarm peers: --control needs a value: --control PATH\n'],
      [['peers', '--control', '--json'], 'distswarm peers: --control needs a value: --control PATH\n'],
      [['peers', '--json=yes'], 'distswarm peers: --json takes no value\n'],
      [['where'], 'distswarm where: expected 1 argument, got 0; usage: distswarm where NAME|DIGEST [--control PATH | --config FILE] [--json]\n'],
      [['completion', 'fish'], 'distswarm completion: no completion for "fish" (known: bash)\n']
    ]
    for (const [argv, message] of cases) {
      const t = testIO()
      expect(await run(argv, t.io), argv.join(' ')).toBe(2)
      expect(t.err()).toBe(message)
    }
  })
})

describe('portage-config', () => {
  /** The --control a printed FETCHCOMMAND carries, or null. */
  const bakedControl = (text: string): string | null => /^FETCHCOMMAND=".* portage-fetch --control (\S+) /m.exec(text)?.[1] ?? null

  it('bakes in the socket it reached, wherever the path came from: --control, DISTSWARM_CONTROL or the config file', async () => {
    const agent = await fakeAgent(answerStatus({ ...STATUS, cacheDir: '/srv/distswarm-cache' }))
    const dir = await tempDir()
    const config = join(dir, 'distswarm.toml')
    await writeFile(config, `control = "${agent.path}"\n`)
    const home = { XDG_RUNTIME_DIR: dir, XDG_CONFIG_HOME: dir }
    for (const [argv, env] of [[['--control', agent.path], {}], [[], { DISTSWARM_CONTROL: agent.path }], [['--config', config], {}], [[], { DISTSWARM_CONFIG: config }]] as const) {
      const t = testIO({ ...home, ...env })
      expect(await run(['portage-config', ...argv], t.io), t.err()).toBe(0)
      expect(bakedControl(t.out()), JSON.stringify([argv, env])).toBe(agent.path)
      expect(t.out()).toContain('PORTAGE_RO_DISTDIRS="/srv/distswarm-cache"')
    }
    // nothing asked for and no agent at the default: nothing baked in, and it says why
    const t = testIO(home)
    expect(await run(['portage-config'], t.io)).toBe(0)
    expect(bakedControl(t.out())).toBeNull()
    expect(t.out()).toMatch(/^# No agent answered on .*: start it/m)
  })
})

describe('replies', () => {
  it('a reply that is not JSON is ERR_BAD_REPLY, and fails the calls after it at once', async () => {
    const garbage = await fakeAgent(() => ({ raw: 'HTTP/1.1 400 Bad Request\n' }))
    const client = await ControlClient.connect(garbage.path)
    try {
      await expect(client.call('status', {})).rejects.toMatchObject({ code: 'ERR_BAD_REPLY' })
      await expect(client.call('peers', {})).rejects.toMatchObject({ code: 'ERR_BAD_REPLY' })
    } finally {
      client.close()
    }
    const t = testIO()
    expect(await run(['status', '--control', garbage.path], t.io)).toBe(1)
    expect(t.err()).toMatch(/^distswarm status: bad reply from the agent: .* not JSON\n$/)
  })

  it('JSON that is no reply (null, an array, an unknown id, an error without a code) is ERR_BAD_REPLY, not a crash', async () => {
    for (const raw of ['null\n', '[1]\n', '{"id":999,"result":{}}\n', '{"id":1,"error":"boom"}\n']) {
      const odd = await fakeAgent(() => ({ raw }))
      const client = await ControlClient.connect(odd.path)
      await expect(client.call('status', {}), raw).rejects.toMatchObject({ code: 'ERR_BAD_REPLY' })
      client.close()
    }
  })

  it('an agent not started yet answers ERR_AGENT_NOT_STARTED, exit 3 like an agent not there', async () => {
    const dir = await tempDir()
    const agent = new Agent(resolveConfig({ networkKey: KEY, dataPort: 49738, stateDir: join(dir, 'state'), cacheDir: join(dir, 'cache') }))
    let caught: unknown
    try {
      agent.status()
    } catch (err) {
      caught = err
    }
    expect(caught).toMatchObject({ code: 'ERR_AGENT_NOT_STARTED' })
    expect(exitCodeOf(caught)).toBe(3)
    // as it reaches the CLI through the socket
    const starting = await fakeAgent(() => ({ error: { code: 'ERR_AGENT_NOT_STARTED', message: 'the agent is not running yet' } }))
    expect(await run(['status', '--control', starting.path], testIO().io)).toBe(3)
  })
})

describe('what commands print', () => {
  it('status shows the addresses a wildcard-bound agent is reachable at, not 0.0.0.0', async () => {
    expect(reachableAt('0.0.0.0:40001', ['10.77.0.10', '192.168.1.5'])).toBe('10.77.0.10:40001 192.168.1.5:40001 (all interfaces)')
    expect(reachableAt('[::]:40001', ['fd00::1'])).toBe('[fd00::1]:40001 (all interfaces)')
    expect(reachableAt('0.0.0.0:40001', [])).toBe('port 40001 on all interfaces')
    expect(reachableAt('10.77.0.10:40001', ['192.168.1.5'])).toBe('10.77.0.10:40001')
    // the agent's own list, when its status has one
    const agent = await fakeAgent(answerStatus({ ...STATUS, addresses: ['10.77.0.11'] }))
    const t = testIO()
    expect(await run(['status', '--control', agent.path], t.io)).toBe(0)
    expect(t.out()).toMatch(/^dht +10\.77\.0\.11:40001 \(all interfaces\)$/m)
    expect(t.out()).not.toContain('0.0.0.0')
  })

  it('status lists the misconfigurations the agent saw, with their cause', async () => {
    const problem = { at: new Date().toISOString(), event: 'peer.wrong-network-key', address: '10.77.0.12:49738', cause: 'it does not know our network key: the two boxes were given different network keys', count: 3 }
    const agent = await fakeAgent(answerStatus({ ...STATUS, problems: [problem] }))
    const t = testIO()
    expect(await run(['status', '--control', agent.path], t.io)).toBe(0)
    expect(t.out()).toMatch(/^problems$/m)
    expect(t.out()).toMatch(/10\.77\.0\.12:49738 +3 +it does not know our network key/)
    const quiet = await fakeAgent(answerStatus())
    const q = testIO()
    expect(await run(['status', '--control', quiet.path], q.io)).toBe(0)
    expect(q.out()).not.toMatch(/^problems$/m)
  })

  it('peers lists them too, under the peers (or "no peers"); --json is the list of peers alone, as before', async () => {
    const problem = { at: new Date().toISOString(), event: 'static-peer.unreachable', address: '10.77.0.10:49739', cause: 'connection refused: nothing listens there (a wrong --peer port, or its agent is not running)', count: 2 }
    const agent = await fakeAgent(answerStatus({ ...STATUS, problems: [problem] }))
    const t = testIO()
    expect(await run(['peers', '--control', agent.path], t.io)).toBe(0)
    expect(t.out()).toMatch(/^no peers\n\nproblems$/m)
    expect(t.out()).toMatch(/10\.77\.0\.10:49739 +2 +connection refused/)
    const j = testIO()
    expect(await run(['peers', '--control', agent.path, '--json'], j.io)).toBe(0)
    expect(JSON.parse(j.out())).toEqual([])
    // an older agent's status has no problems
    const { problems: _, ...old } = STATUS
    const o = testIO()
    expect(await run(['peers', '--control', (await fakeAgent(answerStatus(old))).path], o.io)).toBe(0)
    expect(o.out()).toBe('no peers\n')
  })

  it('a resumed fetch says so, and its rate counts the bytes moved this time only', async () => {
    const MiB = 1024 * 1024
    expect(movedText({ size: 12 * MiB, durationMs: 1000, resumedFrom: 0 })).toBe('in 1.0 s (12.0 MiB/s)')
    expect(movedText({ size: 12 * MiB, durationMs: 1000, resumedFrom: 4 * MiB })).toBe('resumed at 4.0 MiB, 8.0 MiB more in 1.0 s (8.0 MiB/s)')
    const result: FetchResult = { name: 'big-1.tar.xz', size: 12 * MiB, blake2b: 'ab'.repeat(64), sha512: '', path: '/c/big-1.tar.xz', source: 'swarm', durationMs: 1000, resumedFrom: 4 * MiB }
    const agent = await fakeAgent(() => ({ result }))
    const t = testIO()
    expect(await run(['fetch', 'big-1.tar.xz', '--control', agent.path], t.io)).toBe(0)
    expect(t.out()).toBe('big-1.tar.xz  12.0 MiB  fetched resumed at 4.0 MiB, 8.0 MiB more in 1.0 s (8.0 MiB/s)  /c/big-1.tar.xz\n')
  })

  it('portage-fetch: a miss names the file, not the digest it was asked by', async () => {
    const digest = '12'.repeat(64)
    const agent = await fakeAgent((req) => req.method === 'fetch'
      ? { error: { code: 'ERR_NOT_FOUND', message: `no connected peer has ${digest}` } }
      : { result: { fetchedUpstream: 0 } })
    const distdir = await tempDir()
    const t = testIO()
    const code = await run(['portage-fetch', '--control', agent.path, '--fallback', 'true', 'http://127.0.0.1:1/x', distdir, 'miss-1.tar.gz.__download__', `blake2b:${digest}`], t.io)
    expect(code).toBe(0)
    expect(t.err()).toBe('>>> distswarm: miss-1.tar.gz: not from the swarm (no peer has it); normal download\n')
    expect(agent.requests[0]).toMatchObject({ method: 'fetch', params: { query: digest, name: 'miss-1.tar.gz' } })
  })
})

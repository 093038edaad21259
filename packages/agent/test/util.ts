/** Helpers of the agent's tests: temp dirs removed after the test, a config for an agent on loopback, polling. */
import { onTestFinished } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, type AgentConfig } from '../src/index.js'

export async function tempDir (prefix = 'distswarm-agent-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** An agent in `dir` on loopback that meets nobody (no DHT, a data port others may dial) unless given static peers; no gateway, no metrics, no PKGDIR. */
export function agentConfig (dir: string, more: Partial<AgentConfig> = {}): AgentConfig {
  return {
    distdirs: [],
    cacheDir: join(dir, 'cache'),
    cacheMaxBytes: null,
    stateDir: join(dir, 'state'),
    bootstrap: [],
    networkKey: Buffer.alloc(32, 7),
    control: join(dir, 'control.sock'),
    name: 'box',
    host: '127.0.0.1',
    port: 0,
    repos: [],
    dataPort: 0,
    staticPeers: [],
    seed: false,
    logLevel: 'info',
    rediscoverMs: undefined,
    deadPeerMs: undefined,
    metrics: null,
    http: null,
    httpAllow: ['127.0.0.1'],
    lanDiscovery: false,
    pkgdirs: [],
    chost: null,
    binpkgGroup: null,
    binpkgTrust: [],
    ...more
  }
}

/** Polls `fn` every 50 ms until it returns something other than undefined or false; throws after `ms`. */
export async function until<T> (what: string, fn: () => T | undefined | false, ms = 30_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** An agent started with `cfg`, stopped when the test ends. */
export async function startAgent (cfg: AgentConfig): Promise<Agent> {
  const agent = new Agent(cfg)
  onTestFinished(() => agent.stop())
  await agent.start()
  return agent
}

/**
 * The Fetcher's own contract, over a real store and a swarm that has not
 * joined any network: options refused at construction, fetches taken only
 * between start() and stop(). Downloads, repairs and bans between real
 * agents: test/e2e (lying-peer, many-sources, bans, metrics).
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Store } from '@distswarm/store'
import { createKeyPair, DistSwarm } from '@distswarm/swarm'
import { Fetcher, type FetchSwarm } from '../src/index.js'

async function parts (): Promise<{ store: Store, swarm: FetchSwarm }> {
  const dir = await mkdtemp(join(tmpdir(), 'distswarm-fetcher-'))
  const store = new Store({ cacheDir: join(dir, 'cache'), stateDir: join(dir, 'state') })
  const swarm = new DistSwarm({ networkKey: randomBytes(32), keyPair: createKeyPair(), bootstrap: [], dataPort: null, source: { entries: () => store.entries(), get: (d) => store.get(d) } })
  onTestFinished(async () => {
    await swarm.stop()
    await store.stop()
    await rm(dir, { recursive: true, force: true })
  })
  return { store, swarm }
}

const TARGET = { name: 'nobody-has-1.0.tar.gz', size: 5, blake2b: 'ab'.repeat(64), sha512: '' }
const want = () => ({ name: TARGET.name, sha512: undefined, started: Date.now() })

describe('Fetcher', () => {
  it('takes fetches only between start() and stop(), each idempotent', async () => {
    const fetcher = new Fetcher(await parts())
    await expect(fetcher.fetch(TARGET, want())).rejects.toMatchObject({ code: 'ERR_AGENT_NOT_STARTED' })
    fetcher.start()
    fetcher.start()
    // Started: asked for, the swarm has nobody who holds it.
    await expect(fetcher.fetch(TARGET, want())).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
    expect(fetcher.stats()).toEqual({ inFlight: 0, completed: 0, failed: 0, bytesFetched: 0 })
    fetcher.stop()
    fetcher.stop()
    await expect(fetcher.fetch(TARGET, want())).rejects.toMatchObject({ code: 'ERR_AGENT_NOT_STARTED' })
    fetcher.start()
    await expect(fetcher.fetch(TARGET, want())).rejects.toMatchObject({ code: 'ERR_AGENT_NOT_STARTED' })
  })

  it('refuses options out of range at construction, naming them', async () => {
    const p = await parts()
    for (const [option, init] of [['maxRounds', { maxRounds: 0 }], ['maxRounds', { maxRounds: 2.5 }], ['maxFaults', { penalties: { maxFaults: 0 } }], ['banMs', { penalties: { banMs: 0 } }]] as const) {
      expect(() => new Fetcher({ ...p, ...init })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION', message: expect.stringContaining(option) }))
    }
  })
})

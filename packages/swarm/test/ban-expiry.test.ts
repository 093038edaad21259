/**
 * A ban ends: hyperswarm marks a key our firewall refused as banned for the
 * life of the swarm (its own flag, never cleared), so without the swarm
 * clearing that flag a ten-minute ban was a ban until restart — the long
 * soak's box0 saw no peer for its last 45 minutes.
 */
import { expect, it } from 'vitest'
import { createKeyPair, generateNetworkKey } from '../src/index.js'
import { MemorySource, startSwarm, tempDir, testnet, until } from './helpers.js'

it('takes a banned peer back once its ban ends, from either side of the connection', { timeout: 120_000 }, async () => {
  const bootstrap = await testnet()
  const networkKey = generateNetworkKey()
  let banned = false
  // Quick rediscovery on both sides: a refused peer keeps coming back to knock.
  const a = await startSwarm(bootstrap, { networkKey, source: new MemorySource(await tempDir()), name: 'a', rediscoverMs: 200, isBanned: () => banned })
  const bKeys = createKeyPair()
  const b = await startSwarm(bootstrap, { networkKey, keyPair: bKeys, source: new MemorySource(await tempDir()), name: 'b', rediscoverMs: 200 })
  await until(() => a.readyPeers().length === 1 && b.readyPeers().length === 1, 20_000, 'a and b to meet')

  banned = true
  a.disconnect(bKeys.publicKey.toString('hex'), new Error('banned'))
  await until(() => a.readyPeers().length === 0 && b.readyPeers().length === 0, 10_000, 'the ban to part them')
  // b's rediscovery finds a again and dials: a's firewall refuses it (and hyperswarm then marks b banned at a).
  await new Promise((resolve) => setTimeout(resolve, 2000))
  expect(a.readyPeers()).toEqual([])

  banned = false
  await until(() => a.readyPeers().length === 1 && b.readyPeers().length === 1, 30_000, 'a and b to meet again after the ban')
  expect(a.readyPeers().map((p) => p.name)).toEqual(['b'])
})

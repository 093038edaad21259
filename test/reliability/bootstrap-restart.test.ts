import { expect, it } from 'vitest'
import type { PeerInfo } from '@distswarm/agent'
import { cliJson, localNet, waitFor, type AgentProc } from '../harness.js'

const peerNames = async (a: AgentProc): Promise<string[]> =>
  (await cliJson<PeerInfo[]>(['peers', '--control', a.control])).map((p) => p.name).sort()

it('agents keep each other across a bootstrap node restart, and a new agent finds them', async () => {
  const net = await localNet()
  // Their next scheduled look for peers is 5 min away, as for agents up for a while.
  const settled = ['--rediscover-ms', '300000']
  // One after the other: b's first lookup then finds a's announcement. (Started at the same
  // moment, two agents can miss each other until a rediscovery, here 5 min away.)
  const a = await net.startAgent({ name: 'a', args: settled })
  const b = await net.startAgent({ name: 'b', args: settled })
  await waitFor(async () => (await peerNames(a)).join() === 'b', 30_000, 'a and b to meet')

  // kill -9, then the same address again: a DHT that starts empty, none of the old announcements
  const address = net.bootstrap!
  net.bootstrapProc!.child.kill('SIGKILL')
  await net.bootstrapProc!.stop()
  expect(await net.startBootstrap(Number(address.split(':')[1]))).toBe(address)
  expect(await peerNames(a)).toEqual(['b']) // the connection between them never needed the bootstrap node

  const c = await net.startAgent({ name: 'c' })
  await waitFor(async () => (await peerNames(c)).join() === 'a,b', 60_000, 'c to find a and b', 500)
  await waitFor(async () => (await peerNames(a)).join() === 'b,c' && (await peerNames(b)).join() === 'a,c', 10_000, 'a and b to see c')
})

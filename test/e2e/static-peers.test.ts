import { expect, it, onTestFinished } from 'vitest'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { FetchResult, PeerInfo, StatusResult } from '@distswarm/agent'
import { LocalNet } from '@distswarm/localnet'
import { BIN, cliJson, waitFor } from '../harness.js'
import { distfile } from '../gentoo.js'

async function freeTcpPort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

it('two agents with no bootstrap node meet by --peer alone and fetch over TCP', async () => {
  const net = await LocalNet.create({ bin: BIN }) // no bootstrap node started
  onTestFinished(() => net.close())
  const f = distfile('static-2.0.tar.xz')
  await writeFile(join((await net.dirs('buildhost')).distdir, f.name), f.data)
  const port = await freeTcpPort()
  const buildhost = await net.startAgent({ name: 'buildhost', bootstrap: false, args: ['--data-port', String(port), '--host', '127.0.0.1'] })
  const laptop = await net.startAgent({ name: 'laptop', bootstrap: false, args: ['--peer', `127.0.0.1:${port}`] })

  await waitFor(async () => (await laptop.status()).peers === 1, 15_000, 'laptop to reach the build host')
  const status = await cliJson<StatusResult>(['status', '--control', buildhost.control])
  expect(status.dhtAddress).toBeNull() // no DHT at all
  const [p] = await cliJson<PeerInfo[]>(['peers', '--control', laptop.control])
  expect(p).toMatchObject({ name: 'buildhost', path: 'tcp', address: `127.0.0.1:${port}` })
  // laptop dialled: the build host sees an ephemeral port, and shows where laptop's agent listens instead
  const laptopPort = (await laptop.status()).dataPort
  const [back] = await cliJson<PeerInfo[]>(['peers', '--control', buildhost.control])
  expect(back).toMatchObject({ name: 'laptop', address: `127.0.0.1:${laptopPort}` })
  await waitFor(async () => (await cliJson<PeerInfo[]>(['peers', '--control', laptop.control]))[0]?.files === 1, 10_000, 'inventory')
  const [r] = await cliJson<Array<{ ok: boolean, result: FetchResult }>>(['fetch', f.name, '--control', laptop.control])
  expect((await readFile(r!.result.path)).equals(f.data)).toBe(true)
})

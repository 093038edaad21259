import { describe, expect, it, onTestFinished } from 'vitest'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { generateNetworkKey, type HostPort, type LocalFile } from '../src/index.js'
import { BufferSink, MemorySource, random, startSwarm, tempDir, testnet, until } from './helpers.js'

const MiB = 1024 * 1024
const HOLDER = fileURLToPath(new URL('./fixtures/holder.mjs', import.meta.url))
const digest = (b: Buffer): string => createHash('blake2b512').update(b).digest('hex')

/** A holder of `file` in a process of its own (see fixtures/holder.mjs), for the test to kill -9. */
async function doomedHolder (bootstrap: HostPort[], networkKey: Buffer, file: LocalFile, dataPort: number | null) {
  const arg = JSON.stringify({
    networkKey: networkKey.toString('hex'), bootstrap, dataPort,
    file: { name: file.name, size: file.size, path: file.path, blake2b: file.blake2b.toString('hex'), sha512: file.sha512.toString('hex') }
  })
  const child = spawn(process.execPath, [HOLDER, arg], { stdio: ['pipe', 'pipe', 'inherit'] })
  onTestFinished(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const { publicKey, dataPort: port } = await new Promise<{ publicKey: string, dataPort: number | null }>((resolve, reject) => {
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!))
    })
    child.once('exit', (code) => reject(new Error(`holder exited ${code}`)))
  })
  return { publicKey, port, kill: () => child.kill('SIGKILL'), freeze: () => child.kill('SIGSTOP') }
}

/** A sink that takes a while over each write, so the transfer is surely still going when the holder dies. */
class SlowSink extends BufferSink {
  override async write (chunks: readonly Uint8Array[], offset: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 20))
    await super.write(chunks, offset)
  }
}

async function setup (holders: number, dataPort: number | null) {
  const bootstrap = await testnet()
  const networkKey = generateNetworkKey()
  const data = random(32 * MiB)
  const source = new MemorySource(await tempDir())
  const file = await source.add('doomed-1.0.tar.xz', data)
  const doomed = await doomedHolder(bootstrap, networkKey, file, dataPort)
  if (holders === 2) await startSwarm(bootstrap, { networkKey, source, name: 'survivor', dataPort })
  const receiver = await startSwarm(bootstrap, {
    networkKey, source: new MemorySource(await tempDir()), name: 'r', rangeSize: MiB, dataPort,
    // Long, so that what ends the transfer is the dead peer's detection, never a request timing out.
    limits: { requestTimeoutMs: 10 * 60_000 }
  })
  await until(() => receiver.find({ name: file.name })[0]?.holders.length === holders, 20_000, 'the holders')
  if (dataPort !== null) await until(() => receiver.pathTo(doomed.publicKey) === 'tcp', 10_000, 'the data link to the doomed holder')
  const sink = new SlowSink()
  sink.onWrite = () => { if (sink.written >= 2 * MiB) doomed.kill() }
  return { data, receiver, entry: receiver.find({ name: file.name })[0]!.entry, sink, doomed }
}

describe('a holder killed mid-transfer', () => {
  it.each([['fast path', 0], ['hyperswarm only', null]] as const)('alone: the transfer fails with the dead peer named as the cause, before any stream timeout (%s)', async (_, dataPort) => {
    const { receiver, entry, sink, doomed } = await setup(1, dataPort)
    const err = await receiver.download(entry, sink).then(() => null, (e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_ALL_SOURCES_FAILED', cause: { code: 'ERR_PEER_DEAD' } })
    expect(sink.written).toBeGreaterThanOrEqual(2 * MiB)
    expect(sink.written).toBeLessThan(entry.size)
    // the dead member is dropped, not left looking healthy
    await until(() => receiver.readyPeers().every((p) => p.publicKeyHex !== doomed.publicKey), 5000, 'the dead peer to be dropped')
  })

  it.each([['fast path', 0], ['hyperswarm only', null]] as const)('with a second holder: the transfer completes from it (%s)', async (_, dataPort) => {
    const { data, receiver, entry, sink } = await setup(2, dataPort)
    await receiver.download(entry, sink)
    expect(digest(sink.bytes)).toBe(digest(data))
  })

  it('frozen (SIGSTOP: no reset, the TCP connection stays up) behind a static peer, no DHT: pings find it dead, the transfer fails naming it, and it is dropped', async () => {
    const networkKey = generateNetworkKey()
    const data = random(32 * MiB)
    const file = await new MemorySource(await tempDir()).add('frozen-1.0.tar.xz', data)
    const frozen = await doomedHolder([], networkKey, file, 0)
    const receiver = await startSwarm([], {
      networkKey, source: new MemorySource(await tempDir()), name: 'r', rangeSize: MiB, staticPeers: [{ host: '127.0.0.1', port: frozen.port! }],
      // Long, so that what ends the transfer is the dead peer's detection, never a request timing out.
      limits: { requestTimeoutMs: 10 * 60_000 }
    })
    await until(() => receiver.find({ name: file.name })[0]?.holders.length === 1, 20_000, 'the holder')
    expect(receiver.pathTo(frozen.publicKey)).toBe('tcp')
    const sink = new SlowSink()
    sink.onWrite = () => { if (sink.written >= 2 * MiB) frozen.freeze() }
    const err = await receiver.download(receiver.find({ name: file.name })[0]!.entry, sink).then(() => null, (e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_ALL_SOURCES_FAILED', cause: { code: 'ERR_PEER_DEAD' } })
    expect(sink.written).toBeLessThan(file.size)
    await until(() => receiver.readyPeers().length === 0, 5000, 'the frozen peer to be dropped')
  })
})

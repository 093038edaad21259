import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import Hyperswarm from 'hyperswarm'
import HyperDHT from 'hyperdht'
// @ts-expect-error: hyperdht ships no types
import createTestnet from 'hyperdht/testnet.js'
import { decodeMessage, encodeMessage, FrameDecoder, PROTOCOL_VERSION, toHex, type LogFields, type Logger, type Message } from '@distswarm/protocol'
import { DistSwarm, createKeyPair, generateNetworkKey, membershipProof, type LocalFile, type LocalSource, type SecretStream, type SwarmInit, type HostPort, type Sink } from '../src/index.js'

/** A local DHT on 127.0.0.1, torn down when the test ends. */
export async function testnet (): Promise<HostPort[]> {
  const net = await createTestnet(3, { host: '127.0.0.1' })
  onTestFinished(() => net.destroy())
  return net.bootstrap as HostPort[]
}

export async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'distswarm-swarm-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export class MemorySource implements LocalSource {
  readonly files = new Map<string, LocalFile>()
  constructor (readonly dir: string) {}

  async add (name: string, data: Buffer): Promise<LocalFile> {
    const path = join(this.dir, name)
    await writeFile(path, data)
    const file = {
      name, path, size: data.length,
      blake2b: createHash('blake2b512').update(data).digest(),
      sha512: createHash('sha512').update(data).digest()
    }
    this.files.set(toHex(file.blake2b), file)
    return file
  }

  entries (): Iterable<LocalFile> { return this.files.values() }
  get (d: Uint8Array): LocalFile | undefined { return this.files.get(toHex(d)) }
}

export async function startSwarm (bootstrap: HostPort[], init: Partial<SwarmInit> & { source: LocalSource }): Promise<DistSwarm> {
  const swarm = new DistSwarm({
    networkKey: init.networkKey ?? generateNetworkKey(),
    keyPair: createKeyPair(),
    bootstrap,
    host: '127.0.0.1',
    ...init
  })
  onTestFinished(() => swarm.stop())
  await swarm.start()
  return swarm
}

/** Resolves when `check` returns true; fails after `ms`. */
export async function until (check: () => boolean, ms = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Keeps what it is given in memory; `onWrite` runs after each write (a test's hook to act mid-transfer). */
export class BufferSink implements Sink {
  chunks: Buffer[] = []
  written = 0
  onWrite: (() => void) | null = null
  async write (chunks: readonly Uint8Array[], offset: number): Promise<void> {
    if (offset !== this.written) throw new Error(`BufferSink only appends: write at ${offset} after ${this.written}`)
    for (const c of chunks) {
      this.chunks.push(Buffer.from(c))
      this.written += c.byteLength
    }
    this.onWrite?.()
  }

  get bytes (): Buffer {
    return Buffer.concat(this.chunks)
  }
}

export const random = (n: number): Buffer => randomBytes(n)

export interface LogLine { level: 'error' | 'warn' | 'info' | 'debug', event: string, fields: LogFields }

/** A Logger that keeps every line (of its children too), for a test to look at. */
export function captureLogger (lines: LogLine[] = []): Logger & { lines: LogLine[] } {
  const at = (level: LogLine['level']) => (event: string, fields: LogFields = {}): void => { lines.push({ level, event, fields }) }
  return { lines, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), child: () => captureLogger(lines) }
}

/** A TCP port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/**
 * A hand-driven peer: a real hyperswarm secret stream on the network's topic,
 * speaking whatever bytes a test makes it speak.
 */
export async function rawPeer (bootstrap: Array<{ host: string, port: number }>, topic: Buffer) {
  const dht = new HyperDHT({ bootstrap, host: '127.0.0.1' })
  const swarm = new Hyperswarm({ dht })
  onTestFinished(async () => { await swarm.destroy(); await dht.destroy() })
  const received: Message[] = []
  const conn = await new Promise<SecretStream>((resolve) => {
    swarm.on('connection', (c: SecretStream) => resolve(c))
    swarm.join(topic, { server: false, client: true })
  })
  let closed = false
  const decoder = new FrameDecoder()
  conn.on('data', (chunk) => { for (const f of decoder.push(chunk)) received.push(decodeMessage(f)) })
  conn.on('close', () => { closed = true })
  conn.on('error', () => {})
  return { conn, received, isClosed: () => closed }
}

/** A raw peer's hello, proving `networkKey` (a wrong one fails the proof). */
export function rawHello (conn: SecretStream, networkKey: Buffer): void {
  conn.write(encodeMessage({
    type: 'hello', version: PROTOCOL_VERSION, name: 'raw', dataPort: 0, dataOnly: false, seeder: false, proof: membershipProof(networkKey, conn.handshakeHash, conn.publicKey)
  }))
}

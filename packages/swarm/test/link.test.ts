import { randomBytes } from 'node:crypto'
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { MAX_FRAME_SIZE } from '@distswarm/protocol'
import { createKeyPair } from '../src/index.js'
import { DataLink, MAX_RECORD, RecordReader, disown, recycle } from '../src/link.js'
import { DataPath } from '../src/datapath.js'
import { MessageSocket } from '../src/reassembly.js'
import type { SecretStream } from '../src/types.js'

async function listen (onSocket: (s: Socket) => void): Promise<{ server: Server, port: number }> {
  const server = createServer(onSocket)
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  return { server, port: (server.address() as AddressInfo).port }
}

/**
 * Two data links over a loopback TCP connection, both opened; the tests
 * send to b. With `inPlace`, b dialled, and reads its records in place
 * (RecordReader: only a dialled socket can); else a dialled.
 */
async function linkedPair (inPlace = false): Promise<{ a: DataLink, b: DataLink, aKeys: ReturnType<typeof createKeyPair>, bKeys: ReturnType<typeof createKeyPair> }> {
  const aKeys = createKeyPair()
  const bKeys = createKeyPair()
  let acceptor!: DataLink
  let dialler!: DataLink
  await new Promise<void>((resolve) => {
    void listen((s) => { acceptor = new DataLink(s, false, inPlace ? aKeys : bKeys); resolve() }).then(({ port }) => {
      const reader = inPlace ? new RecordReader() : undefined
      dialler = new DataLink(connect({ port, host: '127.0.0.1', onread: reader?.onread }), true, inPlace ? bKeys : aKeys, reader)
    })
  })
  for (const link of [acceptor, dialler]) {
    link.on('error', () => {})
    onTestFinished(() => link.destroy())
    expect(await link.opened).toBe(true)
  }
  return inPlace ? { a: acceptor, b: dialler, aKeys, bKeys } : { a: dialler, b: acceptor, aKeys, bKeys }
}

/** Resolves when the link closes, with the error it ended on. */
function closed (link: DataLink): Promise<unknown> {
  let error: unknown = null
  link.on('error', (err) => { error = err })
  return new Promise((resolve) => link.once('close', () => resolve(error)))
}

function collect (link: DataLink): Buffer[] {
  const got: Buffer[] = []
  link.on('data', (d: Buffer) => got.push(Buffer.from(d)))
  return got
}

describe.each([['chunks copied into records', false], ['records read in place', true]])('data link, %s', (_, inPlace) => {
  it('proves both keys, shares the handshake hash, and carries messages both ways (large ones sealed in place)', async () => {
    const { a, b, aKeys, bKeys } = await linkedPair(inPlace)
    expect(a.remotePublicKey.equals(bKeys.publicKey)).toBe(true)
    expect(b.remotePublicKey.equals(aKeys.publicKey)).toBe(true)
    expect(a.handshakeHash.equals(b.handshakeHash)).toBe(true)
    const atB = collect(b)
    const atA = collect(a)
    const big = a.alloc(1024 * 1024)
    for (let i = 0; i < big.length; i++) big[i] = i % 251
    const expected = Buffer.from(big)
    a.write(Buffer.from('hello'))
    a.write(big)
    a.write(Buffer.alloc(3 * 1024 * 1024 / 2, 7)) // larger than a pooled buffer: sealed in one of its own
    b.write(Buffer.from('back'))
    await until(() => atB.length === 3 && atA.length === 1)
    expect(atB[0]!.toString()).toBe('hello')
    expect(atB[1]!.equals(expected)).toBe(true)
    expect(atB[2]!.equals(Buffer.alloc(3 * 1024 * 1024 / 2, 7))).toBe(true)
    expect(atA[0]!.toString()).toBe('back')
  })

  it('carries records of any size in order, empty ones too, however the reads split them', async () => {
    const { a, b } = await linkedPair(inPlace)
    const got = collect(b)
    const sizes = [0, 1, 3, 4, 5, 17, 4096, 65_535, 65_536, 65_537, 300_000, 1024 * 1024, 2, 0, 999_999]
    const sent = sizes.map((n, i) => Buffer.alloc(n, i + 1))
    for (const m of sent) a.write(m)
    const nonEmpty = sent.filter((m) => m.length > 0)
    await until(() => got.length === nonEmpty.length)
    expect(got.map((m) => m.length)).toEqual(nonEmpty.map((m) => m.length))
    for (const [i, m] of got.entries()) expect(m.equals(nonEmpty[i]!)).toBe(true)
  })

  it('reuses a received buffer once recycled, never one disowned', async () => {
    const { a, b } = await linkedPair(inPlace)
    const got: Buffer[] = []
    b.on('data', (d: Buffer) => got.push(d))
    a.write(Buffer.alloc(100_000, 1))
    await until(() => got.length === 1)
    recycle(got[0]!)
    a.write(Buffer.alloc(100_000, 2))
    await until(() => got.length === 2)
    expect(got[1]!.buffer).toBe(got[0]!.buffer)
    expect(got[1]!.equals(Buffer.alloc(100_000, 2))).toBe(true)
    disown(got[1]!)
    recycle(got[1]!)
    a.write(Buffer.alloc(100_000, 3))
    await until(() => got.length === 3)
    expect(got[2]!.buffer).not.toBe(got[1]!.buffer)
  })

  it('ends the connection at a record that fails its tag', async () => {
    const { a, b } = await linkedPair(inPlace)
    const got = collect(b)
    const forged = Buffer.alloc(4 + 10 + 16, 0xab)
    forged.writeUInt32LE(10, 0)
    a.rawStream.write(forged)
    expect(await closed(b)).toMatchObject({ code: 'ERR_PROTOCOL_VIOLATION' })
    expect(got).toEqual([])
  })

  it('ends the connection at a record header above the bound, before buffering its body', async () => {
    const { a, b } = await linkedPair(inPlace)
    const header = Buffer.alloc(4)
    header.writeUInt32LE(MAX_RECORD + 1, 0)
    a.rawStream.write(header)
    expect(await closed(b)).toMatchObject({ code: 'ERR_PROTOCOL_VIOLATION' })
  })
})

describe('data link', () => {

  it('a responder closes on another data link version', async () => {
    const keys = createKeyPair()
    let link!: DataLink
    const { port } = await listen((s) => { link = new DataLink(s, false, keys); link.on('error', () => {}) })
    const raw = connect(port, '127.0.0.1')
    raw.on('error', () => {})
    raw.write(Buffer.from([5, 0, 0, 0x44, 0x53, 0x57, 0x4c, 99]))
    await new Promise((resolve) => raw.once('close', resolve))
    expect(await link.opened).toBe(false)
  })
})

describe('data path and agents from before the data link', () => {
  function dataPath (onStream: (s: SecretStream) => void): DataPath {
    const path = new DataPath({ keyPair: createKeyPair(), onStream: (s) => onStream(s), isMember: () => false })
    onTestFinished(() => path.close())
    return path
  }

  /** An older agent dialling a data path: its secret stream, and the stream the path took. */
  async function olderAgentDialling (): Promise<{ old: NoiseSecretStream, accepted: SecretStream }> {
    const streams: SecretStream[] = []
    const path = dataPath((s) => streams.push(s))
    const port = await path.listen('127.0.0.1', 0)
    const old = new NoiseSecretStream(true, connect(port, '127.0.0.1'), { keyPair: createKeyPair() })
    old.on('error', () => {})
    onTestFinished(() => { old.destroy() })
    expect(await old.opened).toBe(true)
    await until(() => streams.length === 1)
    return { old, accepted: streams[0]! }
  }

  it('takes a secret-stream connection (an older agent dialling) on the same port', async () => {
    const { accepted } = await olderAgentDialling()
    expect(accepted).not.toBeInstanceOf(DataLink)
  })

  it('carries messages of any size both ways on it, in order, the accepted side reading through MessageSocket (reused buffers)', async () => {
    const { old, accepted } = await olderAgentDialling()
    expect((accepted.rawStream as unknown)).toBeInstanceOf(MessageSocket)
    const got: Buffer[] = []
    accepted.on('data', (chunk) => got.push(Buffer.from(chunk)))
    const sent = [1, 100, 65_536, 300_000, 1_000_000, MAX_FRAME_SIZE + 1000, 7].map((n) => randomBytes(n))
    for (const m of sent) old.write(m)
    await until(() => got.length === sent.length, 15_000)
    expect(got.map((b) => b.byteLength)).toEqual(sent.map((b) => b.byteLength))
    expect(got.every((b, i) => b.equals(sent[i]!))).toBe(true)
    const back: Buffer[] = []
    old.on('data', (chunk: Buffer) => back.push(chunk))
    accepted.write(sent[4]!)
    await until(() => Buffer.concat(back).byteLength === sent[4]!.byteLength, 15_000)
    expect(Buffer.concat(back).equals(sent[4]!)).toBe(true)
  })

  it('dials an older agent again with the secret stream after it closed on the data link', async () => {
    const oldKeys = createKeyPair()
    const opened: boolean[] = []
    const { port } = await listen((s) => {
      const old = new NoiseSecretStream(false, s, { keyPair: oldKeys })
      old.on('error', () => {})
      void old.opened.then((ok: boolean) => opened.push(ok))
    })
    const streams: SecretStream[] = []
    const path = dataPath((s) => streams.push(s))
    // The first dial ends at once (the older agent rejects the preamble); the caller dials again, on the secret stream.
    await path.dial({ host: '127.0.0.1', port }).catch(() => {})
    void path.dial({ host: '127.0.0.1', port }).catch(() => {})
    await until(() => streams.length === 1)
    expect(streams[0]).not.toBeInstanceOf(DataLink)
    expect(streams[0]!.remotePublicKey.equals(oldKeys.publicKey)).toBe(true)
    await until(() => opened.includes(true))
  })
})

async function until (check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

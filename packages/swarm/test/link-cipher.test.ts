// DataLink.write() when the cipher fails: the one path OpenSSL's addon can
// take only out of memory, so the cipher is mocked to fail on demand.
import { createServer, connect, type AddressInfo } from 'node:net'
import { expect, it, onTestFinished, vi } from 'vitest'
import { createKeyPair } from '../src/index.js'
import { DataLink } from '../src/link.js'

const failing = vi.hoisted(() => ({ on: false }))
vi.mock('../src/aead.js', async (original) => {
  const real = await original<typeof import('../src/aead.js')>()
  return { ...real, seal: (...args: Parameters<typeof real.seal>) => failing.on ? false : real.seal(...args) }
})

it('a record the cipher cannot seal is not sent: the link closes with ERR_CIPHER_FAILED', async () => {
  let acceptor!: DataLink
  const server = createServer((s) => { acceptor = new DataLink(s, false, createKeyPair()) })
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const dialler = new DataLink(connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' }), true, createKeyPair())
  onTestFinished(() => { dialler.destroy(); acceptor?.destroy() })
  expect(await dialler.opened).toBe(true)
  expect(await acceptor.opened).toBe(true)
  const got: Buffer[] = []
  acceptor.on('data', (d: Buffer) => got.push(Buffer.from(d)))
  acceptor.on('error', () => {})
  expect(dialler.write(Buffer.from('sealed'))).toBe(true)
  await vi.waitFor(() => expect(got.length).toBe(1))

  failing.on = true
  let error: unknown = null
  dialler.on('error', (err) => { error = err })
  const closed = Promise.all([dialler, acceptor].map((link) => new Promise((resolve) => link.once('close', resolve))))
  const sentBefore = dialler.rawStream.bytesWritten
  const readBefore = acceptor.rawStream.bytesRead
  expect(dialler.write(Buffer.from('never sent'))).toBe(false)
  await closed
  expect(error).toMatchObject({ code: 'ERR_CIPHER_FAILED' })
  // Not a byte of that record went out: the other side read nothing more before the connection closed.
  expect(dialler.rawStream.bytesWritten).toBe(sentBefore)
  expect(acceptor.rawStream.bytesRead).toBe(readBefore)
  expect(got.map(String)).toEqual(['sealed'])
})

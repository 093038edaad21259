import { describe, expect, it } from 'vitest'
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import { encodeMessage, PROTOCOL_VERSION } from '@distswarm/protocol'
import { generateNetworkKey, membershipProof, type SecretStream } from '../src/index.js'
import { Peer } from '../src/peer.js'
import { MemorySource, tempDir, until } from './helpers.js'

/** A stream whose writes back up and never drain: a peer that stops reading. */
class CloggedStream extends EventEmitter {
  readonly publicKey = randomBytes(32)
  readonly remotePublicKey = randomBytes(32)
  readonly handshakeHash = randomBytes(64)
  written = 0
  destroyed = false
  write (data: Uint8Array): boolean { this.written += data.byteLength; return false }
  end (): void {}
  destroy (): void { this.destroyed = true }
}

describe('Peer uploads', () => {
  it('drop a peer that stops reading mid-upload once uploadStallMs passes', async () => {
    const networkKey = generateNetworkKey()
    const source = new MemorySource(await tempDir())
    const file = await source.add('big.tar', randomBytes(4 * 1024 * 1024))
    const stream = new CloggedStream()
    let closedWith: Error | null | undefined
    const peer = new Peer({
      stream: stream as unknown as SecretStream,
      networkKey,
      localName: 'victim',
      source,
      limits: { uploadStallMs: 300 },
      onReady: () => {},
      onInventory: () => {},
      onClose: (_, reason) => { closedWith = reason }
    })
    stream.emit('data', encodeMessage({
      type: 'hello', version: PROTOCOL_VERSION, name: 'sloth', dataPort: 0, proof: membershipProof(networkKey, stream.handshakeHash, stream.remotePublicKey)
    }))
    expect(peer.state).toBe('ready')
    stream.emit('data', encodeMessage({ type: 'request', id: 1, blake2b: file.blake2b, offset: 0, length: file.size }))
    await until(() => closedWith !== undefined, 5000, 'the peer to be dropped')
    expect(closedWith).toMatchObject({ code: 'ERR_TIMEOUT' })
    expect(stream.written).toBeLessThan(file.size) // it stopped sending at the first full buffer
  })
})

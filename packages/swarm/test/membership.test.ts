import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { generateNetworkKey, membershipProof, parseNetworkKey, topicOf, verifyMembershipProof } from '../src/index.js'

describe('membership', () => {
  const key = generateNetworkKey()
  const hh = randomBytes(64)
  const pk = randomBytes(32)

  it('derives a topic that is neither the key nor shared with another network', () => {
    expect(topicOf(key).equals(key)).toBe(false)
    expect(topicOf(key).equals(topicOf(generateNetworkKey()))).toBe(false)
    expect(topicOf(key).equals(topicOf(Buffer.from(key)))).toBe(true)
  })

  it('accepts a proof only for the same key, handshake and sender', () => {
    const proof = membershipProof(key, hh, pk)
    expect(verifyMembershipProof(key, hh, pk, proof)).toBe(true)
    expect(verifyMembershipProof(generateNetworkKey(), hh, pk, proof)).toBe(false)
    expect(verifyMembershipProof(key, randomBytes(64), pk, proof)).toBe(false) // replay on another connection
    expect(verifyMembershipProof(key, hh, randomBytes(32), proof)).toBe(false) // reflected back at its sender
    expect(verifyMembershipProof(key, hh, pk, proof.subarray(1))).toBe(false)
  })

  it('parses hex network keys and refuses others with ERR_INVALID_NETWORK_KEY', () => {
    expect(parseNetworkKey('AB'.repeat(32)).toString('hex')).toBe('ab'.repeat(32))
    expect(() => parseNetworkKey('ab'.repeat(31))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_NETWORK_KEY' }))
  })
})

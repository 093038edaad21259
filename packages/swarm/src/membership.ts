import b4a from 'b4a'
import sodium from 'sodium-universal'
import { PROOF_BYTES } from '@distswarm/protocol'
import { SwarmError } from './errors.js'

export const NETWORK_KEY_BYTES = 32

// Domain separation: the topic, the proof key and anything later derived from
// the network key can never be confused with one another.
const TOPIC_CONTEXT = b4a.from('distswarm/v1/topic')
const PROOF_CONTEXT = b4a.from('distswarm/v1/membership-key')

function keyedHash (key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const out = b4a.alloc(32)
  sodium.crypto_generichash(out, b4a.concat(parts), key)
  return out
}

/** Parses a 64-hex-character network key. */
export function parseNetworkKey (hex: string): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw SwarmError.INVALID_NETWORK_KEY(`expected ${NETWORK_KEY_BYTES * 2} hex characters`)
  return b4a.from(hex.toLowerCase(), 'hex')
}

export function generateNetworkKey (): Buffer {
  const key = b4a.alloc(NETWORK_KEY_BYTES)
  sodium.randombytes_buf(key)
  return key
}

/** The swarm topic of a network: a keyed hash, so the key itself never reaches the DHT. */
export function topicOf (networkKey: Uint8Array): Buffer {
  return keyedHash(networkKey, TOPIC_CONTEXT)
}

/**
 * Proof that the sender of a hello knows the network key, bound to this one
 * connection (its Noise handshake hash) and to the sender's own public key,
 * so it can be neither replayed on another connection nor reflected back.
 */
export function membershipProof (networkKey: Uint8Array, handshakeHash: Uint8Array, senderPublicKey: Uint8Array): Buffer {
  const proofKey = keyedHash(networkKey, PROOF_CONTEXT)
  const proof = keyedHash(proofKey, handshakeHash, senderPublicKey)
  return proof.subarray(0, PROOF_BYTES)
}

/** Constant-time check of a peer's proof. */
export function verifyMembershipProof (networkKey: Uint8Array, handshakeHash: Uint8Array, senderPublicKey: Uint8Array, proof: Uint8Array): boolean {
  if (proof.byteLength !== PROOF_BYTES) return false
  return sodium.sodium_memcmp(membershipProof(networkKey, handshakeHash, senderPublicKey), proof)
}

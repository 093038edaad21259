// The data link's record cipher: ChaCha20-Poly1305 (RFC 8439), sealed and
// opened in place. OpenSSL's, through the small addon src/aead.c, when it
// was built: on CPUs with AVX-512 it costs about a third of libsodium's
// (0.29 against 0.80 CPU-s per GiB, measured), and unlike node:crypto it
// writes into the record itself, so a transfer makes no garbage. Else
// libsodium's. Both put the same bytes on the wire.
import { createRequire } from 'node:module'
import sodium from 'sodium-native'

export const KEY_BYTES = 32
export const NONCE_BYTES = 12
export const TAG_BYTES = 16

interface Addon {
  seal: (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, body: Uint8Array, tag: Uint8Array) => boolean
  open: (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, body: Uint8Array, tag: Uint8Array) => boolean
}

function sodiumSeal (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, body: Uint8Array, tag: Uint8Array): void {
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(body, tag, body, aad, null, nonce, key)
}

/**
 * The addon, or why it is not used. From src/ or dist/, the built addon is
 * dist/aead.node. It must seal a record as libsodium does and open it again
 * before it is used: an OpenSSL without ChaCha20 (FIPS mode) loads but fails.
 */
function load (): Addon | string {
  let addon: Addon
  try {
    addon = createRequire(import.meta.url)('../dist/aead.node') as Addon
  } catch (err) {
    return (err as Error).message.split('\n')[0] ?? 'not loaded'
  }
  const key = Buffer.alloc(KEY_BYTES, 1)
  const nonce = Buffer.alloc(NONCE_BYTES, 2)
  const aad = Buffer.alloc(4, 3)
  const plain = Buffer.alloc(100, 4)
  const body = Buffer.from(plain)
  const tag = Buffer.alloc(TAG_BYTES)
  const theirs = Buffer.from(plain)
  const theirTag = Buffer.alloc(TAG_BYTES)
  sodiumSeal(key, nonce, aad, theirs, theirTag)
  try {
    if (!addon.seal(key, nonce, aad, body, tag) || !body.equals(theirs) || !tag.equals(theirTag)) return 'its self-test sealed other bytes than libsodium'
    if (!addon.open(key, nonce, aad, body, tag) || !body.equals(plain)) return 'its self-test could not open what it sealed'
  } catch (err) {
    return `its self-test failed: ${(err as Error).message}`
  }
  return addon
}

const loaded = load()
const addon = typeof loaded === 'string' ? null : loaded

/** Which implementation seals the records, and, for libsodium, why OpenSSL's is not used. */
export const recordCipher: { implementation: 'openssl' | 'libsodium', reason: string } = addon !== null
  ? { implementation: 'openssl', reason: '' }
  : { implementation: 'libsodium', reason: loaded as string }

/**
 * Encrypts `body` in place and writes its tag into `tag`; `aad` is
 * authenticated, not encrypted. False only when OpenSSL could not (it
 * allocates a context per record).
 */
export function seal (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, body: Uint8Array, tag: Uint8Array): boolean {
  if (addon !== null) return addon.seal(key, nonce, aad, body, tag)
  sodiumSeal(key, nonce, aad, body, tag)
  return true
}

/** Decrypts `body` in place; false when its tag does not match (its bytes are then not to be used). */
export function open (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, body: Uint8Array, tag: Uint8Array): boolean {
  if (addon !== null) return addon.open(key, nonce, aad, body, tag)
  try {
    sodium.crypto_aead_chacha20poly1305_ietf_decrypt_detached(body, null, body, tag, aad, nonce, key)
    return true
  } catch {
    return false
  }
}

// Declarations for what the data link (link.ts) uses of these modules; they ship none.
declare module 'sodium-native' {
  const sodium: {
    crypto_aead_chacha20poly1305_ietf_encrypt_detached (c: Uint8Array, mac: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number
    /** Throws when the tag does not verify. */
    crypto_aead_chacha20poly1305_ietf_decrypt_detached (m: Uint8Array, nsec: null, c: Uint8Array, mac: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): void
  }
  export = sodium
}

declare module 'noise-handshake' {
  class Noise {
    constructor (pattern: string, initiator: boolean, staticKeypair: { publicKey: Uint8Array, secretKey: Uint8Array }, opts?: { curve?: unknown })
    initialise (prologue: Uint8Array, remoteStatic?: Uint8Array): void
    send (payload?: Uint8Array): Uint8Array
    recv (buf: Uint8Array): Uint8Array
    complete: boolean
    tx: Uint8Array | null
    rx: Uint8Array | null
    hash: Uint8Array | null
    rs: Uint8Array | null
  }
  export = Noise
}

declare module 'noise-curve-ed' {
  const curve: unknown
  export = curve
}

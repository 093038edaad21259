/** Wire protocol version; a peer with another major is refused. */
export const PROTOCOL_VERSION = 1

/** Largest frame accepted, header excluded. Every message fits well below it. */
export const MAX_FRAME_SIZE = 2 * 1024 * 1024
/** Bytes of one Data message. */
export const MAX_DATA_CHUNK = 1024 * 1024
/** Bytes one Request may ask for. */
export const MAX_REQUEST_LENGTH = 64 * 1024 * 1024
/** Entries (added + removed) in one Inventory message: ~400 bytes each at most, so < 1 MiB. */
export const MAX_INVENTORY_BATCH = 2048
/** Largest file size accepted in an inventory (1 TiB; chromium's tarball is ~1.3 GB). */
export const MAX_FILE_SIZE = 2 ** 40
/** Bytes of a file name (Linux NAME_MAX). */
export const MAX_NAME_BYTES = 255
/** Bytes of an agent's display name. */
export const MAX_AGENT_NAME_BYTES = 64
/** Characters of an error reply's message. */
export const MAX_ERROR_MESSAGE = 1024

/** Pieces one HashRequest may cover, and the bounds of their size: a Hashes answer stays far below the frame limit. */
export const MAX_HASH_PIECES = 16384
export const MIN_PIECE_SIZE = 64 * 1024
export const MAX_PIECE_SIZE = MAX_REQUEST_LENGTH
/** Bytes of one piece hash: BLAKE2b-512, cut to 32 bytes. */
export const PIECE_HASH_BYTES = 32

export const BLAKE2B_BYTES = 64
export const SHA512_BYTES = 64
export const PROOF_BYTES = 32

/** Addresses in one PeerAddresses message (peer exchange). */
export const MAX_PEER_ADDRESSES = 64
/** Characters of an address's host: the longest IPv6 literal (an IPv4-mapped one) is 45. */
export const MAX_HOST_CHARS = 45
export const PUBLIC_KEY_BYTES = 32

/** Entries (added + removed) in one Builds message; a sender also keeps each message under MAX_BUILDS_MESSAGE_BYTES. */
export const MAX_BUILDS_BATCH = 1024
/** Bytes of one Builds message as a sender cuts them (estimated from its entries): half a frame. */
export const MAX_BUILDS_MESSAGE_BYTES = 1024 * 1024
/** Fields (stanza keys) of one build entry: Portage writes about 30. */
export const MAX_BUILD_FIELDS = 128
/** Bytes of one build entry's keys, values and group together. */
export const MAX_BUILD_BYTES = 64 * 1024
/** Bytes of a build entry's compatibility group. */
export const MAX_BUILD_GROUP_BYTES = 128
/** Bytes of an ed25519 signature. */
export const SIGNATURE_BYTES = 64

/** Piece indexes in one PieceMap delta (`added`). */
export const MAX_PIECE_MAP_ADDED = 1024

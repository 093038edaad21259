/**
 * Every error code a distswarm library or the CLI can throw, in one table.
 * A code is stable: tests, scripts and the CLI's exit codes branch on it; the
 * message beside it is for people and may change. A code is never built
 * from a string at run time: add it here, and the compiler holds every
 * `throw` to this table.
 */
export const CODES = {
  // protocol: frames and messages
  ERR_FRAME_TOO_LARGE: 'a frame is larger than the protocol allows',
  ERR_DECODE: 'a message could not be decoded',
  ERR_BAD_MESSAGE: 'a message breaks a bound or rule of the protocol',
  ERR_UNKNOWN_TYPE: 'a message of a type this version does not know',
  ERR_INVALID_NAME: 'a file name that is not a plain basename',
  ERR_INVALID_DIGEST: 'a digest that is not 128 hex digits',
  // swarm: peers and transfers
  ERR_INVALID_NETWORK_KEY: 'the network key is not 32 bytes (64 hex digits)',
  ERR_AUTH_FAILED: 'a peer could not prove the network key',
  ERR_TIMEOUT: 'a peer did not answer in time',
  ERR_PEER_CLOSED: 'the connection to a peer closed',
  ERR_PEER_DEAD: 'a peer went silent (during a transfer: no packet, not even an acknowledgement, for seconds; else its pings unanswered for 15 s): it is gone',
  ERR_PROTOCOL_VIOLATION: 'a peer broke the protocol',
  ERR_NOT_FOUND: 'no connected peer has the file (or peer) asked for',
  ERR_ALL_SOURCES_FAILED: 'every peer that holds the file failed',
  ERR_BANNED: 'a peer is banned after repeated verification faults',
  ERR_NO_WAY_IN: 'no bootstrap node, static peer or data port: no way to meet other agents',
  ERR_CANCELLED: 'a request was cancelled',
  ERR_DESTROYED: 'the swarm is shut down',
  ERR_PEER_OVER_BUDGET: 'a peer went past one of its budgets (inventory entries or bytes, the shared entry pool, requests, hash requests, piece-map deltas, build entries a second): it is cut off, and refused for a cool-off that grows with each repeat',
  ERR_CIPHER_FAILED: 'the data link could not seal a record (OpenSSL failed on this box): the connection is closed',
  // what a peer answered (ErrorReply codes of the wire, one each)
  ERR_REMOTE_UNSPECIFIED: 'a peer answered with an error',
  ERR_REMOTE_BAD_MESSAGE: 'a peer found our message malformed',
  ERR_REMOTE_UNKNOWN_TYPE: 'a peer does not know a message type we sent',
  ERR_REMOTE_UNSUPPORTED_VERSION: 'a peer does not speak our protocol version',
  ERR_REMOTE_AUTH_FAILED: 'a peer refused our proof of the network key',
  ERR_REMOTE_NOT_FOUND: 'a peer does not have the file asked for',
  ERR_REMOTE_BAD_RANGE: 'a peer refused a byte range',
  ERR_REMOTE_BUSY: 'a peer has no free upload slot',
  ERR_REMOTE_INTERNAL: 'a peer failed on its side',
  // store: downloads, the cache dir, the index
  ERR_VERIFY_FAILED: 'the downloaded bytes do not match the size or hashes asked for; nothing was published',
  ERR_NAME_TAKEN: 'a different file of that name is already in the cache dir',
  ERR_DOWNLOAD_BUSY: 'a download of the file is already in progress',
  ERR_DOWNLOAD_CLOSED: 'the download was already committed or aborted',
  ERR_DISK_FULL: 'no space left on the device; nothing was published',
  ERR_DOWNLOAD_GAP: 'a write would leave a gap in the partial file',
  ERR_READ_FAILED: 'reading a file back to hash it failed',
  ERR_STORE_CLOSED: 'the store is closed',
  // agent: configuration, control API, fetches
  ERR_CONFIG: 'a bad option, config file or environment variable',
  ERR_CONFIG_EXISTS: 'the config file exists already (init without --force)',
  ERR_SEED_ONLY: 'the agent is a seed: it serves but never fetches',
  ERR_AMBIGUOUS: 'a name or key prefix matches more than one file or peer',
  ERR_DIGEST_MISMATCH: "the peers' file does not match the digest asked for",
  ERR_BAD_IDENTITY: "the agent's identity file is unreadable or malformed",
  ERR_CONTROL_IN_USE: 'another agent already answers on the control socket',
  ERR_METRICS_LISTEN: 'the metrics address cannot be bound',
  ERR_HTTP_LISTEN: 'the HTTP gateway address cannot be bound',
  ERR_AGENT_UNREACHABLE: 'no agent answers on the control socket',
  ERR_AGENT_NOT_STARTED: 'the agent has not started (or has stopped)',
  ERR_BAD_REQUEST: 'a malformed control request',
  ERR_BAD_REPLY: 'the agent answered with something that is not a control reply',
  ERR_UNKNOWN_METHOD: 'a control request for a method the agent does not have',
  ERR_LINE_TOO_LONG: 'a control line longer than the bound',
  ERR_CONTROL_CLOSED: 'the agent closed the control connection before answering',
  ERR_INTERNAL: 'an unexpected failure inside the agent',
  // binpkg: Portage's Packages index and the builds in it
  ERR_PACKAGES_INVALID: 'a Packages index that cannot be used as a whole (no header, no TIMESTAMP, VERSION above 0, too large)',
  ERR_PACKAGES_VALUE: 'a key or value that would break a Packages index (a newline, a control character, too long)',
  ERR_BAD_BUILD: 'a binary package stanza or file that fails a check (CPV, PATH, SIZE, MD5, SHA1)',
  ERR_BAD_SIGNATURE: "a build advertisement whose builder's signature does not verify: it is not advertised or kept",
  ERR_BUILDS_LIMIT: 'builds past a bound (too many from one peer, or one too large): those are ignored',
  // any library: an option handed to a constructor
  ERR_INVALID_OPTION: 'an option handed to a library constructor is out of range or of the wrong type',
  // cli
  ERR_USAGE: 'a command line the command does not accept'
} as const satisfies Record<`ERR_${string}`, string>

export type Code = keyof typeof CODES

export function isCode (value: unknown): value is Code {
  return typeof value === 'string' && Object.hasOwn(CODES, value)
}

/** The local code for an ErrorReply a peer sent, by its wire name. */
export const REMOTE_CODES = {
  UNSPECIFIED: 'ERR_REMOTE_UNSPECIFIED',
  BAD_MESSAGE: 'ERR_REMOTE_BAD_MESSAGE',
  UNKNOWN_TYPE: 'ERR_REMOTE_UNKNOWN_TYPE',
  UNSUPPORTED_VERSION: 'ERR_REMOTE_UNSUPPORTED_VERSION',
  AUTH_FAILED: 'ERR_REMOTE_AUTH_FAILED',
  NOT_FOUND: 'ERR_REMOTE_NOT_FOUND',
  BAD_RANGE: 'ERR_REMOTE_BAD_RANGE',
  BUSY: 'ERR_REMOTE_BUSY',
  INTERNAL: 'ERR_REMOTE_INTERNAL'
} as const satisfies Record<string, Code>

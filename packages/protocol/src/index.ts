export { DistswarmError, ProtocolError } from './errors.js'
export { CODES, REMOTE_CODES, isCode } from './codes.js'
export type { Code } from './codes.js'
export { debugLogger, eventText } from './log.js'
export type { Logger, LogLevel, LogFields } from './log.js'
export * from './limits.js'
export { encodeFrame, FrameDecoder } from './framing.js'
export { allocDataFrame, encodeMessage, decodeMessage, ErrorCode } from './messages.js'
export { readInventory } from './inventory.js'
export type { InventoryView, RawEntry } from './inventory.js'
export type {
  Message, HelloMessage, InventoryMessage, RequestMessage, DataMessage, CancelMessage, ErrorMessage, ReportMessage,
  HashRequestMessage, HashesMessage, PieceRange, PeerAddress, PeerAddressesMessage, PingMessage, PongMessage,
  FileEntry, ErrorCodeName, BuildsMessage, PieceMapMessage
} from './messages.js'
export { buildProblem, buildSigningPayload, buildWireBytes, sortedKeys } from './builds.js'
export type { BuildEntry } from './builds.js'
export { nameProblem, isValidName, assertValidName, isHexDigest, parseHexDigest, toHex, hostPort } from './names.js'
export { forEachBounded } from './bounded.js'

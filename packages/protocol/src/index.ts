export { DistswarmError, ProtocolError } from './errors.js'
export * from './limits.js'
export { encodeFrame, FrameDecoder } from './framing.js'
export { allocDataFrame, encodeMessage, decodeMessage, ErrorCode } from './messages.js'
export type {
  Message, HelloMessage, InventoryMessage, RequestMessage, DataMessage, CancelMessage, ErrorMessage, ReportMessage,
  HashRequestMessage, HashesMessage,
  FileEntry, ErrorCodeName
} from './messages.js'
export { nameProblem, isValidName, assertValidName, isHexDigest, parseHexDigest, toHex } from './names.js'

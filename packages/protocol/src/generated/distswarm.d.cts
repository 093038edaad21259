// Generated from protocols/distswarm.proto by packages/protocol/scripts/generate.mjs. Do not edit.

export interface Codec<T> {
  encode(obj: T, buf?: Uint8Array, offset?: number): Buffer
  decode(buf: Uint8Array, offset?: number, end?: number): T
  encodingLength(obj: T): number
}

export interface Hello {
  version?: number
  proof?: Uint8Array | null
  name?: string
  data_port?: number
  data_only?: boolean
  seeder?: boolean
}
export declare const Hello: Codec<Hello>

export interface FileEntry {
  name?: string
  size?: number
  blake2b?: Uint8Array | null
  sha512?: Uint8Array | null
}
export declare const FileEntry: Codec<FileEntry>

export interface Inventory {
  reset?: boolean
  added?: Array<FileEntry>
  removed?: Array<Uint8Array>
}
export declare const Inventory: Codec<Inventory>

export interface Request {
  id?: number
  blake2b?: Uint8Array | null
  offset?: number
  length?: number
}
export declare const Request: Codec<Request>

export interface Data {
  id?: number
  offset?: number
  bytes?: Uint8Array | null
}
export declare const Data: Codec<Data>

export interface Cancel {
  id?: number
}
export declare const Cancel: Codec<Cancel>

export interface ErrorReply {
  code?: number
  id?: number
  message?: string
}
export declare const ErrorReply: Codec<ErrorReply> & { Code: { readonly UNSPECIFIED: 0; readonly BAD_MESSAGE: 1; readonly UNKNOWN_TYPE: 2; readonly UNSUPPORTED_VERSION: 3; readonly AUTH_FAILED: 4; readonly NOT_FOUND: 5; readonly BAD_RANGE: 6; readonly BUSY: 7; readonly INTERNAL: 8 } }

export interface Report {
  blake2b?: Uint8Array | null
}
export declare const Report: Codec<Report>

export interface HashRequest {
  id?: number
  blake2b?: Uint8Array | null
  offset?: number
  length?: number
  piece_size?: number
}
export declare const HashRequest: Codec<HashRequest>

export interface Hashes {
  id?: number
  hashes?: Array<Uint8Array>
}
export declare const Hashes: Codec<Hashes>

export interface PeerAddress {
  public_key?: Uint8Array | null
  host?: string
  port?: number
}
export declare const PeerAddress: Codec<PeerAddress>

export interface PeerAddresses {
  addresses?: Array<PeerAddress>
}
export declare const PeerAddresses: Codec<PeerAddresses>

export interface KeyValue {
  key?: string
  value?: string
}
export declare const KeyValue: Codec<KeyValue>

export interface BuildEntry {
  blake2b?: Uint8Array | null
  size?: number
  group?: string
  fields?: Array<KeyValue>
  builder?: Uint8Array | null
  signature?: Uint8Array | null
}
export declare const BuildEntry: Codec<BuildEntry>

export interface Builds {
  reset?: boolean
  added?: Array<BuildEntry>
  removed?: Array<Uint8Array>
}
export declare const Builds: Codec<Builds>

export interface Ping {
  id?: number
  time?: number
}
export declare const Ping: Codec<Ping>

export interface Pong {
  id?: number
  time?: number
}
export declare const Pong: Codec<Pong>

export interface PieceMap {
  blake2b?: Uint8Array | null
  size?: number
  piece_size?: number
  reset?: boolean
  have?: Uint8Array | null
  added?: Array<number>
}
export declare const PieceMap: Codec<PieceMap>

export interface Envelope {
  hello?: Hello | null
  inventory?: Inventory | null
  request?: Request | null
  data?: Data | null
  cancel?: Cancel | null
  error?: ErrorReply | null
  report?: Report | null
  hash_request?: HashRequest | null
  hashes?: Hashes | null
  peer_addresses?: PeerAddresses | null
  builds?: Builds | null
  ping?: Ping | null
  pong?: Pong | null
  piece_map?: PieceMap | null
}
export declare const Envelope: Codec<Envelope>

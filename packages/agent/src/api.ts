/**
 * The control API's requests and results: one JSON object a line over the
 * Unix socket. These shapes are what `distswarm … --json` prints.
 */
import type { VerifyReport } from '@distswarm/store'

export type { BadFile } from '@distswarm/store'

export interface FileInfo {
  name: string
  size: number
  /** hex */
  blake2b: string
  /** hex, or '' when unknown */
  sha512: string
}

export interface StatusResult {
  name: string
  /** seed mode: serves and advertises, never fetches */
  seed: boolean
  /** hex public key: the agent's identity in the swarm */
  publicKey: string
  /** first 16 hex characters of the swarm topic (never the network key) */
  network: string
  dhtAddress: string | null
  /** TCP port of the fast data path, null when off */
  dataPort: number | null
  control: string
  /** "ip:port" where Prometheus metrics are served (at /metrics), null when off */
  metricsAddress: string | null
  cacheDir: string
  distdirs: string[]
  files: number
  bytes: number
  peers: number
  fetches: { inFlight: number, completed: number, failed: number, bytesFetched: number }
  /** the Manifest index: repos read, distinct distfile names, lines skipped as malformed */
  manifest: { repos: string[], names: number, problems: number }
  uptimeMs: number
}

export interface PeerInfo {
  name: string
  publicKey: string
  address: string | null
  files: number
  bytesSent: number
  bytesReceived: number
  connectedAt: string
  /** times bytes from this peer failed verification */
  faults: number
  /** how transfers travel: over the fast TCP link, or the hyperswarm stream */
  path: 'tcp' | 'hyperswarm'
}

export interface WhereResult {
  query: string
  local: Array<FileInfo & { path: string }>
  remote: Array<FileInfo & { holders: Array<{ name: string, publicKey: string }> }>
}

export interface FetchParams {
  /** a file name or a hex BLAKE2B digest */
  query: string
  /** hex SHA512 the file must have, when the caller knows it */
  sha512?: string
  /** name to publish the file under (Portage looks files up by name); default: the name peers advertise */
  name?: string
}

export interface FetchResult extends FileInfo {
  path: string
  /** 'local' when the box already had it */
  source: 'local' | 'swarm'
  durationMs: number
  /** bytes an earlier, interrupted attempt had already verified into place */
  resumedFrom: number
}

export interface VerifyParams {
  /** delete each bad file from the cache dir, which withdraws it from peers */
  remove?: boolean
}

/** Every file of the cache dir re-hashed: against the index's record, and the Manifest entry of its name. */
export type VerifyResult = VerifyReport

export interface ControlMethods {
  status: { params: Record<string, never>, result: StatusResult }
  peers: { params: Record<string, never>, result: PeerInfo[] }
  where: { params: { query: string }, result: WhereResult }
  fetch: { params: FetchParams, result: FetchResult }
  verify: { params: VerifyParams, result: VerifyResult }
}

export type Method = keyof ControlMethods

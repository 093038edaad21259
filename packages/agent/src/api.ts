/**
 * The control API's requests and results: one JSON object a line over the
 * Unix socket. These shapes are what `distswarm … --json` prints.
 */
import type { EvictionReason, VerifyReport } from '@distswarm/store'

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
  /** "ip:port" of the HTTP gateway (--http), null when off */
  httpAddress: string | null
  /** the gateway's URL, http://ip:port (the status page at /, the mirror at /distfiles/), null when off */
  url: string | null
  cacheDir: string
  distdirs: string[]
  files: number
  bytes: number
  /** the cache dir: bytes of its published files, and its quota (null: no limit) */
  cache: { bytes: number, maxBytes: number | null }
  peers: number
  fetches: { inFlight: number, completed: number, failed: number, bytesFetched: number }
  /** fetches from peers under way, one entry a file (at most one download a file) */
  transfers: TransferInfo[]
  /** file bytes moved since the agent started */
  traffic: {
    /** uploaded to peers */
    servedToPeers: number
    /** of those, relayed from the partial files of downloads under way (swarming) */
    relayedToPeers?: number
    /** fetched from peers: sizes of the files fetched (as fetches.bytesFetched) */
    fetchedFromPeers: number
    /** downloaded from upstream by portage-fetch's fallback (as it reported them; best effort) */
    fetchedUpstream: number
    /** files portage-fetch reported fetching upstream */
    upstreamFiles: number
  }
  /** the Manifest index: repos read, distinct distfile names, lines skipped as malformed */
  manifest: { repos: string[], names: number, problems: number }
  /** binary packages: held on this box (its PKGDIRs and the builds it fetched), advertised by peers, and offered by its binhost */
  builds: { local: number, network: number, served: number }
  /** misconfigurations seen lately (a wrong network key, an unreachable peer or bootstrap node), latest first */
  problems: Array<{ at: string, event: string, address: string, cause: string, count: number }>
  uptimeMs: number
}

export interface PeerInfo {
  name: string
  publicKey: string
  address: string | null
  files: number
  bytesSent: number
  bytesReceived: number
  /** file bytes this box sent the peer from partial downloads (swarming), part of bytesSent */
  bytesRelayed?: number
  connectedAt: string
  /** times bytes from this peer failed verification */
  faults: number
  /** how transfers travel: over the fast TCP link, or the hyperswarm stream */
  path: 'tcp' | 'hyperswarm'
  /** round-trip time in ms: the hyperswarm (UDX) connection's smoothed one, else (TCP) the shortest recent ping's; null until measured, or for an agent that does not answer pings */
  rttMs: number | null
  /** how far the peer's clock is ahead of this box's (negative: behind), ms, from pings; null until measured */
  clockOffsetMs: number | null
  /** when bytes from this peer last arrived (ISO 8601) */
  lastSeenAt: string
}

/** A fetch from peers under way. */
export interface TransferInfo {
  name: string
  /** hex */
  blake2b: string
  size: number
  /** bytes written so far, counting those a resumed attempt started from */
  bytesDone: number
  /** ISO 8601 */
  startedAt: string
  /** members holding verified pieces of this file while they download it too (swarming) */
  partialHolders?: number
  /** the members this download may take bytes from: those holding the whole file, then those holding pieces of it */
  sources?: TransferSource[]
}

/** A member a download may take bytes from. */
export interface TransferSource {
  name: string
  /** hex */
  publicKey: string
  /** `whole`: it holds the file; `pieces`: verified pieces of its own download under way (swarming) */
  holds: 'whole' | 'pieces'
  /** with `pieces`: how many */
  pieces?: number
}

export interface LsParams {
  /** a peer's name, public key (a hex prefix will do) or a prefix of its name: list its advertised files instead of this box's */
  peer?: string
}

export interface LsResult {
  /** the peer listed; null for this box */
  peer: { name: string, publicKey: string } | null
  /** sorted by name; `where` is 'distdir' or 'cache' on this box, 'peer' for a peer's (then path is null) */
  files: Array<FileInfo & { where: 'distdir' | 'cache' | 'peer', path: string | null }>
}

export interface UpstreamParams {
  /** the file portage-fetch's fallback downloaded */
  name: string
  /** bytes it downloaded */
  bytes: number
}

export interface WhereResult {
  query: string
  local: Array<FileInfo & { path: string }>
  remote: Array<FileInfo & { holders: Array<{ name: string, publicKey: string }> }>
}

export interface FetchParams {
  /** a file name or a hex BLAKE2B digest */
  query: string
  /**
   * hex SHA512 the file must have, when the caller knows it. Checked before
   * publishing when `query` is a name no Manifest pins (else the BLAKE2B is
   * the check: see docs/architecture.md, "Checked"); either way, holders
   * that advertise another SHA512 are passed over.
   */
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

export interface GcParams {
  /** only say what would be removed */
  dryRun?: boolean
}

/** A cache file eviction chose, in the order they go. */
export interface GcFile {
  name: string
  size: number
  /** hex */
  blake2b: string
  path: string
  /** unreferenced: no Manifest lists its name; least-recently-used: the others, oldest use first */
  reason: EvictionReason
  /** its last use (a local fetch, a peer's request) or its mtime, whichever is later */
  lastUsed: string
  /** connected peers holding it; 0: this box may hold the network's last copy (those go last) */
  peers: number
  /** deleted (false on a dry run, or when the file changed or went meanwhile) */
  removed: boolean
}

/** The cache quota applied now (or, on a dry run, what applying it would do). */
export interface GcResult {
  cacheDir: string
  dryRun: boolean
  /** the quota; null: no limit, nothing is removed */
  maxBytes: number | null
  /** bytes and files of the cache dir before */
  bytesBefore: number
  filesBefore: number
  /** after (on a dry run: what would be left) */
  bytesAfter: number
  filesAfter: number
  /** how far over the quota the cache dir was; 0 when within it */
  overBy: number
  files: GcFile[]
}

/** A build file this box holds, for the gateway to serve: `path` is where it is on disk. */
export interface BinhostFile {
  path: string
  size: number
  /** the file name to serve it under (the last part of its gateway PATH) */
  name: string
  /** hex */
  blake2b: string
}

/** The binhost the gateway serves at /binpkgs/: what `agent.binhost()` returns. */
export interface BinhostSource {
  /** The merged Packages document now (encoded, UTF-8), or why this box serves no builds (no CHOST known, …). Memory only. */
  index: () => { body: Buffer, timestamp: number } | { unavailable: string }
  /** The verified file this box holds for a gateway PATH of the index, else undefined. Memory only. */
  local: (path: string) => BinhostFile | undefined
  /**
   * Fetches the build at PATH from the peers holding it (many sources,
   * resume), verifies BLAKE2B, SIZE, MD5 and SHA1, keeps it in the build
   * cache (then advertises it), resolves to the file. Rejects ERR_NOT_FOUND
   * when PATH is not in the index; a lying peer is blamed and routed around
   * as for distfiles.
   */
  fetch: (path: string) => Promise<BinhostFile>
}

/** One build the network knows of (this box's, or a peer's), one row per file (BLAKE2B). */
export interface BuildInfo {
  cpv: string
  /** the BUILD_ID of the binhost's index when it serves the build, else the builder's (0 when it has none) */
  buildId: number
  /** gateway PATH (under /binpkgs/) when this box's index offers the build, else null */
  path: string | null
  /** the USE flags it was built with */
  use: string
  size: number
  /** hex */
  blake2b: string
  /** hex public key of the box that built it */
  builder: string
  /** the builder's name when it is this box or a connected peer, else null */
  builderName: string | null
  /** who holds it: peer names, 'this box' for this one */
  holders: string[]
  /** the builder is in binpkg-trust (or is this box, or binpkg-trust is all-members) */
  trusted: boolean
  /** why this box's binhost does not offer it (untrusted, another CHOST or group, a bad stanza), null when it does */
  skipped: string | null
}

export interface BuildsResult {
  /** the CHOST the binhost serves, null when none is known */
  chost: string | null
  /** the compatibility group it serves, null when none is known */
  group: string | null
  /** why the binhost serves no builds, null when it does */
  unavailable: string | null
  /** sorted by CPV, then BUILD_ID */
  builds: BuildInfo[]
}

export interface BinpkgsParams {
  /** `cat/pkg`, `pkg`, or `cat/pkg-version`: only the builds of that package (version) */
  atom?: string
}

export interface ControlMethods {
  status: { params: Record<string, never>, result: StatusResult }
  peers: { params: Record<string, never>, result: PeerInfo[] }
  where: { params: { query: string }, result: WhereResult }
  fetch: { params: FetchParams, result: FetchResult }
  verify: { params: VerifyParams, result: VerifyResult }
  gc: { params: GcParams, result: GcResult },
  ls: { params: LsParams, result: LsResult }
  /** portage-fetch reports a fallback download; the result is the new total */
  upstream: { params: UpstreamParams, result: { fetchedUpstream: number } }
  /** the builds across the network (`distswarm binpkgs`) */
  binpkgs: { params: BinpkgsParams, result: BuildsResult }
}

export type Method = keyof ControlMethods

export { StoreError } from './errors.js'
export { Store } from './store.js'
export type { StoreInit, StoreEvents, StoreStats, LocalFile } from './store.js'
export type { PieceRange } from './pool.js'
export type { CacheDir, CacheDirInit, Download, Expected } from './cache.js'
export type { BadFile, VerifyOptions, VerifyReport } from './verify.js'
export { DualHasher, hashFile } from './hash.js'
export type { Digests } from './hash.js'
export { isDistfileName } from './scan.js'
export { ManifestIndex, ManifestWatcher, parseManifest, watchRepos } from './manifest.js'
export type {
  ManifestEntry, ManifestProblem, ManifestProblemCode, ManifestParse, ManifestLoadOptions, ManifestWatchOptions, ManifestWatcherEvents
} from './manifest.js'

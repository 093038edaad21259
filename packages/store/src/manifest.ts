/**
 * Portage Manifests: parse.ts (DIST lines), table.ts (entries packed in
 * buffers), walk.ts (repos, categories, packages, safe reads),
 * manifest-index.ts (the index a load builds) and watcher.ts (reloads).
 */
export { parseManifest } from './manifest/parse.js'
export type { ManifestEntry, ManifestProblem, ManifestProblemCode, ManifestParse } from './manifest/parse.js'
export { ManifestIndex } from './manifest/manifest-index.js'
export type { ManifestLoadOptions } from './manifest/manifest-index.js'
export { ManifestWatcher, watchRepos } from './manifest/watcher.js'
export type { ManifestWatchOptions, ManifestWatcherEvents } from './manifest/watcher.js'

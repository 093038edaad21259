/**
 * Bundles the CLI (dist/main.js and everything it imports, but native
 * addons) into dist/distswarm.mjs, which bin/distswarm.js runs. Run by
 * `npm run build` after tsc.
 *
 * Why: Node spends about 0.4 CPU-s of every `distswarm` start resolving,
 * reading and lexing some 300 module files (measured on a 2-core box: an
 * agent over an empty distdir took 0.92–1.07 CPU-s from spawn to answering
 * as modules, 0.59–0.80 bundled). For `distswarm agent` that time comes
 * before the first file is hashed.
 *
 * Our own modules locate files next to themselves (the status page's assets,
 * the bin for demo and portage-fetch, doctor's own files): each one's
 * `import.meta.url` becomes its original URL, as a path relative to the
 * bundle, so the bundle finds them where the modules would have.
 */
import { readFile } from 'node:fs/promises'
import { dirname, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, type Plugin } from 'esbuild'

const DIST = dirname(fileURLToPath(import.meta.url))
export const BUNDLE = `${DIST}/distswarm.mjs`
/** Packages that load a compiled addon: Node loads them as usual, from node_modules. */
const NATIVE = ['sodium-native', 'udx-native']
/** The dist of a workspace package (ours), not a dependency's. */
const OWN_DIST = /\/(packages|apps)\/[^/]+\/dist\/.+\.js$/

const ownImportMetaUrl: Plugin = {
  name: 'own-import-meta-url',
  setup (b) {
    b.onLoad({ filter: OWN_DIST }, async (args) => {
      if (args.path.includes('/node_modules/')) return undefined
      const text = await readFile(args.path, 'utf8')
      if (!text.includes('import.meta.url')) return undefined
      const url = `new URL(${JSON.stringify(relative(DIST, args.path))}, import.meta.url).href`
      return { contents: text.replaceAll('import.meta.url', url), loader: 'js', resolveDir: dirname(args.path) }
    })
  }
}

await build({
  entryPoints: [`${DIST}/main.js`],
  outfile: BUNDLE,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: NATIVE,
  plugins: [ownImportMetaUrl],
  // The CommonJS dependencies require() Node's modules and the native ones.
  banner: { js: "import { createRequire as distswarmRequire } from 'node:module'; const require = distswarmRequire(import.meta.url);" },
  logLevel: 'warning'
})

/**
 * Fuzzing of the Packages reader and the binhost's merged index (the
 * properties are in fuzz-properties.ts), with the protocol's runner: a few
 * thousand inputs in `npm test`, any number with
 * `npm run fuzz -- --runs N [--seed S]`, a failing input saved under
 * test/regressions/ and replayed here after.
 */
import { fileURLToPath } from 'node:url'
import { defineFuzzSuite, replayRegressions } from '../../protocol/test/runner.js'
import { BINPKG_PROPERTIES } from './fuzz-properties.js'

const REGRESSIONS_DIR = fileURLToPath(new URL('./regressions/', import.meta.url))

defineFuzzSuite({ title: 'binpkg', properties: BINPKG_PROPERTIES, regressionsDir: REGRESSIONS_DIR })
replayRegressions(BINPKG_PROPERTIES, REGRESSIONS_DIR)

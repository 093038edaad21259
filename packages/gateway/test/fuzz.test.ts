/**
 * Fuzzing of the gateway's HTTP handling (the properties are in
 * fuzz-properties.ts), with the protocol's runner: a few hundred requests in
 * `npm test`, any number with `npm run fuzz -- --runs N [--seed S]`, a
 * failing input saved under test/regressions/ and replayed here after.
 */
import { afterAll } from 'vitest'
import { fileURLToPath } from 'node:url'
import { defineFuzzSuite, replayRegressions } from '../../protocol/test/runner.js'
import { HTTP_PROPERTIES, stopHttpFixture } from './fuzz-properties.js'

const REGRESSIONS_DIR = fileURLToPath(new URL('./regressions/', import.meta.url))

afterAll(stopHttpFixture)
defineFuzzSuite({ title: 'gateway', properties: HTTP_PROPERTIES, regressionsDir: REGRESSIONS_DIR })
replayRegressions(HTTP_PROPERTIES, REGRESSIONS_DIR)

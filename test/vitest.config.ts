import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'e2e',
    // whole agent processes on a local DHT; bounded, but not milliseconds
    testTimeout: 120_000,
    hookTimeout: 60_000
  }
})

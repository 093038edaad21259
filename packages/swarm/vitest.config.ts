import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    // real DHT nodes on loopback: discovery takes seconds, not milliseconds
    testTimeout: 60_000,
    hookTimeout: 30_000
  }
})

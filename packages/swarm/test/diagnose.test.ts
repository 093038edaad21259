import { describe, expect, it } from 'vitest'
import { judge, type PieceSource } from '../src/index.js'

const h = (n: number): Buffer => Buffer.alloc(32, n)
const pieces = (...sources: string[]): PieceSource[] => sources.map((source, i) => ({ offset: i * 10, length: 10, source }))

describe('judge: which pieces of a failed download were wrong, and who sent them', () => {
  it('blames the source whose copy the majority of holders contradicts', () => {
    // c's copy differs in piece 1; it sent piece 1 as its copy has it.
    const claims = new Map([['a', [h(0), h(1), h(2)]], ['b', [h(0), h(1), h(2)]], ['c', [h(0), h(9), h(2)]]])
    expect(judge(pieces('a', 'c', 'b'), [h(0), h(9), h(2)], claims)).toEqual({ bad: [1], liars: ['c'], suspect: null })
  })

  it('blames a source that sent other bytes than its own copy has, even with no one else to ask', () => {
    const claims = new Map([['a', [h(0), h(1)]]])
    expect(judge(pieces('a', 'a'), [h(0), h(7)], claims)).toEqual({ bad: [1], liars: ['a'], suspect: null })
  })

  it('finds nothing when every holder agrees with every piece received', () => {
    const claims = new Map([['a', [h(0), h(1)]], ['b', [h(0), h(1)]]])
    expect(judge(pieces('a', 'b'), [h(0), h(1)], claims)).toEqual({ bad: [], liars: [], suspect: null })
  })

  it('with two holders that disagree, suspects the one that sent most disputed pieces, never one that did not answer', () => {
    const claims = new Map([['a', [h(0), h(1), h(2), h(3)]], ['b', [h(5), h(6), h(7), h(3)]]])
    // gone sent piece 0 and is not there to answer
    const verdict = judge(pieces('gone', 'b', 'b', 'a'), [h(0), h(6), h(7), h(3)], claims)
    expect(verdict).toEqual({ bad: [0, 1, 2], liars: [], suspect: 'b' })
  })
})

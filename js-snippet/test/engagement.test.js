// Engaged time (visible and focused only) and scroll depth, reported when the page is hidden or
// left and before the next SPA pageview.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { open } from './harness.js'

const engagements = (page) => page.sent().filter((e) => e.name == 'engagement')

test('time counts only while the tab is visible and focused', () => {
  const page = open()
  page.advance(5000) // visible and focused: counts
  page.blur()
  page.advance(60_000) // another window has focus: does not count
  page.focus()
  page.advance(2000) // counts
  page.hide()
  const [report] = engagements(page)
  assert.equal(report.engaged_ms, 7000)
  assert.equal(report.url, 'https://shop.example/products?x=1')
})

test('time while hidden does not count, and counting resumes when shown', () => {
  const page = open()
  page.advance(1000)
  page.hide() // reports 1000
  page.advance(3_600_000)
  page.show()
  page.advance(4000)
  page.hide() // reports only what came after the first report
  assert.deepEqual(
    engagements(page).map((e) => e.engaged_ms),
    [1000, 4000],
  )
})

test('a page opened in a background tab starts counting only once seen', () => {
  const page = open({ initial: { visible: false, focused: false } })
  page.advance(30_000)
  page.focus() // the browser gives focus to the window as the tab comes up
  page.show()
  page.advance(1500)
  page.hide()
  assert.equal(engagements(page)[0].engaged_ms, 1500)
})

test('hidden then pagehide sends one engagement, not a second one with zero time', () => {
  const page = open()
  page.advance(2500)
  page.hide()
  page.pagehide()
  assert.deepEqual(page.names(), ['pageview', 'engagement'])
})

test('pagehide then hidden (the order of a real navigation) sends one engagement', () => {
  const page = open()
  page.advance(2500)
  page.pagehide()
  page.advance(3)
  page.hide()
  assert.deepEqual(
    engagements(page).map((e) => e.engaged_ms),
    [2500],
  )
})

test('a page left without any engaged time reports zero once', () => {
  const page = open()
  page.blur()
  page.advance(10_000)
  page.hide()
  page.pagehide()
  const reports = engagements(page)
  assert.equal(reports.length, 1)
  assert.equal(reports[0].engaged_ms, 0)
})

test('an SPA route change reports the previous page before the next pageview', () => {
  const page = open()
  page.advance(3000)
  page.win.history.pushState({}, '', '/cart')
  page.advance(1000)
  page.win.history.pushState({}, '', '/checkout')
  const sent = page.sent()
  assert.deepEqual(
    sent.map((e) => [e.name, e.url, e.engaged_ms]),
    [
      ['pageview', 'https://shop.example/products?x=1', undefined],
      ['engagement', 'https://shop.example/products?x=1', 3000],
      ['pageview', 'https://shop.example/cart', undefined],
      ['engagement', 'https://shop.example/cart', 1000],
      ['pageview', 'https://shop.example/checkout', undefined],
    ],
  )
})

test('counters restart for each page: a new page may report zero again', () => {
  const page = open()
  page.advance(1000)
  page.hide() // page 1: 1000
  page.show()
  page.win.history.pushState({}, '', '/next') // page 1 again: nothing new, no zero report
  page.hide() // page 2: its first report, zero allowed
  assert.deepEqual(
    engagements(page).map((e) => [e.url, e.engaged_ms]),
    [
      ['https://shop.example/products?x=1', 1000],
      ['https://shop.example/next', 0],
    ],
  )
})

test('scroll depth is the maximum percentage seen, 0..100', () => {
  const page = open()
  page.state.scrollHeight = 4000 // viewport 1000: the first screen is 25%
  page.scrollTo(2000) // 75%
  page.scrollTo(500) // back up: the maximum stays
  page.hide()
  assert.equal(engagements(page)[0].scroll, 75)
})

test('scroll depth resets for the next page and a short page counts as fully seen', () => {
  const page = open()
  page.scrollTo(3000) // 100%
  page.state.scrollY = 0
  page.state.scrollHeight = 500 // the next page is shorter than the window
  page.win.history.pushState({}, '', '/short')
  page.hide()
  assert.deepEqual(
    engagements(page).map((e) => e.scroll),
    [100, 100],
  )
  const tall = open()
  tall.state.scrollHeight = 10_000
  tall.win.history.pushState({}, '', '/tall')
  tall.hide()
  assert.deepEqual(
    engagements(tall).map((e) => e.scroll),
    [10, 10],
  )
})

test('an empty document reports scroll 0, not NaN', () => {
  const page = open()
  page.state.innerHeight = 0
  page.state.scrollHeight = 0
  page.hide()
  assert.equal(engagements(page)[0].scroll, 0)
})

test('engagement keeps the ids of its pageview and is not session activity', () => {
  const page = open()
  const [view] = page.sent()
  page.advance(31 * 60 * 1000) // the session expires while the tab sits open
  page.hide()
  const [report] = engagements(page)
  assert.equal(report.visitor, view.visitor)
  assert.equal(report.session, view.session)
  page.show()
  page.win.history.pushState({}, '', '/later')
  const later = page.sent().at(-1)
  assert.equal(later.name, 'pageview')
  assert.notEqual(later.session, view.session, 'the report did not keep the old session alive')
  assert.equal(later.visitor, view.visitor)
})

test('focus gained without a focus event still counts when the page is left', () => {
  const page = open({ initial: { visible: true, focused: false } })
  page.state.focused = true // Chromium can focus a new page without firing focus
  page.advance(2000)
  page.win.history.pushState({}, '', '/next')
  assert.equal(engagements(page)[0].engaged_ms, 2000)
})

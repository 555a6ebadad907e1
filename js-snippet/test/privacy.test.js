// Who is tracked and what is kept: Do Not Track / Global Privacy Control, local and automated
// browsers, the staff opt-out, cookieless mode, visitor and session ids.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { T0, open } from './harness.js'

const flag = (name, value) => (win) => Object.defineProperty(win.navigator, name, { configurable: true, value })

test('Do Not Track is respected only when the site sets data-respect-dnt', () => {
  const asks = flag('doNotTrack', '1')
  assert.equal(open({ before: asks, attrs: { 'data-respect-dnt': '' } }).beacons.length, 0)
  assert.equal(open({ before: asks }).beacons.length, 1)
  assert.equal(open({ before: flag('doNotTrack', '0'), attrs: { 'data-respect-dnt': '' } }).beacons.length, 1)
})

test('Global Privacy Control is respected only when the site sets data-respect-dnt', () => {
  const asks = flag('globalPrivacyControl', true)
  assert.equal(open({ before: asks, attrs: { 'data-respect-dnt': '' } }).beacons.length, 0)
  assert.equal(open({ before: asks }).beacons.length, 1)
})

test('a visitor asking not to be tracked leaves nothing in storage and the API stays callable', () => {
  const page = open({ before: flag('doNotTrack', '1'), attrs: { 'data-respect-dnt': '' } })
  page.win.odnos.track('signup')
  page.win.odnos('identify', 'a@b.example', 'ff')
  page.win.history.pushState({}, '', '/next')
  page.hide()
  assert.equal(page.beacons.length, 0)
  assert.equal(page.win.localStorage.length, 0)
})

for (const url of ['http://localhost:3000/', 'http://127.0.0.1:8000/app', 'http://[::1]/', 'file:///home/me/site/index.html']) {
  test(`nothing is sent from ${url} without data-allow-local`, () => {
    assert.equal(open({ url }).beacons.length, 0)
    const allowed = open({ url, attrs: { 'data-allow-local': '' } })
    assert.deepEqual(allowed.names(), ['pageview'])
  })
}

test('a host that merely starts with "localhost" is not local', () => {
  assert.equal(open({ url: 'https://localhost.shop.example/' }).beacons.length, 1)
})

test('nothing is sent from an automated browser (navigator.webdriver) without data-allow-local', () => {
  const robot = flag('webdriver', true)
  assert.equal(open({ before: robot }).beacons.length, 0)
  assert.equal(open({ before: robot, attrs: { 'data-allow-local': '' } }).beacons.length, 1)
})

test('the staff opt-out (localStorage.odnos_ignore = "true") sends nothing, and takes effect at once', () => {
  assert.equal(open({ storage: { odnos_ignore: 'true' } }).beacons.length, 0)
  const page = open()
  page.win.localStorage.odnos_ignore = 'true'
  page.win.odnos.track('after')
  assert.deepEqual(page.names(), ['pageview'])
})

test('cookieless: no visitor or session fields, nothing stored', () => {
  const page = open({ attrs: { 'data-cookieless': '' } })
  page.win.odnos.track('signup', { plan: 'pro' })
  page.hide()
  const sent = page.sent()
  assert.deepEqual(
    sent.map((e) => e.name),
    ['pageview', 'signup', 'engagement'],
  )
  for (const event of sent) {
    assert.equal('visitor' in event, false)
    assert.equal('session' in event, false)
  }
  assert.equal(page.win.localStorage.length, 0)
})

test('the visitor id is kept in localStorage across page loads', () => {
  const first = open()
  const visitor = first.sent()[0].visitor
  assert.equal(first.win.localStorage.odnos_vid, visitor)
  const second = open({ storage: { odnos_vid: visitor } })
  assert.equal(second.sent()[0].visitor, visitor)
})

test('the session survives 29 minutes of inactivity, not 31', () => {
  const stored = (minutesAgo) => ({ odnos_vid: 'v1', odnos_sid: 'sess1.' + (T0 - minutesAgo * 60_000) })
  assert.equal(open({ storage: stored(29) }).sent()[0].session, 'sess1')
  assert.notEqual(open({ storage: stored(31) }).sent()[0].session, 'sess1')
})

test('each event is session activity: steady use keeps one session beyond 30 minutes', () => {
  const page = open()
  const session = page.sent()[0].session
  for (let i = 0; i < 4; i++) {
    page.advance(20 * 60_000)
    page.win.odnos.track('tick')
  }
  assert.ok(page.sent().every((e) => e.session == session))
  assert.equal(page.win.localStorage.odnos_sid, session + '.' + (T0 + 80 * 60_000))
})

test('without usable storage, events are still sent, without ids', () => {
  const page = open({
    before(win) {
      Object.defineProperty(win, 'localStorage', {
        get() {
          throw new win.DOMException('The operation is insecure.', 'SecurityError')
        },
      })
    },
  })
  page.win.odnos.track('signup')
  const sent = page.sent()
  assert.deepEqual(
    sent.map((e) => e.name),
    ['pageview', 'signup'],
  )
  assert.ok(sent.every((e) => e.visitor === undefined && e.session === undefined))
})

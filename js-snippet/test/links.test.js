// Outbound link and file download clicks.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { downloadTypes, linkKind } from '../src/links.js'
import { open } from './harness.js'

const HOST = 'shop.example'
const defaults = downloadTypes(undefined)
const kind = (href, types = defaults) => linkKind(new URL(href), HOST, types)

test('links are classified by host and extension', () => {
  assert.equal(kind('https://other.example/page'), 'outbound')
  assert.equal(kind('http://other.example/'), 'outbound')
  assert.equal(kind('https://www.shop.example/'), 'outbound', 'another host name, even a subdomain')
  assert.equal(kind('https://shop.example/about'), false)
  assert.equal(kind('https://shop.example/files/report.pdf'), 'download')
  assert.equal(kind('https://cdn.example/app/Setup.EXE?x=1#y'), 'download', 'on any host, any case, query ignored')
  assert.equal(kind('https://shop.example/data.v2/list'), false, 'a dot in a directory is no extension')
  assert.equal(kind('https://shop.example/blog/node.js'), false, 'not a listed extension')
})

test('mailto:, tel: and javascript: links are neither', () => {
  for (const href of ['mailto:a@b.example', 'tel:+100', 'javascript:void(0)', 'ftp://files.example/a.zip']) {
    assert.equal(kind(href), false, href)
  }
})

test('the default download list has the common types; data-downloads replaces it', () => {
  for (const ext of ['pdf', 'zip', 'docx', 'xlsx', 'csv', 'dmg', 'exe', 'mp3', 'mp4']) assert.ok(defaults.includes(ext), ext)
  const custom = downloadTypes('epub, mobi')
  assert.equal(kind('https://shop.example/book.epub', custom), 'download')
  assert.equal(kind('https://shop.example/book.mobi', custom), 'download')
  assert.equal(kind('https://shop.example/report.pdf', custom), false)
  assert.equal(kind('https://shop.example/report.pdf', downloadTypes('')), false, 'empty: downloads off')
})

test('clicking an outbound link sends "outbound" with its url', () => {
  const page = open()
  page.click('https://partner.example/deal?id=7')
  const click = page.sent()[1]
  assert.equal(click.name, 'outbound')
  assert.deepEqual(click.props, { url: 'https://partner.example/deal?id=7' })
  assert.equal(click.url, 'https://shop.example/products?x=1')
})

test('clicking a file link sends "download" with its absolute url', () => {
  const page = open()
  page.click('/files/price-list.xlsx')
  const click = page.sent()[1]
  assert.equal(click.name, 'download')
  assert.deepEqual(click.props, { url: 'https://shop.example/files/price-list.xlsx' })
})

test('data-downloads configures the tracked extensions', () => {
  const page = open({ attrs: { 'data-downloads': 'pdf,zip' } })
  page.click('/a.zip')
  page.click('/b.xlsx')
  assert.deepEqual(page.names(), ['pageview', 'download'])
})

test('internal links send nothing', () => {
  const page = open()
  page.click('/about')
  page.click('#reviews')
  assert.deepEqual(page.names(), ['pageview'])
})

test('a middle click counts, a right click does not', () => {
  const page = open()
  page.click('https://partner.example/', { button: 1 }, 'auxclick')
  page.click('https://partner.example/', { button: 2 }, 'auxclick')
  assert.deepEqual(page.names(), ['pageview', 'outbound'])
})

test('a page that stops the click from propagating does not hide it', () => {
  const page = open()
  page.doc.body.addEventListener('click', (e) => e.stopPropagation())
  page.click('https://partner.example/')
  assert.deepEqual(page.names(), ['pageview', 'outbound'])
})

test('a click on something other than a link sends nothing and breaks nothing', () => {
  const page = open()
  page.doc.body.dispatchEvent(new page.win.MouseEvent('click', { bubbles: true }))
  page.doc.dispatchEvent(new page.win.MouseEvent('click', { bubbles: true })) // target without closest()
  assert.deepEqual(page.names(), ['pageview'])
})

// Outbound link and file download clicks.

const DOWNLOADS = 'pdf,zip,gz,rar,7z,dmg,exe,msi,apk,docx,xlsx,pptx,csv,mp3,wav,mp4,mov'

/** The extension list (lower case): `data-downloads="pdf,zip"` replaces the default one. */
export const downloadTypes = (attr) => (attr == null ? DOWNLOADS : attr).split(/[\s,]+/)

/**
 * Classifies a clicked link (an <a> element, whose URL parts the browser already parsed):
 * "download" when its path ends in a listed extension (on any host), "outbound" when it leaves
 * the page's host, nothing otherwise (mailto:, tel:, javascript:, same site, SVG links).
 */
export const linkKind = (link, host, types) =>
  /^http/.test(link.protocol) &&
  (types.includes(link.pathname.split('.').pop().toLowerCase()) ? 'download' : link.host != host && 'outbound')

// a11y_check.js URL... - each page in a phone-sized headless Chromium
// (Debian's, driven by puppeteer-core; no browser download), checked by
// axe-core against its WCAG 2.0/2.1 A and AA rules. One JSON line per URL:
// {url, violations[{id, impact, help, nodes}], h1, small (tap targets
// under 44 x 44 CSS px), lang, text}. SHOTS=DIR saves a screenshot of each.
'use strict';
const fs = require('fs');
const path = require('path');
const puppeteer = require('puppeteer-core');

const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

async function check(browser, url, i) {
  const page = await browser.newPage();
  await page.setBypassCSP(true); // the page allows only its own scripts; axe is injected
  await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 2, isMobile: true,
    hasTouch: true });
  const resp = await page.goto(url, { waitUntil: 'load' });
  await page.addScriptTag({ content: axeSource });
  const res = await page.evaluate(async () => {
    // Forms behind a <details> are checked open, as a consumer opens them.
    document.querySelectorAll('details').forEach((d) => { d.open = true; });
    const r = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    const small = [...document.querySelectorAll(
      'a, button, input:not([type=hidden]), select, textarea, summary')]
      .map((e) => { const b = e.getBoundingClientRect();
        return { tag: e.tagName, w: Math.round(b.width), h: Math.round(b.height),
          text: (e.textContent || e.value || '').trim() }; })
      .filter((t) => t.w < 44 || t.h < 44);
    return {
      violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 3).map((n) => n.html) })),
      h1: document.querySelectorAll('h1').length,
      small,
      lang: document.documentElement.lang,
      text: document.body.innerText,
    };
  });
  if (process.env.SHOTS)
    await page.screenshot({ path: path.join(process.env.SHOTS, `page-${i}.png`), fullPage: true });
  await page.close();
  return { url, status: resp.status(), ...res };
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  try {
    const urls = process.argv.slice(2);
    for (let i = 0; i < urls.length; i++)
      console.log(JSON.stringify(await check(browser, urls[i], i)));
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
